"""Fault suite (issue 16): bad input and faults end in one clear line and a non-zero exit, never a silent wrong result,
lost work, a hang or a raw traceback. One test (or a few) per defect; the subprocess and kill tests are `slow`."""
import errno, hashlib, os, signal, subprocess, sys, threading, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sereval.cli import main
from sereval.errors import SerevalError
from sereval.layout import Layout

TOP = Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'PYTHONPATH': str(TOP), 'OMP_NUM_THREADS': '1'}
SERVAL = [sys.executable, '-c', 'import sys; from sereval.cli import main; sys.exit(main())']


def one_line_error(err: str, command: str) -> str:
    "The stderr of a failed command: exactly one line, `sereval <command>: error: ...`, no traceback."
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(f'sereval {command}: error: ') and 'Traceback' not in err, err
    return lines[0]


def tree(root: Path) -> dict[str, str]:
    "Relative path -> sha1 of every file under `root`."
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob('*')) if p.is_file()}


def emodb_corpus(folder: Path, n: int = 6) -> Path:
    "A tiny EmoDB-named corpus: `n` one-second clips of noise."
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        sf.write(folder / f'{3 + i % 2:02d}a{i:02d}{"WTNFAE"[i % 6]}a.wav', rng.standard_normal(16000).astype(np.float32) * 0.1, 16000)
    return folder


# ---------------------------------------------------------------- Ctrl-C inside openSMILE's callback

def test_egemaps_interrupt_in_callback_is_not_swallowed():
    "A SIGINT that lands inside openSMILE's frame callback stops the encoding (before: swallowed, a frame lost, exit 0)."
    from sereval.backbones import get_backbone
    enc = get_backbone('egemaps')
    Smile = type(enc.smile)
    sink = Smile.__dict__['_sink_callback']
    def interrupting(y, starts, ends):
        cb, n = sink.__func__(y, starts, ends), [0]
        def inner(data, meta):
            n[0] += 1
            if n[0] == 5: signal.raise_signal(signal.SIGINT)
            cb(data, meta)
        return inner
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    clean = enc.encode([wave])[0]
    Smile._sink_callback = staticmethod(interrupting)
    try:
        with pytest.raises(KeyboardInterrupt): enc.encode([wave])
    finally: Smile._sink_callback = sink
    np.testing.assert_array_equal(enc.encode([wave])[0], clean)


