"""The three ways to install echolib name the same packages.

``pyproject.toml`` states what echolib needs, ``requirements.lock`` pins what
``make`` installs, and ``environment.yml`` is the conda route. A package added to
one and forgotten in another fails only on the machine of whoever takes that
route (the conda file once lacked the book's offline MathJax, so
``jupyter-book build`` stopped there), so this compares them here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement line (PEP 503)."""
    name = re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return {_name(r) for r in project["dependencies"] + [r for group in extras.values() for r in group]}


def _conda_pip() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r) for r in pip}


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_name(name)] = version.strip()
    return pins


def test_every_declared_package_is_in_the_lock_and_the_conda_file():
    declared, locked = _declared(), _locked()
    assert declared - set(locked) == set(), "in pyproject.toml, not pinned in requirements.lock"
    assert declared - _conda_pip() == set(), "in pyproject.toml, missing from environment.yml"


def test_conda_pins_agree_with_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    locked = _locked()
    pinned = {_name(r): r.split("==", 1)[1].strip() for r in pip if "==" in r}
    assert pinned, "environment.yml pins nothing: torch and torchvision must match the lock"
    assert {k: v for k, v in pinned.items() if locked.get(k) != v} == {}
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = tuple(int(x) for x in python.split("=", 1)[1].split("."))
    assert version >= tuple(int(x) for x in requires.lstrip(">=").strip().split("."))


def test_every_dependency_says_what_it_is_used_for():
    """``echolib.dependencies`` (the reproducibility chapter's table) and ``pyproject.toml`` name the same packages.

    Each package must appear under the same groups: ``echolib`` for ``[project]
    dependencies``, an extra's name for ``[project.optional-dependencies]``.
    """
    from echolib.dependencies import DEPENDENCIES, dependency_rows, normalized

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"echolib": project["dependencies"], **project["optional-dependencies"]}
    declared: dict[str, set[str]] = {}
    for group, requirements in groups.items():
        for r in requirements:
            declared.setdefault(_name(r), set()).add(group)
    listed = {normalized(d.name): set(d.needed_by) for d in DEPENDENCIES}
    assert len(listed) == len(DEPENDENCIES), "a package is listed twice in echolib.dependencies"
    assert sorted(declared.keys() - listed.keys()) == [], "in pyproject.toml, no 'used for' in echolib.dependencies"
    assert sorted(listed.keys() - declared.keys()) == [], "in echolib.dependencies, not in pyproject.toml"
    assert {k: v for k, v in listed.items() if declared[k] != v} == {}, "needed by other groups than pyproject says"
    assert all(d.used_for.strip() for d in DEPENDENCIES)
    rows = dependency_rows()
    assert [r["package"] for r in rows] == ["python", *(d.name for d in DEPENDENCIES)]
    assert all(r["locked"] == _locked()[_name(r["package"])] for r in rows[1:]), "the table reads the lock's pins"
