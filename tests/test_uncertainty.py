"How far to trust each number: interval coverage, paired tests, Friedman's statistic, the paper's ranking and the verdict."
import numpy as np
import pandas as pd
import pytest
from scipy.stats import friedmanchisquare

from sereval import paper as P
from sereval.metrics import compute_metrics
from sereval.uncertainty import (Cell, cell_intervals, confusion_metric, friedman_test, paired_difference,
                                 paper_friedman, paper_side_by_side, paper_verdict)


def _cell(y_true, y_pred, groups=None, train='a', test='b', domain='out'):
    ids = np.arange(len(y_true)).astype(str)
    g = ids if groups is None else np.asarray(groups)
    return Cell(train, test, domain, ids, g.astype(object), np.asarray(y_true), np.atleast_2d(y_pred),
                'clip' if groups is None else 'speaker')


def _predict(y, err, rng, k=1):
    wrong = rng.random((k, len(y))) < err
    return np.where(wrong, (y + rng.integers(1, 5, (k, len(y)))) % 5, y)


def test_confusion_metric_is_the_metrics_module():
    rng = np.random.default_rng(0)
    yt, yp = rng.integers(0, 5, 200), rng.integers(0, 7, 200)
    cm = np.zeros((8, 8)); np.add.at(cm, (yt, yp), 1)
    ref = compute_metrics(yt, yp)
    assert confusion_metric(cm) == pytest.approx(ref['macro_f1'], abs=1e-12)
    assert confusion_metric(cm, 'accuracy') == pytest.approx(ref['accuracy'], abs=1e-12)


def test_95_percent_intervals_cover_the_true_macro_f1():
    "Coverage simulation: test sets drawn from a population with a known macro F1; the interval holds it 90-99 % of the time."
    rng = np.random.default_rng(11)
    y = rng.integers(0, 5, 100_000)
    yp = _predict(y, 0.4, rng)[0]
    truth = compute_metrics(y, yp)['macro_f1']
    hits = []
    for r in range(150):
        pick = rng.choice(len(y), 250, replace=False)
        c, _ = cell_intervals([_cell(y[pick], yp[pick])], 1, n_resamples=300, seed=r)
        hits.append(c.low[0] <= truth <= c.high[0])
    assert 0.90 <= np.mean(hits) <= 0.99, np.mean(hits)


def test_speaker_grouping_widens_the_interval_when_speakers_differ():
    "Clips of one speaker share its difficulty: resampling speakers gives a wider interval than resampling clips."
    rng = np.random.default_rng(3)
    spk = np.repeat(np.arange(20), 15)
    y = rng.integers(0, 5, len(spk))
    err = rng.uniform(0.05, 0.8, 20)[spk]                 # some speakers are hard, some easy
    yp = np.where(rng.random(len(y)) < err, (y + rng.integers(1, 5, len(y))) % 5, y)
    by_clip = cell_intervals([_cell(y, yp)], 1, n_resamples=1000)[0]
    by_spk = cell_intervals([_cell(y, yp, spk.astype(str))], 1, n_resamples=1000)[0]
    assert by_clip.value[0] == by_spk.value[0]
    assert (by_spk.high - by_spk.low)[0] > 1.3 * (by_clip.high - by_clip.low)[0]
    assert by_spk.grouped_by[0] == 'speaker' and by_spk.groups[0] == 20


def test_seed_spread_is_in_the_interval_and_the_value_is_the_seed_mean():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 5, 300)
    yp = np.stack([_predict(y, e, rng)[0] for e in (0.1, 0.5, 0.3)])
    c, m = cell_intervals([_cell(y, yp)], 3, n_resamples=500)
    assert c.value[0] == pytest.approx(np.mean([compute_metrics(y, p)['macro_f1'] for p in yp]), abs=1e-12)
    one = cell_intervals([_cell(y, yp[:1])], 1, n_resamples=500)[0]
    assert (c.high - c.low)[0] > 2 * (one.high - one.low)[0]
    assert set(m.what) == {'ood', 'ood_by_train', 'ood_by_test'}


