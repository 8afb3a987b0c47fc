"""Run folders as the unit of record: create-or-resume, find, and read them back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from echolib.config import merge
from echolib.data.frames import FrameDataset
from echolib.data.sources import resolve_data
from echolib.train.loop import train
from echolib.train.run_config import load_config
from echolib.train.run_folder import RunFolder
from echolib.train.run_records import check_run_folder, fingerprint


def run_dir(runs: str | Path, arch: str, config: str) -> Path:
    return Path(runs) / arch / Path(config).stem


def is_complete(run: Path, kimg: float) -> bool:
    return RunFolder(run).is_complete(kimg)


def ensure_run(
    arch: str,
    config: str = "smoke",
    data: str | Path = "phantom",
    runs: str | Path = "runs",
    *,
    kimg: float | None = None,
    device: str = "auto",
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Train ``arch``/``config`` into ``runs/arch/config`` unless it is already complete.

    Notebooks call this: re-executing a notebook (or building the book twice)
    reuses finished runs and resumes unfinished ones instead of starting over.
    """
    over = dict(overrides or {})
    if seed is not None:
        over = merge(over, {"train": {"seed": int(seed)}})
    run = load_config(arch, config, over or None)
    if kimg is not None:
        run.train.kimg = float(kimg)
    out = run_dir(runs, arch, config)
    if is_complete(out, run.train.kimg):
        _check_reuse(out, run, data)
        return out
    return train(run, data, out, device=device, progress=progress)


def _check_reuse(out: Path, run, data: str | Path) -> None:
    """A finished run is reused only for the configuration and data it was trained with.

    The trainer refuses a mismatch when it resumes; a finished run never reaches
    the trainer, so without this a book built on real frames would quietly score
    the runs an earlier build trained on the phantom. Named data (``phantom``, a
    path) that matches the run's record is trusted; otherwise the frames are
    loaded and compared by fingerprint, as the trainer does.
    """
    meta = RunFolder(out).meta()
    if meta.get("data") == str(data) and meta.get("data_fingerprint"):
        check_run_folder(out, run, meta["data_fingerprint"])
        return
    size = run.train.resolution
    check_run_folder(out, run, fingerprint(FrameDataset(resolve_data(data, size=size), resolution=size)))
