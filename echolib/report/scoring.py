"""Scoring runs and reference rows under one protocol: what the comparison chapter and ``evaluate --runs`` share.

A comparison is made against the frames a run never saw. Which those are is
read from the run itself (``run.json``'s held-out videos, through
:class:`~echolib.train.run_folder.RunFolder`), never recomputed from settings a
reader assumes: a run trained with another ``train.holdout_seed`` would
otherwise be scored against frames it trained on. Runs that held out the same
videos share one :class:`~echolib.metrics.protocol.Protocol`, and so do the
reference rows of their table:

* **training frames (a copier)**: frames the generators trained on, of videos
  the feature extractor never saw, scored as if generated: what copying the
  training set would score;
* **the published model**: the study's StyleGAN2-ADA E4 samples;
* **the phantom**, when the data is not the phantom itself.

Each is scored on the same number of images as the runs' samples. Evaluations
are appended to each run's ``metrics.jsonl`` (``source: compare``) and reused
when the protocol and the checkpoint match, so rebuilding the book adds no
duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from echolib.data.frames import FrameDataset, holdout_split
from echolib.data.sources import is_phantom, resolve_data
from echolib.errors import DataError
from echolib.images import to_uint8
from echolib.metrics.inputs import ImageSet, as_image_set
from echolib.metrics.intervals import DEFAULT_REPLICATES
from echolib.metrics.protocol import Protocol, reference_frames
from echolib.metrics.registry import DEFAULT_METRICS
from echolib.models.registry import model_class
from echolib.paths import shown_path
from echolib.progress import progress_bar
from echolib.train.conditions import condition_maps
from echolib.train.config import TrainConfig
from echolib.train.run_folder import RunFolder, find_runs, videos_fingerprint
from echolib.train.run_records import fingerprint, load_run_config
from echolib.train.sampling import load_model

#: order of architectures in tables and figures
ARCH_ORDER = ("stylegan2_ada", "diffusion", "vqgan", "wgan", "medgan", "pix2pix")
SOURCE = "compare"  # the ``source`` of records this module appends to a run's metrics.jsonl


@dataclass(frozen=True)
class Splits:
    """The frames a comparison is made against: what its runs trained on, and the videos they held out."""

    train: FrameDataset
    heldout: FrameDataset
    source: str
    fingerprint: str = ""  # of the whole dataset, as a run folder records it (run.json data_fingerprint)

    @property
    def heldout_fingerprint(self) -> str:
        return videos_fingerprint(self.heldout.video_ids)


@dataclass(frozen=True)
class Frames:
    """A dataset loaded once for a comparison: every frame at one resolution, and its identity."""

    all: FrameDataset
    source: str
    fingerprint: str

    def split(self, heldout_videos: Sequence[str]) -> Splits:
        """Training and held-out frames for a set of held-out videos (all of which must be in the data)."""
        held = set(heldout_videos)
        present = set(self.all.video_ids)
        if missing := held - present:
            raise DataError(f"{self.source}: {len(missing)} of the {len(held)} held-out videos are not in this data "
                            f"(first: {min(missing)})")
        held_idx = [i for i, v in enumerate(self.all.video_ids) if v in held]
        train_idx = [i for i, v in enumerate(self.all.video_ids) if v not in held]
        return Splits(self.all.subset(train_idx), self.all.subset(held_idx), self.source, self.fingerprint)


def load_frames(data: str | Path, resolution: int = 128) -> Frames:
    """Every frame of ``data`` ("phantom", a folder, zip or manifest) at ``resolution``, with its fingerprint."""
    full = FrameDataset(resolve_data(data, size=resolution, progress=False), resolution=resolution)
    return Frames(full, str(data), fingerprint(full))


def evaluation_splits(data: str | Path, resolution: int = 128, holdout: float | None = None,
                      seed: int | None = None) -> Splits:
    """The by-video split a run trained with ``train.holdout``/``train.holdout_seed`` has (default: the trainer's).

    For frames no run exists for yet; a run's own split is :func:`run_splits`.
    """
    defaults = TrainConfig()
    frames = load_frames(data, resolution)
    _, held = holdout_split(frames.all.video_ids, defaults.holdout if holdout is None else holdout,
                            defaults.holdout_seed if seed is None else seed)
    return frames.split(sorted({frames.all.video_ids[i] for i in held}))


def run_heldout_videos(run: RunFolder, frames: Frames) -> list[str]:
    """The videos ``run`` never trained on, as its ``run.json`` records them.

    A ``run.json`` from before the held-out videos were recorded falls back to
    the split its own ``config.yaml`` describes (never a reader's default). A run
    that held out nothing has no unseen frames, and cannot be scored honestly.
    """
    videos = run.heldout_videos()
    if videos is None:
        cfg = load_run_config(run.path).train
        _, held = holdout_split(frames.all.video_ids, cfg.holdout, cfg.holdout_seed)
        videos = sorted({frames.all.video_ids[i] for i in held})
    if not videos:
        raise DataError(f"{run.label}: trained on every video of its data (train.holdout: 0), so none of its frames "
                        "is unseen; retrain it with a held-out share to score it")
    return videos


def trained_on(run: RunFolder, frames: Frames | Splits) -> bool:
    """Whether ``run`` was trained on these frames (its ``run.json``: the same data argument or fingerprint)."""
    meta = run.meta()
    return meta.get("data") == frames.source or meta.get("data_fingerprint") == frames.fingerprint


def comparable_runs(runs: str | Path, frames: Frames,
                    architectures: Sequence[str] | None = None) -> tuple[list[tuple[Splits, list[RunFolder]]],
                                                                         dict[str, str]]:
    """Runs under ``runs`` trained on ``frames``, grouped by the videos they held out; and the ones left out, why.

    Each group becomes one table under one protocol, the largest first. Runs
    of other data, of other architectures than ``architectures``, or that
    cannot be scored (nothing held out) are named in the second value.
    """
    groups: dict[str, tuple[Splits, list[RunFolder]]] = {}
    left_out: dict[str, str] = {}
    for run in sorted(find_runs(runs), key=lambda r: (arch_rank(r.path.parent.name), r.path.name)):
        if architectures is not None and run.path.parent.name not in architectures:
            continue
        if not trained_on(run, frames):
            left_out[run.label] = f"trained on other data ({run.meta().get('data')})"
            continue
        try:
            videos = run_heldout_videos(run, frames)
            key = videos_fingerprint(videos)
            if key not in groups:
                groups[key] = (frames.split(videos), [])
        except DataError as exc:
            left_out[run.label] = str(exc)
            continue
        groups[key][1].append(run)
    return sorted(groups.values(), key=lambda g: -len(g[1])), left_out


def arch_rank(arch: str) -> int:
    return ARCH_ORDER.index(arch) if arch in ARCH_ORDER else len(ARCH_ORDER)


def make_protocol(splits: Splits, n_fake: int, *, extractor: str = "echo", seed: int = 0,
                  metrics: Sequence[str] = DEFAULT_METRICS, replicates: int = DEFAULT_REPLICATES,
                  device: str = "auto") -> Protocol:
    """The protocol of a table: the held-out frames as the real set, the training frames as the memorisation bank."""
    real = as_image_set(splits.heldout, label=f"held-out videos of {splits.source}")
    bank = as_image_set(splits.train, label=f"training frames of {splits.source}")
    description = (f"{len(splits.heldout)} held-out frames of {len(set(splits.heldout.video_ids))} videos of "
                   f"{Path(splits.source).name}, {splits.heldout.resolution} px")
    return Protocol(real, bank, n_fake, extractor, seed, tuple(metrics), replicates, description,
                    {"device": device})


# -- runs -------------------------------------------------------------------------------------------
def run_images(run: RunFolder, n: int, *, size: int = 128, seed: int = 0, device: str = "auto", batch: int = 64,
               conditions_from: FrameDataset | None = None, checkpoint: Path | None = None) -> ImageSet:
    """``n`` samples of the run's latest EMA generator (or ``checkpoint``'s) as an image set at ``size`` px.

    Samples of a run trained at another resolution are resized (area when
    shrinking, bilinear when enlarging). An image-conditioned model (Pix2Pix)
    translates the conditions of ``conditions_from``'s frames in turn (again
    from the first when ``n`` is larger), and each sample carries the video id
    of the frame it translated, so the classifier test keeps a sample and its
    source video in one fold. Other samples are their own group.
    """
    model, _ = load_model(run.path if checkpoint is None else checkpoint, device=device)
    conditions, sources = None, None
    if model.image_conditioned and conditions_from is not None and len(conditions_from):
        at_size = frames_at(conditions_from, model.resolution)
        conditions = condition_maps(model, at_size).to(model.device)
        sources = at_size.video_ids
    g = torch.Generator(device=model.device).manual_seed(seed)
    chunks = []
    for start in range(0, n, batch):
        m = min(batch, n - start)
        which = torch.arange(start, start + m)
        x = (model.sample(m, g) if conditions is None
             else model.sample(m, g, condition=conditions[which % len(conditions)])).float()
        if x.shape[-1] != size:
            mode = "area" if x.shape[-1] > size else "bilinear"
            x = torch.nn.functional.interpolate(x, size=(size, size), mode=mode).clamp(-1, 1)
        chunks.append(to_uint8(x).cpu())
    ids = [f"sample{i}" for i in range(n)] if sources is None else [sources[i % len(sources)] for i in range(n)]
    return ImageSet(torch.cat(chunks), ids, run.label, cacheable=False)


def frames_at(frames: FrameDataset, resolution: int) -> FrameDataset:
    """The same frames loaded from their source at ``resolution``, as a run trained at that size saw them.

    Conditions (edges, masks) are computed at the model's own size: edges
    found at 128 px and shrunk are not the edges a 64 px model learned from.
    """
    if frames.resolution == resolution:
        return frames
    if frames.source is None:
        raise DataError(f"frames without a source cannot be reloaded at {resolution} px")
    full = FrameDataset(frames.source, resolution=resolution)
    index = {name: i for i, name in enumerate(full.names)}
    missing = [name for name in frames.names if name not in index]
    if missing:
        raise DataError(f"{frames.source}: {len(missing)} frames not found at {resolution} px (first: {missing[0]})")
    return full.subset([index[name] for name in frames.names])


def is_image_conditioned(run: RunFolder) -> bool:
    """Whether the run's architecture translates maps of frames (from its run.json; nothing loaded)."""
    arch = run.arch
    if not arch:
        return False
    return model_class(arch).image_conditioned


