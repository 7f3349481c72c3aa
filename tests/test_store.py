"""Store crash safety: a crash injected at every durable step of a commit or a compaction leaves, after recovery,
exactly the state before the operation or exactly the state after it."""
import os, shutil, threading, time
from pathlib import Path

import numpy as np
import pytest

import sereval.store as S
from sereval.errors import SerevalError

DIM = 6


class Crash(BaseException):
    pass


def arr(n, v):
    return np.full((n, DIM), v, np.float32) + np.arange(n, dtype=np.float32)[:, None] / 100


def state(root):
    "Clip id -> (checksum, frames) as seen by a reader after recovery, or None when there is no store."
    folder = S.store_dir(root, 'bb', 'corpus')
    if not (folder / S.META).exists(): return None
    S.StoreWriter(root, 'bb', 'corpus', DIM, 50.0).close()              # a writer opening the folder recovers it
    st = S.open_store(root, 'bb', 'corpus')
    assert (folder / S.FRAMES).stat().st_size == len(st.frames) * DIM * 2
    assert not list(folder.glob('*.tmp')) and not list(folder.glob('*.compact')) and not (folder / S.MARKER).exists()
    return {r.clip_id: (r.checksum, st.clip(i).astype(np.float32).round(2).tobytes()) for i, r in enumerate(st.index.itertuples())}


def reader_state(root):
    "What a reader sees without any recovery (no writer has opened the folder since the crash)."
    st = S.open_store(root, 'bb', 'corpus')
    return {r.clip_id: (r.checksum, st.clip(i).astype(np.float32).round(2).tobytes()) for i, r in enumerate(st.index.itertuples())}


def setup_base(root):
    S.write_store(root, 'bb', 'corpus', [dict(clip_id=f'c{i}', checksum='a') for i in range(4)],
                  [arr(3 + i, i) for i in range(4)], frame_rate=50.0)


def op_append(root):
    w = S.StoreWriter(root, 'bb', 'corpus', DIM, 50.0, commit_every=100)
    w.add(dict(clip_id='c9', checksum='a'), arr(5, 9))
    w.add(dict(clip_id='c1', checksum='b'), arr(2, 7))                  # changed audio: replaces c1
    w.remove(['c2'])
    w.commit(); w.close()


def op_finish(root):
    w = S.StoreWriter(root, 'bb', 'corpus', DIM, 50.0, commit_every=100)
    w.add(dict(clip_id='c0', checksum='z'), arr(4, 5))                  # leaves a hole, so finish compacts
    w.finish()


class Injector:
    "Counts durable steps (writes, fsyncs, replaces, unlinks, truncates) and raises Crash at step `at`."
    def __init__(self, monkeypatch, at):
        self.n, self.at = 0, at
        for name in ('fsync', 'replace', 'unlink'):
            orig = getattr(os, name)
            monkeypatch.setattr(os, name, self.wrap(orig))
        orig_unlink = Path.unlink
        monkeypatch.setattr(Path, 'unlink', self.wrap(orig_unlink))

    def wrap(self, fn):
        def f(*a, **k):
            self.n += 1
            if self.n == self.at: raise Crash(f'crash at step {self.at}')
            return fn(*a, **k)
        return f


@pytest.mark.parametrize('op', [op_append, op_finish])
def test_crash_at_every_step(tmp_path, monkeypatch, op):
    base = tmp_path / 'base'; setup_base(base)
    before = state(base)
    ref = tmp_path / 'ref'; shutil.copytree(base, ref); op(ref)
    after = state(ref)
    assert after != before
    # count the steps of a clean run
    probe = tmp_path / 'probe'; shutil.copytree(base, probe)
    with monkeypatch.context() as m:
        inj = Injector(m, at=-1); op(probe); steps = inj.n
    assert steps >= 5
    seen = set()
    for k in range(1, steps + 1):
        root = tmp_path / f'k{k}'; shutil.copytree(base, root)
        with monkeypatch.context() as m:
            Injector(m, at=k)
            with pytest.raises(Crash): op(root)
        seen_by_reader = reader_state(root)
        assert seen_by_reader in (before, after), f'a reader after a crash at step {k} of {steps} sees a third state'
        got = state(root)
        assert got == seen_by_reader or got == after
        assert got in (before, after), f'crash at step {k} of {steps} left a third state'
        seen.add(got == after)
        shutil.rmtree(root)
    assert seen == {False, True}                                         # both outcomes occur


def test_torn_tail_and_damage(tmp_path):
    setup_base(tmp_path)
    folder = S.store_dir(tmp_path, 'bb', 'corpus')
    good = state(tmp_path)
    with open(folder / S.FRAMES, 'ab') as f: f.write(os.urandom(DIM * 2 * 3 + 5))   # torn append, not even whole frames
    (folder / 'index.parquet.123.tmp').write_bytes(b'partial')
    assert state(tmp_path) == good
    with open(folder / S.FRAMES, 'rb+') as f: f.truncate(10)                         # lost committed frames
    with pytest.raises(SerevalError, match='damaged'): S.open_store(tmp_path, 'bb', 'corpus')
    with pytest.raises(SerevalError, match='damaged'): S.StoreWriter(tmp_path, 'bb', 'corpus', DIM, 50.0)


