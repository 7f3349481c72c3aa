"""Extraction into the store: interruption (injected failure, SIGKILL), resume, changed audio, unreadable clips."""
import math, os, signal, subprocess, sys, textwrap, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sereval.audio import load_audio
from sereval.backbones import HOP, Encoder, get_backbone
from sereval.cli import main
from sereval.corpora import write_manifest
from sereval.embed import embed_corpus
from sereval.recipes import scan_root
from sereval.store import FRAMES, open_store, store_dir
from sereval.synth import make_demo, DEMO_CORPORA
from sereval.testing import random_whisper_checkpoint

BACKBONE = 'whisper-logmel'


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = make_demo(tmp_path_factory.mktemp('demo') / 'data', size=0.15, progress=False,
                     corpora=[c for c in DEMO_CORPORA if c.name in ('demo-emodb', 'demo-emovo')])
    manifest, _ = scan_root(root)
    return root, manifest


@pytest.fixture(scope='module')
def encoder():
    return get_backbone(BACKBONE)


def copy_corpus(manifest, dest):
    "A private copy of the demo files (tests modify them), with the manifest pointing at it."
    rows = []
    for r in manifest.to_dict('records'):
        p = Path(dest) / r['corpus'] / r['relpath']; p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(Path(r['path']).read_bytes())
        rows.append({**r, 'path': str(p)})
    return pd.DataFrame(rows)


def check_store(store_root, manifest, enc, name=BACKBONE, skipped=()):
    "Every readable clip exactly once, with the frames a direct encoding gives, and no stray bytes."
    for corpus, m in manifest.groupby('corpus'):
        st = open_store(store_root, name, corpus)
        assert st.complete
        want = sorted(set(m['relpath']) - set(skipped))
        assert sorted(st.index['clip_id']) == want                   # each clip exactly once
        assert not st.index['clip_id'].duplicated().any()
        size = (st.folder / FRAMES).stat().st_size
        assert size == int(st.index['n_frames'].sum()) * st.dim * 2  # no hole, no torn tail
        ends = (st.index['start'] + st.index['n_frames']).to_numpy()
        assert (np.sort(st.index['start'].to_numpy())[1:] == np.sort(ends)[:-1]).all()  # contiguous, no overlap
        assert not list(st.folder.glob('*.tmp')) and not list(st.folder.glob('*.compact'))   # no debris of a crash
        for r in st.index.itertuples():
            ref = enc.encode([load_audio(r.path, sr=enc.sample_rate)])[0]
            got = st.clip_by_id(r.clip_id).astype(np.float32)
            assert got.shape == ref.shape, r.clip_id
            np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-3 * (np.abs(ref).max() + 1e-6))


class Boom(Exception):
    pass


class FailingEncoder(Encoder):
    "Delegates to a real encoder and raises after `after` encode calls (an injected crash)."
    def __init__(self, inner, after):
        self.inner, self.after, self.calls = inner, after, 0
        self.name, self.dim, self.frame_rate, self.sample_rate = inner.name, inner.dim, inner.frame_rate, inner.sample_rate
        self.batch_size, self.device, self.source = 2, 'cpu', inner.source

    def encode(self, waves, batch_size=None):
        self.calls += 1
        if self.calls > self.after: raise Boom('injected failure')
        return self.inner.encode(waves)


def test_injected_failure_then_resume(demo, encoder, tmp_path):
    _, manifest = demo
    store = tmp_path / 'emb'
    with pytest.raises(Boom):
        embed_corpus(manifest, FailingEncoder(encoder, after=2), store, commit_every=3, chunk=4, progress=False)
    first = sorted(manifest['corpus'].unique())[0]
    part = open_store(store, BACKBONE, first)
    assert len(part) == 8 < (manifest['corpus'] == first).sum() and not part.complete   # 2 chunks of 4, committed on the way out
    s = embed_corpus(manifest, encoder, store, progress=False)
    assert int(s['reused'].sum()) == len(part)                        # committed clips are not recomputed
    assert int(s['clips'].sum()) == len(manifest)
    check_store(store, manifest, encoder)


KILL_SCRIPT = textwrap.dedent('''
    import os, sys, time
    import pandas as pd
    from sereval.backbones import get_backbone
    from sereval.embed import embed_corpus
    manifest, store, backbone, mode, at, ready = sys.argv[1:]
    at, count, rename = int(at), [0], os.rename
    def block():                  # tell the test how far we got, then wait for the kill: we cannot finish first
        with open(ready + '.part', 'w') as f: f.write(str(count[0]))
        rename(ready + '.part', ready)
        while True: time.sleep(60)
    enc = get_backbone(backbone)
    if mode == 'encode':          # between two commits: before encoding, once `at` clips are encoded (and committed)
        encode = enc.encode
        def counting_encode(waves, batch_size=None):
            if count[0] >= at: block()
            count[0] += len(waves); return encode(waves, batch_size)
        enc.encode = counting_encode
    else:                         # inside a commit: frames appended, new index written and fsynced, not yet in place
        replace = os.replace
        def counting_replace(src, dst, *a, **k):
            if os.path.basename(str(dst)) == 'index.parquet':
                if count[0] + 1 == at: block()
                count[0] += 1
            return replace(src, dst, *a, **k)
        os.replace = counting_replace
    embed_corpus(pd.read_parquet(manifest), enc, store, commit_every=1, chunk=2, progress=False)
    print('DONE')
''')


