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
    pytest.param(['--device', 'mps'], 'mps', marks=pytest.mark.skipif(
        __import__('torch').backends.mps.is_available(), reason='this torch has MPS')),   # round five: a traceback after embedding
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


# ---------------------------------------------------------------- signals

@pytest.mark.slow
def test_sigterm_stops_reproduce_like_ctrl_c(tmp_path):
    """Finding: SIGTERM to `sereval reproduce` (two jobs) exited 143 with no message and left two pool workers and the
    resource tracker alive. Now: one line, exit 143, every child process gone, and the rerun continues."""
    import signal, subprocess, sys, time
    psutil = pytest.importorskip('psutil')
    top = Path(__file__).resolve().parent.parent
    env = {**os.environ, 'PYTHONPATH': str(top), 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-c', 'import sys; from sereval.cli import main; sys.exit(main())', 'reproduce', '--out',
           str(tmp_path / 'out'), '--demo-size', '0.15', '--epochs', '2', '--seeds', '34', '--no-paper', '--quiet',
           '--corpora', 'demo-emodb,demo-emovo,demo-cafe']        # half the demo: the rerun is a whole run (issue 27, CI time)
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    kids = []
    while time.time() < deadline and p.poll() is None:     # wait until the pool's workers run
        kids = psutil.Process(p.pid).children(recursive=True)
        if len(kids) >= 3: break
        time.sleep(0.5)
    assert p.poll() is None and len(kids) >= 3, 'the run ended before its workers started'
    time.sleep(3)
    kids = psutil.Process(p.pid).children(recursive=True)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert lines and 'terminated' in lines[-1] and 'Traceback' not in err, err
    time.sleep(1)
    assert not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE], 'child processes left behind'
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)   # the rerun continues
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_reproduce_with_fewer_corpora_tables_only_the_run(tmp_path):
    """Finding: a rerun with fewer corpora left the old corpora's rows in `tables/leakage.md` (12 rows where a clean run
    has 6). Now every table of the rerun holds what a clean run of the same command holds, byte for byte."""
    base = ['reproduce', '--backbones', BACKBONE, '--demo-size', '0.15', '--epochs', '2', '--seeds', '34', '--no-paper',
            '--jobs', '1', '--quiet']
    out, clean = tmp_path / 'out', tmp_path / 'clean'
    assert main(base + ['--corpora', 'demo-emodb,demo-emovo,demo-cafe', '--out', str(out)]) == 0
    assert set(pd.read_csv(out / 'tables' / 'leakage.csv')['corpus']) >= {'demo-emodb', 'demo-emovo', 'demo-cafe'}
    few = ['--corpora', 'demo-emodb,demo-emovo']
    assert main(base + few + ['--out', str(out)]) == 0
    assert main(base + few + ['--out', str(clean)]) == 0
    assert set(pd.read_csv(out / 'tables' / 'leakage.csv')['corpus']) == {'demo-emodb', 'demo-emovo'}
    assert 'demo-cafe' not in (out / 'tables' / 'leakage.md').read_text()
    assert tree(out) == tree(clean)



@pytest.mark.slow
def test_report_of_one_corpus_and_two_backbones(tmp_path, capsys):
    """Finding: a reproduce with one corpus failed in the tables notebook ("the two backbones have no cell in common on
    the same clips": the paper's held-out clips depend on the feature width), and `sereval report` repeated it. Now the
    report renders what it can and says in one line why the pair is not tested."""
    out = tmp_path / 'out'
    assert main(['reproduce', '--out', str(out), '--corpora', 'demo-emodb', '--demo-size', '0.1', '--epochs', '2',
                 '--seeds', '34', '--no-paper', '--no-leakage', '--quiet']) == 0
    text = (out / 'tables' / 'paired_tests.md').read_text()
    assert 'no cell scored on the same clips' in text and '|' not in text          # the reason, no empty table
    assert (out / 'tables' / 'table3_results.md').exists()
    capsys.readouterr()
    assert main(['report', '--out', str(out), '--no-paper']) == 0
    assert 'no paired test of' in capsys.readouterr().out


# ---------------------------------------------------------------- audio checked, not trusted

