"""The downstream utility test on frame sets from disk: which frames are real training, synthetic and real test.

:mod:`echolib.metrics.utility` trains and tests the classifier; this module
decides what it is given. The real test frames are the held-out videos of the
run that made the synthetic set (``--run``, else the run its ``datasheet.json``
names), or the trainer's default split of the real data when there is no run,
so the classifier is tested on hearts neither the generator nor it has seen. The
real training frames are the other videos' frames: what the generator learnt
from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echolib.data.frames import FrameDataset, holdout_split
from echolib.data.labels import phase_labels
from echolib.data.sources import is_phantom, resolve_data
from echolib.errors import ConfigError, DataError
from echolib.metrics import utility
from echolib.paths import shown_path
from echolib.pipeline.synthesize import DATASHEET
from echolib.train.config import TrainConfig
from echolib.train.run_folder import RunFolder, videos_fingerprint

SIZE = utility.SIZE


@dataclass
class UtilitySets:
    """The labelled frames of one utility test, and where their split and labels came from."""

    real_train: utility.Labelled
    synthetic: utility.Labelled
    test: utility.Labelled
    split: str
    real_labels: str
    synthetic_labels: str


def heldout_videos(video_ids: list[str], run: str | Path | None, synthetic: str | Path) -> tuple[list[str], str]:
    """The held-out videos and how they were chosen: ``run``'s, the synthetic set's run's, or the default split."""
    if run is None:
        try:
            settings = json.loads((Path(synthetic) / DATASHEET).read_text()).get("settings", {})
        except (OSError, ValueError):
            settings = {}
        if settings.get("run") and RunFolder(settings["run"]).meta_file.is_file():
            run = settings["run"]
    if run is not None:
        folder = RunFolder(run)
        videos = folder.heldout_videos()
        if not videos:
            raise DataError(f"run {run}: its run.json names no held-out videos, so no real frames are unseen by it")
        return videos, f"held-out videos of run {folder.label}"
    cfg = TrainConfig()
    _, held = holdout_split(video_ids, cfg.holdout, cfg.holdout_seed)
    return sorted({video_ids[i] for i in held}), f"default split (holdout {cfg.holdout}, seed {cfg.holdout_seed})"


def load_sets(real: str | Path, synthetic: str | Path, run: str | Path | None = None) -> UtilitySets:
    """Real frames split by video, the synthetic set, each frame's phase label; at the classifier's size."""
    real_ds = FrameDataset(resolve_data(real, size=SIZE, progress=False), resolution=SIZE)
    videos, split = heldout_videos(real_ds.video_ids, run, synthetic)
    missing = set(videos) - set(real_ds.video_ids)
    if missing:
        raise DataError(f"--real {real}: {len(missing)} of the {len(set(videos))} held-out videos are not in it "
                        f"(first: {min(missing)}); give the data the run was trained on")
    held = set(videos)
    labels, real_source = phase_labels(real_ds)
    test_idx = [i for i, v in enumerate(real_ds.video_ids) if v in held]
    train_idx = [i for i, v in enumerate(real_ds.video_ids) if v not in held]

    def part(index: list[int], name: str) -> utility.Labelled:
        sub = real_ds.subset(index)
        return utility.labelled(sub.images, [labels[i] for i in index], sub.video_ids, name)

    syn_path = Path(synthetic)
    if not syn_path.exists():
        raise DataError(f"--synthetic {synthetic}: no such folder")
    syn_ds = FrameDataset(syn_path, resolution=SIZE)
    syn_labels, syn_source = phase_labels(syn_ds)
    syn = utility.labelled(syn_ds.images, syn_labels, syn_ds.names, "synthetic", synthetic=True)
    return UtilitySets(part(train_idx, "real"), syn, part(test_idx, "real held-out"), split, real_source, syn_source)


def run_utility(real: str | Path, synthetic: str | Path, *, task: str = "phase", run: str | Path | None = None,
                n_train: int | None = None, seed: int = 0,
                recipe: utility.Recipe | None = None) -> tuple[list[dict[str, Any]], UtilitySets]:
    """Records of the classifier trained on real, synthetic and both, tested on the held-out real videos."""
    if task not in utility.TASKS:
        raise ConfigError(f"--task {task!r}: known tasks are {', '.join(utility.TASKS)}")
    if n_train is not None and n_train < 4:
        raise ConfigError(f"--n-train must be at least 4 frames, got {n_train}")
    sets = load_sets(real, synthetic, run)
    real_train, syn = sets.real_train.capped(n_train, seed), sets.synthetic.capped(n_train, seed)
    train_sets = {"real": real_train, "synthetic": syn, "both": utility.combine(real_train, syn, "both")}
    recipe = recipe or utility.Recipe()
    results = utility.phase_utility(train_sets, sets.test, recipe, seed)
    context = {"data": real if is_phantom(str(real)) else shown_path(real), "synthetic": shown_path(synthetic),
               "split": sets.split, "heldout_fingerprint": videos_fingerprint(sets.test.groups),
               "real_labels": sets.real_labels, "synthetic_labels": sets.synthetic_labels}
    return utility.records(results, sets.test, recipe, seed, **context), sets
