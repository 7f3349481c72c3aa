"""The paper's protocol as its public code runs it: corpus fingerprints (clips per class) against placeholder trees of real
listings, the exact in-domain split, split sizes, the head's initial draws, and the published MESD row re-derived."""
import collections, csv, os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sereval.cli import main as cli_main
from sereval.head import FrameMLP
from sereval.metrics import compute_metrics, ood_predictions
from sereval.protocol import (CLUSTERS, build_paper_fingerprints, class_priors, fingerprint_report, make_split, n_held_out,
                              paper_fingerprints, paper_permutation, random_split, speaker_split)
from sereval.recipes import scan, scan_listing
from sereval.taxonomy import CLASSES, label_indices

SHARED = Path(__file__).resolve().parents[2] / 'shared'
LISTINGS = SHARED / 'corpus_listings'
PUBLISHED = SHARED / 'paper' / 'published_matrices'
needs_listings = pytest.mark.skipif(not LISTINGS.is_dir(), reason='../shared/corpus_listings is not available')
SURPRISE = CLASSES.index('surprise')

LISTING = {'aesdd': 'aesdd.txt', 'cafe': 'cafe.txt', 'casia': 'casia.txt', 'demos': 'demos.txt', 'emodb': 'emodb.txt',
           'emovo': 'emovo.txt', 'enterface': 'enterface.txt', 'expresso': 'expresso.txt', 'mead': 'mead.txt',
           'mesd': 'mesd.txt', 'resd': 'resd.txt', 'shemo': 'shemo.txt', 'subesco': 'subesco.txt',
           'thorsten': 'thorsten_emotional.txt', 'urdu': 'urdu.txt'}
LABELS = {'eekk': ('eekk_labels.csv', 'file', ('EEKK', 'audio_folders')), 'meld': ('meld_labels.csv', 'path', ('MELD.Raw', 'emotion_folders'))}
"Corpora whose labels live in a table: the paper reads them from one folder per emotion under this path."
VERDICT = {'aesdd': 'match', 'cafe': 'match', 'casia': 'match', 'demos': 'match', 'emodb': 'match', 'emovo': 'match',
           'resd': 'match', 'shemo': 'match', 'subesco': 'match', 'thorsten': 'match', 'urdu': 'match', 'eekk': 'match',
           'enterface': 'differs', 'expresso': 'differs', 'mead': 'differs', 'mesd': 'differs', 'meld': 'differs'}
"""What the listings are, against the paper's copies: MESD 862 vs 1150 clips, eNTERFACE 3x the paper's 431, Expresso
without 'singing', MEAD 5 clips more, MELD 782 more."""


def lines(name):
    return [l for l in (LISTINGS / name).read_text(encoding='utf-8').splitlines() if l.strip()]


def touch(root: Path, rels):
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()
    return root


def placeholder_tree(root: Path, corpus: str) -> Path:
    "Empty files named as the corpus's listing; table-labelled corpora laid out as the paper reads them (one folder per emotion)."
    if corpus in LABELS:
        name, col, sub = LABELS[corpus]
        with open(LISTINGS / name, encoding='utf-8', newline='') as f: rows = list(csv.DictReader(f))
        return touch(root / corpus, [os.path.join(*sub, r['emotion'].strip(), os.path.basename(r[col])) for r in rows])
    return touch(root / corpus, lines(LISTING[corpus]))


def test_shipped_fingerprints_are_the_rebuild():
    fp = paper_fingerprints().reset_index()
    pd.testing.assert_frame_equal(fp, build_paper_fingerprints(), check_dtype=False)
    sizes = fp.set_index('corpus')['clips']
    # the sizes stated in issue 10, derived here from the priors alone (Thorsten: 2399, the listing's count and the
    # only size its prior admits; the 2,391 is a typo)
    want = dict(emodb=535, demos=9697, mead=31724, meld=12924, expresso=11954, thorsten=2399, baum=1398, resd=1396,
                eekk=1164, mesd=1150, aesdd=604, enterface=431, masc=377, shemo=3000)
    assert {c: int(sizes[c]) for c in want} == want
    assert sizes[['urdu', 'emovo', 'casia', 'cafe', 'subesco']].isna().all()
    counts = fp.set_index('corpus')[list(CLASSES)]
    assert counts.loc['demos', 'sadness'] == 2659 and counts.loc['demos', 'other'] == 0 and counts.loc['baum', 'other'] == 519
    assert (counts.loc[list(want)].sum(axis=1) == pd.Series(want)).all()


@needs_listings
@pytest.mark.parametrize('corpus', sorted(VERDICT))
def test_listing_trees_against_the_paper(tmp_path, corpus):
    "Placeholder trees of the real listings: the paper's clips per class where the copy is the paper's, `differs` where not."
    df = scan(placeholder_tree(tmp_path, corpus), corpus)
    assert df.attrs['skipped'].empty, df.attrs['skipped'].head()
    rep = fingerprint_report(df)
    assert rep['verdict'].tolist() == [VERDICT[corpus]], rep.to_dict('records')
    fp = paper_fingerprints().loc[corpus]
    ours = np.bincount(label_indices(df['label']), minlength=len(CLASSES))
    paper = fp[list(CLASSES)].to_numpy(np.int64)
    if VERDICT[corpus] == 'match':
        if pd.isna(fp['clips']): assert (ours * paper.sum() == paper * ours.sum()).all()   # the paper's shares
        else: assert ours.tolist() == paper.tolist() and rep['paper_clips'].iloc[0] == len(df)
    else:
        assert rep['differences'].iloc[0]
    if corpus == 'mesd':
        assert (rep['clips'].iloc[0], rep['paper_clips'].iloc[0]) == (862, 1150) and 'fewer clips' in rep['differences'].iloc[0]
    if corpus == 'enterface':
        assert (ours == 3 * paper).all() and '3x' in rep['differences'].iloc[0]