def _wav(path: Path, rate=16000, bits=16, n=16000, declared=None, fmt=1) -> Path:
    "A hand-made WAV: a header of our choosing over `n` samples of noise."
    import struct
    x = (np.random.default_rng(0).standard_normal(n) * 0.1 * (2 ** (bits - 1) - 1 if fmt == 1 else 1))
    data = x.astype('<i2' if fmt == 1 else '<f4').tobytes()
    align = bits // 8 if bits % 8 == 0 else 1
    hdr = struct.pack('<4sI4s4sIHHIIHH4sI', b'RIFF', 36 + len(data), b'WAVE', b'fmt ', 16, fmt, 1, rate, rate * align, align,
                      bits, b'data', len(data) if declared is None else declared)
    path.write_bytes(hdr + data); return path


@pytest.mark.parametrize('make, says', [
    (lambda p: _wav(p, declared=100), 'no chunk'),                  # a 3 ms clip before
    (lambda p: _wav(p, rate=1, n=31), 'sample rate 1 Hz'),         # 31 samples read as 30 s before
    (lambda p: _wav(p, bits=7), '7-bit PCM'),                      # read as 8-bit noise before
])
def test_headers_that_contradict_the_file_are_refused(tmp_path, make, says):
    "Findings: a data chunk declaring 100 bytes in a 32 kB file, a 1 Hz header, a 7-bit PCM header were all read as audio."
    from sereval.audio import InvalidHeaderError, load_audio
    with pytest.raises(InvalidHeaderError, match=says): load_audio(make(tmp_path / 'x.wav'))


def test_a_well_formed_wav_with_trailing_chunks_still_loads(tmp_path):
    import soundfile as sf
    p = tmp_path / 'ok.wav'
    sf.write(p, np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.1, 16000)
    p.write_bytes(p.read_bytes() + b'LIST' + (4).to_bytes(4, 'little') + b'INFO')   # a trailing chunk, as many tools add
    from sereval.audio import load_audio
    assert len(load_audio(p)) == 8000


@pytest.mark.parametrize('peak', [1.8, 1e30])
def test_float_audio_beyond_full_scale_is_skipped_with_a_reason(tmp_path, peak):
    "Finding: a float WAV peaking at 1.8 wrapped in eGeMAPS's int16; samples of 1e30 passed with a NumPy warning."
    import soundfile as sf
    from sereval.audio import FloatRangeError, load_audio
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32); x[100] = peak
    sf.write(tmp_path / 'f.wav', x, 16000, subtype='FLOAT')
    with pytest.raises(FloatRangeError, match='beyond full scale'): load_audio(tmp_path / 'f.wav')


def test_egemaps_does_not_wrap_past_full_scale():
    "Finding: eGeMAPS scales by 32768 into int16, so a sample past full scale wrapped to the other sign."
    from sereval.backbones import get_backbone
    enc = get_backbone('egemaps')
    x = np.sin(np.linspace(0, 400 * np.pi, 16000)).astype(np.float32) * 1.3
    a, b = enc.encode([x])[0], enc.encode([np.clip(x, -1, 32767 / 32768)])[0]
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- meaningless results flagged

def test_one_emotion_corpus_is_flagged_not_trained(demo, tmp_path, capsys):
    "Finding: a corpus with one emotion reported in-domain macro F1 1.000."
    import json
    root = copy_root(demo, tmp_path / 'data')
    for p in (root / 'demo-emodb').rglob('*.wav'):
        if p.name[5] != 'W': p.unlink()                       # only anger left
    assert train(root, tmp_path / 'out') == 0
    rec = json.loads((tmp_path / 'out' / 'runs' / 'whisperlogmel' / 'record.json').read_text())
    assert 'emotion class' in rec['extra']['stores_skipped']['demo-emodb']
    res = pd.read_csv(tmp_path / 'out' / 'results' / 'whisperlogmel.csv')
    assert 'demo-emodb' not in set(res['train']) and 'demo-emovo' in set(res['train'])


# ---------------------------------------------------------------- damaged files in <out>

