"""The documentation site and the package as installed: every notebook is a page of _quarto.yml, nbdev's doc processing
runs on every notebook, and a wheel carries every module and data file of the source tree.

Quarto itself cannot run here; what it renders is nbdev's processed notebooks (`make docs`), so that step is checked.
"""
import json, subprocess, sys, zipfile
from pathlib import Path

import pytest
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


def test_every_notebook_opens_with_a_title_and_its_step():
    for p in sorted((TOP / 'nbs').glob('*.ipynb')):
        cells = json.loads(p.read_text())['cells']
        first = ''.join(cells[0]['source']).strip().splitlines() if cells else []
        assert cells[0]['cell_type'] == 'markdown' and first and first[0].startswith('# '), f'{p.name}: no title'
        rest = first[1:]
        k = next((i for i, l in enumerate(rest) if l.strip()), None)
        one_line = k is not None and rest[k].startswith('> ') and (k + 1 == len(rest) or not rest[k + 1].strip())
        assert one_line, f'{p.name}: the title is followed by one `> ` line stating its step'
        prose = sum(len(''.join(c['source'])) for c in cells if c['cell_type'] == 'markdown')
        assert prose > 300, f'{p.name}: the page explains too little ({prose} characters of prose)'


def test_no_notebook_refers_outside_the_repository():
    for p in sorted((TOP / 'nbs').glob('*.ipynb')):
        assert '../shared' not in p.read_text(encoding='utf-8'), f'{p.name} refers to ../shared, outside the repository'


@pytest.mark.slow
def test_wheel_ships_the_package(wheel, wheel_site):
    "A wheel holds every module and data file of the source package, and the package imports from it."
    names = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith('sereval/')}
    source = {str(p.relative_to(TOP)) for p in (TOP / 'sereval').rglob('*')
              if p.is_file() and '__pycache__' not in p.parts and p.suffix != '.pyc'}
    assert names == source, f'only in the wheel: {sorted(names - source)}; missing from it: {sorted(source - names)}'
    code = "import sys, sereval; assert sereval.__file__.startswith(sys.argv[1]), sereval.__file__; print(sereval.__version__)"
    out = subprocess.run([sys.executable, '-c', code, str(wheel_site)], capture_output=True, text=True,
                         cwd=wheel_site.parent, env={'PYTHONPATH': str(wheel_site), 'PATH': '/usr/bin:/bin'})
    assert out.returncode == 0, out.stderr[-2000:]
    version = next(l.split('=', 1)[1].strip() for l in (TOP / 'settings.ini').read_text().splitlines() if l.startswith('version'))
    assert out.stdout.strip() == version
