"""The job grid run by the local executor gives the same matrices and the same speaker-leakage table as the in-process
pipeline; the dry run and the status view; a run without the leakage heads says so."""
import contextlib, io, json, shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from sereval.cli import main
from sereval.diagnostics import leakage_table, train_speaker_heads
from sereval.executors import run_jobs, status
from sereval.jobs import DEFAULT_RATES, read_rates
from sereval.layout import Layout
from sereval.pipeline import DEMO, demo_root, run_backbone

SIZE, CORPORA, BACKBONES = 0.1, ['demo-casia', 'demo-emodb', 'demo-subesco'], ['whisper-logmel', 'egemaps']
CONFIG = replace(DEMO.train, epochs=3)

def in_process(out: Path) -> Path:
    """The reference: `run_backbone` of each backbone here with the demo's seeds, then its speaker-split heads, one torch
    thread (as the demo's run notebook does with its default `leakage = True`)."""
    import torch
    n = torch.get_num_threads(); torch.set_num_threads(DEMO.threads)
    try:
        root = demo_root(out, size=SIZE, quiet=True)
        for b in BACKBONES:
            run = run_backbone(b, root, out, corpora=CORPORA, config=CONFIG, seeds=DEMO.seeds, progress=False)
            train_speaker_heads(b, out, run.record.corpora, CONFIG)
    finally: torch.set_num_threads(n)
    return out

def matrices(out: Path) -> dict[str, bytes]:
    "Every matrix file of a run, by its path under `matrices/`."
    m = Layout(out).out/'matrices'
    return {p.relative_to(m).as_posix(): p.read_bytes() for p in sorted(m.rglob('*.csv'))}

def assert_same_matrices(a: Path, b: Path, slugs=None):
    "The matrix files of runs `a` and `b` (of the backbones `slugs` only, if given) are the same files, byte for byte."
    keep = lambda m: {k: v for k, v in m.items() if slugs is None or Path(k).stem in slugs}
    ma, mb = keep(matrices(a)), keep(matrices(b))
    assert ma and sorted(ma) == sorted(mb)
    assert [k for k in ma if ma[k] != mb[k]] == []          # bit-identical

def assert_same_leakage(a: Path, b: Path):
    "The leakage tables of runs `a` and `b` are equal, number for number, and measure every corpus of `CORPORA`."
    ta, tb = leakage_table(a), leakage_table(b)
    pd.testing.assert_frame_equal(ta, tb, check_exact=True)
    assert len(ta) == len(BACKBONES) * len(CORPORA) and set(ta['status']) == {'measured'}

@pytest.fixture
def reference(shared_run) -> Path:
    "The in-process reference run, made once for this file and tests/test_slurm.py (read-only: copy it to change it)."
    return shared_run('executors-in-process', in_process)

@pytest.mark.slow
def test_local_executor_gives_the_in_process_matrices(reference, tmp_path):
    ref = reference
    t = run_jobs(None, BACKBONES, tmp_path/'local', CORPORA, CONFIG, demo_size=SIZE, paper=False, executor='local',
                 quiet=True)
    assert set(t['state']) == {'done'}
    assert_same_matrices(ref, tmp_path/'local')
    assert (t['kind'] == 'leakage').sum() == len(BACKBONES) * len(CORPORA)
    assert_same_leakage(ref, tmp_path/'local')
    assert (tmp_path/'local'/'notebooks'/'21_tables_and_figures.ipynb').exists()      # the report ran as a job
    L = Layout(tmp_path/'local')
    written = pd.read_csv(L.tables/'leakage.csv')                                      # the report job's table
    pd.testing.assert_series_equal(written['gap'], leakage_table(ref)['gap'], check_exact=False, rtol=1e-12)
    assert (L.figures/'leakage.png').exists()
    logs = list((Layout(tmp_path/'local').jobs/'logs').glob('*.log'))
    assert len(logs) == len(t) - 0 and all(p.name.count('.') >= 1 for p in logs)
    # run again: nothing to run
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        run_jobs(None, BACKBONES, tmp_path/'local', CORPORA, CONFIG, demo_size=SIZE, paper=False, executor='local')
    assert f'{len(t)} jobs, {len(t)} done, 0 to run (local)' in buf.getvalue()
    # the same run without its speaker-split heads: the report says why there is no leakage table, in one sentence
    bare = tmp_path/'bare'
    shutil.copytree(ref, bare); shutil.rmtree(Layout(bare).protocol('speaker').out)
    from sereval.report import render_report
    render_report(bare, paper=False, quiet=True)
    md = (Layout(bare).tables/'leakage.md').read_text()
    assert 'No speaker-leakage table: the speaker-split heads were not trained' in md and '--no-leakage' in md
    assert not (Layout(bare).figures/'leakage.png').exists()

