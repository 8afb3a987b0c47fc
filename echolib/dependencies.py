"""Every package ``pyproject.toml`` names, what echolib uses it for, and the versions in use.

``needed_by`` is ``"echolib"`` for ``[project] dependencies`` and the extra's name
(``notebooks``, ``book``, ``test``) for optional ones; a test keeps this list and
``pyproject.toml`` equal, so neither can name a package the other does not.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from echolib.paths import PROJECT


@dataclass(frozen=True)
class Dependency:
    name: str  # distribution name as pyproject.toml spells it
    needed_by: tuple[str, ...]  # "echolib" (always installed) or the extras that add it
    used_for: str


DEPENDENCIES: tuple[Dependency, ...] = (
    Dependency("torch", ("echolib",), "tensors, the networks, their training and sampling, on CPU or GPU"),
    Dependency("torchvision", ("echolib",), "the ImageNet VGG16 under LPIPS"),
    Dependency("torch-fidelity", ("echolib",),
               "FID, KID and precision/recall on extracted features; the Inception-v3 extractor"),
    Dependency("numpy", ("echolib",), "arrays outside torch: the phantom generator, statistics, tables"),
    Dependency("scipy", ("echolib",),
               "Jensen-Shannon distance, normal quantiles, exact binomial tests, ranks for the DeLong AUC variance, "
               "the FFT of the phantom's speckle"),
    Dependency("pillow", ("echolib",), "reading and writing PNG frames and image grids"),
    Dependency("pyyaml", ("echolib",), "configurations and run settings on disk"),
    Dependency("tqdm", ("echolib",), "progress bars"),
    Dependency("opencv-python-headless", ("echolib",),
               "decoding EchoNet-Dynamic videos, resizing, drawing the phantom's anatomy, bilateral filter, "
               "Canny edges for pix2pix conditions"),
    Dependency("pandas", ("echolib",), "tables of records for the chapters and reports"),
    Dependency("scikit-learn", ("echolib",),
               "the classifier two-sample test (logistic regression, folds grouped by video); raters' ROC curves"),
    Dependency("statsmodels", ("echolib",), "Fleiss' kappa of the Turing-test raters"),
    Dependency("matplotlib", ("echolib",), "every figure"),
    Dependency("seaborn", ("echolib",), "heat maps and violin plots of the comparison and Turing chapters"),
    Dependency("tensorboard", ("echolib",), "TensorBoard event files beside a run's log"),
    Dependency("jupyterlab", ("notebooks",), "opening the chapters as notebooks (make lab)"),
    Dependency("jupytext", ("notebooks", "book"),
               "chapters kept as percent-format .py files and converted to .ipynb to run"),
    Dependency("papermill", ("notebooks", "book"), "running a chapter with parameters"),
    Dependency("ipywidgets", ("notebooks", "book"), "the Turing-test rater app"),
    Dependency("ipykernel", ("notebooks", "book"), "the Python kernel that runs the notebooks"),
    Dependency("jupyter-book", ("book",), "building the book's HTML from the executed chapters"),
    Dependency("sphinx-mathjax-offline", ("book",), "MathJax served from the build, so the book renders offline"),
    Dependency("pytest", ("test",), "the test suite"),
    Dependency("nbval", ("test",), "running every chapter notebook as a test"),
    Dependency("pytest-timeout", ("test",), "a time limit on each test"),
    Dependency("pytest-xdist", ("test",), "test files in parallel processes"),
    Dependency("selenium", ("test",), "driving headless Chromium over the built book"),
    Dependency("pytorch-msssim", ("test",), "the reference SSIM and MS-SSIM that echolib's are checked against"),
)


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them (``interface_meta`` is ``interface-meta``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path = PROJECT / "requirements.lock") -> dict[str, str]:
    """``requirements.lock``'s pins by normalised name; empty where the file is absent (an installed echolib)."""
    if not lock.is_file():
        return {}
    pins = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            pins[normalized(name.strip())] = version.strip()
    return pins


def installed_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def dependency_rows() -> list[dict[str, str]]:
    """One row per package, Python first: installed and locked version, who needs it, what for."""
    locked = locked_versions()
    rows = [{"package": "python", "installed": sys.version.split()[0], "locked": "-", "needed by": "echolib",
             "used for": "the interpreter"}]
    for dep in DEPENDENCIES:
        rows.append({
            "package": dep.name,
            "installed": installed_version(dep.name),
            "locked": locked.get(normalized(dep.name), "-"),
            "needed by": ", ".join(dep.needed_by),
            "used for": dep.used_for,
        })
    return rows
