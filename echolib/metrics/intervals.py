"""Uncertainty of a set-to-set metric: half-sampling over videos, and a score interval for AUCs.

FID and KID of two finite sets move when other images are drawn. The sampling
units are videos, not frames: four frames of one heart are near-duplicates, so
resampling frames would pretend there is four times the evidence there is.

The classical bootstrap (drawing videos *with* replacement) does not work for
these statistics: a resample repeats images, and repeated images look like a
less diverse set, so every replicate's FID is biased upwards. Measured on the
shared frames at 64 px (944 held-out frames against 1,004 of other videos,
``echo`` features), FID 5.0 had bootstrap replicates with median 10.9, and no
reflection of their quantiles gave a sensible interval. Half-sampling avoids
repeats: each replicate takes half of the videos of each set *without*
replacement, and for a statistic that averages over images the spread of its
half-sample values around their mean is about the spread of the full-sample
estimate, since ``var(half) - var(full) = sigma^2 (2/n - 1/n) = sigma^2 / n``
(subsampling, Politis and Romano 1994). The interval is the estimate plus or
minus ``z`` half-sample standard deviations: the half-sample values carry a
larger bias than the full estimate (they are FIDs of half as many images), so
only their spread is used, and a standard deviation is steadier than tail
quantiles of a few dozen replicates. Checked against fresh draws: FID of 251
training videos against the held-out ones, drawn 40 times, scattered with a
standard deviation of 1.8 (fake side only); half-sampling one such draw, both
sides, gave 2.5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.stats import norm

DEFAULT_LEVEL = 0.95
#: half-sample replicates behind an interval (the standard deviation of 50 is within about 10 % of its limit)
DEFAULT_REPLICATES = 50

Statistic = Callable[[np.ndarray, np.ndarray], float]


def half_samples(groups: Sequence[str], n_rep: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n_rep`` index arrays, each the items of a random half of the groups (drawn without replacement)."""
    _, gid = np.unique(np.asarray(groups), return_inverse=True)
    k = int(gid.max()) + 1
    half = max(1, k // 2)
    out = []
    for _ in range(n_rep):
        keep = np.zeros(k, bool)
        keep[rng.choice(k, half, replace=False)] = True
        out.append(np.flatnonzero(keep[gid]))
    return out


def subsample_interval(
    statistic: Statistic,
    estimate: float,
    groups_real: Sequence[str],
    groups_fake: Sequence[str],
    n_rep: int = DEFAULT_REPLICATES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    lower_bound: float | None = None,
    upper_bound: float | None = None,
) -> tuple[float, float]:
    """Interval of ``statistic(real_index, fake_index)`` from half-samples of both sets' groups (videos).

    ``lower_bound`` and ``upper_bound`` clip where the metric cannot go (0 for
    FID, 1 for a share). Returns NaNs
    when fewer than four groups of a set make halves meaningless.
    """
    if min(len(set(groups_real)), len(set(groups_fake))) < 4:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    real_idx, fake_idx = half_samples(groups_real, n_rep, rng), half_samples(groups_fake, n_rep, rng)
    values = np.array([statistic(r, f) for r, f in zip(real_idx, fake_idx)])
    values = values[np.isfinite(values)]
    if len(values) < max(5, n_rep // 2):
        return float("nan"), float("nan")
    half = float(norm.ppf(0.5 + level / 2)) * float(values.std(ddof=1))
    lo, hi = estimate - half, estimate + half
    if lower_bound is not None:
        lo, hi = max(lo, lower_bound), max(hi, lower_bound)
    if upper_bound is not None:
        lo, hi = min(lo, upper_bound), min(hi, upper_bound)
    return float(lo), float(hi)


# -- statistics on index subsets ----------------------------------------------------------
def frechet_from_data(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two feature matrices, its cross term from one symmetric eigendecomposition of the smallest size.

    With centred data ``X``, the non-zero eigenvalues of ``S_r S_f`` are the
    squared singular values of ``X_r X_f^T`` (or, with ``X_r^T X_r = L L^T``, of
    ``X_f L``) over ``(n_r - 1)(n_f - 1)``: the eigenvalues of a symmetric Gram
    matrix ``min(n_r, n_f, d)`` on a side, one ``eigvalsh`` instead of the two
    ``d x d`` decompositions of the usual formula.
    """
    xr, xf = real - real.mean(0), fake - fake.mean(0)
    cr, cf = len(xr) - 1, len(xf) - 1
    m = None
    if xr.shape[1] < min(len(xr), len(xf)):  # d smallest: X_r^T X_r = L L^T, and S_r S_f ~ (X_f L)^T (X_f L)
        try:
            m = xf @ np.linalg.cholesky(xr.T @ xr)
        except np.linalg.LinAlgError:  # a feature constant on the real set: its covariance is singular
            m = None
    if m is None:
        m = xr @ xf.T
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0, None)).sum() / np.sqrt(cr * cf)
    mean_term = ((real.mean(0) - fake.mean(0)) ** 2).sum()
    return float(mean_term + (xr**2).sum() / cr + (xf**2).sum() / cf - 2 * cross)


def fid_statistic(real: np.ndarray, fake: np.ndarray) -> Statistic:
    """``(real_index, fake_index) -> FID`` of those rows."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    return lambda r, f: frechet_from_data(real[r], fake[f])


def kid_statistic(real: np.ndarray, fake: np.ndarray) -> Statistic:
    """``(real_index, fake_index) -> unbiased MMD^2`` with KID's kernel ``(x.y / d + 1)^3`` (kernels computed once)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d = fake.shape[1]
    k_ff = (fake @ fake.T / d + 1) ** 3
    k_rr = (real @ real.T / d + 1) ** 3
    k_fr = (fake @ real.T / d + 1) ** 3

    def mean_off_diagonal(k: np.ndarray) -> float:
        n = len(k)
        return float((k.sum() - np.trace(k)) / (n * (n - 1)))

    return lambda r, f: mean_off_diagonal(k_ff[np.ix_(f, f)]) + mean_off_diagonal(k_rr[np.ix_(r, r)]) \
        - 2 * float(k_fr[np.ix_(f, r)].mean())


def mean_statistic(values: np.ndarray, of: str) -> Statistic:
    """``(real_index, fake_index) -> mean`` of a per-image value of one set (``of``: "real" or "fake")."""
    values = np.asarray(values, np.float64)
    if of == "real":
        return lambda r, f: float(values[r].mean())
    return lambda r, f: float(values[f].mean())


# -- AUC ------------------------------------------------------------------------------
def auc_score_interval(auc: float, variance: float, n_max: float, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """A Wilson-type score interval for an AUC with effective sample size ``auc (1 - auc) / variance``.

    The Wald interval ``auc +- z sd`` collapses to a point at 0 and 1, where a
    classifier separates the two samples perfectly and the DeLong variance is 0:
    it would claim certainty from a few hundred images. Treating the AUC as a
    proportion observed on ``n_eff`` independent units (Newcombe, 2006) gives an
    interval that stays inside [0, 1] and keeps a width there; ``n_max`` (the
    number of independent units, e.g. the harmonic mean of the two sets' video
    counts) bounds ``n_eff`` where the variance says nothing.
    """
    z = float(norm.ppf(0.5 + level / 2))
    if variance > 0 and 0 < auc < 1:
        n_eff = min(auc * (1 - auc) / variance, n_max)
    else:
        n_eff = n_max
    denom = 1 + z * z / n_eff
    centre = (auc + z * z / (2 * n_eff)) / denom
    half = z * np.sqrt(auc * (1 - auc) / n_eff + z * z / (4 * n_eff * n_eff)) / denom
    # the score interval contains the AUC; say so exactly where rounding would put an end a hair inside it
    return float(max(0.0, min(centre - half, auc))), float(min(1.0, max(centre + half, auc)))


def proportion_variance(flags: Sequence[bool] | np.ndarray, groups: Sequence[str]) -> float:
    """Cluster-robust (sandwich) variance of a share of flagged items: ``G/(G-1) sum_g (sum_{i in g} (x_i - p))^2 / n^2``.

    Items come in groups (the frames of one video); four near-duplicate frames
    of a heart that are flagged together count about once, not four times.
    """
    x = np.asarray(flags, dtype=np.float64)
    n = len(x)
    if n == 0:
        return float("nan")
    _, gid = np.unique(np.asarray(groups), return_inverse=True)
    sums = np.bincount(gid, weights=x - x.mean())
    k = len(sums)
    return float((sums**2).sum()) / n**2 * (k / (k - 1) if k > 1 else 1.0)


def proportion_interval(flags: Sequence[bool] | np.ndarray, groups: Sequence[str], level: float = DEFAULT_LEVEL,
                        extra_variance: float = 0.0) -> tuple[float, float]:
    """A score interval for a share of flagged items that come in groups.

    The variance is :func:`proportion_variance` (plus ``extra_variance``, the
    part another estimate adds), and the interval is :func:`auc_score_interval`'s
    Wilson form on the effective sample size it implies (at most ``n``). A share
    of 0 or 1 has no variance to say how alike a group's items are, so it keeps
    the width that the number of groups allows.
    """
    x = np.asarray(flags, dtype=np.float64)
    if len(x) == 0:
        return float("nan"), float("nan")
    variance = proportion_variance(x, groups) + extra_variance
    n_max = float(len(x)) if variance > 0 else float(len(set(groups)))
    return auc_score_interval(float(x.mean()), variance, n_max, level)


def prc_statistic(real: np.ndarray, fake: np.ndarray, which: str, neighborhood: int) -> Statistic:
    """``(real_index, fake_index) -> precision or recall`` (k-NN balls, as torch-fidelity's ``prc``) of those rows.

    The pairwise distances are computed once; a replicate recomputes the balls'
    radii among the rows it keeps, as the metric would on a set of that size.
    """
    r, f = torch.from_numpy(np.asarray(real, np.float32)), torch.from_numpy(np.asarray(fake, np.float32))
    d_rr, d_ff, d_fr = torch.cdist(r, r), torch.cdist(f, f), torch.cdist(f, r)

    def stat(ri: np.ndarray, fi: np.ndarray) -> float:
        rt, ft = torch.from_numpy(ri), torch.from_numpy(fi)
        cross = d_fr[ft][:, rt]
        if which == "precision":  # generated samples inside some real ball
            radii = d_rr[rt][:, rt].kthvalue(neighborhood + 1, dim=1).values
            return float((cross <= radii[None, :]).any(1).float().mean())
        radii = d_ff[ft][:, ft].kthvalue(neighborhood + 1, dim=1).values  # real samples inside some generated ball
        return float((cross.T <= radii[None, :]).any(1).float().mean())

    return stat
