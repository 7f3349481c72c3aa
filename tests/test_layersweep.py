"`sereval sweep`: the layer sweep from the command line, on stores a `sereval embed` of several layers wrote."
import pandas as pd

from sereval.backbones import backbone_slug
from sereval.cli import main
from sereval.layout import Layout
from sereval.synth import DEMO_CORPORA, make_demo
from sereval.testing import random_whisper_checkpoint


def test_sweep_command(tmp_path, capsys):
    ckpt = random_whisper_checkpoint(tmp_path / 'tiny.pt', (80, 32, 2, 2))
    root = make_demo(tmp_path / 'corpora', size=0.1, progress=False,
                     corpora=[c for c in DEMO_CORPORA if c.name in ('demo-emovo', 'demo-mesd')])
    out, name = tmp_path / 'out', f'{ckpt}@all'
    assert main(['embed', '--backbone', name, '--data-root', str(root), '--out', str(out), '--quiet']) in (0, None)
    assert main(['sweep', '--backbone', f'{ckpt}@1', '--out', str(out), '--quiet']) == 2   # never embedded under that name
    assert 'sereval sweep: error: no embedding stores' in capsys.readouterr().err
    assert main(['sweep', '--backbone', name, '--out', str(out), '--data-root', str(root), '--epochs', '2', '--lr', '1e-3',
                 '--quiet']) in (0, None)
    printed = capsys.readouterr().out
    folder = Layout(out).sweep(backbone_slug(name))
    assert folder.name == Layout(out).store(backbone_slug(name), 'demo-emovo').parent.name   # the stores' own name
    res, w = pd.read_csv(folder / 'sweep.csv'), pd.read_csv(folder / 'layer_weights.csv')
    assert set(res['layer']) == {0, 1, 2, -1} and set(res['domain']) == {'in', 'out'}   # the demo root's cluster pairs them
    assert len(w) == 2 * 3 and (folder / 'layer_sweep.png').stat().st_size > 10_000
    assert 'weighted' in printed and str(folder) in printed


# ---------------------------------------------------------------- a rerun equals a clean run (issue 22)

import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest

EPOCHS = ['--epochs', '2', '--lr', '1e-3']


@pytest.fixture(scope='module')
def stores(tmp_path_factory):
    "An output folder holding only the stores of a 3-layer random Whisper on two demo corpora, and the backbone name."
    tmp = tmp_path_factory.mktemp('sweep')
    ckpt = random_whisper_checkpoint(tmp / 'tiny.pt', (80, 32, 2, 2))
    root = make_demo(tmp / 'corpora', size=0.1, progress=False,
                     corpora=[c for c in DEMO_CORPORA if c.name in ('demo-emovo', 'demo-mesd')])
    out, name = tmp / 'out', f'{ckpt}@all'
    assert main(['embed', '--backbone', name, '--data-root', str(root), '--out', str(out), '--quiet']) == 0
    return out, name, root


def fresh(stores, dst: Path) -> Path:
    "A copy of the stores' output folder, without any sweep."
    shutil.copytree(stores[0] / 'embeddings', dst / 'embeddings'); return dst


def sweep(stores, out, *extra) -> int:
    _, name, root = stores
    return main(['sweep', '--backbone', name, '--out', str(out), '--data-root', str(root), *EPOCHS, '--quiet', *extra])


def outputs(out: Path, name: str) -> dict[str, bytes]:
    folder = Layout(out).sweep(backbone_slug(name))
    return {f: (folder / f).read_bytes() for f in ('sweep.csv', 'layer_weights.csv')}


def heads(out: Path, name: str) -> list[str]:
    h = Layout(out).sweep(backbone_slug(name)) / 'heads'
    return sorted(str(p.relative_to(h)) for p in h.rglob('*') if p.is_file())


@pytest.fixture(scope='module')
def clean(stores, tmp_path_factory):
    "sweep.csv and layer_weights.csv of a clean run."
    out = fresh(stores, tmp_path_factory.mktemp('clean'))
    assert sweep(stores, out) == 0
    assert len(heads(out, stores[1])) == 2 * 4                       # 3 layers and the mix, per training corpus
    return outputs(out, stores[1])


def test_sweep_stopped_by_sigterm_continues_to_a_clean_run(stores, clean, tmp_path):
    "Finding: a killed `sereval sweep` restarted from zero. Now it keeps each finished head and the rerun ends as a clean run."
    out, name = fresh(stores, tmp_path / 'out'), stores[1]
    top = Path(__file__).resolve().parent.parent
    env = {**os.environ, 'PYTHONPATH': str(top), 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-c', 'import sys; from sereval.cli import main; sys.exit(main())', 'sweep', '--backbone', name,
           '--out', str(out), '--data-root', str(stores[2]), '--epochs', '40', '--lr', '1e-3', '--quiet']
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    hd, deadline = Layout(out).sweep(backbone_slug(name)) / 'heads', time.time() + 300
    while time.time() < deadline and p.poll() is None and not list(hd.rglob('*.json')): time.sleep(0.05)
    assert p.poll() is None, 'the sweep ended before it could be stopped'
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and 'terminated' in err and 'Traceback' not in err, err
    kept = heads(out, name)
    assert 1 <= len(kept) < 8 and not (hd.parent / 'sweep.csv').exists()
    assert not [f for f in hd.rglob('*') if f.name.endswith('.tmp')]
    stamp = {f: (hd / f).stat().st_ino for f in kept}
    assert sweep(stores, out, '--epochs', '40') == 0                 # the rerun keeps what was finished...
    assert all((hd / f).stat().st_ino == ino for f, ino in stamp.items())
    assert len(heads(out, name)) == 8
    assert sweep(stores, out) == 0                                   # ...and a changed --epochs trains every head again
    assert outputs(out, name) == clean


