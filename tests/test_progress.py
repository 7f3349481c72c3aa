"""Progress while `sereval reproduce` works: every backbone reports its steps (extraction, each training corpus with its
seed heads, evaluation, the leakage heads) as one line each on the terminal, also when the backbones run in parallel
kernels (`--quiet` printing none of them is checked by the quiet rerun of tests/test_reproduce.py)."""
import re, subprocess, sys

import pytest

from sereval.progress import read_events

CORPORA = ['demo-emodb', 'demo-subesco']               # one OOD cluster: each is the other's test
BACKBONES = {'whisper-logmel': 'whisperlogmel', 'egemaps': 'egemaps'}


def _reproduce(out, *extra):
    cmd = [sys.executable, '-c', 'import sys; from sereval.cli import main; sys.exit(main())', 'reproduce', '--out', str(out), '--corpora', ','.join(CORPORA), '--jobs', '2',
           '--demo-size', '0.12', '--epochs', '3', '--seeds', '34,35', '--no-paper', *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_progress_lines_of_a_two_corpus_demo_in_parallel_kernels(tmp_path):
    r = _reproduce(tmp_path / 'out')
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert re.search(r'finished in \d', r.stdout)
    for name, slug in BACKBONES.items():
        mine = [l for l in lines if l.startswith(f'  {name}: ')]
        assert any('extracting' in l for l in mine), mine
        for k, c in enumerate(CORPORA, 1):           # at least one line per training corpus per backbone, with its heads
            assert any(l.startswith(f'  {name}: training {c} ({k}/2): 2 head(s), seed(s) 34, 35') for l in mine), mine
            assert any(f'leakage heads: {c}' in l for l in mine), mine
        assert any('evaluation' in l for l in mine) and mine[-1].startswith(f'  {name}: done in'), mine
        assert len(mine) == len(set(mine)) == len(read_events(tmp_path / 'out', slug))   # each event once, no flood
