#!/usr/bin/env python
"""Build the documentation site into settings.ini's `doc_path` (`_docs/`, `index.html` at its top).

1. nbdev processes the notebooks into `_proc/` (`proc_nbs`: show_doc sections, doc links, front matter); then the
   reader's view is applied to `_proc/` (never to nbs/): cells that only check or clean up hidden (nbdev_test still
   runs them), API entries with a parameter table and types as written, in source order, long printouts folded.
   nbdev's warnings go to `_site_build.log`, counted in one line.
2. With `quarto` on PATH, Quarto renders `_proc/` with `_quarto.yml` (the publishing build, as in CI).
   Otherwise pandoc (bundled by the `pypandoc_binary` wheel) renders the same processed notebooks, with the
   sidebar, page titles and page names read from `_quarto.yml`, so both builds have the same pages.

    python scripts/build_site.py [--pandoc] [--keep-going]

`--pandoc` uses pandoc even when Quarto is installed; `--keep-going` renders the notebooks nbdev could process when
some could not (the others are named, and the exit status is still 1).
"""
import argparse, ast, base64, configparser, dataclasses, html, inspect, json, os, re, shutil, subprocess, sys, tempfile, time
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
LOG = TOP / '_site_build.log'   # the full log of a build: nbdev's and pandoc's warnings, counted in one line on the terminal


class _logged:
    "Send this process's and its children's stderr (file descriptor 2) to the build log while nbdev processes."
    def __enter__(self):
        PROC.mkdir(exist_ok=True)
        sys.stderr.flush(); self.saved = os.dup(2)
        self.log = open(LOG, 'a', encoding='utf-8'); os.dup2(self.log.fileno(), 2)
    def __exit__(self, *exc):
        sys.stderr.flush(); os.dup2(self.saved, 2); os.close(self.saved); self.log.close()


def warnings_in_log() -> dict:
    "What the build log warns about, counted by kind."
    text = LOG.read_text(encoding='utf-8', errors='replace') if LOG.exists() else ''
    kinds = {}
    for m in re.finditer(r'(\w*Warning): ([^\n]*)|^  pandoc: (.*)$', text, re.M):
        k = f'{m[1]}: {m[2][:60]}' if m[1] else 'pandoc: ' + re.sub(r'^\S+: ', '', m[3])[:60]
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


def process(keep_going=False) -> list:
    "Run nbdev's processing into `_proc/`; returns the notebooks it could not process (empty unless keep_going)."
    from nbdev.serve import proc_nbs
    for old in PROC.glob('*.ipynb'):            # a notebook renamed or deleted in nbs/ has no page any more
        if not (NBS / old.name).exists(): old.unlink()
    try:
        with _logged(): proc_nbs()
        return []
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


# ---------------------------------------------------------------- step 1b: the reader's view of the processed notebooks
# Cross-cutting display fixes applied to `_proc/` after nbdev (so to both builds), never to the notebooks themselves:
# cells that only check or clean up are hidden (nbdev_test still runs them in nbs/), check statements inside a
# demonstration cell are left out of what the page shows, API entries list their parameters in a table (nbdev 2.4's
# show_doc puts the docments into the signature as comments, where Markdown links stay raw), with types as a reader
# writes them, in the order of the module's source.
CHECK_CALLS = re.compile(r'^(test_\w*|test|assert_\w+)$')
CLEANUP_CALLS = re.compile(r'^(shutil\.rmtree|rmtree|os\.remove|os\.unlink|\w+\.cleanup|\w+\.unlink)$')


def _is_check(node) -> bool:
    "A statement that only checks (assert, fastcore's test_*) or cleans up (rmtree, cleanup), with nothing to show."
    if isinstance(node, ast.Assert): return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        f = node.value.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ''
        try: full = ast.unparse(f)
        except Exception: full = name
        return bool(CHECK_CALLS.match(name) or CLEANUP_CALLS.match(full))
    if isinstance(node, (ast.For, ast.While, ast.With, ast.If)):
        return all(_is_check(n) for n in node.body + getattr(node, 'orelse', []))
    if isinstance(node, ast.Try):      # `try: test_fail(...) finally: restore`, `try: f() except E as e: test_eq(e...)`
        return all(map(_is_check, node.body)) or bool(node.handlers) and all(_is_check(n) for h in node.handlers for n in h.body)
    return False


