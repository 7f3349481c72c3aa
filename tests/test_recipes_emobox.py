"""The 19 corpora beyond the paper's (EmoBox's), read from their publishers' layouts: each corpus's real file list
(../shared/corpus_listings/emobox, when present) becomes a tree of empty placeholder files, plus placeholder metadata
files in the publisher's own format where the labels live there; the scan must find every listed clip, the classes
EmoBox's labels give under sereval's default map, and the speakers the paths name."""
import collections, csv, os
from pathlib import Path

import pytest

from sereval.recipes import NEW_CORPORA, RECIPES, get_recipe, label_map, scan, scan_listing, variants

HERE = Path(__file__).resolve().parent
EMOBOX = HERE.parent / '..' / 'shared' / 'corpus_listings' / 'emobox'
needs_emobox = pytest.mark.skipif(not EMOBOX.is_dir(), reason='../shared/corpus_listings/emobox is not available')


def rows(corpus):
    with open(EMOBOX / f'{corpus}.csv', encoding='utf-8', newline='') as f:
        return list(csv.DictReader(f))


def touch(root: Path, rels):
    made = set()
    for rel in rels:
        p = os.path.join(root, rel)
        d = os.path.dirname(p)
        if d not in made: os.makedirs(d, exist_ok=True); made.add(d)
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    return Path(root)


# Independent expectations, written here without the recipe code: EmoBox's label -> class under sereval's defaults
# (the choices argued on the recipes' pages), and the speaker each path names.
CLASS_OF_EMOBOX_LABEL = {
    'ravdess': {'Neutral': 'neutral', 'Calm': 'neutral', 'Happy': 'happiness', 'Sad': 'sadness', 'Angry': 'anger',
                'Fearful': 'fear', 'Disgust': 'disgust', 'Surprised': 'surprise'},
    'asvpesd': {'01': 'other', '02': 'neutral', '03': 'happiness', '04': 'sadness', '05': 'anger', '06': 'fear',
                '07': 'disgust', '08': 'surprise', '09': 'happiness', '10': 'happiness', '11': 'other', '12': 'other',
                '13': 'other', '17': None},
    'cremad': {'ANG': 'anger', 'DIS': 'disgust', 'FEA': 'fear', 'HAP': 'happiness', 'NEU': 'neutral', 'SAD': 'sadness'},
    'tess': {'angry': 'anger', 'disgust': 'disgust', 'fear': 'fear', 'happy': 'happiness', 'neutral': 'neutral',
             'ps': 'surprise', 'sad': 'sadness'},
    'savee': {'a': 'anger', 'd': 'disgust', 'f': 'fear', 'h': 'happiness', 'n': 'neutral', 'sa': 'sadness', 'su': 'surprise'},
    'jlcorpus': {'angry': 'anger', 'happy': 'happiness', 'neutral': 'neutral', 'sad': 'sadness', 'excited': 'happiness',
                 'anxious': 'fear', 'apologetic': 'other', 'assertive': 'other', 'concerned': 'other', 'encouraging': 'other'},
    'emovdb': {'Amused': 'happiness', 'Angry': 'anger', 'Disgust': 'disgust', 'Neutral': 'neutral', 'Sleepy': 'other'},
    'esd': {'Neutral': 'neutral', 'Angry': 'anger', 'Happy': 'happiness', 'Sad': 'sadness', 'Surprise': 'surprise'},
    'ased': {'n': 'neutral', 'f': 'fear', 'h': 'happiness', 's': 'sadness', 'S': 'sadness', 'a': 'anger'},
    'oreau': {'C': 'anger', 'D': 'disgust', 'J': 'happiness', 'N': 'neutral', 'P': 'fear', 'S': 'surprise', 'T': 'sadness'},
    'polish': {'a': 'anger', 'n': 'neutral', 's': 'fear'},
    'turevdb': {'Angry': 'anger', 'Calm': 'neutral', 'Happy': 'happiness', 'Sad': 'sadness'},
}

def _base(rel): return rel.rsplit('/', 1)[-1].rsplit('.', 1)[0]