def n_committed(store, corpora):
    n = 0
    for c in corpora:
        try: n += len(open_store(store, BACKBONE, c))
        except Exception: pass
    return n


def kill_at(tmp_path, mf, store, mode, at):
    "Run the extraction in a child process until it blocks at its kill point, SIGKILL it there; its count at that point."
    script = tmp_path / 'kill_embed.py'; script.write_text(KILL_SCRIPT)
    ready = tmp_path / f'ready-{mode}-{at}'
    proc = subprocess.Popen([sys.executable, str(script), str(mf), str(store), BACKBONE, mode, str(at), str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    while not ready.exists():
        assert proc.poll() is None, f'the child ended before its kill point: {proc.communicate()}'
        assert time.monotonic() - t0 < 600, 'the child did not reach its kill point in 10 minutes'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL); proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return int(ready.read_text())


@pytest.mark.slow
def test_sigkill_then_resume(demo, encoder, tmp_path):
    "Killed between two commits, then inside one: every committed clip survives and is reused; nothing is half-written."
    _, manifest = demo
    mf = write_manifest(manifest, tmp_path / 'manifest.parquet')
    store = tmp_path / 'emb'
    corpora = sorted(manifest['corpus'].unique())
    encoded = kill_at(tmp_path, mf, store, 'encode', 3)
    assert encoded >= 3 and n_committed(store, corpora) == encoded          # commit_every=1: all encoded clips are in
    before = n_committed(store, corpora)
    replaced = kill_at(tmp_path, mf, store, 'replace', 6)
    assert replaced == 5
    stale = [p for c in corpora for p in store_dir(store, BACKBONE, c).glob('*.tmp')]
    assert stale, 'the second kill should land inside a commit, leaving its temporary index behind'
    committed = n_committed(store, corpora)
    assert before < committed < len(manifest)
    s = embed_corpus(manifest, encoder, store, progress=False)
    assert int(s['reused'].sum()) == committed                              # committed clips are not recomputed
    assert int(s['embedded'].sum()) == len(manifest) - committed
    check_store(store, manifest, encoder)


def test_changed_and_unreadable(demo, encoder, tmp_path, capsys):
    _, manifest = demo
    manifest = copy_corpus(manifest, tmp_path / 'data')
    store = tmp_path / 'emb'
    embed_corpus(manifest, encoder, store, progress=False)
    check_store(store, manifest, encoder)
    # one file changes (shorter), one becomes unreadable, one is removed from the manifest
    changed, broken = manifest.path[1], manifest.path[2]
    x, sr = sf.read(changed, dtype='float32'); sf.write(changed, x[: len(x) // 3], sr)
    Path(broken).write_bytes(b'not audio at all')
    gone = manifest.relpath[3]
    m2 = manifest.drop(index=3).reset_index(drop=True)
    s = embed_corpus(m2, encoder, store, progress=False)
    out = capsys.readouterr().out
    assert 'skipped 1 clip' in out and broken in out
    assert int(s['embedded'].sum()) == 1
    bad_rel = manifest.relpath[2]
    check_store(store, m2, encoder, skipped=[bad_rel])
    st = open_store(store, BACKBONE, manifest.corpus[2])
    assert st.meta['n_skipped'] == 1 and st.meta['skipped'][0]['path'] == broken
    assert gone not in set(st.index['clip_id'])
    row = open_store(store, BACKBONE, manifest.corpus[1]).index.set_index('path').loc[changed]
    assert row.n_frames == math.ceil(len(x) // 3 / HOP)


def test_embed_command(demo, tmp_path, capsys):
    "`sereval embed` from a data root, then from the manifests it wrote; a missing data root is a clear error."
    root, manifest = demo
    out = tmp_path / 'out'
    assert main(['embed', '--backbone', BACKBONE, '--data-root', str(root), '--out', str(out), '--corpora', 'demo-emodb',
                 '--quiet']) == 0
    assert (out / 'manifests' / 'demo-emodb.parquet').exists()
    st = open_store(out / 'embeddings', BACKBONE, 'demo-emodb')
    assert len(st) == (manifest.corpus == 'demo-emodb').sum() and st.complete
    capsys.readouterr()
    assert main(['embed', '--backbone', BACKBONE, '--manifest', str(out / 'manifests'), '--out', str(out), '--quiet']) == 0
    summary = capsys.readouterr().out
    assert 'demo-emodb' in summary and f'stores: {out / "embeddings" / "whisperlogmel"}' in summary
    assert open_store(out / 'embeddings', BACKBONE, 'demo-emodb').meta['n_clips'] == len(st)   # nothing left to do
    assert main(['embed', '--backbone', BACKBONE, '--data-root', str(tmp_path / 'nope'), '--out', str(out)]) == 2
    assert 'does not exist' in capsys.readouterr().err


def test_relabel_without_reembedding(demo, encoder, tmp_path):
    _, manifest = demo
    m = manifest[manifest.corpus == 'demo-emodb'].reset_index(drop=True)
    store = tmp_path / 'emb'
    embed_corpus(m, encoder, store, progress=False)
    m2 = m.copy(); m2.loc[0, 'label'] = 'surprise'; m2.loc[1, 'speaker'] = 'renamed'
    s = embed_corpus(m2, encoder, store, progress=False)
    assert int(s['embedded'].sum()) == 0
    idx = open_store(store, BACKBONE, 'demo-emodb').index.set_index('clip_id')
    assert idx.loc[m2.relpath[0], 'label'] == 'surprise' and idx.loc[m2.relpath[1], 'speaker'] == 'renamed'


def test_other_model_same_name_refused(demo, encoder, tmp_path):
    _, manifest = demo
    m = manifest[manifest.corpus == 'demo-emodb'].reset_index(drop=True)
    embed_corpus(m, encoder, tmp_path, progress=False)
    other = get_backbone('whisper-logmel'); other.source = 'hf:some/other-model'
    with pytest.raises(Exception, match='holds features of'):
        embed_corpus(m, other, tmp_path, progress=False)


@pytest.mark.slow
def test_embed_command_with_a_checkpoint_file(demo, tmp_path):
    "A model file goes through `sereval embed` like a registry name; --name picks the store folder."
    root, manifest = demo
    ckpt = random_whisper_checkpoint(tmp_path / 'w.pt', 'tiny')
    out = tmp_path / 'out'
    assert main(['embed', '--backbone', str(ckpt), '--name', 'my-whisper', '--data-root', str(root), '--out', str(out),
                 '--corpora', 'demo-emovo', '--batch-size', '8', '--quiet']) == 0
    st = open_store(out / 'embeddings', 'my-whisper', 'demo-emovo')
    assert st.folder.parent.name == 'mywhisper' and st.dim == 384 and st.meta['source'] == f'whisper:{ckpt} [paper]'
    m = manifest[manifest.corpus == 'demo-emovo']
    assert len(st) == len(m)
    for r in st.index.itertuples():
        assert r.n_frames == len(load_audio(r.path)) // HOP          # the paper's samples // 320


def test_load_for_backbone(tmp_path):
    "A model at another rate gets the clip as the paper gives it: through 16 kHz (nothing above 8 kHz), then resampled."
    from sereval.audio import SAMPLE_RATE
    from sereval.embed import load_for_backbone
    sr = 48000
    t = np.arange(int(0.5 * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(2 * np.pi * 12000 * t)).astype(np.float32)
    sf.write(tmp_path / 'a.wav', x, sr)
    y = load_for_backbone(tmp_path / 'a.wav', sr)
    assert y.dtype == np.float32 and abs(len(y) - 3 * len(load_audio(tmp_path / 'a.wav'))) <= 1
    spec = np.abs(np.fft.rfft(y[2000:-2000])); f = np.fft.rfftfreq(len(y) - 4000, 1 / sr)
    assert spec[f > 9000].max() < 0.01 * spec[np.abs(f - 1000) < 50].max()     # the 12 kHz tone is gone, as in the paper
    np.testing.assert_array_equal(load_for_backbone(tmp_path / 'a.wav', SAMPLE_RATE), load_audio(tmp_path / 'a.wav'))


class _PaperFrames(Encoder):
    "A stand-in model with the paper's frame rule: one frame of zeros per 320 samples."
    def __init__(self):
        super().__init__('paper-frames', 'cpu', 4)
        self.dim, self.frame_rate, self.min_samples, self.source = 3, 50.0, HOP, 'test:paper-frames'
    def _encode_batch(self, waves):
        return [np.zeros((len(w) // HOP, self.dim), np.float32) for w in waves]


def test_clip_shorter_than_a_frame_is_skipped(tmp_path, capsys):
    "A clip under 320 samples, which the paper's rule would leave with no frame, is skipped with its reason."
    from sereval.audio import SAMPLE_RATE
    rows = []
    for i, n in enumerate([8000, 200, 4000]):
        p = tmp_path / f'c{i}.wav'
        sf.write(p, 0.1 * np.sin(np.arange(n) / 7.0).astype(np.float32), SAMPLE_RATE)
        rows.append(dict(path=str(p), corpus='c', label='neutral', speaker='s', clip_id=f'c{i}'))
    s = embed_corpus(pd.DataFrame(rows), _PaperFrames(), tmp_path / 'emb', progress=False)
    assert int(s['clips'].sum()) == 2 and int(s['skipped'].sum()) == 1
    st = open_store(tmp_path / 'emb', 'paper-frames', 'c')
    assert st.index['n_frames'].tolist() == [25, 12]
    assert 'too short' in st.meta['skipped'][0]['reason'] and st.meta['skipped'][0]['path'] == rows[1]['path']
    assert 'fewer than one frame' in capsys.readouterr().out
