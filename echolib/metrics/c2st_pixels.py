"""Classifier two-sample test on pixels: a small CNN, trained out of fold, grouped by video.

The feature-space test (:mod:`echolib.metrics.c2st`) can only see what the
extractor keeps. A convolutional network trained on the images themselves sees
what the extractor may throw away: speckle statistics, a soft sector edge, a
global darkening, checkerboard artefacts. If it cannot tell generated frames
from held-out real ones, out of fold, neither can a person looking for
texture; if it can, the AUC says how easily.

The network is deliberately small (three stride-2 convolutions, global
average and maximum pooling, a linear score; about 25 k parameters) and trained
briefly with a fixed seed on 64x64 images, so one test costs seconds on a CPU
and gives the same AUC every time. Folds are grouped by video exactly as the
feature test's (:func:`echolib.metrics.c2st.classifier_folds`), and the AUC and
its score interval are computed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from echolib.metrics.c2st import C2ST, classifier_folds, delong
from echolib.metrics.intervals import auc_score_interval

SIZE = 64  # images are compared at this size (area-averaged from larger frames)


@dataclass(frozen=True)
class Recipe:
    """The classifier and its training, fixed so that every set is tested alike."""

    widths: tuple[int, int, int] = (16, 32, 48)
    epochs: int = 6
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    folds: int = 3


class PixelCritic(nn.Module):
    """Three stride-2 3x3 convolutions with SiLU, then mean and max pooling, then one linear score."""

    def __init__(self, widths: tuple[int, int, int] = Recipe.widths) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in widths:
            layers += [nn.Conv2d(c_in, c, 3, 2, 1), nn.SiLU()]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(2 * c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.head(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)).squeeze(1)


def _prepare(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, 1, H, W]`` -> float ``[N, 1, 64, 64]`` in [-1, 1]."""
    x = images.float()
    if x.shape[-1] != SIZE:
        x = F.interpolate(x, size=(SIZE, SIZE), mode="area" if x.shape[-1] > SIZE else "bilinear")
    return x.mul(2 / 255).sub(1)


def _fit_score(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, recipe: Recipe,
               seed: int) -> np.ndarray:
    torch.manual_seed(seed)  # initialisation (module constructors draw from the global generator)
    net = PixelCritic(recipe.widths)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(recipe.epochs):
        order = torch.randperm(len(x_train), generator=g)
        for start in range(0, len(order), recipe.batch):
            idx = order[start : start + recipe.batch]
            flip = torch.rand(len(idx), generator=g) < 0.5  # mirrored views: the heart's side is not the question
            xb = torch.where(flip[:, None, None, None], x_train[idx].flip(-1), x_train[idx])
            loss = F.binary_cross_entropy_with_logits(net(xb), y_train[idx].float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        return torch.sigmoid(net(x_test)).numpy()


def c2st_pixels(real: torch.Tensor, fake: torch.Tensor, real_groups: list[str], fake_groups: list[str],
                seed: int = 0, recipe: Recipe = Recipe()) -> C2ST:
    """Out-of-fold AUC of a small CNN telling ``fake`` (1) from ``real`` (0) uint8 images, folds grouped by video."""
    x = torch.cat([_prepare(real), _prepare(fake)])
    y_np, groups, splits = classifier_folds(real_groups, fake_groups, recipe.folds, seed)
    y = torch.from_numpy(y_np)
    scores = np.zeros(len(y_np))
    aucs, variances = [], []
    for k, (train_idx, test_idx) in enumerate(splits):
        tr, te = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
        scores[test_idx] = _fit_score(x[tr], y[tr], x[te], recipe, seed + 1000 * k)
        auc_k, var_k = delong(scores[test_idx], y_np[test_idx], groups[test_idx])
        aucs.append(auc_k)
        variances.append(var_k)
    auc = float(np.mean(aucs))
    k_real, k_fake = (len(np.unique(groups[y_np == c])) for c in (0, 1))
    lo, hi = auc_score_interval(auc, float(np.sum(variances)) / len(aucs) ** 2, 3 * k_real * k_fake / (k_real + k_fake))
    return C2ST(auc, lo, hi, len(splits), aucs, scores, y_np)
