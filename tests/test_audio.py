"Loader tests: every format and every failure, on files generated here."
import hashlib, shutil, subprocess

import numpy as np
import pytest
import soundfile as sf

from sereval.audio import (SAMPLE_RATE, MAX_SECONDS, load_audio, try_load_audio, audio_checksum, ffmpeg_path,
                           AudioError, EmptyAudioError, UnreadableAudioError, TruncatedAudioError, SilentAudioError,
                           NonFiniteAudioError, DecoderMissingError)
from sereval.errors import SerevalError

needs_ffmpeg = pytest.mark.skipif(shutil.which('ffmpeg') is None, reason='ffmpeg not installed')


def tone(sr, seconds, channels=1, freq=220.0, amp=0.5):
    t = np.arange(int(round(sr * seconds))) / sr
    x = amp * np.sin(2 * np.pi * freq * t)
    if channels == 1: return x
    return np.stack([x * (c + 1) / channels for c in range(channels)], axis=1)


@pytest.mark.parametrize('sr', [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize('fmt,subtype', [('WAV', 'PCM_16'), ('WAV', 'PCM_24'), ('WAV', 'PCM_32'), ('WAV', 'FLOAT'),
                                         ('WAV', 'DOUBLE'), ('WAV', 'PCM_U8'), ('FLAC', 'PCM_16'), ('FLAC', 'PCM_24')])
@pytest.mark.parametrize('channels', [1, 2, 6])
def test_soundfile_formats(tmp_path, sr, fmt, subtype, channels):
    x = tone(sr, 0.5, channels)
    p = tmp_path / f'x.{fmt.lower()}'
    sf.write(p, x, sr, subtype=subtype, format=fmt)
    y = load_audio(p)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - SAMPLE_RATE // 2) <= 1
    mono = x.mean(axis=1) if channels > 1 else x
    expect = np.abs(mono).max()
    tol = 0.02 if subtype != 'PCM_U8' else 0.05
    assert abs(np.abs(y[200:-200]).max() - expect) < tol


def test_mono_is_mean_of_channels(tmp_path):
    x = np.zeros((1600, 2)); x[:, 0] = 0.8; x[:, 1] = 0.2
    x[::2] *= -1  # make it AC so that nothing is silent
    sf.write(tmp_path / 's.wav', x, 16000, subtype='FLOAT')
    y = load_audio(tmp_path / 's.wav')
    np.testing.assert_allclose(np.abs(y), 0.5, atol=1e-6)


def test_identity_at_the_target_rate(tmp_path):
    x = (np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32)
    sf.write(tmp_path / 'a.wav', x, SAMPLE_RATE, subtype='FLOAT')
    np.testing.assert_array_equal(load_audio(tmp_path / 'a.wav'), x)


@pytest.mark.parametrize('target', [16000, 24000, 48000])
def test_target_rate_and_resampling_quality(tmp_path, target):
    sf.write(tmp_path / 'a.wav', tone(44100, 1.0, freq=1000.0), 44100, subtype='PCM_16')
    y = load_audio(tmp_path / 'a.wav', sr=target)
    assert len(y) == target
    spec = np.abs(np.fft.rfft(y[2000:-2000] * np.hanning(len(y) - 4000)))
    peak_hz = np.argmax(spec) * target / (len(y) - 4000)
    assert abs(peak_hz - 1000) < 5


def test_cut_at_30_seconds(tmp_path):
    sf.write(tmp_path / 'long.wav', tone(22050, 31.5), 22050)
    assert len(load_audio(tmp_path / 'long.wav')) == int(MAX_SECONDS * SAMPLE_RATE)
    assert len(load_audio(tmp_path / 'long.wav', max_seconds=None)) == int(31.5 * SAMPLE_RATE)
    assert len(load_audio(tmp_path / 'long.wav', max_seconds=2.0, sr=48000)) == 96000


def test_bad_arguments(tmp_path):
    sf.write(tmp_path / 'a.wav', tone(16000, 0.1), 16000)
    with pytest.raises(SerevalError): load_audio(tmp_path / 'a.wav', sr=0)
    with pytest.raises(SerevalError): load_audio(tmp_path / 'a.wav', max_seconds=0)


# --- failures -------------------------------------------------------------------------------------------------------

def check(path, cls, *words):
    with pytest.raises(cls) as ei: load_audio(path)
    e = ei.value
    assert isinstance(e, AudioError) and isinstance(e, SerevalError)
    assert str(path) in str(e) and e.path == str(path)
    for w in words: assert w in str(e)
    return e


def test_empty_file(tmp_path):
    (tmp_path / 'e.wav').write_bytes(b'')
    check(tmp_path / 'e.wav', EmptyAudioError, '0 bytes')


def test_zero_samples(tmp_path):
    sf.write(tmp_path / 'z.wav', np.zeros(0), 16000)
    sf.write(tmp_path / 'z.flac', np.zeros(0), 16000)
    check(tmp_path / 'z.wav', EmptyAudioError)
    check(tmp_path / 'z.flac', EmptyAudioError)


def test_unreadable(tmp_path):
    (tmp_path / 'j.wav').write_bytes(b'this is not audio ' * 50)
    (tmp_path / 'j.flac').write_bytes(b'fLaC' + bytes(range(256)) * 4)
    check(tmp_path / 'j.wav', UnreadableAudioError)
    check(tmp_path / 'j.flac', UnreadableAudioError)
    check(tmp_path / 'missing.wav', UnreadableAudioError, 'no such file')
    (tmp_path / 'dir.wav').mkdir()
    check(tmp_path / 'dir.wav', UnreadableAudioError, 'not a regular file')


def test_header_only_wav(tmp_path):
    sf.write(tmp_path / 'a.wav', tone(16000, 1.0), 16000)
    (tmp_path / 'h.wav').write_bytes((tmp_path / 'a.wav').read_bytes()[:30])
    check(tmp_path / 'h.wav', UnreadableAudioError)


@pytest.mark.parametrize('subtype', ['PCM_16', 'PCM_24', 'FLOAT'])
def test_truncated_wav(tmp_path, subtype):
    sf.write(tmp_path / 'a.wav', tone(16000, 1.0, 2), 16000, subtype=subtype)
    b = (tmp_path / 'a.wav').read_bytes()
    (tmp_path / 't.wav').write_bytes(b[:len(b) // 2])
    check(tmp_path / 't.wav', TruncatedAudioError, 'truncated')


def test_truncated_flac(tmp_path):
    x = np.random.default_rng(1).standard_normal((32000, 2)) * 0.1
    sf.write(tmp_path / 'a.flac', x, 16000)
    b = (tmp_path / 'a.flac').read_bytes()
    (tmp_path / 't.flac').write_bytes(b[:len(b) // 2])
    e = check(tmp_path / 't.flac', UnreadableAudioError)
    assert isinstance(e, TruncatedAudioError)


def test_streamed_wav_is_not_truncated(tmp_path):
    "A WAV whose size fields hold the streaming placeholder 0xFFFFFFFF is read in full."
    sf.write(tmp_path / 'a.wav', tone(16000, 0.5), 16000, subtype='PCM_16')
    b = bytearray((tmp_path / 'a.wav').read_bytes())
    i = b.index(b'data')
    b[i + 4:i + 8] = (0xFFFFFFFF).to_bytes(4, 'little'); b[4:8] = (0xFFFFFFFF).to_bytes(4, 'little')
    (tmp_path / 's.wav').write_bytes(bytes(b))
    assert len(load_audio(tmp_path / 's.wav')) == 8000


def test_silent(tmp_path):
    sf.write(tmp_path / 's.wav', np.zeros(16000), 16000, subtype='PCM_16')
    sf.write(tmp_path / 's2.flac', np.zeros((8000, 2)), 8000)
    check(tmp_path / 's.wav', SilentAudioError, 'silent')
    check(tmp_path / 's2.flac', SilentAudioError)


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_non_finite(tmp_path, bad):
    x = tone(16000, 0.2).astype(np.float32); x[100] = bad
    sf.write(tmp_path / 'n.wav', x, 16000, subtype='FLOAT')
    check(tmp_path / 'n.wav', NonFiniteAudioError, 'non-finite')


def test_try_load_audio(tmp_path):
    (tmp_path / 'e.wav').write_bytes(b'')
    sf.write(tmp_path / 'a.wav', tone(16000, 0.2), 16000)
    y, why = try_load_audio(tmp_path / 'e.wav')
    assert y is None and 'e.wav' in why and 'empty' in why
    y, why = try_load_audio(tmp_path / 'a.wav')
    assert why is None and len(y) == int(0.2 * SAMPLE_RATE)


def test_checksum(tmp_path):
    sf.write(tmp_path / 'a.wav', tone(16000, 0.2), 16000)
    b = (tmp_path / 'a.wav').read_bytes()
    assert audio_checksum(tmp_path / 'a.wav') == hashlib.sha256(b).hexdigest()
    sf.write(tmp_path / 'a.wav', tone(16000, 0.2, freq=300), 16000)
    assert audio_checksum(tmp_path / 'a.wav') != hashlib.sha256(b).hexdigest()
    with pytest.raises(AudioError, match='no such file'): audio_checksum(tmp_path / 'missing.wav')
    (tmp_path / 'dir.wav').mkdir()
    with pytest.raises(UnreadableAudioError, match='not a regular file'): audio_checksum(tmp_path / 'dir.wav')


# --- containers through ffmpeg --------------------------------------------------------------------------------------

def ffmpeg(*args):
    subprocess.run(['ffmpeg', '-nostdin', '-v', 'error', '-y', *map(str, args)], check=True)


def make_container(tmp_path, kind, seconds=1.0, sr=44100, channels=2):
    "A real .m4a (AAC), .mp4 (MPEG-4 video + AAC) or .avi (MPEG-4 video + PCM) made by ffmpeg."
    audio = ['-f', 'lavfi', '-i', f'sine=frequency=440:duration={seconds}:sample_rate={sr}']
    video = ['-f', 'lavfi', '-i', f'color=size=32x32:duration={seconds}:rate=10']
    p = tmp_path / f'clip.{kind}'
    if kind == 'm4a': ffmpeg(*audio, '-ac', channels, '-c:a', 'aac', p)
    elif kind == 'mp4': ffmpeg(*audio, *video, '-ac', channels, '-c:v', 'mpeg4', '-c:a', 'aac', '-shortest', p)
    elif kind == 'avi': ffmpeg(*audio, *video, '-ac', channels, '-c:v', 'mpeg4', '-c:a', 'pcm_s16le', '-shortest', p)
    return p


@needs_ffmpeg
@pytest.mark.parametrize('kind', ['m4a', 'mp4', 'avi'])
@pytest.mark.parametrize('sr,channels', [(44100, 2), (48000, 1), (22050, 2)])
def test_containers(tmp_path, kind, sr, channels):
    p = make_container(tmp_path, kind, 1.0, sr, channels)
    y = load_audio(p)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - SAMPLE_RATE) < 0.075 * SAMPLE_RATE          # AAC adds priming samples
    assert 0.05 < np.abs(y).max() < 1.01
    seg = y[:SAMPLE_RATE]
    spec = np.abs(np.fft.rfft(seg))
    assert abs(np.argmax(spec) * SAMPLE_RATE / len(seg) - 440) < 5   # bin width is SAMPLE_RATE / len(seg) Hz
    assert len(load_audio(p, sr=48000)) > 44000


@needs_ffmpeg
def test_container_cut_at_30_seconds(tmp_path):
    p = make_container(tmp_path, 'm4a', 31.0, 16000, 1)
    assert len(load_audio(p)) == int(MAX_SECONDS * SAMPLE_RATE)


@needs_ffmpeg
def test_container_without_audio(tmp_path):
    p = tmp_path / 'video.mp4'
    ffmpeg('-f', 'lavfi', '-i', 'color=size=32x32:duration=1:rate=10', '-c:v', 'mpeg4', p)
    check(p, UnreadableAudioError, 'no audio stream')


@needs_ffmpeg
@pytest.mark.parametrize('kind', ['m4a', 'mp4'])
def test_truncated_container(tmp_path, kind):
    p = make_container(tmp_path, kind, 2.0)
    b = p.read_bytes()
    q = tmp_path / f'cut.{kind}'
    q.write_bytes(b[:len(b) // 3])
    check(q, UnreadableAudioError)


@needs_ffmpeg
def test_junk_and_empty_container(tmp_path):
    (tmp_path / 'j.m4a').write_bytes(b'junk junk junk ' * 40)
    check(tmp_path / 'j.m4a', UnreadableAudioError)
    (tmp_path / 'e.mp4').write_bytes(b'')
    check(tmp_path / 'e.mp4', EmptyAudioError)


@needs_ffmpeg
def test_silent_container(tmp_path):
    p = tmp_path / 's.m4a'
    ffmpeg('-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', '1', '-c:a', 'aac', p)
    check(p, SilentAudioError)


@pytest.mark.parametrize('kind', ['m4a', 'mp4', 'avi'])
def test_missing_ffmpeg(tmp_path, monkeypatch, kind):
    "Without ffmpeg the error is typed, names the file and says ffmpeg is needed (works whether or not it is installed)."
    p = tmp_path / f'clip.{kind}'
    if shutil.which('ffmpeg'): p = make_container(tmp_path, kind, 0.5)
    else: p.write_bytes(b'\0' * 100)
    monkeypatch.setenv('SEREVAL_FFMPEG', '')
    assert ffmpeg_path() is None
    e = check(p, DecoderMissingError, 'ffmpeg')
    assert 'needed' in str(e)


@pytest.mark.parametrize('fmt,subtype,suffix', [('OGG', 'VORBIS', 'ogg'), ('MP3', 'MPEG_LAYER_III', 'mp3')])
@pytest.mark.parametrize('sr', [16000, 22050, 44100])
def test_compressed_through_soundfile(tmp_path, fmt, subtype, suffix, sr):
    "Lossy formats libsndfile reads (frame counts of compressed streams are estimates: no false 'truncated')."
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt): pytest.skip(f'libsndfile without {fmt}')
    p = tmp_path / f'x.{suffix}'
    sf.write(p, tone(sr, 1.3, 2), sr, format=fmt, subtype=subtype)
    y = load_audio(p)
    assert abs(len(y) - int(1.3 * SAMPLE_RATE)) < 0.1 * SAMPLE_RATE
    assert len(load_audio(p, max_seconds=1.0)) == SAMPLE_RATE