def test_sweep_reuses_heads_retrain_trains_them_again(stores, clean, tmp_path):
    "Finding: `sereval sweep` had no --retrain and always trained from scratch. A kept head is reused (a tampered score shows it); --retrain trains it again."
    out, name = fresh(stores, tmp_path / 'out'), stores[1]
    assert sweep(stores, out) == 0 and outputs(out, name) == clean
    f = Layout(out).sweep(backbone_slug(name)) / 'heads' / 'demo-emovo' / 'layer1.json'
    kept = json.loads(f.read_text())
    kept['macro_f1']['demo-emovo'] = 0.123456
    f.write_text(json.dumps(kept))
    assert sweep(stores, out) == 0
    res = pd.read_csv(Layout(out).sweep(backbone_slug(name)) / 'sweep.csv')
    assert res.query("train == 'demo-emovo' and test == 'demo-emovo' and layer == 1")['macro_f1'].item() == 0.123456
    assert sweep(stores, out, '--retrain') == 0
    assert outputs(out, name) == clean


@pytest.mark.parametrize('change', [['--epochs', '3'], ['--rule', 'none'], ['--normalize'], ['--seed', '7'],
                                    ['--corpora', 'demo-mesd']])
def test_sweep_rerun_after_another_setup_equals_clean_run(stores, clean, tmp_path, change):
    "Finding: a sweep's folder could hold heads of another setup. A rerun after any change writes what a clean run writes; heads it no longer has are deleted."
    out, name = fresh(stores, tmp_path / 'out'), stores[1]
    assert sweep(stores, out, *change) == 0
    changed = outputs(out, name)
    if change[0] == '--corpora': assert heads(out, name) == ['demo-mesd/layer0.json', 'demo-mesd/layer1.json',
                                                             'demo-mesd/layer2.json', 'demo-mesd/weighted.json']
    assert sweep(stores, out) == 0
    assert outputs(out, name) == clean and len(heads(out, name)) == 8
    if change[0] != '--normalize': assert changed != clean           # the change mattered (the mix's norm may not, in 2 epochs)


@pytest.mark.parametrize('damage', ['', 'not json', '[1, 2]', '{"fingerprint": 3}'])
def test_sweep_damaged_head_file_is_trained_again(stores, clean, tmp_path, damage):
    "A head file emptied, truncated or of another shape (a disk full, an edit) is trained again, not trusted or a traceback."
    out, name = fresh(stores, tmp_path / 'out'), stores[1]
    assert sweep(stores, out) == 0
    (Layout(out).sweep(backbone_slug(name)) / 'heads' / 'demo-mesd' / 'weighted.json').write_text(damage)
    (Layout(out).sweep(backbone_slug(name)) / 'sweep.csv').unlink()
    assert sweep(stores, out) == 0 and outputs(out, name) == clean


def _edit_store(out: Path, name: str, corpus: str, meta=None, labels=None):
    from sereval.layout import write_frame, write_json
    folder = Layout(out).store(backbone_slug(name), corpus)
    if meta: write_json(folder / 'meta.json', {**json.loads((folder / 'meta.json').read_text()), **meta})
    if labels:
        idx = pd.read_parquet(folder / 'index.parquet'); idx['label'] = labels; write_frame(folder / 'index.parquet', idx)


def test_sweep_skips_an_incomplete_store(stores, tmp_path, capsys):
    "Adversarial (sweep): a store whose extraction was stopped was swept as if complete. Now skipped with its reason; named, an error."
    out, name = fresh(stores, tmp_path / 'out'), stores[1]
    _edit_store(out, name, 'demo-emovo', meta={'complete': False})
    assert sweep(stores, out) == 0
    assert 'skipping demo-emovo: extraction not complete' in capsys.readouterr().out
    res = pd.read_csv(Layout(out).sweep(backbone_slug(name)) / 'sweep.csv')
    assert set(res['train']) == set(res['test']) == {'demo-mesd'}
    assert sweep(stores, out, '--corpora', 'demo-emovo') == 2
    assert 'cannot be used: extraction not complete' in capsys.readouterr().err


def test_sweep_flags_a_one_emotion_corpus(stores, tmp_path, capsys):
    "Adversarial (sweep): a corpus of one emotion was trained and scored (in-domain macro F1 0.333 averaged in). Now skipped with its reason."
    out, name = fresh(stores, tmp_path / 'out'), stores[1]
    _edit_store(out, name, 'demo-emovo', labels='anger')
    assert sweep(stores, out) == 0
    assert 'skipping demo-emovo: 1 emotion class (anger)' in capsys.readouterr().out
    assert set(pd.read_csv(Layout(out).sweep(backbone_slug(name)) / 'sweep.csv')['train']) == {'demo-mesd'}
    assert sweep(stores, out, '--corpora', 'demo-emovo') == 2
    assert 'no usable store' in capsys.readouterr().err


def test_sweep_corpus_given_twice_is_swept_once(stores, clean, tmp_path):
    "Adversarial (sweep): `--corpora a,a` trained a twice and wrote every row twice."
    out, name = fresh(stores, tmp_path / 'out'), stores[1]
    assert sweep(stores, out, '--corpora', 'demo-emovo,demo-mesd,demo-emovo') == 0
    assert outputs(out, name) == clean
