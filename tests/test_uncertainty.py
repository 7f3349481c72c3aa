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
    fr = friedman_test(mats)
    blocks = np.stack([m.to_numpy().ravel() for m in mats.values()], 1)
    assert fr.statistic == pytest.approx(friedmanchisquare(*blocks.T).statistic, abs=1e-12)
    assert fr.n_blocks == 25 and list(fr.nemenyi.index) == list('wxyz')


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