SPEAKER_OF_PATH = {
    'ravdess': lambda r: _base(r).split('-')[6],
    'asvpesd': lambda r: _base(r).split('-')[5],
    'cremad': lambda r: _base(r).split('_')[0],
    'tess': lambda r: _base(r).split('_')[0],
    'savee': lambda r: _base(r).split('_')[0],
    'jlcorpus': lambda r: _base(r).split('_')[0],
    'emovdb': lambda r: r.split('/')[0].split('_')[0],
    'esd': lambda r: r.split('/')[0],
    'ased': lambda r: _base(r).split('-')[4],
    'oreau': lambda r: _base(r)[:2],
    'polish': lambda r: _base(r).split('.')[0],
    'turevdb': lambda r: _base(r).split('_')[0],
}

# Published sizes (EmoBox's table): clips and speakers of the corpora whose listing is complete.
PUBLISHED = {'ravdess': (1440, 24), 'cremad': (7442, 91), 'tess': (2800, 2), 'savee': (480, 4), 'jlcorpus': (2400, 4),
             'emovdb': (6887, 4), 'ased': (2474, 65), 'oreau': (434, 32), 'polish': (450, 5), 'turevdb': (1735, 6)}


@pytest.fixture(scope='module')
def trees(tmp_path_factory):
    return tmp_path_factory.mktemp('emobox')


def expected(corpus):
    exp = collections.Counter()
    spk = set()
    skipped = 0
    for r in rows(corpus):
        cls = CLASS_OF_EMOBOX_LABEL[corpus][r['emo']]
        if cls is None: skipped += 1; continue
        exp[cls] += 1; spk.add(SPEAKER_OF_PATH[corpus](r['relpath']))
    return exp, spk, skipped


@needs_emobox
@pytest.mark.parametrize('corpus', sorted(CLASS_OF_EMOBOX_LABEL))
def test_listing_by_names(trees, corpus):
    listing = rows(corpus)
    root = touch(trees / corpus, [r['relpath'] for r in listing])
    df = scan(root, corpus)
    exp, spk, skipped = expected(corpus)
    assert len(df) + len(df.attrs['skipped']) == len(listing)
    assert len(df.attrs['skipped']) == skipped, df.attrs['skipped']['reason'].value_counts().head()
    assert dict(collections.Counter(df['label'])) == dict(exp)
    assert set(df['speaker']) == spk
    if corpus in PUBLISHED:
        assert (len(df) + skipped, len(spk)) == PUBLISHED[corpus]
    # the EmoBox label of every file maps, through the recipe's own map, to the class the recipe read from its name
    by_rel = dict(zip(df['relpath'], df['label']))
    emobox = get_recipe(corpus)
    for r in listing:
        if r['relpath'] in by_rel:
            assert emobox.map(r['emo']) == by_rel[r['relpath']], r


@needs_emobox
def test_ravdess_song_and_video_files(tmp_path):
    speech = [r['relpath'] for r in rows('ravdess')]
    song = [p.replace('Audio_Speech_Actors_01-24', 'Audio_Song_Actors_01-24').replace('/03-01-', '/03-02-') for p in speech
            if p.rsplit('/', 1)[-1].split('-')[2] not in ('07', '08')]     # the song channel has no disgust, surprise
    video = ['Video_Speech_Actor_01/Actor_01/01-01-01-01-01-01-01.mp4', 'Video_Speech_Actor_01/Actor_01/02-01-01-01-01-01-01.mp4']
    root = touch(tmp_path / 'ravdess', speech + song + video)
    df = scan(root, 'ravdess')
    assert len(df) == 1440
    reasons = df.attrs['skipped']['reason']
    assert reasons.str.contains('song').sum() == len(song) and reasons.str.contains('modality').sum() == 2
    with_song = scan(root, 'ravdess:song')
    assert len(with_song) == 1440 + len(song)
    calm_other = scan(root, 'ravdess:calm-other')
    assert (calm_other['label'] == 'other').sum() == 192 and (calm_other['label'] == 'neutral').sum() == 96