def test_damaged_head_and_logits_are_redone(demo, tmp_path, capsys):
    """Findings: a damaged `model.pt` raised an UnpicklingError suggesting weights_only=False; a truncated logits file
    raised ArrowInvalid. Now the rerun trains or predicts them again and ends where a clean run does."""
    out = tmp_path / 'out'
    assert train(demo, out) == 0
    run = out / 'runs' / 'whisperlogmel' / 'demo-emodb'
    (run / 'model.pt').write_bytes((run / 'model.pt').read_bytes()[:50])
    lg = out / 'runs' / 'whisperlogmel' / 'demo-emovo' / 'logits' / 'demo-emovo.parquet'
    lg.write_bytes(lg.read_bytes()[:100])
    capsys.readouterr()
    assert train(demo, out) == 0
    assert 'damaged' in capsys.readouterr().out
    clean = tmp_path / 'clean'
    assert train(demo, clean) == 0
    assert tree(out) == tree(clean)


def test_run_record_of_the_wrong_shape_is_named(tmp_path):
    "Finding: a run record of the wrong shape gave a TypeError after Table 1 was rewritten."
    import json
    from sereval.errors import SerevalError
    from sereval.layout import read_record
    p = Layout(tmp_path).record('x'); p.parent.mkdir(parents=True)
    p.write_text(json.dumps(dict(backbone='x', slug='x', corpora='demo-emodb', clusters={}, rule='paper', protocol='random',
                                 train={}, seeds=[34])))
    with pytest.raises(SerevalError, match='damaged.*corpora'): read_record(tmp_path, 'x')


def test_truncated_logits_named_in_one_line(tmp_path):
    from sereval.errors import SerevalError
    from sereval.layout import read_frame
    p = tmp_path / 'a.parquet'
    pd.DataFrame({'a': range(100)}).to_parquet(p); p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(SerevalError, match='damaged.*delete it and rerun'): read_frame(p, 'logits file')


# ---------------------------------------------------------------- smaller points

def test_report_refuses_an_empty_or_foreign_folder(tmp_path, capsys):
    "Finding: `sereval report` on an empty or foreign folder exited 0 and wrote 41 files."
    (tmp_path / 'foreign').mkdir(); (tmp_path / 'foreign' / 'notes.txt').write_text('mine')
    for d in ('foreign',):
        assert main(['report', '--out', str(tmp_path / d), '--no-paper']) == 2
        assert 'no run record' in one_line(capsys.readouterr().err, 'report')
    assert sorted(p.name for p in (tmp_path / 'foreign').iterdir()) == ['notes.txt']


def test_scan_out_with_a_trailing_slash_is_a_folder(demo, tmp_path, capsys):
    "Finding: `scan --out mydir.csv/` wrote a file named mydir.csv."
    out = tmp_path / 'mydir.csv'
    assert main(['scan', str(demo), '--corpora', 'demo-emodb', '--out', str(out) + '/']) == 0
    assert out.is_dir() and (out / 'manifests' / 'demo-emodb.parquet').exists()


def test_train_prints_its_scan_skips(demo, tmp_path, capsys):
    "Finding: `sereval train` never printed the files its scan skipped."
    root = copy_root(demo, tmp_path / 'data')
    (root / 'demo-emodb' / 'wav' / 'notaclip.wav').write_bytes(b'junk')
    assert train(root, tmp_path / 'out') == 0
    assert 'notaclip.wav' in capsys.readouterr().out


# ---------------------------------------------------------------- the property: a rerun equals a clean run

