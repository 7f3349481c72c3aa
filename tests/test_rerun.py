"""Issue 22: a rerun into an output folder gives what a clean run gives, whatever the folder held before; files follow
the umask; every option is checked before any work. Each test names the finding it guards."""
import hashlib, os, shutil, stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sereval.cli import main
from sereval.layout import Layout, write_text

BACKBONE = 'whisper-logmel'


def tree(root: Path, under=('matrices', 'results', 'tables')) -> dict[str, str]:
    "Relative path -> sha1 of every file under `root`'s result folders."
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for u in under for p in sorted((root / u).rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    from sereval.synth import make_demo, DEMO_CORPORA
    return make_demo(tmp_path_factory.mktemp('demo') / 'data', size=0.15, progress=False,
                     corpora=[c for c in DEMO_CORPORA if c.name in ('demo-emodb', 'demo-emovo')])


def copy_root(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst); return dst


def train(root, out, *extra) -> int:
    return main(['train', '--backbone', BACKBONE, '--data-root', str(root), '--out', str(out), '--epochs', '2',
                 '--seeds', '34', '--quiet', *extra])


# ---------------------------------------------------------------- files as the umask says

def test_atomic_write_follows_umask(tmp_path):
    "Finding: with umask 022 result files were mode 0600 (mkstemp's mode survived the rename)."
    old = os.umask(0o022)
    try:
        p = write_text(tmp_path / 'a' / 'x.txt', 'hi')
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        os.umask(0o077)
        q = write_text(tmp_path / 'y.txt', 'hi')
        assert stat.S_IMODE(q.stat().st_mode) == 0o600
    finally: os.umask(old)


# ---------------------------------------------------------------- the store follows the manifest

def _clips(root: Path, corpus: str) -> list[Path]:
    return sorted((root / corpus).rglob('*.wav'))


def test_store_follows_manifest_whatever_its_history(demo, tmp_path):
    "Finding: a store kept old rows and appended re-added clips at the end, so batches followed history, not the manifest."
    from sereval.embed import embed_corpus
    from sereval.recipes import scan_root
    from sereval.store import FRAMES, INDEX, open_store
    root = copy_root(demo, tmp_path / 'data')
    full, _ = scan_root(root, corpora=['demo-emodb'])
    assert len(full) > 6
    hist = tmp_path / 'hist'
    embed_corpus(full.iloc[3:], BACKBONE, hist, progress=False, verbose=False)   # first clips missing, then added back
    embed_corpus(full.iloc[::2], BACKBONE, hist, progress=False, verbose=False)  # some removed
    embed_corpus(full, BACKBONE, hist, progress=False, verbose=False)
    clean = tmp_path / 'clean'
    embed_corpus(full, BACKBONE, clean, progress=False, verbose=False)
    a, b = open_store(hist, BACKBONE, 'demo-emodb'), open_store(clean, BACKBONE, 'demo-emodb')
    assert list(a.index['clip_id']) == list(b.index['clip_id'])
    for name in (FRAMES, INDEX):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes(), name


def test_train_rerun_after_clips_removed_and_added_equals_clean_run(demo, tmp_path):
    "Finding: after clips were removed and added, `sereval train` into the same --out gave other numbers than a clean run."
    root = copy_root(demo, tmp_path / 'data')
    out = tmp_path / 'out'
    hidden = tmp_path / 'hidden'; hidden.mkdir()
    clips = _clips(root, 'demo-emodb')[:4]
    for c in clips: shutil.move(str(c), hidden / c.name)
    assert train(root, out) == 0
    for c in clips: shutil.move(str(hidden / c.name), c)
    assert train(root, out) == 0
    clean = tmp_path / 'clean'
    assert train(root, clean) == 0
    assert tree(out) == tree(clean)


def test_fewer_seeds_rerun_resumes_and_drops_stale_seed_files(demo, tmp_path):
    """Findings: `--seeds 34` after a run with more seeds failed on every rerun ("the training of [...] is not finished");
    going from three seeds to two left `matrices/seeds/36`."""
    out = tmp_path / 'out'
    assert train(demo, out, '--seeds', '34,35,36') == 0
    assert (out / 'matrices' / 'seeds' / '36').is_dir()
    assert train(demo, out, '--seeds', '34,35') == 0
    assert not (out / 'matrices' / 'seeds' / '36').exists()
    assert train(demo, out, '--seeds', '34') == 0
    assert train(demo, out, '--seeds', '34') == 0                 # and again: the rerun is not stuck
    clean = tmp_path / 'clean'
    assert train(demo, clean, '--seeds', '34') == 0
    assert tree(out) == tree(clean)


# ---------------------------------------------------------------- every option checked before any work or write

def one_line(err: str, command: str) -> str:
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith(('usage:', ' '))]   # argparse's usage lines
    assert len(lines) == 1 and lines[0].startswith(f'sereval {command}: error: ') and 'Traceback' not in err, err
    return lines[0]


@pytest.mark.parametrize('argv, says', [
    (['--seed', str(2**70)], 'seed'),                              # beyond 64 bits: torch's OverflowError before
    (['--epochs', str(10**12)], 'epochs'),
    (['--device', 'tpu'], '--device'),                             # accepted, then a RuntimeError after the scan before
    (['--seeds=-5,3'], 'seeds'),                                   # accepted before, while --seed -1 was refused
    (['--seeds', f'1,{2**64}'], 'seeds'),
    (['--folder', 'emodb=/nonexistent-i22'], 'does not exist'),   # "is empty" before
])
def test_train_options_checked_before_any_write(demo, tmp_path, capsys, argv, says):
    "Findings: --seed beyond 64 bits, --device other than cpu/cuda, negative --seeds were accepted (then a traceback or a wrong run)."
    out = tmp_path / 'out'
    assert main(['train', '--backbone', BACKBONE, '--data-root', str(demo), '--out', str(out), '--quiet', *argv]) == 2
    assert says in one_line(capsys.readouterr().err, 'train')
    assert not out.exists()


@pytest.mark.parametrize('argv, says', [
    (['--mem', 'abc'], '--mem'), (['--time', '-5'], '--time'), (['--cpus', '0'], '--cpus'), (['--gpus', '-1'], '--gpus'),
    (['--max-jobs', '0'], '--max-jobs'),                           # silently meant the default before
])
def test_slurm_options_checked_even_in_a_dry_run(tmp_path, capsys, argv, says):
    "Finding: Slurm options (--mem abc, --time -5, --cpus 0, --gpus -1) unchecked, even in a dry run; --max-jobs 0 meant the default."
    out = tmp_path / 'out'
    assert main(['reproduce', '--out', str(out), '--dry-run', '--quiet', *argv]) == 2
    assert says in one_line(capsys.readouterr().err, 'reproduce')
    assert not out.exists()


def test_dry_run_writes_nothing(tmp_path, capsys):
    "Finding: `--dry-run` wrote the demo corpora, the manifests and the jobs folder."
    out = tmp_path / 'out'
    assert main(['reproduce', '--out', str(out), '--dry-run', '--demo-size', '0.15']) == 0
    assert 'extract/' in capsys.readouterr().out               # the plan is still printed
    assert not out.exists()
    assert not list(Path(os.environ.get('TMPDIR', '/tmp')).glob('sereval-dry-run-*'))
