"""The held-out video split: which frames a run trains on, and which whole videos it never sees.

Held-out evaluation (FID against unseen hearts, memorisation calibration, the
classifier two-sample test) needs videos no model has trained on, so the split
is by video, never by frame. The split is made once, here, when training
starts; the videos it kept aside are recorded in ``run.json`` and every later
reader asks the run folder for them rather than recomputing the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from echolib.data.frames import FrameDataset, holdout_split
from echolib.data.sources import resolve_data
from echolib.errors import ConfigError
from echolib.train.config import TrainConfig
from echolib.train.run_records import fingerprint


@dataclass(frozen=True)
class DataSplit:
    """The frames a run trains on and the whole videos it keeps aside."""

    source: str  # the data as the caller named it: ``phantom``, a folder, a zip, a manifest
    train: FrameDataset
    heldout: FrameDataset | None  # None when ``train.holdout`` is 0 (or there is one video)
    fingerprint: str  # identity of every frame, trained on or held out: a resume must see the same data

    @property
    def frames(self) -> int:
        """Frames in the data, trained on or held out."""
        return len(self.train) + (len(self.heldout) if self.heldout is not None else 0)

    def heldout_videos(self) -> list[str]:
        """The held-out video ids, sorted; empty when every video is trained on."""
        return sorted(set(self.heldout.video_ids)) if self.heldout is not None else []


def split_data(data: str | Path, cfg: TrainConfig, device: torch.device) -> DataSplit:
    """Load ``data`` at ``train.resolution`` and keep ``train.holdout`` of its videos aside.

    The training frames move to ``device`` when ``train.data_on_device`` asks,
    so the loop draws batches without a host copy; the held-out frames stay
    where evaluation wants them. A batch larger than the training frames is
    refused here, before a model is built.
    """
    path = resolve_data(data, size=cfg.resolution)
    full = FrameDataset(path, resolution=cfg.resolution)
    whole = fingerprint(full)
    train_idx, held_idx = holdout_split(full.video_ids, cfg.holdout, cfg.holdout_seed)
    train = full.subset(train_idx) if held_idx else full
    heldout = full.subset(held_idx) if held_idx else None
    if cfg.batch > len(train):
        raise ConfigError(
            f"batch {cfg.batch} is larger than the training set ({len(train)} of {len(full)} frames in "
            f"{path}); use a smaller batch or more data"
        )
    if cfg.data_on_device:
        train = train.to(device)
    return DataSplit(source=str(data), train=train, heldout=heldout, fingerprint=whole)
