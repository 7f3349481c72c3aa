"The head on packed batches read from the embedding store, and the memory those reads keep resident."
import numpy as np
import pytest
import torch

from sereval.batches import PackedReader
from sereval.head import FrameMLP
from sereval.store import open_store, write_store


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal((int(n), 6)).astype(np.float32) for n in rng.integers(1, 40, 30)]
    return write_store(tmp_path, 'bb', 'corpus', [dict(clip_id=f'c{i}') for i in range(len(clips))], clips, frame_rate=50.0)


def test_batches_from_the_store_are_its_clips(store):
    "Any subset of a store's clips, in any order, read as one packed batch: each clip's frames are the store's, as float32."
    rng = np.random.default_rng(1)
    starts, lengths = store.index['start'].to_numpy(), store.index['n_frames'].to_numpy()
    for reuse in (False, True):
        r = PackedReader(store.frames, reuse=reuse, release_bytes=1000)
        for _ in range(5):
            sel = rng.choice(len(store), 7, replace=False)
            b = r.batch(starts[sel], lengths[sel])
            want = np.concatenate([store.clip(i) for i in sel]).astype(np.float32)
            assert b.frames.dtype == torch.float32 and b.frames.is_contiguous()
            np.testing.assert_array_equal(b.frames.numpy(), want)
            assert b.segments.tolist() == np.repeat(np.arange(7), lengths[sel]).tolist()


def test_head_on_a_store_batch_is_the_mean_of_each_clips_frame_logits(store):
    torch.manual_seed(0)
    h = FrameMLP(store.dim, hidden=16).eval()
    b = PackedReader(store.frames).batch(store.index['start'], store.index['n_frames'])
    pooled = h(b.frames, b.lengths, b.segments)
    for i in range(len(store)):
        torch.testing.assert_close(pooled[i], h.frame_logits(torch.from_numpy(store.clip(i).astype(np.float32))).mean(0))


def _rss_file_kb():
    for line in open('/proc/self/status'):
        if line.startswith('RssFile:'): return int(line.split()[1])
    return None


@pytest.mark.skipif(_rss_file_kb() is None, reason='needs Linux /proc')
def test_release_keeps_mapped_pages_out_of_resident_memory(tmp_path):
    n, d = 64 * 1024, 1024                                   # 128 MB of float16
    with open(tmp_path / 'frames.f16', 'wb') as f:
        block = np.random.default_rng(0).standard_normal((1024, d)).astype(np.float16).tobytes()
        for _ in range(n // 1024): f.write(block)
    def read_all(release_bytes):
        mm = np.memmap(tmp_path / 'frames.f16', dtype=np.float16, mode='r', shape=(n, d))
        r = PackedReader(mm, release_bytes=release_bytes, reuse=True)
        before, peak = _rss_file_kb(), 0
        for s in range(0, n, 2048):
            r.gather([s], [2048]); peak = max(peak, _rss_file_kb() - before)
        del r, mm
        return peak / 1024                                   # MB
    kept, released = read_all(1 << 40), read_all(8 << 20)
    assert kept > 100 and released < 30, (kept, released)


def test_initial_weights_are_the_papers():
    "Hidden layer Xavier-uniform, output layer normal(std 1/sqrt(fan_in)), biases zero; the draws follow PyTorch's default init."
    torch.manual_seed(0)
    h = FrameMLP(1024, hidden=512)
    w1, w2 = h.fc1.weight.detach().double(), h.fc2.weight.detach().double()
    bound = (6 / (1024 + 512)) ** 0.5
    assert bound * 0.999 < w1.abs().max() <= bound
    assert abs(w1.mean()) < 1e-3 and w1.std() == pytest.approx(bound / 3 ** 0.5, rel=0.01)
    assert abs(w2.mean()) < 0.01 and w2.std() == pytest.approx(512 ** -0.5, rel=0.05)
    assert (w2.abs() > 3 * 512 ** -0.5).any()                      # normal tails, not a uniform bounded at 1/sqrt(512)
    assert not h.fc1.bias.any() and not h.fc2.bias.any()
    torch.manual_seed(0)
    ref1 = torch.nn.Linear(1024, 512); torch.nn.init.xavier_uniform_(ref1.weight)
    ref2 = torch.nn.Linear(512, 8); torch.nn.init.normal_(ref2.weight, std=512 ** -0.5)
    assert torch.equal(h.fc1.weight, ref1.weight) and torch.equal(h.fc2.weight, ref2.weight)


def test_learned_layer_weights_find_the_informative_layer():
    "Frames of 3 layers where only layer 1 carries the class: the weighted-sum head trained by `train_head` puts most weight on it."
    from sereval.head import LayerWeightedHead
    from sereval.protocol import TrainConfig
    from sereval.train import train_head
    rng = np.random.default_rng(0)
    n_clips, n, d = 64, 5, 8
    y = rng.integers(0, 2, n_clips)
    layers = rng.standard_normal((n_clips * n, 3, d)).astype(np.float32)
    layers[:, [0, 2]] *= 4.0                                            # loud noise in layers 0 and 2
    layers[:, 1, :] += 1.0 * np.repeat(2 * y - 1, n)[:, None]           # the signal lives in layer 1 only
    frames = layers.reshape(n_clips * n, 3 * d)
    cfg = TrainConfig(epochs=40, lr=3e-2, batch_size=16, hidden=16)
    model = train_head(frames, np.arange(n_clips) * n, np.full(n_clips, n), y, cfg,
                       make_head=lambda c: LayerWeightedHead(3, d, c.hidden, dropout=c.dropout))
    w = model.layer_weights()
    assert isinstance(model, LayerWeightedHead) and abs(float(w.sum()) - 1) < 1e-6
    assert int(w.argmax()) == 1 and float(w[1]) > 0.5, w