def _context(run: RunFolder, protocol: Protocol) -> dict[str, Any]:
    context: dict[str, Any] = {"source": SOURCE, "data": protocol.real.label, "kimg": run.latest_kimg()}
    if is_image_conditioned(run):
        context["conditions"] = "held-out frames"
    return context


def earlier_evaluation(run: RunFolder, protocol: Protocol) -> list[dict[str, Any]] | None:
    """The records of this protocol at the run's latest checkpoint, or None (then there is nothing to reuse).

    Lets a caller skip drawing samples (minutes for a diffusion model) that
    :func:`evaluate_run` would not use. Only a record of the same protocol id
    (real set, sizes, extractor weights, seed, metrics) counts.
    """
    context = _context(run, protocol)
    earlier: dict[str, dict[str, Any]] = {}
    for r in run.records():
        if r.get("protocol") == protocol.id and all(r.get(k) == v for k, v in context.items() if k != "data"):
            earlier[r["metric"]] = r  # the latest of each metric (one evaluation's records are appended together)
    if not set(protocol.metrics) <= set(earlier):
        return None
    return [{**earlier[m], "row": run.label} for m in protocol.metrics]


def evaluate_run(run: RunFolder, images: ImageSet, protocol: Protocol) -> list[dict[str, Any]]:
    """Records of a run's samples under ``protocol``, appended to its ``metrics.jsonl`` (or reused from there)."""
    earlier = earlier_evaluation(run, protocol)
    if earlier is not None:
        return earlier
    context = _context(run, protocol)
    records = protocol.evaluate(images, run.label, run=run.label, **context)
    run.append_records(records)
    return records