def _bodies(node):
    for field in ('body', 'orelse', 'finalbody'):
        b = getattr(node, field, None)
        if isinstance(b, list) and b and isinstance(b[0], ast.stmt): yield b
    for h in getattr(node, 'handlers', []): yield h.body


def _groups(body, lines):
    "The statements of a block grouped by the lines they share (`a; b` is one group), each with its first and last line."
    groups = []
    for n in body:
        if groups and n.lineno - 1 <= groups[-1][2]: groups[-1][0].append(n); groups[-1][2] = max(groups[-1][2], n.end_lineno - 1)
        else: groups.append([[n], n.lineno - 1, n.end_lineno - 1])
    return groups


def _check_edits(body, lines, drop: set, edit: dict, keep_one=True):
    """Leave the check statements of `body` out of what the page shows: whole lines (`drop`), or, on a line shared with
    other statements, the check statements' text (`edit`: line -> new text). Every block keeps a statement."""
    groups = _groups(body, lines)
    shown = sum(not all(_is_check(n) for n in g) for g, *_ in groups)
    for g, first, last in groups:
        opener = lines[first][:g[0].col_offset]
        whole = not opener.strip() and not lines[last][g[-1].end_col_offset:].split('#')[0].strip().strip(';').strip()
        if all(_is_check(n) for n in g):
            if whole and (shown or not keep_one): drop.update(range(first, last + 1))
            elif whole: shown += 1                                       # the block's one statement stays
        elif first == last and whole and any(_is_check(n) for n in g) and all(n.lineno == n.end_lineno for n in g):
            line = lines[first]
            rest = line[g[-1].end_col_offset:]
            edit[first] = opener + '; '.join(line[n.col_offset:n.end_col_offset] for n in g if not _is_check(n)) + rest
        for n in g:
            if not _is_check(n):
                for b in _bodies(n): _check_edits(b, lines, drop, edit)


def reader_source(src: str):
    """(source a reader sees, hide): `hide` when the cell only checks or cleans up; otherwise the source without its
    check statements. Directives (`#|`) are kept; a cell that does not parse is left as it is."""
    head = [];  lines = src.split('\n')
    while lines and lines[0].startswith('#|'): head.append(lines.pop(0))
    code = '\n'.join(lines)
    try: tree = ast.parse(code)
    except SyntaxError: return src, False
    if not tree.body: return src, False
    if all(_is_check(n) for n in tree.body): return src, True
    drop, edit = set(), {}
    _check_edits(tree.body, lines, drop, edit, keep_one=False)
    if not drop and not edit: return src, False
    kept = [edit.get(i, l) for i, l in enumerate(lines) if i not in drop]
    while kept and not kept[-1].strip(): kept.pop()
    return '\n'.join(head + kept), False


def _hide_checks(nb) -> int:
    n = 0
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        opts, _ = _directives(src)
        if opts.get('echo') == 'false' or opts.get('include') == 'false': continue
        new, hide = reader_source(src)
        if hide:
            shown = [o for o in c.get('outputs', []) if o['output_type'] != 'stream' or o.get('name') != 'stderr']
            new = ('#| include: false\n' if not shown else '#| echo: false\n') + src; n += 1
        c['source'] = new
    return n


# -- API entries
def _is_none_type(a): return a is type(None) or a == 'NoneType' or a == 'None'


def _fmt_type(a) -> str:
    from fastcore.docments import _maybe_nm
    if a is inspect.Parameter.empty: return ''
    s = a if isinstance(a, str) else _maybe_nm(a)
    s = str(s).replace('typing.', '').replace('NoneType', 'None')
    return re.sub(r'Optional\[(.+)\]$', r'\1 | None', s)


def _fmt_default(d) -> str:
    if d is inspect.Parameter.empty: return ''
    if inspect.isfunction(d) or inspect.isclass(d): return d.__name__
    r = repr(d)
    if len(r) > 50 and dataclasses.is_dataclass(d) and not isinstance(d, type):
        try:
            if type(d)() == d: return f'{type(d).__name__}()'
        except Exception: pass
    return r