@pytest.mark.slow
def test_sigint_during_egemaps_extraction_commits_nothing_wrong(tmp_path):
    "Ctrl-C during `sereval embed --backbone egemaps`: exit 130, store not complete; the rerun equals an uninterrupted run."
    from sereval.store import open_store
    corpus = emodb_corpus(tmp_path / 'root' / 'emodb', n=80)   # enough clips that the signal lands mid-run, even under load
    args = ['embed', '--backbone', 'egemaps', '--data-root', str(corpus.parent), '--commit-every', '1', '--quiet']
    p = subprocess.Popen(SERVAL + args + ['--out', str(tmp_path / 'cut')], env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    idx = tmp_path / 'cut' / 'embeddings' / 'egemaps' / 'emodb' / 'index.parquet'
    t0 = time.time()
    while not idx.exists() and time.time() - t0 < 120 and p.poll() is None: time.sleep(0.05)
    time.sleep(0.1); p.send_signal(signal.SIGINT)   # while clips are being encoded (mostly inside openSMILE)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, err[-2000:])
    assert 'interrupted' in err and 'Traceback' not in err
    assert not open_store(tmp_path / 'cut' / 'embeddings', 'egemaps', 'emodb').complete
    assert subprocess.run(SERVAL + args + ['--out', str(tmp_path / 'cut')], env=ENV, capture_output=True).returncode == 0
    assert subprocess.run(SERVAL + args + ['--out', str(tmp_path / 'whole')], env=ENV, capture_output=True).returncode == 0
    a, b = (open_store(tmp_path / o / 'embeddings', 'egemaps', 'emodb') for o in ('cut', 'whole'))
    assert a.complete and len(a) == len(b) == 80
    for cid in b.index['clip_id']: np.testing.assert_array_equal(a.clip_by_id(cid), b.clip_by_id(cid))


# ---------------------------------------------------------------- symbolic links

def test_symlink_loops_end_and_each_file_is_one_clip(tmp_path):
    "Two link loops, a link up to the data root, a linked file and a broken link: each real file once, every link reported."
    from sereval.recipes import get_recipe
    from sereval.corpora import scan_folder
    corpus = emodb_corpus(tmp_path / 'root' / 'emodb')
    n = len(list(corpus.glob('*.wav')))
    (corpus / 'sub').mkdir()
    os.symlink('..', corpus / 'sub' / 'loop_a')
    os.symlink('../sub', corpus / 'sub' / 'loop_b')
    os.symlink('..', corpus / 'up')                         # the data root, which holds the corpus itself
    first = sorted(corpus.glob('*.wav'))[0].name
    os.symlink(first, corpus / '99a09Wz.wav')
    os.symlink('missing.wav', corpus / '98a09Wz.wav')
    result = {}
    t = threading.Thread(target=lambda: result.update(df=scan_folder(corpus, get_recipe('emodb'))), daemon=True)
    t.start(); t.join(60)
    assert not t.is_alive(), 'the scan hangs on symbolic link loops'
    df = result['df']
    assert len(df) == n and df['relpath'].is_unique
    assert len({os.path.realpath(p) for p in df['path']}) == n
    reasons = ' | '.join(df.attrs['skipped']['reason'])
    assert reasons.count('symbolic link loop') == 3, reasons
    assert f'same file as {first}' in reasons and 'broken symbolic link' in reasons


# ---------------------------------------------------------------- the demo resumes after an interruption

def _stop_at(monkeypatch, n: int, exc: BaseException):
    "Make the demo writer fail with `exc` when it renders its `n`-th clip."
    import sereval.synth as S
    real, count = S.render_clip, [0]
    def render(*a, **k):
        count[0] += 1
        if count[0] == n: raise exc
        return real(*a, **k)
    monkeypatch.setattr(S, 'render_clip', render)
    return lambda: monkeypatch.setattr(S, 'render_clip', real)


@pytest.mark.slow
def test_demo_resumes_after_an_interrupted_synthesis(tmp_path, monkeypatch):
    from sereval.pipeline import demo_root
    from sereval.recipes import scan_root
    from sereval.synth import make_demo
    whole = make_demo(tmp_path / 'whole', size=0.05, progress=False)
    out = tmp_path / 'out'
    undo = _stop_at(monkeypatch, 10, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt): demo_root(out, size=0.05, quiet=True)
    undo()
    with pytest.raises(SerevalError, match='still being written'): scan_root(Layout(out).demo_corpora)
    assert demo_root(out, size=0.05, quiet=True) == Layout(out).demo_corpora     # before: "not a sereval demo root"
    assert tree(Layout(out).demo_corpora) == tree(whole)


@pytest.mark.slow
def test_demo_interrupted_regeneration_at_another_size_is_not_reused(tmp_path, monkeypatch, capsys):
    from sereval.pipeline import demo_root
    from sereval.synth import make_demo
    whole = make_demo(tmp_path / 'whole', size=0.05, progress=False)
    out = tmp_path / 'out'
    demo_root(out, size=0.05, quiet=True)
    undo = _stop_at(monkeypatch, 10, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt): demo_root(out, size=0.1, quiet=True)   # regeneration at another size, cut
    undo()
    capsys.readouterr()
    demo_root(out, size=0.05)                                                     # before: "reusing" a half-deleted demo
    assert 'reusing' not in capsys.readouterr().out
    assert tree(Layout(out).demo_corpora) == tree(whole)


@pytest.mark.slow
def test_full_disk_during_synthesis_is_one_line_and_resumable(tmp_path, monkeypatch, capsys):
    "ENOSPC while writing a clip (injected): one line naming the file and the cause, exit 1; the rerun completes."
    from sereval.synth import make_demo
    real, count = Path.write_bytes, [0]
    def full(self, data):
        count[0] += 1
        if count[0] == 7: raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data)
    monkeypatch.setattr(Path, 'write_bytes', full)
    out = tmp_path / 'demo'
    assert main(['synth', str(out), '--size', '0.05', '--quiet']) == 1
    line = one_line_error(capsys.readouterr().err, 'synth')
    assert 'No space left on device' in line and str(out) in line and '.wav' in line
    monkeypatch.setattr(Path, 'write_bytes', real)
    assert main(['synth', str(out), '--size', '0.05', '--quiet']) == 0
    assert tree(out) == tree(make_demo(tmp_path / 'whole', size=0.05, progress=False))


