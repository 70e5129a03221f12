"""The import contract: the layers of docs/architecture.md, checked on the source.

Read statically with `ast`, so an import only type checkers see (`if TYPE_CHECKING:`) or
one made lazily inside a function counts as much as one at the top: a layer that needs
another, even for a type, depends on it. Run by `just check` and by the suite.

    core      imports nothing of ours but core (pure: no I/O, no loop)
    adapters  core and adapters only: never the daemon, a client or a front end
    daemon    anything below it, never a client or a front end
    client    core and adapters (the socket checks, paths, config files), never the daemon
    front ends (cli, mcp, ui, agents) core and client only, never an adapter or the daemon,
              except `orchestra daemon run`, which runs the daemon in the foreground,
              and `orchestra mcp` and `orchestra ui`, the CLI's doors to the MCP bridge
              and the dashboard
and no cycle among the modules of the package, not even through TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "orchestra"

# Which layers each layer may import (its own included).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "adapters": frozenset({"core", "adapters"}),
    "daemon": frozenset({"core", "adapters", "daemon"}),
    "client": frozenset({"core", "adapters", "client"}),
    # `orchestra mcp` runs the bridge, `orchestra ui` the dashboard
    "cli": frozenset({"core", "client", "cli", "mcp", "ui"}),
    "mcp": frozenset({"core", "client", "mcp"}),
    "agents": frozenset({"core", "client", "agents"}),
    "ui": frozenset({"core", "client", "ui"}),
    "__main__": frozenset({"cli"}),  # `python -m orchestra`
}
# The package itself (its __init__: the version, nothing imported) is below every layer.
ROOT_MODULE = "orchestra"
# The one door upwards: `orchestra daemon run` starts the daemon in its own process.
EXCEPTIONS = frozenset({("orchestra.cli.daemon", "orchestra.daemon.main")})


@attrs.frozen
class Import:
    importer: str
    imported: str
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    """Every module of ours that `name` imports, wherever the import statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "orchestra":
                    yield Import(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "orchestra":
                continue
            yield Import(name, source, node.lineno)
            for alias in node.names:  # `from orchestra.daemon import forward`
                if f"{source}.{alias.name}" in known:
                    yield Import(name, f"{source}.{alias.name}", node.lineno)


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ROOT_MODULE


def graph() -> dict[str, list[Import]]:
    known = modules()
    return {name: list(imports_of(name, path, known)) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_is_in_a_layer() -> None:
    names = modules()
    assert "orchestra.core.jsonrpc" in names and "orchestra.daemon.runner" in names
    assert [n for n in names if n != ROOT_MODULE and layer(n) not in ALLOWED] == []
    assert list(imports_of(ROOT_MODULE, names[ROOT_MODULE], names)) == []


def test_no_layer_imports_one_above_it() -> None:
    upward = [
        f"{i.importer}:{i.line} imports {i.imported}"
        for found in graph().values()
        for i in found
        if i.imported != ROOT_MODULE
        and layer(i.imported) not in ALLOWED[layer(i.importer)]
        and (i.importer, i.imported) not in EXCEPTIONS
    ]
    assert upward == []


def test_no_cycle_among_our_modules_not_even_for_types() -> None:
    known = modules()
    edges = {
        name: {i.imported for i in found if i.imported in known and i.imported != name}
        # a package's __init__ re-exports its modules: that is not a dependency back
        - {m for m in known if m.startswith(name + ".")}
        for name, found in graph().items()
    }
    assert cycles(edges) == []


@pytest.mark.parametrize(
    ("importer", "source", "imported"),
    [
        ("orchestra.core.x", "from orchestra.daemon.runner import Run", "orchestra.daemon.runner"),
        (
            "orchestra.adapters.x",
            "if TYPE_CHECKING:\n    from orchestra.daemon import runner",
            "orchestra.daemon.runner",
        ),
        (
            "orchestra.cli.x",
            "def f():\n    import orchestra.adapters.git",
            "orchestra.adapters.git",
        ),
        ("orchestra.mcp.x", "from ..adapters.git import Git", "orchestra.adapters.git"),
    ],
)
def test_the_checker_sees_every_form_of_import(
    tmp_path: Path, importer: str, source: str, imported: str
) -> None:
    """The contract would pass vacuously if an import form slipped past `imports_of`."""
    path = tmp_path / "x.py"
    path.write_text(source + "\n")
    found = list(imports_of(importer, path, modules()))
    assert imported in {i.imported for i in found}
    assert layer(imported) not in ALLOWED[layer(importer)]


def test_the_cycle_finder_finds_a_cycle_through_three() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
