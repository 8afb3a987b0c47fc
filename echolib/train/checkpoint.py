"""Checkpoints: plain tensors and metadata, written atomically, loaded without pickle code.

A checkpoint holds everything needed to continue bit-for-bit: networks, their
EMA copies, optimizer states, model extras (e.g. ADA's p), the trainer's clock
and RNG states. Loading always uses ``torch.load(weights_only=True)``, which
refuses anything but tensors and plain containers, so a checkpoint from an
untrusted lab cannot execute code.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from echolib import __version__
from echolib.errors import CheckpointError, CheckpointMismatchError, CheckpointUnreadableError
from echolib.io import atomic_torch_save, fsync_dir

FORMAT = "echolib.checkpoint/1"
_NAME = re.compile(r"^ckpt-(\d{9})\.pt$")


def checkpoint_name(nimg: int) -> str:
    return f"ckpt-{nimg:09d}.pt"


def checkpoint_kimg(path: Path) -> float:
    """Training length of a regular checkpoint, from its name (``ckpt-000120000.pt`` -> 120.0)."""
    m = _NAME.match(Path(path).name)
    if m is None:
        raise CheckpointError(f"{path}: not a regular checkpoint name (expected ckpt-<nimg>.pt)")
    return int(m.group(1)) / 1000.0


def list_checkpoints(folder: Path) -> list[Path]:
    """Regular checkpoints in a run's ``checkpoints/`` folder, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save(state: Mapping[str, Any], path: Path) -> None:
    payload = dict(state)
    payload.setdefault("format", FORMAT)
    payload.setdefault("echolib_version", __version__)
    atomic_torch_save(payload, path)


def load(path: Path, *, arch: str | None = None, resolution: int | None = None, map_location: Any = "cpu") -> dict:
    """Load and validate a checkpoint; every failure is a CheckpointError naming the file.

    A file that cannot be used at all raises :class:`CheckpointUnreadableError`;
    a sound checkpoint for another ``arch`` or ``resolution`` raises
    :class:`CheckpointMismatchError`, so callers choose by type, not by message.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointUnreadableError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointUnreadableError(
            f"checkpoint {path} refused: it contains objects other than tensors and plain data "
            f"(weights_only loading; nothing was executed). Details: {str(exc).splitlines()[0]}"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointUnreadableError(
            f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointUnreadableError(f"{path} is not an echolib checkpoint (expected format {FORMAT!r})")
    if arch is not None and data.get("arch") != arch:
        raise CheckpointMismatchError(f"checkpoint {path} is for architecture {data.get('arch')!r}, not {arch!r}")
    if resolution is not None and data.get("resolution") != resolution:
        raise CheckpointMismatchError(
            f"checkpoint {path} is for resolution {data.get('resolution')}, not {resolution}"
        )
    return data


class SkippedCheckpoint(NamedTuple):
    """A checkpoint a resume passed over, and why (the refusal's message, on one line)."""

    path: Path
    reason: str


class LatestCheckpoint(NamedTuple):
    """The newest checkpoint that loads, its contents, and the newer ones that did not load."""

    path: Path
    state: dict
    skipped: list[SkippedCheckpoint]


def load_latest(folder: Path, **kwargs: Any) -> LatestCheckpoint | None:
    """Newest checkpoint that loads; None in a folder without checkpoints.

    An unreadable newest one (disk trouble, a kill mid-copy, a file holding code)
    is passed over for the previous one and listed in ``skipped``, for the caller
    to report. A checkpoint of another architecture or resolution is an error
    (:class:`CheckpointMismatchError`): the folder belongs to another run. When
    none loads, the error lists why each was refused.
    """
    skipped: list[SkippedCheckpoint] = []
    for path in reversed(list_checkpoints(folder)):
        try:
            return LatestCheckpoint(path, load(path, **kwargs), skipped)
        except CheckpointUnreadableError as exc:
            skipped.append(SkippedCheckpoint(path, " ".join(str(exc).split())))
    if skipped:
        raise CheckpointUnreadableError("no loadable checkpoint: " + "; ".join(s.reason for s in skipped))
    return None


def prune(folder: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` regular checkpoints (best.pt is never touched)."""
    ckpts = list_checkpoints(folder)
    for old in ckpts[: max(len(ckpts) - max(keep_last, 1), 0)]:
        old.unlink(missing_ok=True)
    fsync_dir(Path(folder))


def copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    tmp.replace(dst)
    fsync_dir(dst.parent)


def load_state_strict(module: torch.nn.Module, state: Mapping[str, Any], what: str, path: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[:4]
        raise CheckpointMismatchError(f"checkpoint {path}: {what} does not match this model: {' '.join(first)}") from exc