@pytest.fixture
def tiny_tmpfs(tmp_path):
    "A 1 MB tmpfs (root only): a real full disk."
    if os.geteuid() != 0: pytest.skip('mounting a tmpfs needs root')
    mnt = tmp_path / 'small'; mnt.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(mnt)], capture_output=True).returncode:
        pytest.skip('cannot mount a tmpfs here')
    yield mnt
    subprocess.run(['umount', '-l', str(mnt)], capture_output=True)


@pytest.mark.slow
def test_real_full_disk_during_synthesis(tiny_tmpfs):
    r = subprocess.run(SERVAL + ['synth', str(tiny_tmpfs / 'demo'), '--quiet'], env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1
    line = one_line_error(r.stderr, 'synth')
    assert 'No space left on device' in line and str(tiny_tmpfs) in line


@pytest.mark.slow
def test_demo_killed_during_synthesis_resumes_identically(tmp_path):
    "kill -9 while `sereval synth` writes the corpora; the rerun gives the files of an uninterrupted run."
    from sereval.synth import make_demo
    out = tmp_path / 'demo'
    p = subprocess.Popen(SERVAL + ['synth', str(out), '--size', '0.3', '--quiet'], env=ENV)
    t0 = time.time()
    while len(list(out.rglob('*.wav'))) < 20 and time.time() - t0 < 120: time.sleep(0.02)
    p.kill(); p.wait()
    r = subprocess.run(SERVAL + ['synth', str(out), '--size', '0.3', '--quiet'], env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert tree(out) == tree(make_demo(tmp_path / 'whole', size=0.3, progress=False))


# ---------------------------------------------------------------- manifests

@pytest.mark.parametrize('kind', ['garbage.csv', 'garbage.parquet', 'truncated.csv', 'blank_corpus.csv', 'bad_label.csv'])
def test_damaged_manifest_is_an_error_naming_it(tmp_path, capsys, kind):
    from sereval.corpora import write_manifest
    corpus = emodb_corpus(tmp_path / 'root' / 'emodb')
    assert main(['scan', str(corpus.parent), '--out', str(tmp_path / 'm.csv')]) == 0
    text = (tmp_path / 'm.csv').read_bytes()
    bad = tmp_path / kind
    if kind.startswith('garbage'): bad.write_bytes(np.random.default_rng(0).bytes(3000))
    elif kind == 'truncated.csv': bad.write_bytes(text[:len(text) - 7])
    else:
        df = pd.read_csv(tmp_path / 'm.csv', dtype=str, keep_default_na=False)
        df.loc[2, 'corpus' if kind == 'blank_corpus.csv' else 'label'] = '' if kind == 'blank_corpus.csv' else 'joy'
        df.to_csv(bad, index=False)
    capsys.readouterr()
    out = tmp_path / 'out'
    assert main(['embed', '--backbone', 'egemaps', '--manifest', str(bad), '--out', str(out), '--quiet']) == 2
    line = one_line_error(capsys.readouterr().err, 'embed')
    assert str(bad) in line and 'UnicodeDecodeError' not in line.split(':', 3)[1]
    assert not out.exists()


def test_manifest_write_cut_by_a_full_disk_leaves_no_file(tmp_path, monkeypatch):
    "A manifest is written complete or not at all: a write that fails half-way leaves neither the file, a temporary nor an empty folder."
    from sereval.corpora import write_manifests
    from sereval.recipes import scan_root
    manifest, _ = scan_root(emodb_corpus(tmp_path / 'root' / 'emodb').parent)
    def half(self, path, *a, **k):
        Path(path).write_bytes(b'PAR1 half a file')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    monkeypatch.setattr(pd.DataFrame, 'to_parquet', half)
    with pytest.raises(OSError): write_manifests(manifest, tmp_path / 'out')
    assert not (tmp_path / 'out').exists()                          # nor the folders made for it


# ---------------------------------------------------------------- damaged stores and non-finite numbers

def _stores(root: Path, corpora=('a', 'b'), n: int = 12):
    from sereval.store import write_store
    rng = np.random.default_rng(0)
    for c in corpora:
        rows = [dict(clip_id=f'{c}{i}', label=('anger', 'sadness')[i % 2], speaker=f's{i % 3}') for i in range(n)]
        write_store(root, 'egemaps', c, rows, [rng.standard_normal((5, 4)).astype(np.float32) for _ in rows], 50)


@pytest.mark.parametrize('damage', ['meta.json', 'index.parquet'])
def test_damaged_store_is_an_error_not_a_skip(tmp_path, damage):
    from sereval.benchmark import run_grid
    from sereval.protocol import TrainConfig
    out = tmp_path / 'out'
    _stores(Layout(out).embeddings)
    (Layout(out).store('egemaps', 'b') / damage).unlink()
    with pytest.raises(SerevalError, match='damaged'):
        run_grid('egemaps', out, clusters={'c': ['a', 'b']}, config=TrainConfig(epochs=1), progress=False)
    assert not (out / 'matrices').exists() and not (out / 'results').exists()


def test_nan_frames_stop_the_run_before_the_matrices(tmp_path):
    from sereval.benchmark import run_grid
    from sereval.protocol import TrainConfig
    out = tmp_path / 'out'
    _stores(Layout(out).embeddings)
    frames = Layout(out).store('egemaps', 'b') / 'frames.f16'
    a = np.fromfile(frames, '<f2'); a[7] = np.nan; a.tofile(frames)
    with pytest.raises(SerevalError, match='non-finite') as e:
        run_grid('egemaps', out, clusters={'c': ['a', 'b']}, config=TrainConfig(epochs=1), progress=False)
    assert str(Layout(out).store('egemaps', 'b')) in str(e.value)
    assert not (out / 'matrices').exists() and not (out / 'results').exists()


# ---------------------------------------------------------------- numbers

@pytest.mark.parametrize('args', [
    ['train', '--epochs', '-5'], ['train', '--batch-size', '0'], ['train', '--lr', 'nan'], ['train', '--test-size', '1'],
    ['reproduce', '--epochs', '0'], ['reproduce', '--demo-size', '-1'], ['reproduce', '--jobs', '0'],
    ['reproduce', '--threads', '-2'], ['reproduce', '--demo-seed', '-1'], ['synth', '--size', '0'], ['synth', '--size', 'inf'],
    ['synth', '--seed', '-3'],
    ['embed', '--backbone', 'egemaps', '--batch-size', '0'], ['embed', '--backbone', 'egemaps', '--commit-every', '-1']])
def test_bad_numbers_are_one_line_and_create_nothing(tmp_path, capsys, args):
    root = emodb_corpus(tmp_path / 'root' / 'emodb').parent
    out = tmp_path / 'out'
    where = {'train': ['--backbone', 'egemaps', '--data-root', str(root), '--out', str(out)],
             'reproduce': ['--out', str(out)], 'synth': [str(out)], 'embed': ['--data-root', str(root), '--out', str(out)]}
    code = main(args + where[args[0]] + ['--quiet'])
    err = capsys.readouterr().err
    assert code == 2 and 'Traceback' not in err
    assert f'sereval {args[0]}: error: ' in err or f'error: argument {args[-2]}' in err, err
    assert not out.exists()


def test_library_reproduce_checks_numbers_before_writing(tmp_path):
    from sereval.reproduce import reproduce
    with pytest.raises(SerevalError, match='--demo-size'): reproduce(out=tmp_path / 'out', demo_size=-1, quiet=True)
    assert not (tmp_path / 'out').exists()


def test_backbone_typo_is_unknown_not_a_network_error(tmp_path, capsys):
    "A typo of a registered backbone answers at once with the closest names (before: 30 s of hub retries, 'couldn't connect')."
    root = emodb_corpus(tmp_path / 'root' / 'emodb').parent
    t = time.time()
    assert main(['embed', '--backbone', 'whisper-logmell', '--data-root', str(root), '--out', str(tmp_path / 'o'), '--quiet']) == 2
    line = one_line_error(capsys.readouterr().err, 'embed')
    assert "unknown backbone 'whisper-logmell'; did you mean 'whisper-logmel'" in line and time.time() - t < 20


# ---------------------------------------------------------------- operating-system errors

def test_out_that_is_a_file_or_under_a_file(tmp_path, capsys):
    root = emodb_corpus(tmp_path / 'root' / 'emodb').parent
    f = tmp_path / 'afile'; f.write_text('x')
    for out in (f, f / 'sub'):
        assert main(['train', '--backbone', 'egemaps', '--data-root', str(root), '--out', str(out), '--quiet']) == 1
        line = one_line_error(capsys.readouterr().err, 'train')
        assert str(f) in line and 'Not a directory' in line
        assert main(['synth', str(out), '--size', '0.05', '--quiet']) != 0
        one_line_error(capsys.readouterr().err, 'synth')
    assert f.read_text() == 'x'


@pytest.fixture
def read_only(tmp_path):
    "A read-only folder: a read-only tmpfs when root (root ignores permissions), else chmod 555."
    d = tmp_path / 'ro'; d.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', str(d)], capture_output=True).returncode:
            pytest.skip('root without mount: cannot make a read-only folder')
        yield d
        subprocess.run(['umount', '-l', str(d)], capture_output=True)
    else:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)


def test_read_only_output_folder(tmp_path, capsys, read_only):
    root = emodb_corpus(tmp_path / 'root' / 'emodb').parent
    assert main(['scan', str(root), '--out', str(read_only / 'manifests')]) == 1
    line = one_line_error(capsys.readouterr().err, 'scan')
    assert str(read_only) in line and ('Read-only' in line or 'Permission denied' in line)
    assert main(['synth', str(read_only / 'demo'), '--size', '0.05', '--quiet']) == 1
    one_line_error(capsys.readouterr().err, 'synth')
    assert list(read_only.iterdir()) == []


def test_unusable_device_and_report_of_a_file(tmp_path, capsys):
    "An unusable --device fails before the manifests are written; `report` on a file says it is a file."
    import torch
    if torch.cuda.is_available(): pytest.skip('CUDA is available here')
    root = emodb_corpus(tmp_path / 'root' / 'emodb').parent
    out = tmp_path / 'out'
    assert main(['train', '--backbone', 'egemaps', '--data-root', str(root), '--out', str(out), '--device', 'cuda', '--quiet']) == 2
    assert 'CUDA is not available' in one_line_error(capsys.readouterr().err, 'train') and not out.exists()
    (tmp_path / 'f').write_text('x')
    assert main(['report', '--out', str(tmp_path / 'f')]) == 2
    assert 'is a file' in one_line_error(capsys.readouterr().err, 'report')


def test_os_error_message_names_path_and_cause(monkeypatch, capsys):
    from sereval.cli import COMMANDS
    def full(a): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), '/data/out/x.parquet')
    monkeypatch.setattr(COMMANDS['backbones'], 'run', full)
    assert main(['backbones']) == 1
    line = one_line_error(capsys.readouterr().err, 'backbones')
    assert '/data/out/x.parquet: No space left on device (the disk is full' in line


