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
from sereval.taxonomy import CLASSES

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
    assert PROTOCOLS == ('random', 'speaker')


def test_rule_text_follows_eps():
    assert set(RULE_TEXT) == set(RULES)
    assert f'{EPS:g}' in RULE_TEXT['paper'] and RULE_TEXT['paper'].count(f'{EPS:g}') == 2
    z = np.zeros((1, 8)); pi = np.full(8, 1 / 8); pi0 = pi.copy(); pi0[4] = 0; pi0 /= pi0.sum()
    assert adjust_logits(z, pi0, pi, 'paper')[0, 4] == pytest.approx(np.log(1 / 8 + EPS) - np.log(EPS))
