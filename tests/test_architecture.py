"The data flow of the package: every module has a place in it, and no module imports one further down."
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / 'sereval'

FLOW = ('errors', 'taxonomy', 'layout', 'progress', 'corpora', 'recipes', 'protocol', 'emobox', 'audio', 'synth', 'ct2whisper', 'backbones', 'store',
        'batches', 'embed', 'head', 'metrics', 'train', 'benchmark', 'pipeline', 'layersweep', 'paper', 'results', 'diagnostics',
        'uncertainty', 'findings', 'report', 'reproduce', 'jobs', 'executors', 'testing', 'bench', 'cli')
"The modules in the order data flows through them (index page, 'Architecture'); the last three are tools around it."

def modules() -> list[str]:
    "Top-level modules and code packages (a package, e.g. `recipes/`, is one room of the flow; `data/` holds files)."
    return sorted([p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')] +
                  [p.parent.name for p in PKG.glob('*/__init__.py') if not p.parent.name.startswith('_') and p.parent.name != 'data'])

def _sources(name: str) -> list[tuple[Path, int]]:
    "The files of module or package `name`, each with its depth below the package root (0: a top-level module)."
    if (PKG / name).is_dir(): return [(p, 1) for p in sorted((PKG / name).glob('*.py'))]
    return [(PKG / f'{name}.py', 0)]

def sereval_imports(name: str) -> set[str]:
    "Every sereval module that `name` (a module, or every file of a package) imports, at the top or inside a function."
    found = set()
    for path, depth in _sources(name):
        tree = ast.parse(path.read_text(encoding='utf-8'))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ''
                if node.level and node.level <= depth:       # within its own package
                    continue
                if node.level == depth + 1 or mod == 'sereval' or mod.startswith('sereval.'):
                    mod = mod[len('sereval'):].lstrip('.') if node.level == 0 else mod
                    if mod: found.add(mod.split('.')[0])
                    else: found.update(a.name for a in node.names if a.name in FLOW)   # from . import x
            elif isinstance(node, ast.Import):
                found.update(a.name.split('.')[1] for a in node.names if a.name.startswith('sereval.'))
    return found - {name}

def test_every_module_has_a_place_in_the_flow():
    assert set(modules()) == set(FLOW), f"add new modules to FLOW (and the index page): {set(modules()) ^ set(FLOW)}"

@pytest.mark.parametrize('name', FLOW)
def test_no_import_further_down_the_flow(name):
    if not (PKG / f'{name}.py').exists() and not (PKG / name / '__init__.py').exists(): pytest.fail(f'sereval/{name}.py is missing')
    later = sorted(m for m in sereval_imports(name) if m in FLOW and FLOW.index(m) > FLOW.index(name))
    assert not later, f"sereval.{name} imports {later}, which come after it in the data flow"

def test_the_import_scanner_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    (tmp_path / 'x.py').write_text("from .a import b\nimport sereval.c as c\ndef f():\n    from sereval.d import e\n    from . import g\n")
    monkeypatch.setattr(__import__(__name__), 'PKG', tmp_path)
    assert sereval_imports('x') == {'a', 'c', 'd'} | ({'g'} & set(FLOW))


def test_the_import_scanner_reads_every_file_of_a_package(tmp_path, monkeypatch):
    (tmp_path / 'pkg').mkdir()
    (tmp_path / 'pkg' / '__init__.py').write_text("from . import part\nfrom ..a import b\n")
    (tmp_path / 'pkg' / 'part.py').write_text("from . import x\nfrom .sibling import y\nfrom ..c import d\n")
    monkeypatch.setattr(__import__(__name__), 'PKG', tmp_path)
    assert sereval_imports('pkg') == {'a', 'c'}
