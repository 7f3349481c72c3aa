#!/usr/bin/env python
"""Build the documentation site into settings.ini's `doc_path` (`_docs/`, `index.html` at its top).

1. nbdev processes the notebooks into `_proc/` (`proc_nbs`: show_doc sections, doc links, front matter).
2. With `quarto` on PATH, Quarto renders `_proc/` with `_quarto.yml` (the publishing build, as in CI).
   Otherwise pandoc (bundled by the `pypandoc_binary` wheel) renders the same processed notebooks, with the
   sidebar, page titles and page names read from `_quarto.yml`, so both builds have the same pages.

    python scripts/build_site.py [--pandoc] [--keep-going]

`--pandoc` uses pandoc even when Quarto is installed; `--keep-going` renders the notebooks nbdev could process when
some could not (the others are named, and the exit status is still 1).
"""
import argparse, base64, configparser, html, json, os, re, shutil, subprocess, sys, tempfile, time
from html.parser import HTMLParser
from pathlib import Path

import yaml
from concurrent.futures import ThreadPoolExecutor

TOP = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / 'site'
CFG = configparser.ConfigParser(); CFG.read(TOP / 'settings.ini')
SETTINGS = CFG['DEFAULT']
DOCS, PROC, NBS = TOP / SETTINGS['doc_path'], TOP / '_proc', TOP / SETTINGS['nbs_path']
SITE_URL = SETTINGS['doc_host'].rstrip('/') + SETTINGS['doc_baseurl'].rstrip('/') + '/'


def page_name(nb_name: str) -> str:
    "The page a notebook becomes, as nbdev names it (number prefix dropped): `02a_recipes.ipynb` -> `recipes.html`."
    if nb_name == 'index.ipynb': return 'index.html'
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', nb_name.lower()).rsplit('.', 1)[0] + '.html'


def quarto_config() -> dict: return yaml.safe_load((TOP / '_quarto.yml').read_text())


def sidebar(cfg=None) -> list:
    "The sidebar of `_quarto.yml` as a tree: a notebook name (str) or (section title, [children])."
    def walk(items):
        for it in items:
            if isinstance(it, str): yield it
            elif 'section' in it: yield (it['section'], list(walk(it.get('contents', []))))
            elif 'href' in it: yield it['href']
    return list(walk((cfg or quarto_config())['website']['sidebar']['contents']))


def sidebar_notebooks(tree) -> list:
    return [n for it in tree for n in ([it] if isinstance(it, str) else sidebar_notebooks(it[1]))]


# ---------------------------------------------------------------- step 1: nbdev
def process(keep_going=False) -> list:
    "Run nbdev's processing into `_proc/`; returns the notebooks it could not process (empty unless keep_going)."
    from nbdev.serve import proc_nbs
    for old in PROC.glob('*.ipynb'):            # a notebook renamed or deleted in nbs/ has no page any more
        if not (NBS / old.name).exists(): old.unlink()
    try:
        proc_nbs(); return []
    except Exception as e:
        msg = re.findall(r'Error in notebook: .*', str(e.__cause__ or e)) or [str(e)[-300:]]
        print(f'nbdev could not process a notebook ({msg[0]}); --keep-going names them all', file=sys.stderr)
        if not keep_going: raise SystemExit(1)
    failed = []
    for nb in sorted(NBS.glob('*.ipynb')):   # one at a time, in a child process each (as proc_nbs does), to name every failure
        if (PROC / nb.name).exists() and (PROC / nb.name).stat().st_mtime >= nb.stat().st_mtime: continue
        r = subprocess.run([sys.executable, '-c', 'import sys, pathlib, nbdev.serve_drv as d; from nbdev.processors import FilterDefaults; '
                            'd.main((pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), FilterDefaults))', str(nb), str(PROC / nb.name)],
                           cwd=TOP, capture_output=True, text=True)
        if r.returncode:
            err = [l for l in r.stderr.splitlines() if re.match(r'(Exception|\w+Error): ', l)]
            failed.append(nb.name); print(f'  {nb.name}: {" <- ".join(err[::-1][:2]) if err else r.stderr[-300:]}', file=sys.stderr)
    return failed


# ---------------------------------------------------------------- step 2a: Quarto
def render_quarto():
    shutil.copy(TOP / '_quarto.yml', PROC / '_quarto.yml')
    subprocess.run(['quarto', 'render'], cwd=PROC, check=True)


# ---------------------------------------------------------------- step 2b: pandoc
ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')


def _fence(text, ch='`'):
    longest = max((len(m) for m in re.findall(f'{re.escape(ch)}+', text)), default=0)
    return ch * max(3, longest + 1)


def _block(text, classes):
    f = _fence(text)
    return f'{f} {{{classes}}}\n{text.rstrip()}\n{f}'


def _directives(src):
    "Quarto cell options (`#| key: value`) and the source without them."
    lines, opts = src.splitlines(), {}
    while lines and lines[0].startswith('#|'):
        k, _, v = lines.pop(0)[2:].partition(':'); opts[k.strip()] = v.strip().lower()
    return opts, '\n'.join(lines)


