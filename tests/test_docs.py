"""The documentation site: every notebook is a page of _quarto.yml, and nbdev's doc processing runs on every notebook.

Quarto itself cannot run here; what it renders is nbdev's processed notebooks (`make docs`), so that step is checked.
"""
import json, shutil, subprocess, sys
from pathlib import Path

import yaml

TOP = Path(__file__).resolve().parent.parent


def _pages(contents):
    for item in contents:
        if isinstance(item, str): yield item
        else: yield from _pages(item.get('contents', []))


def test_quarto_sidebar_lists_every_notebook_once():
    cfg = yaml.safe_load((TOP / '_quarto.yml').read_text())
    pages = list(_pages(cfg['website']['sidebar']['contents']))
    notebooks = sorted(p.name for p in (TOP / 'nbs').glob('*.ipynb'))
    assert sorted(pages) == notebooks, 'every notebook in nbs/ is a page of the site, and every page a notebook'
    assert cfg['execute']['enabled'] is False   # pages show their committed outputs


def test_every_notebook_has_a_title_and_prose():
    for p in sorted((TOP / 'nbs').glob('*.ipynb')):
        cells = json.loads(p.read_text())['cells']
        assert cells[0]['cell_type'] == 'markdown' and ''.join(cells[0]['source']).startswith('# '), f'{p.name}: no title'
        prose = sum(len(''.join(c['source'])) for c in cells if c['cell_type'] == 'markdown')
        assert prose > 300, f'{p.name}: the page explains too little ({prose} characters of prose)'


def test_nbdev_processes_every_notebook(tmp_path):
    for name in ('settings.ini', 'setup.py', 'nbs', 'sereval'):
        src = TOP / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    r = subprocess.run([sys.executable, '-c', 'from nbdev.serve import proc_nbs; proc_nbs(n_workers=2)'],
                       cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    done = sorted(p.name for p in (tmp_path / '_proc').glob('*.ipynb'))
    assert done == sorted(p.name for p in (TOP / 'nbs').glob('*.ipynb'))
