"""The `sereval` command: one description of every command, instant `--help`, clear errors, list options, scan end to end."""
import re, subprocess, sys, time
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest

import sereval
from sereval.cli import COMMANDS, command_parser, comma_list, main

FIXTURES = Path(__file__).resolve().parent / 'fixtures'
HEAVY = ('torch', 'transformers', 'pandas')
"Modules that `--help` must not import: each takes a large part of a second or more."


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)


def test_version(capsys):
    assert main(['--version']) == 0
    assert capsys.readouterr().out == f'sereval {sereval.__version__}\n'


@pytest.mark.parametrize('name', list(COMMANDS))
def test_help_is_light(name):
    "Every command's --help answers (exit 0) without importing torch, transformers or pandas."
    code = (f"import sys\nfrom sereval.cli import main\ncode = main({[*name.split(), '--help']!r})\n"
            f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], code)")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert f'usage: sereval {name}' in r.stdout
    assert r.stdout.strip().splitlines()[-1] == 'HEAVY [] 0', r.stdout.strip().splitlines()[-1]


def test_help_time(capsys):
    "Benchmark, not asserted: wall time of `sereval train --help` in a fresh interpreter (it was 19 s before the redesign)."
    code = 'import sys; from sereval.cli import main; sys.exit(main(["train", "--help"]))'
    times = []
    for _ in range(3):
        t = time.perf_counter(); r = run_python(code); times.append(time.perf_counter() - t)
        assert r.returncode == 0, r.stderr
    base = time.perf_counter(); run_python('pass'); base = time.perf_counter() - base
    with capsys.disabled():
        print(f"\nsereval train --help: best {min(times):.2f} s of 3 (python alone: {base:.2f} s)")


def test_usage_errors(capsys):
    assert main([]) == 2
    assert 'usage: sereval <command>' in capsys.readouterr().err
    assert main(['tran']) == 2
    err = capsys.readouterr().err
    assert "unknown command 'tran'; did you mean 'train'?" in err and 'Traceback' not in err
    assert main(['bench', 'stor']) == 2
    assert "unknown benchmark 'stor'; did you mean 'store'?" in capsys.readouterr().err
    assert main(['scan', str(FIXTURES), '--no-such-option']) == 2
    assert 'unrecognized arguments: --no-such-option' in capsys.readouterr().err
    assert main(['train', '--backbone', 'egemaps', '--epochs', 'many']) == 2
    assert "argument --epochs: invalid int value: 'many'" in capsys.readouterr().err


def test_bench_commands_are_the_benchmarks():
    "`sereval bench X` exists for each benchmark of sereval.bench, and its options are that function's keyword arguments."
    import inspect
    from sereval.bench import BENCHES
    assert sorted(n.split()[1] for n in COMMANDS if n.startswith('bench ')) == sorted(BENCHES)
    for name, func in BENCHES.items():
        dests = {a.dest for a in command_parser(f'bench {name}')._actions} - {'help'}
        assert dests == set(inspect.signature(func).parameters), name