def front_matter(nb) -> dict:
    for c in nb['cells']:
        if c['cell_type'] == 'raw' and ''.join(c['source']).lstrip().startswith('---'):
            return yaml.safe_load(''.join(c['source']).strip().strip('-')) or {}
    return {}


def to_markdown(nb, stem: str, out: Path) -> str:
    "A processed notebook as pandoc Markdown; figures are written to `<stem>_files/figure-html/` beside the page."
    parts = []
    for i, c in enumerate(nb['cells']):
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            for rel in re.findall(r'!\[[^\]]*\]\(([^)\s:]+)', src):   # images beside the notebook go beside the page
                if (PROC / rel).is_file(): (out / rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy(PROC / rel, out / rel)
            parts.append(src); continue
        if c['cell_type'] != 'code': continue
        opts, code = _directives(src)
        if opts.get('include') == 'false': continue
        cell = [] if opts.get('echo') == 'false' or not code.strip() else [_block(code, '.python .cell-code')]
        for j, o in enumerate([] if opts.get('output') == 'false' else c.get('outputs', [])):
            kind = o['output_type']
            if kind == 'stream':
                text = ANSI.sub('', ''.join(o['text']))
                cell.append(f'::: {{.cell-output .cell-output-{o["name"]}}}\n{_block(text, ".text")}\n:::')
            elif kind == 'error':
                text = ANSI.sub('', '\n'.join(o.get('traceback', [])))
                cell.append(f'::: {{.cell-output .cell-output-error}}\n{_block(text, ".text")}\n:::')
            else:
                d = o.get('data', {})
                img = next((m for m in ('image/png', 'image/jpeg', 'image/svg+xml') if m in d), None)
                if img:
                    ext = {'image/png': 'png', 'image/jpeg': 'jpg', 'image/svg+xml': 'svg'}[img]
                    rel = f'{stem}_files/figure-html/cell-{i}-output-{j}.{ext}'
                    (out / rel).parent.mkdir(parents=True, exist_ok=True)
                    data = ''.join(d[img])
                    (out / rel).write_bytes(data.encode() if ext == 'svg' else base64.b64decode(data))
                    md = f'![]({rel})'
                elif 'text/html' in d: md = _block(''.join(d['text/html']), '=html')
                elif 'text/markdown' in d:
                    md = ''.join(d['text/markdown'])
                    if opts.get('output') == 'asis': cell.append(md); continue
                elif 'text/latex' in d: md = ''.join(d['text/latex'])
                elif 'text/plain' in d: md = _block(ANSI.sub('', ''.join(d['text/plain'])), '.text')
                else: continue
                cell.append(f'::: {{.cell-output .cell-output-display}}\n{md}\n:::')
        if cell: parts.append(':::: {.cell}\n' + '\n\n'.join(cell) + '\n::::')
    return '\n\n'.join(parts).replace(SITE_URL, '') + '\n'


def _plain(md_title: str) -> str: return re.sub(r'[`*_]', '', md_title)


def sidebar_html(tree, titles, here) -> str:
    def items(tree):
        for it in tree:
            if isinstance(it, str):
                href = page_name(it)
                cls = ' class="active"' if href == here else ''
                yield f'<li><a href="{href}"{cls}>{html.escape(_plain(titles.get(it, href)))}</a></li>'
            else:
                yield f'<li class="section"><span>{html.escape(it[0])}</span><ul>{"".join(items(it[1]))}</ul></li>'
    return f'<ul>{"".join(items(tree))}</ul>'


def pandoc_path() -> str:
    try:
        import pypandoc; return pypandoc.get_pandoc_path()
    except (ImportError, OSError):
        if shutil.which('pandoc'): return shutil.which('pandoc')
        raise SystemExit('Neither quarto nor pandoc found: pip install pypandoc_binary (a dev requirement)')


def pandoc(exe, md, meta: dict, variables: dict, out: Path):
    args = [exe, '-f', 'markdown-yaml_metadata_block', '-t', 'html5', '--standalone', '--template', str(ASSETS / 'page.html'),
            '--toc', '--toc-depth=3', '--mathml', '--wrap=preserve', '--syntax-highlighting=pygments', '-o', str(out)]
    for k, v in variables.items(): args += ['--variable', f'{k}={v}']
    with tempfile.NamedTemporaryFile('w', suffix='.yaml', encoding='utf-8') as f:   # values read as Markdown, as Quarto does
        yaml.safe_dump(meta, f, allow_unicode=True); f.flush()
        r = subprocess.run(args + ['--metadata-file', f.name], input=md, text=True, capture_output=True)
    if r.returncode: raise SystemExit(f'pandoc failed on {out.name}: {r.stderr}')
    return [l for l in r.stderr.splitlines() if l.strip()]


class _Sections(HTMLParser):
    "Text of a rendered page's <main>, one entry per heading with an id (code blocks and tables left out)."
    SKIP = {'pre', 'table', 'script', 'style', 'svg', 'math', 'header'}
    def __init__(self):
        super().__init__(); self.entries, self.depth, self.skip, self.head = [], 0, 0, None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'main': self.depth = 1; self.entries.append(['', '', []]); return
        if not self.depth: return
        if tag in self.SKIP: self.skip += 1
        elif tag in ('h1', 'h2', 'h3', 'h4') and a.get('id'): self.head = [a['id'], []]
    def handle_endtag(self, tag):
        if tag == 'main': self.depth = 0
        elif self.depth and tag in self.SKIP: self.skip -= 1
        elif self.head and tag in ('h1', 'h2', 'h3', 'h4'):
            self.entries.append([self.head[0], ' '.join(self.head[1]).strip(), []]); self.head = None
    def handle_data(self, data):
        if not self.depth or self.skip: return
        (self.head[1] if self.head else self.entries[-1][2] if self.entries else []).append(data)


def search_index(pages) -> list:
    out = []
    for href, title in pages:
        p = _Sections(); p.feed((DOCS / href).read_text(encoding='utf-8'))
        for anchor, section, text in p.entries:
            text = re.sub(r'\s+', ' ', ' '.join(text)).strip()
            if text or section:
                out.append({'href': href + (f'#{anchor}' if anchor else ''), 'title': title, 'section': section or title,
                            'text': text})
    return out


def render_pandoc(failed=()):
    exe = pandoc_path()
    cfg, tree = quarto_config(), sidebar()
    site, repo = cfg['website'].get('title', SETTINGS['title']), cfg['website'].get('repo-url', SETTINGS['git_url'])
    if DOCS.exists(): shutil.rmtree(DOCS)
    DOCS.mkdir(parents=True)
    for f in ('site.css', 'search.js'): shutil.copy(ASSETS / f, DOCS / f)
    names = [p.name for p in sorted(NBS.glob('*.ipynb')) if p.name not in failed and (PROC / p.name).exists()]
    nbs = {n: json.loads((PROC / n).read_text(encoding='utf-8')) for n in names}
    fms = {n: front_matter(nb) for n, nb in nbs.items()}
    titles = {n: str(fm.get('title', page_name(n))) for n, fm in fms.items()}
    def one(n):
        href = fms[n].get('output-file', page_name(n))
        meta = {'title': titles[n], 'pagetitle': _plain(titles[n])}
        if fms[n].get('description'): meta['description'] = str(fms[n]['description'])
        md = to_markdown(nbs[n], Path(href).stem, DOCS)
        variables = {'sidebar': sidebar_html(tree, titles, href), 'site': site, 'repo': repo, 'search': 'true'}
        return (href, _plain(titles[n])), [f'{n}: {w}' for w in pandoc(exe, md, meta, variables, DOCS / href)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool: done = list(pool.map(one, nbs))
    pages, warnings = [p for p, _ in done], [w for _, ws in done for w in ws]
    pandoc(exe, '::: {#search-results}\n:::\n', {'title': 'Search', 'pagetitle': 'Search'},
           {'sidebar': sidebar_html(tree, titles, 'search.html'), 'site': site, 'repo': repo, 'search': 'true', 'toc': ''},
           DOCS / 'search.html')
    index = search_index(pages)
    (DOCS / 'search_index.js').write_text('window.SEARCH_INDEX = ' + json.dumps(index, ensure_ascii=False) + ';\n', encoding='utf-8')
    (DOCS / '.nojekyll').touch()
    for w in warnings: print('  pandoc:', w, file=sys.stderr)
    return exe, len(pages)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--pandoc', action='store_true', help='render with pandoc even when quarto is installed')
    ap.add_argument('--keep-going', action='store_true', help='render what nbdev could process when a notebook fails')
    a = ap.parse_args(argv)
    os.chdir(TOP)
    t0 = time.time()
    failed = process(a.keep_going)
    t1 = time.time()
    print(f'nbdev processed the notebooks into {PROC.relative_to(TOP)}/ in {t1 - t0:.0f} s'
          + (f'; could not process: {", ".join(failed)}' if failed else ''))
    if shutil.which('quarto') and not a.pandoc and not failed:
        render_quarto()
        print(f'site: Quarto build into {DOCS.relative_to(TOP)}/ in {time.time() - t1:.0f} s')
    else:
        exe, n = render_pandoc(failed)
        ver = subprocess.run([exe, '--version'], capture_output=True, text=True).stdout.split('\n')[0]
        why = 'asked for' if a.pandoc else 'quarto not on PATH' if not shutil.which('quarto') else 'notebooks failed'
        print(f'site: pandoc build ({ver}; {why}) of {n} pages into {DOCS.relative_to(TOP)}/ in {time.time() - t1:.0f} s')
    return 1 if failed else 0


if __name__ == '__main__': sys.exit(main())