@needs_listings
def test_scan_prints_match_and_differs(tmp_path, capsys):
    root = tmp_path / 'root'
    for c in ('emodb', 'mesd', 'aesdd'): placeholder_tree(root, c)
    cli_main(['scan', str(root)])
    out = capsys.readouterr().out
    line = {l.split()[0]: l for l in out.splitlines() if l.startswith('  ') and ' paper ' in l}
    assert 'paper         535' in line['emodb'] and 'yours    535' in line['emodb'] and line['emodb'].rstrip().endswith('match')
    assert 'paper        1150' in line['mesd'] and 'yours    862' in line['mesd'] and 'differs: happiness -48' in line['mesd']
    assert line['aesdd'].rstrip().endswith('match')


def test_split_sizes():
    for n in (2, 3, 10, 377, 535, 936, 1396, 9697, 31724):
        assert n_held_out(n) == n - int(0.8 * n)
        assert random_split(n).sum() == n - int(0.8 * n) == random_split(n, dim=8).sum()
    assert [n_held_out(n) for n in (936, 9697, 1396, 377)] == [188, 1940, 280, 76]    # one more than round(0.2 N)


def test_head_draws_are_the_protocols():
    "Seed 34, the head built, randperm: the split protocol replays the head's draws (flow order: it cannot import the head)."
    for dim in (8, 768, 1024):
        torch.manual_seed(34)
        FrameMLP(dim)
        _, test = torch.utils.data.random_split(range(50), [int(0.8 * 50), 50 - int(0.8 * 50)])
        assert list(test.indices) == paper_permutation(50, dim)[40:].tolist()
    state = torch.random.get_rng_state()
    paper_permutation(10, 4)
    assert torch.equal(state, torch.random.get_rng_state())                  # the global generator is left alone


@needs_listings
def test_exact_split_on_a_placeholder_tree(tmp_path):
    "The split sereval makes of a placeholder EmoDB is the one the paper's procedure yields on the same folder."
    root = placeholder_tree(tmp_path, 'emodb')
    shuffled = scan(root, 'emodb').sample(frac=1, random_state=0).reset_index(drop=True)    # any index order
    held, applied = make_split(shuffled, 'random', dim=1024)
    files = []                                          # the paper's enumeration: sorted walk, .wav files
    for dirpath, dirs, names in os.walk(root):
        dirs.sort(); names.sort()
        files += [os.path.join(dirpath, n) for n in names if n.endswith('.wav')]
    torch.manual_seed(34)
    FrameMLP(1024)
    train, test = torch.utils.data.random_split(files, [int(0.8 * len(files)), len(files) - int(0.8 * len(files))])
    assert applied == 'random' and held.sum() == len(test) == 107
    assert set(shuffled['path'][held]) == {str(Path(f).resolve()) for f in test}


def _best_subset(counts, target):
    "Brute force: the total of a proper non-empty subset closest to target (ties to the smaller)."
    n, best = len(counts), None
    for m in range(1, 2 ** n - 1):
        s = sum(c for i, c in enumerate(counts) if m >> i & 1)
        if best is None or (abs(s - target), s) < (abs(best - target), best): best = s
    return best


@pytest.mark.parametrize('seed', range(8))
def test_speaker_split_is_the_closest_subset(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 60, rng.integers(2, 9)).tolist()
    speakers = [f's{i}' for i, c in enumerate(counts) for _ in range(c)]
    m = speaker_split(speakers, seed=seed)
    target = n_held_out(len(speakers))
    assert m.sum() == _best_subset(counts, target)
    held = set(np.array(speakers)[m])
    assert held and held != set(speakers) and not held & set(np.array(speakers)[~m])


@pytest.mark.skipif(not PUBLISHED.is_dir() or not LISTINGS.is_dir(), reason='../shared (published matrices, listings) not present')
@pytest.mark.parametrize('test_corpus', ['emovo', 'demos', 'cafe', 'subesco', 'mead', 'expresso'])
def test_published_mesd_row(test_corpus):
    """The paper's MESD row (the same for every backbone) is the score of predicting surprise for every clip: with the
    paper's DEMoS map (guilt -> sadness) the DEMoS cell matches too."""
    mesd = pd.DataFrame({'label': [c for c in CLASSES for _ in range(int(paper_fingerprints().loc['mesd', c]))]})
    test = scan_listing(lines(LISTING[test_corpus]), test_corpus)
    y = label_indices(test['label'])
    z = np.random.default_rng(0).normal(0, 3, (len(y), len(CLASSES)))
    yt, yp = ood_predictions(z, y, class_priors(mesd['label']), class_priors(test['label']), 'paper')
    assert (yp == SURPRISE).all()
    ours = compute_metrics(yt, yp)
    published = {}
    for metric in ('macro_f1', 'accuracy', 'weighted_f1'):
        cells = {pd.read_csv(f).set_index('Training Dataset').loc['mesd', test_corpus] for f in (PUBLISHED / f'valid_{metric}').glob('*.csv')}
        assert len(cells) == 1
        published[metric] = cells.pop()
        assert ours[metric] == pytest.approx(published[metric], abs=6e-5), metric
    if test_corpus == 'demos':          # sereval's former map (guilt -> other, dropped out of domain) misses the cell
        old = scan_listing(lines('demos.txt'), 'demos:guilt-other')
        yo = label_indices(old['label'])
        yt, yp = ood_predictions(z, yo, class_priors(mesd['label']), class_priors(old['label']), 'paper')
        assert abs(compute_metrics(yt, yp)['accuracy'] - published['accuracy']) > 0.01
