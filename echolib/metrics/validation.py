"""The metric validation suite: pairs of image sets whose order is known, and how often each metric agrees.

A metric that ranks generators must first rank sets whose order nobody
disputes. The suite scores many image sets against one real reference and
checks every pair whose better member is known:

* **corruptions** of real frames (of videos neither the reference nor the
  feature extractor contains) at graded strengths: the clean frames beat the
  weakest corruption, and each strength beats the next
  (:data:`~echolib.metrics.corruptions.SUITE_STRENGTHS`);
* **training progress**: later checkpoints of a run beat earlier ones, where a
  person sees the samples improve;
* **human judgments**: the two-set mode of the Turing app, where raters pick
  the grid that looks more like real echoes (only where answer files exist:
  the suite never invents a judgment);
* **stated pairs**, such as the published model's samples against an early
  checkpoint's, given with the reason on the command line.

For each metric the suite reports the share of pairs it orders the right way,
per kind of pair, and lists the pairs it gets wrong. Which way is better comes
from the registry (:mod:`echolib.metrics.registry`); a tie counts as wrong.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from echolib.metrics.corruptions import SUITE_STRENGTHS, corrupt, duplicates
from echolib.metrics.evaluate import evaluate
from echolib.metrics.inputs import ImageSet
from echolib.metrics.registry import spec
from echolib.progress import progress_bar

#: what the suite scores every set with: name of the column -> (metric, extractor or None for the given one)
FEATURE_METRICS = ("fid", "kid", "precision", "recall", "c2st_auc")
PIXEL_METRICS = ("c2st_pixel_auc", "jsd", "jsd_sector")
CLEAN = "real (other videos)"


@dataclass(frozen=True)
class Pair:
    """Two sets of the suite, the better first; ``source`` says how the order is known."""

    better: str
    worse: str
    source: str  # "corruption", "training", "human" or "stated"
    note: str = ""


def corruption_sets(base: ImageSet, strengths: Mapping[str, Sequence[float]] = SUITE_STRENGTHS,
                    seed: int = 1) -> tuple[dict[str, ImageSet], list[Pair]]:
    """The clean frames and every graded corruption of them, with the pairs that order them.

    A duplicated image keeps the video of the image it copies, so the
    classifier tests hold the copies and their original in one fold.
    """
    sets = {CLEAN: base}
    pairs: list[Pair] = []
    for kind, levels in strengths.items():
        previous = CLEAN
        for s in levels:
            name = f"{kind} {s:g}"
            if kind == "duplicates":
                images, source = duplicates(base.images, s, seed)
                videos = [base.video_ids[int(i)] for i in source]
            else:
                images, videos = corrupt(base.images, kind, s, seed), list(base.video_ids)
            sets[name] = ImageSet(images, videos, name)
            pairs.append(Pair(previous, name, "corruption", f"{kind}: {previous} beats {name}"))
            previous = name
    return sets, pairs


def ordered_pairs(names: Sequence[str], source: str, note: str = "") -> list[Pair]:
    """Pairs of a sequence whose later members are better (training progress): each member and the next."""
    return [Pair(b, a, source, note) for a, b in itertools.pairwise(names)]


def column(metric: str, extractor: str) -> str:
    """A score's column: feature metrics carry their extractor (``fid [echo]``), pixel metrics do not."""
    return f"{metric} [{extractor}]" if spec(metric).space == "features" else metric


def score_sets(reference: ImageSet, sets: Mapping[str, ImageSet], extractors: Sequence[str] = ("echo",),
               metrics: Sequence[str] = FEATURE_METRICS + PIXEL_METRICS, *, seed: int = 0,
               device: str = "auto", progress: bool = False) -> dict[str, dict[str, float]]:
    """``{set: {column: value}}``: every set against ``reference``, feature metrics once per extractor."""
    feature = [m for m in metrics if spec(m).space == "features"]
    pixel = [m for m in metrics if spec(m).space != "features"]
    scores: dict[str, dict[str, float]] = {}
    for name, images in progress_bar(sets.items(), enabled=progress, desc="suite", unit="set"):
        row: dict[str, float] = {}
        for i, extractor in enumerate(extractors):
            wanted = feature + (pixel if i == 0 else [])
            if not wanted:
                continue
            for r in evaluate(reference, images, wanted, extractor=extractor, seed=seed, device=device,
                              warn_overlap=False):
                row[column(r["metric"], extractor)] = float("nan") if r["value"] is None else r["value"]
        scores[name] = row
    return scores


def agreement(scores: Mapping[str, Mapping[str, float]], pairs: Sequence[Pair]) -> list[dict[str, Any]]:
    """Per column and kind of pair: how many pairs it orders right, the share, and the pairs it gets wrong."""
    columns = list(dict.fromkeys(c for row in scores.values() for c in row))
    out = []
    for col in columns:
        metric = col.split(" [")[0]
        s = spec(metric)
        if not (s.ranks or s.better in ("lower", "higher")):
            continue
        for source in dict.fromkeys(p.source for p in pairs):
            judged = [p for p in pairs if p.source == source and col in scores.get(p.better, {})
                      and col in scores.get(p.worse, {})]
            if not judged:
                continue
            wrong = [p for p in judged if not _ordered(s.better, scores[p.better][col], scores[p.worse][col])]
            out.append({"column": col, "source": source, "pairs": len(judged), "agreed": len(judged) - len(wrong),
                        "share": (len(judged) - len(wrong)) / len(judged),
                        "wrong": [f"{p.better} vs {p.worse}" for p in wrong]})
    return out


def _ordered(better: str, a: float, b: float) -> bool:
    """Whether ``a`` (the better set's value) is strictly better than ``b``."""
    if math.isnan(a) or math.isnan(b):  # not ordered
        return False
    if better == "higher":
        return a > b
    if better == "chance":
        return abs(a - 0.5) < abs(b - 0.5)
    return a < b


def subset(images: ImageSet, n: int | None, seed: int = 0) -> ImageSet:
    """A seeded random ``n`` of the images (all when ``n`` is None or larger)."""
    if n is None or n >= len(images):
        return images
    g = torch.Generator().manual_seed(seed)
    return images.subset(torch.randperm(len(images), generator=g)[:n].sort().values)
