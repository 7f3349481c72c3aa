"""sereval.report as a reader meets it: Table 1 says where to get each corpus, its licence and what to cite; the
confusion small multiples have legible class labels; Figures 2 and 3 define their ±; backbone names, not slugs, in
the written tables and figures; no '-0.000' anywhere."""
import re
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from sereval import report as R
from sereval.layout import Layout
from sereval.recipes import RECIPES
from sereval.results import backbone_labels
from sereval.taxonomy import CLASSES
from sereval.testing import fake_run

NEG_ZERO = re.compile(r'-0?\.0+(?![0-9])')   # -0.000, -.00: a negative zero as printed


def texts(fig) -> list:
    "Every Text artist of a figure (titles, labels, tick labels, annotations, legends)."
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]


def test_table1_markdown_gives_every_corpus_its_link_licence_and_citation():
    t1 = pd.DataFrame({'corpus': list(RECIPES), 'clips': 1, 'synthetic': False})
    md = R.to_markdown(R.table1_markdown(t1))
    rows = {line.split('|')[1].strip(): line for line in md.splitlines()[2:] if line.startswith('|')}
    assert set(rows) == set(RECIPES)
    for name, r in RECIPES.items():
        assert r.licence and r.licence in rows[name], name
        assert r.citation and r.citation in rows[name], name
        if r.url: assert f']({r.url})' in rows[name], name            # a Markdown link to the download page
        else: assert 'see the publisher' in rows[name], name


def test_table1_of_a_synthetic_corpus_says_so():
    md = R.to_markdown(R.table1_markdown(pd.DataFrame({'corpus': ['demo-emodb'], 'synthetic': [True]})))
    assert 'none (synthetic)' in md and 'sereval.synth' in md and 'emodb.bilderbar' not in md


def test_run_and_paper_table1_files_carry_the_sources(tmp_path):
    mans = {c: pd.DataFrame({'path': [f'/x/{c}/{i}.wav' for i in range(6)], 'corpus': c, 'raw_label': 'x',
                             'label': [CLASSES[i % 3] for i in range(6)], 'speaker': [f's{i % 2}' for i in range(6)],
                             'language': 'German'}) for c in ('emodb', 'cafe', 'casia')}
    run = fake_run(tmp_path/'run', corpora=('emodb', 'cafe', 'casia'), cluster=('emodb', 'cafe'), manifests=mans)
    R.render_report(run, paper=False, quiet=True)
    L = Layout(run)
    md = (L.tables/'table1_corpora.md').read_text()
    t1 = pd.read_csv(L.tables/'table1_corpora.csv')
    assert t1.corpus.tolist() == ['emodb', 'cafe', 'casia'] and t1.clips.tolist() == [6, 6, 6]   # old columns unchanged
    for c in ('emodb', 'cafe', 'casia'):
        assert RECIPES[c].licence in md and f']({RECIPES[c].url})' in md and RECIPES[c].citation in md
        assert t1.set_index('corpus').at[c, 'url'] == RECIPES[c].url


def confusions(corpora, seed=0):
    rng = np.random.default_rng(seed)
    return {(a, b): pd.DataFrame(rng.integers(0, 9, (8, 8)), index=pd.Index(CLASSES, name='true'),
                                 columns=pd.Index(CLASSES, name='predicted')) for a, b in corpora}


