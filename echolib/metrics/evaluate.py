"""``evaluate(real, fake, ...)``: every metric of the study and ours, as records, from one feature pass.

The same function serves the command line (``python -m echolib evaluate``), the
trainer (a chosen subset every N kimg, with the model's sampler as ``fake``) and
the notebooks, so a number in the book, in a run's ``metrics.jsonl`` and in a
benchmark is computed by the same code. Each image set is read once, its
features are extracted once per extractor (and cached on disk by content hash
and extractor sha256, so the real set is not re-encoded for every model), and
all feature metrics share them.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from echolib.data.sources import default_cache_dir
from echolib.devices import resolve_device
from echolib.errors import ConfigError, DataError
from echolib.io import atomic_torch_save
from echolib.metrics import c2st as c2st_mod
from echolib.metrics import fidelity, intervals, memorization, pixel
from echolib.metrics.c2st_pixels import Recipe, c2st_pixels
from echolib.metrics.features import file_sha256
from echolib.metrics.inputs import ImageSet, as_image_set
from echolib.metrics.lpips import LPIPS, NAME, lpips_pairs, lpips_weights_paths
from echolib.metrics.records import make_record
from echolib.metrics.registry import DEFAULT_METRICS, METRICS, REGISTRY

FEATURE_METRICS = frozenset(name for name, s in REGISTRY.items() if s.space == "features")
ENV_FEATURE_CACHE = "ECHOLIB_FEATURE_CACHE"


def evaluate(
    real,
    fake,
    metrics: list[str] | tuple[str, ...] | None = None,
    extractor: str = "inception-v3-compat",
    train=None,
    n: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    kimg: float | None = None,
    run: str | None = None,
    *,
    n_real: int | None = None,
    n_fake: int | None = None,
    cache: bool | str | Path = True,
    memorization_percentile: float = memorization.DEFAULT_PERCENTILE,
    c2st_folds: int = 5,
    replicates: int = 0,
    warn_overlap: bool = True,
    timings: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Compare a generated set with a real set; one record per metric value.

    ``real``, ``fake`` and ``train`` may each be a folder/zip/manifest path, a
    :class:`~echolib.data.frames.FrameDataset`, a ``uint8 [N, 1, H, W]`` tensor,
    an :class:`~echolib.metrics.inputs.ImageSet` or a sampler
    ``(n, generator) -> float [-1, 1]``. ``n_real`` and ``n_fake`` cap each
    fixed set to a seeded random subset; ``n_fake`` is the number of images
    drawn from a sampler (default: as many as the real set has); ``n`` sets
    both. ``train`` is the model's training set for the memorization search
    (default: ``real``); the memorisation threshold is calibrated on the frames
    of ``real`` whose videos are not in ``train`` (at ``memorization_percentile``,
    :mod:`echolib.metrics.memorization`), or, when there are none, by leaving
    whole training videos out. ``extractor`` names the feature space of
    FID/KID/precision/recall/memorization/C2ST: ``inception-v3-compat`` (the
    standard, default; needs its weights file) or ``echo`` (offline, shipped);
    pixel statistics are recorded with extractor ``"pixel"``. ``metrics`` is a
    subset of :data:`~echolib.metrics.registry.METRICS` (default: the registry's
    default set). ``replicates`` > 0 adds a 95 % interval to every ranked number
    from that many half-samples of the videos (:mod:`echolib.metrics.intervals`);
    the classifier test always has its own. Every feature record says what
    share of the real (and generated) images are of videos the extractor
    trained on (``extractor_overlap``), warning when the real share is not 0
    unless ``warn_overlap`` is False. ``timings``, when given, receives the
    seconds spent per stage (for benchmarks).
    """
    wanted = _resolve(metrics)
    dev = resolve_device(device)
    clock = _Clock(timings)
    n_real = n if n_real is None else n_real
    n_fake = n if n_fake is None else n_fake
    with clock("load"):
        real_set = as_image_set(real, n=n_real, seed=seed, label="real", device=dev)
        is_sampler = callable(fake) and not isinstance(fake, (ImageSet, torch.Tensor))
        if is_sampler and n_fake is None:
            n_fake = len(real_set)
        fake_set = as_image_set(fake, n=n_fake, seed=seed + 1, label="fake", device=dev)
        train_set = as_image_set(train, label="train") if train is not None else real_set
    held_set = _unseen(real_set, train_set)
    wanted = _check_sets(wanted, real_set, fake_set, train_set, held_set, explicit=metrics is not None)
    features_wanted = bool(FEATURE_METRICS & set(wanted))
    context: dict[str, Any] = {"real_fingerprint": real_set.fingerprint()[:16]}
    feature_context: dict[str, Any] = {}
    if features_wanted:
        overlap = fidelity.extractor_overlap(extractor, real_set.video_ids)
        feature_context = {"extractor_overlap": overlap,
                           "fake_extractor_overlap": fidelity.extractor_overlap(extractor, fake_set.video_ids)}
        if overlap and warn_overlap:
            warnings.warn(f"{overlap:.0%} of the real images are of videos the {extractor!r} extractor trained on: "
                          "its features tell those apart, so this is not a neutral reference", stacklevel=2)
    feat_sha = fidelity.extractor_sha256(extractor) if features_wanted else None
    groups_real, groups_fake = real_set.video_ids, fake_set.video_ids
    out: list[dict[str, Any]] = []

    def record(metric: str, value: float, space: str = "features", n_real: int | None = None, **extra: Any) -> None:
        feat = space == "features"
        out.append(
            make_record(
                metric,
                value,
                n_real=len(real_set) if n_real is None else n_real,
                n_fake=len(fake_set),
                extractor=extractor if feat else space,
                extractor_sha256=feat_sha if feat else None,
                kimg=kimg,
                run=run,
                **context,
                **(feature_context if feat else {}),
                **extra,
            )
        )

    def interval(statistic: intervals.Statistic, estimate: float, lower: float | None = None,
                 upper: float | None = None) -> dict[str, Any]:
        if replicates <= 0:
            return {}
        lo, hi = intervals.subsample_interval(statistic, estimate, groups_real, groups_fake, replicates, seed,
                                              lower_bound=lower, upper_bound=upper)
        return {"interval": [lo, hi], "interval_method": f"half-samples of videos, {replicates} replicates"}

    if features_wanted:
        encode = FeatureCache(extractor, dev, cache)
        with clock("features"):
            f_real, f_fake = encode(real_set), encode(fake_set)
            f_train = f_real if train_set is real_set or "memorized_fraction" not in wanted else encode(train_set)
        if replicates > 0:
            np_real, np_fake = f_real.double().numpy(), f_fake.double().numpy()
        if "fid" in wanted:
            with clock("fid"):
                value = fidelity.fid(f_fake, f_real)
                extra = interval(intervals.fid_statistic(np_real, np_fake), value, 0.0) if replicates > 0 else {}
            record("fid", value, **extra)
        if "kid" in wanted:
            with clock("kid"):
                mean, std, size = fidelity.kid(f_fake, f_real)
                extra = interval(intervals.kid_statistic(np_real, np_fake), mean) if replicates > 0 else {}
            record("kid", mean, std=std, subset_size=size, subsets=fidelity.KID_SUBSETS, **extra)
        if "precision" in wanted or "recall" in wanted:
            with clock("prc"):
                p, r = fidelity.precision_recall(f_fake.to(dev), f_real.to(dev))
            for name, value in (("precision", p), ("recall", r)):
                if name in wanted:
                    with clock("prc"):
                        extra = interval(intervals.prc_statistic(np_real, np_fake, name, fidelity.PRC_NEIGHBORHOOD),
                                         value, 0.0, 1.0) if replicates > 0 else {}
                    record(name, value, neighborhood=fidelity.PRC_NEIGHBORHOOD, **extra)
        if "memorized_fraction" in wanted:
            with clock("memorized_fraction"):
                f_held = None if held_set is None else f_real[held_set.index]
                mem = memorization.memorization(
                    f_fake, f_train, train_set.video_ids, f_held, None if held_set is None else held_set.videos,
                    percentile=memorization_percentile, seed=seed, fake_groups=fake_set.video_ids)
            record("memorized_fraction", mem.fraction, n_real=len(train_set), **mem.fields())
        if "c2st_auc" in wanted:
            with clock("c2st_auc"):
                test = c2st_mod.c2st(f_real, f_fake, groups_real, groups_fake, c2st_folds, seed)
            record(
                "c2st_auc",
                test.auc,
                interval=[test.ci_low, test.ci_high],
                interval_method="score interval on the clustered DeLong variance",
                folds=test.folds,
                classifier="logistic regression (C=0.1) on standardised features, folds grouped by video",
            )

    r_img, f_img = real_set.images, fake_set.images
    for name, mask in (("jsd", None), ("jsd_sector", "sector")):
        if name in wanted:
            with clock(name):
                m = pixel.sector_mask(r_img) if mask else None
                value = pixel.js_distance(r_img, f_img, m)
                extra = interval(_jsd_statistic(r_img, f_img, m), value, 0.0) if replicates > 0 else {}
            if m is not None:
                extra["mask_pixels"] = int(m.sum())
            else:
                extra["definition"] = "scipy jensenshannon, pooled, ln"
            record(name, value, space="pixel", **extra)
    ri, fi = pixel.random_pairs(len(r_img), len(f_img), seed=seed)
    random_pairs: dict[str, Any] = {"pairing": "random", "n_pairs": len(ri)}
    if "ssim" in wanted:
        with clock("ssim"):
            record("ssim", pixel.ssim(r_img[ri], f_img[fi]).mean().item(), space="pixel", **random_pairs)
    if "psnr" in wanted:
        with clock("psnr"):
            record("psnr", pixel.psnr(r_img[ri], f_img[fi]), space="pixel", **random_pairs)
    if "lpips" in wanted:
        with clock("lpips"):
            out.append(_lpips_record(r_img[ri], f_img[fi], dev, len(real_set), len(fake_set), kimg, run))
    if {"ssim_nn", "psnr_nn"} & set(wanted):
        with clock("nearest_pairs"):
            ni, nf = pixel.nearest_pairs(r_img, f_img)
        nearest: dict[str, Any] = {"pairing": "nearest real (pixel L2, 64x64)", "n_pairs": len(ni)}
        if "ssim_nn" in wanted:
            with clock("ssim_nn"):
                record("ssim_nn", pixel.ssim(r_img[ni], f_img[nf]).mean().item(), space="pixel", **nearest)
        if "psnr_nn" in wanted:
            with clock("psnr_nn"):
                record("psnr_nn", pixel.psnr(r_img[ni], f_img[nf]), space="pixel", **nearest)
    if "ms_ssim" in wanted:
        with clock("ms_ssim"):
            a, b = pixel.within_pairs(len(f_img), seed=seed)
            ra, rb = pixel.within_pairs(len(r_img), seed=seed)
            levels = pixel.ms_ssim_levels(min(f_img.shape[-2:]))
            record(
                "ms_ssim",
                pixel.ms_ssim(f_img[a], f_img[b], levels=levels).mean().item(),
                space="pixel",
                pairing="random within fake",
                n_pairs=len(a),
                scales=levels,
                real_value=pixel.ms_ssim(r_img[ra], r_img[rb], levels=levels).mean().item(),
            )
    if "c2st_pixel_auc" in wanted:
        with clock("c2st_pixel_auc"):
            test = c2st_pixels(r_img, f_img, groups_real, groups_fake, seed)
        record(
            "c2st_pixel_auc",
            test.auc,
            space="pixel",
            interval=[test.ci_low, test.ci_high],
            interval_method="score interval on the clustered DeLong variance",
            folds=test.folds,
            classifier=f"CNN {Recipe.widths}, {Recipe.epochs} epochs, 64 px, folds grouped by video",
        )
    if "memorized_fraction_pixel" in wanted:
        with clock("memorized_fraction_pixel"):
            mem = memorization.pixel_memorization(
                f_img, train_set.images, train_set.video_ids,
                None if held_set is None else r_img[held_set.index], None if held_set is None else held_set.videos,
                percentile=memorization_percentile, seed=seed, fake_groups=fake_set.video_ids)
        record("memorized_fraction_pixel", mem.fraction, space="pixel", n_real=len(train_set), **mem.fields())
    order = {m: i for i, m in enumerate(METRICS)}
    return sorted(out, key=lambda r: order[r["metric"]])


