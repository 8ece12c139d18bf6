"""The house rules of ../shared/ARCHITECTURE.md, checked on the source tree itself.

* tracker/ (the runtime library) imports nothing from train/, export/ or benchmarks/, and no
  torch, not even inside a function;
* no import circle exists between the project's modules;
* no module imports another project module inside a function (such imports hid a circle before);
* no source file is over 500 lines;
* the README's Design table lists every module, and nothing else.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tracker", "train", "export", "benchmarks")


def _modules() -> dict[str, Path]:
    """{dotted module name: file} of every source module (benchmark test files excluded)."""
    out = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            if p.name.startswith("test_") or p.name == "conftest.py":
                continue
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for every import statement of a file."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node, in_func):
        for child in ast.iter_child_nodes(node):
            inner = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, in_func) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for a in child.names:  # `from a.b import c` imports module a.b.c when it is one
                    sub = f"{child.module}.{a.name}"
                    found.append((sub if sub in MODULES else child.module, in_func))
            visit(child, inner)

    visit(tree, False)
    return found


GRAPH = {m: {name for name, _ in _imports(p) if name in MODULES} for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.split(".")[0] == "tracker"))
def test_runtime_library_imports_no_training_export_benchmarks_or_torch(module):
    bad = [name for name, _ in _imports(MODULES[module]) if name.split(".")[0] in ("train", "export", "benchmarks", "torch")]
    assert not bad, f"{module} imports {bad}"


def test_no_import_circles():
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def strong(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in GRAPH[v]:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            strong(v)
    assert not cycles, f"import circles: {cycles}"


def test_no_project_imports_hidden_in_functions():
    hidden = [f"{m}: {name}" for m, p in MODULES.items() for name, in_func in _imports(p)
              if in_func and name.split(".")[0] in PACKAGES]
    assert not hidden, hidden


def test_no_source_file_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def test_readme_design_table_lists_every_module_and_nothing_else():
    text = (ROOT / "README.md").read_text()
    design = text[text.index("## Design"):]
    listed = set()
    for row in re.findall(r"^\|( `[^|]+)\|", design, flags=re.M):  # the first cell of each row
        listed.update(re.findall(r"`([^`]+)`", row))
    files = {str(p.relative_to(ROOT)) for p in MODULES.values()}
    assert not files - listed, f"modules missing from the README's Design table: {sorted(files - listed)}"
    assert not listed - files, f"the Design table lists what is not a module: {sorted(listed - files)}"
