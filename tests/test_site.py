"""The documentation site as a reader gets it: built once per session as `make docs` builds it
(`scripts/build_site.py`), served on 127.0.0.1 and crawled: links and anchors resolve, every sidebar entry and every
public name has its page and API entry, no page shows a stderr box, a machine path or raw Markdown; where Chromium is
installed, pages are looked at in a headless browser and the site search is tried.

`SEREVAL_SITE=<dir>` crawls an already built site instead of building one; `SEREVAL_SHOTS=<dir>` keeps the screenshots.
"""
import ast, configparser, functools, json, os, re, shutil, subprocess, sys, tempfile, threading, time
from collections import defaultdict
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urljoin, urldefrag
from urllib.request import urlopen

import pytest
import yaml

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / 'scripts'))
import build_site as B  # noqa: E402

CFG = configparser.ConfigParser(); CFG.read(TOP / 'settings.ini'); S = CFG['DEFAULT']
MACHINE_PATH = re.compile(r'(?<![\w.~-])/(?:work|tmp|root|home)/')
RAW_MARKDOWN = re.compile(r'^\s*(\|\s*:?(-{3,}|[—–])|#{2,6} \S)')   # a table's rule (--- may be typeset as —), a heading
VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
RAW_LINK = re.compile(r'\[[^\]\n]+\]\((https?://|[\w./-]+\.html)[^)\s]*\)')   # [text](url) left as text
CHECK_CALL = re.compile(r'\b(test_(eq|ne|close|fail|is|warns|eq_type|shuffled|stdout)\(|shutil\.rmtree\()')
SECTIONS = ['Get started', 'Findings', 'How-to guides', 'Concepts', 'Reference', 'Command line']   # the reader's order
PHONE = (390, 844)
# A page in a phone-sized frame (same origin): where its title and its first visible sidebar entry are, in pixels.
LAYOUT_PROBE = '''<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="PAGE" style="width:390px;height:844px;border:0"></iframe>
<script>
document.getElementById('f').onload = function () {
  var d = this.contentDocument, t = d.querySelector('h1.title') || d.querySelector('h1');
  var links = Array.prototype.filter.call(d.querySelectorAll('.sidebar a, #quarto-sidebar a'),
                                          function (a) { return a.getBoundingClientRect().height > 0; });
  var ty = t ? t.getBoundingClientRect().top : -1;
  var ly = links.length ? Math.min.apply(null, links.map(function (a) { return a.getBoundingClientRect().top; })) : -1;
  var r = d.createElement('pre'); r.id = 'probe'; r.textContent = 'title ' + ty + ' sidebar ' + ly + ' visible ' + links.length;
  document.body.appendChild(r); document.body.setAttribute('data-probe', r.textContent);
};
</script></body></html>'''


# ---------------------------------------------------------------- building, serving, crawling
class Page(HTMLParser):
    "What the checks need from one HTML page: ids, links, title, stderr boxes, and visible text outside source code."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.stderr, self.title = set(), [], [], ''
        self.stack, self.prose = [], []    # prose: what the page says and its cells print, not code
        self._in_title = False
        self.code, self.heading, self.params = [], None, set()   # text of <pre> blocks; headings followed by a parameter table
        self.home_links = []
    def handle_starttag(self, tag, attrs):
        a = {k: v or '' for k, v in attrs}
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('name'): self.ids.add(a['name'])
        for k in ('href', 'src'):
            if a.get(k) and tag in ('a', 'img', 'link', 'script'): self.links.append(a[k])
        cls = a.get('class', '').split()
        if 'cell-output-stderr' in cls: self.stderr.append('')
        if tag == 'h1' and 'title' in cls: self._in_title = True
        if tag in ('h1', 'h2', 'h3', 'h4'): self.heading = a.get('id') or self.heading
        if tag == 'table' and 'params' in cls and self.heading: self.params.add(self.heading)
        if tag == 'a' and a.get('href'): self.home_links.append(a['href'])
        if tag not in VOID: self.stack.append((tag, any(c.startswith('cell-output') for c in cls), 'cell-output-stderr' in cls))
    def handle_endtag(self, tag):
        if tag == 'h1': self._in_title = False
        if tag not in [t for t, *_ in self.stack]: return
        while self.stack and self.stack.pop()[0] != tag: pass
    def handle_data(self, data):
        tags = [t for t, *_ in self.stack]
        if 'script' in tags or 'style' in tags or 'head' in tags: return
        if self._in_title: self.title += data
        if 'pre' not in tags and 'code' not in tags or any(out for _, out, _ in self.stack): self.prose.append(data)
        if 'pre' in tags: self.code.append(data)
        if data.strip() and any(err for *_, err in self.stack) and self.stderr[-1] == '': self.stderr[-1] = data.strip()[:100]


