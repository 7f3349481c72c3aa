"EmoBox's data as a source, its folds and its track 2, on placeholder trees built from the real listings in ../shared."
import json, shutil, zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sereval.benchmark import FOLD_COLUMNS, TRACK2_PROTOCOL, fold_results, load_logits, fold_layout
from sereval.cli import main as cli_main
from sereval.emobox import (EMOBOX_CLASSES, fold_masks, read_folds, read_jsonl, read_track2, relpath_of, scan_emobox,
                            track2_mask)
from sereval.errors import SerevalError
from sereval.layout import Layout
from sereval.recipes import get_recipe, scan
from sereval.taxonomy import CLASSES

SHARED = Path(__file__).resolve().parents[2] / 'shared'
LISTINGS = SHARED / 'corpus_listings'
EMOBOX = LISTINGS / 'emobox'
needs_listings = pytest.mark.skipif(not EMOBOX.is_dir(), reason='../shared/corpus_listings/emobox is not available')

PAPER_LISTINGS = {'aesdd': 'aesdd.txt', 'cafe': 'cafe.txt', 'casia': 'casia.txt', 'emodb': 'emodb.txt', 'emovo': 'emovo.txt',
                  'enterface': 'enterface.txt', 'mesd': 'mesd.txt', 'subesco': 'subesco.txt', 'urdu': 'urdu.txt'}
"The paper's corpora that EmoBox also lists, named by file and folder (their listings are EmoBox's paths, SOURCES.md)."


def listing(corpus: str) -> pd.DataFrame:
    "relpath, emo (EmoBox's label, '' where the listing has none), start_time, end_time of one corpus's listing."
    if corpus in PAPER_LISTINGS:
        rels = [l for l in (LISTINGS / PAPER_LISTINGS[corpus]).read_text(encoding='utf-8').splitlines() if l.strip()]
        return pd.DataFrame({'relpath': rels, 'emo': ''})
    return pd.read_csv(EMOBOX / f'{corpus}.csv', dtype=str, keep_default_na=False)


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rows), encoding='utf-8')
    return path


def emobox_data(root: Path, corpora, folds: bool = True) -> Path:
    "An EmoBox data/ folder for `corpora` from the listings: <c>/<c>.jsonl, label_map.json, EmoBox's fold files, track2/."
    data = root / 'data'
    maps = json.loads((EMOBOX / 'label_maps.json').read_text())
    for c in corpora:
        df = listing(c)
        rows = [{'key': f'{c}-{i}', 'dataset': c, 'wav': f'downloads/{c}/{r.relpath}', 'emo': r.emo,
                 **({'start_time': float(r.start_time), 'end_time': float(r.end_time)} if 'start_time' in df else {})}
                for i, r in enumerate(df.itertuples())]
        write_jsonl(data / c / f'{c}.jsonl', rows)
        if c in maps: (data / c / 'label_map.json').write_text(json.dumps(maps[c]))
        if folds and (EMOBOX / 'folds' / c).is_dir():
            for f in (EMOBOX / 'folds' / c).glob('*.jsonl'):
                k = f.stem.rsplit('_', 1)[1]
                (data / c / f'fold_{k}').mkdir(parents=True, exist_ok=True)
                shutil.copy(f, data / c / f'fold_{k}' / f.name)
    (data / 'track2').mkdir(parents=True, exist_ok=True)
    for f in (EMOBOX / 'track2').glob('*.jsonl'): shutil.copy(f, data / 'track2' / f.name)
    return data


def placeholder_tree(root: Path, corpus: str, audio: bool = False, skip=()) -> Path:
    """downloads/<corpus>/ as the listing names it: empty files, or (`audio`) 0.2 s of a tone whose pitch follows EmoBox's
    label, so a head can learn something; the relpaths in `skip` are left out."""
    import soundfile as sf
    df = listing(corpus)
    tones = {e: 200 + 60 * i for i, e in enumerate(sorted(set(df['emo'])))}
    t = np.arange(3200) / 16000
    for r in dict.fromkeys(zip(df['relpath'], df['emo'])):
        if r[0] in skip: continue
        p = root / 'downloads' / corpus / r[0]
        p.parent.mkdir(parents=True, exist_ok=True)
        if not audio: p.touch(); continue
        rng = np.random.default_rng(zlib.crc32(r[0].encode()))
        sf.write(p, (0.3 * np.sin(2 * np.pi * tones[r[1]] * t) + 0.05 * rng.standard_normal(len(t))).astype('float32'), 16000,
                 format='WAV')
    return root