def test_confusion_figures_are_small_multiples_with_legible_labels():
    clusters = {'cluster1': ['a', 'b'], 'cluster2': list('cdefghijk')}          # the paper's second cluster has 9 corpora
    keys = [(x, y) for m in clusters.values() for x in m for y in m] + [('z', 'z'), ('w', 'w')]
    confs = confusions(keys)
    groups = R.confusion_groups(confs, clusters)
    assert sorted(k for g in groups.values() for k in g) == sorted(keys)          # every cell drawn once
    assert set(groups) == {'cluster1', 'cluster2_1', 'cluster2_2', 'cluster2_3', 'in_domain'}
    order = [*'abcdefghijk', 'z', 'w']
    for name, cells in groups.items():
        fig = R.plot_confusions({k: confs[k] for k in cells}, order, f'X: {name}', {cells[0]: 'collapsed'})
        panels = [ax for ax in fig.axes if ax.get_images()]
        assert len({k[0] for k in cells}) <= 4 or name == 'in_domain'
        ticks = [t for ax in panels for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
        assert ticks and min(t.get_fontsize() for t in ticks) >= 8, name
        assert min(t.get_fontsize() for t in texts(fig)) >= 8, name
        fig.canvas.draw()                                                      # constrained layout places the panels
        w, h = fig.get_size_inches()
        assert all(ax.get_position().width * w >= 1.0 for ax in panels), name   # each panel at least an inch wide
        assert 'hap = happiness' in ' '.join(t.get_text() for t in texts(fig))   # the abbreviations spelled out
        plt.close(fig)


def test_plus_minus_is_defined_in_figures_2_and_3():
    data = pd.DataFrame({'a': [0.30, 0.40], 'b': [0.20, 0.50]}, index=['c1', 'c2'])
    fig = R.plot_corpus_averages(data, {'k': ('c1', 'c2')}, 't', 'x', mean={'a': 0.35, 'b': 0.35},
                                 intervals=(data - .05, data + .05))
    words = ' '.join(t.get_text() for t in texts(fig)).replace('\n', ' ')
    plt.close(fig)
    assert '±.05' in words
    assert '± = half the width of the 95 % interval' in words and 'bootstrap' in words and 'seeds' in words
    fig = R.plot_corpus_averages(data, {'k': ('c1', 'c2')}, 't', 'x', mean={'a': 0.35, 'b': 0.35})
    assert '±' not in ' '.join(t.get_text() for t in texts(fig))              # no ± printed, none defined
    plt.close(fig)


def test_negative_zero_never_printed():
    assert R.number_text(-0.0004) == '0.000' and R.number_text(-0.0004, 2, signed=True) == '0.00'
    assert R.number_text(-0.012) == '-0.012' and R.number_text(0.02, 2, signed=True) == '+0.02'
    md = R.to_markdown(pd.DataFrame({'shift': [-0.0001, -0.25]}))
    assert '-0.000' not in md and '| 0.000 |' in md and '-0.250' in md
    assert R.interval_text(-0.0001, -0.004, 0.003) == '0.000 [0.00, 0.00]'
    ann = R._annotations(pd.DataFrame([[-0.001, 0.004, -0.3]]), signed=True)
    assert not any(NEG_ZERO.fullmatch(str(a)) for a in ann.ravel()) and ann[0, 2] == '-.30'


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    "A fabricated run rendered with the paper, SVG text kept as text (so that the figures' words can be read)."
    out = tmp_path_factory.mktemp('reader')
    run = fake_run(out/'run', backbones=('whisper-logmel', 'egemaps', 'openai/whisper-medium'))
    with matplotlib.rc_context({'svg.fonttype': 'none'}):
        R.render_report(run, quiet=True)
    return run


def test_no_slug_where_a_backbone_name_belongs(rendered):
    from sereval import paper as P
    slugs = set(P.paper_backbone_slugs()) | {'whisperlogmel', 'egemaps', 'openaiwhispermedium'}
    labels = backbone_labels(slugs)
    assert all(labels[s] != s for s in slugs)                                  # each slug has a name to show instead
    pattern = re.compile(r'(?<![\w/.-])(' + '|'.join(sorted(slugs)) + r')(?![\w.-])')
    files = [f for f in rendered.rglob('*') if f.suffix in ('.md', '.svg') and 'notebooks' not in f.parts]
    assert any(f.suffix == '.svg' for f in files) and any(f.name == 'rankings.md' for f in files)
    for f in files:
        hits = pattern.findall(f.read_text(encoding='utf-8'))
        assert not hits, f'{f.relative_to(rendered)}: {sorted(set(hits))}'


def test_no_negative_zero_in_written_tables(rendered):
    for f in rendered.rglob('*.md'):
        assert not NEG_ZERO.search(f.read_text(encoding='utf-8')), f
