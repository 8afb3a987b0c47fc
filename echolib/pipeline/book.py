"""Build the research book: execute its notebooks with papermill, then render with Jupyter Book 1.x.

``_toc.yml`` is the single list of chapters. Entries under ``book/generated/``
are executed copies of ``notebooks/<name>.py``: this module executes each with
the book's parameters (data, runs folder, device), then runs ``jupyter-book
build`` with execution off, so the HTML shows exactly the executed records.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from echolib.data.sources import is_phantom
from echolib.errors import ConfigError, EchoError
from echolib.paths import shown_path
from echolib.pipeline.notebooks import NOTEBOOKS, REPO, execute, parameters

GENERATED = "book/generated"


def chapters(toc: Path = REPO / "_toc.yml") -> list[str]:
    """Names of the notebook chapters listed in the table of contents, in order."""
    data = yaml.safe_load(toc.read_text())
    names: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file") or node.get("root")
            if isinstance(f, str) and f.startswith(GENERATED + "/"):
                names.append(f.split("/")[-1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    return names


def build(
    data: str = "phantom",
    runs: str | Path = "runs",
    *,
    device: str = "auto",
    only: list[str] | None = None,
    execute_notebooks: bool = True,
    progress: bool = True,
    timeout: int | None = 1800,
) -> Path:
    """Execute every chapter notebook and render ``_build/html``; returns the index page."""
    runs = Path(runs).resolve()
    data_arg = data if is_phantom(data) else _as_parameter(Path(data).resolve())
    if not is_phantom(data) and not Path(data).exists():
        raise ConfigError(f"--data {data}: no such folder, zip or manifest (or use 'phantom')")
    names = chapters()
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ConfigError(f"unknown chapter(s) {', '.join(unknown)}; the book has {', '.join(names)}")
    out_dir = REPO / GENERATED
    out_dir.mkdir(parents=True, exist_ok=True)
    if execute_notebooks:
        for name in names:
            if only and name not in only:
                continue
            src = NOTEBOOKS / f"{name}.py"
            declared = parameters(src)
            given = {"data": data_arg, "runs": _as_parameter(runs), "device": device}
            params = {k: v for k, v in given.items() if k in declared}
            t0 = time.perf_counter()
            print(f"[book] executing {src.relative_to(REPO)} ...", flush=True)
            # executed outside the book's sources, then swapped in: a failing chapter keeps its last good version
            partial = REPO / "_build" / "executing" / f"{name}.ipynb"
            try:
                # progress bars are noise in a book; widgets would need JavaScript from a CDN
                execute(src, partial, params, progress=progress, timeout=timeout,
                        env={"ECHOLIB_RUNS": str(runs), "TQDM_DISABLE": "1"})
                strip_widgets(partial)
                os.replace(partial, out_dir / f"{name}.ipynb")
            except EchoError:
                raise
            except Exception as exc:
                raise BookError(f"notebook {src.name} failed while building the book: {exc}") from exc
            print(f"[book] {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    missing = [n for n in names if not (out_dir / f"{n}.ipynb").exists()]
    if missing:
        raise BookError(f"chapters not executed yet: {', '.join(missing)} (run without --no-execute)")
    return render()


def _as_parameter(path: Path) -> str:
    """A path as a chapter's parameter: relative to the project when inside or beside it, else absolute.

    papermill writes parameters into a cell of the page, and a chapter runs with
    the project as its working folder, so ``runs`` or ``../shared/data/frames``
    reach the same files as the absolute path without showing the build
    machine's layout to every reader.
    """
    shown = shown_path(path)
    return str(path) if shown.startswith(("~", "…")) else shown


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def strip_widgets(path: Path) -> None:
    """Drop live-widget state and views from an executed notebook, keeping their text fallback.

    A widget view in the HTML makes the page load require.js and the widget
    manager from a CDN, which fails offline (and the book must render offline).
    """
    # lazy: nbformat comes with the optional notebook dependencies
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        outputs = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None and WIDGET_VIEW in data:
                data.pop(WIDGET_VIEW)
                if not data:
                    continue
            outputs.append(out)
        if cell.cell_type == "code":
            cell.outputs = outputs
    nbformat.write(nb, path)


class BookError(EchoError, RuntimeError):
    """A chapter failed to execute or the book failed to render."""


def render() -> Path:
    """Render every page again (``--all``): Sphinx cannot see changes to the book's extension or styles."""
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    if jb is None:
        raise BookError("jupyter-book is not installed; run `make book` (it installs the pinned version)")
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    result = subprocess.run([jb, "build", "--all", str(REPO), "--path-output", str(REPO)], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False)
    log = REPO / "_build" / "book.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(result.stdout + "\n" + result.stderr)
    index = REPO / "_build" / "html" / "index.html"
    if result.returncode != 0 or not index.exists():
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise BookError(f"jupyter-book build failed (full log: {log}):\n{tail}")
    return index
