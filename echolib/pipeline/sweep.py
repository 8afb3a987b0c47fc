"""Papermill sweeps: one executed notebook per configuration, resumable, failure-tolerant.

``python -m echolib sweep --notebook notebooks/stylegan2_ada.py --configs E1,E2 -p kimg 500``
executes the notebook once per configuration into that configuration's run
folder (``runs/<arch>/<config>/notebook.ipynb``), next to the run records the
notebook's training produced. A configuration whose notebook finished with the
same parameters is skipped on the next call; one asked for with other
parameters (a longer ``kimg``, say) or left unfinished runs again (training
resumes from its checkpoint); a failing one is recorded and the sweep goes on.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echolib.errors import ConfigError
from echolib.io import atomic_write_text
from echolib.models.registry import architecture_names, config_names
from echolib.pipeline.notebooks import check_parameters, execute, parameters


@dataclass
class Outcome:
    config: str
    status: str  # done | skipped | failed
    seconds: float
    notebook: Path
    error: str = ""


def sweep(
    notebook: str | Path,
    configs: list[str],
    params: dict[str, Any] | None = None,
    *,
    runs: str | Path = "runs",
    progress: bool = True,
) -> list[Outcome]:
    notebook = Path(notebook)
    arch = notebook.stem
    params = dict(params or {})
    if "config" in params:
        raise ConfigError("pass configurations with --configs, not -p config")
    declared = parameters(notebook)
    if "config" not in declared:
        raise ConfigError(f"notebook {notebook.name} has no 'config' parameter, so it cannot be swept")
    _check_configs(arch, configs)
    runs = Path(runs).resolve()
    if "runs" in params and Path(str(params["runs"])).resolve() != runs:
        raise ConfigError(f"-p runs {params['runs']} and --runs {runs} disagree; give the runs folder with --runs")
    common = dict(params)
    if "runs" in declared:
        common["runs"] = str(runs)
    for c in configs:  # every parameter set is validated before the first execution starts
        check_parameters(notebook, {**common, "config": c})
    outcomes = []
    for c in configs:
        folder = runs / arch / c
        record = folder / "sweep.json"
        out_nb = folder / "notebook.ipynb"
        wanted = {**common, "config": c}
        if record.exists() and out_nb.exists():
            done = json.loads(record.read_text())
            if done.get("status") == "done" and done.get("params") == json.loads(json.dumps(wanted)):
                outcomes.append(Outcome(c, "skipped", 0.0, out_nb))
                continue  # other parameters (say a larger kimg) run the notebook again: its run resumes
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        try:
            execute(notebook, out_nb, wanted, progress=progress)
            status, error = "done", ""
        except Exception as exc:  # noqa: BLE001 -- one failing configuration must not stop the sweep
            status, error = "failed", _short_error(exc)
        seconds = time.perf_counter() - t0
        atomic_write_text(record, json.dumps({"status": status, "error": error, "seconds": round(seconds, 1),
                                              "params": wanted}, indent=2))
        outcomes.append(Outcome(c, status, seconds, out_nb, error))
    return outcomes


def _check_configs(arch: str, configs: list[str]) -> None:
    if not configs:
        raise ConfigError("--configs is empty; give e.g. --configs E1,E2")
    if arch in architecture_names():
        valid = config_names(arch)
        bad = [c for c in configs if c not in valid]
        if bad:
            raise ConfigError(f"unknown config(s) {', '.join(bad)} for {arch}; choose from {', '.join(valid)}")


def _short_error(exc: Exception) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    tail = lines[-3:] if lines else traceback.format_exception_only(type(exc), exc)
    return f"{type(exc).__name__}: " + " | ".join(s.strip() for s in tail)[:500]
