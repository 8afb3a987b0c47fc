"""Metrics during training, and which checkpoint is the best so far.

Every ``train.metrics_kimg`` the trainer scores the EMA generator against its
own training frames (the records say so: ``source: train``; held-out scoring
is :func:`echolib.metrics.evaluate`'s job afterwards) and appends the records
to ``metrics.jsonl``. The first metric of ``train.metrics`` ranks the
checkpoints into ``best.pt``; which way is better, and whether a metric may
rank at all, is the metric registry's to say (:mod:`echolib.metrics.registry`),
never this module's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from echolib.errors import ConfigError
from echolib.metrics import evaluate as evaluate_metrics
from echolib.metrics.fidelity import extractor_weights_path
from echolib.metrics.registry import METRICS, ranking_metrics, ranking_score
from echolib.models.base import GenerativeModel
from echolib.train.config import TrainConfig
from echolib.train.sampling import SamplingStopped, model_sampler

if TYPE_CHECKING:
    from echolib.data.frames import FrameDataset


def check_settings(cfg: TrainConfig) -> None:
    """Refuse metric settings that could only fail after a tick of training: unknown names, a first metric
    that cannot rank, an extractor without weights."""
    if cfg.metrics_kimg <= 0:
        return
    unknown = [m for m in cfg.metrics if m not in METRICS]
    if unknown or not cfg.metrics:
        raise ConfigError(f"train.metrics: unknown {unknown or 'empty list'}; choose from {', '.join(METRICS)}")
    if cfg.metrics[0] not in ranking_metrics():
        raise ConfigError(
            f"train.metrics: the first metric ranks the checkpoints (best.pt), and {cfg.metrics[0]!r} cannot; "
            f"put one of {', '.join(ranking_metrics())} first"
        )
    extractor_weights_path(cfg.metrics_extractor)  # unknown name or missing weights: fail now, not after a tick


def evaluate(
    model: GenerativeModel,
    real: FrameDataset,
    cfg: TrainConfig,
    *,
    device: torch.device,
    kimg: float,
    run: Path,
    stop: Callable[[], bool],
    sample_options: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]] | None:
    """The records of ``train.metrics`` for ``model`` at ``kimg``; None when ``stop`` said so between chunks.

    Sampling thousands of images takes minutes on a CPU, so a stop signal
    abandons the evaluation between chunks rather than finishing it; the
    caller marks it pending and the resumed run redoes it. ``sample_options``
    go to every ``sample`` call (an image-conditioned model's held-out maps).
    """
    try:
        records = evaluate_metrics(
            real=real,
            fake=model_sampler(model, batch=max(cfg.batch, 64), stop=stop, **dict(sample_options or {})),
            metrics=list(cfg.metrics),
            extractor=cfg.metrics_extractor,
            n=cfg.metrics_n,
            seed=cfg.seed,
            device=str(device),
            kimg=kimg,
            run=str(run),
            warn_overlap=False,  # scored against training frames by design; the records say the overlap
        )
    except SamplingStopped:
        return None
    for r in records:
        r["source"] = "train"
    return records


def new_best(records: Sequence[dict[str, Any]], metric: str, best: float | None) -> float | None:
    """The ranking score of ``metric`` in ``records`` when it beats ``best`` (smaller is better), else None.

    A metric that was not computed, or was not finite (its value None), is never the best.
    """
    head = next((r for r in records if r["metric"] == metric), None)
    if head is None or head["value"] is None:
        return None
    score = ranking_score(head["metric"], head["value"])
    return score if best is None or score < best else None
