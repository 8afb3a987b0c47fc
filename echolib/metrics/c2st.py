"""Classifier two-sample test: can a small classifier tell generated images from real ones?

If the two sets come from one distribution, no classifier beats chance on data
it has not seen: the out-of-fold ROC AUC is 0.5. The further apart they are,
the closer the AUC comes to 1 (Lopez-Paz & Oquab, 2017). Unlike FID the number
has an absolute scale and a confidence interval.

The classifier is an L2-regularised logistic regression (C = 0.1) on the
standardised features of the chosen extractor. Cross-validation is grouped by video: all
frames of a real video fall in the same fold, because a classifier that saw
one frame of a heart would recognise its siblings and inflate the AUC.
Each fold's held-out AUC is computed on its own and the reported AUC is their
mean. Pooling the out-of-fold scores of all folds into one ROC curve would be
biased below 0.5 under the null: a fold whose test part holds slightly more
generated images was trained on slightly fewer, so its model scores them
lower, and ranking scores across models turns that into an anti-correlation.
The 95 % confidence interval combines the folds' variances of the
Mann-Whitney statistic, DeLong's (DeLong et al., 1988) generalised to clustered
data by Obuchowski (1997) so that the frames of one video count as one unit,
treating the disjoint test folds as independent. It is a score (Wilson-type)
interval on that variance's effective sample size, not ``auc +- z sd``: at an
AUC of 1, where every generated image is told apart, the variance is 0 and a
Wald interval would read [1, 1]; the score interval keeps the width that a few
hundred videos allow (:func:`echolib.metrics.intervals.auc_score_interval`).

Groups are shared across the two classes: a generated image that translates
the contours of a real frame (Pix2Pix) carries that frame's video id, and lands
in the same fold as the video, so the classifier never trains on a heart whose
translation it is tested on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import norm, rankdata

from echolib.errors import DataError
from echolib.metrics.intervals import auc_score_interval


@dataclass
class C2ST:
    auc: float  # mean of the folds' held-out AUCs
    ci_low: float
    ci_high: float
    folds: int
    fold_aucs: list[float]
    scores: np.ndarray  # out-of-fold P(generated) per sample, real first then generated
    labels: np.ndarray  # 0 real, 1 generated


def delong(scores: np.ndarray, labels: np.ndarray, clusters: np.ndarray | None = None) -> tuple[float, float]:
    """AUC and its variance: DeLong's, or Obuchowski's (1997) generalisation when units come in clusters.

    The frames of one video are near-duplicates, so they are one unit of
    evidence, not four; ``clusters`` (one id per score) widens the variance
    accordingly. With every unit its own cluster this is exactly DeLong.
    """
    labels = np.asarray(labels)
    pos_idx, neg_idx = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    m, n = len(pos_idx), len(neg_idx)
    if m < 2 or n < 2:
        raise DataError("an AUC confidence interval needs at least two samples of each class")
    pos, neg = scores[pos_idx], scores[neg_idx]
    all_ranks = rankdata(np.concatenate([pos, neg]))
    auc = (all_ranks[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (all_ranks[:m] - rankdata(pos)) / n  # per positive: share of negatives below it (ties 1/2)
    v01 = 1.0 - (all_ranks[m:] - rankdata(neg)) / m  # per negative: share of positives above it
    if clusters is None:
        return float(auc), float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    _, cid = np.unique(np.asarray(clusters), return_inverse=True)
    k = cid.max() + 1
    sum10 = np.bincount(cid[pos_idx], weights=v10, minlength=k)  # V10 summed over each cluster's positives
    sum01 = np.bincount(cid[neg_idx], weights=v01, minlength=k)
    m_i = np.bincount(cid[pos_idx], minlength=k)
    n_i = np.bincount(cid[neg_idx], minlength=k)
    d10, d01 = sum10 - m_i * auc, sum01 - n_i * auc
    k10, k01 = int((m_i > 0).sum()), int((n_i > 0).sum())
    if k10 < 2 or k01 < 2:
        raise DataError("an AUC confidence interval needs at least two clusters of each class")
    s10 = k10 / ((k10 - 1) * m) * np.sum(d10**2)
    s01 = k01 / ((k01 - 1) * n) * np.sum(d01**2)
    s11 = k / (k - 1) * np.sum(d10 * d01)
    return float(auc), float(s10 / m + s01 / n + 2 * s11 / (m * n))


def normal_ci(value: float, variance: float, level: float = 0.95) -> tuple[float, float]:
    half = norm.ppf(0.5 + level / 2) * math.sqrt(max(variance, 0.0))
    return float(max(0.0, value - half)), float(min(1.0, value + half))


def delong_ci(scores: np.ndarray, labels: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """AUC and its DeLong confidence interval (clipped to [0, 1])."""
    auc, var = delong(scores, labels)
    return (auc, *normal_ci(auc, var, level))


def c2st(
    real: torch.Tensor,
    fake: torch.Tensor,
    real_groups: list[str],
    fake_groups: list[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    C: float = 0.1,
) -> C2ST:
    """Out-of-fold AUC of a logistic regression separating ``fake`` (1) from ``real`` (0) feature rows."""
    # lazy: sklearn takes seconds to import; only the C2ST needs it
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = torch.cat([real.float().cpu(), fake.float().cpu()]).double().numpy()
    fake_groups = fake_groups if fake_groups is not None else [f"fake{i}" for i in range(len(fake))]
    y, groups, splits = classifier_folds(real_groups, fake_groups, folds, seed)
    scores = np.zeros(len(y))
    aucs, variances = [], []
    for train_idx, test_idx in splits:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        clf.fit(x[train_idx], y[train_idx])
        scores[test_idx] = clf.predict_proba(x[test_idx])[:, 1]
        auc_k, var_k = delong(scores[test_idx], y[test_idx], groups[test_idx])
        aucs.append(auc_k)
        variances.append(var_k)
    auc = float(np.mean(aucs))
    k_real, k_fake = (len(np.unique(groups[y == c])) for c in (0, 1))
    lo, hi = auc_score_interval(auc, float(np.sum(variances)) / len(aucs) ** 2, 3 * k_real * k_fake / (k_real + k_fake))
    return C2ST(auc, lo, hi, len(splits), aucs, scores, y)


def classifier_folds(real_groups: list[str], fake_groups: list[str], folds: int,
               seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Labels (0 real, 1 generated), groups and folds of a test: one group id per video, shared by both classes."""
    y = np.concatenate([np.zeros(len(real_groups), int), np.ones(len(fake_groups), int)])
    groups = np.array(list(real_groups) + list(fake_groups))
    return y, groups, grouped_folds(y, groups, folds, seed)


def grouped_folds(
    labels: np.ndarray, groups: np.ndarray, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds grouped by video, as many as ``folds`` allows with two videos of each class per test fold.

    Each test fold's confidence interval counts videos, not frames, and needs at
    least two of each class. Scikit-learn's balancing can leave a fold with one
    real video when a small real set meets many single-image generated groups,
    so fewer folds are taken until every test fold has two (a large set keeps
    ``folds``).
    """
    # lazy: sklearn takes seconds to import; only the C2ST needs it
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = min(len(np.unique(groups[labels == c])) for c in (0, 1))
    for k in range(min(folds, n_groups // 2), 1, -1):
        splits = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(labels, labels, groups))
        if all(len(np.unique(groups[test][labels[test] == c])) >= 2 for _, test in splits for c in (0, 1)):
            return splits
    raise DataError(
        f"the classifier test needs at least 4 videos (or generated images) in each set, so that every test fold "
        f"holds two of each; the smaller set has {n_groups}"
    )