@dataclass(frozen=True)
class _Unseen:
    """The real frames of videos the training set lacks: where the memorisation threshold is calibrated."""

    index: torch.Tensor  # positions in the real set
    videos: list[str]


def _unseen(real: ImageSet, train: ImageSet) -> _Unseen | None:
    """Frames of ``real`` whose videos are not in ``train`` (at least two videos), else None (then whole
    training videos are left out to calibrate)."""
    if train is real:
        return None
    seen = set(train.video_ids)
    keep = [i for i, v in enumerate(real.video_ids) if v not in seen]
    videos = [real.video_ids[i] for i in keep]
    if len(set(videos)) < 2:
        return None
    return _Unseen(torch.tensor(keep, dtype=torch.long), videos)


def _check_sets(wanted: list[str], real: ImageSet, fake: ImageSet, train: ImageSet, held: _Unseen | None,
                explicit: bool) -> list[str]:
    """Refuse (or, for default metric lists, drop) what the sets cannot support, naming the reason."""
    calibratable = held is not None or (train.has_videos and len(set(train.video_ids)) >= 3)
    if any(m.startswith("memorized") for m in wanted) and not calibratable:
        if explicit:
            raise DataError(
                f"{train.label}: memorization is calibrated on frames of videos the generator never saw: give real "
                "frames of other videos than the training frames, or training frames of at least 3 videos with "
                "several frames each (names '<video>_f<k>.png' or a manifest with video_id) to leave videos out"
            )
        warnings.warn("memorization skipped: no unseen videos to calibrate on (real frames of other videos, or "
                      "training frames of 3 or more videos)", stacklevel=3)
        wanted = [m for m in wanted if not m.startswith("memorized")]
    tests = [m for m in ("c2st_auc", "c2st_pixel_auc") if m in wanted]
    if tests and (few := min(len(set(real.video_ids)), len(set(fake.video_ids)))) < 4:
        reason = f"the classifier test needs at least 4 videos (or generated images) per set, the smaller has {few}"
        if explicit:
            raise DataError(reason)
        warnings.warn(f"{', '.join(tests)} skipped: {reason}", stacklevel=3)
        wanted = [m for m in wanted if m not in tests]
    paired = {"ssim", "psnr", "ssim_nn", "psnr_nn", "jsd_sector", "lpips", "memorized_fraction_pixel"} & set(wanted)
    if paired and real.images.shape[-2:] != fake.images.shape[-2:]:
        raise DataError(
            f"real images are {tuple(real.images.shape[-2:])} but generated ones {tuple(fake.images.shape[-2:])}; "
            f"{', '.join(sorted(paired))} compare pixels and need one size (resample the generated set)"
        )
    if "memorized_fraction_pixel" in wanted and train.images.shape[-2:] != fake.images.shape[-2:]:
        raise DataError("the training set and the generated set differ in size; memorized_fraction_pixel needs one")
    return wanted