def test_dry_run_and_status(tmp_path, capsys):
    out = tmp_path/'run'
    assert main(['reproduce', '--dry-run', '--out', str(out), '--demo-size', '0.1', '--quiet']) == 0
    assert main(['reproduce', '--dry-run', '--out', str(out), '--demo-size', '0.1']) == 0
    text = capsys.readouterr().out
    n = 2 * (2 * 6 + 1 + 5) + 1            # six demo corpora, five with speaker ids (a leakage job each); demo-mesd has none
    assert f'{n} jobs, {n} to run (0 already done)' in text
    assert 'extract/whisperlogmel/demo-emodb' in text and 'report' in text
    assert 'leakage/egemaps/demo-emodb' in text and 'leakage/egemaps/demo-mesd' not in text
    assert 'no speaker-split head for demo-mesd (no speaker ids): unmeasurable in the leakage table' in text
    assert not out.exists()                                   # a dry run writes nothing (issue 22), not even the grid
    # --no-leakage: no leakage job, and the plan says the report will have no leakage table
    assert main(['reproduce', '--dry-run', '--no-leakage', '--out', str(out), '--demo-size', '0.1']) == 0
    text = capsys.readouterr().out
    assert f'{n - 10} jobs, {n - 10} to run' in text and 'leakage/' not in text
    assert 'leakage off: no speaker-split heads, so the report will have no leakage table' in text
    # a run split by speaker has nothing to compare
    assert main(['reproduce', '--dry-run', '--protocol', 'speaker', '--out', str(out), '--demo-size', '0.1']) == 0
    assert "the run's own split is 'speaker'" in capsys.readouterr().out

def test_a_measured_rate_changes_the_estimate(tmp_path, capsys):
    from sereval.jobs import estimate, plan, prepare_grid
    rates = tmp_path/'rates.json'
    rates.write_text(json.dumps({'backbones': {'egemaps': {'audio_x_realtime': 1000.0, 'load_s': 0.0}}}))
    g = prepare_grid(None, out=tmp_path/'run', demo_size=0.1, quiet=True)
    d, m = estimate(plan(g), g), estimate(plan(g), g, read_rates(rates))
    e = lambda t: t[(t.kind == 'extract') & (t.backbone == 'egemaps')]
    assert (e(m)['rate'] == 'measured').all() and (e(d)['rate'] == 'default').all()
    assert (e(m)['est_min'] < e(d)['est_min']).all()
    w = lambda t: t[(t.kind == 'extract') & (t.backbone == 'whisper-logmel')]['est_min'].tolist()
    assert w(m) == w(d)
    # the default CPU rate: load time plus the audio at DEFAULT_RATES' speed
    r = DEFAULT_RATES['cpu']
    row = e(d).iloc[0]
    assert row['est_min'] == pytest.approx((r['load_s'] + row['audio_min'] * 60 / r['audio_x_realtime']) / 60, abs=0.02)
    (tmp_path/'other.json').write_text('{"speed": 1}')
    with pytest.raises(Exception, match='not a rates file'): read_rates(tmp_path/'other.json')

@pytest.mark.slow
def test_bench_extract_saves_rates_the_dry_run_reads(tmp_path):
    from sereval.bench import bench_extract
    root = demo_root(tmp_path, size=0.1, quiet=True)
    bench_extract(data=root, corpora=['demo-emodb'], backbones=['whisper-logmel'], save=str(tmp_path/'rates.json'))
    r = read_rates(tmp_path/'rates.json')
    assert r['backbones']['whisper-logmel']['audio_x_realtime'] > 0

def test_unknown_executor_is_a_clear_error(tmp_path):
    from sereval.errors import SerevalError
    with pytest.raises(SerevalError, match='unknown executor'): run_jobs(out=tmp_path, executor='kubernetes')
