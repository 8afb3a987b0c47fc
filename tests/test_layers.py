"""The layer rules of DESIGN.md, read from the source: what a model may import, and no import cycles.

* No ``echolib.models`` module imports ``echolib.metrics``, ``echolib.data`` or
  ``echolib.report``, at module level or inside a function: what a model needs
  from outside (a perceptual loss, image conditions, labels) is passed in through
  the protocol of :mod:`echolib.models.base`.
* The packages of ``echolib`` import each other at module level without a cycle,
  so each layer can be read, tested and replaced from the bottom up.
* An import inside a function says why it is there: a ``# lazy: <reason>``
  comment on its line or the line above (one comment serves a run of imports)
  names the optional dependency or the start-up time it keeps off the import
  path. Everything else is imported at module level, where a reader looks.

The import reader is :mod:`echolib.layout`'s, which also holds the layers
(``tests/test_layout.py``) and draws them in the book's appendix.
"""

from __future__ import annotations

import ast
from pathlib import Path

from echolib.layout import all_imports, imports_of, package_of

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "echolib"

#: what models must not import
FORBIDDEN_FOR_MODELS = ("metrics", "data", "report")

#: the comment that justifies an import inside a function
LAZY = "# lazy:"


def test_the_import_reader_counts_imports_inside_functions_and_relative_ones():
    source = (
        "from echolib.models.base import GenerativeModel\n"
        "from . import layers\n"
        "from ..metrics import features\n"
        "if TYPE_CHECKING:\n    from echolib.report import plots\n"
        "def loss():\n    from echolib.metrics.lpips import LPIPSLoss\n    return LPIPSLoss\n"
    )
    got = {(i.module, i.top_level) for i in imports_of(source, "echolib.models.vqgan")}
    assert got == {("echolib.models.base", True), ("echolib.models", True), ("echolib.models.layers", True),
                   ("echolib.metrics", True), ("echolib.metrics.features", True),
                   ("echolib.metrics.lpips", False)}  # fmt: skip


def test_models_import_no_metrics_data_or_report():
    found: dict[tuple[str, str], list[str]] = {}
    for imp in all_imports():
        target = package_of(imp.module)
        if imp.importer.startswith("echolib.models.") and target in FORBIDDEN_FOR_MODELS:
            where = "module level" if imp.top_level else "in a function"
            found.setdefault((imp.importer, target), []).append(f"line {imp.line}: {imp.module} ({where})")
    assert not found, "models must get these passed in (models/base.py), not import them:\n" + "\n".join(
        f"{importer} -> {', '.join(lines)}" for (importer, _), lines in found.items())


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one package (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                connect(nxt)
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
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return out


def test_the_cycle_finder_finds_a_cycle_and_nothing_else():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_import_cycles_among_echolib_packages():
    edges: dict[str, set[str]] = {}
    why: dict[tuple[str, str], list[str]] = {}
    for imp in all_imports():
        a, b = package_of(imp.importer), package_of(imp.module)
        if imp.top_level and a != b:
            why.setdefault((a, b), []).append(f"{imp.importer}:{imp.line} imports {imp.module}")
            edges.setdefault(a, set()).add(b)
    cycles = _cycles(edges)
    assert not cycles, "\n".join(
        "cycle among " + ", ".join(c) + ":\n  " + "\n  ".join(
            line for (a, b), lines in sorted(why.items()) if a in c and b in c and (a, b) in
            {(x, y) for x in c for y in edges.get(x, ())} for line in lines)
        for c in cycles)  # fmt: skip


def function_imports(source: str) -> list[tuple[int, bool]]:
    """``(line, justified)`` of every import inside a function (or lambda) of ``source``.

    Justified: a ``# lazy:`` comment on one of the import's lines or on the line
    above it, or the import directly follows a justified one in the same block.
    """
    lines = source.splitlines()
    found: list[tuple[int, bool]] = []

    def commented(stmt: ast.stmt) -> bool:
        first, last = stmt.lineno, stmt.end_lineno or stmt.lineno
        return any(LAZY in lines[i - 1] for i in range(max(1, first - 1), last + 1))

    def visit(node: ast.AST, in_function: bool) -> None:
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            previous_justified = False
            for stmt in block:
                if in_function and isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    previous_justified = previous_justified or commented(stmt)
                    found.append((stmt.lineno, previous_justified))
                else:
                    previous_justified = False
        for child in ast.iter_child_nodes(node):
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(source), False)
    return found


def test_the_function_import_reader_wants_a_reason_for_each_run_of_imports():
    source = (
        "import os\n"
        "def f():\n"
        "    # lazy: sklearn is slow to import\n"
        "    from sklearn import svm\n"
        "    import sklearn.pipeline\n"
        "    x = 1\n"
        "    import json\n"
        "    import yaml  # lazy: keeps --help fast\n"
        "    g = lambda: __import__('x')\n"
        "    if x:\n"
        "        import csv\n"
        "class C:\n"
        "    def m(self):\n"
        "        from echolib import (\n"
        "            io,  # lazy: a cycle\n"
        "        )\n"
    )
    assert function_imports(source) == [(4, True), (5, True), (7, False), (8, True), (11, False), (14, True)]


def test_imports_inside_functions_say_why():
    unjustified: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        bad = [line for line, justified in function_imports(path.read_text()) if not justified]
        if bad:
            unjustified[rel] = bad

    assert not unjustified, (
        "imports inside functions without a '# lazy: <why>' comment (an optional dependency, start-up time, "
        "a cycle); move them to the top of the module or say why:\n"
        + "\n".join(f"{rel}: lines {', '.join(map(str, lines))}" for rel, lines in unjustified.items()))
