"The frame-level head: architecture, packed pooling, reading packed batches from a memory map with bounded memory."
import numpy as np
import pytest
import torch

from sereval.head import FrameMLP, PackedReader, segment_ids, segment_mean


def test_architecture_and_defaults():
    h = FrameMLP(1024)
    assert [type(m).__name__ for m in h.children()] == ['Linear', 'LayerNorm', 'GELU', 'Dropout', 'Linear']
    assert (h.fc1.in_features, h.fc1.out_features, h.fc2.out_features, h.drop.p) == (1024, 512, 8, 0.1)
    assert sum(p.numel() for p in h.parameters()) == 529_928            # "about 500 K for d = 1024"


def test_pooling_is_mean_of_frame_logits_and_packing_is_exact():
    torch.manual_seed(0)
    h = FrameMLP(12, hidden=16).eval()
    lens = [1, 9, 4, 30]
    clips = [torch.randn(n, 12) for n in lens]
    packed = h(torch.cat(clips), torch.tensor(lens))
    for i, c in enumerate(clips):
        torch.testing.assert_close(packed[i], h.frame_logits(c).mean(0))


def test_segment_mean_gradient():
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([2, 5])
    torch.autograd.gradcheck(lambda x: segment_mean(x, segment_ids(lens), lens), (x,))


def _memmap(tmp_path, n, d, seed=0):
    a = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float16)
    a.tofile(tmp_path / 'frames.f16')
    return a, np.memmap(tmp_path / 'frames.f16', dtype=np.float16, mode='r', shape=(n, d))


def test_gather_matches_and_reuse(tmp_path):
    a, mm = _memmap(tmp_path, 500, 6)
    rng = np.random.default_rng(1)
    for reuse in (False, True):
        r = PackedReader(mm, reuse=reuse)
        for _ in range(5):
            starts = rng.integers(0, 450, 7); lens = rng.integers(1, 50, 7)
            b = r.batch(starts, lens)
            want = np.concatenate([a[s:s + n] for s, n in zip(starts, lens)]).astype(np.float32)
            assert b.frames.dtype == torch.float32 and b.frames.is_contiguous()
            np.testing.assert_array_equal(b.frames.numpy(), want)
            assert b.segments.tolist() == np.repeat(np.arange(7), lens).tolist()
    with pytest.raises(ValueError): PackedReader(mm).batch([0], [0])


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
