"""sereval.pipeline on a tiny demo: one call scans, embeds, trains, evaluates and writes the run record; the report then
reads what the run was from that record (its rule, its clusters), never from the numbers; every file is where the
layout says and complete."""
from dataclasses import replace

import pandas as pd
import pytest
from sereval.progress import progress_file

from sereval.errors import SerevalError
from sereval.layout import Layout, read_record
from sereval.metrics import METRICS
from sereval.pipeline import DEMO, demo_root, run_backbone
from sereval.protocol import RULES, load_clusters
from sereval.report import render_report
from sereval.results import read_matrices, run_clusters, run_records, table_rules

CFG = replace(DEMO.train, epochs=2)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "One weights-free backbone on a tenth of the demo, with the corrected rule as the run's rule."
    out = tmp_path_factory.mktemp('pipe')
    root = demo_root(out, size=0.1, quiet=True)
    run = run_backbone(DEMO.backbones[0], root, out, config=CFG, rule='corrected', progress=False)
    return out, root, run


def test_record_says_what_the_run_was(tiny):
    out, root, run = tiny
    rec = read_record(out, run.record.slug)
    assert rec == run.record
    assert rec.backbone == DEMO.backbones[0] and rec.rule == 'corrected' and rec.protocol == 'random'
    assert rec.train == CFG.to_dict() and rec.seeds == [CFG.seed]
    assert rec.clusters == {k: list(v) for k, v in load_clusters(root).items()}
    assert rec.corpora == sorted(run.manifest.corpus.unique()) and rec.data_root == str(root.resolve())


def test_report_reads_the_rule_and_clusters_from_the_record(tiny):
    "The demo's paper and corrected matrices can coincide; the report must still name the run's rule, 'corrected'."
    out, _, run = tiny
    records = run_records(out)
    assert table_rules(out, records)[0] == 'corrected' and set(table_rules(out, records)) == set(RULES)
    assert run_clusters(records.values()) == run.record.clusters
    L = Layout(out)
    for metric in METRICS:
        assert L.matrix(metric, run.record.slug).read_bytes() == L.matrix(metric, run.record.slug, 'corrected').read_bytes()
    render_report(out, paper=False, quiet=True)
    t3 = pd.read_csv(L.tables/'table3_results.csv')
    assert t3.rule.tolist()[0] == 'corrected' and t3.protocol.eq('random').all()
    t1 = pd.read_csv(L.tables/'table1_corpora.csv')
    assert t1.corpus.tolist() == run.record.corpora and (t1.hours > 0).all() and t1.hours_note.isna().all()
    t2 = pd.read_csv(L.tables/'table2_backbones.csv')
    assert t2.slug.tolist() == [run.record.slug] and t2.feature_dim.notna().all()


def test_every_file_is_complete_and_in_the_layout(tiny):
    out, _, run = tiny
    assert not list(out.rglob('*.tmp')), 'a temporary file of the atomic writer was left behind'
    L, s = Layout(out), run.record.slug
    top = {p.name for p in out.iterdir()}
    named = {p.relative_to(out).parts[0] for p in (L.manifests, L.embeddings, L.runs(s), L.results(s), L.matrix('x', s),
                                                  L.tables, L.figures, L.findings, progress_file(out, s))}
    assert top <= named | {'demo_corpora'}, top - named
    assert set(read_matrices(out)) == {s}


def test_bad_data_root(tmp_path):
    with pytest.raises(SerevalError):
        run_backbone(DEMO.backbones[0], tmp_path/'nowhere', tmp_path/'out', config=CFG, progress=False)
