"""sereval.results across modules: clip durations and feature sizes come from the embedding stores (never from
decoding audio or building an encoder), what a run was comes from its record, and the comparison with the paper lines
up our cells with the published ones."""
import numpy as np
import pandas as pd
import pytest

from sereval import paper as P
from sereval.layout import MATRIX_INDEX
from sereval.errors import SerevalError
from sereval.layout import Layout, write_frame, write_record, read_record
from sereval.results import (TABLE_METRICS, backbone_facts, compare_with_paper, corpus_table, read_manifests,
                             read_matrices, run_records, store_seconds)
from sereval.store import write_store
from sereval.testing import fake_run


def test_durations_and_dims_from_the_stores(tmp_path):
    "An unregistered backbone: Table 2 takes its dim and frame rate, Table 1 its hours, from the store."
    out = fake_run(tmp_path/'run', backbones=('my-own-model',), corpora=('alpha', 'beta'), cluster=('alpha', 'beta'))
    lengths = {'alpha': [100, 250, 50], 'beta': [400]}                  # frames at 25 frames/s: 16 s and 16 s
    for c, ns in lengths.items():
        write_store(Layout(out).embeddings, 'my-own-model', c,
                    [dict(clip_id=f'{c}{i}', label='anger', duration=n / 25) for i, n in enumerate(ns)],
                    [np.zeros((n, 12), np.float16) for n in ns], frame_rate=25)
        write_frame(Layout(out).manifest(c), pd.DataFrame({'path': [f'/x/{c}/{i}.wav' for i in range(len(ns) + 1)],
                                                           'corpus': c, 'label': 'anger', 'speaker': 's'}))
    records = run_records(out)
    secs = store_seconds(out, records)
    assert {c: s.sum() for c, s in secs.items()} == {'alpha': 16.0, 'beta': 16.0}
    t1 = corpus_table(read_manifests(out, ['alpha', 'beta']), secs)
    assert t1.hours.tolist() == [16 / 3600] * 2 and t1.hours_note.str.contains('3 of 4').tolist() == [True, False]
    t2 = backbone_facts(list(records), records, out)
    assert t2.name.tolist() == ['my-own-model'] and t2.feature_dim.tolist() == [12] and t2.frame_rate_hz.tolist() == [25]


def test_matrix_of_an_unfinished_run(tmp_path):
    out = fake_run(tmp_path/'run', backbones=('egemaps',))
    Layout(out).matrix('accuracy', 'egemaps').unlink()
    with pytest.raises(SerevalError, match='did not finish'): read_matrices(out, 'accuracy')
    rec = read_record(out, 'egemaps')
    write_record(out, type(rec)(**{**rec.to_dict(), 'slug': 'other'}))   # a record without matrices
    with pytest.raises(SerevalError, match='other'): read_matrices(out)


def test_comparison_with_the_paper(tmp_path):
    "A rerun of a paper backbone on two of the paper's corpora: every cell is ours - the paper's."
    out = fake_run(tmp_path/'run', backbones=('openai/whisper-large-v3',), corpora=('emodb', 'resd', 'casia'),
                   cluster=('emodb', 'resd'))
    cmp = compare_with_paper(out, 'openaiwhisperlargev3')
    assert set(cmp.metric) == set(TABLE_METRICS) & set(P.PAPER_METRICS)
    ours = read_matrices(out, 'macro_f1')['openaiwhisperlargev3']
    pub = P.load_paper_matrix('macro_f1', 'openaiwhisperlargev3')
    row = cmp[(cmp.metric == 'macro_f1') & (cmp.train == 'emodb') & (cmp.test == 'resd')].iloc[0]
    assert row.ours == ours.at['emodb', 'resd'] and row.paper == pub.at['emodb', 'resd'] == 0.19938
    assert row['diff'] == pytest.approx(row.ours - row.paper)
    assert ours.index.name == MATRIX_INDEX
    # the paper's cells outside our corpora are not ours to compare
    assert set(cmp.train) == {'emodb', 'resd', 'casia'}
