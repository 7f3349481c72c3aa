"""Evidence on the offline demo, `sereval.pipeline.DEMO`: synthetic corpora (sereval.synth), the weights-free
whisper-logmel backbone, the whole pipeline. In-domain macro F1 must be well above chance and out-of-domain above
chance. With SEREVAL_BASELINE_OUT set to the output folder of a demo run of another version (`sereval reproduce`), its
whisper-logmel matrices must be byte-identical to this run's. Run with -s to see the numbers."""
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from sereval.backbones import backbone_slug
from sereval.benchmark import load_logits, results_matrix, summarize
from sereval.layout import Layout
from sereval.pipeline import DEMO, demo_root, run_backbone
from sereval.taxonomy import OTHER_INDEX

BACKBONE = DEMO.backbones[0]


def _chance(out, backbone, res):
    "Macro F1 of guessing: 1 / number of classes scored, per pair (other dropped out of domain)."
    c = []
    for (tr, te, dom) in res[['train', 'test', 'domain']].drop_duplicates().itertuples(index=False):
        z = load_logits(out, backbone, tr, te)
        y = z.loc[z.split == 'test', 'y'] if dom == 'in' else z.loc[z.y != OTHER_INDEX, 'y']
        c.append(dict(train=tr, test=te, domain=dom, chance=1 / y.nunique()))
    return pd.DataFrame(c)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo')
    threads = torch.get_num_threads(); torch.set_num_threads(DEMO.threads)
    try:
        run = run_backbone(BACKBONE, demo_root(out, quiet=True), out, config=DEMO.train, progress=False)
    finally:
        torch.set_num_threads(threads)
    return out, run


@pytest.mark.slow
def test_demo_in_domain_and_ood_above_chance(demo):
    out, run = demo
    res = run.results
    assert len(run.skipped) == 0
    f1 = res[res.metric == 'macro_f1'].merge(_chance(out, BACKBONE, res), on=['train', 'test', 'domain'])
    ind = f1[f1.domain == 'in']
    ood = {r: f1[(f1.domain == 'out') & (f1.rule == r)] for r in ('paper', 'corrected', 'none')}
    with pd.option_context('display.width', 200):
        print(f'\nmacro F1 on the demo ({BACKBONE}, {DEMO.train.epochs} epochs, lr {DEMO.train.lr:g}):')
        print(summarize(res).to_string(index=False))
        print(f"in-domain mean {ind.value.mean():.3f} (chance {ind.chance.mean():.3f}); "
              + '; '.join(f"OOD {r} mean {d.value.mean():.3f} (chance {d.chance.mean():.3f})" for r, d in ood.items()))
        print(results_matrix(res, 'macro_f1', 'corrected').round(2).to_string())
    assert ind.value.mean() > 2.5 * ind.chance.mean()
    assert ood['corrected'].value.mean() > 1.3 * ood['corrected'].chance.mean()
    assert ood['none'].value.mean() > ood['none'].chance.mean()
    # demo-emodb and demo-mesd lack surprise: under the paper's rule their OOD rows collapse, the corrected rule does not
    paper, corr = results_matrix(res, 'macro_f1', 'paper'), results_matrix(res, 'macro_f1', 'corrected')
    assert paper.loc['demo-mesd', 'demo-emovo'] < corr.loc['demo-mesd', 'demo-emovo']
    z = load_logits(out, BACKBONE, 'demo-mesd', 'demo-emovo')
    assert z.label.eq('surprise').any()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get('SEREVAL_BASELINE_OUT'), reason='SEREVAL_BASELINE_OUT (a demo output of another version) not set')
def test_demo_matrices_match_baseline(demo):
    "The matrices of this version's demo are byte-identical to those of the baseline demo (`sereval reproduce`)."
    out, _ = demo
    base, slug = Path(os.environ['SEREVAL_BASELINE_OUT']), backbone_slug(BACKBONE)
    ours = sorted(p.relative_to(out) for p in Layout(out).matrix('macro_f1', slug).parent.parent.rglob(f'{slug}.csv'))
    assert len(ours) == 24
    different = [str(p) for p in ours if (out/p).read_bytes() != (base/p).read_bytes()]
    assert not different, f'matrices differ from {base}: {different}'
