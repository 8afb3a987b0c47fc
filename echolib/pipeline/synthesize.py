"""A synthetic dataset as a product: N samples that passed a privacy filter, their manifest, and a datasheet.

The study's end product was a dataset of 10,000 generated frames, meant to be
shared where real echoes cannot be. Before such a set leaves the lab two
questions need answers that travel with it: does it leak patients, and what
was it made from and scored against? :func:`synthesize` makes the set so that
both are answered in the folder itself:

* it draws from the run's EMA generator in seeded batches and keeps drawing
  until ``n`` samples passed; with ``privacy_filter`` a sample fails when it is
  at or below the memorisation threshold (:mod:`echolib.metrics.memorization`,
  calibrated on the run's held-out videos) in the feature space *or* in pixel
  space; without it every sample passes and the manifest still says which
  would have been flagged;
* ``manifest.csv`` lists every draw (passed or not): its file, the seed of its
  batch and its place in it, its condition (a phase-conditioned model's label),
  its nearest-training distances in both spaces, whether it was flagged and
  whether it passed;
* ``datasheet.json`` and ``README.md`` say what the set is: model, run,
  checkpoint and its sha256, sampler options, seed, the filter's thresholds and
  percentile, how many were drawn and rejected next to how many frames of unseen
  patients the same filter rejects, the evaluation records of the kept set
  against the held-out videos (FID, KID, precision, recall, C2ST, memorisation,
  with intervals), the licence terms that follow from EchoNet-Dynamic's research
  use agreement, and what the set must not be used for.

A folder is written by one set of settings: a rerun with the same settings
continues it (to a larger ``n`` as well), other settings are refused unless
``overwrite``, and a folder holding files this module did not write is never
touched. Every file is written atomically; the manifest is rewritten after each
batch, so a killed run loses at most the batch it was drawing.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from echolib import __version__
from echolib.data.manifest import MANIFEST, PASSED, passed
from echolib.data.sources import is_phantom
from echolib.devices import resolve_device
from echolib.errors import ConfigError, DataError, OutputError
from echolib.images import read_gray, to_uint8, write_gray
from echolib.io import atomic_write_text
from echolib.metrics import memorization as mem
from echolib.metrics.evaluate import FeatureCache
from echolib.metrics.features import file_sha256
from echolib.metrics.inputs import ImageSet, as_image_set
from echolib.metrics.intervals import DEFAULT_REPLICATES, proportion_interval
from echolib.paths import shown_path
from echolib.progress import progress_bar
from echolib.report import scoring
from echolib.report.privacy import closest_pairs, draw_distances
from echolib.train import checkpoint as ckpt
from echolib.train.run_folder import RunFolder, videos_fingerprint
from echolib.train.sampling import find_checkpoint, load_model

DATASHEET = "datasheet.json"
README = "README.md"
PREFIX = "syn_"
COLUMNS = ("file", "draw", "seed", "position", "condition", "nn_distance", "nn_distance_pixel", "flagged", PASSED)
#: what the datasheet scores the kept set with, against the run's held-out videos
EVAL_METRICS = ("fid", "kid", "precision", "recall", "c2st_auc", "memorized_fraction", "memorized_fraction_pixel")
CALIBRATION_SEED = 0  # the held-out halves of the filter; the evaluation's memorisation records use the same
VERSION = "echolib.synthesize/1"


@dataclass(frozen=True)
class Settings:
    """Everything that decides which images a folder holds: a rerun continues a folder only with the same."""

    run: str  # the run folder, resolved
    checkpoint: str  # its file name
    checkpoint_sha256: str
    seed: int
    batch: int
    options: dict[str, Any]
    privacy_filter: bool
    percentile: float
    extractor: str
    conditions: list[str] | None  # labels drawn in turn; None: the model's own (its training frequencies), or none
    data: str

    def differences(self, other: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        mine = asdict(self)
        return {k: (other.get(k), v) for k, v in mine.items() if _plain(other.get(k)) != _plain(v)}


def batch_seed(seed: int, batch: int) -> int:
    """The seed of batch ``batch``: one per (seed, batch), independent of how many batches came before."""
    return int(np.random.SeedSequence([int(seed), int(batch)]).generate_state(1)[0])


# -- the filter -------------------------------------------------------------------------------------------
@dataclass
class PrivacyFilter:
    """Nearest-training distances in features and pixels, and the thresholds set on the run's held-out videos."""

    features: mem.Calibration
    pixel: mem.Calibration
    encode: Any  # FeatureCache
    bank_features: torch.Tensor
    bank_maps: torch.Tensor

    def distances(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features, pixel)`` nearest-training distance of each uint8 image."""
        feats = self.encode(ImageSet(images, [f"s{i}" for i in range(len(images))], "draws", cacheable=False))
        d_feat, _ = mem.nearest(feats.float(), self.bank_features)
        d_pix, _ = mem.nearest(mem.pixel_maps(images), self.bank_maps, shift=mem.PIXEL_SHIFT)
        return d_feat, d_pix

    def nearest(self, images: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per space (``features``, ``pixel``): each uint8 image's nearest-training distance and that frame's index."""
        feats = self.encode(ImageSet(images, [f"s{i}" for i in range(len(images))], "draws", cacheable=False))
        return {"features": mem.nearest(feats.float(), self.bank_features),
                "pixel": mem.nearest(mem.pixel_maps(images), self.bank_maps, shift=mem.PIXEL_SHIFT)}

    def calibration(self, space: str) -> mem.Calibration:
        return {"features": self.features, "pixel": self.pixel}[space]

    def flags(self, d_feat: torch.Tensor, d_pix: torch.Tensor) -> torch.Tensor:
        return (d_feat <= self.features.threshold) | (d_pix <= self.pixel.threshold)

    def heldout_rate(self) -> tuple[float, list[float]]:
        """Share of the unseen patients' check frames the filter rejects (either space), with its interval."""
        union = (self.features.check_distances <= self.features.threshold) | \
            (self.pixel.check_distances <= self.pixel.threshold)
        flags = union.numpy()
        return float(flags.mean()), list(proportion_interval(flags, self.features.check_videos))

    def summary(self) -> dict[str, Any]:
        rate, interval = self.heldout_rate()
        return {"definition": mem.DEFINITION, "percentile": self.features.percentile,
                "calibration": self.features.method, "calibration_seed": self.features.seed,
                "rule": "rejected when at or below the threshold in either space",
                "spaces": {"features": self.features.fields(), "pixel": self.pixel.fields()},
                "heldout_rejection_rate": rate, "heldout_rejection_interval": interval}