def test_paired_test_finds_a_planted_difference_and_not_a_null_one():
    rng = np.random.default_rng(5)
    spk = np.repeat(np.arange(40), 8).astype(str)
    a, planted, null = [], [], []
    for t in ('b', 'c', 'd'):
        y = rng.integers(0, 5, len(spk))
        a.append(_cell(y, _predict(y, 0.35, rng, 2), spk, test=t))
        planted.append(_cell(y, _predict(y, 0.5, rng, 2), spk, test=t))
        null.append(_cell(y, _predict(y, 0.35, rng, 2), spk, test=t))
    found = paired_difference(a, 2, planted, 2, n_resamples=1000)
    none = paired_difference(a, 2, null, 2, n_resamples=1000)
    mean_found, mean_none = (d[d.what == 'ood'].iloc[0] for d in (found, none))
    assert mean_found.p_value < 0.01 and mean_found.low > 0
    assert mean_none.p_value > 0.05 and mean_none.low < 0 < mean_none.high


def test_friedman_statistic_is_scipys():
    rng = np.random.default_rng(6)
    mats = {s: pd.DataFrame(rng.random((5, 5)) + 0.05 * i, index=list('abcde'), columns=list('abcde'))
            for i, s in enumerate('wxyz')}
    fr = friedman_test(mats, 'cells', 'nemenyi')
    blocks = np.stack([m.to_numpy().ravel() for m in mats.values()], 1)
    assert fr.statistic == pytest.approx(friedmanchisquare(*blocks.T).statistic, abs=1e-12)
    assert fr.n_blocks == 25 and list(fr.pvalues.index) == list('wxyz') and fr.unit == 'cells'


def _corpus_mats(seed=11, n=9, k=5):
    rng = np.random.default_rng(seed)
    names = [f'c{i}' for i in range(n)]
    mats = {}
    for i in range(k):
        m = pd.DataFrame(rng.random((n, n)) * 0.3 + 0.05 * i, index=names, columns=names)
        m.iloc[0, 1:4] = np.nan                 # missing cells: a test corpus reached by fewer training corpora
        mats[f'b{i}'] = m
    return mats


