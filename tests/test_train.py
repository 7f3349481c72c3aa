"Training from the embedding store, and what a run records of its training."
import numpy as np
import torch

from sereval.layout import RunRecord, read_record, write_record
from sereval.store import write_store
from sereval.testing import toy_frames
from sereval.protocol import TrainConfig
from sereval.train import predict_logits, train_head


def test_the_run_record_keeps_the_train_config(tmp_path):
    cfg = TrainConfig(epochs=7, lr=3e-3, batch_size=16)
    write_record(tmp_path, RunRecord(backbone='egemaps', slug='egemaps', corpora=['a'], clusters={}, rule='paper',
                                     protocol='random', train=cfg.to_dict(), seeds=[cfg.seed]))
    assert TrainConfig.from_dict(read_record(tmp_path, 'egemaps').train) == cfg


def test_training_from_the_store_is_training_in_memory(tmp_path):
    "A head trained on the store's memory map is bit for bit the head trained on the same frames in memory, and learns."
    frames, starts, lengths, labels = toy_frames(150, dim=24, seed=3)
    st = write_store(tmp_path, 'bb', 'toy', [dict(clip_id=f'c{i}') for i in range(len(labels))],
                     np.split(frames, starts[1:]), frame_rate=50.0)
    assert isinstance(st.frames, np.memmap) and (st.index['start'].to_numpy() == starts).all()
    cfg = TrainConfig(epochs=6, lr=3e-3, batch_size=16)
    a = train_head(st.frames, starts, lengths, labels, cfg, device='cpu')
    b = train_head(frames, starts, lengths, labels, cfg, device='cpu')
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()): assert torch.equal(x, y), k
    assert a.train_loss == b.train_loss and a.train_loss[-1] < a.train_loss[0]
    order = np.random.default_rng(0).permutation(len(labels))           # non-adjacent clips, small batches
    za = predict_logits(a, st.frames, starts[order], lengths[order], batch_frames=30)
    zb = predict_logits(b, frames, starts[order], lengths[order])
    assert za.dtype == np.float32 and za.shape == (150, 8)
    np.testing.assert_allclose(za, zb, rtol=1e-5, atol=1e-5)
    assert (za.argmax(1) == labels[order]).mean() > 0.9


def test_the_last_incomplete_batch_is_dropped():
    "70 clips in batches of 32: two steps of 32 clips per epoch (the paper's drop_last); fewer clips than a batch: one step."
    frames, starts, lengths, labels = toy_frames(70, dim=8, seed=0)
    steps, seen = [], []
    cfg = TrainConfig(epochs=3, batch_size=32)
    train_head(frames, starts, lengths, labels, cfg, device='cpu', on_step=lambda step, n: (steps.append(step), seen.append(n)))
    assert steps == list(range(1, 7))
    per_clip = dict(zip(starts.tolist(), lengths.tolist()))
    assert all(n >= 32 * min(per_clip.values()) for n in seen)           # every step carried a full batch of 32 clips
    few = []
    train_head(frames, starts[:10], lengths[:10], labels[:10], TrainConfig(epochs=2), device='cpu', on_step=lambda s, n: few.append(n))
    assert few == [int(lengths[:10].sum())] * 2


def test_stacked_heads_backward_one_at_a_time_equals_the_summed_loss():
    "`_backward` runs each stacked head's forward and backward in turn: loss and gradients are the summed loss's, bit for bit."
    from types import SimpleNamespace
    from sereval.batches import segment_ids
    from sereval.head import StackedFrameMLP
    from sereval.train import _backward
    frames, starts, lengths, labels = toy_frames(12, dim=16, seed=5)
    lengths_t = torch.as_tensor(lengths)
    batch = SimpleNamespace(frames=torch.as_tensor(frames).float(), lengths=lengths_t, segments=segment_ids(lengths_t))
    y, loss_fn = torch.as_tensor(labels), torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    a, b = StackedFrameMLP(16, [34, 35, 36]), StackedFrameMLP(16, [34, 35, 36])
    a.train(); b.train()
    scaler = torch.amp.GradScaler('cuda', enabled=False)
    la = _backward(a, batch, y, loss_fn, scaler, False, torch.device('cpu'))
    z = b(batch.frames, batch.lengths, batch.segments)                  # every head's forward first, one summed backward
    lb = sum(loss_fn(z[:, i], y) for i in range(3))
    lb.backward()
    assert torch.equal(la, lb.detach()) and la.requires_grad is False
    for (k, p), q in zip(a.named_parameters(), b.parameters()): assert torch.equal(p.grad, q.grad), k
    assert all(torch.equal(x[0], y_[0]) for x, y_ in zip(a.rng_states, b.rng_states))   # each head's dropout stream moved alike
