"""Downstream utility: does a classifier trained on synthetic frames work on real ones? (train on synthetic, test on real)

A synthetic dataset is worth sharing only if what is learnt from it transfers
to real patients. EchoNet-Synthetic (Reynaud et al., MICCAI 2024) and
EchoDiffusion report it for ejection fraction; the study this project
reproduces reported none. The task here is the one every frame set of this
project can label: **phase**, end-systole (ES) against end-diastole (ED).

One small classifier with one fixed recipe (:class:`Recipe`, :class:`PhaseNet`:
three stride-2 convolutions on 64x64 frames, their 8x8 map averaged to 4x4 and
one linear score over it, about 19 k parameters) is trained in turn on the real training frames, on the synthetic
frames and on both, and each is tested on the ES and ED frames of the held-out
real videos, which neither the generator nor any classifier saw. Accuracy
(threshold 0.5) and ROC AUC are reported with 95 % intervals over videos (the
two frames of a video are one unit: a cluster-robust score interval for the
accuracy, Obuchowski's clustered DeLong variance for the AUC). The intervals
cover the test set's sampling, not the classifier's training seed.

Labels (:func:`phase_labels`): a manifest's ``phase_label`` (the phantom's true
phase, ``preprocess echonet``'s expert or heuristic ED/ES, or
:func:`echolib.data.echonet.write_study_manifest`'s name rule), a synthetic
set's ``condition`` column, else the study's file-name rule on its shared
frames (``_f1`` its "systole" = ES, ``_f2`` its "diastole" = ED). Frames with
another label (``other``, the clip's first and last) take no part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from echolib.errors import DataError
from echolib.metrics.c2st import delong
from echolib.metrics.intervals import auc_score_interval, proportion_interval
from echolib.metrics.records import make_record

CLASSES = ("ED", "ES")  # 0, 1
TASKS = ("phase",)
SIZE = 64


@dataclass(frozen=True)
class Recipe:
    """The classifier and its training: fixed, so that real, synthetic and both are trained alike."""

    widths: tuple[int, int, int] = (16, 32, 48)
    pool: int = 4  # the last map averaged to pool x pool cells: where the chambers are, not only how dark
    dropout: float = 0.2
    steps: int = 600  # optimiser steps, whatever the set's size: real, synthetic and both get the same training
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4

    def describe(self) -> str:
        return (f"CNN {self.widths}, {self.pool}x{self.pool} map, linear (PhaseNet); {self.steps} steps of "
                f"{self.batch}, AdamW lr {self.lr}, {SIZE} px, horizontal flips")


class PhaseNet(nn.Module):
    """Three stride-2 3x3 convolutions with SiLU, the map averaged to ``pool x pool``, dropout, one linear score.

    A phase is a layout (how large the ventricle is against the heart around it),
    so the score reads a coarse map rather than a global average: trained on
    the 100 ES/ED frames of 45 phantom hearts and tested on 40 others, global
    mean and max pooling reached AUC 0.60, this 4x4 map 0.83.
    """

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in recipe.widths:
            layers += [nn.Conv2d(c_in, c, 3, 2, 1), nn.SiLU()]
            c_in = c
        layers += [nn.AdaptiveAvgPool2d(recipe.pool), nn.Flatten(), nn.Dropout(recipe.dropout)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * recipe.pool**2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)


@dataclass
class Labelled:
    """Frames with a phase label each (1 = ES, 0 = ED) and the unit each belongs to (its video, or itself)."""

    images: torch.Tensor  # uint8 [N, 1, H, W]
    labels: np.ndarray  # int [N]
    groups: list[str]
    name: str
    synthetic: int = 0  # how many of the frames are generated

    def __post_init__(self) -> None:
        if not (len(self.images) == len(self.labels) == len(self.groups)):
            raise DataError(f"{self.name}: {len(self.images)} frames, {len(self.labels)} labels, "
                            f"{len(self.groups)} groups")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(CLASSES)}

    def subset(self, index: Sequence[int] | np.ndarray) -> Labelled:
        index = np.asarray(index, dtype=np.int64)
        synthetic = len(index) if self.synthetic == len(self) else 0 if self.synthetic == 0 else None
        if synthetic is None:
            raise DataError(f"{self.name}: a subset of a mixed set cannot say how many of its frames are generated")
        return Labelled(self.images[torch.from_numpy(index)], self.labels[index],
                        [self.groups[i] for i in index], self.name, synthetic)

    def capped(self, n: int | None, seed: int = 0) -> Labelled:
        """At most ``n`` frames, a seeded choice (the whole set when ``n`` is None or larger)."""
        if n is None or n >= len(self):
            return self
        g = np.random.default_rng(seed)
        return self.subset(np.sort(g.choice(len(self), n, replace=False)))


def labelled(images: torch.Tensor, labels: Sequence[str | None], groups: Sequence[str], name: str,
             synthetic: bool = False) -> Labelled:
    """The ES and ED frames of a set; ``labels`` are names (ES, ED, other or None), frames of other labels dropped."""
    keep = [i for i, label in enumerate(labels) if label in CLASSES]
    if not keep:
        raise DataError(f"{name}: no frame is labelled ES or ED (labels seen: {sorted({str(x) for x in labels})[:5]})")
    y = np.array([CLASSES.index(labels[i]) for i in keep], dtype=np.int64)
    return Labelled(images[torch.tensor(keep, dtype=torch.long)], y, [groups[i] for i in keep], name,
                    len(keep) if synthetic else 0)


def combine(a: Labelled, b: Labelled, name: str) -> Labelled:
    return Labelled(torch.cat([_at_size(a.images), _at_size(b.images)]), np.concatenate([a.labels, b.labels]),
                    a.groups + b.groups, name, a.synthetic + b.synthetic)


def _at_size(images: torch.Tensor) -> torch.Tensor:
    """uint8 frames at the classifier's size (area when shrinking, bilinear when enlarging), still uint8."""
    if images.shape[-1] == SIZE and images.shape[-2] == SIZE:
        return images
    x = images.float()
    x = F.interpolate(x, size=(SIZE, SIZE), mode="area" if x.shape[-1] > SIZE else "bilinear")
    return x.round().clamp(0, 255).to(torch.uint8)


