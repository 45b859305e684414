"""The import rules of the layout, checked on the source (every import, function-level ones
included): the data side never imports the training side, the model library imports neither,
and no modules of the project import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("tf4ctr_keras", "pipelines", "export", "serving", "benchmarks", "experiments")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules that ``path`` (module ``name``) imports, anywhere in the file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            # the longest known module the name refers to (`from a import b` may name module a.b)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_helper_sees_function_level_imports():
    # the rule would be empty if the scan missed imports inside functions
    source = REPO / "pipelines" / "training" / "run.py"
    found = _imports(source, "pipelines.training.run", set(_modules()))
    assert "pipelines.training.multi_worker" in found
    assert "pipelines.training.keras_fit" in found


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("pipelines.data", ("pipelines.training", "tf4ctr_keras", "export", "experiments")),
        ("tf4ctr_keras", ("pipelines", "export", "experiments", "benchmarks")),
        ("pipelines.training", ("export", "experiments", "benchmarks")),
    ],
)
def test_layers_import_only_downwards(graph, package, forbidden):
    bad = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if _under(module, package)
        for target in targets
        if any(_under(target, f) for f in forbidden)
    )
    assert not bad, bad


def test_no_import_circles(graph):
    # Tarjan's strongly connected components; every component must be one module
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            # a package importing its own submodules (its public API) is not a circle
            real = [m for m in component if not any(_under(o, m) and o != m for o in component)]
            if len(real) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, circles