def _random_history(demo, tmp_path, seed: int, steps: int):
    """Run `steps` random `sereval train` commands into one folder, changing between them the corpora, the clips (removed,
    restored, rewritten), the seeds and the epochs; then the last command into an empty folder: both must hold the same bytes."""
    import soundfile as sf
    rng = np.random.default_rng(seed)
    root = copy_root(demo, tmp_path / 'data')
    hidden = tmp_path / 'hidden'; hidden.mkdir()
    out = tmp_path / 'out'
    corpora = ['demo-emodb', 'demo-emovo']
    for step in range(steps):
        for _ in range(int(rng.integers(0, 3))):                     # change some clips
            c = corpora[int(rng.integers(len(corpora)))]
            wavs = _clips(root, c)
            op = rng.choice(['remove', 'restore', 'rewrite'])
            if op == 'remove' and len(wavs) > 8:
                w = wavs[int(rng.integers(len(wavs)))]; (hidden / c).mkdir(exist_ok=True); shutil.move(str(w), hidden / c / w.name)
            elif op == 'restore' and (hidden / c).is_dir() and any((hidden / c).iterdir()):
                w = sorted((hidden / c).iterdir())[0]; shutil.move(str(w), next((root / c).rglob('*.wav')).parent / w.name)
            elif op == 'rewrite':
                w = wavs[int(rng.integers(len(wavs)))]; x, sr = sf.read(w); sf.write(w, x * 0.5, sr)
        pick = [c for c in corpora if rng.random() < 0.7] or corpora[:1]
        seeds = ','.join(map(str, sorted(rng.choice([34, 35, 36], size=int(rng.integers(1, 3)), replace=False))))
        cmd = ['--corpora', ','.join(pick), '--seeds', seeds, '--epochs', str(int(rng.integers(1, 3)))]
        assert train(root, out, *cmd) == 0, (step, cmd)
    clean = tmp_path / 'clean'
    assert train(root, clean, *cmd) == 0
    assert tree(out) == tree(clean), cmd


def test_rerun_history_equals_clean_run(demo, tmp_path):
    "The property, one short random history (the slow test below runs longer ones)."
    _random_history(demo, tmp_path, seed=1, steps=3)


@pytest.mark.slow
@pytest.mark.parametrize('seed', [2, 3, 4])
def test_rerun_histories_equal_clean_runs(demo, tmp_path, seed):
    _random_history(demo, tmp_path, seed=seed, steps=4)


# ---------------------------------------------------------------- round three, the remaining gaps

@pytest.mark.parametrize('argv', [
    ['reproduce', '--backbones', 'no-such-model', '--demo-size', '0.15'],                # the demo corpora were written first
    ['reproduce', '--backbones', 'whisper-logmel,./no/such/model-folder', '--demo-size', '0.15'],
    ['reproduce', '--clusters', 'no-such-clusters.json', '--demo-size', '0.15'],
    ['reproduce', '--clusters', 'no-such-clusters.json', '--dry-run'],
    ['train', '--backbone', 'no-such-model', '--data-root', '{demo}'],                    # scan and manifests written first
    ['train', '--backbone', 'egemaps', '--data-root', '{demo}', '--clusters', 'no-such-clusters.json'],
    ['sweep', '--backbone', 'no-such-model'],
])
def test_unknown_backbone_or_clusters_writes_nothing(demo, tmp_path, capsys, argv):
    "Finding: `reproduce --backbones no-such-model --out X` failed only in the run notebook, after writing X; every option is checked before any write."
    out = tmp_path / 'X'
    assert main([a.replace('{demo}', str(demo)) for a in argv] + ['--out', str(out), '--quiet']) == 2
    line = one_line(capsys.readouterr().err, argv[0])
    assert any(w in line for w in ('unknown backbone', 'no file or folder', '--clusters')), line
    assert not out.exists()


def test_different_training_setups_are_marked_where_compared(tmp_path):
    """Finding: a rerun of one backbone with `--epochs 5` over a run at `--epochs 3` put both into Table 3, the paired
    tests and the rankings with no note. Now every place that compares them names the setting and each backbone's value."""
    from dataclasses import replace
    from sereval.layout import read_record, write_record
    from sereval.report import render_report
    from sereval.testing import fake_run
    out = fake_run(tmp_path / 'run')
    render_report(out, paper=False, quiet=True)
    L = Layout(out)
    assert 'NOT TRAINED ALIKE' not in (L.tables / 'table3_results.md').read_text()        # trained alike: no mark
    rec = read_record(out, 'egemaps')
    write_record(out, replace(rec, train={**rec.train, 'epochs': rec.train['epochs'] + 2}))
    render_report(out, paper=False, quiet=True)
    for name in ('table3_results.md', 'table3_rules.md', 'rankings.md'):
        text = (L.tables / name).read_text()
        assert 'NOT TRAINED ALIKE' in text and f"epochs: {rec.train['epochs'] + 2} (eGeMAPS" in text.replace('egemaps', 'eGeMAPS'), name
    assert 'NOT TRAINED ALIKE' in L.findings.read_text()


