"""The import graph of kerasopt (with kerasopt.callbacks) has no cycles and no private names across packages.

Every import counts, function-local ones too, and a package's ``__init__`` is a module of its own:
``from kerasopt.data import sources_csv`` imports ``kerasopt.data`` (the name is looked up in the
package's namespace first) as well as ``kerasopt.data.sources_csv``. The graph is grimp's
(``scripts/import_graph.py edges``); the layers themselves are checked by ``lint-imports`` (.importlinter).
"""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Edges that close a cycle and whose fix belongs to work in progress elsewhere (issue 15). Each entry
# is cut from the graph before the check. Remove an entry in the change that removes its import: the
# test fails while an entry names an import that is gone or that no longer closes a cycle.
KNOWN_CYCLES: set[tuple[str, str]] = set()
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str]] = set()


def _graph() -> dict[str, dict[str, list[str]]]:
    """importer -> imported -> ["line: text", ...], with the package edges of ``from P import submodule``."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_graph.py"), "edges"],
                         capture_output=True, text=True, check=True).stdout
    graph: dict[str, dict[str, list[str]]] = {}
    for importer, imported, line, text in json.loads(out):
        where = f"{line}: {text.strip()}"
        graph.setdefault(importer, {}).setdefault(imported, []).append(where)
        m = re.match(r"from\s+(\S+)\s+import\b", text.strip())
        parent = imported.rpartition(".")[0]
        if m and parent and _resolve(m.group(1), importer, _is_package(importer)) == parent and parent != importer:
            graph[importer].setdefault(parent, []).append(where)
    return graph


def _is_package(module: str) -> bool:
    rel = module.split(".")[1:]
    base = ROOT / ("callbacks" if rel[:1] == ["callbacks"] else "kerasopt")
    rel = rel[1:] if rel[:1] == ["callbacks"] else rel
    return base.joinpath(*rel, "__init__.py").is_file()


def _resolve(name: str, importer: str, is_package: bool) -> str:
    """``..x`` seen from ``importer`` -> the absolute module name."""
    dots = len(name) - len(name.lstrip("."))
    if not dots:
        return name
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (dots - 1)]
    return ".".join(base + ([name[dots:]] if name[dots:] else []))


def _cycles(graph: dict[str, dict[str, list[str]]], cut=frozenset()) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w == v or (v, w) in cut:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _describe(graph, comp: list[str], cut=frozenset()) -> str:
    members = set(comp)
    lines = [f"cycle among {', '.join(comp)}:"]
    for a in comp:
        for b, where in sorted(graph.get(a, {}).items()):
            if b in members and b != a and (a, b) not in cut:
                lines.append(f"  {a} -> {b}  (line {where[0]})")
    return "\n".join(lines)


def test_no_import_cycles():
    graph = _graph()
    cut = frozenset(KNOWN_CYCLES)
    problems = [_describe(graph, comp, cut) for comp in _cycles(graph, cut)]
    in_cycles = {m for comp in _cycles(graph) for m in comp}
    for a, b in sorted(KNOWN_CYCLES):
        if b not in graph.get(a, {}):
            problems.append(f"KNOWN_CYCLES lists {a} -> {b}, which is no longer imported: remove the entry")
        elif not (a in in_cycles and b in in_cycles):
            problems.append(f"KNOWN_CYCLES lists {a} -> {b}, which no longer closes a cycle: remove the entry")
    assert not problems, "\n".join(problems)


def _module_name(path: Path) -> tuple[str, bool]:
    if path.is_relative_to(ROOT / "callbacks"):
        parts = ["kerasopt", "callbacks", *path.relative_to(ROOT / "callbacks").with_suffix("").parts]
    else:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _package_of(module: str) -> str:
    return module if _is_package(module) else module.rpartition(".")[0]


def private_imports() -> set[tuple[str, str]]:
    """(importer, "module._name") for every ``from M import _name`` where M is in another package."""
    found = set()
    for path in sorted([*ROOT.joinpath("kerasopt").rglob("*.py"), *ROOT.joinpath("callbacks").rglob("*.py")]):
        importer, is_package = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _resolve("." * node.level + (node.module or ""), importer, is_package)
            if not source.startswith("kerasopt"):
                continue
            own = importer if is_package else importer.rpartition(".")[0]
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and _package_of(source) != own:
                    found.add((importer, f"{source}.{alias.name}"))
    return found


def test_no_private_name_is_imported_across_packages():
    found = private_imports()
    new = sorted(found - KNOWN_PRIVATE_IMPORTS)
    stale = sorted(KNOWN_PRIVATE_IMPORTS - found)
    assert not new, "private names imported from another package (make them public or move them below both):\n" + \
        "\n".join(f"  {a} imports {b}" for a, b in new)
    assert not stale, f"KNOWN_PRIVATE_IMPORTS lists imports that are gone, remove them: {stale}"


def test_the_checks_see_what_they_should():
    """The graph holds the callbacks, function-local imports and the package edge of ``from P import m``."""
    graph = _graph()
    assert "kerasopt._keras" in graph["kerasopt.callbacks.base"]  # `from .._keras import keras`
    assert "kerasopt.config" in graph["kerasopt.cli.train"]  # only function-local there, inside the verbs
    assert "kerasopt.models" in graph["kerasopt.models"] or "kerasopt.models.cnn" in graph["kerasopt.models"]
    toy = {"p": {"p.a": ["1"]}, "p.a": {"p": ["2"]}, "q": {}}
    assert _cycles(toy) == [["p", "p.a"]] and _cycles(toy, frozenset({("p.a", "p")})) == []
    assert _resolve("..config", "kerasopt.callbacks.plateau", False) == "kerasopt.config"
    assert _resolve(".", "kerasopt.data", True) == "kerasopt.data"
