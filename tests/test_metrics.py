"Metric semantics, logit-adjustment rules, and the MESD flaw against the paper's published numbers."
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from sereval.metrics import METRICS, compute_metrics, evaluate, ood_predictions
from sereval.protocol import EPS, RULES, adjust_logits
from sereval.taxonomy import CLASSES, OTHER_INDEX, label_indices

SHARED = Path(__file__).resolve().parents[1] / '..' / 'shared'
SURPRISE = CLASSES.index('surprise')


def test_hand_computed_with_absent_class():
    # classes 0, 1, 5, 7 occur; 2, 3, 4, 6 occur in neither truth nor prediction and must not count
    m = compute_metrics([0, 0, 1, 1, 7], [0, 1, 1, 1, 5])
    assert set(m) == set(METRICS)
    assert m['accuracy'] == pytest.approx(0.6) and m['micro_f1'] == pytest.approx(0.6)
    assert m['macro_f1'] == pytest.approx((2 / 3 + 0.8 + 0 + 0) / 4)
    assert m['macro_precision'] == pytest.approx((1 + 2 / 3 + 0 + 0) / 4)
    assert m['macro_recall'] == pytest.approx((0.5 + 1 + 0 + 0) / 4)
    assert m['weighted_f1'] == pytest.approx((2 * 2 / 3 + 2 * 0.8 + 1 * 0) / 5)
    # sklearn over all 8 labels would halve the macro F1: the union is what makes the difference
    assert f1_score([0, 0, 1, 1, 7], [0, 1, 1, 1, 5], labels=range(8), average='macro', zero_division=0) == pytest.approx(m['macro_f1'] / 2)


def test_predicted_only_and_true_only_classes():
    m = compute_metrics([0, 0, 0, 0], [0, 0, 0, 3])      # class 3 predicted, never true
    assert m['macro_recall'] == pytest.approx((0.75 + 0) / 2)
    assert m['macro_precision'] == pytest.approx((1 + 0) / 2)
    assert m['macro_f1'] == pytest.approx((2 * 0.75 / 1.75 + 0) / 2)
    assert compute_metrics([2, 2], [2, 2])['macro_f1'] == 1.0



def test_unweighted_accuracy_is_balanced_accuracy():
    import warnings
    from sklearn.metrics import balanced_accuracy_score
    m = compute_metrics([0, 0, 0, 0], [0, 0, 0, 3])      # class 3 predicted, never true: UA ignores it, macro recall does not
    assert m['unweighted_accuracy'] == pytest.approx(0.75) and m['macro_recall'] == pytest.approx(0.375)
    rng = np.random.default_rng(7)
    for _ in range(100):
        n = int(rng.integers(1, 50)); y, p = rng.integers(0, 5, n), rng.integers(0, 8, n)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            assert compute_metrics(y, p)['unweighted_accuracy'] == pytest.approx(balanced_accuracy_score(y, p), abs=1e-12)

def _brute(y, p):
    labels = sorted(set(y) | set(p))
    f1s, ps, rs, sup = [], [], [], []
    for c in labels:
        tp = sum(a == c and b == c for a, b in zip(y, p)); fp = sum(a != c and b == c for a, b in zip(y, p))
        fn = sum(a == c and b != c for a, b in zip(y, p))
        pr = tp / (tp + fp) if tp + fp else 0.0; rc = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * pr * rc / (pr + rc) if pr + rc else 0.0); ps.append(pr); rs.append(rc); sup.append(tp + fn)
    return dict(macro_f1=np.mean(f1s), macro_precision=np.mean(ps), macro_recall=np.mean(rs),
                weighted_f1=np.dot(f1s, sup) / len(y), accuracy=np.mean(np.array(y) == np.array(p)))


@pytest.mark.parametrize('seed', range(5))
def test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.choice([0, 1, 3, 5, 7], 60).tolist(); p = rng.choice([0, 1, 2, 5], 60).tolist()
    m, b = compute_metrics(y, p), _brute(y, p)
    for k, v in b.items(): assert m[k] == pytest.approx(v), k


def test_empty_is_nan_and_shape_mismatch():
    assert all(np.isnan(v) for v in compute_metrics([], []).values())
    with pytest.raises(ValueError): compute_metrics([1, 2], [1])


