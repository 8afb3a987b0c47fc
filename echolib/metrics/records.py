"""Metric records: one self-describing dict per number, appended and never rewritten.

A number without its context cannot be compared: an FID on 2,000 samples is not
an FID on 10,000, and an FID under the ``echo`` extractor is another metric from
one under Inception. Every value therefore travels with the sample sizes, the
feature extractor and the sha256 of its weights, the run, the training length
(kimg) and a timestamp. Records go to a JSONL file through
:func:`echolib.io.append_jsonl` (one fsync'ed line each), so evaluating again adds
lines and a crash loses at most the line being written.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from echolib.io import append_jsonl, read_jsonl

#: Every metric name :func:`echolib.metrics.evaluate` can produce, lower case.
METRICS: tuple[str, ...] = (
    "fid",  # Frechet distance of feature Gaussians (torch-fidelity)
    "kid",  # kernel (polynomial) MMD^2 of features, mean over subsets (torch-fidelity)
    "precision",  # share of generated samples inside the real feature manifold (torch-fidelity prc)
    "recall",  # share of real samples inside the generated feature manifold (torch-fidelity prc)
    "jsd",  # Jensen-Shannon DISTANCE of pooled 256-bin histograms, whole image, as the study reported
    "jsd_sector",  # the same distance, pixels inside the ultrasound sector mask only
    "ssim",  # mean SSIM over random real/generated pairs (the study's pairing)
    "psnr",  # PSNR of the MSE pooled over random real/generated pairs (the study's pairing)
    "ssim_nn",  # mean SSIM of each generated image with its nearest real image (pixel L2)
    "psnr_nn",  # PSNR of the MSE pooled over each generated image and its nearest real image (pixel L2)
    "ms_ssim",  # mean MS-SSIM among random pairs of generated images (diversity: lower = more diverse)
    "memorized_fraction",  # share of generated images nearer a training image than same-video frames (features)
    "memorized_fraction_pixel",  # the same in pixel space
    "c2st_auc",  # ROC AUC of a classifier telling real from generated, out of fold (0.5 = indistinguishable)
    "lpips",  # mean LPIPS (VGG16) over random real/generated pairs; needs weights files
)

#: The metrics that can rank a model's checkpoints (the trainer's ``best.pt``), with the number that
#: orders them, smaller being better. The pixel statistics on random pairs score real-vs-real like
#: real-vs-generated, and nearest-neighbour similarity or a memorised share of 0 do not order models.
RANKING: dict[str, str] = {
    "fid": "value",
    "kid": "value",
    "precision": "-value",
    "recall": "-value",
    "c2st_auc": "|value - 0.5|",
    "jsd": "value",
    "jsd_sector": "value",
}


def ranking_score(metric: str, value: float) -> float:
    """The number by which ``metric`` ranks checkpoints, smaller being better (see :data:`RANKING`)."""
    if metric not in RANKING:
        raise ValueError(f"{metric!r} cannot rank models; use one of {', '.join(RANKING)}")
    if metric in ("precision", "recall"):
        return -float(value)
    if metric == "c2st_auc":
        return abs(float(value) - 0.5)
    return float(value)


#: Keys every record carries, in this order.
RECORD_KEYS: tuple[str, ...] = (
    "metric",
    "value",
    "n_real",
    "n_fake",
    "extractor",
    "extractor_sha256",
    "kimg",
    "run",
    "time",
)


def make_record(
    metric: str,
    value: float,
    *,
    n_real: int,
    n_fake: int,
    extractor: str,
    extractor_sha256: str | None,
    kimg: float | None = None,
    run: str | None = None,
    when: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One metric value with everything needed to compare it later.

    ``extractor`` is a feature extractor name for feature-space metrics and
    ``"pixel"`` for metrics on raw intensities (then ``extractor_sha256`` is None).
    Non-finite values are stored as None: JSON has no NaN, and a reader must
    see that the value is missing rather than parse a non-standard token.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    value = float(value)
    record: dict[str, Any] = {
        "metric": metric,
        "value": value if math.isfinite(value) else None,
        "n_real": int(n_real),
        "n_fake": int(n_fake),
        "extractor": extractor,
        "extractor_sha256": extractor_sha256,
        "kimg": None if kimg is None else float(kimg),
        "run": None if run is None else str(run),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() if when is None else when)),
    }
    for key, val in extra.items():
        if key in record:
            raise ValueError(f"extra key {key!r} would overwrite a standard record key")
        record[key] = _plain(val)
    return record


def append_records(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Append records to a JSONL metrics file; earlier lines are never touched."""
    path = Path(path)
    for record in records:
        missing = [k for k in RECORD_KEYS if k not in record]
        if missing:
            raise ValueError(f"record for {record.get('metric')!r} lacks keys {missing}")
        append_jsonl(path, record)
    return path


def read_records(path: str | Path, metric: str | None = None) -> list[dict[str, Any]]:
    """All records of a metrics file (optionally one metric), skipping a torn last line."""
    records = read_jsonl(Path(path))
    return [r for r in records if metric is None or r.get("metric") == metric]


def _plain(value: Any) -> Any:
    """Numpy/torch scalars to Python numbers, non-finite floats to None (JSON-safe)."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