@pytest.fixture(scope='module')
def site():
    "Build the site once (unless SEREVAL_SITE names a built one), serve it, crawl it from every page and the sidebar."
    t0, failed, log = time.time(), [], ''
    root = Path(os.environ['SEREVAL_SITE']) if os.environ.get('SEREVAL_SITE') else None
    if root is None:
        env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
        r = subprocess.run([sys.executable, str(TOP / 'scripts' / 'build_site.py'), '--keep-going'], cwd=TOP, env=env,
                           capture_output=True, text=True, timeout=3600)
        log = r.stdout + r.stderr
        assert 'site: ' in r.stdout, f'the site was not built:\n{log[-3000:]}'
        failed = re.findall(r'^  (\S+\.ipynb): (.*)$', r.stderr, re.M)
        root = B.DOCS
    built = time.time() - t0
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):                                        # the layout probe: a page in a phone-sized frame
            if not self.path.startswith('/__layout_probe'): return super().do_GET()
            body = LAYOUT_PROBE.replace('PAGE', self.path.split('page=', 1)[-1]).encode()
            self.send_response(200); self.send_header('Content-Type', 'text/html; charset=utf-8')
            self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request, client_address):      # a browser closing a connection early is not an error here
            if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)): super().handle_error(request, client_address)
    handler = functools.partial(Quiet, directory=str(root))
    server = QuietServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f'http://127.0.0.1:{server.server_address[1]}/'
    t1 = time.time()
    pages, status = {}, {}

    def get(url):
        if url not in status:
            try:
                with urlopen(url, timeout=30) as r:
                    status[url] = r.status
                    if url.endswith('.html') or url.endswith('/'):
                        p = Page(); p.feed(r.read().decode('utf-8', 'replace')); pages[url] = p
            except HTTPError as e: status[url] = e.code
        return status[url]

    def local(url):
        "The served URL of an internal link (relative, or absolute to the published site), or None for external ones."
        if url.startswith(B.SITE_URL): url = base + url[len(B.SITE_URL):]
        return url if url.startswith(base) else None

    sidebar = [base + B.page_name(n) for n in B.sidebar_notebooks(B.sidebar())]
    todo = [base + 'index.html'] + sidebar
    broken, seen = defaultdict(list), set()
    while todo:
        url = todo.pop()
        if url in seen: continue
        seen.add(url)
        if get(url) != 200 or url not in pages: continue
        for href in pages[url].links:
            target = local(urljoin(url, href))
            if target is None: continue
            doc, frag = urldefrag(target)
            doc = doc.split('?')[0]
            if get(doc) != 200:                                 # a missing sidebar page is reported once, by its own test
                if doc not in sidebar: broken[url].append(f'{href} (HTTP {status[doc]})')
                continue
            if doc in pages and doc not in seen: todo.append(doc)
            if frag and doc in pages and frag not in pages[doc].ids: broken[url].append(f'{href} (no such anchor)')
    yield dict(root=root, base=base, pages=pages, status=status, broken=broken, failed=failed, log=log,
               build_s=built, crawl_s=time.time() - t1)
    server.shutdown()
    print(f'\nsite: built in {built:.0f} s, crawled {len(pages)} pages in {time.time() - t1:.1f} s')


def _name(site, url): return url[len(site['base']):] or 'index.html'


def _report(problems: dict, what: str) -> str:
    return f'{sum(map(len, problems.values()))} {what}:\n' + '\n'.join(
        f'  {page}: ' + '; '.join(sorted(set(v))[:12]) + (' ...' if len(set(v)) > 12 else '') for page, v in sorted(problems.items()))


