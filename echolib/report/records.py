"""Reading run records (run.json, log.csv, metrics.jsonl, sample grids) into tables."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from echolib.images import read_gray
from echolib.train.run_folder import RunFolder


def read_run_meta(run: str | Path) -> dict:
    """``run.json`` of a run: data, device, versions and, under ``model``, what the model decided at run time.

    Empty for a run folder written before its first training call.
    """
    return RunFolder(run).meta()


def read_log(run: str | Path) -> pd.DataFrame:
    """``log.csv`` of a run (one row per tick); empty frame if the run has not ticked yet."""
    path = RunFolder(run).log_file
    if not path.exists():
        return pd.DataFrame()
    return pd.read_csv(path)


def read_metrics(run: str | Path) -> pd.DataFrame:
    """Metric records of a run (``metrics.jsonl``) as a table."""
    records = RunFolder(run).records()
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def sample_grids(run: str | Path, kind: str = "grid") -> list[tuple[float, np.ndarray]]:
    """``[(kimg, grid image), ...]`` in training order; ``kind`` names a model's previews instead (``recon``)."""
    return [(kimg, read_gray(p)) for kimg, p in RunFolder(run).sample_grids(kind)]


def run_summary(runs: str | Path) -> list[dict]:
    """One row per run folder under ``runs`` (``<arch>/<config>``): its label, whether it finished, its config's sha256."""
    rows = []
    for config in sorted(Path(runs).glob(f"*/*/{RunFolder.CONFIG}")):
        run = RunFolder(config.parent)
        rows.append({"run": run.label, "complete": run.done() is not None,
                     "config_sha256": hashlib.sha256(config.read_bytes()).hexdigest()[:16]})
    return rows
