"""sereval.bench across modules: the benchmarks clean up after themselves, a failed training process is an error, and
every benchmark is callable by keyword with defaults (what `sereval bench` builds its options from).
The figures themselves are checked on nbs/16_bench.ipynb, which runs each benchmark at a tiny size."""
import inspect

import pytest

from sereval.bench import BENCHES, bench_extract, bench_layers, bench_store, bench_train
from sereval.errors import SerevalError


def test_every_benchmark_takes_keywords_with_defaults():
    assert sorted(BENCHES) == ['extract', 'gpu', 'layers', 'seeds', 'store', 'train']
    for name, fn in BENCHES.items():
        params = inspect.signature(fn).parameters.values()
        assert all(p.default is not inspect.Parameter.empty for p in params), f'bench {name}: every argument needs a default'


def test_bench_store_removes_its_scratch_folder(tmp_path, capsys):
    fig = bench_store(n_clips=5, dim=8, min_frames=3, max_frames=6, repeats=1, progress=False, dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"read_speedup={fig['read_speedup']:.2f} disk_ratio={fig['disk_ratio']:.3f}"
    cold = bench_store(n_clips=5, dim=8, min_frames=3, max_frames=6, repeats=1, progress=False, cache='cold', dir=tmp_path)
    assert cold['read_speedup'] == cold['cold_files_s'] / cold['cold_store_s']
    with pytest.raises(SerevalError, match="'warm' or 'cold'"): bench_store(n_clips=1, cache='hot', dir=tmp_path)


def test_bench_layers_removes_its_scratch_folders_and_grows_with_layers(tmp_path):
    figs = bench_layers(layers=(1, 2, 4), layer_dim=8, n_clips=6, min_frames=3, max_frames=6, repeats=1, dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert [f['dim'] for f in figs] == [8, 16, 32] and figs[0]['frames'] == figs[2]['frames']
    assert figs[0]['disk_bytes'] < figs[1]['disk_bytes'] < figs[2]['disk_bytes']
    with pytest.raises(SerevalError, match='layers >= 1'): bench_layers(layers=(0,), dir=tmp_path)


@pytest.mark.slow
def test_bench_train_removes_its_store_and_reports_a_failed_child(tmp_path, capsys):
    f = bench_train(n_frames=800, dim=16, min_frames=10, max_frames=10, batch_size=8, warmup_steps=1, threads=1, dir=tmp_path)
    assert list(tmp_path.iterdir()) == [] and f['frames_trained'] == 800   # 80 clips of 10 frames: 10 full batches of 8, none dropped
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"gemm_fraction={f['gemm_fraction']:.3f}"
    with pytest.raises(SerevalError, match='training process failed'):
        bench_train(n_frames=800, dim=16, min_frames=5, max_frames=20, device='no-such-device', dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_bench_extract_random_whisper(tmp_path):
    "The random-weight Whisper goes through the real checkpoint loader and the extraction driver."
    from sereval.synth import DEMO_CORPORA, make_demo
    root = make_demo(tmp_path / 'demo', size=0.05, corpora=[c for c in DEMO_CORPORA if c.name == 'demo-emodb'], progress=False)
    n = len(list((root / 'demo-emodb').rglob('*.wav')))
    df = bench_extract(data=root, backbones=['random-whisper', 'egemaps'])
    assert list(df.backbone) == ['random-whisper (tiny)', 'egemaps']
    assert (df.clips + df.skipped == n).all() and (df.skipped == 0).all()
    with pytest.raises(SerevalError, match='unknown whisper architecture'): bench_extract(data=root, whisper_dims='huge')


def test_bench_seeds_prints_the_ratio_last(capsys):
    from sereval.bench import bench_seeds
    f = bench_seeds(k=2, n_frames=600, dim=8, min_frames=5, max_frames=10, threads=1)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"seed_cost_ratio={f['together_s'] / f['one_s']:.2f}" and f['k'] == 2


def test_gpu_check_without_cuda_says_so_in_one_line_and_exits_0():
    "`make gpu-check` runs `sereval bench gpu`; on a machine without CUDA that prints one line containing 'no CUDA', exit 0."
    import re, subprocess, sys
    from pathlib import Path
    import torch
    top = Path(__file__).resolve().parent.parent
    assert re.search(r'^gpu-check:.*\n\t.*sereval bench gpu', (top / 'Makefile').read_text(), re.M)
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA: `make gpu-check` measures it')
    r = subprocess.run([sys.executable, '-c', 'import sys; from sereval.cli import main; sys.exit(main())', 'bench', 'gpu'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1 and 'no CUDA' in r.stdout, r.stdout
