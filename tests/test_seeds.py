"Several seeds trained together: each head is the lone run of its seed; per-seed files, mean and std matrices; --seeds."
import numpy as np
import pandas as pd
import pytest
import torch

from sereval.benchmark import run_grid
from sereval.cli import command_parser
from sereval.layout import Layout
from sereval.protocol import TrainConfig
from sereval.store import write_store
from sereval.taxonomy import CLASSES
from sereval.testing import toy_frames
from sereval.train import predict_logits, train_head


def test_stacked_heads_are_the_lone_runs():
    "k seeds together give, per seed, the head of that seed trained alone (same split and batch order): same weights and decisions."
    frames, starts, lengths, labels = toy_frames(90, dim=12, seed=1)
    cfg = TrainConfig(epochs=4, lr=3e-3, batch_size=16)
    seeds = [34, 7, 99]
    stacked = train_head(frames, starts, lengths, labels, cfg, seeds=seeds)
    for s, head in zip(seeds, stacked.heads()):
        lone = train_head(frames, starts, lengths, labels, cfg, seeds=[s])
        for x, y in zip(head.state_dict().values(), lone.state_dict().values()): assert torch.equal(x, y)
        za, zb = (predict_logits(m, frames, starts, lengths) for m in (head, lone))
        assert (za.argmax(1) == zb.argmax(1)).all() and np.abs(za - zb).max() == 0
    again = train_head(frames, starts, lengths, labels, cfg, seeds=seeds)
    for x, y in zip(stacked.state_dict().values(), again.state_dict().values()): assert torch.equal(x, y)


def test_seeds_must_be_distinct():
    frames, starts, lengths, labels = toy_frames(40, dim=8, seed=0)
    with pytest.raises(Exception, match='distinct'):
        train_head(frames, starts, lengths, labels, TrainConfig(epochs=1), seeds=[1, 1])


def test_run_grid_with_seeds_writes_per_seed_and_summary_matrices(tmp_path):
    for i, (c, cls) in enumerate([('t1', (0, 1, 5, 7)), ('t2', (0, 1, 5, 7))]):
        f, s, n, l = toy_frames(50, dim=8, classes=cls, seed=i, separation=1.5, means_seed=0)
        rows = [dict(clip_id=f'{c}-{j}', label=CLASSES[k], speaker=f's{j % 5}') for j, k in enumerate(l)]
        write_store(Layout(tmp_path).embeddings, 'bb', c, rows, [f[a:a + m] for a, m in zip(s, n)], frame_rate=50)
    cfg = TrainConfig(epochs=2, lr=3e-3, batch_size=16)
    res = run_grid('bb', tmp_path, clusters={'c': ('t1', 't2')}, config=cfg, progress=False, seeds=[34, 35])
    L = Layout(tmp_path)
    per = pd.read_csv(L.seed_results('bb'))
    assert sorted(per.seed.unique()) == [34, 35]
    mean = per.groupby(['train', 'test', 'domain', 'rule', 'metric'])['value'].mean()
    got = res.set_index(['train', 'test', 'domain', 'rule', 'metric'])['value']
    np.testing.assert_allclose(got.sort_index().to_numpy(), mean.sort_index().to_numpy())
    assert L.seed_matrix('macro_f1', 'bb', 'std').exists() and L.seed_matrix('accuracy', 'bb', 35).exists()
    assert L.logits('bb', 't1', 't2', 35).exists() and L.model('bb', 't2', 35).exists()


def test_seeds_option():
    a = command_parser('reproduce').parse_args(['--seeds', '34,35,36'])
    assert a.seeds == [34, 35, 36]
    assert command_parser('train').parse_args(['--backbone', 'x', '--data-root', 'y']).seeds is None
    with pytest.raises(SystemExit): command_parser('train').parse_args(['--backbone', 'x', '--data-root', 'y', '--seeds', '1,1'])
