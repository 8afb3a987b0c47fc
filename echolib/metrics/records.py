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
from echolib.metrics.registry import METRICS

#: Keys every record carries, in this order.
RECORD_KEYS: tuple[str, ...] = (
    "metric",
    "value",
    "interval",
    "n_real",
    "n_fake",
    "real_fingerprint",
    "extractor",
    "extractor_sha256",
    "extractor_overlap",
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
    interval: tuple[float, float] | list[float] | None = None,
    real_fingerprint: str | None = None,
    extractor_overlap: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One metric value with everything needed to compare it later.

    ``extractor`` is a feature extractor name for feature-space metrics and
    ``"pixel"`` for metrics on raw intensities (then ``extractor_sha256`` is None).
    ``interval`` is a 95 % interval ``[low, high]`` where one was computed;
    ``real_fingerprint`` names the real image set (sha256 of its pixels, 16
    hex digits); ``extractor_overlap`` is the share of real images whose videos
    the extractor trained on (None where unknown or not applicable).
    Non-finite values are stored as None: JSON has no NaN, and a reader must
    see that the value is missing rather than parse a non-standard token.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    value = float(value)
    record: dict[str, Any] = {
        "metric": metric,
        "value": value if math.isfinite(value) else None,
        "interval": None if interval is None else [_plain(float(v)) for v in interval],
        "n_real": int(n_real),
        "n_fake": int(n_fake),
        "real_fingerprint": real_fingerprint,
        "extractor": extractor,
        "extractor_sha256": extractor_sha256,
        "extractor_overlap": None if extractor_overlap is None else float(extractor_overlap),
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
