"""Tests of sereval.protocol across modules: the paper's clusters against the recipes, priors of scanned corpora,
clusters of a described data root, the splits' guarantees, and RULE_TEXT written from EPS."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sereval.errors import SerevalError
from sereval.protocol import (CLUSTERS, EPS, PROTOCOLS, RULES, RULE_TEXT, adjust_logits, class_priors, load_clusters,
                              make_split, ood_pairs, random_split, speaker_split)
from sereval.recipes import CORPORA, scan
from sereval.taxonomy import CLASSES, OTHER_INDEX

FIXTURES = Path(__file__).resolve().parent / 'fixtures'


def test_clusters_of_a_root(tmp_path):
    "The paper's clusters without a description (or without a root); a damaged description names its file."
    assert load_clusters(tmp_path) == CLUSTERS and load_clusters(None) == CLUSTERS
    assert ('emodb', 'resd') in ood_pairs(load_clusters(None), CORPORA)
    (tmp_path / 'sereval_corpora.json').write_text('{"clusters": {"c": [')          # truncated
    with pytest.raises(SerevalError, match='sereval_corpora.json'): load_clusters(tmp_path)


def test_class_priors_of_a_scanned_corpus():
    df = scan(FIXTURES / 'emodb', 'emodb')
    p = class_priors(df)
    assert p.shape == (8,) and np.isclose(p.sum(), 1) and p[CLASSES.index('surprise')] == 0
    assert np.allclose(p[[CLASSES.index(c) for c in ('anger', 'happiness', 'sadness')]], 1 / 3)
    assert np.array_equal(class_priors(df['label']), p)
    with pytest.raises(SerevalError): class_priors(['joy'])
    with pytest.raises(SerevalError): class_priors([True, False])          # bools are not class indices


@pytest.mark.parametrize('n', [2, 5, 17, 100])
def test_random_split_sides(n):
    for m in (random_split(n, 0.2, seed=34), random_split(n, 0.2, dim=16)):
        assert m.dtype == bool and 1 <= m.sum() <= n - 1 and m.sum() == n - int(0.8 * n)     # the paper's int(0.8 N) trains


def test_speaker_split_and_fallback():
    spk = ['a'] * 10 + ['b'] * 10 + ['c'] * 30 + ['d'] * 50
    m = speaker_split(spk, seed=0)
    held, used = make_split(pd.DataFrame({'speaker': spk}), 'speaker', seed=0)
    assert used == 'speaker' and np.array_equal(held, m)
    assert make_split(pd.DataFrame({'speaker': ['x'] * 5}), 'speaker')[1] == 'random'
    with pytest.raises(SerevalError, match='unknown protocol'): make_split(pd.DataFrame({'speaker': spk}), 'leave-one-out')
    assert PROTOCOLS == ('random', 'speaker', 'emobox')


def test_rule_text_follows_eps():
    assert set(RULE_TEXT) == set(RULES)
    assert f'{EPS:g}' in RULE_TEXT['paper'] and RULE_TEXT['paper'].count(f'{EPS:g}') == 2
    z = np.zeros((1, 8)); pi = np.full(8, 1 / 8); pi0 = pi.copy(); pi0[4] = 0; pi0 /= pi0.sum()
    assert adjust_logits(z, pi0, pi, 'paper')[0, 4] == pytest.approx(np.log(1 / 8 + EPS) - np.log(EPS))


@pytest.mark.parametrize('k', [3.0, 0.5])
def test_calibrated_em_recovers_shifted_priors(k):
    from sereval.protocol import estimate_priors, fit_temperature
    rng = np.random.default_rng(0)
    cls, pi_true = np.array([0, 1, 5, 7]), np.array([.5, .1, .3, .1])
    mu = rng.normal(0, 0.5, (4, 6))
    def logits(y):
        x = mu[y] + rng.normal(0, 1, (len(y), 6))
        z = np.full((len(y), 8), -30.0); z[:, cls] = k * (-0.5 * ((x[:, None, :] - mu[None]) ** 2).sum(-1) + np.log(.25))
        return z
    y_test, y_held = rng.choice(4, 20000, p=pi_true), rng.choice(4, 4000)     # training corpus balanced, test shifted
    z_test, z_held = logits(y_test), logits(y_held)
    pi_train = np.zeros(8); pi_train[cls] = .25
    T = fit_temperature(z_held, cls[y_held], pi_train > 0)
    assert T == pytest.approx(k, rel=0.1)
    assert np.abs(estimate_priors(z_test / T, pi_train)[cls] - pi_true).max() < 0.03
    assert np.abs(estimate_priors(z_test, pi_train)[cls] - pi_true).max() > 0.03


def test_balanced_rule_reads_no_test_prior():
    from sereval.protocol import BALANCE_TAU, ORACLE_RULES, adjust_logits
    pi_train = np.array([.4, .1, .1, .1, 0., .2, 0., .1])
    z = np.random.default_rng(1).normal(0, 1, (50, 8))
    a, b = adjust_logits(z, pi_train, None, 'balanced'), adjust_logits(z, pi_train, np.full(8, 1 / 8), 'balanced')
    np.testing.assert_array_equal(a, b)
    ok = pi_train > 0; ok[OTHER_INDEX] = False
    np.testing.assert_allclose(a[:, ok], z[:, ok] - BALANCE_TAU * np.log(pi_train[ok] + 1e-12))
    assert np.isneginf(a[:, ~ok]).all() and 'balanced' not in ORACLE_RULES
