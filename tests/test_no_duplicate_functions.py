"""No two functions of echolib share a whole body: one piece of logic has one home that the others call.

Every function and method is read with :mod:`ast`, its docstring dropped and its
arguments and local variables renamed to placeholders in order of first use, so
a copy that only renamed things is still a copy. Bodies of fewer than
``MIN_STATEMENTS`` statements (accessors, one-line wrappers) are too short to
be worth a shared home and are not compared.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "echolib"

#: bodies shorter than this many statements (counted recursively) are not compared
MIN_STATEMENTS = 5

#: files (or folders, ending in /) whose duplicates are not reported yet -> the issue item that removes them
UNCHECKED: dict[str, str] = {}

Function = ast.FunctionDef | ast.AsyncFunctionDef


class _Placeholders(ast.NodeTransformer):
    """Renames the given names to ``_0``, ``_1``, ... in order of first appearance."""

    def __init__(self, local: set[str]) -> None:
        self.local = local
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        if name not in self.local:
            return name
        return self.names.setdefault(name, f"_{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self._rename(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self._rename(node.arg)
        node.annotation = None
        return node


def _local_names(fn: Function) -> set[str]:
    """Arguments and every name the function binds (assignments, loops, with, comprehensions, except)."""
    names = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
    names |= {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names |= {h.name for h in ast.walk(fn) if isinstance(h, ast.ExceptHandler) and h.name}
    return names


def _statements(body: list[ast.stmt]) -> int:
    return sum(1 for stmt in body for node in ast.walk(stmt) if isinstance(node, ast.stmt))


def normalised_body(fn: Function) -> tuple[str, int]:
    """The function's body with its docstring dropped and locals renamed, as text, and its statement count."""
    fn = copy.deepcopy(fn)
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and \
            isinstance(body[0].value.value, str):  # fmt: skip
        body = body[1:]
    fn.body, fn.name, fn.decorator_list, fn.returns = body, "f", [], None
    renamed = _Placeholders(_local_names(fn)).visit(fn)
    return ast.dump(renamed.args) + ast.dump(ast.Module(body=renamed.body, type_ignores=[])), _statements(body)


def functions(source: str, where: str) -> list[tuple[str, str, int]]:
    """``(place, normalised body, statements)`` of every function and method in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body, statements = normalised_body(node)
            found.append((f"{where}:{node.lineno} {node.name}", body, statements))
    return found


def duplicate_groups(sources: dict[str, str], min_statements: int = MIN_STATEMENTS) -> list[list[str]]:
    """Groups of two or more places whose functions share a normalised body of ``min_statements`` or more."""
    by_body: dict[str, list[str]] = {}
    for where, source in sources.items():
        for place, body, statements in functions(source, where):
            if statements >= min_statements:
                by_body.setdefault(body, []).append(place)
    return sorted(places for places in by_body.values() if len(places) > 1)


def _unchecked(rel: str) -> str | None:
    return next((key for key in UNCHECKED if rel == key or (key.endswith("/") and rel.startswith(key))), None)


def test_the_finder_sees_through_renamed_locals_and_docstrings():
    a = (
        "def mean_of(values, weights):\n"
        '    """The weighted mean."""\n'
        "    total = 0.0\n"
        "    norm = 0.0\n"
        "    for v, w in zip(values, weights):\n"
        "        total += v * w\n"
        "        norm += w\n"
        "    return total / norm\n"
    )
    renamed = a.replace("total", "acc").replace("norm", "z").replace('"""The weighted mean."""', "# no docstring")
    other = a.replace("v * w", "v * w * w")
    short = "def f(x):\n    return x + 1\n"
    groups = duplicate_groups({"a.py": a, "b.py": renamed, "c.py": other, "d.py": short, "e.py": short})
    assert groups == [["a.py:1 mean_of", "b.py:1 mean_of"]]


def test_no_two_functions_share_a_whole_body():
    sources = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        sources[rel] = path.read_text()
    groups = duplicate_groups(sources)
    excused = [g for g in groups if all(_unchecked(place.split(":")[0]) for place in g)]
    offenders = [g for g in groups if g not in excused]
    assert not offenders, (
        "functions with the same body (docstrings dropped, locals renamed): keep one and call it from the others:\n"
        + "\n".join("  " + "  ==  ".join(g) for g in offenders))
    used = {_unchecked(place.split(":")[0]) for g in excused for place in g}
    stale = sorted(set(UNCHECKED) - used)
    assert not stale, f"entries with no duplicate left; remove them from UNCHECKED: {stale}"
