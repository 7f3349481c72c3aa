"""sereval.report: Table 3 and Figures 2 and 3 from the published matrices match numbers recomputed by hand
(plain csv, no sereval code) from ../shared/paper/published_matrices (skipped without it); `sereval report` renders a
run from its records."""
import csv, statistics
from pathlib import Path

import pandas as pd
import pytest

from sereval import report as R
from sereval.layout import Layout
from sereval.testing import fake_run
from sereval.results import TABLE_METRICS

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = REPO/'..'/'shared'/'paper'/'published_matrices'
needs_published = pytest.mark.skipif(not PUBLISHED.is_dir(), reason='../shared/paper/published_matrices not present')


def by_hand(metric, backbone):
    "{(train, test): value} of the non-empty cells of one published file, with the csv module."
    with open(PUBLISHED/f'valid_{metric}'/f'{backbone}.csv', newline='') as fh:
        rows = list(csv.reader(fh))
    return {(r[0], t): float(v) for r in rows[1:] for t, v in zip(rows[0][1:], r[1:]) if v != ''}


@pytest.fixture(scope='module')
def paper_out(tmp_path_factory):
    out = tmp_path_factory.mktemp('rep')
    R.render_paper(out, heatmaps=['openaiwhisperlargev3'], quiet=True)
    return Layout(out).paper.out


@needs_published
@pytest.mark.parametrize('backbone', ['openaiwhisperlargev3', 'facebookhubertlargell60k', 'mapmertv1330m'])
def test_table3_by_hand(paper_out, backbone):
    t3 = pd.read_csv(paper_out/'tables'/'table3_results.csv').set_index('slug')
    for metric in ('macro_f1', 'accuracy'):
        cells = by_hand(metric, backbone)
        id_ = statistics.mean(v for (a, b), v in cells.items() if a == b)
        ood = statistics.mean(v for (a, b), v in cells.items() if a != b)
        assert abs(t3.at[backbone, f'{metric}_id'] - id_) < 1e-12
        assert abs(t3.at[backbone, f'{metric}_ood'] - ood) < 1e-12
    assert t3.at[backbone, 'n_ood'] == 76


def test_paper_rankings_over_corpora(paper_out):
    rk = pd.read_csv(paper_out/'tables'/'rankings.csv')
    assert set(rk['blocks']) == {'corpora'} and set(rk['view']) == {'in', 'ood_test', 'ood_train'}
    ind = rk[rk.view == 'in']
    assert len(ind) == 10 and (ind.n_blocks == 19).all() and (ind.posthoc == 'wilcoxon-holm').all()
    assert (rk[rk.view == 'ood_train'].n_dropped == 1).all()          # MESD's row: every backbone tied
    pairs = pd.read_csv(paper_out/'tables'/'rankings_posthoc.csv')
    assert len(pairs) == 3 * 45 and pairs[['p_a_better', 'p_equivalent', 'p_b_better']].sum(axis=1).round(6).eq(1).all()
    for v in ('', '_ood_test', '_ood_train'):
        assert (paper_out/'figures'/f'critical_difference{v}.png').stat().st_size > 1000


@needs_published
def test_figures_by_hand(paper_out):
    f2 = pd.read_csv(paper_out/'figures'/'figure2_ood_by_train.csv', index_col=0)
    f3 = pd.read_csv(paper_out/'figures'/'figure3_ood_by_test.csv', index_col=0)
    cells = by_hand('macro_f1', 'openaiwhisperlargev3')
    row = lambda c: statistics.mean(v for (a, b), v in cells.items() if a == c and b != c)
    col = lambda c: statistics.mean(v for (a, b), v in cells.items() if b == c and a != c)
    for corpus in ('emodb', 'cafe', 'mesd', 'urdu'):
        assert abs(f2.at[corpus, 'Whisper large-v3'] - row(corpus)) < 1e-12
        assert abs(f3.at[corpus, 'Whisper large-v3'] - col(corpus)) < 1e-12
    # two values read off the matrix by eye: EmoDB's row holds one OOD cell (RESD), URDU's column one (EEKK)
    assert f2.at['emodb', 'Whisper large-v3'] == 0.19938
    assert f3.at['urdu', 'Whisper large-v3'] == cells[('eekk', 'urdu')]
    # corpora outside the clusters have no out-of-domain average
    assert 'aesdd' not in f2.index and 'thorsten' not in f3.index
    assert list(f2.columns)[0] == 'w2v-BERT 2.0' and len(f2.columns) == 10


def test_paper_files(paper_out):
    for n in ('table1_corpora', 'table2_backbones', 'table3_results'):
        assert (paper_out/'tables'/f'{n}.csv').exists() and (paper_out/'tables'/f'{n}.md').exists()
    for n in ('figure2_ood_by_train', 'figure3_ood_by_test', 'heatmap_openaiwhisperlargev3'):
        for ext in ('png', 'svg'):
            assert (paper_out/'figures'/f'{n}.{ext}').stat().st_size > 1000


def cli_main():
    "`sereval.cli.main`, or a skip while the command line does not have the report command yet."
    from sereval import cli
    try: cli.main(['report', '--help'])
    except SystemExit as e:
        if e.code: pytest.skip(f'sereval.cli has no working report command yet (exit {e.code})')
    except Exception as e: pytest.skip(f'sereval.cli has no working report command yet ({e!r})')
    return cli.main


def test_run_report_command(tmp_path, capsys):
    main = cli_main()
    run = fake_run(tmp_path/'run', backbones=('whisper-logmel', 'openai/whisper-large-v3'))
    assert main(['report', '--out', str(run), '--no-paper']) == 0
    L = Layout(run)
    assert str(L.tables) in capsys.readouterr().out
    t3 = pd.read_csv(L.tables/'table3_results.csv')
    assert t3.rule.tolist() == ['paper', 'corrected'] * 2
    vals = t3[[c for c in t3 if c.endswith(('_id', '_ood')) and not c.startswith('n_')]].to_numpy().ravel()
    assert len(vals) == 2 * 2 * 2 * len(TABLE_METRICS) and ((vals >= 0) & (vals <= 1)).all()
    assert {'unweighted_accuracy_id', 'unweighted_accuracy_ood'} <= set(t3.columns)
    cmp = pd.read_csv(L.tables/'comparison_openaiwhisperlargev3.csv')
    assert {'ours', 'paper', 'diff'} <= set(cmp.columns)
    assert (L.figures/'comparison_openaiwhisperlargev3.png').stat().st_size > 1000
    assert not L.paper.out.exists()
    assert '## This run' in (run/'findings.md').read_text()
    rk = pd.read_csv(L.tables/'rankings.csv')
    assert set(rk['blocks']) == {'corpora'} and 'in' in set(rk['view'])
    assert main(['report', '--out', str(tmp_path/'nowhere')]) != 0


def test_corpus_averages_show_the_intervals_of_every_column():
    "Figures 2 and 3: each average and the all-pairs column carry ± half their interval's width."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from sereval.report import plot_corpus_averages
    data = pd.DataFrame({'a': [0.30, 0.40], 'b': [0.20, 0.50]}, index=['c1', 'c2'])   # corpora x backbones
    low, high = data - 0.05, data + 0.05
    fig = plot_corpus_averages(data, {'k': ('c1', 'c2')}, 't', 'x', mean={'a': 0.35, 'b': 0.35},
                               intervals=(low, high), mean_intervals={'a': (0.30, 0.42), 'b': (0.33, 0.37)})
    texts = [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)
    assert '.35\n±.06' in texts and '.35\n±.02' in texts and texts.count('.30\n±.05') == 1