def make_filter(splits: Any, extractor: str, percentile: float, device: str) -> PrivacyFilter:
    """Calibrate both spaces on the held-out frames of ``splits`` (a run's :class:`~echolib.report.scoring.Splits`)."""
    encode = FeatureCache(extractor, resolve_device(device))
    bank, held = as_image_set(splits.train, label="training frames"), as_image_set(splits.heldout, label="held-out")
    f_bank, f_held = encode(bank).float(), encode(held).float()
    m_bank, m_held = mem.pixel_maps(bank.images), mem.pixel_maps(held.images)
    features = mem.calibrate(f_bank, bank.video_ids, f_held, held.video_ids, percentile=percentile,
                             seed=CALIBRATION_SEED, space="features")
    pixel = mem.calibrate(m_bank, bank.video_ids, m_held, held.video_ids, percentile=percentile,
                          seed=CALIBRATION_SEED, space=mem.PIXEL_SPACE, shift=mem.PIXEL_SHIFT)
    return PrivacyFilter(features, pixel, encode, f_bank, m_bank)


def reopen_filter(out: str | Path, device: str = "auto") -> tuple[PrivacyFilter, Any]:
    """The privacy filter of a synthesized folder, calibrated again as :func:`synthesize` did, and the run's frames.

    Same data, held-out videos, extractor and percentile as the datasheet names,
    so the same thresholds; returns ``(filter, splits)`` where ``splits`` holds
    the run's training and held-out frames at the model's resolution.
    """
    sheet = _read_datasheet(Path(out))
    if sheet is None:
        raise DataError(f"{out}: no readable {DATASHEET}; not a folder written by synthesize")
    settings = sheet["settings"]
    folder = RunFolder(settings["run"])
    if not folder.meta_file.is_file():
        raise DataError(f"{out}: its run {sheet['model']['run']} is not on this machine; the filter needs its frames")
    frames = scoring.load_frames(settings["data"], sheet["model"]["resolution"])
    splits = frames.split(scoring.run_heldout_videos(folder, frames))
    gate = make_filter(splits, settings["extractor"], settings["percentile"], device)
    for space in ("features", "pixel"):
        if not math.isclose(gate.calibration(space).threshold, sheet["privacy_filter"]["spaces"][space]["threshold"],
                            rel_tol=1e-4):
            raise DataError(f"{out}: the {space} threshold calibrated again differs from the datasheet's; the run's "
                            "frames or the extractor changed since the set was made")
    return gate, splits


