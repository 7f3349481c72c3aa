"""Shared pytest set-up: the `slow` marker (the quick tier is `pytest -m 'not slow'`), and the package built as a wheel
once per session for the tests of what an installed (non-editable) sereval carries."""
import shutil, subprocess, sys, zipfile
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
PACKAGE_SOURCE = ('settings.ini', 'setup.py', 'MANIFEST.in', 'README.md', 'sereval')
"What a wheel is built from."

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes more than a few seconds (full demo, papermill, doc build, wheel build, '
                                      "subprocess kills); skipped by the quick tier `pytest -m 'not slow'`")


def _copy_source(dest: Path, names=PACKAGE_SOURCE) -> Path:
    "Copy the repository's `names` into `dest`, without caches or build leftovers."
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = TOP / name
        if src.is_dir(): shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns('__pycache__', '*.pyc', '.ipynb_checkpoints'))
        elif src.exists(): shutil.copy(src, dest / name)
    return dest


@pytest.fixture
def copy_source():
    "`copy_source(dest, names)`: the repository's files `names` copied into `dest` (no caches, no build leftovers)."
    return _copy_source


@pytest.fixture(scope='session')
def wheel(tmp_path_factory) -> Path:
    "The wheel of a clean copy of the source (built outside the checkout, so no stale build/ can leak into it). A failed build fails."
    tmp = tmp_path_factory.mktemp('wheel')
    src = _copy_source(tmp / 'src')
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', str(src), '--no-deps', '--no-build-isolation', '-q',
                        '-w', str(tmp / 'dist')], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f'the wheel does not build: {r.stderr[-2000:]}'
    whl, = (tmp / 'dist').glob('sereval-*.whl')
    return whl


@pytest.fixture(scope='session')
def wheel_site(wheel, tmp_path_factory) -> Path:
    "The wheel unpacked into a folder, as pip would install it: put it on PYTHONPATH to run the installed package."
    site = tmp_path_factory.mktemp('site')
    with zipfile.ZipFile(wheel) as z: z.extractall(site)
    return site
