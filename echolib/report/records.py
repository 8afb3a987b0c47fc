"""Reading run records (run.json, log.csv, metrics.jsonl, sample grids) into tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from echolib.images import read_gray
from echolib.io import read_jsonl


def read_run_meta(run: str | Path) -> dict:
    """``run.json`` of a run: data, device, versions and, under ``model``, what the model decided at run time.

    Empty for a run folder written before its first training call.
    """
    path = Path(run) / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def read_log(run: str | Path) -> pd.DataFrame:
    """``log.csv`` of a run (one row per tick); empty frame if the run has not ticked yet."""
    path = Path(run) / "log.csv"
    if not path.exists():
        return pd.DataFrame()
    return pd.read_csv(path)


def read_metrics(run: str | Path) -> pd.DataFrame:
    """Metric records of a run (``metrics.jsonl``) as a table."""
    records = read_jsonl(Path(run) / "metrics.jsonl")
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def sample_grids(run: str | Path, kind: str = "grid") -> list[tuple[float, np.ndarray]]:
    """``[(kimg, grid image), ...]`` in training order; ``kind`` names a model's previews instead (``recon``)."""
    folder = Path(run) / "samples"
    if not folder.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(kind)}-(\d{{9}})\.png$")
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name)))
    return [(n / 1000.0, read_gray(p)) for n, p in found]
