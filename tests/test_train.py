"Splits, the training loop (paper hyperparameters, determinism), prediction, and `sereval bench train`."
import numpy as np
import pandas as pd
import pytest
import torch

from sereval.errors import SerevalError
from sereval.train import (TrainConfig, bench_train, gemm_fraction, make_split, predict_logits, random_split,
                           speaker_split, toy_frames, train_head)


def test_paper_defaults():
    c = TrainConfig()
    assert (c.hidden, c.dropout, c.label_smoothing, c.lr, c.weight_decay, c.epochs, c.batch_size, c.warmup,
            c.grad_clip, c.seed, c.test_size) == (512, 0.1, 0.1, 1e-4, 0.1, 100, 32, 0.1, 0.5, 34, 0.2)
    assert TrainConfig.from_dict(TrainConfig(epochs=3).to_dict()) == TrainConfig(epochs=3)


def test_random_split():
    m = random_split(1000, 0.2, 34)
    assert m.sum() == 200 and (random_split(1000, 0.2, 34) == m).all() and not (random_split(1000, 0.2, 35) == m).all()
    assert random_split(2, 0.2, 0).sum() == 1 and random_split(3, 0.01, 0).sum() == 1


@pytest.mark.parametrize('seed', range(5))
def test_speaker_split_is_speaker_independent(seed):
    rng = np.random.default_rng(seed)
    spk = rng.choice([f's{i}' for i in range(12)], 600)
    m = speaker_split(spk, 0.2, seed)
    assert not set(spk[m]) & set(spk[~m])
    assert 0.1 < m.mean() < 0.35 and (~m).any()


def test_make_split_records_protocol():
    idx = pd.DataFrame({'speaker': ['a', 'b', 'c', 'd', 'e'] * 10})
    m, p = make_split(idx, 'speaker'); assert p == 'speaker'
    assert not set(idx.speaker[m]) & set(idx.speaker[~m])
    assert make_split(pd.DataFrame({'speaker': ['a'] * 10}), 'speaker')[1] == 'random'     # one speaker
    assert make_split(pd.DataFrame({'speaker': ['a', ''] * 5}), 'speaker')[1] == 'random'  # ids missing
    with pytest.raises(SerevalError): make_split(idx, 'bogus')


def test_bit_identical_on_cpu_and_learns():
    frames, starts, lengths, labels = toy_frames(150, dim=24, seed=3)
    cfg = TrainConfig(epochs=6, lr=3e-3, batch_size=16)
    a = train_head(frames, starts, lengths, labels, cfg, device='cpu')
    b = train_head(frames, starts, lengths, labels, cfg, device='cpu')
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()): assert torch.equal(x, y), k
    assert a.train_loss == b.train_loss and a.train_loss[-1] < a.train_loss[0]
    za, zb = predict_logits(a, frames, starts, lengths), predict_logits(b, frames, starts, lengths)
    assert np.array_equal(za, zb) and za.dtype == np.float32 and za.shape == (150, 8)
    assert (za.argmax(1) == labels).mean() > 0.9


def test_predict_batches_do_not_change_results():
    frames, starts, lengths, labels = toy_frames(40, dim=8, seed=1)
    m = train_head(frames, starts, lengths, labels, TrainConfig(epochs=1), device='cpu')
    order = np.random.default_rng(0).permutation(40)           # non-adjacent clips too
    full = predict_logits(m, frames, starts[order], lengths[order], batch_frames=1 << 20)
    small = predict_logits(m, frames, starts[order], lengths[order], batch_frames=30)
    np.testing.assert_allclose(full, small, rtol=1e-5, atol=1e-5)


def test_gemm_fraction_uses_adjacent_probes():
    steps = [(1000, 1.0)] * 6                                  # 1000 frames/s
    refs = [2000.0] * 7
    frac, rate, ref = gemm_fraction(steps, refs, flops_per_frame=1.0, warmup_steps=1)
    assert frac == pytest.approx(0.5) and rate == pytest.approx(1000) and ref == 2000
    refs = [2000.0, 2000, 1000, 1000, 2000, 2000, 2000]        # the machine got busy around step 3 ...
    steps = [(1000, 1.0), (1000, 1.0), (500, 1.0), (1000, 1.0), (1000, 1.0), (1000, 1.0)]   # ... and so did training
    assert gemm_fraction(steps, refs, 1.0, 0)[0] == pytest.approx(0.5)


def test_bench_train_small(capsys, tmp_path):
    assert bench_train(['--frames', '6000', '--dim', '64', '--min-frames', '5', '--max-frames', '20', '--dir', str(tmp_path), '--warmup-steps', '1']) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith('gemm_fraction=') and float(out[-1].split('=')[1]) > 0
    assert any('peak resident memory' in l for l in out) and any('frames/s' in l for l in out)
    assert not list(tmp_path.iterdir())                        # the temporary store is removed