# ---------------------------------------------------------------- publishing (quick)
def test_workflows_publish_where_settings_say():
    "The published site and the repository are the ones settings.ini names, in _quarto.yml and the deploy workflow."
    cfg = yaml.safe_load((TOP / '_quarto.yml').read_text())
    assert cfg['website']['site-url'].rstrip('/') + '/' == B.SITE_URL
    assert cfg['website']['repo-url'] == S['git_url']
    assert cfg['project']['output-dir'] == '../' + S['doc_path']
    test = (TOP / '.github/workflows/test.yaml').read_text(); deploy = (TOP / '.github/workflows/deploy.yaml').read_text()
    assert 'make test' in test
    assert 'quarto-dev/quarto-actions/setup' in deploy and 'make docs' in deploy
    assert f'publish_dir: ./{S["doc_path"]}' in deploy and S['branch'] in deploy


def test_page_names_follow_nbdev():
    "A notebook's page drops its number prefix, as nbdev names it in the doc links of sereval/_modidx.py."
    assert [B.page_name(n) for n in ('02_corpora.ipynb', '02a_recipes.ipynb', '90_testing.ipynb', 'index.ipynb')] == \
           ['corpora.html', 'recipes.html', 'testing.html', 'index.html']
    from sereval._modidx import d
    pages = {B.page_name(p.name) for p in (TOP / S['nbs_path']).glob('*.ipynb')}
    linked = {url.split('#')[0] for mod in d['syms'].values() for url, _ in mod.values()}
    assert linked <= pages, f'doc links to pages no notebook makes: {sorted(linked - pages)}'


# ---------------------------------------------------------------- the built site (slow)
@pytest.mark.slow
def test_every_notebook_is_processed(site):
    assert not site['failed'], 'nbdev cannot process: ' + '; '.join(f'{n}: {e}' for n, e in site['failed'])


@pytest.mark.slow
def test_every_sidebar_entry_is_a_page_with_its_own_title(site):
    names = B.sidebar_notebooks(B.sidebar())
    missing = [f'{n} -> {B.page_name(n)}' for n in names if site['status'].get(site['base'] + B.page_name(n)) != 200]
    assert not missing, f'sidebar entries without a page: {missing}'
    titles = defaultdict(list)
    for n in names: titles[' '.join(site['pages'][site['base'] + B.page_name(n)].title.split())].append(n)
    assert not {t: v for t, v in titles.items() if len(v) > 1}, f'sidebar entries sharing a title: {titles}'
    assert (site['root'] / 'index.html').exists()


@pytest.mark.slow
def test_internal_links_and_anchors_resolve(site):
    broken = {_name(site, u): v for u, v in site['broken'].items()}
    assert not broken, _report(broken, 'broken links or anchors')


def _public_api():
    "(module, name, kind) of every public function, class, and method of a public class, from the modules' __all__."
    for py in sorted((TOP / S['lib_path']).glob('*.py')):
        if py.name.startswith('_'): continue
        tree = ast.parse(py.read_text(encoding='utf-8'))
        names = next((ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                      and any(getattr(t, 'id', '') == '__all__' for t in n.targets)), [])
        defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        for name in names:
            if name not in defs: continue                       # constants have no API entry of their own
            yield py.stem, name
            if isinstance(defs[name], ast.ClassDef):
                for m in defs[name].body:
                    if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and not m.name.startswith('_'):
                        yield py.stem, f'{name}.{m.name}'


@pytest.mark.slow
def test_every_public_name_has_an_api_entry(site):
    "nbdev's show_doc heading `### Class.method` becomes the anchor `class.method` on the page _modidx.py links to."
    import importlib, sereval._modidx as M
    importlib.reload(M)
    missing = defaultdict(list)
    for mod, name in _public_api():
        syms = M.d['syms'].get(f'sereval.{mod}', {})
        url = syms.get(f'sereval.{mod}.{name}', (None,))[0]
        if url is None:                                          # not in the doc index: the module's page, nbdev's anchor
            page = next(iter(syms.values()), (f'{mod}.html',))[0].split('#')[0]
            url = f'{page}#{name.lower()}'
        page, anchor = url.split('#')
        p = site['pages'].get(site['base'] + page)
        if p is None or anchor not in p.ids: missing[page].append(f'{mod}.{name}')
    assert not missing, _report(missing, 'public names without an API entry')


