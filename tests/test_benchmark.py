"One backbone's grid: saved logits, results table, matrices (per rule), reuse, protocols, `sereval train`."
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sereval.benchmark import (LOGIT_COLUMNS, MATRIX_INDEX, RESULT_COLUMNS, load_logits, results_matrix, run_backbone,
                               summarize, train_command)
from sereval.errors import SerevalError
from sereval.metrics import METRICS, RULES
from sereval.store import write_store
from sereval.taxonomy import CLASSES
from sereval.train import TrainConfig, toy_frames

CFG = TrainConfig(epochs=3, lr=3e-3)
CORPORA = {'toy1': (0, 1, 4, 5, 7), 'toy2': (0, 1, 5, 7), 'toy3': (0, 1, 4, 5, 6, 7), 'solo': (0, 1)}
CLUSTERS = {'c': ('toy1', 'toy2', 'toy3')}


def make_stores(root, corpora=CORPORA, n=50, seed=0):
    for i, (c, cls) in enumerate(corpora.items()):
        frames, starts, lengths, labels = toy_frames(n, dim=8, classes=cls, seed=seed + i, separation=1.5, means_seed=0)
        rows = [dict(clip_id=f'{c}-{j}', label=CLASSES[l], speaker=f's{j % 5}', checksum=str(j)) for j, l in enumerate(labels)]
        write_store(root, 'toy/bb-1', c, rows, [frames[s:s + k] for s, k in zip(starts, lengths)], frame_rate=50)


