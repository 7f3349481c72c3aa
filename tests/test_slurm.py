"""The benchmark on a REAL single-node Slurm cluster (Debian's slurm-wlm and munge, started here in a temporary folder):
the same matrices and leakage table as in-process, a job cancelled part-way through, a rerun that submits only what is missing."""
import os, shutil, subprocess, tempfile, time
from pathlib import Path

import pytest

from slurm_cluster import Cluster, why_not
from test_executors import BACKBONES, CONFIG, CORPORA, SIZE, assert_same_leakage, assert_same_matrices, in_process
from sereval.cli import main
from sereval.executors import run_jobs, squeue, status, submitted, wait_slurm

pytestmark = pytest.mark.slow
TIMES: dict[str, float] = {}

@pytest.fixture(scope='module')
def cluster():
    why = why_not()
    if why: pytest.skip(why)
    folder = tempfile.mkdtemp(prefix='sereval-slurm-')     # not pytest's tmp_path: munged (its own user) must reach it
    c = Cluster(folder)
    old = os.environ.get('SLURM_CONF')
    t = time.time()
    try:
        c.start()
        TIMES['cluster start'] = time.time() - t
        os.environ.update(c.env)
        yield c
    finally:                                                 # also when starting or a test failed
        c.stop()
        if old is None: os.environ.pop('SLURM_CONF', None)
        else: os.environ['SLURM_CONF'] = old
        shutil.rmtree(folder, ignore_errors=True)
        print('\nslurm test times: ' + ', '.join(f'{k} {v:.1f} s' for k, v in TIMES.items()))

@pytest.fixture(scope='module')
def reference(shared_run):
    "The in-process reference run, shared with tests/test_executors.py (made by whichever asks first)."
    t = time.time()
    out = shared_run('executors-in-process', in_process)
    TIMES['in-process reference'] = time.time() - t
    return out

def test_slurm_run_matches_in_process(cluster, reference, tmp_path):
    out = tmp_path/'slurm'
    t = time.time()
    assert main(['reproduce', '--executor', 'slurm', '--out', str(out), '--demo-size', str(SIZE),
                 '--corpora', ','.join(CORPORA), '--backbones', ','.join(BACKBONES), '--epochs', str(CONFIG.epochs),
                 '--no-paper', '--max-jobs', '2']) == 0
    TIMES['slurm run'] = time.time() - t
    t = status(out)
    assert set(t['state']) == {'done'}
    assert {s['executor'] for s in submitted(out).values()} == {'slurm'}
    assert all(Path(s['log']).exists() for s in submitted(out).values())   # submitit's log of every job
    assert_same_matrices(reference, out)
    assert_same_leakage(reference, out)                                     # the leakage jobs: the in-process table

def test_cancelled_job_then_rerun(cluster, reference, tmp_path):
    out = tmp_path/'slurm2'
    kw = dict(data_root=None, backbones=BACKBONES[:1], out=out, corpora=CORPORA, config=CONFIG, demo_size=SIZE, paper=False,
              executor='slurm', poll=2.0, quiet=True)
    t0 = time.time()
    assert run_jobs(**kw, wait=False) is None
    ids = {n: s['id'] for n, s in submitted(out).items()}
    victim = None
    for _ in range(600):                                   # the first extraction seen running is cancelled
        q = squeue()
        running = [n for n, i in ids.items() if n.startswith('extract/') and q.get(i) == 'running']
        if running: victim = running[0]; break
        time.sleep(0.1)
    assert victim, 'no extraction job was seen running'
    subprocess.run(['scancel', ids[victim]], check=True)
    wait_slurm(out, poll=2.0, quiet=True)
    TIMES['slurm run with a cancelled job'] = time.time() - t0
    s = status(out).set_index('job')
    assert s.loc[victim, 'state'] == 'failed'
    assert s.loc['report', 'state'] == 'failed'             # it needs the cancelled job's backbone
    done_before = set(s.index[s['state'] == 'done'])
    assert done_before                                      # the other jobs ran
    t = time.time()
    final = run_jobs(**kw, wait=True)
    TIMES['rerun after the cancel'] = time.time() - t
    assert set(final['state']) == {'done'}
    resubmitted = {n for n, v in submitted(out).items() if v['id'] != ids.get(n)}
    assert victim in resubmitted and not (resubmitted & done_before)    # only what was missing
    assert_same_matrices(reference, out, slugs={'whisperlogmel'})