def score_runs(runs: Sequence[RunFolder], protocol: Protocol, splits: Splits, *, device: str = "auto",
               progress: bool = False, draw_all: bool = False) -> tuple[list[dict[str, Any]], dict[str, ImageSet]]:
    """Every run's records under ``protocol``, and the samples drawn for them.

    Samples are drawn only for runs without an earlier record of this protocol
    at their latest checkpoint, unless ``draw_all`` (a chapter that shows every
    run's samples needs them anyway).
    """
    records, samples = [], {}
    for run in progress_bar(runs, enabled=progress, desc="runs", unit="run"):
        recs = earlier_evaluation(run, protocol)
        if draw_all or recs is None:
            samples[run.label] = run_images(run, protocol.n_fake, size=protocol.resolution, seed=protocol.seed,
                                            device=device, conditions_from=splits.heldout)
            recs = evaluate_run(run, samples[run.label], protocol)
        arch, cfg = run.path.parent.name, run.path.name
        records += label_records(recs, "ours", arch, cfg, row=run.label)
    return records, samples


# -- reference rows ------------------------------------------------------------------------------------
REFERENCE_ROWS = {  # name: (architecture column, configuration column)
    "training frames": ("data", "training frames (a copier)"),
    "published model": ("stylegan2_ada (published)", "study E4 samples"),
    "phantom": ("phantom", "built-in phantom"),
}


