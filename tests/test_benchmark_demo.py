"""Evidence on the offline demo: synthetic corpora (sereval.synth), a weights-free backbone (whisper-logmel), the whole
grid. In-domain macro F1 must be well above chance and out-of-domain above chance. Run with -s to see the numbers."""
import numpy as np
import pandas as pd
import pytest
import torch

from sereval.benchmark import load_logits, results_matrix, run_backbone, summarize
from sereval.corpora import load_clusters, scan_root, write_manifests
from sereval.embed import embed_corpus
from sereval.synth import make_demo
from sereval.taxonomy import OTHER_INDEX
from sereval.train import TrainConfig


def _chance(out, backbone, res):
    "Macro F1 of guessing: 1 / number of classes scored, per pair (other dropped out of domain)."
    c = []
    for (tr, te, dom) in res[['train', 'test', 'domain']].drop_duplicates().itertuples(index=False):
        z = load_logits(out, backbone, tr, te)
        y = z.loc[z.split == 'test', 'y'] if dom == 'in' else z.loc[z.y != OTHER_INDEX, 'y']
        c.append(dict(train=tr, test=te, domain=dom, chance=1 / y.nunique()))
    return pd.DataFrame(c)


def test_demo_in_domain_and_ood_above_chance(tmp_path):
    threads = torch.get_num_threads(); torch.set_num_threads(1)   # tiny heads: one thread is fastest
    try:
        root = make_demo(tmp_path / 'data', seed=0, size=1.0, progress=False)
        out = tmp_path / 'out'
        manifest, skipped = scan_root(root)
        assert len(skipped) == 0
        write_manifests(manifest, out)
        embed_corpus(manifest, 'whisper-logmel', out / 'embeddings', progress=False, verbose=False)
        res = run_backbone('whisper-logmel', out / 'embeddings', out, clusters=load_clusters(root),
                           config=TrainConfig(epochs=30, lr=3e-3), progress=False)
    finally:
        torch.set_num_threads(threads)
    f1 = res[res.metric == 'macro_f1'].merge(_chance(out, 'whisper-logmel', res), on=['train', 'test', 'domain'])
    ind = f1[f1.domain == 'in']
    ood = {r: f1[(f1.domain == 'out') & (f1.rule == r)] for r in ('paper', 'corrected', 'none')}
    with pd.option_context('display.width', 200):
        print('\nmacro F1 on the demo (whisper-logmel, 30 epochs, lr 3e-3):')
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
    z = load_logits(out, 'whisper-logmel', 'demo-mesd', 'demo-emovo')
    assert z.label.eq('surprise').any()
