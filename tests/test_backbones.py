"""Backbones on tiny randomly initialised models, loaded through the same code path as the real names (no network)."""
import math, os
os.environ['HF_HUB_OFFLINE'] = '1'
os.environ['TRANSFORMERS_OFFLINE'] = '1'

import numpy as np
import pytest
import torch

from sereval.audio import SAMPLE_RATE
from sereval.backbones import (ALIASES, BACKBONES, EMOWHISPER_HUB, HOP, PAPER_BATCH, EmoWhisperEncoder, HFEncoder,
                               OpenAIWhisperEncoder, backbone_slug, backbone_table, get_backbone, paper_frames, resolve)
from sereval.errors import SerevalError
from sereval.layout import Layout, slug
from sereval.store import store_dir, write_store
from sereval.testing import random_emowhisper_checkpoint, random_whisper_checkpoint

SR = SAMPLE_RATE


def wave(seconds, seed=0, sr=SR):
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    return (0.2 * np.sin(2 * np.pi * (150 + 50 * seed) * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


LENGTHS = [1.0, 0.37, 2.21, 0.05]


def conv_frames(n, kernels=(10, 3, 3, 3, 3, 2, 2), strides=(5, 2, 2, 2, 2, 2, 2)):
    for k, s in zip(kernels, strides): n = (n - k) // s + 1
    return n


def check_batch_vs_single(enc, waves, tol=1e-3):
    "Batched features equal single-clip ones on the frames both have (the paper's count may give a clip one frame more in a batch)."
    batch = enc.encode(waves, batch_size=len(waves))
    for w, b in zip(waves, batch):
        single = enc.encode([w], batch_size=1)[0]
        assert single.shape[1] == b.shape[1] and 0 <= len(b) - len(single) <= 1
        n = len(single)
        np.testing.assert_allclose(b[:n], single, atol=tol, rtol=tol)
    return batch


def paper_counts(lengths, out_len, batch=PAPER_BATCH):
    "The paper's frame counts: batches of `batch` consecutive clips, each clip keeps `samples // 320` of its batch's output frames."
    out = []
    for s in range(0, len(lengths), batch):
        group = lengths[s:s + batch]
        out += [min(n // HOP, out_len(max(group))) for n in group]
    return out


def check_f16_round_trip(tmp_path, enc, feats):
    rows = [dict(clip_id=f'c{i}', path=f'c{i}.wav', checksum='x', label='neutral', speaker='s') for i in range(len(feats))]
    st = write_store(tmp_path / 'store', enc.name, 'demo', rows, feats, frame_rate=enc.frame_rate)
    for i, f in enumerate(feats):
        back = st.clip(i).astype(np.float32)
        assert back.shape == f.shape
        np.testing.assert_allclose(back, f, rtol=1e-3, atol=1e-3 * (np.abs(f).max() + 1e-6))


@pytest.fixture(scope='module')
def whisper_ckpt(tmp_path_factory):
    return random_whisper_checkpoint(tmp_path_factory.mktemp('ow') / 'tiny.pt', (128, 48, 2, 2))   # large-v3's 128 mel bands


def test_openai_whisper_checkpoint(whisper_ckpt, tmp_path):
    enc = get_backbone(str(whisper_ckpt), device='cpu')
    assert isinstance(enc, OpenAIWhisperEncoder) and enc.n_mels == 128
    assert (enc.dim, enc.frame_rate, enc.sample_rate) == (48, 50.0, SR)
    waves = [wave(s, i) for i, s in enumerate(LENGTHS)] + [wave(31.0, 9)]
    feats = check_batch_vs_single(enc, waves)
    assert [len(f) for f in feats] == [len(w) // HOP for w in waves[:-1]] + [1500]   # samples // 320, as the paper
    check_f16_round_trip(tmp_path, enc, feats)
    assert enc.features == 'paper' and enc.min_samples == HOP
    # whisper:<file> goes the same way
    assert resolve(f'whisper:{whisper_ckpt}')[1].source == str(whisper_ckpt)


def _save(tmp_path, name, model, fe):
    d = tmp_path / name
    model.save_pretrained(d); fe.save_pretrained(d)
    return d


@pytest.fixture(scope='module')
def hf_models(tmp_path_factory):
    import transformers as T
    tmp = tmp_path_factory.mktemp('hf')
    torch.manual_seed(0)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                 conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    fe = T.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True,
                                   return_attention_mask=True)
    out = {
        'wav2vec2': _save(tmp, 'wav2vec2', T.Wav2Vec2Model(T.Wav2Vec2Config(feat_extract_norm='layer', do_stable_layer_norm=True, **small)), fe),
        'hubert': _save(tmp, 'hubert', T.HubertModel(T.HubertConfig(feat_extract_norm='layer', do_stable_layer_norm=True, **small)), fe),
        'wavlm': _save(tmp, 'wavlm', T.WavLMModel(T.WavLMConfig(feat_extract_norm='layer', do_stable_layer_norm=True, **small)), fe),
        'wav2vec2-group': _save(tmp, 'wav2vec2-group', T.Wav2Vec2Model(T.Wav2Vec2Config(feat_extract_norm='group', **small)),
                                T.Wav2Vec2FeatureExtractor(return_attention_mask=False, do_normalize=True)),
        'whisper': _save(tmp, 'whisper', T.WhisperModel(T.WhisperConfig(
            vocab_size=64, pad_token_id=1, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, num_mel_bins=80, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_source_positions=1500,
            max_target_positions=8)), T.WhisperFeatureExtractor(feature_size=80)),
        'w2v-bert': _save(tmp, 'w2v-bert', T.Wav2Vec2BertModel(T.Wav2Vec2BertConfig(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, output_hidden_size=32,
            feature_projection_input_dim=160)), T.SeamlessM4TFeatureExtractor()),
    }
    return out


@pytest.mark.parametrize('kind', ['wav2vec2', 'hubert', 'wavlm'])
def test_ssl_models(hf_models, kind, tmp_path):
    enc = get_backbone(str(hf_models[kind]), device='cpu')
    assert isinstance(enc, HFEncoder) and not enc.fixed_length_batches
    assert (enc.dim, enc.frame_rate, enc.sample_rate, enc.hop) == (32, 50.0, SR, HOP)
    assert enc.keep_order and enc.batch_size == PAPER_BATCH
    waves = [wave(s, i) for i, s in enumerate(LENGTHS)]
    feats = check_batch_vs_single(enc, waves)
    assert [len(f) for f in feats] == paper_counts([len(w) for w in waves], conv_frames)
    assert [enc.n_frames(len(w)) for w in waves] == [len(w) // HOP for w in waves]
    check_f16_round_trip(tmp_path, enc, feats)


def test_group_norm_model_batches_equal_lengths_only(hf_models):
    enc = get_backbone(str(hf_models['wav2vec2-group']), device='cpu')
    assert enc.fixed_length_batches
    waves = [wave(s, i) for i, s in enumerate([0.5, 0.8, 0.5])]
    feats = check_batch_vs_single(enc, waves, tol=1e-4)
    assert [len(f) for f in feats] == [min(len(w) // HOP, conv_frames(len(w))) for w in waves]


def test_transformers_whisper(hf_models, tmp_path):
    enc = get_backbone(str(hf_models['whisper']), device='cpu')
    assert enc.model_type == 'whisper' and (enc.dim, enc.frame_rate) == (32, 50.0)
    waves = [wave(s, i) for i, s in enumerate(LENGTHS)]
    feats = check_batch_vs_single(enc, waves)
    assert [len(f) for f in feats] == [len(w) // HOP for w in waves]
    check_f16_round_trip(tmp_path, enc, feats)


def test_w2v_bert(hf_models):
    enc = get_backbone(str(hf_models['w2v-bert']), device='cpu')
    assert (enc.dim, enc.frame_rate) == (32, 50.0)
    waves = [wave(s, i) for i, s in enumerate([1.0, 0.37, 2.21])]
    feats = check_batch_vs_single(enc, waves)
    # 25 ms fbank windows every 10 ms, stacked in pairs (the extractor pads to an even count); at most samples // 320
    assert [len(f) for f in feats] == paper_counts([len(w) for w in waves], lambda n: -(-((n - 400) // 160 + 1) // 2))


def test_offline_backbones(tmp_path):
    waves = [wave(s, i) for i, s in enumerate(LENGTHS)]
    lm = get_backbone('whisper-logmel')
    feats = check_batch_vs_single(lm, waves, tol=1e-5)
    assert [f.shape for f in feats] == [(math.ceil(len(w) / HOP), 80) for w in waves]
    check_f16_round_trip(tmp_path / 'lm', lm, feats)
    eg = get_backbone('egemaps')
    feats = eg.encode(waves)
    assert all(f.shape[1] == 25 and np.isfinite(f).all() for f in feats)
    assert abs(len(feats[2]) - len(waves[2]) / HOP) <= 3
    check_f16_round_trip(tmp_path / 'eg', eg, feats)


def test_every_spelling_names_one_folder(tmp_path):
    "A registry name, its aliases and its spellings give one slug, one store folder and the run layout's store path."
    for key in BACKBONES:
        names = [key, key.upper(), *(a for a, k in ALIASES.items() if k == key)]
        assert {backbone_slug(n) for n in names} == {slug(key)}
        assert {store_dir(Layout(tmp_path).embeddings, n, 'c') for n in names} == {Layout(tmp_path).store(slug(key), 'c')}
    assert store_dir(tmp_path, 'org/Some-Model', 'c') == tmp_path / 'orgsomemodel' / 'c'   # any other name: its own slug


def test_load_errors(tmp_path):
    with pytest.raises(SerevalError, match='cannot load'):
        get_backbone(str(tmp_path))                      # empty folder: no config
    with pytest.raises(SerevalError, match='cannot load'):
        get_backbone('sereval-test/does-not-exist')      # offline hub id
    (tmp_path / 'x.txt').write_text('hi')
    with pytest.raises(SerevalError, match='not an openai-whisper'):
        get_backbone(str(tmp_path / 'x.txt'))


def _tiny_clap(tmp_path, fusion):
    import transformers as T
    torch.manual_seed(0)
    audio = T.ClapAudioConfig(hidden_size=32, patch_embeds_hidden_size=16, depths=[1, 1, 1, 1],
                              num_attention_heads=[1, 1, 1, 1], projection_dim=16, enable_fusion=fusion)
    text = T.ClapTextConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                            intermediate_size=16, projection_dim=16)
    model = T.ClapModel(T.ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16))
    return _save(tmp_path, 'clap', model, T.ClapFeatureExtractor())


@pytest.mark.parametrize('fusion', [False, True])
def test_clap_paper_grid(tmp_path, fusion):
    "The paper's CLAP features: every patch token of the (frequency x time) grid, untrimmed, whatever the clip's length."
    d = _tiny_clap(tmp_path, fusion)
    enc = get_backbone(str(d), device='cpu')
    assert enc.model_type == 'clap' and enc.clap_features == 'grid' and enc.sample_rate == 48000
    assert enc.dim == 16 * 2 ** 3                    # patch size x 2^(stages-1), 768 for the real model
    waves = [wave(s, i, sr=48000) for i, s in enumerate([3.0, 12.5, 0.2])]
    feats = check_batch_vs_single(enc, waves)
    assert [f.shape for f in feats] == [(2 * 32, enc.dim)] * 3          # F x T = 2 x 32 tokens for every clip
    assert enc.n_frames(len(waves[1])) == 64
    assert enc.frame_rate == pytest.approx(6.4)       # 64 tokens per 10 s window
    # the order is frequency row by row: the tokens are the tower's [dim, F, T] grid flattened
    x = enc.fe([waves[0]], sampling_rate=48000, return_tensors='pt', truncation=enc.truncation)
    grid = enc._run(**x)[0].numpy()                   # [dim, F, T]
    np.testing.assert_allclose(feats[0], grid.reshape(enc.dim, -1).T, atol=1e-5)
    np.testing.assert_allclose(feats[0][32:], grid[:, 1].T, atol=1e-5)  # the second frequency row follows the first
    np.testing.assert_array_equal(enc.encode([waves[1]])[0], feats[1])  # the 10 s crop of a long clip is repeatable
    assert enc.source == f'hf:{d} [paper]'


def test_clap_per_time_option(tmp_path):
    "sereval's option `clap-per-time`: 10 s windows, frequency rows averaged, trimmed to the audio; its own slug."
    d = _tiny_clap(tmp_path, False)
    enc = get_backbone(f'clap-per-time:{d}', device='cpu')
    assert (enc.name, enc.clap_features, backbone_slug(enc.name)) == ('clap-per-time', 'per-time', 'clappertime')
    assert enc.frame_rate == pytest.approx(3.2) and enc.source == f'hf:{d} [per-time]'
    waves = [wave(s, i, sr=48000) for i, s in enumerate([3.0, 12.5])]
    feats = check_batch_vs_single(enc, waves)
    assert [len(f) for f in feats] == [math.ceil(32 * 0.3), 32 + math.ceil(32 * 0.25)]
    grid = get_backbone(str(d), device='cpu').encode(waves[:1])[0]   # per-time frame t = mean of the grid's rows at t
    np.testing.assert_allclose(feats[0], (grid[:32] + grid[32:])[:len(feats[0])] / 2, atol=1e-4)
    with pytest.raises(SerevalError, match='CLAP models only'):
        HFEncoder('x', str(_save(tmp_path, 'w', *_tiny_wav2vec2())), device='cpu', features='per-time')


def _tiny_wav2vec2(sr=SR):
    import transformers as T
    torch.manual_seed(0)
    cfg = T.Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                           conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                           feat_extract_norm='layer', do_stable_layer_norm=True)
    return T.Wav2Vec2Model(cfg), T.Wav2Vec2FeatureExtractor(sampling_rate=sr, return_attention_mask=True, do_normalize=True)


def test_sample_rate_follows_feature_extractor(tmp_path):
    "A MERT-like model (24 kHz feature extractor): 24 kHz, 75 frames per second, and 320 samples (at 24 kHz) per frame kept."
    enc = get_backbone(str(_save(tmp_path, 'mertlike', *_tiny_wav2vec2(24000))), device='cpu')
    assert (enc.sample_rate, enc.frame_rate, enc.hop) == (24000, 75.0, HOP)
    waves = [wave(s, i, sr=24000) for i, s in enumerate([1.0, 0.5])]
    assert [len(f) for f in enc.encode(waves)] == paper_counts([len(w) for w in waves], conv_frames)


def test_paper_batches(tmp_path):
    "Batches of 8 consecutive clips in input order, zero-padded with a mask; each clip's features equal its features alone."
    enc = get_backbone(str(_save(tmp_path, 'w2v', *_tiny_wav2vec2())), device='cpu')
    lengths = [16000, 5920, 4000, 16320, 8000, 2400, 3300, 12345, 16000, 700]   # 10 clips: batches of 8 and 2
    waves = [wave(n / SR, i) for i, n in enumerate(lengths)]
    feats = enc.encode(waves)
    assert [len(f) for f in feats] == paper_counts(lengths, conv_frames)
    assert len(feats[0]) == 50 and len(enc.encode(waves[:1])[0]) == 49   # 1 s: 50 frames beside a longer clip, 49 alone
    assert len(feats[8]) == 49                                           # the longest of its batch: its own 49
    for i in (0, 5, 9):
        alone = enc.encode([waves[i]])[0]
        np.testing.assert_allclose(feats[i][:len(alone)], alone, atol=1e-4, rtol=1e-4)


def test_short_clips():
    "A clip under 320 samples has no frame under the paper's rule: a clear error, never an empty array."
    assert paper_frames(320) == 1 and paper_frames(639) == 1
    with pytest.raises(SerevalError, match='shorter than one frame'):
        paper_frames(319)


@pytest.fixture(scope='module')
def emo_ckpt(tmp_path_factory):
    return random_emowhisper_checkpoint(tmp_path_factory.mktemp('emo') / 'model_2.ckpt')


def test_emotionwhisper_registry():
    spec = BACKBONES['emotionwhisper']
    assert spec.kind == 'emowhisper' and spec.source == EMOWHISPER_HUB and spec.published and not spec.in_paper
    assert 'emotional speech' in spec.note and 'not comparable' in spec.note
    row = backbone_table().set_index('slug').loc['emotionwhisper']
    assert (row['hub_id'], row['feature_dim'], row['in_paper'], row['published']) == (EMOWHISPER_HUB, 1024, False, True)
    for name in ('emotionwhisper', 'EmoWhisper', 'emotion-whisper', EMOWHISPER_HUB, 'emotionwhisper:/x/model.ckpt'):
        assert backbone_slug(name) == 'emotionwhisper'


def test_emotionwhisper_from_release_file(emo_ckpt, tmp_path):
    "The release's state dict (encoder.* and an emotion head), as a file, a folder holding it, or wrapped as Lightning saves it."
    enc = get_backbone(f'emotionwhisper:{emo_ckpt}', device='cpu')
    assert isinstance(enc, EmoWhisperEncoder) and (enc.name, enc.dim, enc.frame_rate, enc.model_type) == ('emotionwhisper', 64, 50.0, 'whisper')
    waves = [wave(s, i) for i, s in enumerate(LENGTHS)]
    feats = check_batch_vs_single(enc, waves)
    assert [len(f) for f in feats] == [len(w) // HOP for w in waves]
    assert enc.source == f'emowhisper:{emo_ckpt} [paper]'
    # the encoder is the checkpoint's: the same features as transformers' WhisperEncoder with those weights
    import transformers as T
    sd = torch.load(emo_ckpt)
    from transformers.models.whisper.modeling_whisper import WhisperEncoder
    ref = WhisperEncoder(enc.model.config).eval()
    ref.load_state_dict({k[len('encoder.'):]: v for k, v in sd.items() if k.startswith('encoder.')})
    x = enc.fe([waves[0]], sampling_rate=SR, return_tensors='pt')['input_features']
    with torch.no_grad(): h = ref(x).last_hidden_state[0, :len(waves[0]) // HOP].numpy()
    np.testing.assert_allclose(feats[0], h, atol=1e-4)
    # a folder holding the file; a Lightning-style wrapped state dict with a 'model.' prefix
    d = tmp_path / 'release'; d.mkdir(); (d / 'model_2.ckpt').write_bytes(emo_ckpt.read_bytes())
    np.testing.assert_allclose(get_backbone(f'emotionwhisper:{d}', device='cpu').encode(waves[:1])[0], feats[0], atol=1e-5)
    torch.save({'state_dict': {f'model.{k}': v for k, v in sd.items()}, 'epoch': 3}, tmp_path / 'wrapped.ckpt')
    np.testing.assert_allclose(get_backbone(f'emotionwhisper:{tmp_path / "wrapped.ckpt"}', device='cpu').encode(waves[:1])[0],
                               feats[0], atol=1e-5)


def test_emotionwhisper_from_transformers_folder(hf_models):
    enc = get_backbone(f"emotionwhisper:{hf_models['whisper']}", device='cpu')
    ref = get_backbone(str(hf_models['whisper']), device='cpu')
    w = wave(1.3, 2)
    np.testing.assert_allclose(enc.encode([w])[0], ref.encode([w])[0], atol=1e-5)


def test_emotionwhisper_errors(emo_ckpt, tmp_path):
    d = tmp_path / 'two'; d.mkdir()
    for n in ('a.ckpt', 'b.pt'): (d / n).write_bytes(emo_ckpt.read_bytes())
    with pytest.raises(SerevalError, match='one checkpoint file'):
        get_backbone(f'emotionwhisper:{d}', device='cpu')
    torch.save({'head.weight': torch.zeros(8, 4)}, tmp_path / 'head_only.pt')
    with pytest.raises(SerevalError, match='one Whisper encoder'):
        get_backbone(f'emotionwhisper:{tmp_path / "head_only.pt"}', device='cpu')
    with pytest.raises(SerevalError, match='no file or folder'):
        get_backbone(f'emotionwhisper:{tmp_path / "missing.ckpt"}')
    with pytest.raises(SerevalError, match="emotionwhisper:<file or folder>"):
        get_backbone('emotionwhisper', device='cpu')    # offline here: the hub release cannot be fetched


# ---- hidden layers: `<name>@<layers>` --------------------------------------------------------------------------------

def test_layer_names_and_slugs():
    from sereval.backbones import split_layers, layer_indices
    assert split_layers('wavlm-large@12') == ('wavlm-large', '12') and split_layers('wavlm-large') == ('wavlm-large', '')
    assert backbone_slug('wavlm-large@12') == 'microsoftwavlmlargelayer12' != backbone_slug('wavlm-large@1+2')
    assert backbone_slug('microsoft/wavlm-large') == 'microsoftwavlmlarge'            # the paper's default: unchanged
    assert resolve('wavlm-large@0-4') == ('microsoft/wavlm-large@0-4', resolve('wavlm-large')[1].__class__(
        **{**resolve('wavlm-large')[1].__dict__, 'layers': '0-4'}))
    assert layer_indices('all', 4) == (0, 1, 2, 3, 4) and layer_indices('1-3', 4) == (1, 2, 3) and layer_indices('2+4', 4) == (2, 4)
    for bad in ('x@', 'x@1-', 'x@a', 'x@1,2'):
        with pytest.raises(SerevalError, match="after '@'"): split_layers(bad)
    with pytest.raises(SerevalError, match='weights-free'): resolve('whisper-logmel@1')
    with pytest.raises(SerevalError, match='hidden states 0'): layer_indices('5', 4)
    with pytest.raises(SerevalError, match='each named once'): layer_indices('2+2', 4)


def _whisper_block_outputs(model, mel):
    "Hidden states of an openai-whisper encoder read by hooks on the full model's forward: the input of block 0, every block's output, ln_post's output."
    got, hooks = [], [model.blocks[0].register_forward_pre_hook(lambda m, a: got.append(a[0]))]
    hooks += [b.register_forward_hook(lambda m, a, o: got.append(o)) for b in model.blocks]
    with torch.no_grad(): last = model(mel)
    for h in hooks: h.remove()
    return got[:-1] + [last]


def test_openai_whisper_layers_equal_the_full_models_hidden_states(whisper_ckpt):
    import whisper
    full = get_backbone(str(whisper_ckpt), device='cpu')
    w = wave(1.3)
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(w)), n_mels=full.n_mels)[None]
    ref = _whisper_block_outputs(full.model, mel)
    n = len(w) // HOP
    assert full.n_layers == 2 and len(ref) == 3
    for L in range(3):
        f = get_backbone(f'{whisper_ckpt}@{L}', device='cpu').encode([w])[0]
        np.testing.assert_allclose(f, ref[L][0, :n].numpy(), atol=1e-5)
    np.testing.assert_allclose(get_backbone(f'{whisper_ckpt}@2', device='cpu').encode([w])[0], full.encode([w])[0], atol=1e-6)
    both = get_backbone(f'{whisper_ckpt}@0+2', device='cpu')
    assert both.dim == 2 * full.dim and both.layer_meta == dict(layers=[0, 2], n_layers=2, layer_dim=full.dim)
    f = both.encode([w])[0]
    np.testing.assert_allclose(f, np.concatenate([ref[0][0, :n], ref[2][0, :n]], 1), atol=1e-5)
    assert full.layer_meta == dict(layers=[2], n_layers=2, layer_dim=full.dim)     # the default: the last hidden state


@pytest.mark.parametrize('kind', ['wav2vec2', 'hubert', 'wavlm', 'whisper', 'w2v-bert'])
def test_transformers_layers_equal_the_full_models_hidden_states(hf_models, kind):
    full = get_backbone(str(hf_models[kind]), device='cpu')
    w = wave(1.1, 2)
    x = full.fe(w, sampling_rate=SR, return_tensors='pt')
    with torch.no_grad(): out = full.model(**x, output_hidden_states=True)
    assert len(out.hidden_states) == full.n_layers + 1
    hs = [*out.hidden_states[:-1], out.last_hidden_state]     # the last layer is the last hidden state (after any final norm)
    n = len(full.encode([w])[0])
    for L in range(full.n_layers + 1):
        f = get_backbone(f'{hf_models[kind]}@{L}', device='cpu').encode([w])[0]
        assert f.shape == (n, full.dim)
        np.testing.assert_allclose(f, hs[L][0, :n].numpy(), atol=1e-4)
    np.testing.assert_allclose(get_backbone(f'{hf_models[kind]}@{full.n_layers}', device='cpu').encode([w])[0],
                               full.encode([w])[0], atol=1e-5)                  # the last layer is the paper's features
    allf = get_backbone(f'{hf_models[kind]}@all', device='cpu')
    assert allf.dim == (full.n_layers + 1) * full.dim and allf.layer_meta['layers'] == list(range(full.n_layers + 1))
