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

A violation that is not fixed yet is named below with the issue item that
removes it; an entry nobody needs any more fails the test, so the lists only shrink.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "echolib"

#: what models must not import
FORBIDDEN_FOR_MODELS = ("echolib.metrics", "echolib.data", "echolib.report")

#: (importing module, imported package) -> the issue item that removes it
ALLOWED_MODEL_IMPORTS: dict[tuple[str, str], str] = {}

#: (package, package it imports at module level) edges left out of the cycle check -> the issue item
ALLOWED_PACKAGE_EDGES: dict[tuple[str, str], str] = {}

#: the comment that justifies an import inside a function
LAZY = "# lazy:"

#: files (or folders, ending in /) whose imports inside functions are not checked -> the issue item
UNCHECKED_FUNCTION_IMPORTS: dict[str, str] = {
    "echolib/data/": "issue 28 item 6: the data layer is being restructured",
    "echolib/report/data_figures.py": "issue 28 item 6: merged with data/echonet.py",
}


@dataclass(frozen=True)
class Import:
    """One ``import`` of an echolib module: who imports what, where, and whether at module level."""

    importer: str
    module: str
    line: int
    top_level: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(source: str, importer: str, is_package: bool = False) -> list[Import]:
    """The echolib modules ``source`` imports; ``from a import b`` counts ``a.b`` too when it is a module.

    An import inside a function (or lambda) runs when the function is called,
    not when the module is imported: it counts for what a module may import,
    not for cycles. ``if TYPE_CHECKING:`` blocks never run and are skipped.
    """
    package = importer if is_package else importer.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(ast.Module(body=child.orelse, type_ignores=[]), in_function)
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in child.names if _is_module(f"{base}.{a.name}")]
            for name in names:
                if name == "echolib" or name.startswith("echolib."):
                    found.append(Import(importer, name, child.lineno, not inner))
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


def all_imports() -> Iterator[Import]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield from imports_of(path.read_text(), module_name(path), path.name == "__init__.py")


def package_of(module: str) -> str:
    """``echolib.models.vqgan`` -> ``echolib.models``; plumbing modules (``echolib.io``) are packages of their own."""
    return ".".join(module.split(".")[:2])


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
    offenders = {k: v for k, v in found.items() if k not in ALLOWED_MODEL_IMPORTS}
    assert not offenders, "models must get these passed in (models/base.py), not import them:\n" + "\n".join(
        f"{importer} -> {', '.join(lines)}" for (importer, _), lines in offenders.items())
    stale = sorted(set(ALLOWED_MODEL_IMPORTS) - set(found))
    assert not stale, f"allowed imports that no longer exist; remove them from ALLOWED_MODEL_IMPORTS: {stale}"


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
            if (a, b) not in ALLOWED_PACKAGE_EDGES:
                edges.setdefault(a, set()).add(b)
    cycles = _cycles(edges)
    assert not cycles, "\n".join(
        "cycle among " + ", ".join(c) + ":\n  " + "\n  ".join(
            line for (a, b), lines in sorted(why.items()) if a in c and b in c and (a, b) in
            {(x, y) for x in c for y in edges.get(x, ())} for line in lines)
        for c in cycles)  # fmt: skip
    stale = sorted(set(ALLOWED_PACKAGE_EDGES) - set(why))
    assert not stale, f"allowed edges that no longer exist; remove them from ALLOWED_PACKAGE_EDGES: {stale}"


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

    def allowed(rel: str) -> str | None:
        return next((key for key in UNCHECKED_FUNCTION_IMPORTS if rel == key or
                     (key.endswith("/") and rel.startswith(key))), None)  # fmt: skip

    offenders = {rel: lines for rel, lines in unjustified.items() if allowed(rel) is None}
    assert not offenders, (
        "imports inside functions without a '# lazy: <why>' comment (an optional dependency, start-up time, "
        "a cycle); move them to the top of the module or say why:\n"
        + "\n".join(f"{rel}: lines {', '.join(map(str, lines))}" for rel, lines in offenders.items()))
    used = {allowed(rel) for rel in unjustified}
    stale = sorted(set(UNCHECKED_FUNCTION_IMPORTS) - used)
    assert not stale, f"entries with nothing left to excuse; remove them from UNCHECKED_FUNCTION_IMPORTS: {stale}"