def _params(sym):
    "[(name, type, default, details)] of a function's or class's parameters, `self` left out."
    from fastcore.docments import docments
    try: dm = docments(sym, full=True)
    except Exception: return None
    try: sig = inspect.signature(sym)
    except (TypeError, ValueError): return None
    out = []
    for name, p in sig.parameters.items():
        if name == 'self': continue
        d = dm.get(name, {})
        anno, default = d.get('anno', p.annotation), d.get('default', p.default)
        if p.annotation is inspect.Parameter.empty and (anno is type(None) or (default is not inspect.Parameter.empty and anno is type(default))):
            anno = inspect.Parameter.empty                       # docments infers a type from the default: not what the author wrote
        star = '*' if p.kind is p.VAR_POSITIONAL else '**' if p.kind is p.VAR_KEYWORD else ''
        out.append((star + name, _fmt_type(anno), _fmt_default(default), d.get('docment') or ''))
    return out


def _inline(md: str, link) -> str:
    "Inline Markdown (links, code, emphasis) of a docment as HTML, names in backticks linked to their API entries."
    out = []
    for m in re.finditer(r'\[([^\]]+)\]\(([^)\s]+)\)|`([^`]+)`|([^`\[]+|[`\[])', md):
        if m[1] is not None: out.append(f'<a href="{html.escape(m[2])}">{_inline(m[1], lambda s: None)}</a>')
        elif m[3] is not None:
            url, code = link(m[3]), f'<code>{html.escape(m[3])}</code>'
            out.append(f'<a href="{url}">{code}</a>' if url else code)
        else:
            t = html.escape(m[4], quote=False)
            t = re.sub(r'\*\*([^*]+)\*\*', r'<strong>\1</strong>', t)
            out.append(re.sub(r'(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])', r'<em>\1</em>', t))
    return ''.join(out)


def _signature(name, params, ret) -> str:
    items = [f'{n}: {t}' + (f' = {d}' if d else '') if t else n + (f'={d}' if d else '') for n, t, d, _ in params]   # PEP 8
    one = f'{name}({", ".join(items)})' + (f' -> {ret}' if ret else '')
    if len(one) <= 100: return one
    return f'{name}(\n' + ''.join(f'    {i},\n' for i in items) + ')' + (f' -> {ret}' if ret else '')


def api_entry(sym, name: str, md: str, link) -> str:
    "nbdev's show_doc Markdown of `sym` with the signature as a reader writes it and a table of its parameters."
    md = re.sub(r'\n\n<table class="params">.*?</table>\n', '', md, flags=re.S)   # built before: one table only
    params = _params(sym)
    m = re.search(r'```python\n(.*?)\n```\n?', md, re.S)
    if params is None or m is None: return md
    try: ret = inspect.signature(sym).return_annotation
    except (TypeError, ValueError): ret = inspect.Parameter.empty
    ret = '' if inspect.isclass(sym) else _fmt_type(ret)
    fence = _fence(m[1])
    shown = name.split('.')[-1] if '.' in name else name
    sig = f'{fence}python\n{_signature(shown, params, ret)}\n{fence}\n'
    out = md[:m.start()] + sig + md[m.end():].rstrip()
    if params:
        cols = [k for k, head in enumerate(('Type', 'Default', 'Details'), 1) if any(p[k] for p in params)]   # no empty column
        cell = {1: lambda t: f'<code>{html.escape(t)}</code>' if t else '', 2: lambda d: f'<code>{html.escape(d)}</code>' if d else '',
                3: lambda doc: _inline(doc, link)}
        heads = ''.join(f'<th>{("Type", "Default", "Details")[k - 1]}</th>' for k in cols)
        rows = ''.join(f'<tr><td><code>{html.escape(p[0])}</code></td>' + ''.join(f'<td>{cell[k](p[k])}</td>' for k in cols) + '</tr>'
                       for p in params)
        out += f'\n\n<table class="params"><thead><tr><th>Parameter</th>{heads}</tr></thead><tbody>{rows}</tbody></table>\n'
    return out


SHOW_DOC = re.compile(r'^show_doc\((.*)\)\s*$', re.S)