def test_train_splits_writes_split_spreads(demo, tmp_path):
    "Issue 21: `--splits N` on `train` as on `reproduce`: N splits (split seeds --seed, --seed+1), their spreads in tables/splits.csv."
    out = tmp_path / 'out'
    assert train(demo, out, '--splits', '2', '--corpora', 'demo-emodb') == 0
    t = pd.read_csv(out / 'tables' / 'splits.csv')
    assert set(t['slug']) == {'whisperlogmel'} and (t['splits'] == 2).all() and set(t['domain']) == {'id', 'ood'}
    assert Layout(out / 'splits' / '1').record('whisperlogmel').exists()


def test_jobs_retrain_makes_every_training_job_pending(demo, tmp_path):
    "`reproduce --retrain` as jobs: every train, leakage, finish and report job is pending again, the others stay done."
    from sereval.jobs import forget_training, is_done, plan, prepare_grid
    from sereval.pipeline import DEMO, run_backbone
    from sereval.diagnostics import train_speaker_heads
    from sereval.protocol import TrainConfig
    out, cfg = tmp_path / 'out', TrainConfig(epochs=1)
    run_backbone('egemaps', demo, out, config=cfg, progress=False)
    train_speaker_heads('egemaps', out, config=cfg)
    grid = prepare_grid(demo, ['egemaps'], out, config=cfg, quiet=True)
    before = {j.name: is_done(j, grid) for j in plan(grid)}
    assert all(v for k, v in before.items() if not k.startswith('report')), before
    assert forget_training(grid)
    after = {j.name: is_done(j, grid) for j in plan(grid)}
    assert {k for k, v in after.items() if not v} == {k for k in after if k.split('/')[0] in ('train', 'leakage', 'finish', 'report')}


@pytest.mark.slow
def test_reproduce_retrain_seeds_clusters_and_headline_rule(tmp_path):
    """Issue 22: `--seeds 34` after a reproduce with the default seeds reruns (no "the training of [...] is not finished");
    `reproduce --retrain` trains every head again. Issue 25: `reproduce --clusters FILE` as `train --clusters FILE`.
    Issue 21: `reproduce --headline-rule` reaches the report."""
    import json
    from sereval.layout import read_record
    out = tmp_path / 'out'
    clusters = tmp_path / 'clusters.json'
    clusters.write_text(json.dumps({'pair': ['demo-emodb', 'demo-emovo']}))
    base = ['reproduce', '--backbones', 'egemaps', '--out', str(out), '--demo-size', '0.12', '--epochs', '2',
            '--corpora', 'demo-emodb,demo-emovo,demo-cafe', '--no-paper', '--quiet', '--clusters', str(clusters)]
    assert main(base) == 0                                            # the demo's three seeds
    rec = read_record(out, 'egemaps')
    assert rec.clusters == {'pair': ['demo-emodb', 'demo-emovo']} and rec.seeds == [34, 35, 36]
    m = pd.read_csv(Layout(out).matrix('macro_f1', 'egemaps'), index_col=0)
    assert m.notna().sum().sum() == 3 + 2                             # 3 in-domain cells, emodb <-> emovo only
    assert main([*base, '--seeds', '34']) == 0                        # failed on every rerun before
    assert read_record(out, 'egemaps').seeds == [34]
    heads = lambda: {str(p): p.stat().st_mtime_ns for p in sorted(out.rglob('model.pt'))
                     if not {'35', '36', 'seed35', 'seed36'} & set(p.parts)}       # the heads of seed 34
    first = heads()
    assert main([*base, '--seeds', '34']) == 0
    assert heads() == first                                           # reused without --retrain
    assert main([*base, '--seeds', '34', '--retrain', '--headline-rule', 'corrected']) == 0
    again = heads()
    assert first and sorted(again) == sorted(first), (sorted(first), sorted(again))
    assert all(again[k] != first[k] for k in first), [k for k in first if again[k] == first[k]]
    executed = (Layout(out).notebooks / '21_tables_and_figures.ipynb').read_text()
    assert 'headline_rule = \\"corrected\\"' in executed


def all_files(root: Path) -> set[str]:
    "Every file under `root` (relative paths)."
    return {str(p.relative_to(root)) for p in root.rglob('*') if p.is_file()}