@needs_emobox
@pytest.mark.parametrize('variant, dropped', [('cremad:no-low', 455), ('asvpesd:speech-only', None), ('jlcorpus:primary', 1200)])
def test_variants_leave_out_with_a_counted_reason(tmp_path, variant, dropped):
    corpus = variant.split(':')[0]
    listing = [r['relpath'] for r in rows(corpus)]
    root = touch(tmp_path / corpus, listing)
    base, var = scan(root, corpus), scan(root, variant)
    gone = var.attrs['skipped']['reason'].str.contains(f'variant {variant}').sum()
    assert gone == len(base) - len(var) and gone > 0
    if dropped is not None: assert gone == dropped
    if corpus == 'asvpesd':
        assert gone == sum(1 for p in listing if p.rsplit('/', 1)[-1].split('-')[1] == '02' and _base(p).split('-')[2] != '17')


def test_emovdb_variants_and_label_maps():
    ex = ['jenie_Amused/amused_57-84_0057.wav', 'sam_Sleepy/sleepiness_1-28_0001.wav']
    assert scan_listing(ex, 'emovdb')['label'].tolist() == ['happiness', 'other']
    assert scan_listing(ex, 'emovdb:amused-other')['label'].tolist() == ['other', 'other']
    assert scan_listing(ex, 'emovdb:sleepy-neutral')['label'].tolist() == ['happiness', 'neutral']
    assert label_map('turevdb')['calm'] == 'neutral' and label_map('turevdb:calm-other')['calm'] == 'other'
    assert 'ravdess:calm-other' in variants('RAVDESS') and 'iemocap:exc-other' in variants('iemocap')


def test_every_new_corpus_is_registered():
    assert len(NEW_CORPORA) == 19 and len(RECIPES) == 38
    assert set(NEW_CORPORA) == {'ased', 'asvpesd', 'cremad', 'emns', 'emovdb', 'emozionalmente', 'esd', 'iemocap', 'jlcorpus',
                                'm3ed', 'mer2023', 'msppodcast', 'oreau', 'pavoque', 'polish', 'ravdess', 'savee', 'tess', 'turevdb'}


# ---------------------------------------------------------------------------------------------------------------
# Metadata corpora: placeholder metadata files in the publisher's own format, written from the listing.
# ---------------------------------------------------------------------------------------------------------------
META_CLASS = {
    'iemocap': {'neu': 'neutral', 'hap': 'happiness', 'exc': 'happiness', 'ang': 'anger', 'sad': 'sadness'},
    'msppodcast': {'A': 'anger', 'S': 'sadness', 'H': 'happiness', 'U': 'surprise', 'F': 'fear', 'D': 'disgust',
                   'C': 'disgust', 'N': 'neutral', 'O': 'other', 'X': None},
    'm3ed': {'Neutral': 'neutral', 'Happy': 'happiness', 'Sad': 'sadness', 'Anger': 'anger', 'Disgust': 'disgust',
             'Surprise': 'surprise', 'Fear': 'fear'},
    'mer2023': {'neutral': 'neutral', 'angry': 'anger', 'happy': 'happiness', 'sad': 'sadness', 'surprise': 'surprise',
                'worried': 'fear'},
    'emozionalmente': {'anger': 'anger', 'disgust': 'disgust', 'fear': 'fear', 'joy': 'happiness', 'neutrality': 'neutral',
                       'sadness': 'sadness', 'surprise': 'surprise'},
    'emns': {'Angry': 'anger', 'Disgust': 'disgust', 'Excited': 'happiness', 'Happy': 'happiness', 'Neutral': 'neutral',
             'Sad': 'sadness', 'Sarcastic': 'other', 'Surprise': 'surprise'},
    'pavoque': {'neutral': 'neutral', 'happy': 'happiness', 'sad': 'sadness', 'angry': 'anger', 'poker': 'neutral'},
}


