"""Jupytext notebooks executed by papermill, with parameters checked before any work.

Notebooks live as Jupytext percent ``.py`` files (reviewable diffs, no outputs
in git). papermill and nbval read only ``.ipynb``, so each execution converts
the ``.py`` on the fly; the executed ``.ipynb`` is the record of the run.
"""

from __future__ import annotations

import ast
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echolib.errors import ConfigError
from echolib.paths import PROJECT

REPO = PROJECT
NOTEBOOKS = REPO / "notebooks"


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any  # the literal default, or None when it is an expression (e.g. os.environ.get)
    kind: str  # "int", "float", "str", "bool", "none", "expr"


def read_notebook(path: str | Path):
    """A Jupytext ``.py`` (or ``.ipynb``) as an nbformat notebook with a python3 kernelspec."""
    # lazy: jupytext and papermill are optional (the notebooks extra)
    import jupytext

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"notebook {path} does not exist; notebooks are in {NOTEBOOKS}")
    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nb


def to_ipynb(path: str | Path, out: str | Path) -> Path:
    # lazy: jupytext and papermill are optional (the notebooks extra)
    import nbformat

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(read_notebook(path), out)
    return out


def parameters(path: str | Path) -> dict[str, Parameter]:
    """The variables assigned in the cell tagged ``parameters``, with their default's kind."""
    nb = read_notebook(path)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ConfigError(f"notebook {path} has no cell tagged 'parameters' (papermill needs one)")
    params: dict[str, Parameter] = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            try:
                value = ast.literal_eval(node.value)
                kind = "none" if value is None else type(value).__name__
            except ValueError:
                value, kind = None, "expr"
            params[name] = Parameter(name, value, kind)
    return params


def check_parameters(path: str | Path, given: dict[str, Any]) -> None:
    """Unknown names or values of the wrong type fail now, listing what the notebook accepts."""
    known = parameters(path)
    unknown = sorted(set(given) - set(known))
    if unknown:
        listing = ", ".join(f"{p.name} ({p.kind})" for p in known.values())
        raise ConfigError(f"notebook {Path(path).name}: unknown parameter(s) {', '.join(unknown)}; valid: {listing}")
    for name, value in given.items():
        kind = known[name].kind
        if kind in ("none", "expr") or value is None:
            continue
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
        }.get(kind, True)
        if not ok:
            raise ConfigError(
                f"notebook {Path(path).name}: parameter {name} expects {kind} "
                f"(default {known[name].default!r}), got {type(value).__name__} {value!r}"
            )


def execute(
    path: str | Path,
    output: str | Path,
    parameters_: dict[str, Any] | None = None,
    *,
    cwd: str | Path | None = None,
    progress: bool = True,
    timeout: int | None = None,
    env: dict[str, str] | None = None,
) -> Path:
    """Convert ``path`` and execute it with papermill into ``output`` (an ``.ipynb``)."""
    # lazy: jupytext and papermill are optional (the notebooks extra)
    import papermill

    params = dict(parameters_ or {})
    check_parameters(path, params)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    old_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = to_ipynb(path, Path(tmp) / (Path(path).stem + ".ipynb"))
            papermill.execute_notebook(
                str(src),
                str(output),
                parameters=params,
                kernel_name="python3",
                cwd=str(cwd or REPO),
                progress_bar=progress,
                execution_timeout=timeout,
            )
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return output


def convert_all(out_dir: str | Path, folder: str | Path = NOTEBOOKS) -> list[Path]:
    """Every ``notebooks/*.py`` as ``.ipynb`` in ``out_dir`` (what nbval executes)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.ipynb"):
        stale.unlink()
    return [to_ipynb(p, out_dir / f"{p.stem}.ipynb") for p in sorted(Path(folder).glob("*.py"))]


if __name__ == "__main__":  # python -m echolib.pipeline.notebooks OUT_DIR
    import sys

    for p in convert_all(sys.argv[1] if len(sys.argv) > 1 else "_build/nbval"):
        print(p)
