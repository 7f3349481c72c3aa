"""Issue 11's evidence: the label-free rule's EM estimate, the collapsed/at-chance detector on the published matrices,
the out-of-domain means with and without the MESD row, and the speaker-leakage report on constructed corpora."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sereval import paper as P
from sereval.benchmark import corpus_priors, run_corpus, write_tables
from sereval.diagnostics import (ood_means, paper_flags, flagged_rows, leakage_table, macro_f1, run_flags,
                                 train_speaker_heads, cell_report)
from sereval.layout import Layout, RunRecord, write_record
from sereval.metrics import compute_metrics
from sereval.protocol import CLUSTERS, ORACLE_RULES, PAPER_PRIORS, RULES, TrainConfig, adjust_logits, estimate_priors
from sereval.store import write_store
from sereval.taxonomy import CLASSES, NUM_CLASSES, OTHER_INDEX

PUBLISHED = Path(__file__).resolve().parents[2] / 'shared' / 'paper' / 'published_matrices'


def calibrated_logits(pi_test, classes, n=20000, dim=6, seed=0):
    "Logits that are exact log posteriors (up to a constant) under a balanced prior over `classes`, for clips drawn with `pi_test`."
    rng = np.random.default_rng(seed)
    y = rng.choice(len(classes), n, p=pi_test)
    mu = rng.normal(0, 1.5, (len(classes), dim))
    x = mu[y] + rng.normal(0, 1, (n, dim))
    z = np.full((n, NUM_CLASSES), -30.0)
    z[:, classes] = -0.5 * ((x[:, None, :] - mu[None]) ** 2).sum(-1)
    pi_train = np.zeros(NUM_CLASSES); pi_train[classes] = 1 / len(classes)
    return z, pi_train, np.asarray(classes)[y]


@pytest.mark.parametrize('seed,classes,pi', [
    (0, [0, 1, 5, 7], [.5, .1, .3, .1]),
    (1, [0, 1, 2, 3, 5, 7], [.05, .4, .05, .2, .2, .1]),
    (2, [1, 4, 5], [.7, .2, .1]),
])
def test_em_recovers_known_priors(seed, classes, pi):
    z, pi_train, y = calibrated_logits(np.array(pi), classes, seed=seed)
    est = estimate_priors(z, pi_train)
    assert np.abs(est[classes] - pi).max() < 0.02
    assert est.sum() == pytest.approx(1) and (est[[c for c in range(NUM_CLASSES) if c not in classes]] == 0).all()


def test_estimated_rule_uses_no_test_prior_and_masks_unseen_classes():
    z, pi_train, y = calibrated_logits(np.array([.6, .2, .2]), [0, 5, 6], n=2000)
    a = adjust_logits(z, pi_train, None, 'estimated')
    assert np.isneginf(a[:, OTHER_INDEX]).all() and np.isneginf(a[:, 1]).all()       # other and unseen classes masked
    assert np.isfinite(a[:, [0, 5]]).all()
    assert 'estimated' in RULES and 'estimated' not in ORACLE_RULES and set(ORACLE_RULES) == {'paper', 'corrected'}


def test_detector_flags_every_published_mesd_ood_cell():
    pf = paper_flags()
    mesd = pf[(pf.train == 'mesd') & (pf.domain == 'out')]
    assert mesd.backbone.nunique() == 10 and len(mesd) == 80
    assert (mesd.flag == 'at chance').all()
    assert flagged_rows(pf) == ['mesd']


def test_detector_flags_the_near_chance_wav2vec2_large_robust_diagonal():
    pf = paper_flags()
    diag = pf[(pf.domain == 'in') & (pf.flag != '')]
    assert set(diag.backbone) == {'facebookwav2vec2largerobust'}
    assert sorted(diag.train) == ['aesdd', 'baum', 'demos', 'eekk', 'meld']
    assert (diag.macro_recall <= diag.chance * 1.05).all()


def test_mesd_row_moves_each_backbone_ood_mean_by_007_to_021():
    pub = {s: P.load_paper_matrix('macro_f1', s) for s in P.paper_backbone_slugs()}
    om = ood_means(pub, CLUSTERS, paper_flags()).set_index('backbone')
    assert (om.flagged_rows == 'mesd').all()
    assert (om['shift'] > 0).all()
    assert round(om['shift'].min(), 3) == 0.007 and round(om['shift'].max(), 3) == 0.021
    assert om['shift'].idxmin() == 'facebookwav2vec2largerobust'
    # the all-pairs mean is Table 3's OOD; the mean of Figure 2's averages is another number
    m = pub['openaiwhisperlargev3']
    off = [m.at[r, c] for r in m.index for c in m.columns if r != c and pd.notna(m.at[r, c])]
    assert om.loc['openaiwhisperlargev3', 'all_pairs'] == pytest.approx(np.mean(off))
    assert om.loc['openaiwhisperlargev3', 'mean_of_train_corpora'] != pytest.approx(np.mean(off), abs=1e-3)


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason=f'the published matrices are not at {PUBLISHED}')
def test_shipped_recall_matrices_are_the_published_files():
    "The detector reads the shipped copy; it holds the published macro recall of the MESD row exactly."
    for s in ('facebookwav2vec2largerobust', 'openaiwhisperlargev3'):
        pub = P.read_matrix_file(PUBLISHED / 'valid_macro_recall' / f'{s}.csv')
        ours = P.load_paper_matrix('macro_recall', s)
        assert np.allclose(pub.loc['mesd'].dropna(), ours.loc['mesd'].dropna())


def test_fast_macro_f1_is_the_metric():
    rng = np.random.default_rng(0)
    for _ in range(50):
        y, p = rng.integers(0, 8, 40), rng.integers(0, 8, 40)
        p[:15] = y[:15]
        assert macro_f1(y, p) == pytest.approx(compute_metrics(y, p)['macro_f1'])


def cue_corpus(speaker_cues, n_speakers=30, per_class=4, classes=(0, 1, 5, 7), dim=16, frames=8, seed=0):
    "A corpus of frames whose emotion cues are each speaker's own (`speaker_cues`) or shared by all speakers."
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 1, (NUM_CLASSES, dim))
    rows, arrays = [], []
    for s in range(n_speakers):
        own, offset = rng.normal(0, 1.5, (NUM_CLASSES, dim)), rng.normal(0, 0.5, dim)
        for c in classes:
            mean = 0.15 * shared[c] + own[c] if speaker_cues else 0.4 * shared[c] + offset
            for k in range(per_class):
                rows.append({'clip_id': f's{s:02d}_{c}_{k}', 'path': f's{s:02d}/{c}_{k}.wav', 'label': CLASSES[c], 'speaker': f's{s:02d}'})
                arrays.append((mean + rng.normal(0, 1.5, (frames, dim))).astype(np.float16))
    return rows, arrays


@pytest.mark.slow
def test_leakage_gap_positive_with_speaker_cues_within_interval_without(tmp_path):
    out, config = tmp_path, TrainConfig(hidden=64, epochs=30, lr=1e-3)
    L = Layout(out)
    stores = {n: write_store(L.embeddings, 'toy', n, *cue_corpus(cues, seed=i), frame_rate=50.0)
              for i, (n, cues) in enumerate([('spk-cues', True), ('shared-cues', False)])}
    rows, arrays = cue_corpus(False, seed=5)
    stores['no-ids'] = write_store(L.embeddings, 'toy', 'no-ids', [{**r, 'speaker': ''} for r in rows], arrays, frame_rate=50.0)
    priors = {c: corpus_priors(c, None, s)[0] for c, s in stores.items()}
    res = pd.concat([run_corpus('toy', c, [t for t in stores if t != c], stores, out, priors, config) for c in stores])
    assert set(res[res.domain == 'out'].rule) == set(RULES) and 'estimated' in set(res.rule)   # the results' rule column
    write_tables(res, out, 'toy')
    write_record(out, RunRecord(backbone='toy', slug='toy', corpora=list(stores), clusters={'c': list(stores)}, rule='paper',
                                protocol='random', train=config.to_dict(), seeds=[config.seed]))
    heads = train_speaker_heads('toy', out, config=config).set_index('corpus')
    assert heads.loc['no-ids', 'status'] == 'unmeasurable: no speaker ids' and (heads.status == 'trained').sum() == 2
    lk = leakage_table(out).set_index('corpus')
    cue, shared = lk.loc['spk-cues'], lk.loc['shared-cues']
    assert cue.gap > 0 and cue.gap_low > 0 and cue.interval == 'speakers'
    assert shared.gap_low <= 0 <= shared.gap_high
    assert lk.loc['no-ids', 'status'] == 'unmeasurable: no speaker ids' and pd.isna(lk.loc['no-ids', 'gap'])
    assert cue.speakers_both_sides == 30 and cue.seen_speaker_share == 1.0
    # per-cell diagnostics agree with the results table, and flags cover every cell
    conf, pc = cell_report(out, 'toy', 'spk-cues', 'shared-cues', 'estimated')
    v = res[(res.train == 'spk-cues') & (res.test == 'shared-cues') & (res.rule == 'estimated') & (res.metric == 'macro_f1')].value.item()
    assert pc.f1.mean() == pytest.approx(v) and int(conf.to_numpy().sum()) == len(stores['shared-cues'].index)
    flags = run_flags(out)
    assert len(flags) == 9 and flags.top_share.notna().all()