@pytest.mark.slow
def test_no_stderr_machine_path_or_raw_markdown(site):
    found = defaultdict(list)
    for url, p in site['pages'].items():
        page = _name(site, url)
        found[page] += [f'stderr box "{s}"' for s in p.stderr]
        lines = ''.join(p.prose).splitlines()                 # what the page says and its cells print, not their source
        found[page] += [f'machine path "{l.strip()[:100]}"' for l in lines if MACHINE_PATH.search(l)]
        found[page] += [f'machine path in link {h}' for h in p.links if MACHINE_PATH.search(h)]
        found[page] += [f'raw Markdown "{l.strip()[:60]}"' for l in ''.join(p.prose).splitlines() if RAW_MARKDOWN.match(l)]
    found = {k: v for k, v in found.items() if v}
    assert not found, _report(found, 'things a reader should not see')


# ---------------------------------------------------------------- in a browser (slow, needs chromium)
def _chromium(*args, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                               '--disable-component-update', '--disable-sync', '--no-first-run', f'--user-data-dir={profile}',
                               *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (as root: apt-get install -y chromium)')
@pytest.mark.parametrize('page', ['index.html', 'corpora.html', 'metrics.html'])
def test_screenshot_is_not_blank(site, page, tmp_path):
    from PIL import Image, ImageStat
    out = Path(os.environ.get('SEREVAL_SHOTS') or tmp_path); out.mkdir(parents=True, exist_ok=True)
    png = out / page.replace('.html', '.png')
    assert site['status'].get(site['base'] + page) == 200, f'{page} was not built'
    r = _chromium(f'--screenshot={png}', '--window-size=1280,900', site['base'] + page)
    assert png.exists(), f'no screenshot of {page}: {r.stderr[-1000:]}'
    img = Image.open(png).convert('L')
    commonest = max(img.getcolors(256 * 256), key=lambda c: c[0])[0]
    w, h = img.size
    assert ImageStat.Stat(img).stddev[0] > 10 and commonest < 0.97 * w * h, f'{page} looks blank'


@pytest.mark.slow
def test_search_finds_logit_adjustment(site):
    root = site['root']
    if (root / 'search.json').exists():                        # the Quarto build: its search index
        assert any('logit adjustment' in (e.get('text', '') + e.get('section', '')).lower()
                   for e in json.loads((root / 'search.json').read_text()))
        return
    if CHROMIUM is None: pytest.skip('chromium is not installed (as root: apt-get install -y chromium)')
    r = _chromium('--dump-dom', '--virtual-time-budget=5000', site['base'] + 'search.html?q=logit+adjustment')
    hits = re.findall(r'<a href="([^"]+)" class="search-hit">([^<]*)</a>', r.stdout)
    assert hits, f'the search page found nothing: {r.stdout[-1500:]} {r.stderr[-500:]}'
    print(f'\nsearch "logit adjustment": {len(hits)} sections, first {hits[:3]}')


# ---------------------------------------------------------------- a reader's order (quick)
def _notebook_title(nb_path: Path) -> str:
    "A notebook's page title: its front matter's, else its first Markdown heading (as nbdev takes it)."
    nb = json.loads(nb_path.read_text(encoding='utf-8'))
    fm = B.front_matter(nb)
    if fm.get('title'): return str(fm['title'])
    for c in nb['cells']:
        if c['cell_type'] == 'markdown':
            m = re.match(r'#\s+(.+)', ''.join(c['source']).lstrip())
            if m: return m[1].strip()
    return nb_path.stem


def test_sidebar_lists_every_notebook_once():
    "A page added to nbs/ but not to _quarto.yml (or listed twice, or listed but gone) fails here, not silently."
    listed = B.sidebar_notebooks(B.sidebar())
    on_disk = sorted(p.name for p in (TOP / S['nbs_path']).glob('*.ipynb'))
    twice = sorted({n for n in listed if listed.count(n) > 1})
    missing, gone = sorted(set(on_disk) - set(listed)), sorted(set(listed) - set(on_disk))
    assert not (twice or missing or gone), (f'_quarto.yml sidebar: listed twice {twice}; notebooks not in it {missing} '
                                            f'(add each to its section, see the comment there); listed but no notebook {gone}')


def test_sidebar_is_in_a_readers_order():
    "Home, then Get started, Findings, How-to guides, Concepts, Reference (one page per module), Command line."
    tree = B.sidebar()
    assert tree[0] == 'index.ipynb', f'the sidebar does not open with the home page: {tree[0]}'
    sections = [it[0] for it in tree if not isinstance(it, str)]
    assert sections == SECTIONS, f'sidebar sections {sections}, expected {SECTIONS}'
    nbs = TOP / S['nbs_path']
    get_started = dict((it[0], it[1]) for it in tree if not isinstance(it, str))['Get started']
    assert _notebook_title(nbs / B.sidebar_notebooks(get_started)[0]).startswith('Get started')
    reference = B.sidebar_notebooks(dict((it[0], it[1]) for it in tree if not isinstance(it, str))['Reference'])
    modules = {p.name for p in nbs.glob('*.ipynb') if re.search(r'#\|\s*default_exp', p.read_text(encoding='utf-8'))}
    concepts = B.sidebar_notebooks(dict((it[0], it[1]) for it in tree if not isinstance(it, str))['Concepts'])
    cli = B.sidebar_notebooks(dict((it[0], it[1]) for it in tree if not isinstance(it, str))['Command line'])
    findings = B.sidebar_notebooks(dict((it[0], it[1]) for it in tree if not isinstance(it, str))['Findings'])
    stray = sorted(modules - set(reference) - set(concepts) - set(cli) - set(findings))
    assert not stray, f'module pages outside Reference, Concepts, Findings and Command line: {stray}'


def test_page_titles_are_unique():
    titles = defaultdict(list)
    for p in sorted((TOP / S['nbs_path']).glob('*.ipynb')): titles[_notebook_title(p).lower()].append(p.name)
    twice = {t: v for t, v in titles.items() if len(v) > 1}
    assert not twice, f'page titles used twice: {twice}'


def test_citation_and_serve():
    "CITATION.cff (GitHub's 'Cite this repository') names sereval's version and the paper; make serve previews _docs/."
    cff = yaml.safe_load((TOP / 'CITATION.cff').read_text(encoding='utf-8'))
    assert cff['cff-version'].startswith('1.2') and str(cff['version']) == S['version']
    assert cff['repository-code'] == S['git_url'] and cff['authors']
    assert '2408.07851' in json.dumps(cff['preferred-citation']) and 'SER Evals' in cff['preferred-citation']['title']
    r = subprocess.run(['make', '-n', 'serve'], cwd=TOP, capture_output=True, text=True)
    assert r.returncode == 0 and 'http.server' in r.stdout and S['doc_path'] in r.stdout, r.stdout + r.stderr


def test_reader_view_of_cells_and_api_entries():
    "The build hides cells that only check, leaves checks out of a demonstration cell, and types read as written."
    src = 'x = f(1)\nw.commit(); test_eq(w.n, 3)\nfor a in x:\n    y = a\n    assert y\nprint(x)'
    shown, hide = B.reader_source(src)
    assert not hide and shown == 'x = f(1)\nw.commit()\nfor a in x:\n    y = a\nprint(x)', shown
    assert B.reader_source('#| eval: true\ntest_eq(1, 1)\nshutil.rmtree(tmp)') == ('#| eval: true\ntest_eq(1, 1)\nshutil.rmtree(tmp)', True)
    assert B.reader_source('print(1)') == ('print(1)', False)
    shown, _ = B.reader_source('x = 1\ntry: f(x)\nexcept OSError as e: test_eq(e.errno, 28)\ntry: test_fail(g)\nfinally: x = 0\nprint(x)')
    assert shown == 'x = 1\nprint(x)', shown
    def f(a: int,            # the first, see [`g`](g.html)
          b=None, c: str | None = None): "Doc."
    md = '### f\n\n```python\n\ndef f(\n    a:int, # the first\n    b:NoneType=None\n)\n\n```\n\n*Doc.*'
    out = B.api_entry(f, 'f', md, lambda s: None)
    assert 'NoneType' not in out and 'f(a: int, b=None, c: str | None = None)' in out, out
    assert out.count('<table class="params">') == 1 and '<a href="g.html"><code>g</code></a>' in out, out
    assert B.api_entry(f, 'f', out, lambda s: None).count('<table class="params">') == 1     # built twice: one table
    nb = {'cells': [{'cell_type': 'markdown', 'source': '## Status\n\n```sh\n# status\n```'},
                    {'cell_type': 'code', 'source': 'show_doc(status)', 'outputs': [{'data': {'text/markdown': '### status\n'}}]}]}
    B._free_api_anchors(nb)                                      # the doc link status.html#status lands on the entry
    assert nb['cells'][0]['source'] == '## Status {#status-section}\n\n```sh\n# status\n```', nb['cells'][0]['source']


# ---------------------------------------------------------------- what a reader sees (slow)
@pytest.mark.slow
def test_home_links_to_get_started(site):
    home = site['pages'][site['base'] + 'index.html']
    titles = {_name(site, u): ' '.join(p.title.split()) for u, p in site['pages'].items()}
    targets = {urldefrag(urljoin(site['base'] + 'index.html', h))[0][len(site['base']):] for h in home.home_links}
    main_text = ''.join(home.prose)
    assert any(titles.get(t, '').startswith('Get started') for t in targets), 'the home page links to no "Get started" page'
    assert 'Get started' in main_text


@pytest.mark.slow
def test_no_raw_links_or_checks_in_pages(site):
    "No `[text](url)` left as text anywhere (API signatures included), no test_eq / rmtree shown in a page's code."
    found = defaultdict(list)
    for url, p in site['pages'].items():
        page = _name(site, url)
        for text in (''.join(p.prose), ''.join(p.code)):
            found[page] += [f'raw link "{m[0][:70]}"' for m in RAW_LINK.finditer(text)]
        found[page] += [f'check shown "{l.strip()[:70]}"' for l in ''.join(p.code).splitlines() if CHECK_CALL.search(l)]
    found = {k: v for k, v in found.items() if v}
    assert not found, _report(found, 'raw links or check statements shown')


@pytest.mark.slow
def test_every_public_function_has_a_parameter_table(site):
    "Every public function, class and method that takes parameters lists them in a table under its API entry."
    import importlib, inspect, sereval._modidx as M
    importlib.reload(M)
    missing, n = defaultdict(list), 0
    for mod, name in _public_api():
        obj = importlib.import_module(f'sereval.{mod}')
        for part in name.split('.'): obj = getattr(obj, part, None)
        if obj is None or isinstance(obj, property) or not callable(obj): continue
        try: params = [p for p in inspect.signature(obj).parameters if p != 'self']
        except (TypeError, ValueError): continue
        if not params or (inspect.isclass(obj) and issubclass(obj, BaseException)): continue
        syms = M.d['syms'].get(f'sereval.{mod}', {})
        url = syms.get(f'sereval.{mod}.{name}', (None,))[0]
        if url is None: continue                                 # no entry at all: test_every_public_name_has_an_api_entry says so
        page, anchor = url.split('#')
        p = site['pages'].get(site['base'] + page)
        if p is None or anchor not in p.ids: continue
        n += 1
        if anchor not in p.params: missing[page].append(f'{mod}.{name}')
    assert n > 100, f'only {n} API entries checked'
    assert not missing, _report(missing, f'API entries (of {n}) without a parameter table')


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (as root: apt-get install -y chromium)')
@pytest.mark.parametrize('page', ['index.html', 'get_started.html', 'train.html'])
def test_phone_shows_the_page_before_the_sidebar(site, page, tmp_path):
    "At phone width the page's title comes before any sidebar entry (the sidebar is collapsed or after the content)."
    out = Path(os.environ.get('SEREVAL_SHOTS') or tmp_path); out.mkdir(parents=True, exist_ok=True)
    _chromium(f'--screenshot={out / page.replace(".html", "_phone.png")}', f'--window-size={PHONE[0]},{PHONE[1]}',
              '--hide-scrollbars', site['base'] + page)
    r = _chromium('--dump-dom', '--virtual-time-budget=5000', f'--window-size=800,1000', site['base'] + f'__layout_probe?page={page}')
    m = re.search(r'title (-?[\d.]+) sidebar (-?[\d.]+) visible (\d+)', r.stdout)
    assert m, f'the layout probe did not report: {r.stdout[-800:]} {r.stderr[-400:]}'
    title, first_entry, visible = float(m[1]), float(m[2]), int(m[3])
    assert title >= 0, f'{page} has no title'
    assert visible == 0 or first_entry > title, f'{page} at phone width: a sidebar entry at y={first_entry} before the title at y={title}'
    assert title < PHONE[1], f'{page} at phone width: the title is below the first screen (y={title})'