@needs_listings
def test_scan_prints_clips_and_counts_missing_audio(tmp_path, capsys):
    data = emobox_data(tmp_path, ['ravdess'])
    gone = listing('ravdess')['relpath'].iloc[:3].tolist()
    placeholder_tree(tmp_path, 'ravdess', skip=gone)
    cli_main(['scan', str(tmp_path), '--emobox', str(data), '--corpora', 'ravdess'])
    out = capsys.readouterr().out
    assert 'ravdess: 1437 clips' in out, out
    assert '3 x listed in EmoBox' in out
    cli_main(['scan', str(tmp_path / 'downloads'), '--emobox', str(data)])     # ROOT may be downloads/ itself
    assert 'ravdess: 1437 clips' in capsys.readouterr().out
    with pytest.raises(SerevalError, match='not in EmoBox'):
        scan_emobox(tmp_path, data, corpora=['savee'])


@needs_listings
def test_iemocap_merge_is_honoured_and_reported(tmp_path):
    data = emobox_data(tmp_path, ['iemocap'], folds=False)
    placeholder_tree(tmp_path, 'iemocap')
    m, skipped = scan_emobox(tmp_path, data)
    assert skipped.empty and len(m) == 5531
    raw = listing('iemocap')
    exc = set(raw.loc[raw.emo == 'exc', 'relpath'])
    hap = set(raw.loc[raw.emo == 'hap', 'relpath'])
    lab = m.set_index('relpath')['label']
    assert len(exc) and set(lab[list(exc)]) == set(lab[list(hap)]) == {'happiness'}
    rec = m.attrs['merges'].to_dict('records')
    want = {'corpus': m['corpus'].iloc[0], 'emobox_label': 'Happy', 'raw_labels': 'exc, hap', 'to_class': 'happiness',
            'clips': len(exc) + len(hap), 'relabelled': 0}
    assert len(rec) == 1 and {k: rec[0][k] for k in want} == want
    assert set(m['label']) == {'anger', 'happiness', 'neutral', 'sadness'}
    # no EmoEvaluation files here: the speakers come from the file names (session and the turn's gender letter)
    assert set(m['speaker']) == {f'Ses0{s}{g}' for s in range(1, 6) for g in 'FM'}


def _native_corpora():
    "Corpora both sources can read: a sereval recipe that names clips from the path, and a listing of EmoBox's paths."
    out = list(PAPER_LISTINGS)
    if EMOBOX.is_dir():
        for p in sorted(EMOBOX.glob('*.csv')):
            try: r = get_recipe(p.stem)
            except SerevalError: continue
            if r.parse is not None and 'start_time' not in p.read_text(encoding='utf-8')[:200]: out.append(p.stem)
    return out


@needs_listings
@pytest.mark.parametrize('corpus', _native_corpora())
def test_emobox_scan_equals_the_native_scan(tmp_path, corpus):
    "Clip by clip, the --emobox scan of a placeholder downloads/ tree is the native recipe's manifest: same clips, labels, speakers."
    data = emobox_data(tmp_path, [corpus], folds=False)
    placeholder_tree(tmp_path, corpus)
    ours, skipped = scan_emobox(tmp_path, data)
    native = scan(tmp_path / 'downloads' / corpus, corpus)
    assert sorted(skipped['path']) == sorted(native.attrs['skipped']['path'])     # the clips the recipe leaves out, both ways
    cols = ['relpath', 'corpus', 'raw_label', 'label', 'speaker']
    a = ours[cols].sort_values('relpath').reset_index(drop=True)
    b = native[cols].sort_values('relpath').reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    # EmoBox's own label, where the listing has it, through EmoBox's names: every difference is reported
    emo = listing(corpus).set_index('relpath')['emo']
    if (emo != '').all():
        maps = json.loads((EMOBOX / 'label_maps.json').read_text()).get(corpus, {})
        eb = a['relpath'].map(emo).map(lambda e: EMOBOX_CLASSES.get(maps.get(e, e).strip().lower(), 'other'))
        m, _ = scan_emobox(tmp_path, data)
        assert int(m.attrs['differences']['clips'].sum()) == int((eb != a['label']).sum())


@needs_listings
def test_folds_match_by_path_on_a_native_layout():
    "EmoBox's RAVDESS folds as masks over a manifest whose paths have other top folders (a native copy): every clip found."
    rav = listing('ravdess')
    index = pd.DataFrame({'path': ['/corpora/RAVDESS/' + r.split('/', 1)[1] for r in rav['relpath']]})  # audio/ -> RAVDESS/
    parts = {}
    for f in sorted((EMOBOX / 'folds' / 'ravdess').glob('*.jsonl')):
        _, part, _, k = f.stem.split('_')
        df = read_jsonl(f)
        parts.setdefault(int(k), {})[part] = pd.DataFrame({'relpath': [relpath_of(w, 'ravdess') for w in df['wav']], 'start': np.nan})
    masks = fold_masks(index, parts)
    assert sorted(masks) == [1, 2, 3, 4, 5, 6]
    for k, m in masks.items():
        assert (m['train'].sum(), m['test'].sum(), m['unmatched']) == (1200, 240, 0)
    tested = sum(m['test'].astype(int) for m in masks.values())
    assert (tested == 1).all()            # every clip is tested in exactly one fold (speaker-independent 6-fold)


