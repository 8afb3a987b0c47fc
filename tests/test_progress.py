"""Progress bars: a caller switches them off, and so does ``TQDM_DISABLE`` (the book's setting)."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import sys
from echolib.progress import progress_bar
with progress_bar(total=3, enabled=sys.argv[1] == "on", desc="bar") as bar:
    bar.update(3)
"""


def _stderr(enabled: bool, tqdm_disable: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    if tqdm_disable is not None:
        env["TQDM_DISABLE"] = tqdm_disable  # tqdm reads it when imported, as in the book's kernels
    return subprocess.run([sys.executable, "-c", SCRIPT, "on" if enabled else "off"], env=env, capture_output=True,
                          text=True, check=True).stderr


def test_bars_follow_the_caller_and_the_environment():
    assert "bar: 100%" in _stderr(enabled=True, tqdm_disable=None)
    assert _stderr(enabled=False, tqdm_disable=None) == ""
    assert _stderr(enabled=True, tqdm_disable="1") == ""  # a bar made with disable=False would show here


def test_no_module_makes_its_own_bar():
    """A direct tqdm call with ``disable=not progress`` would show in the book again."""
    import re
    from pathlib import Path

    import echolib

    root = Path(echolib.__file__).parent
    imports_tqdm = re.compile(r"^\s*(import tqdm|from tqdm)", re.MULTILINE)
    direct = [str(p.relative_to(root)) for p in root.rglob("*.py")
              if p.name != "progress.py" and imports_tqdm.search(p.read_text())]
    assert direct == []


def test_a_notebook_kernels_bar_follows_the_environment_too(monkeypatch):
    """In a Jupyter kernel ``tqdm.auto`` is ``tqdm.notebook.tqdm``, which ignores ``TQDM_DISABLE``: the
    comparison chapter showed ``features (echo): 0%|`` frozen in the book until progress_bar read it itself."""
    import tqdm.auto
    import tqdm.notebook

    from echolib.progress import progress_bar

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    with progress_bar(range(3), desc="bar", display=False) as bar:
        assert bar.disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    with progress_bar(range(3), desc="bar", display=False) as bar:
        assert not bar.disable
