"""The layering rules of shared/DESIGN.md, checked from the source: lower layers never import
higher ones, and no module imports itself back through a cycle."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "poisonlab"

#: package -> packages it must never import (at module level or inside a function)
FORBIDDEN = {
    "data": {"attacks", "defenses", "models", "evaluation", "runs", "reproductions", "cli", "reports",
             "federated", "provenance", "monitoring"},
    "attacks": {"defenses", "evaluation", "runs", "reproductions", "cli", "reports"},
    "models": {"attacks", "defenses", "evaluation", "runs", "reproductions", "cli", "reports"},
    "defenses": {"attacks", "evaluation", "runs", "reproductions", "cli", "reports"},
    "evaluation": {"runs", "reproductions", "cli", "reports"},
    "federated": {"runs", "reproductions", "cli", "reports"},
    "provenance": {"runs", "reproductions", "cli", "reports"},
    "monitoring": {"runs", "reproductions", "cli", "reports"},
    "runs": {"reproductions", "cli", "reports"},
    "reproductions": {"cli", "reports"},
    "reports": {"cli"},
}


def _module_name(path: Path) -> str:
    parts = ["poisonlab", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Absolute names of the poisonlab modules ``path`` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # also imports inside top-level if/try blocks
        nodes = [n for stmt in tree.body for n in ast.walk(stmt)
                 if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("poisonlab")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("poisonlab"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _sources():
    return sorted(SRC.rglob("*.py"))


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_lower_layers_never_import_higher_ones():
    bad = []
    for path in _sources():
        layer = _layer(_module_name(path))
        for mod in _imports(path, top_level_only=False):
            if _layer(mod) in FORBIDDEN.get(layer, ()):
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert not bad, "layering violations:\n" + "\n".join(sorted(set(bad)))


def test_no_import_cycle():
    modules = {_module_name(p): p for p in _sources()}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for mod in _imports(path, top_level_only=True):
            while mod and mod not in modules:  # "pkg.mod.func" -> "pkg.mod"
                mod = mod.rpartition(".")[0]
            if mod and mod != name:
                deps.add(mod)
        graph[name] = deps
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in graph[node]:
            # a package's own __init__ importing its submodules is how packages work, not a cycle
            if node.startswith(dep + "."):
                continue
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("source, expected", [
    ("from ..runs import Runner\n", {"poisonlab.runs", "poisonlab.runs.Runner"}),
    ("import poisonlab.cli.main\n", {"poisonlab.cli.main"}),
])
def test_the_checker_sees_imports(tmp_path, monkeypatch, source, expected):
    fake = SRC / "attacks" / "_layering_probe.py"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    assert _imports(fake, top_level_only=False) == expected
