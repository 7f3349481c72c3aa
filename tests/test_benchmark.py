"One backbone's grid on existing stores: saved logits, results table, matrices (per rule) where the layout says, reuse, protocols."
import json

import numpy as np
import pandas as pd
import pytest

from sereval.benchmark import (LOGIT_COLUMNS, RESULT_COLUMNS, load_logits,
                               results_matrix, run_grid, summarize)
from sereval.errors import SerevalError
from sereval.layout import MATRIX_INDEX, Layout
from sereval.metrics import METRICS
from sereval.protocol import RULES
from sereval.store import write_store
from sereval.taxonomy import CLASSES
from sereval.testing import toy_frames
from sereval.protocol import TrainConfig

CFG = TrainConfig(epochs=3, lr=3e-3, batch_size=16)   # 40 training clips: the last incomplete batch is dropped, so 2 steps an epoch
CORPORA = {'toy1': (0, 1, 4, 5, 7), 'toy2': (0, 1, 5, 7), 'toy3': (0, 1, 4, 5, 6, 7), 'solo': (0, 1)}
CLUSTERS = {'c': ('toy1', 'toy2', 'toy3')}


def make_stores(out, corpora=CORPORA, n=50, seed=0):
    root = Layout(out).embeddings
    for i, (c, cls) in enumerate(corpora.items()):
        frames, starts, lengths, labels = toy_frames(n, dim=8, classes=cls, seed=seed + i, separation=1.5, means_seed=0)
        rows = [dict(clip_id=f'{c}-{j}', label=CLASSES[l], speaker=f's{j % 5}', checksum=str(j)) for j, l in enumerate(labels)]
        write_store(root, 'toy/bb-1', c, rows, [frames[s:s + k] for s, k in zip(starts, lengths)], frame_rate=50)


@pytest.fixture(scope='module')
def grid(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('grid')
    make_stores(tmp / 'out')
    res = run_grid('toy/bb-1', tmp / 'out', clusters=CLUSTERS, config=CFG, progress=False)
    return tmp, res


def test_results_table(grid):
    tmp, res = grid
    assert list(res.columns) == list(RESULT_COLUMNS)
    on_disk = pd.read_csv(Layout(tmp / 'out').results('toybb1'))
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
        for p in [Layout(tmp / 'out').matrix(metric, 'toybb1', r) for r in (None, *RULES)]:
            m = pd.read_csv(p)
            assert list(m.columns) == [MATRIX_INDEX, 'solo', 'toy1', 'toy2', 'toy3']
            assert m[MATRIX_INDEX].tolist() == ['solo', 'toy1', 'toy2', 'toy3']
            m = m.set_index(MATRIX_INDEX)
            assert m.loc['solo', ['toy1', 'toy2', 'toy3']].isna().all() and m.loc['toy1', 'solo'] != m.loc['toy1', 'solo']
            assert np.isfinite(np.diag(m.loc[:, m.index].to_numpy())).all()
    main = Layout(tmp / 'out').matrix('macro_f1', 'toybb1')
    assert main.read_bytes() == Layout(tmp / 'out').matrix('macro_f1', 'toybb1', 'paper').read_bytes()
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
    run = json.loads(Layout(tmp / 'out').run_state('toybb1', 'toy1').read_text())
    assert run['config'] == CFG.to_dict() and run['protocol'] == 'random' and set(run['logits']) == {'toy1', 'toy2', 'toy3'}
    with pytest.raises(SerevalError): load_logits(tmp / 'out', 'toy/bb-1', 'toy1', 'solo')


def test_rerun_reuses_and_changes_retrain(grid, tmp_path):
    tmp, res = grid
    model = Layout(tmp / 'out').model('toybb1', 'toy1')
    stamp = model.stat().st_mtime_ns
    again = run_grid('toy/bb-1', tmp / 'out', clusters=CLUSTERS, config=CFG, progress=False)
    pd.testing.assert_frame_equal(again, res)
    assert model.stat().st_mtime_ns == stamp
    # another seed is another run
    other = run_grid('toy/bb-1', tmp / 'out', corpora=['toy1'], clusters=CLUSTERS,
                     config=TrainConfig(epochs=3, lr=3e-3, seed=7), progress=False)
    assert model.stat().st_mtime_ns != stamp
    assert set(other.train) == {'toy1'}


def test_speaker_protocol_and_manifest_priors(tmp_path):
    make_stores(tmp_path / 'out', {'a': (0, 1, 5), 'b': (0, 1, 5, 7)})
    # a manifest for 'b' with another class balance: its priors come from there
    Layout(tmp_path / 'out').manifests.mkdir(parents=True)
    pd.DataFrame({'path': [f'/x/{i}.wav' for i in range(10)], 'corpus': 'b', 'label': ['anger'] * 9 + ['neutral'],
                  'speaker': 's'}).to_parquet(Layout(tmp_path / 'out').manifest('b'))
    res = run_grid('toy/bb-1', tmp_path / 'out', clusters={'k': ('a', 'b')}, config=CFG, protocol='speaker', progress=False)
    assert set(res.protocol) == {'speaker'}
    logits = load_logits(tmp_path / 'out', 'toy/bb-1', 'a', 'a')
    spk = logits.clip_id.str.split('-').str[1].astype(int) % 5
    assert not set(spk[logits.split == 'test']) & set(spk[logits.split == 'train'])
    run = json.loads(Layout(tmp_path / 'out').run_state('toybb1', 'a').read_text())
    assert run['priors']['b'][CLASSES.index('anger')] == pytest.approx(0.9)


def test_bad_input(tmp_path):
    out = tmp_path / 'out'
    make_stores(out, {'a': (0, 1)})
    with pytest.raises(SerevalError, match='no embedding store'):
        run_grid('toy/bb-1', out, corpora=['zzz'], progress=False)
    with pytest.raises(SerevalError, match='no embedding stores'):
        run_grid('other', out, progress=False)
    with pytest.raises(SerevalError, match='unknown rule'): run_grid('toy/bb-1', out, rule='bayes', progress=False)
    with pytest.raises(SerevalError, match='unknown protocol'): run_grid('toy/bb-1', out, protocol='x', progress=False)
    meta = Layout(out).store('toybb1', 'a') / 'meta.json'
    m = json.loads(meta.read_text()); m['complete'] = False; meta.write_text(json.dumps(m))
    with pytest.raises(SerevalError, match='not complete'):
        run_grid('toy/bb-1', out, corpora=['a'], progress=False)


def test_no_temporary_files_left(grid):
    "Every file of the run went through the atomic writer: no temporary sibling is left behind."
    tmp, _ = grid
    assert not [p for p in (tmp / 'out').rglob('*.tmp')]


def test_summarize(grid):
    _, res = grid
    s = summarize(res)
    assert len(s) == 1 + len(RULES) and s.pairs.tolist()[0] == len(CORPORA)
    assert list(summarize(res.iloc[:0]).columns) == list(s.columns)   # same columns with no rows
