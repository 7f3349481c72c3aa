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