@pytest.fixture(scope='module')
def grid(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('grid')
    make_stores(tmp / 'emb')
    res = run_backbone('toy/bb-1', tmp / 'emb', tmp / 'out', clusters=CLUSTERS, config=CFG, progress=False)
    return tmp, res


def test_results_table(grid):
    tmp, res = grid
    assert list(res.columns) == list(RESULT_COLUMNS)
    on_disk = pd.read_csv(tmp / 'out' / 'results' / 'toybb1.csv')
    assert list(on_disk.columns) == list(RESULT_COLUMNS) and len(on_disk) == len(res)
    ind = res[res.domain == 'in']
    assert set(ind.train) == set(CORPORA) and (ind.train == ind.test).all() and set(ind.rule) == {'none'}
    ood = res[res.domain == 'out']
    assert set(zip(ood.train, ood.test)) == {(a, b) for a in CLUSTERS['c'] for b in CLUSTERS['c'] if a != b}
    assert set(ood.rule) == set(RULES) and set(res.metric) == set(METRICS) and set(res.protocol) == {'random'}
    assert len(ood) == 6 * len(RULES) * len(METRICS)


def test_matrices_layout(grid):
    tmp, res = grid
    for metric in METRICS:
        for p in [tmp / 'out' / 'matrices' / metric / 'toybb1.csv'] + [tmp / 'out' / 'matrices' / 'by_rule' / r / metric / 'toybb1.csv' for r in RULES]:
            m = pd.read_csv(p)
            assert list(m.columns) == [MATRIX_INDEX, 'solo', 'toy1', 'toy2', 'toy3']
            assert m[MATRIX_INDEX].tolist() == ['solo', 'toy1', 'toy2', 'toy3']
            m = m.set_index(MATRIX_INDEX)
            assert m.loc['solo', ['toy1', 'toy2', 'toy3']].isna().all() and m.loc['toy1', 'solo'] != m.loc['toy1', 'solo']
            assert np.isfinite(np.diag(m.loc[:, m.index].to_numpy())).all()
    main = pd.read_csv(tmp / 'out' / 'matrices' / 'macro_f1' / 'toybb1.csv').set_index(MATRIX_INDEX)
    paper = pd.read_csv(tmp / 'out' / 'matrices' / 'by_rule' / 'paper' / 'macro_f1' / 'toybb1.csv').set_index(MATRIX_INDEX)
    pd.testing.assert_frame_equal(main, paper)
    v = res[(res.train == 'toy1') & (res.test == 'toy3') & (res.rule == 'corrected') & (res.metric == 'accuracy')].value.item()
    assert results_matrix(res, 'accuracy', 'corrected').loc['toy1', 'toy3'] == pytest.approx(v)


def test_mesd_like_row(grid):
    "toy2 has no surprise: the paper's rule predicts surprise for every OOD clip, the corrected rule recovers."
    tmp, res = grid
    paper, corr = results_matrix(res, 'macro_f1', 'paper'), results_matrix(res, 'macro_f1', 'corrected')
    assert (paper.loc['toy2', ['toy1', 'toy3']] < 0.2).all()
    assert (corr.loc['toy2', ['toy1', 'toy3']] > 0.5).all()


def test_saved_logits(grid):
    tmp, _ = grid
    own = load_logits(tmp / 'out', 'toy/bb-1', 'toy1', 'toy1')
    assert list(own.columns) == ['clip_id', 'label', 'y', 'split', *LOGIT_COLUMNS]
    assert set(own.split) == {'train', 'test'} and (own.split == 'test').sum() == 10 and len(own) == 50
    other = load_logits(tmp / 'out', 'toy/bb-1', 'toy1', 'toy3')
    assert set(other.split) == {'ood'} and len(other) == 50 and 'other' in set(other.label)
    run = json.loads((tmp / 'out' / 'runs' / 'toybb1' / 'toy1' / 'run.json').read_text())
    assert run['config'] == CFG.to_dict() and run['protocol'] == 'random' and set(run['logits']) == {'toy1', 'toy2', 'toy3'}
    with pytest.raises(SerevalError): load_logits(tmp / 'out', 'toy/bb-1', 'toy1', 'solo')


def test_rerun_reuses_and_changes_retrain(grid, tmp_path):
    tmp, res = grid
    model = tmp / 'out' / 'runs' / 'toybb1' / 'toy1' / 'model.pt'
    stamp = model.stat().st_mtime_ns
    again = run_backbone('toy/bb-1', tmp / 'emb', tmp / 'out', clusters=CLUSTERS, config=CFG, progress=False)
    pd.testing.assert_frame_equal(again, res)
    assert model.stat().st_mtime_ns == stamp
    # another seed is another run
    other = run_backbone('toy/bb-1', tmp / 'emb', tmp / 'out', corpora=['toy1'], clusters=CLUSTERS,
                         config=TrainConfig(epochs=3, lr=3e-3, seed=7), progress=False)
    assert model.stat().st_mtime_ns != stamp
    assert set(other.train) == {'toy1'}


def test_speaker_protocol_and_manifest_priors(tmp_path):
    make_stores(tmp_path / 'emb', {'a': (0, 1, 5), 'b': (0, 1, 5, 7)})
    # a manifest for 'b' with another class balance: its priors come from there
    (tmp_path / 'out' / 'manifests').mkdir(parents=True)
    pd.DataFrame({'path': [f'/x/{i}.wav' for i in range(10)], 'corpus': 'b', 'label': ['anger'] * 9 + ['neutral'],
                  'speaker': 's'}).to_parquet(tmp_path / 'out' / 'manifests' / 'b.parquet')
    res = run_backbone('toy/bb-1', tmp_path / 'emb', tmp_path / 'out', clusters={'k': ('a', 'b')}, config=CFG,
                       protocol='speaker', progress=False)
    assert set(res.protocol) == {'speaker'}
    logits = load_logits(tmp_path / 'out', 'toy/bb-1', 'a', 'a')
    spk = logits.clip_id.str.split('-').str[1].astype(int) % 5
    assert not set(spk[logits.split == 'test']) & set(spk[logits.split == 'train'])
    run = json.loads((tmp_path / 'out' / 'runs' / 'toybb1' / 'a' / 'run.json').read_text())
    assert run['priors']['b'][CLASSES.index('anger')] == pytest.approx(0.9)


def test_bad_input(tmp_path):
    make_stores(tmp_path / 'emb', {'a': (0, 1)})
    with pytest.raises(SerevalError, match='no embedding store'):
        run_backbone('toy/bb-1', tmp_path / 'emb', tmp_path / 'out', corpora=['zzz'], progress=False)
    with pytest.raises(SerevalError, match='no embedding stores'):
        run_backbone('other', tmp_path / 'emb', tmp_path / 'out', progress=False)
    with pytest.raises(SerevalError): run_backbone('toy/bb-1', tmp_path / 'emb', tmp_path / 'out', rule='bayes', progress=False)
    meta = tmp_path / 'emb' / 'toybb1' / 'a' / 'meta.json'
    m = json.loads(meta.read_text()); m['complete'] = False; meta.write_text(json.dumps(m))
    with pytest.raises(SerevalError, match='not complete'):
        run_backbone('toy/bb-1', tmp_path / 'emb', tmp_path / 'out', corpora=['a'], progress=False)


def test_train_command(tmp_path, capsys):
    make_stores(tmp_path / 'out' / 'embeddings', {'p': (0, 1, 5, 7), 'q': (0, 1, 5, 7)}, n=30)
    (tmp_path / 'clusters.json').write_text(json.dumps({'clusters': {'x': ['p', 'q']}}))
    assert train_command(['--backbone', 'toy/bb-1', '--out', str(tmp_path / 'out'), '--clusters', str(tmp_path / 'clusters.json'),
                          '--epochs', '2', '--rule', 'corrected']) == 0
    out = capsys.readouterr().out
    assert 'macro_f1' in out and 'matrices' in out
    m = pd.read_csv(tmp_path / 'out' / 'matrices' / 'macro_f1' / 'toybb1.csv').set_index(MATRIX_INDEX)
    r = pd.read_csv(tmp_path / 'out' / 'results' / 'toybb1.csv')
    v = r[(r.train == 'p') & (r.test == 'q') & (r.rule == 'corrected') & (r.metric == 'macro_f1')].value.item()
    assert m.loc['p', 'q'] == pytest.approx(v)
    with pytest.raises(SerevalError, match='does not exist'):
        train_command(['--backbone', 'toy/bb-1', '--out', str(tmp_path / 'nowhere')])
    assert len(summarize(r)) == 4
    assert list(summarize(r.iloc[:0]).columns) == list(summarize(r).columns)   # same columns with no rows