def _prepare(images: torch.Tensor) -> torch.Tensor:
    return _at_size(images).float().mul(2 / 255).sub(1)


def fit(train: Labelled, recipe: Recipe = Recipe(), seed: int = 0) -> PhaseNet:
    """The classifier trained on ``train`` with ``recipe`` from ``seed`` (deterministic on a CPU)."""
    counts = train.counts
    if min(counts.values()) < 2:
        raise DataError(f"{train.name}: the phase classifier needs at least 2 ES and 2 ED frames to train, has "
                        f"{counts}")
    x, y = _prepare(train.images), torch.from_numpy(train.labels).float()
    torch.manual_seed(seed)  # initialisation draws from the global generator
    net = PhaseNet(recipe)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    g = torch.Generator().manual_seed(seed + 1)
    order = torch.zeros(0, dtype=torch.long)
    for _ in range(recipe.steps):  # passes over the set in a fresh order each, batch after batch
        if len(order) < recipe.batch:
            order = torch.cat([order, torch.randperm(len(x), generator=g)])
        idx, order = order[: recipe.batch], order[recipe.batch :]
        flip = torch.rand(len(idx), generator=g) < 0.5  # a mirrored heart is in the same phase
        xb = torch.where(flip[:, None, None, None], x[idx].flip(-1), x[idx])
        loss = F.binary_cross_entropy_with_logits(net(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net


@torch.no_grad()
def scores(net: PhaseNet, frames: Labelled) -> np.ndarray:
    """P(ES) of every frame."""
    net.eval()
    x = _prepare(frames.images)
    return torch.cat([torch.sigmoid(net(x[i : i + 256])) for i in range(0, len(x), 256)]).numpy()


@dataclass
class Result:
    """One classifier's performance on the real test frames."""

    train: str
    accuracy: float
    accuracy_interval: tuple[float, float]
    auc: float
    auc_interval: tuple[float, float]
    n_train: int
    n_synthetic: int
    n_train_by_class: dict[str, int]
    scores: np.ndarray


def evaluate_on(net: PhaseNet, train: Labelled, test: Labelled) -> Result:
    """Accuracy and AUC of ``net`` on ``test``, with intervals over ``test``'s groups (videos)."""
    p = scores(net, test)
    correct = (p >= 0.5).astype(np.int64) == test.labels
    groups = np.asarray(test.groups)
    auc, var = delong(p, test.labels, groups)
    n_videos = len(set(test.groups))
    return Result(train.name, float(correct.mean()), proportion_interval(correct, test.groups), float(auc),
                  auc_score_interval(float(auc), float(var), float(n_videos)), len(train), train.synthetic,
                  train.counts, p)


def phase_utility(train_sets: Mapping[str, Labelled], test: Labelled, recipe: Recipe = Recipe(),
                  seed: int = 0) -> list[Result]:
    """One classifier per training set (real, synthetic, both, ...), each tested on the same real frames."""
    if min(test.counts.values()) < 2 or len(set(test.groups)) < 2:
        raise DataError(f"{test.name}: the test needs ES and ED frames of at least 2 videos, has {test.counts} of "
                        f"{len(set(test.groups))} videos")
    return [evaluate_on(fit(train, recipe, seed), train, test) for train in train_sets.values()]


def records(results: Sequence[Result], test: Labelled, recipe: Recipe, seed: int, **context: Any) -> list[dict]:
    """Two records per result (``phase_accuracy``, ``phase_auc``), self-describing: sets, sizes, recipe, seed.

    ``n_real`` counts the real test frames and ``n_fake`` the generated frames among the training frames
    (0 for the real set; ``n_train`` counts them all).
    """
    fingerprint = hashlib.sha256(test.images.contiguous().numpy().tobytes()).hexdigest()[:16]
    out = []
    for r in results:
        common = dict(task="phase", train_set=r.train, n_train=r.n_train, n_train_by_class=r.n_train_by_class,
                      n_test_videos=len(set(test.groups)), n_test_by_class=test.counts, classifier=recipe.describe(),
                      recipe=asdict(recipe), seed=seed, interval_method="95 %, clustered by video", **context)
        for metric, value, interval in (("phase_accuracy", r.accuracy, r.accuracy_interval),
                                        ("phase_auc", r.auc, r.auc_interval)):
            out.append(make_record(metric, value, n_real=len(test), n_fake=r.n_synthetic, extractor="pixel",
                                   extractor_sha256=None, interval=interval, real_fingerprint=fingerprint, **common))
    return out