def test_writer_rules(tmp_path):
    setup_base(tmp_path)
    with pytest.raises(SerevalError, match='dim'): S.StoreWriter(tmp_path, 'bb', 'corpus', DIM + 1, 50.0)
    w = S.StoreWriter(tmp_path, 'bb', 'corpus', DIM, 50.0)
    with pytest.raises(SerevalError, match='non-finite'): w.add(dict(clip_id='x'), np.full((2, DIM), np.nan))
    with pytest.raises(SerevalError, match='shape'): w.add(dict(clip_id='x'), np.zeros((2, DIM + 1)))
    w.add(dict(clip_id='big', extra=3), np.full((2, DIM), 1e6))                     # clipped to the float16 range
    w.finish()
    st = S.open_store(tmp_path, 'bb', 'corpus')
    assert np.isfinite(st.clip_by_id('big').astype(np.float32)).all() and st.clip_by_id('big').max() == 65504
    assert 'extra' in st.index.columns and st.meta['n_clips'] == 5 and st.complete
    assert S.list_corpora(tmp_path, 'bb') == ['corpus'] and S.list_corpora(tmp_path, 'other') == []
    with pytest.raises(SerevalError, match='no embedding store'): S.open_store(tmp_path, 'bb', 'nope')
    # reading while a writer is appending sees only committed clips
    w = S.StoreWriter(tmp_path, 'bb', 'corpus', DIM, 50.0, commit_every=1000)
    w.add(dict(clip_id='pending'), arr(2, 1))
    assert 'pending' not in set(S.open_store(tmp_path, 'bb', 'corpus').index.clip_id)
    w.commit()
    assert 'pending' in set(S.open_store(tmp_path, 'bb', 'corpus').index.clip_id)
    assert S.open_store(tmp_path, 'bb', 'corpus').complete is False
    w.close()


def test_reader_during_writes_and_compactions(tmp_path):
    """A reader racing a writer that replaces clips and compacts always sees clips whose frames match their index row,
    and a store opened after a version was finished shows that version (or a later one), never an older one."""
    S.write_store(tmp_path, 'bb', 'corpus', [dict(clip_id=f'c{i}', checksum='0') for i in range(5)],
                  [np.zeros((4 + i, DIM), np.float32) for i in range(5)], frame_rate=50.0)
    versions = range(1, 25)
    stop, errors, finished, fresh = threading.Event(), [], [0], set()

    def reader():
        while not stop.is_set():
            try:
                gen = finished[0]                      # the last version finished before this open
                st = S.open_store(tmp_path, 'bb', 'corpus')
                seen = set()
                for i, r in enumerate(st.index.itertuples()):
                    a = st.clip(i)
                    assert len(a) == 4 + int(r.clip_id[1:]) and (a == float(r.checksum)).all(), (r, a[:1])
                    seen.add(int(r.checksum))
                assert len(st) == 5 and min(seen) >= gen, f'opened after version {gen} was finished, saw {seen}'
                fresh.add(gen)
            except Exception as e:
                errors.append(repr(e)); stop.set()

    t = threading.Thread(target=reader); t.start()
    try:
        for v in versions:
            w = S.StoreWriter(tmp_path, 'bb', 'corpus', DIM, 50.0, commit_every=2)
            for i in range(5):
                w.add(dict(clip_id=f'c{i}', checksum=str(v)), np.full((4 + i, DIM), float(v), np.float32))
            w.finish()                                 # commits 3 times, then compacts the replaced clips' holes
            finished[0] = v
            t0 = time.monotonic()
            while v not in fresh and not stop.is_set():   # let the reader open this version at least once
                assert time.monotonic() - t0 < 60, f'the reader never opened version {v}'
                time.sleep(0.001)
            if stop.is_set(): break
    finally:
        stop.set(); t.join()
    assert not errors, errors[:3]
    assert fresh >= set(versions)


def test_load_after_a_compaction_reads_the_opened_generation(tmp_path):
    "load() returns the frames of the snapshot that was opened, even after a compaction replaced frames.f16."
    S.write_store(tmp_path, 'bb', 'corpus', [dict(clip_id=f'c{i}', checksum='0') for i in range(3)],
                  [np.full((4 + i, DIM), float(i), np.float32) for i in range(3)], frame_rate=50.0)
    old = S.open_store(tmp_path, 'bb', 'corpus')
    w = S.StoreWriter(tmp_path, 'bb', 'corpus', DIM, 50.0)
    w.add(dict(clip_id='c0', checksum='1'), np.full((2, DIM), 9.0, np.float32))   # a replaced clip: finish() compacts
    w.finish()
    assert (old.folder / S.FRAMES).stat().st_ino != old._inode                      # frames.f16 is a new file
    np.testing.assert_array_equal(old.load(), np.asarray(old.frames))
    new = S.open_store(tmp_path, 'bb', 'corpus')
    np.testing.assert_array_equal(new.load(threads=2), np.asarray(new.frames))