@pytest.mark.slow
@needs_listings
def test_ravdess_folds_end_to_end(tmp_path, capsys):
    """`sereval train --protocol emobox` on placeholder audio of the RAVDESS listing with EmoBox's six folds: each fold's
    heads see exactly the fold's train list and are tested on its test list; the in-domain result is the mean over folds;
    `sereval report` writes tables/emobox.md."""
    data = emobox_data(tmp_path, ['ravdess'])
    placeholder_tree(tmp_path, 'ravdess', audio=True)
    out = tmp_path / 'out'
    assert cli_main(['train', '--backbone', 'whisper-logmel', '--data-root', str(tmp_path), '--emobox', str(data), '--out', str(out),
              '--protocol', 'emobox', '--epochs', '2', '--lr', '3e-3', '--batch-size', '64', '--quiet']) == 0
    fr = fold_results(out, 'whisper-logmel')
    assert list(fr.columns) == list(FOLD_COLUMNS) and sorted(set(fr['fold'])) == [1, 2, 3, 4, 5, 6]
    for k in range(1, 7):
        z = load_logits(fold_layout(out, k).out, 'whisper-logmel', 'ravdess', 'ravdess')
        n_train = len(read_jsonl(data / 'ravdess' / f'fold_{k}' / f'ravdess_train_fold_{k}.jsonl'))
        n_test = len(read_jsonl(data / 'ravdess' / f'fold_{k}' / f'ravdess_test_fold_{k}.jsonl'))
        assert ((z.split == 'train').sum(), (z.split == 'test').sum()) == (n_train, n_test) == (1200, 240)
        test_keys = {relpath_of(w, 'ravdess') for w in read_jsonl(data / 'ravdess' / f'fold_{k}' / f'ravdess_test_fold_{k}.jsonl')['wav']}
        assert set(z.loc[z.split == 'test', 'clip_id']) == test_keys
    res = pd.read_csv(Layout(out).results('whisperlogmel'))
    for metric in ('macro_f1', 'wa', 'ua'):
        got = res.query("domain == 'in' and metric == @metric")['value'].item()
        assert got == pytest.approx(fr.query("domain == 'in' and metric == @metric")['value'].mean())
    assert res.query("domain == 'in' and metric == 'ua'")['value'].item() > 1 / 8 + 0.1     # the tones are learnt
    rec = json.loads(Layout(out).record('whisperlogmel').read_text())
    assert rec['protocol'] == 'emobox'
    assert Layout(Layout(out).protocol('random').out).run_metrics('whisperlogmel', 'ravdess').exists()   # the paper's 80/20 heads too
    assert cli_main(['report', '--out', str(out), '--no-paper']) == 0
    md = (Layout(out).tables / 'emobox.md').read_text()
    assert '| ravdess |' in md.replace('| whisper-logmel ', '') or 'ravdess' in md
    row = [l for l in md.splitlines() if 'ravdess' in l][0]
    ua = fr.query("domain == 'in' and metric == 'ua'")['value']
    assert f'{100 * ua.mean():.2f} ± {100 * ua.std(ddof=1):.2f}' in row
    assert (Layout(out).tables / 'emobox_vs_random.md').exists()


