"""sereval.paper: the shipped data file is what the project's code builds from the published matrices,
it holds exactly the published numbers, and it is installed (with the papermill notebooks) by a non-editable (wheel) install."""
import csv, math, subprocess, sys, zipfile
from pathlib import Path

import pytest

from sereval import backbones as B, paper as P
from sereval.backbones import backbone_slug
from sereval.layout import MATRIX_INDEX

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = REPO/'..'/'shared'/'paper'/'published_matrices'
needs_published = pytest.mark.skipif(not PUBLISHED.is_dir(), reason='../shared/paper/published_matrices not present')


@needs_published
def test_shipped_file_is_a_rebuild(tmp_path):
    P.build_paper_results(PUBLISHED, tmp_path/'rebuilt.csv')
    assert (tmp_path/'rebuilt.csv').read_bytes() == (REPO/'sereval'/'data'/P.RESULTS_FILE).read_bytes()


@needs_published
def test_every_published_cell_round_trips():
    "Read every published file with the csv module and compare each cell with load_paper_matrix."
    n = 0
    for folder in sorted(PUBLISHED.iterdir()):
        metric = folder.name.removeprefix('valid_')
        for f in sorted(folder.glob('*.csv')):
            mat = P.load_paper_matrix(metric, f.stem)
            with open(f, newline='') as fh:
                rows = list(csv.reader(fh))
            header = rows[0]
            assert header[0] == MATRIX_INDEX
            for row in rows[1:]:
                for test, cell in zip(header[1:], row[1:]):
                    ours = mat.at[row[0].lower(), test.lower()]
                    if cell == '':
                        assert math.isnan(ours)
                    else:
                        assert ours == float(cell), (f, row[0], test); n += 1
    assert n == 7 * 11 * 95


def test_loader_layout():
    m = P.load_paper_matrix('macro_f1', 'openai/whisper-large-v3')
    assert m.index.name == MATRIX_INDEX and list(m.index) == list(m.columns) == list(P.PAPER_CORPORA)
    assert m.loc['emodb', 'emodb'] == 0.96733
    assert set(P.paper_results().backbone) == set(P.PAPER_BACKBONES) | set(P.EXTRA_BACKBONES)
    assert P.PAPER_BACKBONES == tuple(backbone_slug(b) for b in B.PAPER_BACKBONES)   # the registry's ten, Table 2 order


@pytest.mark.slow
def test_wheel_ships_the_data(tmp_path):
    "A non-editable install (a wheel) carries sereval/data and load_paper_matrix works from it."
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', str(REPO), '--no-deps', '--no-build-isolation', '-q',
                        '-w', str(tmp_path/'w')], capture_output=True, text=True)
    assert r.returncode == 0, f'the wheel does not build: {r.stderr[-600:]}'
    whl = next((tmp_path/'w').glob('sereval-*.whl'))
    names = zipfile.ZipFile(whl).namelist()
    assert 'sereval/data/paper_results.csv' in names
    assert 'sereval/data/notebooks/20_run_backbone.ipynb' in names and 'sereval/data/notebooks/21_tables_and_figures.ipynb' in names
    target = tmp_path/'site'
    with zipfile.ZipFile(whl) as z: z.extractall(target)
    code = ("import sereval.paper as P, sereval.reproduce as R, sys; m = P.load_paper_matrix('accuracy', 'microsoftwavlmlarge'); "
            "assert P.__file__.startswith(sys.argv[1]), P.__file__; "
            "nb = R.find_notebook(R.RUN_NOTEBOOK); assert str(nb).startswith(sys.argv[1]) and nb.exists(), nb; "
            "print(m.shape, len(P.paper_backbone_slugs(include_extra=True)))")
    out = subprocess.run([sys.executable, '-c', code, str(target)], capture_output=True, text=True, cwd=tmp_path,
                         env={'PYTHONPATH': str(target), 'PATH': '/usr/bin:/bin'})
    assert out.returncode == 0, out.stderr
    assert '(19, 19) 11' in out.stdout