@dataclass
class Inspection:
    """What the memorisation figure shows of a synthesized folder: distances of its draws and of unseen patients."""

    datasheet: dict[str, Any]
    rows: list[dict[str, str]]
    heldout: dict[str, np.ndarray]  # per space: nearest-training distances of the held-out frames (both halves)
    draws: dict[str, np.ndarray]  # per space: every draw's (the manifest's)
    passed: np.ndarray  # per draw: kept by the filter
    thresholds: dict[str, float]
    pairs: dict[str, list[dict]]  # per space: the kept samples closest to a training frame, beside that frame


def inspect(out: str | Path, *, k: int = 6, device: str = "auto") -> Inspection:
    """The memorisation view of a synthesized folder: held-out and sample distances, and the ``k`` closest pairs."""
    out = Path(out)
    gate, splits = reopen_filter(out, device)
    sheet = _read_datasheet(out)
    if sheet is None:
        raise DataError(f"{out}: no readable {DATASHEET}; not a folder written by synthesize")
    rows = read_draws(out / MANIFEST)
    kept = kept_images(out, rows)
    spaces = ("features", "pixel")
    thresholds = {s: gate.calibration(s).threshold for s in spaces}
    near = gate.nearest(kept.images)
    pairs = {s: closest_pairs(kept.images, *near[s], splits.train.images, thresholds[s], gate.calibration(s).space, k)
             for s in spaces}
    return Inspection(sheet, rows, {s: gate.calibration(s).heldout_distances.numpy() for s in spaces},
                      {s: draw_distances(rows, s) for s in spaces},
                      np.array([passed(r) for r in rows], bool), thresholds, pairs)


# -- the folder -------------------------------------------------------------------------------------------
def _ours(path: Path) -> bool:
    name = path.name
    return name in (MANIFEST, DATASHEET, README) or (name.startswith(PREFIX) and name.endswith(".png")) \
        or (name.startswith(".") and name.endswith(".tmp"))