def test_backbones_lists_registry_and_aliases(capsys):
    from sereval.backbones import ALIASES, BACKBONES, PAPER_BACKBONES, OFFLINE_BACKBONES, backbone_slug
    assert main(['backbones']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ['name', 'slug', 'paper', 'dim', 'frames/s', 'Hz', 'aliases']
    rows = {l.split()[0]: l.split() for l in lines[1:]}
    assert list(rows) == list(BACKBONES)             # every registry entry, in the registry's order
    assert list(rows)[:10] == list(PAPER_BACKBONES) and set(OFFLINE_BACKBONES) <= set(rows)
    for name, row in rows.items():
        assert row[1] == backbone_slug(name) and row[2] == ('yes' if name in PAPER_BACKBONES else 'no')
    listed = {a.strip(', ') for row in rows.values() for a in row[6:]}
    assert set(ALIASES) <= listed


def list_options():
    "(command, flag) of every list option of every command."
    return [(n, a.option_strings[0]) for n in COMMANDS for a in command_parser(n)._actions if a.type is comma_list]


def test_list_options_are_comma_separated():
    opts = list_options()
    assert ('embed', '--corpora') in opts and ('reproduce', '--backbones') in opts and ('train', '--corpora') in opts
    for n in COMMANDS:   # no list option of the old spelling (--corpus A B)
        assert not [a.dest for a in command_parser(n)._actions if a.nargs in ('+', '*')], n
    a = command_parser('reproduce').parse_args(['--backbones', 'whisper-logmel,egemaps', '--corpora', 'emodb, resd'])
    assert a.backbones == ['whisper-logmel', 'egemaps'] and a.corpora == ['emodb', 'resd']
    a = command_parser('embed').parse_args(['--backbone', 'egemaps', '--data-root', 'x', '--corpora', 'A,B'])
    assert a.corpora == ['A', 'B']


def test_training_defaults_are_train_config(capsys):
    "The training options, their defaults in --help and the config they give are TrainConfig's: they cannot drift."
    from sereval.protocol import TrainConfig
    from sereval.cli import _config
    paper = TrainConfig()
    assert main(['train', '--help']) == 0
    options = capsys.readouterr().out.split('\noptions:\n')[1]
    entries = {e.split()[0]: ' '.join(e.split()) for e in re.split(r'\n  (?=-)', options)}
    for f in fields(TrainConfig):
        flag = '--' + f.name.replace('_', '-')
        m = re.search(r'\(default: ([^)]+)\)$', entries[flag])
        assert m, entries[flag]
        assert type(getattr(paper, f.name))(m.group(1)) == getattr(paper, f.name), flag
    p = command_parser('train')
    assert _config(p.parse_args(['--backbone', 'egemaps', '--data-root', 'x'])) == paper
    assert _config(p.parse_args(['--backbone', 'egemaps', '--data-root', 'x', '--epochs', '7', '--lr', '3e-3'])) == TrainConfig(epochs=7, lr=3e-3)


def test_reproduce_training_options_fall_back_to_the_run_default():
    "reproduce leaves unset training options unset (the demo's or the paper's config decides)."
    from sereval.protocol import TrainConfig
    a = command_parser('reproduce').parse_args(['--epochs', '5'])
    assert {f.name: getattr(a, f.name) for f in fields(TrainConfig) if getattr(a, f.name) is not None} == {'epochs': 5}


def test_rule_and_protocol_choices_are_the_protocol():
    from sereval.protocol import PROTOCOLS, RULES
    for name in ('train', 'reproduce'):
        acts = {a.dest: a for a in command_parser(name)._actions}
        assert tuple(acts['rule'].choices) == RULES and tuple(acts['protocol'].choices) == PROTOCOLS
        assert acts['rule'].default in RULES and acts['protocol'].default in PROTOCOLS
    assert command_parser('reproduce').parse_args(['--rule', 'balanced']).rule == 'balanced'
    rep = command_parser('reproduce')
    assert rep.parse_args([]).splits == 1 and rep.parse_args(['--splits', '3']).splits == 3
    with pytest.raises(SystemExit): rep.parse_args(['--splits', '0'])
    report = command_parser('report').parse_args(['--headline-rule', 'balanced'])
    assert (report.headline_rule, report.blocks, report.posthoc) == ('balanced', 'corpora', 'wilcoxon-holm')


def test_serevalerror_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(['scan', str(tmp_path / 'missing')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('sereval scan: error: ') and 'does not exist' in err and 'Traceback' not in err
    r = run_python(f"import sys; from sereval.cli import main; sys.exit(main(['scan', {str(tmp_path / 'missing')!r}]))")
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'sereval scan: error:' in r.stderr


def test_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(a): raise KeyboardInterrupt
    monkeypatch.setattr(COMMANDS['backbones'], 'run', interrupted)
    assert main(['backbones']) == 130
    assert 'interrupted' in capsys.readouterr().err


def test_scan_end_to_end(tmp_path, capsys):
    "`sereval scan` on the corpus fixtures writes one manifest per corpus, with the clips expected.csv lists."
    from sereval.corpora import read_manifest
    from sereval.layout import Layout
    assert main(['scan', str(FIXTURES), '--corpora', 'emodb,emovo', '--out', str(tmp_path / 'out')]) == 0
    out = capsys.readouterr().out
    expected = pd.read_csv(FIXTURES / 'expected.csv', keep_default_na=False)
    for corpus in ('emodb', 'emovo'):
        want = expected[(expected.corpus == corpus) & (expected.label != 'SKIP')]
        got = read_manifest(Layout(tmp_path / 'out').manifest(corpus))
        assert len(got) == len(want) and sorted(got['label']) == sorted(want['label']), corpus
        assert f'{corpus}: {len(want)} clips' in out
    assert main(['scan', str(FIXTURES), '--corpora', 'emodb', '--out', str(tmp_path / 'emodb.csv')]) == 0
    assert len(read_manifest(tmp_path / 'emodb.csv')) == len(expected[(expected.corpus == 'emodb') & (expected.label != 'SKIP')])
    assert main(['scan', str(FIXTURES), '--corpora', 'emodb', '--out', str(tmp_path / 'x.json')]) == 2
    assert not (tmp_path / 'x.json').exists()


def test_corpora_lists_every_recipe(capsys):
    from sereval.recipes import RECIPES, CORPORA
    assert main(['corpora']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [l.split()[0] for l in lines[1:]] == list(RECIPES) and len(RECIPES) == 38
    assert [l.split()[0] for l in lines[1:20]] == list(CORPORA)                  # the paper's 19 first, in its order
    assert 'licence' in lines[0] and 'CC BY-NC-SA 4.0' in next(l for l in lines if l.startswith('ravdess'))


def test_every_training_command_shares_retrain_clusters_splits_and_headline_rule():
    """Issues 22, 25, 21: `--retrain` and `--clusters` on every command that trains or runs the protocol, `--splits` on
    `train` as on `reproduce`, `--headline-rule` on `reproduce` as on `report`: one definition each (same flags, help and
    choices everywhere)."""
    def action(cmd, dest): return next(a for a in command_parser(cmd)._actions if a.dest == dest)
    for dest, cmds in [('retrain', ('train', 'reproduce')), ('clusters', ('train', 'reproduce', 'sweep')),
                       ('splits', ('train', 'reproduce')), ('headline_rule', ('report', 'reproduce'))]:
        acts = [action(c, dest) for c in cmds]
        assert len({(tuple(a.option_strings), a.help, a.default, tuple(a.choices or ())) for a in acts}) == 1, dest
    from sereval.protocol import RULES
    assert tuple(action('reproduce', 'headline_rule').choices) == RULES
    a = command_parser('reproduce').parse_args(['--retrain', '--clusters', 'extended', '--splits', '2', '--headline-rule', 'balanced'])
    assert (a.retrain, a.clusters, a.splits, a.headline_rule) == (True, 'extended', 2, 'balanced')
    t = command_parser('train').parse_args(['--backbone', 'egemaps', '--data-root', 'x', '--splits', '3'])
    assert (t.splits, t.retrain, t.clusters) == (3, False, 'paper')
