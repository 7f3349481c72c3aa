"""sereval reproduce end to end on a tiny demo, through papermill: every table and figure file exists, every number
is in range, a rerun reuses the embedding store and the finished training runs; the packaged notebooks are the
notebooks of nbs/."""
import json, os, subprocess, sys, time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from sereval import reproduce as RP

REPO = Path(__file__).resolve().parent.parent
BACKBONES = ('whisper-logmel', 'egemaps')


def _cells(path):
    nb = nbformat.read(str(path), as_version=4)
    return [(c.cell_type, c.source) for c in nb.cells]


@pytest.mark.parametrize('name', RP.NOTEBOOKS)
def test_packaged_notebooks_match_nbs(name):
    "sereval/data/notebooks/ (what a wheel runs) holds the same cells as nbs/; refresh with package_notebooks()."
    packaged = REPO/'sereval'/'data'/'notebooks'/name
    assert packaged.exists(), 'run: python -c "from sereval.reproduce import package_notebooks; package_notebooks()"'
    assert _cells(packaged) == _cells(REPO/'nbs'/name), \
        'packaged notebook out of date: python -c "from sereval.reproduce import package_notebooks; package_notebooks()"'
    tags = [c.metadata.get('tags', []) for c in nbformat.read(str(packaged), as_version=4).cells]
    assert sum('parameters' in t for t in tags) == 1


def test_find_notebook_fallback():
    assert RP.find_notebook(RP.RUN_NOTEBOOK) == REPO/'nbs'/RP.RUN_NOTEBOOK
    assert RP.find_notebook(RP.RUN_NOTEBOOK, prefer_checkout=False).parent.name == 'notebooks'


def _mtimes(folder, pattern):
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(Path(folder).rglob(pattern))}


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('reproduce')
    t = time.time()
    res = RP.reproduce(None, BACKBONES, out, epochs=3, demo_size=0.12, quiet=True)
    return out, res, time.time() - t


def test_every_file(demo_run):
    out, res, _ = demo_run
    slugs = ['whisperlogmel', 'egemaps']
    for t in ('table1_corpora', 'table2_backbones', 'table3_results'):
        for ext in ('csv', 'md'):
            assert (out/'tables'/f'{t}.{ext}').stat().st_size > 0, t
            assert (out/'paper'/'tables'/f'{t}.{ext}').stat().st_size > 0, t
    figs = ['figure2_ood_by_train', 'figure3_ood_by_test'] + [f'heatmap_{s}' for s in slugs]
    for f in figs:
        for ext in ('png', 'svg'):
            assert (out/'figures'/f'{f}.{ext}').stat().st_size > 1000, f
    for f in ['figure2_ood_by_train', 'figure3_ood_by_test', 'heatmap_openaiwhisperlargev3']:
        assert (out/'paper'/'figures'/f'{f}.png').exists()
    nbs = sorted(p.name for p in (out/'notebooks').glob('*.ipynb'))
    assert nbs == ['20_run_backbone_egemaps.ipynb', '20_run_backbone_whisperlogmel.ipynb', '21_tables_and_figures.ipynb']
    assert res['tables'] == out/'tables'


def test_numbers_in_range(demo_run):
    out, _, _ = demo_run
    t1 = pd.read_csv(out/'tables'/'table1_corpora.csv')
    assert len(t1) == 6 and (t1.clips > 0).all() and (t1.hours > 0).all() and (t1.classes.between(1, 8)).all()
    assert t1.synthetic.all()
    t2 = pd.read_csv(out/'tables'/'table2_backbones.csv')
    assert sorted(t2.slug) == ['egemaps', 'whisperlogmel'] and (t2.feature_dim > 0).all()
    t3 = pd.read_csv(out/'tables'/'table3_results.csv')
    assert set(t3.slug) == {'egemaps', 'whisperlogmel'}
    vals = t3[[c for c in t3 if c.endswith(('_id', '_ood')) and not c.startswith('n_')]].to_numpy(float)
    assert np.isfinite(vals).all() and ((vals >= 0) & (vals <= 1)).all()
    for f in ('figure2_ood_by_train', 'figure3_ood_by_test'):
        d = pd.read_csv(out/'figures'/f'{f}.csv', index_col=0)
        assert len(d) == 5 and d.shape[1] == 2          # 5 demo corpora in clusters, 2 backbones
        assert ((d.to_numpy() >= 0) & (d.to_numpy() <= 1)).all()
    for m in (out/'matrices'/'macro_f1').glob('*.csv'):
        v = pd.read_csv(m, index_col=0).to_numpy(float)
        v = v[~np.isnan(v)]
        assert len(v) == 6 + 2 + 6 and ((v >= 0) & (v <= 1)).all()   # 6 in-domain, 2 + 3*2 OOD pairs


def test_rerun_reuses_finished_steps(demo_run):
    out, _, first = demo_run
    frames = _mtimes(out/'embeddings', 'frames.f16')
    runs = _mtimes(out/'runs', '*.pt') or _mtimes(out/'runs', '*')
    corpora = _mtimes(out/'demo_corpora', '*.wav')
    assert frames and runs and corpora
    t = time.time()
    RP.reproduce(None, BACKBONES, out, epochs=3, demo_size=0.12, quiet=True)
    second = time.time() - t
    assert _mtimes(out/'embeddings', 'frames.f16') == frames, 'embeddings were recomputed'
    assert (_mtimes(out/'runs', '*.pt') or _mtimes(out/'runs', '*')) == runs, 'training runs were redone'
    assert _mtimes(out/'demo_corpora', '*.wav') == corpora, 'demo corpora were rewritten'
    print(f'first run {first:.1f} s, rerun {second:.1f} s')


def test_command_help():
    r = subprocess.run([sys.executable, '-c', 'import sys; from sereval.cli import main; sys.exit(main(["reproduce", "--help"]))'],
                       capture_output=True, text=True)
    assert r.returncode == 0 and '--data-root' in r.stdout and '--backbones' in r.stdout