def test_rules():
    z = np.random.default_rng(0).normal(size=(5, 8))
    tr = np.array([.3, .3, 0, .1, 0, .2, .1, 0]); te = np.full(8, 1 / 8)
    np.testing.assert_array_equal(adjust_logits(z, tr, te, 'none'), z)
    paper = adjust_logits(z, tr, te, 'paper')
    np.testing.assert_allclose(paper, z - np.log(tr + EPS) + np.log(te + EPS))
    assert paper[0, 2] - z[0, 2] == pytest.approx(np.log(1 / 8 + EPS) + 27.631, abs=1e-3)   # the +27.6 boost
    corr = adjust_logits(z, tr, te, 'corrected')
    assert np.isneginf(corr[:, tr == 0]).all() and np.allclose(corr[:, tr > 0], paper[:, tr > 0])
    with pytest.raises(ValueError): adjust_logits(z, tr[:7], te, 'paper')


def test_ood_drops_other_and_masks_other_logit():
    z = np.zeros((4, 8)); z[:, OTHER_INDEX] = 10
    y = np.array([OTHER_INDEX, 0, 1, 2])
    yt, yp = ood_predictions(z, y, np.full(8, 1 / 8), np.full(8, 1 / 8), 'none')
    assert yt.tolist() == [0, 1, 2] and (yp != OTHER_INDEX).all()
    assert evaluate(z, y, 'in')['accuracy'] == 0.25            # in-domain: raw arg-max, nothing dropped


def test_mesd_flaw():
    "A training prior lacking one class: the paper's rule predicts it for every OOD clip, the corrected rule never."
    rng = np.random.default_rng(1)
    y = rng.choice(8, 500)
    z = rng.normal(size=(500, 8)); z[np.arange(500), y] += 3; z[:, SURPRISE] -= 8
    tr = np.array([.2, .2, .15, .15, 0, .15, .05, .1]); te = np.bincount(y, minlength=8) / len(y)
    assert (ood_predictions(z, y, tr, te, 'paper')[1] == SURPRISE).all()
    yt, yp = ood_predictions(z, y, tr, te, 'corrected')
    assert not (yp == SURPRISE).any()
    assert compute_metrics(yt, yp)['macro_f1'] > 0.6


@pytest.mark.skipif(not (SHARED / 'paper' / 'published_matrices').is_dir() or not (SHARED / 'corpus_listings').is_dir(),
                    reason='../shared (published matrices, corpus listings) not present')
@pytest.mark.parametrize('test_corpus', ['emovo', 'cafe', 'subesco', 'mead', 'expresso'])
def test_published_mesd_row_is_always_surprise(test_corpus):
    """The paper's published MESD row (identical for every backbone) is exactly the score of predicting `surprise` for
    every clip: what the paper's rule does with a training prior without surprise, whatever the logits."""
    from sereval.protocol import class_priors
    from sereval.recipes import scan_listing
    listing = lambda c: (SHARED / 'corpus_listings' / f'{c}.txt').read_text(encoding='utf-8').split('\n')
    mesd = scan_listing([l for l in listing('mesd') if l.strip()], 'mesd')
    test = scan_listing([l for l in listing(test_corpus) if l.strip()], test_corpus)
    assert class_priors(mesd['label'])[SURPRISE] == 0
    y = label_indices(test['label'])
    z = np.random.default_rng(0).normal(0, 3, (len(y), 8))     # any logits of a sane range
    yt, yp = ood_predictions(z, y, class_priors(mesd['label']), class_priors(test['label']), 'paper')
    assert (yp == SURPRISE).all()
    ours = compute_metrics(yt, yp)
    pub = SHARED / 'paper' / 'published_matrices'
    for metric in ('macro_f1', 'accuracy'):
        rows = [pd.read_csv(f).set_index('Training Dataset').loc['mesd', test_corpus] for f in sorted((pub / f'valid_{metric}').glob('*.csv'))]
        assert len(set(rows)) == 1                                 # constant across backbones
        assert ours[metric] == pytest.approx(rows[0], abs=6e-5), metric
