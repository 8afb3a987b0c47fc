"""A run folder, the unit of record: every file name of one lives here, and everyone else asks.

A run folder ``runs/<arch>/<config>`` holds::

    config.yaml     the resolved configuration it was trained with
    run.json        meta: data and its fingerprint, the held-out videos, device, versions, model facts,
                    and the checkpoints a resume skipped because they did not load
    log.csv         one row per tick (losses, speed)
    metrics.jsonl   metric records, appended (training-time and later evaluations)
    samples/        grid-<nimg>.png and a model's previews (<kind>-<nimg>.png)
    checkpoints/    ckpt-<nimg>.pt (see :mod:`echolib.train.checkpoint`) and best.pt; a checkpoint
                    that did not load when resuming is kept aside as ckpt-<nimg>.pt.skipped
    tb/             TensorBoard event files
    done.json       written when the run reached its length

The trainer writes these files and evaluation, sampling, the comparison and the
book read them, all through :class:`RunFolder`. What a run was *not* trained on
is read from its own ``run.json`` (the held-out videos), never recomputed from
settings a reader assumes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echolib.io import atomic_write_text, read_jsonl
from echolib.metrics.records import append_records
from echolib.train import checkpoint as ckpt


def videos_fingerprint(videos: Iterable[str]) -> str:
    """Identity of a set of video ids (order and repeats ignored): names a held-out set without listing it."""
    h = hashlib.sha256()
    for v in sorted(set(videos)):
        h.update(v.encode() + b"\0")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class RunFolder:
    """One run folder on disk; cheap to make, reads files only when asked."""

    path: Path

    CONFIG = "config.yaml"
    META = "run.json"
    LOG = "log.csv"
    METRICS = "metrics.jsonl"
    DONE = "done.json"
    SAMPLES = "samples"
    CHECKPOINTS = "checkpoints"
    BEST = "best.pt"
    TENSORBOARD = "tb"
    #: suffix of a checkpoint set aside by a resume (no longer listed, resumed from, or counted by pruning)
    SET_ASIDE = ".skipped"
    #: ``run.json`` key: the checkpoints resumes skipped, oldest first
    SKIPPED_CHECKPOINTS = "skipped_checkpoints"

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    def __fspath__(self) -> str:
        return str(self.path)

    # -- files --------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def meta_file(self) -> Path:
        return self.path / self.META

    @property
    def log_file(self) -> Path:
        return self.path / self.LOG

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def done_file(self) -> Path:
        return self.path / self.DONE

    @property
    def samples_dir(self) -> Path:
        return self.path / self.SAMPLES

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints_dir / self.BEST

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / self.TENSORBOARD

    def sample_file(self, kind: str, nimg: int) -> Path:
        """``samples/<kind>-<nimg>.png``: the grid (``kind="grid"``) or a model's preview at ``nimg`` images."""
        return self.samples_dir / f"{kind}-{nimg:09d}.png"

    # -- identity -------------------------------------------------------------
    @property
    def label(self) -> str:
        """``<arch>/<config>``, as tables and records name a run."""
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def arch(self) -> str | None:
        """The architecture recorded in ``run.json`` (None before the first training call)."""
        return self.meta().get("arch")

    # -- meta ---------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """``run.json``: empty for a folder written before its first training call."""
        return json.loads(self.meta_file.read_text()) if self.meta_file.exists() else {}

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        """Write ``run.json`` atomically, adding the held-out set's fingerprint to its list of videos.

        The list of skipped checkpoints is a history: entries ``meta`` brings are
        appended to those already recorded, and rewriting the meta at the next
        resume keeps them.
        """
        meta = dict(meta)
        if "heldout_videos" in meta:
            meta["heldout_fingerprint"] = videos_fingerprint(meta["heldout_videos"])
        history = self.skipped_checkpoints()
        history += [e for e in meta.pop(self.SKIPPED_CHECKPOINTS, []) if e not in history]
        if history:
            meta[self.SKIPPED_CHECKPOINTS] = history
        atomic_write_text(self.meta_file, json.dumps(meta, indent=2))

    def skipped_checkpoints(self) -> list[dict[str, Any]]:
        """Checkpoints resumes passed over (``file``, ``reason``, ``resumed_from``, ``set_aside_as``, ``time``)."""
        return list(self.meta().get(self.SKIPPED_CHECKPOINTS, []))

    def heldout_videos(self) -> list[str] | None:
        """The videos the trainer kept aside (never trained on); None when ``run.json`` does not say.

        An empty list means the run trained on every video of its data: nothing of
        that data is unseen by it.
        """
        videos = self.meta().get("heldout_videos")
        return None if videos is None else list(videos)

    # -- checkpoints ----------------------------------------------------------
    def checkpoints(self) -> list[Path]:
        """Regular checkpoints, oldest first."""
        return ckpt.list_checkpoints(self.checkpoints_dir)

    def checkpoint_file(self, nimg: int) -> Path:
        return self.checkpoints_dir / ckpt.checkpoint_name(nimg)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def latest_kimg(self) -> float | None:
        """Training length of the newest checkpoint in kimg; None without one."""
        latest = self.latest_checkpoint()
        return None if latest is None else ckpt.checkpoint_kimg(latest)

    def has_checkpoints(self) -> bool:
        return bool(self.checkpoints())

    def set_aside(self, checkpoint: Path) -> Path:
        """Rename a checkpoint that did not load so it is no longer the newest.

        Left in place it would be resumed from (and refused) again, report a
        length the run never reached, and be kept by pruning while good,
        newer-trained checkpoints of a lower number were deleted. Returns the
        new path; the bytes are kept for whoever wants to inspect them.
        """
        target = checkpoint.with_name(checkpoint.name + self.SET_ASIDE)
        checkpoint.replace(target)
        return target

    # -- records --------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """Every metric record of the run, oldest first (a torn last line skipped)."""
        return read_jsonl(self.metrics_file)

    def append_records(self, records: Sequence[Mapping[str, Any]]) -> None:
        append_records(self.metrics_file, records)

    def done(self) -> dict[str, Any] | None:
        """``done.json`` (the length reached) or None while the run is unfinished."""
        if not self.done_file.exists():
            return None
        try:
            return json.loads(self.done_file.read_text())
        except ValueError:
            return None

    def is_complete(self, kimg: float) -> bool:
        """Whether the run reached ``kimg``."""
        done = self.done()
        try:
            return done is not None and float(done["kimg"]) >= kimg - 1e-9
        except (KeyError, TypeError, ValueError):
            return False

    def sample_grids(self, kind: str = "grid") -> list[tuple[float, Path]]:
        """``[(kimg, png), ...]`` in training order, of the grids (or a model's previews named ``kind``)."""
        if not self.samples_dir.is_dir():
            return []
        pattern = re.compile(rf"^{re.escape(kind)}-(\d{{9}})\.png$")
        found = sorted((int(m.group(1)), p) for p in self.samples_dir.iterdir() if (m := pattern.match(p.name)))
        return [(n / 1000.0, p) for n, p in found]


def find_runs(runs: str | Path) -> list[RunFolder]:
    """Run folders ``<runs>/<arch>/<config>`` that hold at least one checkpoint."""
    return [RunFolder(p.parent) for p in sorted(Path(runs).glob(f"*/*/{RunFolder.CHECKPOINTS}"))
            if RunFolder(p.parent).has_checkpoints()]