@pytest.mark.slow
@needs_listings
def test_track2_on_ravdess_balanced_set(tmp_path):
    """Track 2: heads of another corpus (SAVEE, one speaker-independent fold written here) tested on EmoBox's balanced
    RAVDESS set, and RAVDESS's six folds' heads on the balanced SAVEE set, among the sets' four classes."""
    data = emobox_data(tmp_path, ['ravdess', 'savee'])
    sav = listing('savee')
    write_jsonl(data / 'savee' / 'fold_1' / 'savee_train_fold_1.jsonl',
                [{'wav': f'downloads/savee/{r}'} for r in sav['relpath'] if not r.startswith('DC_')])
    write_jsonl(data / 'savee' / 'fold_1' / 'savee_test_fold_1.jsonl',
                [{'wav': f'downloads/savee/{r}'} for r in sav['relpath'] if r.startswith('DC_')])
    for c in ('ravdess', 'savee'): placeholder_tree(tmp_path, c, audio=True)
    out = tmp_path / 'out'
    assert cli_main(['train', '--backbone', 'whisper-logmel', '--data-root', str(tmp_path), '--emobox', str(data), '--out', str(out),
              '--protocol', 'emobox', '--epochs', '1', '--lr', '3e-3', '--batch-size', '64', '--quiet']) == 0
    t2 = pd.read_csv(Layout(Layout(out).protocol(TRACK2_PROTOCOL).out).results('whisperlogmel'))
    pairs = set(zip(t2['train'], t2['test']))
    assert pairs == {('savee', 'ravdess'), ('ravdess', 'savee')}
    bal = read_track2(data)['ravdess']
    assert len(bal) == 240 and set(bal['label']) == {'anger', 'happiness', 'neutral', 'sadness'}
    # the cell by hand: SAVEE's head on the 240 balanced RAVDESS clips, among the four classes
    from sereval.store import open_store
    from sereval.benchmark import _heads
    from sereval.train import predict_heads
    s = open_store(Layout(out).embeddings, 'whisper-logmel', 'ravdess')
    mask, missing = track2_mask(s.index, bal)
    assert (mask.sum(), missing) == (240, 0)
    y = np.array([CLASSES.index(l) for l in s.index['label'][mask]])
    z = predict_heads(_heads(out, 'whisper-logmel', 'savee', s.dim), s.frames, s.index['start'].to_numpy()[mask],
                      s.index['n_frames'].to_numpy()[mask])[0]
    z[:, ~np.isin(np.arange(len(CLASSES)), np.unique(y))] = -np.inf
    wa = t2.query("train == 'savee' and metric == 'wa'")['value'].item()
    assert wa == pytest.approx((z.argmax(1) == y).mean())
    assert (np.bincount(y, minlength=len(CLASSES))[np.unique(y)] == 60).all()       # balanced: 60 clips a class


@needs_listings
def test_pavoque_segments_are_clips(tmp_path):
    "PAVOQUE's EmoBox metadata cuts a few long recordings into segments: each is a clip (start/end in seconds, its own clip id)."
    from sereval.embed import clip_ids
    from sereval.emobox import clip_keys
    data = emobox_data(tmp_path, ['pavoque'], folds=False)
    placeholder_tree(tmp_path, 'pavoque')
    m, skipped = scan_emobox(tmp_path, data)
    raw = listing('pavoque')
    key = raw['relpath'] + '@' + raw['start_time']
    n_labels = raw.groupby(key)['emo'].nunique()
    conflicting = int(n_labels.gt(1).sum())                                   # outtakes EmoBox lists as poker and as sad
    twice = int((key.duplicated() & ~key.isin(n_labels[n_labels > 1].index)).sum())
    assert (conflicting, len(raw), key.nunique()) == (119, 7334, 7165)
    assert len(m) == key.nunique() - conflicting and m['path'].nunique() == raw['relpath'].nunique() < 20
    reasons = skipped['reason'].str.contains('different labels')
    assert reasons.sum() == conflicting and (~reasons).sum() == twice and skipped.loc[~reasons, 'reason'].str.contains('one clip').all()
    assert (m['start'] < m['end']).all() and clip_ids(m).is_unique
    first = raw.iloc[0]
    row = m[(m.relpath == first.relpath) & (m.start == float(first.start_time))]
    assert len(row) == 1 and row['end'].item() == float(first.end_time)
    assert len(set(clip_keys(m))) == len(m)          # folds can tell the segments of one file apart


@pytest.mark.slow
@needs_listings
def test_reproduce_with_the_emobox_protocol(tmp_path):
    "`sereval reproduce --protocol emobox --emobox DATA_DIR`: the papermill run and the tables-and-figures notebook write tables/emobox.md."
    data = emobox_data(tmp_path, ['ravdess'])
    placeholder_tree(tmp_path, 'ravdess', audio=True)
    out = tmp_path / 'out'
    assert cli_main(['reproduce', '--data-root', str(tmp_path), '--emobox', str(data), '--protocol', 'emobox', '--backbones',
                     'whisper-logmel', '--out', str(out), '--epochs', '1', '--lr', '3e-3', '--batch-size', '64', '--no-paper',
                     '--quiet']) == 0
    md = (Layout(out).tables / 'emobox.md').read_text()
    assert 'ravdess' in md and '| 6 |' in md
    nb = (Layout(out).notebooks / '21_tables_and_figures.ipynb').read_text()
    assert 'EmoBox folds' in nb and 'random 80/20' in nb
    assert cli_main(['reproduce', '--data-root', str(tmp_path), '--protocol', 'emobox', '--out', str(out), '--no-paper']) == 2
