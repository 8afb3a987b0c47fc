"""The Makefile as a newcomer uses it: ``make help`` names every target, and ``make test-fast`` leaves out
what makes ``make test`` long (the book build, the browsers, nbval)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = (ROOT / "Makefile").read_text()


def _targets() -> list[str]:
    """Targets a person types: rules named in lower case, not files such as $(STAMP)."""
    return sorted({m.group(1) for m in re.finditer(r"^([a-z][a-z-]*):(?!=)", MAKEFILE, re.MULTILINE)})


@pytest.fixture(scope="module")
def make() -> str:
    found = shutil.which("make")
    if found is None:
        pytest.skip("make is not installed")
    return found


def test_make_help_lists_every_target_on_one_line(make):
    targets = _targets()
    assert {"help", "book", "test", "test-fast", "lab", "lab-settings"} <= set(targets)
    out = subprocess.run([make, "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = {line.split()[1]: line for line in out.splitlines() if line.strip().startswith("make ")}
    assert sorted(listed) == targets, "every target needs a '## what it does' comment"
    assert all(len(line.split(None, 2)) == 3 for line in listed.values()), out


def test_make_test_lints_first_and_the_tree_is_clean():
    """``make test`` fails on a lint error; so the tree must pass ``ruff check`` as it stands."""
    prerequisites = re.search(r"^test:([^#\n]*)", MAKEFILE, re.MULTILINE).group(1).split()
    assert "lint" in prerequisites
    recipe = re.search(r"^lint:.*\n\t(.*)", MAKEFILE, re.MULTILINE).group(1)
    assert recipe == "$(PY) -m ruff check echolib tests bench"
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "echolib", "tests", "bench"], cwd=ROOT,
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:]


def _lint_recipe() -> list[str]:
    return re.search(r"^lint:.*\n((?:\t.*\n)+)", MAKEFILE, re.MULTILINE).group(1).strip("\t\n").split("\n\t")


def test_make_lint_type_checks_echolib_after_ruff():
    """mypy reads its files and per-module exceptions from pyproject.toml, so the recipe names nothing else."""
    assert _lint_recipe() == ["$(PY) -m ruff check echolib tests bench", "$(PY) -m mypy"]
    settings = re.search(r"^\[tool\.mypy\]\n(.*?)^\[", (ROOT / "pyproject.toml").read_text(),
                         re.MULTILINE | re.DOTALL).group(1)  # fmt: skip
    assert 'files = ["echolib"]' in settings
    assert "ignore_missing_imports" not in settings, "untyped packages are listed per module, in an override"
    assert "ignore_errors" not in (ROOT / "pyproject.toml").read_text(), "no echolib module is left out of mypy"
    assert re.search(r"^test: .*\blint\b", MAKEFILE, re.MULTILINE), "make test runs make lint (ruff, mypy) first"


def test_make_test_fast_leaves_out_the_book_the_browsers_and_slow_tests():
    expression = re.search(r'^test-fast:.*?-m "([^"]+)"', MAKEFILE, re.MULTILINE | re.DOTALL).group(1)
    heavy = ["tests/test_book_browser.py", "tests/test_lab_browser.py", "tests/test_book_on_real_frames.py"]

    def collected(*args: str) -> list[str]:
        out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *args, *heavy,
                              "tests/test_compile.py", "tests/test_paths.py"],
                             cwd=ROOT, capture_output=True, text=True, check=False).stdout
        return [line for line in out.splitlines() if "::" in line]

    assert all((ROOT / f).is_file() for f in heavy)
    fast = collected("-m", expression)
    assert fast and not {i.split("::")[0] for i in fast} & set(heavy), fast
    assert any("test_paths.py" in i for i in fast)
    assert not any("test_compiled_stylegan2_trains_like_eager" in i for i in fast)
