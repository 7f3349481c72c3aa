"""Shared pytest set-up: the `slow` marker (the quick tier is `pytest -m 'not slow'`), the test files in the order
that packs two workers best (the heaviest first), runs shared by every test and worker that needs them, and the package
built as a wheel once per session for the tests of what an installed (non-editable) sereval carries."""
import shutil, subprocess, sys, zipfile
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
PACKAGE_SOURCE = ('settings.ini', 'setup.py', 'MANIFEST.in', 'README.md', 'sereval')
"What a wheel is built from."

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes more than a few seconds (full demo, papermill, doc build, wheel build, '
                                      "subprocess kills); skipped by the quick tier `pytest -m 'not slow'`")


# The files that take longest, longest first (worker-seconds of a fresh-clone `make test` on a loaded 2-core machine,
# issue 27: test_rerun 585, test_slurm 323, test_reproduce 162, test_site 153, test_emobox 92, test_executors 92,
# test_benchmark_demo 82, test_reliability 80, test_report_reader 63, test_progress 52, test_ct2whisper 52, ...).
# `--dist loadfile --no-loadscope-reorder` (the Makefile) hands files to the two workers in this order, so the long ones
# start at once and the short ones fill the gaps (both workers busy 96 % of that run); without it xdist orders files
# by their number of tests, which put two-test files such as test_slurm.py last, alone on one worker at the end.
HEAVY_FIRST = ('test_rerun.py', 'test_slurm.py', 'test_reproduce.py', 'test_site.py', 'test_emobox.py', 'test_executors.py',
               'test_benchmark_demo.py', 'test_reliability.py', 'test_layersweep.py', 'test_rerun_round6.py',
               'test_report_reader.py', 'test_progress.py',
               'test_ct2whisper.py', 'test_synth.py')

def pytest_collection_modifyitems(config, items):
    "The heavy files of `HEAVY_FIRST` first, in its order, then the others as collected; the tests of a file keep their order."
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope='session')
def shared_run(tmp_path_factory, request):
    """`shared_run(name, make)`: the folder `make(folder)` wrote, made once per test session and shared by every test and
    every xdist worker that asks for `name` (a file lock in the session's temporary root; each worker is a process).
    The folder is read-only to its users: a test that changes a run copies it first."""
    from filelock import FileLock
    root = tmp_path_factory.getbasetemp()
    if hasattr(request.config, 'workerinput'): root = root.parent        # xdist: pytest-N/popen-gwK -> pytest-N, shared
    def get(name: str, make) -> Path:
        folder, done = root / f'shared-{name}', root / f'shared-{name}.done'
        with FileLock(str(root / f'shared-{name}.lock')):
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)        # an earlier attempt that failed part-way
                make(folder)
                done.touch()
        return folder
    return get


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
