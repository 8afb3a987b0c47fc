"""The metric registry: what each metric is, which way is better, and whether it may rank models.

Every reader of metric records asks here: the trainer choosing ``best.pt``,
:func:`echolib.metrics.evaluate` choosing what to compute by default, the
comparison table picking a row's best value, and the radar and heatmap
choosing their axes. A metric that cannot order generators (SSIM or PSNR on
random unpaired pairs score real against real like real against generated; a
memorised share of 0 says nothing about quality) is still recorded and shown,
but never ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["lower", "higher", "chance", "none"]
Space = Literal["features", "pixel", "perceptual"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name, what it measures, and how to read it."""

    name: str
    description: str
    better: Better  # lower, higher, chance (closest to 0.5: a classifier's AUC), none (read against the data)
    ranks: bool  # may order models (the trainer's best.pt, "leads" in the book, radar axes)
    default: bool  # computed when no metric list is given
    space: Space  # features of an extractor, raw intensities, or a perceptual network with its own weights

    def score(self, value: float) -> float:
        """A number that orders models, smaller being better; only for metrics that rank."""
        if not self.ranks:
            raise ValueError(f"{self.name!r} cannot rank models; use one of {', '.join(ranking_metrics())}")
        value = float(value)
        if self.better == "higher":
            return -value
        if self.better == "chance":
            return abs(value - 0.5)
        return value


_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("fid", "Frechet distance of feature Gaussians (torch-fidelity)", "lower", True, True, "features"),
    MetricSpec("kid", "kernel (cubic polynomial) MMD^2 of features, unbiased (torch-fidelity)", "lower", True, True,
               "features"),
    MetricSpec("precision", "share of generated samples inside the real feature manifold (k-NN balls)", "higher",
               True, True, "features"),
    MetricSpec("recall", "share of real samples inside the generated feature manifold (k-NN balls)", "higher", True,
               True, "features"),
    MetricSpec("jsd", "Jensen-Shannon distance of pooled 256-bin histograms, whole image (the study's)", "lower",
               True, True, "pixel"),
    MetricSpec("jsd_sector", "the same distance, pixels inside the ultrasound sector only", "lower", True, True,
               "pixel"),
    MetricSpec("ssim", "mean SSIM over random real/generated pairs (the study's pairing; cannot rank)", "higher",
               False, True, "pixel"),
    MetricSpec("psnr", "PSNR of the MSE pooled over random real/generated pairs (the study's pairing; cannot rank)",
               "higher", False, True, "pixel"),
    MetricSpec("ssim_nn", "mean SSIM of each generated image with its nearest real image (pixel L2)", "higher", False,
               True, "pixel"),
    MetricSpec("psnr_nn", "PSNR of the pooled MSE of each generated image and its nearest real image", "higher",
               False, True, "pixel"),
    MetricSpec("ms_ssim", "mean MS-SSIM among random pairs of generated images (diversity; read against the "
               "real value)", "none", False, True, "pixel"),
    MetricSpec("memorized_fraction", "share of generated images nearer a training frame than the closest 5 % of "
               "unseen patients' frames are (features; read against its heldout_flag_rate)", "lower", False, True,
               "features"),
    MetricSpec("memorized_fraction_pixel", "the same in pixel space (64x64, translations up to 2 px searched)",
               "lower", False, True, "pixel"),
    MetricSpec("c2st_auc", "out-of-fold ROC AUC of a classifier telling real from generated features "
               "(0.5 = indistinguishable)", "chance", True, True, "features"),
    MetricSpec("c2st_pixel_auc", "out-of-fold ROC AUC of a small CNN telling real from generated images "
               "(pixels, 64 px)", "chance", True, False, "pixel"),
    MetricSpec("lpips", "mean LPIPS (VGG16) over random real/generated pairs; needs weights files", "lower", False,
               False, "perceptual"),
    MetricSpec("phase_accuracy", "accuracy of an ES/ED classifier on held-out real videos (utility; trained on "
               "the set its train_set names)", "higher", False, False, "pixel"),
    MetricSpec("phase_auc", "ROC AUC of that classifier on held-out real videos (utility)", "higher", False, False,
               "pixel"),
)

#: every metric by name, in the order records and tables list them
REGISTRY: dict[str, MetricSpec] = {s.name: s for s in _SPECS}
#: every metric name :func:`echolib.metrics.evaluate` can produce
METRICS: tuple[str, ...] = tuple(REGISTRY)
#: what evaluate computes when no list is given (LPIPS needs external weights: ask for it)
DEFAULT_METRICS: tuple[str, ...] = tuple(s.name for s in _SPECS if s.default)


def spec(name: str) -> MetricSpec:
    """The registry entry of ``name``; an unknown name is a ValueError listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def ranking_metrics() -> tuple[str, ...]:
    """The metrics that may order models."""
    return tuple(s.name for s in _SPECS if s.ranks)


def ranking_score(metric: str, value: float) -> float:
    """The number by which ``metric`` ranks checkpoints or models, smaller being better."""
    return spec(metric).score(value)


def best_of(metric: str, values: list[float]) -> float:
    """The best of several values of one metric by its direction (for ``none``: the last, i.e. the latest)."""
    s = spec(metric)
    if s.better == "lower":
        return min(values)
    if s.better == "higher":
        return max(values)
    if s.better == "chance":
        return min(values, key=lambda v: abs(v - 0.5))
    return values[-1]
