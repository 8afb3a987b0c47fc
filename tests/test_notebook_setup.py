"""Every notebook's first code cell makes ``import echolib`` work in a fresh kernel, or says what to do.

The cell runs before echolib is importable (on Colab, in a kernel outside the
project's venv), so its logic cannot live in echolib: it is a short cell, the
same in every notebook, that installs from the checkout the notebook sits in or
from ``ECHOLIB_SOURCE``. An install address that exists nowhere (as the cell once
used, ``git+https://github.com/...`` of a repository that is not this one) fails
only on the machine of whoever tries it, so the tree is checked for such
addresses too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from echolib.pipeline.notebooks import read_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
# repository addresses the tree may name: real projects it cites
KNOWN_REPOSITORIES = {"toshas/torch-fidelity", "geyao-c/MedGAN"}


def _setup_cell(path: Path) -> str:
    return next(c.source for c in read_notebook(path).cells if c.cell_type == "code")


SETUP = _setup_cell(ROOT / "notebooks" / "turing.py")
_FIND_SPEC = importlib.util.find_spec


def test_every_notebook_starts_with_the_same_setup_cell():
    assert len(NOTEBOOKS) >= 10
    differing = [p.name for p in NOTEBOOKS if _setup_cell(p) != SETUP]
    assert differing == [], "first code cells differ from notebooks/turing.py's; keep them identical"
    assert "ECHOLIB_SOURCE" in SETUP and "echolib @" not in SETUP
    for path in NOTEBOOKS:  # kept out of the rendered book: it is about the reader's kernel, not the study
        cell = next(c for c in read_notebook(path).cells if c.cell_type == "code")
        assert "remove-cell" in cell.metadata.get("tags", []), path.name


def test_no_invented_install_address_in_the_tree():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    named: dict[str, set[str]] = {}
    for name in tracked:
        path = ROOT / name
        if name in ("requirements.lock", "tests/test_notebook_setup.py") or not path.is_file() \
                or path.suffix in {".png", ".ico", ".pt", ".pth"}:  # this file names what it forbids
            continue
        text = path.read_text(errors="ignore")
        assert "echo-gen/echo-gen-book" not in text, name
        for repo in re.findall(r"(?:github|gitlab)\.com/([\w.-]+/[\w.-]+?)(?:\.git)?(?=[\s/)\"'`,}>]|$)", text):
            named.setdefault(repo, set()).add(name)
        assert not re.search(r"git\+https?://(?!<)", text), f"{name}: a git+ install address"
    unknown = {repo: sorted(files) for repo, files in named.items() if repo not in KNOWN_REPOSITORIES}
    assert unknown == {}, "repository addresses nobody checked; add real ones to KNOWN_REPOSITORIES"


def _run_setup(monkeypatch, cwd: Path, *, source: str = "", installed: bool = False) -> tuple[list, str]:
    """Execute the setup cell here with pip and the import machinery stubbed: the pip command it runs, its output."""
    calls: list[list[str]] = []
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "echolib" and not installed else _FIND_SPEC(name, *a))
    monkeypatch.setattr(subprocess, "check_call", lambda cmd, **kw: calls.append(cmd) or 0)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("ECHOLIB_SOURCE", raising=False)
    if source:
        monkeypatch.setenv("ECHOLIB_SOURCE", source)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(SETUP, "setup-cell", "exec"), {})  # noqa: S102 (the cell, as a kernel runs it)
    return calls, out.getvalue()


def test_setup_installs_the_checkout_the_notebook_sits_in(monkeypatch, tmp_path):
    checkout = tmp_path / "clone"
    (checkout / "echolib").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\nname = 'echolib'\n")
    (checkout / "notebooks").mkdir()
    calls, out = _run_setup(monkeypatch, checkout / "notebooks")
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "-e", str(checkout)]]
    assert sys.path[0] == str(checkout.resolve()) and out == ""


def test_setup_installs_what_echolib_source_names(monkeypatch, tmp_path):
    url = "git+https://example.org/lab/echo-study.git"
    calls, _ = _run_setup(monkeypatch, tmp_path, source=url)
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", url]]


def test_setup_says_what_to_do_outside_a_checkout_and_does_nothing_when_installed(monkeypatch, tmp_path):
    calls, out = _run_setup(monkeypatch, tmp_path)
    assert calls == [] and len(out.splitlines()) == 1 and "set ECHOLIB_SOURCE" in out
    calls, out = _run_setup(monkeypatch, tmp_path, installed=True)
    assert calls == [] and out == ""


def test_setup_works_in_a_fresh_python_outside_the_venv(tmp_path):
    """A new environment that sees the dependencies but not echolib: the cell installs this checkout with pip
    (offline: the dependencies are there, pip's index is off) and ``import echolib`` then works, in the same
    kernel and in a new one. The venv's own echolib stays as it was."""
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    # a plain path line: the venv's packages (pip, torch, ...) are visible, its editable echolib finder is not
    (site / "deps.pth").write_text(f"{ours}\n")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in ours.glob("*echolib*"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ECHOLIB_SOURCE")}
    env.update(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1")
    absent = subprocess.run([python, "-c", "import echolib"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            check=False)
    assert absent.returncode != 0 and "No module named 'echolib'" in absent.stderr
    script = SETUP + "\nimport echolib\nprint(echolib.__file__)\n"
    done = subprocess.run([python, "-c", script], cwd=ROOT / "notebooks", env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(ROOT / "echolib" / "__init__.py")
    again = subprocess.run([python, "-c", "import echolib; print(echolib.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True)
    assert again.stdout.strip() == str(ROOT / "echolib" / "__init__.py")
    assert sorted((p.name, p.stat().st_mtime_ns) for p in ours.glob("*echolib*")) == before