def _show_doc_args(expr, ns):
    def grab(sym, renderer=None, name=None, title_level=3): return sym, name
    return eval(f'_grab({expr})', {**ns, '_grab': grab})


def _api_entries(nb, module: str | None, link) -> int:
    "Re-render every show_doc output of a processed notebook; consecutive entries ordered as in the module's source."
    import importlib
    ns = {}
    if module:
        try: ns = dict(vars(importlib.import_module(f'{SETTINGS["lib_name"]}.{module}')))
        except Exception: return 0
    n, where = 0, []
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'code': continue
        _, code = _directives(''.join(c['source']))
        m = SHOW_DOC.match(code.strip())
        if not m or not c.get('outputs'): continue
        try: sym, name = _show_doc_args(m[1], ns)
        except Exception: continue
        name = name or getattr(sym, '__qualname__', m[1])
        for o in c['outputs']:
            md = o.get('data', {}).get('text/markdown')
            if md is None: continue
            o['data']['text/markdown'] = api_entry(sym, name, ''.join(md), link); n += 1
        try: line = inspect.getsourcelines(inspect.unwrap(sym))[1]
        except (TypeError, OSError): line = None
        where.append((i, line))
    runs, run = [], []                                  # runs of adjacent show_doc cells (nbdev inserts them in reverse)
    for i, line in where:
        if run and (i != run[-1][0] + 1 or line is None): runs.append(run); run = []
        if line is not None: run.append((i, line))
    runs.append(run)
    for run in runs:
        if len(run) < 2: continue
        idx = [i for i, _ in run]
        cells = [nb['cells'][i] for i, _ in sorted(run, key=lambda r: r[1])]
        for i, c in zip(idx, cells): nb['cells'][i] = c
    return n


def _doc_link():
    "A name in backticks -> the URL of its API entry (nbdev's doc index), or None."
    try:
        from nbdev.doclinks import NbdevLookup
        look = NbdevLookup()
        return lambda s: (look.doc(s) or None) if re.fullmatch(r'[\w.]+', s) else None
    except Exception:
        return lambda s: None


FOLD_LINES = 30   # a printout longer than this is folded (<details>), its first lines shown as its summary


def _fold_printouts(nb) -> int:
    "Long printed outputs (stdout) folded into <details>: the page stays readable, the whole printout one click away."
    n = 0
    for c in nb['cells']:
        for k, o in enumerate(c.get('outputs', [])):
            if o['output_type'] != 'stream' or o.get('name') != 'stdout': continue
            text = ANSI.sub('', ''.join(o['text']))
            lines = text.rstrip('\n').split('\n')
            if len(lines) <= FOLD_LINES: continue
            first = html.escape(next((l.strip() for l in lines if l.strip()), '')[:90])
            body = (f'<details class="printout"><summary><code>{first}</code> … ({len(lines)} lines printed: click to show them)'
                    f'</summary><pre><code>{html.escape(text)}</code></pre></details>')
            c['outputs'][k] = {'output_type': 'display_data', 'metadata': {},
                               'data': {'text/html': body, 'text/plain': text}}
            n += 1
    return n


_CODE = re.compile(r'`[^`\n]*`')


def unescape_table_code(md: str) -> str:
    "`a \\| b` in a pipe table's cell shows its backslash under pandoc (Quarto's too): pandoc keeps a code span in one cell."
    return '\n'.join(_CODE.sub(lambda m: m[0].replace('\\|', '|'), l) if l.lstrip().startswith('|') else l
                     for l in md.split('\n'))


def _tables(nb):
    for c in nb['cells']:
        if c['cell_type'] == 'markdown': c['source'] = unescape_table_code(''.join(c['source']))
        for o in c.get('outputs', []):
            md = o.get('data', {}).get('text/markdown')
            if md is not None: o['data']['text/markdown'] = unescape_table_code(''.join(md))


def _auto_id(text: str) -> str:
    "The identifier pandoc gives a heading (its auto_identifiers rule, enough for plain headings)."
    t = re.sub(r'[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}', '', text).lower()
    t = re.sub(r'[^\w\s.-]', '', t).strip()
    return re.sub(r'^[^a-z]+', '', re.sub(r'\s+', '-', t))


