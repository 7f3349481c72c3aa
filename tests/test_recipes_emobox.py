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