def test_fewer_seeds_or_corpora_rerun_leaves_the_files_of_a_clean_run(demo, tmp_path):
    """Finding (round 4): after `train` with seeds 34,35,36 then `--seeds 34,35`, the dropped seed's `model.pt` and
    logits stayed under `runs/`; after fewer corpora, the dropped corpus's heads stayed. The folder must hold exactly
    the files of a clean run of the last command, with the same bytes for its results."""
    out, clean = tmp_path / 'out', tmp_path / 'clean'
    assert train(demo, out, '--seeds', '34,35,36') == 0
    assert any('seeds/36/model.pt' in f for f in all_files(out))
    assert train(demo, out, '--seeds', '34,35') == 0
    assert train(demo, clean, '--seeds', '34,35') == 0
    assert all_files(out) == all_files(clean)
    assert tree(out) == tree(clean)
    assert train(demo, out, '--seeds', '34,35', '--corpora', 'demo-emodb') == 0
    clean2 = tmp_path / 'clean2'
    assert train(demo, clean2, '--seeds', '34,35', '--corpora', 'demo-emodb') == 0
    cache = ('embeddings/', 'manifests/')     # features and manifests of a dropped corpus are kept for reuse
    assert {f for f in all_files(out) if not f.startswith(cache)} == {f for f in all_files(clean2) if not f.startswith(cache)}
    assert tree(out) == tree(clean2)


def test_unknown_hub_id_without_network_is_refused_at_once(tmp_path, capsys, monkeypatch):
    """Finding (round 4): an unknown hub id without network waited ~26 s for huggingface_hub's retries before refusing.
    Now: the local cache is checked, the hub tried once with a short timeout, one line, nothing written."""
    monkeypatch.setenv('HF_ENDPOINT', 'http://127.0.0.1:9')       # a hub that cannot answer, network or not
    out = tmp_path / 'out'
    assert main(['reproduce', '--backbones', 'someone/no-such-model-i22', '--out', str(out), '--demo-size', '0.1']) == 2
    err = capsys.readouterr().err
    line = one_line(err, 'reproduce')
    assert 'not in the local Hugging Face cache' in line and 'unreachable' in line and '127.0.0.1' in line
    assert not out.exists()


@pytest.mark.parametrize('names', ['egemaps,egemaps', 'whisper-logmel,egemaps,whisper-logmel'])
def test_duplicate_backbone_refused_before_any_work(tmp_path, capsys, names):
    "Finding (round 4): a repeated backbone in a dry run was refused only after synthesising the demo corpora (~17 s)."
    out = tmp_path / 'out'
    assert main(['reproduce', '--backbones', names, '--dry-run', '--out', str(out)]) == 2
    line = one_line(capsys.readouterr().err, 'reproduce')
    assert 'given twice' in line
    assert not out.exists()


@pytest.mark.slow
def test_ctrl_c_while_a_notebook_runs_prints_one_line(tmp_path):
    """Finding (round 4): Ctrl-C (SIGINT to the process group) while a run notebook executes printed the kernel's
    `[IPKernelApp] ERROR | Exception in message handler` tracebacks (zmq errors) before sereval's own line."""
    import signal, subprocess, sys, time
    psutil = pytest.importorskip('psutil')
    top = Path(__file__).resolve().parent.parent
    env = {**os.environ, 'PYTHONPATH': str(top), 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-c', 'import sys; from sereval.cli import main; sys.exit(main())', 'reproduce', '--out',
           str(tmp_path / 'out'), '--demo-size', '0.1', '--seeds', '34', '--no-paper', '--quiet']   # the demo's 100 epochs: still running at the signal
    # SIGINT at its default in the child, as in a terminal: a background job of a non-interactive shell (a CI script)
    # inherits it ignored, and sereval then rightly ignores Ctrl-C
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:      # wait until a kernel runs a notebook
        if any('ipykernel' in ' '.join(k.cmdline()) for k in psutil.Process(p.pid).children(recursive=True)): break
        time.sleep(0.3)
    assert p.poll() is None, 'the run ended before its notebooks started'
    time.sleep(8)                                           # well into the notebook's cells
    assert p.poll() is None, 'the run ended before the signal'
    os.killpg(p.pid, signal.SIGINT)                         # what a terminal's Ctrl-C does
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and 'interrupted' in lines[0], err