def reference_sets(splits: Splits, protocol: Protocol,
                   study_samples: str | Path | None = None) -> tuple[dict[str, ImageSet], dict[str, str]]:
    """The image sets of the reference rows at the protocol's size, and the rows left out with the reason.

    * the training frames of videos the extractor never trained on (a copier);
    * the study's published samples, when the folder exists;
    * the built-in phantom, when the comparison is on other data (on the
      phantom it *is* the data, and the copier row already says it).
    """
    res, n = protocol.resolution, protocol.n_fake
    sets: dict[str, ImageSet] = {}
    left_out: dict[str, str] = {}
    unseen = reference_frames(protocol.bank, protocol.extractor)
    if len(unseen) >= n:
        sets["training frames"] = unseen
    else:
        left_out["training frames"] = (f"only {len(unseen)} training frames are of videos the {protocol.extractor!r} "
                                       f"extractor never saw; the rows are scored on {n}")
    if study_samples is not None and Path(study_samples).is_dir():
        sets["published model"] = as_image_set(FrameDataset(study_samples, resolution=res), label="published model")
    elif study_samples is not None:
        left_out["published model"] = f"the study's samples are not at {shown_path(study_samples)}"
    if not is_phantom(splits.source):
        phantom = FrameDataset(resolve_data("phantom", size=res, progress=False), resolution=res, limit=n)
        sets["phantom"] = as_image_set(phantom, label="phantom")
    for name, images in list(sets.items()):
        if len(images) < n:
            left_out[name] = f"{len(images)} images, the rows are scored on {n}"
            del sets[name]
    return {name: protocol.sized(images, name) for name, images in sets.items()}, left_out


def reference_records(splits: Splits, protocol: Protocol, study_samples: str | Path | None = None
                      ) -> tuple[list[dict[str, Any]], dict[str, ImageSet], dict[str, str]]:
    """Records of every reference row under ``protocol``, the image sets behind them, and the rows left out."""
    sets, left_out = reference_sets(splits, protocol, study_samples)
    records: list[dict[str, Any]] = []
    for name, images in sets.items():
        recs = protocol.evaluate(images, f"reference:{name}", source="reference")
        records += label_records(recs, "reference", *REFERENCE_ROWS[name], row=f"reference:{name}")
    return records, sets, left_out


def label_records(records: Sequence[dict[str, Any]], kind: str, architecture: str, configuration: str,
                  row: str | None = None) -> list[dict]:
    """Records with the columns a table groups by: ``kind`` (ours, reference), architecture, configuration, row."""
    return [{**r, "kind": kind, "architecture": architecture, "configuration": configuration,
             "row": row or f"{kind}:{architecture}/{configuration}"} for r in records]