def _jsd_statistic(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor | None) -> intervals.Statistic:
    """``(real_index, fake_index) -> JS distance`` of the pooled histograms of those images (histograms made once)."""
    h_real = pixel.image_histograms(real, mask)
    h_fake = pixel.image_histograms(fake, mask)
    return lambda r, f: pixel.histogram_js_distance(h_real[r].sum(0), h_fake[f].sum(0))


def _lpips_record(
    real: torch.Tensor,
    fake: torch.Tensor,
    device: torch.device,
    n_real: int,
    n_fake: int,
    kimg: float | None,
    run: str | None,
) -> dict[str, Any]:
    """LPIPS over the random pairs; the record names both weights files by sha256."""
    vgg, lin = lpips_weights_paths()
    values = lpips_pairs(LPIPS(vgg, lin), real, fake, device)
    return make_record(
        "lpips",
        values.mean().item(),
        n_real=n_real,
        n_fake=n_fake,
        extractor=NAME,
        extractor_sha256=file_sha256(lin),
        kimg=kimg,
        run=run,
        vgg16_sha256=file_sha256(vgg),
        pairing="random",
        n_pairs=len(real),
    )


class _Clock:
    """``with clock("stage"):`` adds the stage's wall time to a dict (or does nothing without one)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.timings is not None:
                self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start


class FeatureCache:
    """Features of image sets under one extractor, memoised on disk by (extractor sha256, pixel sha256).

    ``cache``: True for the default folder (``$ECHOLIB_FEATURE_CACHE`` or
    ``.cache/features`` in the project), a path for another, False for none.
    """

    def __init__(self, extractor: str, device: torch.device, cache: bool | str | Path = True) -> None:
        self.name, self.device = extractor, device
        self.sha = fidelity.extractor_sha256(extractor)
        self.folder = _cache_folder(cache)
        self._net: tuple[torch.nn.Module, str] | None = None

    def __call__(self, images: ImageSet) -> torch.Tensor:
        path = None
        if self.folder is not None and self.sha is not None and images.cacheable:
            path = self.folder / f"{self.name}-{self.sha[:16]}-{images.fingerprint()[:24]}.pt"
            feats = _load_cached(path)
            if feats is not None and len(feats) == len(images):
                return feats
        if self._net is None:
            self._net = fidelity.create_extractor(self.name, self.device)
        extractor, layer = self._net
        feats = fidelity.extract(extractor, layer, images.images, self.device)
        if path is not None:
            try:
                atomic_torch_save(feats, path)
            except OSError:
                pass  # a read-only cache only costs time
        return feats


def _load_cached(path: Path) -> torch.Tensor | None:
    """A cached feature tensor, or None when absent, torn or foreign (then it is recomputed, never trusted)."""
    if not path.is_file():
        return None
    try:
        feats = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as exc:
        warnings.warn(f"ignoring unreadable feature cache {path}: {exc}", stacklevel=3)
        return None
    return feats if isinstance(feats, torch.Tensor) else None


def _cache_folder(cache: bool | str | Path) -> Path | None:
    if cache is False or cache is None:
        return None
    if cache is True:
        env = os.environ.get(ENV_FEATURE_CACHE)
        if env:
            return Path(env)
        return default_cache_dir() / "features"
    return Path(cache)


def _resolve(metrics) -> list[str]:
    if metrics is None:
        return list(DEFAULT_METRICS)
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metrics {unknown}; known: {', '.join(METRICS)}")
    if not metrics:
        raise ConfigError("no metrics requested")
    return list(dict.fromkeys(metrics))