def test_corpus_blocks_equal_scipy_statsmodels_autorank():
    import warnings
    from itertools import combinations
    from scipy.stats import wilcoxon
    from statsmodels.stats.multitest import multipletests
    from autorank import autorank
    mats = _corpus_mats()
    for s in mats: mats[s].iloc[2, 2] = 0.5     # corpus c2: every backbone ties in-domain -> dropped, counted
    for view in ('in', 'ood_test', 'ood_train'):
        rk = friedman_test(mats, view)
        diag = {s: pd.Series(np.diag(m), index=m.index) for s, m in mats.items()}
        off = {s: m.where(~np.eye(len(m), dtype=bool)) for s, m in mats.items()}
        ref = pd.DataFrame({s: diag[s] if view == 'in' else (off[s].mean(axis=0) if view == 'ood_test' else off[s].mean(axis=1))
                            for s in mats})
        if view == 'in': ref = ref.drop('c2')
        assert rk.n_dropped == (1 if view == 'in' else 0) and rk.unit == 'corpora'
        pd.testing.assert_frame_equal(rk.blocks.sort_index(), ref.sort_index(), check_names=False)
        assert rk.statistic == pytest.approx(friedmanchisquare(*ref.to_numpy().T).statistic, abs=1e-12)
        pairs = list(combinations(ref.columns, 2))
        holm = multipletests([wilcoxon(ref[a], ref[b]).pvalue for a, b in pairs], method='holm')[1]
        for (a, b), p in zip(pairs, holm): assert rk.pvalues.at[a, b] == pytest.approx(p, abs=1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            ar = autorank(ref, alpha=0.05, verbose=False, force_mode='nonparametric')
        assert rk.p_value == pytest.approx(ar.pvalue, abs=1e-12)
        for s in ref: assert rk.ranks[s] == pytest.approx(ar.rankdf.loc[s, 'meanrank'], abs=1e-12)


def test_fewer_separated_pairs_with_corpora_than_cells():
    from sereval.uncertainty import rankings
    mats = {s: P.load_paper_matrix('macro_f1', s) for s in P.PAPER_BACKBONES}
    cells = rankings(mats, 'cells', 'nemenyi')['cells']
    corp = rankings(mats, 'corpora', 'nemenyi')
    assert cells.n_dropped == 8 and set(corp) == {'in', 'ood_test', 'ood_train'}
    assert corp['in'].n_blocks == 19 and corp['ood_train'].n_dropped == 1     # MESD's row: ten-way ties
    assert all(len(r.apart()) < len(cells.apart()) for r in corp.values())


def test_bayesian_signed_rank_is_baycomps():
    from baycomp import SignedRankTest
    from sereval.uncertainty import ROPE, bayesian_signed_rank
    rk = friedman_test(_corpus_mats(), 'in')
    b = bayesian_signed_rank(rk, nsamples=2000, seed=3)
    assert len(b) == 10 and np.allclose(b[['p_a_better', 'p_equivalent', 'p_b_better']].sum(axis=1), 1)
    r = b.iloc[0]
    ref = SignedRankTest.probs(rk.blocks[r.a].to_numpy(), rk.blocks[r.b].to_numpy(), rope=ROPE, nsamples=2000, random_state=3)
    assert (r.p_a_better, r.p_equivalent, r.p_b_better) == pytest.approx(ref)


def test_the_papers_backbones_are_significantly_apart():
    pf = paper_friedman()
    assert len(pf.ranks) == len(P.PAPER_BACKBONES) and pf.p_value < 1e-10
    apart = pf.apart()
    assert ('openaiwhisperlarge', 'facebookwav2vec2largerobust') in {(a, b) for a, b, _ in apart}
    assert len(apart) < 45                      # not every pair: the Whisper models are not apart from each other
    assert not any({a, b} <= {'openaiwhisperlarge', 'openaiwhisperlargev2', 'openaiwhisperlargev3'} for a, b, _ in apart)


def test_verdict_reproduced_and_not():
    pub = P.load_paper_matrix('macro_f1', 'openaiwhisperlargev3').stack().reset_index()
    pub.columns = ['train', 'test', 'paper']
    pub = pub.dropna(subset=['paper'])
    def run(shift, half):
        v = pub['paper'].to_numpy() + shift
        return pd.DataFrame({'slug': 'openaiwhisperlargev3', 'train': pub.train, 'test': pub.test,
                             'domain': np.where(pub.train == pub.test, 'in', 'out'), 'value': v, 'low': v - half, 'high': v + half})
    assert 'Verdict: **reproduced**' in paper_verdict(paper_side_by_side(run(0.01, 0.03)))
    side = paper_side_by_side(run(0.1, 0.03))
    assert not side['inside'].astype(bool).any() and 'not reproduced' in paper_verdict(side)
    assert paper_side_by_side(run(0.1, 0.03), tolerance=0.08)['inside'].astype(bool).all()


def _speaker_cell(S, m, rng, sd=0.1, err=0.35):
    e = np.clip(err + rng.normal(0, sd, S), 0.02, 0.9)
    g = np.repeat(np.arange(S), m); yt = rng.integers(0, 5, S * m)
    yp = np.where(rng.random(S * m) < e[g], (yt + rng.integers(1, 5, S * m)) % 5, yt)
    return Cell('a', 'b', 'out', np.arange(S * m).astype(str), g.astype(str).astype(object), yt, yp[None], 'speaker')


@pytest.mark.parametrize('speakers', [5, 10])
def test_coverage_with_speaker_effects(speakers):
    rng = np.random.default_rng(21)
    big = _speaker_cell(20_000, 20, rng)
    cm = np.zeros((8, 8)); np.add.at(cm, (big.y_true, big.y_pred[0]), 1)
    truth = float(confusion_metric(cm))
    hits = []
    for r in range(200):
        c = cell_intervals([_speaker_cell(speakers, 240 // speakers, rng)], 1, n_resamples=400, seed=r)[0].iloc[0]
        hits.append(c.low <= truth <= c.high)
    assert 0.90 <= np.mean(hits) <= 0.99, np.mean(hits)


def test_one_speaker_interval_has_width():
    from sereval.diagnostics import MIN_SPEAKERS
    from sereval.uncertainty import FEW_SPEAKERS
    rng = np.random.default_rng(4)
    for S in (1, 2, MIN_SPEAKERS - 1):
        cells, means = cell_intervals([_speaker_cell(S, 120, rng)], 1, n_resamples=500)
        c = cells.iloc[0]
        assert c.high - c.low > 0.02 and not c.zero_width and c.grouped_by == FEW_SPEAKERS
    c = cell_intervals([_speaker_cell(MIN_SPEAKERS, 40, rng)], 1, n_resamples=500)[0].iloc[0]
    assert c.grouped_by == 'speaker'
    perfect = Cell('a', 'b', 'out', np.arange(30).astype(str), np.zeros(30).astype(str).astype(object), np.arange(30) % 5,
                   (np.arange(30) % 5)[None], 'speaker')
    assert cell_intervals([perfect], 1, n_resamples=200)[0].zero_width.iloc[0]      # every resample scores 1: flagged
