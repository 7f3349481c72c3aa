"""Tests of the recipe framework (sereval.corpora) with the 19 recipes (sereval.recipes): real file listings (when
../shared exists), hand-made fixtures, bad input, manifests on disk, data-root descriptions, and the `sereval scan`
command."""
import collections, csv, json, os, shutil, unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sereval.cli import main as cli_main
from sereval.corpora import read_manifest, scan_summary, read_textgrid_tier, read_xlsx, write_manifest, write_manifests
from sereval.recipes import CORPORA, NEW_CORPORA, RECIPES, get_recipe, scan, scan_listing, scan_root
from sereval.protocol import load_clusters, ood_pairs
from sereval.errors import SerevalError
from sereval.taxonomy import CLASSES

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / 'fixtures'
LISTINGS = HERE.parent / '..' / 'shared' / 'corpus_listings'
needs_listings = pytest.mark.skipif(not LISTINGS.is_dir(), reason='../shared/corpus_listings is not available')


def touch(root: Path, rels):
    "Empty placeholder files at `root/rel` for every rel."
    made = set()
    for rel in rels:
        p = os.path.join(root, rel)
        d = os.path.dirname(p)
        if d not in made:
            os.makedirs(d, exist_ok=True); made.add(d)
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    return Path(root)


def lines(name):
    return [l for l in (LISTINGS / name).read_text(encoding='utf-8').splitlines() if l.strip()]


def read_labels(name):
    with open(LISTINGS / name, encoding='utf-8', newline='') as f:
        return list(csv.DictReader(f))


def strip_accents(s):
    return ''.join(c for c in unicodedata.normalize('NFD', s) if not unicodedata.combining(c)).lower()


# ---------------------------------------------------------------------------------------------------------------
# Independent expectations: for every listed file, its class, by a rule written here without the recipe code.
# ---------------------------------------------------------------------------------------------------------------
_EXPRESSO_STYLE = {'angry': 'anger', 'awe': 'surprise', 'bored': 'neutral', 'calm': 'neutral', 'default': 'neutral',
                   'disgusted': 'disgust', 'fearful': 'fear', 'happy': 'happiness', 'laughing': 'happiness',
                   'sad': 'sadness'}
_EXPRESSO_ALL = sorted(['angry', 'animal', 'animal_directed', 'awe', 'bored', 'calm', 'child', 'child_directed', 'confused',
                        'default', 'desire', 'disgusted', 'enunciated', 'fast', 'fearful', 'happy', 'laughing', 'narration',
                        'non_verbal', 'projected', 'sad', 'sarcastic', 'singing', 'sleepy', 'sympathetic', 'whisper'])


def _expresso_paper(rel):
    "The paper's reading of Expresso: the first style (alphabetically) contained in the file name."
    name = rel.rsplit('/', 1)[-1].lower()
    return _EXPRESSO_STYLE.get(next((s for s in _EXPRESSO_ALL if s in name), ''), 'other')


RULES = {
    'aesdd': ('aesdd.txt', lambda r: r.split('/')[0]),                    # folders are the English class names
    'cafe': ('cafe.txt', lambda r: {'colere': 'anger', 'degout': 'disgust', 'joie': 'happiness', 'neutre': 'neutral',
                                    'peur': 'fear', 'surprise': 'surprise', 'tristesse': 'sadness'}[strip_accents(r.split('/')[0])]),
    'casia': ('casia.txt', lambda r: {'angry': 'anger', 'happy': 'happiness', 'sad': 'sadness'}.get(r.split('/')[1], r.split('/')[1])),
    'demos': ('demos.txt', lambda r: {'col': 'sadness', 'dis': 'disgust', 'gio': 'happiness', 'pau': 'fear', 'rab': 'anger',
                                      'sor': 'surprise', 'tri': 'sadness', 'neu': 'neutral'}[r.rsplit('_', 1)[1][:3]]),
    'emodb': ('emodb.txt', lambda r: {'W': 'anger', 'L': 'sadness', 'E': 'disgust', 'A': 'fear', 'F': 'happiness',
                                      'T': 'sadness', 'N': 'neutral'}[r.split('/')[-1][5]]),
    'emovo': ('emovo.txt', lambda r: {'dis': 'disgust', 'gio': 'happiness', 'neu': 'neutral', 'pau': 'fear', 'rab': 'anger',
                                      'sor': 'surprise', 'tri': 'sadness'}[r.split('/')[-1][:3]]),
    'enterface': ('enterface.txt', lambda r: r.split('/')[1]),
    'expresso': ('expresso.txt', lambda r: _expresso_paper(r)),
    'mead': ('mead.txt', lambda r: {'angry': 'anger', 'contempt': 'disgust', 'disgusted': 'disgust', 'happy': 'happiness',
                                    'sad': 'sadness', 'surprised': 'surprise'}.get(r.split('/')[2], r.split('/')[2])),
    'mesd': ('mesd.txt', lambda r: r.split('/')[-1].split('_')[0].lower()),
    'shemo': ('shemo.txt', lambda r: {'A': 'anger', 'H': 'happiness', 'N': 'neutral', 'S': 'sadness', 'W': 'surprise',
                                      'F': 'other'}[r.split('/')[-1][3]]),
    'subesco': ('subesco.txt', lambda r: {'ANGRY': 'anger', 'HAPPY': 'happiness', 'SAD': 'sadness'}.get(
        r.split('_')[5], r.split('_')[5].lower())),
    'thorsten': ('thorsten_emotional.txt', lambda r: {'amused': 'happiness', 'angry': 'anger', 'disgusted': 'disgust',
                                                      'surprised': 'surprise', 'neutral': 'neutral'}.get(r.split('/')[1], 'other')),
    'urdu': ('urdu.txt', lambda r: {'Angry': 'anger', 'Happy': 'happiness', 'Neutral': 'neutral', 'Sad': 'sadness'}[r.split('/')[0]]),
}