def prepare_folder(out: Path, settings: Settings, overwrite: bool) -> list[dict[str, str]]:
    """The manifest rows a rerun continues from ([] for a new folder); refuses what it must not touch.

    * a folder with files this module did not write: refused, even with ``overwrite``;
    * one written with other settings (or an unreadable datasheet): refused unless ``overwrite``,
      which deletes this module's files and starts again;
    * one written with the same settings: continued. Sample files the manifest does not list as
      kept (a batch interrupted after its images, before its manifest) are removed.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder")
    if not out.exists():
        return []
    files = [p for p in out.iterdir()]
    foreign = sorted(p.name for p in files if not _ours(p))
    if foreign:
        raise OutputError(f"--out {out} holds {len(foreign)} files synthesize did not write (first: {foreign[0]}); "
                          "choose an empty or new folder")
    if not files:
        return []
    earlier = _read_datasheet(out)
    differs = None if earlier is None else settings.differences(earlier.get("settings", {}))
    if earlier is None or differs:
        if not overwrite:
            why = "no readable datasheet.json" if differs is None else \
                "other settings: " + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in sorted(differs.items()))
            raise OutputError(f"--out {out} is not empty ({len(files)} files; {why}); rerun with the same settings "
                              "to continue it, choose another folder, or pass --overwrite to replace it")
        for p in files:
            p.unlink()
        return []
    rows = read_draws(out / MANIFEST)
    kept = {r["file"] for r in rows if r.get("file")}
    for p in files:
        if p.name.startswith(PREFIX) and p.name not in kept or p.name.endswith(".tmp"):
            p.unlink()
    return rows


def _read_datasheet(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / DATASHEET).read_text())
    except (OSError, ValueError):
        return None


def read_draws(path: Path) -> list[dict[str, str]]:
    """Every draw a synthetic set's ``manifest.csv`` lists, passed or rejected, as text cells ([] when absent).

    The set's frames (the passed draws) are read by the frame reader,
    :func:`echolib.data.manifest.read_manifest`, like any frame folder's.
    """
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write_manifest(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def sample_name(index: int, n: int) -> str:
    return f"{PREFIX}{index:0{max(5, len(str(n - 1)))}d}.png"


# -- drawing ------------------------------------------------------------------------------------------
@dataclass
class Drawn:
    """What :func:`synthesize` did: its folder, the datasheet, and the rows of the manifest."""

    out: Path
    datasheet: dict[str, Any]
    rows: list[dict[str, str]] = field(repr=False)

    @property
    def kept(self) -> int:
        return sum(1 for r in self.rows if passed(r))


def synthesize(
    run: str | Path,
    n: int,
    out: str | Path,
    *,
    privacy_filter: bool = False,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    conditions: Sequence[str] | None = None,
    overwrite: bool = False,
    data: str | Path | None = None,
    percentile: float = mem.DEFAULT_PERCENTILE,
    extractor: str = "echo",
    batch: int = 64,
    device: str = "auto",
    n_eval: int | None = 2000,
    replicates: int | None = None,
    max_draws: int | None = None,
    progress: bool = True,
) -> Drawn:
    """Fill ``out`` with ``n`` passing samples of ``run``'s EMA generator, their manifest and datasheet.

    ``conditions`` (a label-conditioned model) are drawn in turn, so a set of
    ``["ES", "ED"]`` is balanced; by default such a model draws its labels with
    its training frequencies. ``data`` is the run's training data (default: what
    its ``run.json`` names). ``n_eval`` kept samples (at most ``n``) are scored
    against the held-out videos (0: no evaluation). ``max_draws`` (default
    ``max(20 n, 1000)``) stops a generator whose samples almost all fail.
    """
    if n < 1:
        raise ConfigError(f"--n must be a positive number of samples, got {n}")
    if batch < 1:
        raise ConfigError(f"--batch must be a positive number of images per draw, got {batch}")
    if not 0 < percentile < 1:
        raise ConfigError(f"--percentile must be in (0, 1), got {percentile}")
    folder = RunFolder(run)
    if not folder.path.is_dir():
        raise DataError(f"run folder {run}: no such folder")
    checkpoint = find_checkpoint(folder.path)
    data = str(data) if data is not None else folder.meta().get("data")
    if not data:
        raise DataError(f"{run}: its run.json does not name its training data; pass --data")
    settings = Settings(str(folder.path.resolve()), checkpoint.name, file_sha256(checkpoint), int(seed), int(batch),
                        dict(options or {}), bool(privacy_filter), float(percentile), extractor,
                        None if conditions is None else [str(c) for c in conditions], str(data))
    out = Path(out)
    rows = prepare_folder(out, settings, overwrite)
    kept = sum(1 for r in rows if passed(r))
    if kept > n:
        raise ConfigError(f"--out {out} already holds {kept} samples, more than --n {n}; pass --overwrite to start "
                          "again with fewer")
    earlier = _read_datasheet(out) if rows else None
    if earlier is not None and earlier.get("status") == "complete" and earlier.get("n") == n and kept == n:
        return Drawn(out, earlier, rows)  # finished with these settings: nothing to draw or score again

    model, _ = load_model(checkpoint, device=device)
    if model.image_conditioned:
        raise ConfigError(f"{folder.label}: a {model.arch} model translates condition images of real frames; "
                          "synthesize draws from models that need none (or a phase label)")
    model.check_sample_options(dict(options or {}))
    classes = list(getattr(model, "classes", []) or [])
    if conditions is not None:
        if not classes:
            raise ConfigError(f"--condition {','.join(conditions)}: {folder.label} is not label-conditioned")
        unknown = sorted(set(conditions) - set(classes))
        if unknown or not conditions:
            raise ConfigError(f"--condition: {unknown or 'none given'}; this model knows {classes}")

    frames = scoring.load_frames(data, model.resolution)
    if not scoring.trained_on(folder, frames):
        raise DataError(f"{folder.label} was trained on {folder.meta().get('data')}, not on {data}")
    splits = frames.split(scoring.run_heldout_videos(folder, frames))
    gate = make_filter(splits, extractor, percentile, device)

    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    _write_datasheet(out, _datasheet(settings, folder, checkpoint, model, splits, gate, rows, n, status="drawing"))

    def draw(b: int, s: int) -> tuple[torch.Tensor, list[str] | None]:
        labels = _labels(model, classes, settings.conditions, b, batch, s)
        g = torch.Generator(device=model.device).manual_seed(s)
        given: dict[str, Any] = {} if labels is None else {"label": labels}
        return to_uint8(model.sample(batch, g, **given, **dict(options or {})).float()).cpu(), labels

    rows = fill(out, n, draw, gate, rows, batch=batch, seed=seed, privacy_filter=privacy_filter,
                max_draws=max_draws, progress=progress)
    evaluation: list[dict[str, Any]] = []
    n_scored = min(n, n_eval or 0)
    if n_scored >= 2:
        evaluation = evaluate_kept(out, rows, splits, folder, checkpoint, n_scored, extractor, replicates, device)
    sheet = _datasheet(settings, folder, checkpoint, model, splits, gate, rows, n, status="complete",
                       evaluation=evaluation, seconds=time.time() - started)
    _write_datasheet(out, sheet)
    atomic_write_text(out / README, readme(sheet))
    return Drawn(out, sheet, rows)


Draw = Callable[[int, int], tuple[torch.Tensor, "list[str] | None"]]


def fill(out: Path, n: int, draw: Draw, gate: PrivacyFilter, rows: list[dict[str, str]], *, batch: int, seed: int,
         privacy_filter: bool, max_draws: int | None = None, progress: bool = True) -> list[dict[str, str]]:
    """Draw batches until ``n`` samples passed; write each as it passes, and the manifest after every batch.

    ``draw(b, batch_seed)`` returns batch ``b`` (``batch`` uint8 images drawn
    from a generator seeded with ``batch_seed``) and its labels. ``rows`` are
    the manifest's rows so far (a rerun's); drawing resumes at the next draw,
    re-drawing a batch the last run left part-way (the seeds make it the same
    batch). A batch's passing samples are written before its rows, so a killed
    run leaves at most files the manifest does not name, which
    :func:`prepare_folder` removes.
    """
    kept = sum(1 for r in rows if passed(r))
    limit = max_draws if max_draws is not None else max(20 * n, 1000)
    with progress_bar(total=n, initial=kept, enabled=progress, unit="img", desc="synthesize") as bar:
        while kept < n:
            drawn = len(rows)
            if drawn >= limit:  # checked between batches: a batch started is finished
                if not privacy_filter:
                    raise DataError(f"--max-draws {limit}: stopped after {drawn} draws with {kept} of {n} samples; "
                                    "rerun with the same settings to continue")
                raise DataError(f"after {drawn} draws only {kept} of {n} samples passed the privacy filter (the "
                                f"{gate.features.percentile:.0%} threshold of unseen patients); the generator "
                                "reproduces its training frames, or --max-draws is too small")
            b, first = divmod(drawn, batch)
            s = batch_seed(seed, b)
            images, labels = draw(b, s)
            if images.dtype != torch.uint8 or len(images) != batch:
                raise DataError(f"a draw returned {len(images)} {images.dtype} images, expected {batch} uint8")
            d_feat, d_pix = gate.distances(images)
            flagged = gate.flags(d_feat, d_pix)
            for j in range(first, batch):
                if kept >= n:
                    break
                keep = not (privacy_filter and bool(flagged[j]))
                name = sample_name(kept, n) if keep else ""
                if keep:
                    write_gray(out / name, images[j, 0].numpy())
                    kept += 1
                    bar.update(1)
                rows.append({"file": name, "draw": str(b * batch + j), "seed": str(s), "position": str(j),
                             "condition": "" if labels is None else labels[j],
                             "nn_distance": f"{float(d_feat[j]):.6g}", "nn_distance_pixel": f"{float(d_pix[j]):.6g}",
                             "flagged": _bool(flagged[j]), PASSED: _bool(keep)})  # as a rerun reads them
            _write_manifest(out / MANIFEST, rows)
    return rows


def _labels(model: Any, classes: list[str], conditions: list[str] | None, b: int, batch: int,
            seed: int) -> list[str] | None:
    """The labels of batch ``b``: ``conditions`` in turn, or the model's training frequencies (seeded by the batch)."""
    if not classes:
        return None
    if conditions:
        return [conditions[(b * batch + j) % len(conditions)] for j in range(batch)]
    freq = getattr(model, "class_freq", torch.full((len(classes),), 1.0 / len(classes))).detach().float().cpu()
    index = torch.multinomial(freq, batch, replacement=True, generator=torch.Generator().manual_seed(seed))
    return [classes[int(i)] for i in index]