# ---------------------------------------------------------------- reproduce without an out-of-domain pair

@pytest.mark.slow
def test_tables_notebook_without_ood_pair(tmp_path):
    "The report notebook on a run whose corpora form no out-of-domain pair (one corpus; corpora of different clusters)."
    from sereval.reproduce import REPORT_NOTEBOOK, run_notebook
    from sereval.testing import fake_run
    for name, corpora in (('one', ('alpha',)), ('apart', ('alpha', 'beta'))):
        out = fake_run(tmp_path / name, corpora=corpora, cluster=())
        run_notebook(REPORT_NOTEBOOK, out / 'notebooks' / 'report.ipynb', dict(out=str(out), paper=False), cwd=out,
                     progress=False)
        assert (out / 'tables' / 'table3_results.md').exists()
        assert not (out / 'figures' / 'figure2_ood_by_train.png').exists()


def test_full_disk_during_a_store_commit_names_the_frames_file(tiny_tmpfs):
    "A real full disk while a commit appends frames: the error names frames.f16, and the clips committed before stay readable."
    from sereval.store import FRAMES, StoreWriter, open_store
    w = StoreWriter(tiny_tmpfs, 'bb', 'c', 64, 50.0)
    rng = np.random.default_rng(0)
    w.add(dict(clip_id='small', label='neutral'), rng.standard_normal((100, 64)).astype(np.float32))
    w.commit()                                                  # 12.8 kB: fits
    w.add(dict(clip_id='big', label='angry'), rng.standard_normal((20_000, 64)).astype(np.float32))   # 2.6 MB: does not
    with pytest.raises(OSError) as e: w.commit()
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(w.folder / FRAMES)
    assert 'frames.f16' in str(e.value)
    w.close()
    s = open_store(tiny_tmpfs, 'bb', 'c')
    assert list(s.index['clip_id']) == ['small'] and s.frames.shape == (100, 64)