def _write_iemocap(root, listing):
    "EmoEvaluation files: one per dialog, `[start - end]<TAB>utt<TAB>lab<TAB>[V, A, D]` and evaluator lines; speakers Ses01F..."
    by_dialog = collections.defaultdict(list)
    for r in listing: by_dialog[(r['relpath'].split('/')[0], r['relpath'].split('/')[3])].append(r)
    speakers = {}
    for (session, dialog), rs in by_dialog.items():
        d = root / session / 'dialog' / 'EmoEvaluation'; d.mkdir(parents=True, exist_ok=True)
        lines = ['% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]', '']
        for k, r in enumerate(rs):
            utt = _base(r['relpath'])
            lines += [f'[{k * 3.1:.4f} - {k * 3.1 + 2.5:.4f}]\t{utt}\t{r["emo"]}\t[2.5000, 3.0000, 2.5000]',
                      'C-E1:\tNeutral;\t()', 'A-E2:\tval 3; act 3; dom  3;\t()', '']
            speakers[r['relpath']] = f'Ses{session[-1].zfill(2)}{utt.rsplit("_", 1)[1][0]}'
        (d / f'{dialog}.txt').write_text('\n'.join(lines), encoding='utf-8')
    return speakers


def _write_msppodcast(root, listing):
    (root / 'Labels').mkdir(parents=True, exist_ok=True)
    speakers = {}
    with open(root / 'Labels' / 'labels_consensus.csv', 'w', encoding='utf-8', newline='') as f:
        w = csv.writer(f); w.writerow(['FileName', 'EmoClass', 'EmoAct', 'EmoVal', 'EmoDom', 'SpkrID', 'Gender', 'Split_Set'])
        for i, r in enumerate(listing):
            spk = 'Unknown' if i % 7 == 0 else str(int(_base(r['relpath']).split('_')[1]) % 50)
            speakers[r['relpath']] = '' if spk == 'Unknown' else spk
            w.writerow([r['relpath'].split('/')[-1], r['emo'], '4.0', '3.8', '4.2', spk, 'Female', 'Train'])
    return speakers


def _write_m3ed(root, listing):
    meta, speakers = {}, {}
    for r in listing:
        letter, utt = _base(r['relpath']).split('_', 1)
        series, dialogue = utt.split('_')[0], utt.rsplit('_', 1)[0]
        d = meta.setdefault(series, {}).setdefault(dialogue, {'SpeakerInfo': {}, 'Dialog': {}})
        d['SpeakerInfo'][letter] = {'Name': f'{series[:3]}-{letter}', 'Gender': 'F', 'Age': 'young'}
        d['Dialog'][utt] = {'Speaker': letter, 'Text': '...', 'EmoAnnotation': {'final_main_emo': r['emo'], 'final_mul_emo': r['emo']}}
        speakers[r['relpath']] = f'{series}_{series[:3]}-{letter}'
    (root / 'annotation.json').write_text(__import__('json').dumps(meta), encoding='utf-8')
    return speakers


def _write_mer2023(root, listing):
    tables = collections.defaultdict(list)
    for r in listing:
        parts = r['relpath'].split('/')
        split = parts[-2] if parts[-2] != 'train' else 'train'
        tables[split].append((_base(r['relpath']), r['emo']))
    for split, rs in tables.items():
        p = root / 'mer2023train' / 'train-label.csv' if split == 'train' else root / 'test-labels' / f'{split}-label.csv'
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text('name,discrete,valence\n' + ''.join(f'{n},{e},0.0\n' for n, e in rs), encoding='utf-8')
    return {r['relpath']: '' for r in listing}


def _write_emozionalmente(root, listing):
    (root / 'metadata').mkdir(parents=True, exist_ok=True)
    speakers = {r['relpath']: f'user{int(_base(r["relpath"])) % 431}' for r in listing}
    with open(root / 'metadata' / 'samples.csv', 'w', encoding='utf-8', newline='') as f:
        w = csv.writer(f); w.writerow(['file_name', 'actor', 'sentence', 'emotion_expressed', 'emotion_recognized'])
        for r in listing: w.writerow([r['relpath'].split('/')[-1], speakers[r['relpath']], 'Una frase.', r['emo'], r['emo']])
    (root / 'metadata' / 'users.csv').write_text('username,gender,age\n', encoding='utf-8')
    return speakers