MAX_ON_DISK = 1500   # placeholder files per corpus on disk; bigger listings are checked in full by scan_listing


def on_disk(rels):
    "A deterministic subset of at most MAX_ON_DISK paths (every k-th), for the placeholder tree."
    k = max(1, -(-len(rels) // MAX_ON_DISK))
    return rels[::k]


@pytest.fixture(scope='module')
def listing_root(tmp_path_factory):
    if not LISTINGS.is_dir(): pytest.skip('../shared/corpus_listings is not available')
    root = tmp_path_factory.mktemp('listings')
    for corpus, (name, _) in RULES.items(): touch(root / corpus, on_disk(lines(name)))
    return root


@needs_listings
@pytest.mark.parametrize('corpus', sorted(RULES))
def test_listing_parses_every_file(listing_root, corpus):
    name, rule = RULES[corpus]
    rels = lines(name)
    df = scan_listing(rels, corpus, listing_root / corpus)                 # every real file, by name
    assert df.attrs['skipped'].empty, df.attrs['skipped'].head()
    disk = scan(listing_root / corpus, corpus)                             # the same recipe on a placeholder tree
    assert disk.attrs['skipped'].empty, disk.attrs['skipped'].head()
    assert len(disk) == len(on_disk(rels))
    sub = df.set_index('relpath').loc[disk['relpath']]
    assert disk['label'].tolist() == sub['label'].tolist() and disk['speaker'].tolist() == sub['speaker'].tolist()
    assert disk['path'].tolist() == sub['path'].tolist()
    assert len(df) == len(rels) == len(set(rels))
    got = dict(zip(df['relpath'], df['label']))
    expected = {r: rule(r) for r in rels}
    assert set(expected.values()) <= set(CLASSES)
    wrong = {r: (got.get(r), e) for r, e in expected.items() if got.get(r) != e}
    assert not wrong, list(wrong.items())[:5]
    assert (df['corpus'] == corpus).all() and (df['language'] == RECIPES[corpus].language).all()
    assert df['path'].map(os.path.isabs).all()


def listed(corpus):
    "Manifest of a whole real listing, parsed by name."
    return scan_listing(lines(RULES[get_recipe(corpus).name][0]), corpus, '/corpora/' + corpus)


@needs_listings
def test_listing_hard_facts():
    emodb = listed('EmoDB')
    counts = emodb['label'].value_counts()
    assert len(emodb) == 535 and counts['sadness'] == 143 and counts['anger'] == 127
    assert emodb['speaker'].nunique() == 10
    assert (emodb['raw_label'] == 'l').sum() == 81                         # boredom clips, mapped to sadness
    shemo = listed('shemo')
    assert (shemo['label'] == 'other').sum() == 38                           # ShEMO fear -> other, as in the paper
    assert shemo['speaker'].nunique() == 87
    mead = listed('mead')
    assert len(mead) == 31729 and mead['speaker'].nunique() == 48
    assert (mead['label'] == 'disgust').sum() == 4215 + 4284                 # contempt + disgusted
    thorsten = listed('thorsten')
    assert (thorsten['label'] == 'other').sum() == 899                       # drunk, sleepy, whisper
    enterface = listed('enterface')
    subjects = {r.split('/')[0] for r in lines('enterface.txt')}
    assert enterface['speaker'].nunique() == len(subjects)
    assert (enterface[enterface['relpath'].str.startswith('subject 11/')]['speaker'] == 's11').all()
    subesco = listed('subesco')
    assert subesco['speaker'].nunique() == 20
    assert 'F_02_MONIKA_S_2_SURPRISE_3].wav' in set(subesco['relpath'])
    aesdd = listed('aesdd')
    assert sorted(aesdd['speaker'].unique()) == ['1', '2', '3', '4', '5', '6']   # '(01)' is actor 1


def _expected_from_labels(rows, mapping):
    return collections.Counter(mapping.get(r['emotion'].strip().lower(), 'other') for r in rows)


@pytest.fixture(scope='module')
def meld_tree(tmp_path_factory):
    if not LISTINGS.is_dir(): pytest.skip('../shared/corpus_listings is not available')
    rows = read_labels('meld_labels.csv')
    return touch(tmp_path_factory.mktemp('meld_tree') / 'meld', [r['path'] for r in rows]), rows


@needs_listings
def test_listing_meld_publisher_tables(meld_tree):
    root, rows = meld_tree
    split_of = {'dev_splits_complete': 'dev', 'output_repeated_splits_test': 'test', 'train': 'train'}
    tables = collections.defaultdict(list)
    for i, r in enumerate(rows):
        split = split_of[r['path'].split('/')[0]]
        d, u = r['path'].rsplit('/', 1)[1][3:-4].split('_utt')
        tables[split].append({'Sr No.': i, 'Utterance': 'text, with "quotes"', 'Speaker': f'spk{int(d) % 5}',
                              'Emotion': r['emotion'], 'Dialogue_ID': d, 'Utterance_ID': u})
    tables['train'].append({'Sr No.': -1, 'Utterance': 'broken', 'Speaker': 'Joey', 'Emotion': 'joy',
                            'Dialogue_ID': '99999', 'Utterance_ID': '0'})   # a row without its clip
    for split, t in tables.items():
        pd.DataFrame(t).to_csv(root / f'{split}_sent_emo.csv', index=False)
    try: df = scan(root, 'MELD')
    finally:
        for split in tables: (root / f'{split}_sent_emo.csv').unlink()
    meld_map = {'joy': 'happiness', 'neutral': 'neutral', 'surprise': 'surprise', 'anger': 'anger',
                'sadness': 'sadness', 'disgust': 'disgust', 'fear': 'fear'}
    assert len(df) == len(rows) == 13706
    assert collections.Counter(df['label']) == _expected_from_labels(rows, meld_map)
    sk = df.attrs['skipped']
    assert len(sk) == 1 and 'dia99999_utt0' in sk['path'].iloc[0] and 'no such audio file' in sk['reason'].iloc[0]
    assert df['speaker'].str.startswith('spk').all()


@needs_listings
def test_listing_meld_generic_table(meld_tree):
    root, rows = meld_tree
    shutil.copy(LISTINGS / 'meld_labels.csv', root / 'labels.csv')
    try: df = scan(root, 'meld')
    finally: (root / 'labels.csv').unlink()
    assert len(df) == 13706 and df.attrs['skipped'].empty
    assert (df['label'] == 'happiness').sum() == sum(r['emotion'] == 'joy' for r in rows)


@needs_listings
def test_listing_resd_publisher_tables(tmp_path):
    rows = read_labels('resd_labels.csv')
    root = touch(tmp_path / 'resd', lines('resd.txt'))
    for split in ('train', 'test'):
        sub = [r for r in rows if r['split'] == split]
        pd.DataFrame({'name': [Path(r['path']).stem for r in sub], 'path': [r['path'] for r in sub],
                      'emotion': [r['emotion'] for r in sub]}).to_csv(root / f'{split}.csv', index=False)
    df = scan(root, 'resd')
    assert df.attrs['skipped'].empty and len(df) == 1396
    resd_map = {'anger': 'anger', 'disgust': 'disgust', 'fear': 'fear', 'happiness': 'happiness',
                'neutral': 'neutral', 'sadness': 'sadness'}             # enthusiasm -> other
    assert collections.Counter(df['label']) == _expected_from_labels(rows, resd_map)
    assert (df['label'] == 'other').sum() == sum(r['emotion'] == 'enthusiasm' for r in rows)
    # without any table, the role letter in the name gives the same labels
    for split in ('train', 'test'): (root / f'{split}.csv').unlink()
    by_name = scan(root, 'resd')
    assert by_name.attrs['source'] == 'names and folders'
    assert by_name['label'].tolist() == df['label'].tolist()


@needs_listings
def test_listing_eekk_textgrids(tmp_path):
    rows = read_labels('eekk_labels.csv')
    root = touch(tmp_path / 'eekk', [r['file'] for r in rows])
    for r in rows:
        (root / r['file']).with_suffix('.TextGrid').write_text(
            'File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 1\ntiers? <exists>\nsize = 1\n'
            'item []:\n    item [1]:\n        class = "IntervalTier"\n        name = "emotion"\n        xmin = 0\n'
            f'        xmax = 1\n        intervals: size = 1\n        intervals [1]:\n            xmin = 0\n'
            f'            xmax = 1\n            text = "{r["emotion"]}"\n', encoding='utf-8')
    df = scan(root, 'eekk')
    eekk_map = {'anger': 'anger', 'joy': 'happiness', 'sadness': 'sadness', 'neutral': 'neutral'}
    assert len(df) == len(rows) == 1164 and df.attrs['skipped'].empty
    assert collections.Counter(df['label']) == _expected_from_labels(rows, eekk_map)


@needs_listings
def test_listing_eekk_csv_table(tmp_path):
    rows = read_labels('eekk_labels.csv')
    root = touch(tmp_path / 'eekk', [r['file'] for r in rows])
    shutil.copy(LISTINGS / 'eekk_labels.csv', root / 'ekorpus.csv')
    df = scan(root, 'EEKK')
    assert len(df) == 1164 and df.attrs['skipped'].empty
    assert (df['label'] == 'happiness').sum() == sum(r['emotion'] == 'joy' for r in rows)


@needs_listings
def test_listing_cafe_unicode_variants(tmp_path):
    rels = lines('cafe.txt')
    nfd = touch(tmp_path / 'nfd', [unicodedata.normalize('NFD', r) for r in rels])
    mojibake = touch(tmp_path / 'moji', [r.replace('Colère', 'ColŠre').replace('Dégoût', 'D‚go–t') for r in rels])
    ref = scan(touch(tmp_path / 'nfc', rels), 'cafe')['label'].value_counts()
    for root in (nfd, mojibake):
        df = scan(root, 'CaFE')
        assert df.attrs['skipped'].empty and len(df) == 936
        assert df['label'].value_counts().equals(ref)


# ---------------------------------------------------------------------------------------------------------------
# Hand-made fixtures (no ../shared needed)
# ---------------------------------------------------------------------------------------------------------------
EXPECTED = pd.read_csv(FIXTURES / 'expected.csv', dtype=str, keep_default_na=False)


@pytest.mark.parametrize('corpus', CORPORA)
def test_fixture(corpus):
    exp = EXPECTED[EXPECTED['corpus'] == corpus]
    assert len(exp), f'no fixture for {corpus}'
    df = scan(FIXTURES / corpus, corpus)
    ok = exp[exp['label'] != 'SKIP'].sort_values('relpath').reset_index(drop=True)
    got = df.sort_values('relpath').reset_index(drop=True)
    assert [unicodedata.normalize('NFC', r) for r in got['relpath']] == ok['relpath'].tolist()
    assert got['raw_label'].tolist() == ok['raw_label'].tolist()
    assert got['label'].tolist() == ok['label'].tolist()
    assert got['speaker'].tolist() == ok['speaker'].tolist()
    skips = exp[exp['label'] == 'SKIP']['relpath']
    sk = df.attrs['skipped']
    assert len(sk) == len(skips), sk
    for s in skips: assert sk['path'].str.contains(s, regex=False).any(), (s, sk)


def test_fixture_root_finds_all_corpora():
    manifest, skipped = scan_root(FIXTURES)
    assert sorted(manifest['corpus'].unique()) == sorted(CORPORA)
    assert manifest.attrs['missing'] == list(NEW_CORPORA)          # the fixtures hold the paper's 19 only
    assert len(manifest) == (EXPECTED['label'] != 'SKIP').sum()
    assert len(skipped) == (EXPECTED['label'] == 'SKIP').sum()
    assert not manifest['synthetic'].any() and set(manifest['label']) <= set(CLASSES)


def _xlsx(path: Path, rows):
    "A workbook of one sheet (first row = header), written by pandas through openpyxl."
    pd.DataFrame(rows[1:], columns=rows[0]).to_excel(path, index=False)


def test_baum_xlsx_and_acted_codes(tmp_path):
    root = touch(tmp_path / 'baum', ['BAUM1a_MP4_all/S005/S005_010.mp4', 'BAUM1a_MP4_all/S005/S005_011.mp4',
                                     'BAUM1s_MP4 - All/S001/S001_001.mp4'])
    _xlsx(root / 'Annotations_BAUM1a.xlsx', [['Clip', 'Code'], ['S005_010', 2], ['S005_011', 6]])   # codes only
    _xlsx(root / 'Annotations_BAUM1s.xlsx', [['Clip', 'Emotion', 'Code'], ['S001_001', 'Neutral', 9]])
    assert read_xlsx(root / 'Annotations_BAUM1a.xlsx')[0].values.tolist() == [['S005_010', '2'], ['S005_011', '6']]
    df = scan(root, 'BAUM-1')
    assert df.attrs['skipped'].empty
    assert dict(zip(df['relpath'].str[-12:], df['raw_label'])) == {
        'S005_010.mp4': 'boredom', 'S005_011.mp4': 'interest', 'S001_001.mp4': 'neutral'}
    assert df['label'].tolist() == ['other', 'other', 'neutral'] and df['speaker'].tolist() == ['S005', 'S005', 'S001']
    assert scan(root, 'baum:nearest')['label'].tolist() == ['sadness', 'other', 'neutral']     # sereval's named variant


def test_baum_audio_folders_and_alias_folders(tmp_path):
    "The paper's layout <BAUM>/audio_folders/<Emotion>/: seven names count, the rest is other; alias folders map like their emotion."
    rels = ['audio_folders/Happiness/S001_001.wav', 'audio_folders/Boredom/S001_002.wav', 'audio_folders/Contempt/S002_001.wav',
            'audio_folders/Anger/S002_002.wav', 'audio_folders/Thinking/S003_001.wav']
    root = touch(tmp_path / 'BAUM1', rels + ['BAUM1s_MP4 - All/S001/S001_001.mp4'])
    (root / 'Annotations_BAUM1s.csv').write_text('Clip,Emotion\nS001_001,Neutral\n', encoding='utf-8')
    df = scan(root, 'baum')
    got = dict(zip(df['relpath'], df['label']))
    assert {r: got[r] for r in rels} == dict(zip(rels, ['happiness', 'other', 'other', 'anger', 'other']))
    assert df.set_index('relpath').loc[rels[0], 'speaker'] == 'S001'
    alias = scan(touch(tmp_path / 'alias', ['angry/S001_001.mp4', 'happy/S001_002.mp4', 'bored/S001_003.mp4',
                                            'surprised/S001_004.mp4']), 'baum')
    assert alias['label'].tolist() == ['anger', 'other', 'happiness', 'surprise']


def test_xlsx_reader_text_cells(tmp_path):
    "Sheets come back as text: whole numbers without '.0', empty cells '', empty rows dropped, every sheet in order."
    with pd.ExcelWriter(tmp_path / 'a.xlsx') as w:
        pd.DataFrame({'Clip': ['S001_001', None, 'S001_002'], 'Code': [3.0, None, 11], 'Note': ['', None, 'x']}).to_excel(w, index=False)
        pd.DataFrame({'Clip': ['S009_001'], 'Emotion': ['Happy']}).to_excel(w, sheet_name='acted', index=False)
    first, second = read_xlsx(tmp_path / 'a.xlsx')
    assert first.values.tolist() == [['S001_001', '3', ''], ['S001_002', '11', 'x']]
    assert list(second.columns) == ['Clip', 'Emotion'] and second.values.tolist() == [['S009_001', 'Happy']]
    (tmp_path / 'bad.xlsx').write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(SerevalError, match='bad.xlsx'): read_xlsx(tmp_path / 'bad.xlsx')


_LONG_TG = ('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 1\ntiers? <exists>\nsize = 1\n'
            'item []:\n    item [1]:\n        class = "IntervalTier"\n        name = "Emotion"\n        xmin = 0\n'
            '        xmax = 1\n        intervals: size = 2\n        intervals [1]:\n            xmin = 0\n'
            '            xmax = 0.5\n            text = ""\n        intervals [2]:\n            xmin = 0.5\n'
            '            xmax = 1\n            text = "rõõm"\n')


def test_textgrid_reader_and_damaged_textgrid(tmp_path):
    "UTF-16 and UTF-8 TextGrids read alike (tier name in any case); a damaged one gives no label, reported as a skip."
    (tmp_path / 'a.TextGrid').write_text(_LONG_TG, encoding='utf-16')
    (tmp_path / 'b.TextGrid').write_text(_LONG_TG, encoding='utf-8')
    assert read_textgrid_tier(tmp_path / 'a.TextGrid', 'emotion') == read_textgrid_tier(tmp_path / 'b.TextGrid', 'EMOTION') == ['rõõm']
    root = touch(tmp_path / 'eekk', ['1.wav', '2.wav'])
    (root / '1.TextGrid').write_text(_LONG_TG, encoding='utf-8')
    (root / '2.TextGrid').write_text(_LONG_TG[:150], encoding='utf-8')                  # cut short
    df = scan(root, 'eekk')
    assert df[['relpath', 'label']].values.tolist() == [['1.wav', 'happiness']]
    assert len(df.attrs['skipped']) == 1 and 'unknown EEKK label' in df.attrs['skipped']['reason'].iloc[0]


# ---------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------
def test_missing_empty_and_audio_free_folders(tmp_path):
    with pytest.raises(SerevalError, match='does not exist'): scan(tmp_path / 'nope', 'emodb')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SerevalError, match='is empty'): scan(tmp_path / 'empty', 'emodb')
    touch(tmp_path / 'docs', ['README.txt'])
    with pytest.raises(SerevalError, match='no audio files'): scan(tmp_path / 'docs', 'emodb')
    (tmp_path / 'file.wav').touch()
    with pytest.raises(SerevalError, match='not a folder'): scan(tmp_path / 'file.wav', 'emodb')
    with pytest.raises(SerevalError, match='unknown corpus'): scan(tmp_path, 'nocorpus')
    with pytest.raises(SerevalError, match='does not exist'): scan_root(tmp_path / 'nope')
    with pytest.raises(SerevalError, match='no corpus folder'): scan_root(tmp_path / 'empty')


def test_non_matching_files_are_reported(tmp_path):
    root = touch(tmp_path / 'shemo', ['female/F01A01.wav', 'female/F01X01.wav', 'female/notes.wav',
                                      'male/clip.xyz', '.DS_Store', 'male/README.md'])
    df = scan(root, 'shemo')
    assert len(df) == 1
    reasons = dict(zip(df.attrs['skipped']['path'].map(lambda p: Path(p).name), df.attrs['skipped']['reason']))
    assert set(reasons) == {'F01X01.wav', 'notes.wav'}
    assert 'unknown ShEMO label' in reasons['F01X01.wav'] and 'naming scheme' in reasons['notes.wav']
    assert df.attrs['ignored'] == {'.xyz': 1, 'hidden': 1, '.md': 1}          # counted, reported by sereval scan


def test_single_corpus_root_hint(tmp_path):
    shutil.copytree(FIXTURES / 'emodb', tmp_path / 'emodb_copy')
    with pytest.raises(SerevalError, match='--folder NAME=.'): scan_root(tmp_path / 'emodb_copy')
    manifest, _ = scan_root(tmp_path / 'emodb_copy', corpora=['emodb'], folders={'emodb': '.'})
    assert len(manifest) == 3


def test_scan_command_single_corpus_root(tmp_path, capsys):
    shutil.copytree(FIXTURES / 'emodb', tmp_path / 'emodb_copy')
    assert cli_main(['scan', str(tmp_path / 'emodb_copy'), '--corpora', 'emodb', '--folder', 'emodb=.']) == 0
    for n in ['03a01Fa.lablaut', '03a01Fa.silb']: (tmp_path / 'emodb_copy' / n).touch()
    assert cli_main(['scan', str(tmp_path / 'emodb_copy'), '--corpora', 'emodb', '--folder', 'emodb=.']) == 0
    assert 'ignored 2 files that are not audio (1 .lablaut, 1 .silb)' in capsys.readouterr().out


def test_metadata_rows_and_unlisted_files(tmp_path):
    root = touch(tmp_path / 'resd', ['train/01_a_b/01_a_b a_001.wav', 'train/stray.wav'])
    (root / 'train.csv').write_text('name,path,emotion\nx,01_a_b/01_a_b a_001.wav,anger\ny,02_c_d/02_c_d n_001.wav,neutral\n')
    df = scan(root, 'resd')
    assert df['label'].tolist() == ['anger']
    reasons = sorted(df.attrs['skipped']['reason'])
    assert len(reasons) == 2 and 'not listed' in reasons[0] and 'no such audio file' in reasons[1]


def test_meld_table_without_required_columns(tmp_path):
    root = touch(tmp_path / 'meld', ['train_splits/dia0_utt0.mp4'])
    (root / 'train_sent_emo.csv').write_text('Speaker,Emotion\nRoss,joy\n')
    with pytest.raises(SerevalError, match='Dialogue_ID'): scan(root, 'meld')


def test_cafe_renamed_files_in_mangled_folders(tmp_path):
    names = {'Colère': 'anger', unicodedata.normalize('NFD', 'Dégoût'): 'disgust', 'ColКre': 'anger',
             'D‚go–t': 'disgust', 'Tristesse': 'sadness'}
    root = tmp_path / 'cafe'
    for i, folder in enumerate(names): touch(root / f'v{i}', [f'{folder}/Fort/take{i}.wav'])
    raw = os.fsencode(root) + b'/raw/D\x82go\x96t/Fort/take.wav'          # CP850 bytes, not UTF-8
    os.makedirs(os.path.dirname(raw)); open(raw, 'wb').close()
    df = scan(root, 'cafe')
    assert len(df) == 5 and sorted(df['label']) == sorted(names.values())
    sk = df.attrs['skipped']                                               # undecodable path: reported, not dropped
    assert len(sk) == 1 and 'not valid UTF-8' in sk['reason'].iloc[0]


# ---------------------------------------------------------------------------------------------------------------
# Registry, clusters, priors, manifests, root description
# ---------------------------------------------------------------------------------------------------------------
def test_registry():
    assert tuple(RECIPES)[:19] == CORPORA and len(CORPORA) == 19 and tuple(RECIPES)[19:] == NEW_CORPORA and len(RECIPES) == 38
    for alias, name in [('EmoDB', 'emodb'), ('BAUM-1', 'baum'), ("eNTERFACE'05", 'enterface'),
                        ('Thorsten-emotional', 'thorsten'), ('ShEMO', 'shemo'), ('CASIA', 'casia')]:
        assert get_recipe(alias).name == name
    for r in RECIPES.values():
        assert set(r.label_map.values()) <= set(CLASSES) and r.language and r.layout
        assert r.layout in r.__doc__ and r.language in r.__doc__ and 'Raw label -> class' in r.__doc__
    assert 'contempt' in get_recipe('MEAD').__doc__ and 'f -> other' in get_recipe('shemo').__doc__


def test_root_description(tmp_path):
    shutil.copytree(FIXTURES / 'emodb', tmp_path / 'demo_de')
    shutil.copytree(FIXTURES / 'urdu', tmp_path / 'demo_ur')
    (tmp_path / 'sereval_corpora.json').write_text(json.dumps({
        'corpora': [{'name': 'demo_de', 'recipe': 'emodb', 'folder': 'demo_de', 'language': 'Synthetic German',
                     'synthetic': True},
                    {'name': 'demo_ur', 'recipe': 'URDU', 'folder': 'demo_ur', 'synthetic': True}],
        'clusters': {'demo': ['demo_de', 'demo_ur']}}))
    manifest, skipped = scan_root(tmp_path)
    assert sorted(manifest['corpus'].unique()) == ['demo_de', 'demo_ur'] and manifest['synthetic'].all()
    assert set(manifest[manifest['corpus'] == 'demo_de']['language']) == {'Synthetic German'}
    assert ood_pairs(load_clusters(tmp_path), manifest['corpus'].unique()) == [('demo_de', 'demo_ur'), ('demo_ur', 'demo_de')]
    only, _ = scan_root(tmp_path, corpora=['demo_ur'])
    assert set(only['corpus']) == {'demo_ur'}
    with pytest.raises(SerevalError, match='not described'): scan_root(tmp_path, corpora=['emovo'])
    shutil.copytree(FIXTURES / 'urdu', tmp_path / 'elsewhere')
    (tmp_path / 'elsewhere' / 'Angry' / os.listdir(tmp_path / 'elsewhere' / 'Angry')[0]).unlink()
    moved, _ = scan_root(tmp_path, folders={'Demo_UR': 'elsewhere'})           # names compare like get_recipe's
    assert (moved['corpus'] == 'demo_ur').sum() == (manifest['corpus'] == 'demo_ur').sum() - 1
    with pytest.raises(SerevalError, match='does not describe'): scan_root(tmp_path, folders={'emovo': 'demo_de'})
    desc = json.loads((tmp_path / 'sereval_corpora.json').read_text())
    desc['clusters'] = {'demo': 'demo_de demo_ur'}                                 # a string, not a list of names
    (tmp_path / 'sereval_corpora.json').write_text(json.dumps(desc))
    with pytest.raises(SerevalError, match="'clusters' must map"): load_clusters(tmp_path)


def test_manifest_roundtrip(tmp_path):
    manifest, _ = scan_root(FIXTURES, corpora=['cafe', 'aesdd'])
    for name in ('m.csv', 'm.parquet'):
        back = read_manifest(write_manifest(manifest, tmp_path / name))
        assert back['speaker'].tolist() == manifest['speaker'].tolist()     # '01' stays text
        assert back['synthetic'].dtype == bool
        assert list(back.columns) == list(manifest.columns)
    with pytest.raises(SerevalError, match='.csv or .parquet'): write_manifest(manifest, tmp_path / 'm.json')
    with pytest.raises(SerevalError, match='does not exist'): read_manifest(tmp_path / 'none.csv')


def test_damaged_manifest_names_the_file(tmp_path):
    manifest, _ = scan_root(FIXTURES, corpora=['emodb'])
    good = write_manifest(manifest, tmp_path / 'emodb.parquet').read_bytes()
    for name, data in [('cut.parquet', good[:len(good) // 2]), ('junk.parquet', b'not parquet at all'),
                       ('empty.parquet', b'')]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SerevalError, match=f'{name} is damaged or truncated'): read_manifest(tmp_path / name)
    (tmp_path / 'bad.csv').write_bytes(b'\xff\xfe\x00broken')
    with pytest.raises(SerevalError, match='bad.csv'): read_manifest(tmp_path / 'bad.csv')


def test_write_manifests_is_atomic_and_in_the_layout(tmp_path, monkeypatch):
    from sereval.layout import Layout
    manifest, _ = scan_root(FIXTURES, corpora=['emodb', 'urdu'])
    paths = write_manifests(manifest, tmp_path)
    assert paths == [Layout(tmp_path).manifest('emodb'), Layout(tmp_path).manifest('urdu')]
    before = paths[0].read_bytes()
    def fail(self, *a, **k): raise OSError('disk full')
    monkeypatch.setattr(pd.DataFrame, 'to_parquet', fail)
    with pytest.raises(OSError): write_manifest(manifest.iloc[:1], paths[0])
    assert paths[0].read_bytes() == before                                   # the old file is intact
    assert sorted(p.name for p in paths[0].parent.iterdir()) == ['emodb.parquet', 'urdu.parquet']   # no temporary left


# ---------------------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------------------
def test_scan_summary_of_the_fixture_root():
    manifest, skipped = scan_root(FIXTURES)
    out = scan_summary(manifest, skipped)
    assert 'emodb: 3 clips, 2 speakers' in out and 'skipped 1 files' in out and 'no such audio file' in out
    assert 'ignored 2 files that are not audio (2 .csv)' in out                # MELD's tables
    assert out.endswith(f'total: {len(manifest)} clips in 19 corpora, {len(skipped)} files skipped')


def test_scan_command_all(tmp_path, capsys):
    assert cli_main(['scan', str(FIXTURES), '--out', str(tmp_path / 'all.parquet')]) == 0
    out = capsys.readouterr().out
    assert 'emodb: 3 clips, 2 speakers' in out and 'skipped 1 files' in out and 'no such audio file' in out
    assert 'ignored 2 files that are not audio (2 .csv)' in out                # MELD's tables
    assert len(read_manifest(tmp_path / 'all.parquet')) == (EXPECTED['label'] != 'SKIP').sum()


def test_scan_command_corpus_folder_and_dir_out(tmp_path, capsys):
    shutil.copytree(FIXTURES / 'emovo', tmp_path / 'data' / 'my emovo copy')
    shutil.copytree(FIXTURES / 'shemo', tmp_path / 'data' / 'ShEMO')
    rc = cli_main(['scan', str(tmp_path / 'data'), '--corpora', 'emovo,shemo', '--folder', 'EMOVO=my emovo copy',
                       '--out', str(tmp_path / 'results')])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / 'results' / 'manifests').iterdir()) == ['emovo.parquet', 'shemo.parquet']
    assert 'emovo: 2 clips' in capsys.readouterr().out


def test_scan_command_errors_via_cli(tmp_path, capsys):
    assert cli_main(['scan', str(tmp_path / 'missing')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    assert cli_main(['scan', str(FIXTURES), '--corpora', 'nocorpus']) == 2
    assert 'unknown corpus' in capsys.readouterr().err
    assert cli_main(['scan', str(FIXTURES), '--folder', 'emodb']) == 2
    assert 'NAME=DIR' in capsys.readouterr().err
    (tmp_path / 'root').mkdir()
    assert cli_main(['scan', str(tmp_path / 'root'), '--corpora', 'casia']) == 2
    assert '--folder casia=DIR' in capsys.readouterr().err
    assert cli_main(['scan', str(FIXTURES), '--corpora', 'emodb', '--out', str(tmp_path / 'x.json')]) == 2


def test_masc_variants(tmp_path):
    root = touch(tmp_path / 'masc', ['data/015/ela/3.wav', 'data/016/016_panic_12.wav', 'data/017/x.wav'])
    df = scan(root, 'MASC')
    assert df[['label', 'speaker']].values.tolist() == [['happiness', '015'], ['fear', '016']]
    assert len(df.attrs['skipped']) == 1
