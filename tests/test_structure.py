"""The package's shape: no import cycles, no module over 400 lines, no hidden dependencies.

A function-local ``import gates.…`` hides a real dependency (and usually a cycle): it is allowed
only where the module cannot import it at the top, each case named here with its reason.
Heavy optional dependencies (torch, transformers, modelopt, …) stay lazy: they are not gates
modules, so this test does not look at them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gates"
MAX_LINES = 400

# (module, gates module it imports inside a function) -> why it cannot be a top-level import
LOCAL_IMPORTS_ALLOWED = {
    ("gates.triton.python_model", "gates.engines"): "Triton's stub puts gates on sys.path only in initialize()",
    ("gates.triton.python_model", "gates.engines.batching"): "as above: gates is importable only after initialize()",
    ("gates.triton.python_model", "gates.triton.request_log"): "as above: gates is importable only after initialize()",
    ("gates.triton.python_model", "gates.triton.topk"): "as above: gates is importable only after initialize()",
    (
        "gates.models.loader",
        "gates.engines.int8_kernels",
    ): "imports torch at module level; the CLI must start without it",
    ("gates.engines.torch_int8", "gates.engines.int8_kernels"): "imports torch at module level",
    ("gates.cli.handle_event", "gates.cli.events"): "--dry-run (and the hosted jobs) need pydantic and PyYAML only",
    ("gates.cli.validate", "gates.stages.validate"): "a config error answers in under 1 s, before scipy and torch",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# gates/triton/templates/ holds third-party files vendored verbatim (TensorRT-LLM's Triton models):
# not gates modules, never imported by gates
VENDORED = PACKAGE / "triton" / "templates"
MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if VENDORED not in p.parents}


def imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The gates modules an import statement loads (``from a import b`` loads ``a.b`` when it is one)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    out = []
    for name in names:
        while name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in MODULES and name.split(".")[0] == "gates":
            out.append(name)
    return out


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def top_level_imports(module: str, tree: ast.Module) -> set[str]:
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update(imported(module, node))
    return out


def local_imports(module: str, tree: ast.Module) -> list[tuple[int, str]]:
    top = {id(n) for n in tree.body}
    typing_only = {id(n) for block in tree.body if _type_checking(block) for n in ast.walk(block)}
    return [
        (node.lineno, name)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top | typing_only
        for name in imported(module, node)
    ]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


TREES = {m: ast.parse(p.read_text(), str(p)) for m, p in MODULES.items()}


def test_no_import_cycles() -> None:
    graph = {m: top_level_imports(m, t) - {m} for m, t in TREES.items()}
    assert cycles(graph) == []


def test_no_module_over_400_lines() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_hidden_dependencies_on_gates_modules() -> None:
    hidden = [
        f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {name} inside a function"
        for m, tree in TREES.items()
        for line, name in local_imports(m, tree)
        if (m, name) not in LOCAL_IMPORTS_ALLOWED
    ]
    assert hidden == []


def test_every_allowed_local_import_is_still_needed() -> None:
    used = {(m, name) for m, tree in TREES.items() for _, name in local_imports(m, tree)}
    assert set(LOCAL_IMPORTS_ALLOWED) - used == set(), "an allowlist entry nobody needs: remove it"


# The checks themselves, on hand-made cases (a check that cannot fail proves nothing).
def test_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    from gates.errors import GatesError\n", [(2, "gates.errors")]),
        ("from gates.errors import GatesError\n", []),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gates.errors import GatesError\n", []),
        ("def f():\n    import torch\n", []),
    ],
)
def test_local_import_finder(source: str, expected: list[tuple[int, str]]) -> None:
    assert local_imports("gates.pipeline", ast.parse(source)) == expected
