"""A run end to end on placeholder audio of corpora beyond the paper's, in their publishers' layouts: RAVDESS and TESS
(both placed in the paper's cluster2 by the extended clustering, so they are tested on each other out of domain) and
PAVOQUE, whose clips are segments of one long FLAC per style (one segment past the file's end: a counted skip)."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sereval.layout import Layout, read_record
from sereval.pipeline import DEMO, run_backbone
from sereval.protocol import extended_clusters
from sereval.store import open_store

RATE = 16000
TONE = {'neutral': 180, 'happiness': 330, 'sadness': 140, 'anger': 420, 'fear': 500, 'disgust': 260, 'surprise': 600}


def tone(cls, seconds, rng):
    t = np.arange(int(seconds * RATE)) / RATE
    f = TONE[cls] * rng.uniform(0.95, 1.05)
    return (0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.normal(size=len(t))).astype(np.float32)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp('root')
    codes = {'01': 'neutral', '03': 'happiness', '04': 'sadness', '05': 'anger'}
    for actor in ('01', '02', '03', '04'):
        d = root / 'ravdess' / 'Audio_Speech_Actors_01-24' / f'Actor_{actor}'; d.mkdir(parents=True)
        for code, cls in codes.items():
            for st in ('01', '02'):
                for rep in ('01', '02'):
                    sf.write(d / f'03-01-{code}-01-{st}-{rep}-{actor}.wav', tone(cls, 0.6, rng), RATE)
    words = {'angry': 'anger', 'happy': 'happiness', 'sad': 'sadness', 'neutral': 'neutral'}
    (root / 'tess').mkdir()
    for spk in ('OAF', 'YAF'):
        for word in ('back', 'bar', 'base', 'bath', 'bean', 'beg', 'bite', 'boat'):
            for emo, cls in words.items():
                sf.write(root / 'tess' / f'{spk}_{word}_{emo}.wav', tone(cls, 0.6, rng), RATE)
    pav = root / 'pavoque'; pav.mkdir()
    styles = {'neutral': 'neutral', 'happy': 'happiness', 'sad': 'sadness', 'angry': 'anger'}
    for style, cls in styles.items():
        sf.write(pav / f'pavoque-{style}.flac', np.concatenate([tone(cls, 0.7, rng) for _ in range(10)]), RATE)
        segs = [(round(0.7 * k, 2), round(0.7 * k + 0.6, 2)) for k in range(10)]
        if style == 'sad': segs.append((7.5, 8.5))                                     # past the end of a 7 s file
        (pav / f'pavoque-{style}.yaml').write_text(''.join(
            f'- prompt: p{k:03d}\n  style: {style}\n  start: {s}\n  end: {e}\n' for k, (s, e) in enumerate(segs)))
    out = tmp_path_factory.mktemp('out')
    res = run_backbone(DEMO.backbones[0], root, out, config=replace(DEMO.train, epochs=3), clusters='extended', progress=False)
    return out, res


@pytest.mark.slow
def test_in_domain_and_out_of_domain_through_the_extended_clusters(run):
    out, res = run
    assert sorted(res.manifest['corpus'].unique()) == ['pavoque', 'ravdess', 'tess']
    rec = read_record(out, res.record.slug)
    assert rec.clusters == {k: list(v) for k, v in extended_clusters().items()}
    r = res.results
    pairs = set(map(tuple, r.loc[r['domain'] == 'out', ['train', 'test']].drop_duplicates().to_numpy()))
    assert pairs == {('ravdess', 'tess'), ('tess', 'ravdess')}                    # pavoque: cluster3, alone here
    assert set(r.loc[r['domain'] == 'in', 'train']) == {'pavoque', 'ravdess', 'tess'}
    ind = r[(r['domain'] == 'in') & (r['metric'] == r['metric'].iloc[0])]
    assert len(ind) == 3 and ind['value'].between(0, 1).all(), ind


@pytest.mark.slow
def test_segments_are_clips_in_the_store(run):
    out, res = run
    m = res.manifest[res.manifest['corpus'] == 'pavoque']
    assert len(m) == 41 and m['start'].notna().all()
    store = open_store(Layout(out).embeddings, DEMO.backbones[0], 'pavoque')
    assert len(store.index) == 40 and store.index['clip_id'].is_unique
    assert store.index['clip_id'].str.contains(r'\.flac@\d').all()
    assert store.index['checksum'].str.contains('@').all() and store.index['checksum'].nunique() == 40
    skipped = store.meta.get('skipped', [])
    assert len(skipped) == 1 and "segment past the file's end" in skipped[0]['reason'], skipped