def _write_emns(root, listing):
    rows = ['id|utterance|description|emotion|date|gender|age|level|audio_recording']
    rows += [f'{i}|Some words.|a story|{r["emo"]}|2022-10-01|Female|30|3|wavs/{r["relpath"].split("/")[-1]}' for i, r in enumerate(listing)]
    (root / 'metadata.csv').write_text('\n'.join(rows) + '\n', encoding='utf-8')
    return {r['relpath']: '' for r in listing}


WRITERS = {'iemocap': _write_iemocap, 'msppodcast': _write_msppodcast, 'm3ed': _write_m3ed, 'mer2023': _write_mer2023,
           'emozionalmente': _write_emozionalmente, 'emns': _write_emns}


@needs_emobox
@pytest.mark.parametrize('corpus', sorted(WRITERS))
def test_listing_from_publisher_metadata(trees, corpus):
    listing = rows(corpus)
    root = touch(trees / corpus, [r['relpath'] for r in listing])
    speakers = WRITERS[corpus](root, listing)
    df = scan(root, corpus)
    classes = [META_CLASS[corpus][r['emo']] for r in listing]
    assert len(df) == sum(c is not None for c in classes)
    assert len(df.attrs['skipped']) == sum(c is None for c in classes)
    assert dict(collections.Counter(df['label'])) == dict(collections.Counter(c for c in classes if c is not None))
    want = {r['relpath']: speakers[r['relpath']] for r, c in zip(listing, classes) if c is not None}
    assert dict(zip(df['relpath'], df['speaker'])) == want
    assert df.attrs['source'].startswith('metadata: ')


@needs_emobox
def test_iemocap_speakers_and_variants(trees):
    root = trees / 'iemocap'
    if not root.is_dir(): pytest.skip('needs the iemocap tree of test_listing_from_publisher_metadata')
    df = scan(root, 'iemocap')
    assert df['speaker'].nunique() == 10 and set(df['speaker'].str[:5]) == {f'Ses0{i}' for i in range(1, 6)}
    assert (scan(root, 'iemocap:exc-other')['label'] == 'other').sum() == 1041
    assert len(scan(root, 'iemocap:4class')) == 5531


@needs_emobox
def test_pavoque_segments_from_yaml(tmp_path):
    listing = rows('pavoque')
    by_file = collections.defaultdict(list)
    for i, r in enumerate(listing): by_file[r['relpath']].append((i, r))
    root = touch(tmp_path / 'pavoque', list(by_file))
    for flac, rs in by_file.items():
        text = ''.join(f"- prompt: p{i:05d}\n  style: {r['emo']}\n  start: {r['start_time']}\n  end: {r['end_time']}\n  text: Ein Satz.\n"
                       for i, r in rs)
        (root / flac).with_suffix('.yaml').write_text(text, encoding='utf-8')
    df = scan(root, 'pavoque')
    assert len(listing) == 7334
    # the real listing holds 119 outtake segments twice, with two different styles: ambiguous, left out (counted)
    styles = collections.defaultdict(list)
    for r in listing: styles[(r['relpath'], float(r['start_time']), float(r['end_time']))].append(r['emo'])
    clear = {k: v[0] for k, v in styles.items() if len(set(v)) == 1}
    assert len(styles) - len(clear) == 119
    assert len(df) == len(clear) and len(df.attrs['skipped']) == len(listing) - len(clear)
    assert df.attrs['skipped']['reason'].str.contains('with different labels').all()
    assert dict(collections.Counter(df['label'])) == dict(collections.Counter(META_CLASS['pavoque'][v] for v in clear.values()))
    assert list(df.columns[-2:]) == ['start', 'end']
    assert sorted(zip(df['relpath'], df['start'], df['end'])) == sorted(clear)
    from sereval.embed import clip_ids
    assert clip_ids(df).is_unique                                              # a segment is a clip of its own
