"""Issue 22, the last gaps: damaged run records say what to do, an ASCII locale leaves no folder behind, an ignored
SIGINT stays ignored, and a signal at the very end of a command still gets its one line and exit status."""
import os, signal, subprocess, sys
from pathlib import Path

import pytest

from sereval.cli import main

TOP = Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'PYTHONPATH': str(TOP), 'OMP_NUM_THREADS': '1'}


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    from sereval.synth import make_demo, DEMO_CORPORA
    return make_demo(tmp_path_factory.mktemp('demo') / 'data', size=0.1, progress=False,
                     corpora=[c for c in DEMO_CORPORA if c.name in ('demo-emodb', 'demo-emovo')])


def error_line(err: str, command: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(f'sereval {command}: error: '), err
    return lines[0]


# ---------------------------------------------------------------- 2a: a run record that is a bare JSON list

@pytest.mark.parametrize('where', ['run state', 'run record'])
def test_run_record_that_is_a_json_list_says_delete_it_and_rerun(demo, tmp_path, capsys, where):
    "Finding: `run.json` or `record.json` holding `[1]` gave 'is damaged (expected a JSON object)', with no word of what to do."
    from sereval.layout import Layout
    out = tmp_path / 'out'
    train = ['train', '--backbone', 'whisper-logmel', '--data-root', str(demo), '--out', str(out), '--epochs', '2', '--quiet']
    assert main(train) == 0
    L = Layout(out)
    bad = L.run_state('whisperlogmel', 'demo-emodb') if where == 'run state' else L.record('whisperlogmel')
    bad.write_text('[1]\n')
    capsys.readouterr()
    command = 'train' if where == 'run state' else 'report'
    assert main(train if command == 'train' else ['report', '--out', str(out), '--no-paper']) == 2
    line = error_line(capsys.readouterr().err, command)
    assert str(bad) in line and 'delete it and rerun' in line and 'Traceback' not in line
    bad.unlink()                                                     # doing what it says works
    assert main(train) == 0


# ---------------------------------------------------------------- 2b: an ASCII locale

def ascii_run(cwd: Path, *argv) -> subprocess.CompletedProcess:
    env = {**ENV, 'LANG': 'C', 'LC_ALL': 'C', 'PYTHONUTF8': '0'}
    env.pop('PYTHONIOENCODING', None)
    return subprocess.run([sys.executable, '-c', 'import sys; from sereval.cli import main; sys.exit(main())', *argv],
                          cwd=os.fsencode(cwd), env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('argv', [['train', '--backbone', 'whisper-logmel', '--data-root', '{demo}', '--out', 'o', '--epochs', '2'],
                                  ['scan', '{demo}', '--out', 'o'],
                                  ['reproduce', '--out', 'o', '--backbones', 'whisper-logmel', '--demo-size', '0.1', '--epochs', '1'],
                                  ['embed', '--backbone', 'whisper-logmel', '--data-root', '{demo}', '--out', 'o', '--name', '\u00e9']])
def test_ascii_locale_failure_leaves_no_folder(demo, tmp_path, argv):
    """Finding: under LANG=C LC_ALL=C PYTHONUTF8=0 a relative --out in a folder with a non-ASCII name (or `embed --name é`)
    passed the option checks, then failed writing the first manifest: an empty `o/manifests/` (`o/demo_corpora/` for
    reproduce, manifests for embed) was left behind. Every path option is now checked made absolute, before any write."""
    cwd = tmp_path / 'caf\u00e9'
    cwd.mkdir()
    r = ascii_run(cwd, *[a.format(demo=demo) for a in argv], '--quiet' if argv[0] != 'scan' else '--corpora=demo-emodb')
    assert r.returncode == 2, r.stderr
    line = error_line(r.stderr, argv[0])
    assert 'UTF-8 locale' in line
    assert not list(cwd.iterdir()), list(cwd.rglob('*'))


def test_failed_atomic_write_leaves_no_folder_it_made(tmp_path):
    "A write that fails (here: the writer raises) leaves neither its temporary file nor the folders it made for it."
    from sereval.layout import atomic_write
    def fail(tmp): Path(tmp).write_text('half'); raise UnicodeEncodeError('ascii', 'é', 0, 1, 'ordinal not in range(128)')
    with pytest.raises(UnicodeEncodeError): atomic_write(tmp_path / 'a' / 'b' / 'c.parquet', fail)
    assert not list(tmp_path.iterdir())
    (tmp_path / 'kept').mkdir()
    with pytest.raises(UnicodeEncodeError): atomic_write(tmp_path / 'kept' / 'new' / 'c.parquet', fail)
    assert [p.name for p in tmp_path.rglob('*')] == ['kept']        # a folder that was there stays


# ---------------------------------------------------------------- 2c: SIGINT ignored from the start stays ignored

def test_deferred_interrupt_keeps_an_ignored_sigint_ignored():
    "Finding: `deferred_interrupt` (openSMILE's Ctrl-C guard) replaced an ignored SIGINT (nohup, a background job) by its own, so a SIGINT stopped the run."
    from sereval.backbones import deferred_interrupt
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN      # and no KeyboardInterrupt was raised
    finally: signal.signal(signal.SIGINT, old)


# ---------------------------------------------------------------- 2d: a signal at the very end of `sereval report`

@pytest.mark.parametrize('sig', ['SIGTERM', 'SIGINT'])
def test_signal_at_the_very_end_of_report_prints_its_line(tmp_path, sig):
    """Finding: SIGTERM arriving once `sereval report` had printed its last line (main had restored the default handler,
    the interpreter was shutting down) killed it silently (status -15, no line). Now: one line, 143 (130 for Ctrl-C), no temporary file."""
    from sereval.testing import fake_run
    out = fake_run(tmp_path / 'run')
    code = ('import os, signal, sys, time; from sereval.cli import main\n'
            f"sys.argv = ['sereval', 'report', '--out', {str(out)!r}, '--no-paper']\n"
            'rc = main()\n'
            f'os.kill(os.getpid(), signal.{sig}); time.sleep(10); sys.exit(rc)')    # the signal lands after main returned
    r = subprocess.run([sys.executable, '-c', code], env=ENV, capture_output=True, text=True, timeout=300,
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # as in a terminal
    assert r.returncode == (143 if sig == 'SIGTERM' else 130), (r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert lines == [f"sereval report: {'terminated (SIGTERM)' if sig == 'SIGTERM' else 'interrupted'}; "
                     'rerun the same command to continue where it stopped'], r.stderr
    assert (out / 'findings.md').exists() and not list(out.rglob('*.tmp'))


def test_signal_at_the_end_of_an_in_process_call_is_the_callers(tmp_path):
    "Called in process (`main([...])`), the caller's own handlers are back once it returns."
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert main(['report', '--out', str(tmp_path / 'none')]) == 2
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


# ---------------------------------------------------------------- adversarial mini-round: damaged files under <out> and `report`

def _fake(tmp_path):
    from sereval.layout import Layout
    from sereval.testing import fake_run
    return fake_run(tmp_path / 'run'), Layout(tmp_path / 'run')


@pytest.mark.parametrize('cut', ['inside the header', 'inside a row', 'a whole row'])
def test_report_names_a_matrix_cut_short(tmp_path, capsys, cut):
    """Adversarial: a matrix cut short (a copy stopped half-way) was rendered as it was: a row named 'a' of NaN, or one
    training corpus fewer, without a word. Now it is checked against the run record and named, with what to do."""
    import json
    out, L = _fake(tmp_path)
    p = L.matrix('macro_f1', 'egemaps')
    text = p.read_text()
    if cut == 'a whole row':                          # only a record saying which corpora were trained can tell
        rec = json.loads(L.record('egemaps').read_text())
        rec['extra']['protocol_applied'] = {c: 'random' for c in rec['corpora']}
        L.record('egemaps').write_text(json.dumps(rec))
    p.write_text({'inside the header': text[:text.index('\n') + 2], 'inside a row': text[:text.rindex(',') - 3],
                  'a whole row': text[:text.rstrip('\n').rindex('\n') + 1]}[cut])
    assert main(['report', '--out', str(out), '--no-paper']) == 2
    line = error_line(capsys.readouterr().err, 'report')
    assert str(p) in line and 'delete it and rerun' in line


@pytest.fixture(scope='module')
def trained(demo, tmp_path_factory):
    "The output folder of a small `sereval train` run."
    out = tmp_path_factory.mktemp('trained') / 'out'
    assert main(['train', '--backbone', 'whisper-logmel', '--data-root', str(demo), '--out', str(out), '--epochs', '2', '--quiet']) == 0
    return out


@pytest.mark.parametrize('cut', ['emptied', 'inside a row'])
def test_report_names_a_results_table_cut_short(trained, tmp_path, capsys, cut):
    "Adversarial: an emptied results table gave pandas' EmptyDataError traceback (exit 1); one cut inside a row was rendered as it was."
    import shutil
    from sereval.layout import Layout
    out = shutil.copytree(trained, tmp_path / 'out')
    p = Layout(out).results('whisperlogmel')
    p.write_text('' if cut == 'emptied' else p.read_text()[:120])
    assert main(['report', '--out', str(out), '--no-paper']) == 2
    line = error_line(capsys.readouterr().err, 'report')
    assert str(p) in line and 'delete it and rerun' in line


def test_report_deletes_no_file_of_a_kind_it_does_not_write(tmp_path):
    """Adversarial: with `figures/` a link to a folder of the user's (to publish the figures), the report deleted every
    file there it had not written, a photo included. It now deletes only stale files of the kinds it writes."""
    out, L = _fake(tmp_path)
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'holiday.jpg').write_text('precious'); (mine / 'notes.txt').write_text('mine')
    (mine / 'stale_figure.png').write_text('an earlier render'); (mine / '.x.png.a1b2.tmp').write_text('a cut write')
    L.figures.symlink_to(mine)
    assert main(['report', '--out', str(out), '--no-paper']) == 0
    left = {p.name for p in mine.iterdir()}
    assert {'holiday.jpg', 'notes.txt'} <= left and not {'stale_figure.png', '.x.png.a1b2.tmp'} & left
    assert any(n.endswith('.png') for n in left)                     # the figures were written there


def test_run_record_in_another_backbones_folder_is_named(tmp_path, capsys):
    "Adversarial: a run record copied into another folder under runs/ (a backup, `cp -r`) made the report fail with pandas' 'No objects to concatenate' traceback."
    import shutil
    out, L = _fake(tmp_path)
    shutil.copytree(L.runs('egemaps'), L.runs('egemapscopy'))
    assert main(['report', '--out', str(out), '--no-paper']) == 2
    line = error_line(capsys.readouterr().err, 'report')
    assert str(L.record('egemapscopy')) in line and 'delete it and rerun' in line


def test_report_rerun_writes_the_same_bytes_figures_included(tmp_path):
    "Adversarial: every rerun of the report rewrote each SVG figure with another date and other clip-path ids."
    import hashlib
    out, L = _fake(tmp_path)
    def digest(): return {str(p.relative_to(out)): hashlib.sha1(p.read_bytes()).hexdigest()
                          for d in (L.tables, L.figures) for p in sorted(d.rglob('*')) if p.is_file()}
    assert main(['report', '--out', str(out), '--no-paper']) == 0
    first = digest()
    assert main(['report', '--out', str(out), '--no-paper']) == 0
    assert digest() == first and any(f.endswith('.svg') for f in first)


def test_sweep_with_a_missing_data_root_is_refused(tmp_path, capsys):
    "Adversarial: `sweep --data-root` of a folder that does not exist silently used the paper's clusters instead of the root's."
    assert main(['sweep', '--backbone', 'whisper-logmel', '--out', str(tmp_path / 'o'), '--data-root', str(tmp_path / 'nope')]) == 2
    assert 'does not exist' in error_line(capsys.readouterr().err, 'sweep')
    assert not (tmp_path / 'o').exists()
