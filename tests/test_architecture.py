"""The layout holds: no import cycle between modules, lean runtime imports, small modules."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import grimp

PACKAGE = Path(__file__).parent.parent / "fangxin"
MAX_LINES = 350


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_cycle_finder_sees_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.a")
    assert cycles(graph) == [["p.a", "p.b"]]


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph("fangxin")
    assert cycles(graph) == []


def test_runtime_imports_neither_simulators_nor_amqtt() -> None:
    code = (
        "import sys, fangxin.service.app, fangxin.ingest.runner, fangxin.ingest; "
        "print([m for m in sys.modules if m.startswith(('amqtt', 'fangxin.sim'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_modules_stay_small() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
        if "versions" not in path.parts
    }
    assert len(sizes) > 100  # the walk found the package
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_no_string_registries_of_our_own_code() -> None:
    users = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "versions" not in path.parts and "importlib" in path.read_text(encoding="utf-8")
    ]
    assert users == []


def test_the_walk_names_real_functions() -> None:
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    names = set(re.findall(r"`(fangxin(?:\.\w+)+):([\w.]+)`", doc))
    assert len(names) > 30  # the page names the functions of the walk
    missing = []
    for module, attribute in sorted(names):
        target: object = importlib.import_module(module)
        for part in attribute.split("."):
            target = getattr(target, part, None)
        if not callable(target):
            missing.append(f"{module}:{attribute}")
    assert missing == []