def _bool(value: Any) -> str:
    return "true" if bool(value) else "false"


def kept_images(out: Path, rows: Sequence[Mapping[str, str]], n: int | None = None) -> ImageSet:
    """The first ``n`` kept samples of a folder as an image set (each its own unit; its condition kept aside)."""
    names = [r["file"] for r in rows if passed(r) and r["file"]][:n]
    if not names:
        raise DataError(f"{out}: no kept samples in {MANIFEST}")
    images = torch.from_numpy(np.stack([read_gray(out / name) for name in names]))[:, None]
    return ImageSet(images, names, f"synthetic set {out.name}")


def evaluate_kept(out: Path, rows: Sequence[Mapping[str, str]], splits: Any, folder: RunFolder, checkpoint: Path,
                  n: int, extractor: str, replicates: int | None, device: str) -> list[dict[str, Any]]:
    """Records of the first ``n`` kept samples against the run's held-out videos, under one protocol."""
    protocol = scoring.make_protocol(splits, n, extractor=extractor, seed=CALIBRATION_SEED, metrics=EVAL_METRICS,
                                     replicates=DEFAULT_REPLICATES if replicates is None else replicates,
                                     device=device)
    images = kept_images(out, rows, n)
    return protocol.evaluate(images, f"synthetic:{out.name}", run=folder.label, kimg=ckpt.checkpoint_kimg(checkpoint),
                             source="synthesize", checkpoint=checkpoint.name)