def _free_api_anchors(nb) -> int:
    """A section heading whose identifier is an API entry's (`## Status` and `### status`) gets another one, so that the
    doc links nbdev writes (`executors.html#status`) land on the entry, not on the section."""
    api = {_auto_id(m[1]) for c in nb['cells'] for o in c.get('outputs', [])
           for m in re.finditer(r'^#{2,4} (\S+)[ \t]*$', ''.join(o.get('data', {}).get('text/markdown', '')), re.M)}
    n = 0
    for c in nb['cells']:
        if c['cell_type'] != 'markdown': continue
        def fix(m):
            nonlocal n
            if '{#' in m[0] or _auto_id(m[2]) not in api: return m[0]
            n += 1; return f'{m[1]} {m[2]} {{#{_auto_id(m[2])}-section}}'
        parts = re.split(r'(^```.*?^```)', ''.join(c['source']), flags=re.M | re.S)   # not inside code blocks
        c['source'] = ''.join(p if i % 2 else re.sub(r'^(#{1,6}) (.+?)[ \t]*$', fix, p, flags=re.M) for i, p in enumerate(parts))
    return n


VIEW_VERSION = __import__('hashlib').sha1(Path(__file__).read_bytes()).hexdigest()[:12]


def reader_view() -> dict:
    "Apply the reader's view to every processed notebook in `_proc/`; counts of what it changed."
    link, hidden, entries, folded = _doc_link(), 0, 0, 0
    for p in sorted(PROC.glob('*.ipynb')):
        nb = json.loads(p.read_text(encoding='utf-8'))
        if nb.get('metadata', {}).get('sereval_reader_view') == VIEW_VERSION: continue   # done before, nothing changed since
        src = NBS / p.name
        mod = None
        if src.exists():
            m = re.search(r'#\|\s*default_exp\s+([\w.]+)', src.read_text(encoding='utf-8'))
            mod = m[1] if m else None
        hidden += _hide_checks(nb)
        entries += _api_entries(nb, mod, link)
        folded += _fold_printouts(nb); _tables(nb); _free_api_anchors(nb)
        nb.setdefault('metadata', {})['sereval_reader_view'] = VIEW_VERSION
        p.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
    return dict(hidden=hidden, entries=entries, folded=folded)


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
    with open(LOG, 'a', encoding='utf-8') as log:
        for w in warnings: print('  pandoc:', w, file=log)
    return exe, len(pages)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--pandoc', action='store_true', help='render with pandoc even when quarto is installed')
    ap.add_argument('--keep-going', action='store_true', help='render what nbdev could process when a notebook fails')
    a = ap.parse_args(argv)
    os.chdir(TOP)
    t0 = time.time()
    PROC.mkdir(exist_ok=True); LOG.write_text('', encoding='utf-8')
    failed = process(a.keep_going)
    view = reader_view()
    t1 = time.time()
    print(f'nbdev processed the notebooks into {PROC.relative_to(TOP)}/ in {t1 - t0:.0f} s'
          + (f'; could not process: {", ".join(failed)}' if failed else '')
          + f' (reader\'s view, notebooks processed now: {view["hidden"]} check cells hidden, {view["entries"]} API entries with parameter tables, '
          f'{view["folded"]} long printouts folded)')
    if shutil.which('quarto') and not a.pandoc and not failed:
        render_quarto()
        print(f'site: Quarto build into {DOCS.relative_to(TOP)}/ in {time.time() - t1:.0f} s')
    else:
        exe, n = render_pandoc(failed)
        ver = subprocess.run([exe, '--version'], capture_output=True, text=True).stdout.split('\n')[0]
        why = 'asked for' if a.pandoc else 'quarto not on PATH' if not shutil.which('quarto') else 'notebooks failed'
        print(f'site: pandoc build ({ver}; {why}) of {n} pages into {DOCS.relative_to(TOP)}/ in {time.time() - t1:.0f} s')
    kinds = warnings_in_log()
    print(f'{sum(kinds.values())} warnings' + (f' ({"; ".join(f"{n} x {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))})'
          if kinds else '') + f'; full log: {LOG.relative_to(TOP)}')
    return 1 if failed else 0


if __name__ == '__main__': sys.exit(main())
