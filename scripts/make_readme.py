"""Render nbs/index.ipynb to README.md (markdown cells and shown code/outputs; `#| hide` cells dropped).

nbdev's own `nbdev_readme` needs Quarto; this does the same job with nbconvert so that it runs anywhere.
"""
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter

top = Path(__file__).resolve().parent.parent
nb = nbformat.read(top / 'nbs' / 'index.ipynb', as_version=4)
nb.cells = [c for c in nb.cells if not (c.cell_type == 'code' and c.source.lstrip().startswith('#| hide'))]
for c in nb.cells:
    if c.cell_type == 'code':
        c.source = '\n'.join(l for l in c.source.splitlines() if not l.startswith('#|'))
body, _ = MarkdownExporter().from_notebook_node(nb)
header = '<!-- Generated from nbs/index.ipynb by scripts/make_readme.py; edit the notebook, not this file. -->\n\n'
(top / 'README.md').write_text(header + body.strip() + '\n', encoding='utf-8')
print('wrote README.md')