# -- the datasheet ------------------------------------------------------------------------------------------
def _counts(rows: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    flagged = np.array([r["flagged"] == "true" for r in rows], bool)
    out: dict[str, Any] = {"drawn": len(rows), "kept": sum(passed(r) for r in rows),
                           "rejected": sum(not passed(r) for r in rows), "flagged": int(flagged.sum())}
    if len(rows):
        out["flag_rate"] = float(flagged.mean())
        out["flag_rate_interval"] = list(proportion_interval(flagged, [str(i) for i in range(len(rows))]))
    conditions = [r["condition"] for r in rows if passed(r) and r["condition"]]
    if conditions:
        out["kept_by_condition"] = {c: conditions.count(c) for c in sorted(set(conditions))}
    return out


def _datasheet(settings: Settings, folder: RunFolder, checkpoint: Path, model: Any, splits: Any, gate: PrivacyFilter,
               rows: Sequence[Mapping[str, str]], n: int, *, status: str,
               evaluation: Sequence[Mapping[str, Any]] = (), seconds: float | None = None) -> dict[str, Any]:
    meta = folder.meta()
    return {
        "version": VERSION,
        "status": status,
        "n": n,
        "settings": asdict(settings),
        "model": {"arch": model.arch, "resolution": model.resolution, "channels": model.channels,
                  "labels": list(getattr(model, "classes", []) or []), "run": folder.label,
                  "checkpoint": checkpoint.name, "checkpoint_sha256": settings.checkpoint_sha256,
                  "kimg": ckpt.checkpoint_kimg(checkpoint), "ema": True},
        "sampler": {"options": settings.options, "seed": settings.seed, "batch": settings.batch,
                    "seeds": "each batch b is drawn with torch.Generator().manual_seed(S) where S is the manifest's "
                             "seed column (numpy SeedSequence([seed, b])); position is the sample's place in it"},
        "data": {"source": shown_data(settings.data), "training_frames": len(splits.train),
                 "heldout_frames": len(splits.heldout), "heldout_videos": len(set(splits.heldout.video_ids)),
                 "heldout_fingerprint": videos_fingerprint(splits.heldout.video_ids),
                 "data_fingerprint": meta.get("data_fingerprint")},
        "privacy_filter": {"applied": settings.privacy_filter, **gate.summary()},
        "counts": _counts(rows),
        "evaluation": [dict(r) for r in evaluation],
        "licence": terms(settings.data)[0],
        "must_not": terms(settings.data)[1],
        "echolib": __version__,
        "seconds": seconds,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def shown_data(data: str) -> str:
    """The data argument as a reader sees it: ``phantom``, or the path without the build machine's layout."""
    return data if is_phantom(data) else shown_path(data)


def _write_datasheet(out: Path, sheet: Mapping[str, Any]) -> None:
    atomic_write_text(out / DATASHEET, json.dumps(_plain(sheet), indent=2) + "\n")


def _plain(value: Any) -> Any:
    """JSON-safe: tuples to lists, non-finite floats to None, numpy/torch scalars to numbers."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


LICENCE_PHANTOM = (
    "The generator was trained on echolib's built-in phantom: frames drawn by a program, of no patient. The set "
    "carries no terms beyond this project's licence. It is a test of the pipeline, not a model of real hearts."
)

LICENCE_REAL = (
    "The generator was trained on frames of EchoNet-Dynamic (Ouyang et al., Nature 2020; "
    "https://echonet.github.io/dynamic/), which Stanford University licenses under its EchoNet-Dynamic Research "
    "Use Agreement: personal, non-commercial research use only; no distribution, publication or reproduction of the "
    "data, in whole or in part, to others without Stanford's written permission; no modification or derivative "
    "works of it; credit by citing the dataset's paper. Images drawn from a model trained on those frames may count "
    "as a derivative of the data, and a filter that rejects near-copies does not prove that none is left. Treat this "
    "set as the data itself: non-commercial research by people who have accepted the agreement themselves, not to be "
    "published or passed on without Stanford's written permission, citing EchoNet-Dynamic. This summary is not "
    "legal advice; the agreement's own text governs."
)

MUST_NOT = [
    "clinical use of any kind: diagnosis, screening, treatment decisions, or measurements reported for a patient",
    "training or validating a model meant for clinical use without testing it on real echocardiograms",
    "estimating clinical quantities (ejection fraction, chamber sizes): no frame here is a measurement of a heart",
    ("evidence that the generator leaks no patient: the filter catches near-copies of training frames, not every "
    "patient-level leak, and gives no differential-privacy guarantee"),
]
MUST_NOT_REAL = [
    "commercial use, sale or any monetisation (the source data's agreement forbids it)",
    "publication or redistribution without Stanford's written permission (see the licence)",
    "attempts to identify, or to reconstruct the frames of, the patients whose echoes trained the generator",
]


def terms(data: str) -> tuple[str, list[str]]:
    """The licence text and the uses ruled out, for a set drawn from a model trained on ``data``.

    Any data but the phantom is taken to be EchoNet-Dynamic's frames (the only
    real echoes this project reads): the stricter terms are the safe default.
    """
    if is_phantom(data):
        return LICENCE_PHANTOM, list(MUST_NOT)
    return LICENCE_REAL, MUST_NOT[:3] + MUST_NOT_REAL + MUST_NOT[3:]


def readme(sheet: Mapping[str, Any]) -> str:
    """The datasheet for people: what the set is, how it was made and filtered, how it scores, and its terms."""
    m, s, c, f = sheet["model"], sheet["settings"], sheet["counts"], sheet["privacy_filter"]
    feat, pix = f["spaces"]["features"], f["spaces"]["pixel"]
    lines = [
        f"# Synthetic echocardiograms from `{m['run']}`",
        "",
        (f"{sheet['n']} grayscale {m['resolution']}x{m['resolution']} PNG frames (`{PREFIX}*.png`) drawn from the EMA "
        f"generator of a `{m['arch']}` model, run `{m['run']}`, checkpoint `{m['checkpoint']}` ({m['kimg']:g} kimg, "
        f"sha256 `{m['checkpoint_sha256']}`). Made by echolib {sheet['echolib']} on {sheet['time'][:10]}."),
        "",
        "## How it was made",
        "",
        (f"* Sampler options: {json.dumps(s['options']) if s['options'] else 'the model defaults'}; seed {s['seed']}, "
        f"batches of {s['batch']}. `manifest.csv` gives each draw's batch seed and position, so any frame can be "
        "drawn again."),
    ]
    if m["labels"]:
        how = ", ".join(s["conditions"]) + " in turn" if s["conditions"] else "with the training frequencies"
        lines.append(f"* Phase-conditioned on {', '.join(m['labels'])}: labels drawn {how}; kept per label: "
                     f"{c.get('kept_by_condition', {})} (the `condition` column).")
    lines += [
        (f"* Training data: `{sheet['data']['source']}`, {sheet['data']['training_frames']} training frames; "
        f"{sheet['data']['heldout_frames']} frames of {sheet['data']['heldout_videos']} held-out videos (never trained "
        f"on; fingerprint `{sheet['data']['heldout_fingerprint']}`) set the filter's threshold and score the set."),
        "",
        "## Privacy filter",
        "",
        (f"* {'Applied' if f['applied'] else 'Not applied (every draw kept; the manifest still flags)'}: a draw is "
        f"rejected when its nearest training frame is closer than the {f['percentile']:.0%} closest of unseen "
        f"patients' frames are, in the `echo` feature space (threshold {feat['threshold']:.4g}) or in pixel space "
        f"(threshold {pix['threshold']:.4g}; {pix['nn_space']}). Thresholds from half of the held-out videos "
        f"({f['calibration']}, definition `{f['definition']}`)."),
        (f"* Drawn {c['drawn']}, flagged {c['flagged']} ({_pct(c.get('flag_rate'))}, 95 % interval "
        f"{_interval(c.get('flag_rate_interval'))}), rejected {c['rejected']}, kept {c['kept']}."),
        (f"* The same filter rejects {_pct(f['heldout_rejection_rate'])} ({_interval(f['heldout_rejection_interval'])})"
        " of frames of unseen patients (the other half of the held-out videos): a generator that copies no more than "
        "chance is flagged at about that rate."),
        (f"* Same patient, another phase: a training frame's nearest sibling in its own video is flagged "
        f"{_pct(feat['same_video_flag_rate'])} (features) and {_pct(pix['same_video_flag_rate'])} (pixels) of the time; "
        "a sample that showed a training patient at another moment is caught about as often."),
        ("* What it is not: a proof that no patient leaks, or differential privacy. It removes near-copies of training "
        f"frames (copies, noise, shifts of up to {mem.PIXEL_SHIFT * 128 // mem.PIXEL_SIZE} px at 128 px, small gain "
        "changes, re-drawn speckle: see "
        "`echolib.metrics.memorization`)."),
        "",
        "## Evaluation of the kept set against the held-out videos",
        "",
    ]
    if sheet["evaluation"]:
        first = sheet["evaluation"][0]
        lines += [(f"{first['n_fake']} kept samples against {first['n_real']} held-out frames; `{first['extractor']}` "
                  f"features (sha256 `{str(first.get('extractor_sha256'))[:16]}…`); protocol `{first.get('protocol')}`."),
                  "", "| metric | value | 95 % interval |", "|---|---|---|"]
        for r in sheet["evaluation"]:
            lines.append(f"| {r['metric']} | {_num(r['value'])} | {_interval(r.get('interval'))} |")
        rates = {r["metric"]: r.get("heldout_flag_rate") for r in sheet["evaluation"]}
        lines += ["", ("The memorisation rows are the shares of kept samples at or below each space's threshold; "
                  f"frames of unseen patients score {_pct(rates.get('memorized_fraction'))} (features) and "
                  f"{_pct(rates.get('memorized_fraction_pixel'))} (pixels) on them.")]
    else:
        lines.append("Not evaluated (`--eval-n 0`).")
    lines += ["", "## Licence and terms", "", sheet["licence"], "", "## Must not be used for", ""]
    lines += [f"* {item}" for item in sheet["must_not"]]
    lines += ["", "## Files", "",
              ("* `manifest.csv`: one row per draw: `file` (empty when rejected), `draw`, `seed` (of its batch), "
              "`position`, `condition`, `nn_distance` (features) and `nn_distance_pixel` to the nearest training "
              "frame, `flagged`, `passed`."),
              "* `datasheet.json`: everything on this page as data, with the full evaluation records.", ""]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.4g}"


def _interval(interval: Sequence[float] | None) -> str:
    if not interval or None in interval:
        return "–"
    return f"[{interval[0]:.3g}, {interval[1]:.3g}]"