@pytest.mark.parametrize('argv', [['train', '--backbone', 'egemaps', '--data-root', '.', '--out', ''],
                                  ['train', '--backbone', 'egemaps', '--data-root', '', '--out', 'x'],
                                  ['reproduce', '--out', '', '--dry-run']])
def test_empty_folder_option_is_refused(tmp_path, capsys, monkeypatch, argv):
    "Adversarial round 4: `--out ''` silently wrote the run into the current folder."
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "''" in one_line(capsys.readouterr().err, argv[0])
    assert not list(tmp_path.iterdir())


def test_out_undecodable_in_a_posix_locale_is_named(tmp_path, capsys, monkeypatch):
    "Adversarial round 4: under LC_ALL=C a non-ASCII --out arrives surrogate-escaped and pyarrow raised UnicodeEncodeError."
    monkeypatch.chdir(tmp_path)
    assert main(['reproduce', '--out', 'o\udcc3\udcbcut', '--dry-run']) == 2
    assert 'UTF-8 locale' in one_line(capsys.readouterr().err, 'reproduce')
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- round five: the findings re-checked one by one

def test_folder_undecodable_in_a_posix_locale_is_named(demo, tmp_path, capsys):
    "Round five: under LC_ALL=C (no UTF-8 coercion) `--folder cafe=Café_données` reached pyarrow and raised UnicodeEncodeError."
    assert main(['scan', str(demo), '--folder', 'demo-emodb=Caf\udcc3\udca9', '--out', str(tmp_path / 'o')]) == 2
    assert 'UTF-8 locale' in one_line(capsys.readouterr().err, 'scan')
    assert not (tmp_path / 'o').exists()


def test_report_drops_what_an_earlier_render_left(tmp_path):
    """Round five: after a rerun with fewer corpora or seeds, `tables/rankings*` and `figures/critical_difference*` of
    the earlier render stayed beside a findings page saying there is no ranking. The report now removes every file under
    tables/ and figures/ it did not write, except `tables/splits.csv` (written by --splits)."""
    from sereval.report import render_report
    from sereval.testing import fake_run
    out = fake_run(tmp_path / 'run')
    L = Layout(out)
    fresh = sorted(str(p.relative_to(out)) for p in map(Path, render_report(out, paper=False, quiet=True)) if p.is_relative_to(out))
    for p in (L.tables / 'rankings.md', L.figures / 'critical_difference.png', L.figures / '.x.png.tmp', L.splits_table):
        write_text(p, 'from an earlier render')
    again = sorted(str(p.relative_to(out)) for p in map(Path, render_report(out, paper=False, quiet=True)) if p.is_relative_to(out))
    assert again == fresh
    left = {str(p.relative_to(out)) for d in (L.tables, L.figures) for p in d.rglob('*') if p.is_file()}
    assert left == {f for f in fresh if f.startswith(('tables/', 'figures/'))} | {'tables/splits.csv'}


def test_idle_pool_worker_prints_nothing_on_ctrl_c(tmp_path):
    """Round five: Ctrl-C (SIGINT to the process group) made an idle pool worker print its own 22-line KeyboardInterrupt
    traceback before sereval's line. `reproduce.worker_pool`'s workers ignore SIGINT; the parent stops them."""
    import signal, subprocess, sys, time
    script = tmp_path / 'pool.py'
    script.write_text('import time\nfrom sereval.reproduce import worker_pool\nif __name__ == "__main__":\n'
                      '    with worker_pool(2) as ex:\n        ex.submit(time.sleep, 0.1).result()\n'
                      '        print("ready", flush=True)\n        time.sleep(60)\n')
    top = Path(__file__).resolve().parent.parent
    p = subprocess.Popen([sys.executable, str(script)], env={**os.environ, 'PYTHONPATH': str(top)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # as in a terminal (see above)
    assert p.stdout.readline().strip() == 'ready'
    time.sleep(0.5)
    os.killpg(p.pid, signal.SIGINT)                  # the parent gets KeyboardInterrupt; the idle workers must stay silent
    _, err = p.communicate(timeout=60)
    assert p.returncode != 0 and 'KeyboardInterrupt' in err, err      # the parent was interrupted ...
    assert 'SpawnProcess' not in err, err                             # ... and no worker spoke
