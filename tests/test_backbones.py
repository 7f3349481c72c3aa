"""Backbones on tiny randomly initialised models, loaded through the same code path as the real names (no network)."""
import math, os
os.environ['HF_HUB_OFFLINE'] = '1'
os.environ['TRANSFORMERS_OFFLINE'] = '1'

import numpy as np
import pytest
import torch

from sereval.audio import SAMPLE_RATE
from sereval.backbones import (ALIASES, BACKBONES, HOP, HFEncoder, OpenAIWhisperEncoder, backbone_slug, get_backbone,
                               resolve)
from sereval.errors import SerevalError
from sereval.layout import Layout, slug
from sereval.store import store_dir, write_store
from sereval.testing import random_whisper_checkpoint

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
    batch = enc.encode(waves, batch_size=len(waves))
    for w, b in zip(waves, batch):
        single = enc.encode([w], batch_size=1)[0]
        assert single.shape == b.shape
        np.testing.assert_allclose(b, single, atol=tol, rtol=tol)
    return batch


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
    assert [len(f) for f in feats] == [math.ceil(len(w) / HOP) for w in waves[:-1]] + [1500]
    check_f16_round_trip(tmp_path, enc, feats)
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
    assert (enc.dim, enc.frame_rate, enc.sample_rate) == (32, 50.0, SR)
    waves = [wave(s, i) for i, s in enumerate(LENGTHS)]
    feats = check_batch_vs_single(enc, waves)
    assert [len(f) for f in feats] == [conv_frames(len(w)) for w in waves]
    check_f16_round_trip(tmp_path, enc, feats)


def test_group_norm_model_batches_equal_lengths_only(hf_models):
    enc = get_backbone(str(hf_models['wav2vec2-group']), device='cpu')
    assert enc.fixed_length_batches
    waves = [wave(s, i) for i, s in enumerate([0.5, 0.8, 0.5])]
    feats = check_batch_vs_single(enc, waves, tol=1e-4)
    assert [len(f) for f in feats] == [conv_frames(len(w)) for w in waves]


def test_transformers_whisper(hf_models, tmp_path):
    enc = get_backbone(str(hf_models['whisper']), device='cpu')
    assert enc.model_type == 'whisper' and (enc.dim, enc.frame_rate) == (32, 50.0)
    waves = [wave(s, i) for i, s in enumerate(LENGTHS)]
    feats = check_batch_vs_single(enc, waves)
    assert [len(f) for f in feats] == [math.ceil(len(w) / HOP) for w in waves]
    check_f16_round_trip(tmp_path, enc, feats)


def test_w2v_bert(hf_models):
    enc = get_backbone(str(hf_models['w2v-bert']), device='cpu')
    assert (enc.dim, enc.frame_rate) == (32, 50.0)
    waves = [wave(s, i) for i, s in enumerate([1.0, 0.37, 2.21])]
    feats = check_batch_vs_single(enc, waves)
    # 25 ms fbank windows every 10 ms, stacked in pairs
    assert [len(f) for f in feats] == [((len(w) - 400) // 160 + 1) // 2 for w in waves]


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


@pytest.mark.parametrize('fusion', [False, True])
def test_clap_audio_tower(tmp_path, fusion):
    import transformers as T
    torch.manual_seed(0)
    audio = T.ClapAudioConfig(hidden_size=32, patch_embeds_hidden_size=16, depths=[1, 1, 1, 1],
                              num_attention_heads=[1, 1, 1, 1], projection_dim=16, enable_fusion=fusion)
    text = T.ClapTextConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                            intermediate_size=16, projection_dim=16)
    model = T.ClapModel(T.ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16))
    d = _save(tmp_path, 'clap', model, T.ClapFeatureExtractor())
    enc = get_backbone(str(d), device='cpu')
    assert enc.model_type == 'clap' and enc.sample_rate == 48000 and enc.dim == 16 * 2 ** 3  # patch size x 2^(stages-1), 768 for the real model
    assert enc.frame_rate == pytest.approx(3.2)
    waves = [wave(s, i, sr=48000) for i, s in enumerate([3.0, 12.5])]
    feats = check_batch_vs_single(enc, waves)
    # 32 frames per 10 s window, trimmed to the frames covering the audio
    assert [len(f) for f in feats] == [math.ceil(32 * 0.3), 32 + math.ceil(32 * 0.25)]


def test_sample_rate_follows_feature_extractor(tmp_path):
    "A MERT-like model (24 kHz feature extractor): the encoder reports 24 kHz and 75 frames per second."
    import transformers as T
    torch.manual_seed(0)
    cfg = T.Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                           conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                           feat_extract_norm='layer', do_stable_layer_norm=True)
    fe = T.Wav2Vec2FeatureExtractor(sampling_rate=24000, return_attention_mask=True, do_normalize=True)
    enc = get_backbone(str(_save(tmp_path, 'mertlike', T.Wav2Vec2Model(cfg), fe)), device='cpu')
    assert (enc.sample_rate, enc.frame_rate) == (24000, 75.0)
    waves = [wave(s, i, sr=24000) for i, s in enumerate([1.0, 0.5])]
    assert [len(f) for f in enc.encode(waves)] == [conv_frames(len(w)) for w in waves]
