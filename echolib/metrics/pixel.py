"""The study's pixel statistics (JSD, SSIM, PSNR) and MS-SSIM diversity, defined exactly.

The reference study reported JSD, SSIM and PSNR next to FID. Measured on the
shared data (see ``shared/data/README.md``) their definitions are:

* ``jsd``: :func:`scipy.spatial.distance.jensenshannon` (natural log) between the
  256-bin intensity histograms pooled over *all pixels of all images* of each
  set. It is a **distance**, in ``[0, sqrt(ln 2)]``; its square, the divergence,
  lies in ``[0, ln 2]``. ``jsd_sector`` is the same distance with both
  histograms restricted to the ultrasound sector (the mask is estimated from
  the real set, :func:`sector_mask`), so the black background, which every
  generator reproduces trivially, does not dilute the comparison.
* ``ssim`` / ``psnr``: **random unpaired** real/generated pairs
  (:func:`random_pairs`). SSIM is the mean over pairs with the Gaussian window
  of Wang et al. (2004) (11 taps, sigma 1.5, K1=0.01, K2=0.03, 'valid' region)
  and ``data_range=255`` (pytorch-msssim's definition); PSNR is ``10 log10(255^2 / MSE)``
  with the MSE pooled over all pairs (torchmetrics' default reduction): on the shared
  data these reproduce the study's numbers, a per-pair Box window or a mean of
  per-pair PSNRs do not. Random pairs score real-vs-real the same as
  real-vs-generated, so these numbers are reported for continuity with the study
  and cannot rank generators.
  ``ssim_nn`` / ``psnr_nn`` pair every generated image with its nearest real
  image in pixel space instead (:func:`nearest_pairs`), which says how close a
  sample comes to *some* real frame.
* ``ms_ssim``: mean MS-SSIM (Wang et al., 2003; five scales, their weights; fewer below 112 px)
  between random pairs of *generated* images: a diversity score, lower is more
  diverse; the same statistic on the real set is the reference.

The SSIM family is checked against pytorch-msssim (tests: equal within 1e-6 on
phantom frames at 64 and 128 px) but computed here, with banded matrix products:
the library filters with a one-channel ``conv2d``, 5 to 15 times slower on one CPU
thread, and its ``ms_ssim`` refuses images of 96 px or less with the 7-tap window,
which rules out the 64 px comparisons. torchmetrics (1.9) is no substitute: its SSIM
averages the map over the reflect-padded image instead of the 'valid' region (which
moves phantom frames' SSIM by up to 0.1 either way), and its Gaussian window has 11
taps whenever sigma is 1.5.

All functions take ``uint8 [N, 1, H, W]`` tensors (the dataset representation).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.distance import jensenshannon

#: MS-SSIM scale weights of Wang, Simoncelli & Bovik (2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_CHUNK = 256  # images per chunk: bounds memory of the windowed statistics


# -- histograms ----------------------------------------------------------------
def intensity_histogram(images: torch.Tensor, mask: torch.Tensor | None = None) -> np.ndarray:
    """Pooled 256-bin histogram (counts) of all pixels, or of the pixels where ``mask`` is true."""
    _check_uint8(images)
    pixels = images[:, 0]
    if mask is not None:
        pixels = pixels[:, mask.to(pixels.device)]
    return torch.bincount(pixels.reshape(-1).long(), minlength=256).double().cpu().numpy()


def image_histograms(images: torch.Tensor, mask: torch.Tensor | None = None) -> np.ndarray:
    """``[N, 256]`` per-image histograms (counts); summing rows gives :func:`intensity_histogram` of those images."""
    _check_uint8(images)
    pixels = images[:, 0]
    if mask is not None:
        pixels = pixels[:, mask.to(pixels.device)]
    flat = pixels.reshape(len(pixels), -1).long()
    offsets = torch.arange(len(flat), device=flat.device)[:, None] * 256
    counts = torch.bincount((flat + offsets).reshape(-1), minlength=256 * len(flat))
    return counts.reshape(len(flat), 256).double().cpu().numpy()


def histogram_js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) of two histograms of counts (normalised by ``jensenshannon``)."""
    return float(jensenshannon(p, q, base=None))


def js_distance(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Jensen-Shannon distance (natural log) of the pooled intensity histograms.

    ``jensenshannon`` normalises the counts to probabilities itself; the result
    is the square root of the divergence, hence at most ``sqrt(ln 2)``.
    """
    return histogram_js_distance(intensity_histogram(real, mask), intensity_histogram(fake, mask))


def sector_mask(images: torch.Tensor, min_fraction: float = 0.05) -> torch.Tensor:
    """``bool [H, W]``: pixels that are non-zero in at least ``min_fraction`` of the images.

    The preprocessing blanks everything outside a fixed sector (triangle plus
    half-ellipse), so on real frames the lit-at-all frequency is near 0 outside
    and near 1 inside; 5% tolerates a few stray bright pixels at the border.
    """
    _check_uint8(images)
    lit = torch.zeros(images.shape[-2:], dtype=torch.float64)
    for start in range(0, len(images), _CHUNK):
        lit += (images[start : start + _CHUNK, 0] > 0).double().sum(0).cpu()
    return lit / len(images) >= min_fraction


# -- pairing ------------------------------------------------------------------
def random_pairs(n_a: int, n_b: int, seed: int = 0, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of ``min(n_a, n_b)`` (or ``n``) random pairs, each image used at most once per side."""
    g = torch.Generator().manual_seed(seed)
    m = min(n_a, n_b) if n is None else min(n, n_a, n_b)
    return torch.randperm(n_a, generator=g)[:m], torch.randperm(n_b, generator=g)[:m]


def within_pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n // 2`` disjoint random pairs of distinct images from one set (for MS-SSIM diversity)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    half = n // 2
    return perm[:half], perm[half : 2 * half]


def pixel_vectors(images: torch.Tensor, size: int = 64) -> torch.Tensor:
    """float32 ``[N, size*size]`` intensities in [0, 1] after area averaging to ``size``.

    Nearest-neighbour searches in pixel space run at 64x64: area averaging
    removes speckle that differs between otherwise identical frames, and cuts
    the cost of an exhaustive search fourfold.
    """
    _check_uint8(images)
    out = []
    for start in range(0, len(images), _CHUNK):
        x = images[start : start + _CHUNK].float().div_(255.0)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="area")
        out.append(x.reshape(len(x), -1))
    return torch.cat(out)


def nearest_neighbours(query: torch.Tensor, bank: torch.Tensor, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean nearest neighbour in ``bank`` of each row of ``query``: (distance, index).

    Exhaustive, chunked over the query so memory stays at ``chunk x len(bank)``.
    The search ranks by the fast matmul expansion of the squared distance, whose
    float32 cancellation leaves an exact copy at a small positive distance; the
    returned distance is recomputed directly, so a copy has distance 0.
    """
    bank_sq = bank.pow(2).sum(1)
    dists, idx = [], []
    for start in range(0, len(query), chunk):
        q = query[start : start + chunk]
        d2 = q.pow(2).sum(1, keepdim=True) + bank_sq[None] - 2.0 * q @ bank.T
        where = d2.argmin(1)
        dists.append((q - bank[where]).norm(dim=1))
        idx.append(where)
    return torch.cat(dists), torch.cat(idx)


def nearest_pairs(real: torch.Tensor, fake: torch.Tensor, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair every generated image with its nearest real image (pixel L2 at ``size``)."""
    _, idx = nearest_neighbours(pixel_vectors(fake, size), pixel_vectors(real, size))
    return idx, torch.arange(len(fake))


# -- SSIM family ----------------------------------------------------------------
def _gaussian_taps(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _band(n: int, taps: torch.Tensor) -> torch.Tensor:
    """``[n, n - k + 1]`` matrix whose columns are the filter shifted: ``x @ band`` is a 'valid' 1-D filter."""
    k = len(taps)
    m = torch.zeros(n, n - k + 1, dtype=taps.dtype)
    for j in range(n - k + 1):
        m[j : j + k, j] = taps
    return m


def _blur(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filter as two matrix products with banded matrices.

    On CPU this is an order of magnitude faster than ``conv2d`` with a single
    channel, which PyTorch does not route to its optimised kernels.
    """
    rows, cols = _band(x.shape[-2], taps), _band(x.shape[-1], taps)
    return rows.T @ (x @ cols)


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, taps: torch.Tensor, data_range: float) -> tuple[torch.Tensor, ...]:
    """Per-image mean SSIM and mean contrast-structure term on float images."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _blur(x, taps), _blur(y, taps)
    var_x = _blur(x * x, taps) - mu_x * mu_x
    var_y = _blur(y * y, taps) - mu_y * mu_y
    cov = _blur(x * y, taps) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return (lum * cs).mean((1, 2, 3)), cs.mean((1, 2, 3))


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """SSIM of each pair ``(a[i], b[i])`` (Gaussian 11-tap window, sigma 1.5): float64 ``[N]``."""
    _check_pairs(a, b)
    taps = _gaussian_taps(11, 1.5)
    out = []
    for start in range(0, len(a), _CHUNK):
        x = a[start : start + _CHUNK].float().cpu()
        y = b[start : start + _CHUNK].float().cpu()
        out.append(_ssim_terms(x, y, taps, data_range)[0])
    return torch.cat(out).double()


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each pair in uint8 units: float64 ``[N]``."""
    _check_pairs(a, b)
    return torch.cat(
        [
            (a[s : s + _CHUNK].double().cpu() - b[s : s + _CHUNK].double().cpu()).pow(2).mean((1, 2, 3))
            for s in range(0, len(a), _CHUNK)
        ]
    )


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> float:
    """PSNR in dB of all pairs together: ``10 log10(range^2 / mean MSE)``.

    The MSE is pooled over every pixel of every pair before the logarithm (the
    default reduction of torchmetrics, which reproduces the study's values on the
    shared data).
    """
    return float(10.0 * math.log10(data_range**2 / max(float(mse(a, b).mean()), 1e-10 * data_range**2)))


def ms_ssim_levels(size: int) -> int:
    """The most scales (at most five) whose coarsest image still holds the 7-tap window.

    Five scales need 112 px; a 64 px comparison gets four. Fewer scales drop the
    coarsest terms, so values at different scale counts are not comparable, and
    every record says how many scales it used.
    """
    levels = len(MS_SSIM_WEIGHTS)
    while levels > 1 and size < 7 * 2 ** (levels - 1):
        levels -= 1
    return levels


def ms_ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0, levels: int = 5) -> torch.Tensor:
    """MS-SSIM of each pair: float64 ``[N]``.

    Five scales with 2x2 average pooling between them (Wang et al., 2003). The
    Gaussian window keeps sigma 1.5 but is truncated to 7 taps, because a
    128x128 frame is 8x8 at the coarsest scale and an 11-tap window would not
    fit; negative contrast-structure terms are clipped at zero before the
    weighted product, as usual, so the product stays defined. Smaller images
    take ``levels=ms_ssim_levels(size)``: the first ``levels`` weights,
    renormalised to sum to one (five keep the published weights as they are).
    """
    _check_pairs(a, b)
    if not 1 <= levels <= len(MS_SSIM_WEIGHTS):
        raise ValueError(f"ms_ssim: levels must be 1 to {len(MS_SSIM_WEIGHTS)}, got {levels}")
    if min(a.shape[-2:]) < 7 * 2 ** (levels - 1):
        raise ValueError(
            f"ms_ssim with {levels} scales needs images of at least {7 * 2 ** (levels - 1)} px, got "
            f"{tuple(a.shape[-2:])}; levels=ms_ssim_levels({min(a.shape[-2:])}) gives the most that fit"
        )
    taps = _gaussian_taps(7, 1.5)
    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels], dtype=torch.float64)
    if levels < len(MS_SSIM_WEIGHTS):  # five scales keep the published weights exactly
        weights = weights / weights.sum()
    out = []
    for start in range(0, len(a), _CHUNK):
        x = a[start : start + _CHUNK].float().cpu()
        y = b[start : start + _CHUNK].float().cpu()
        per_level = []
        for level in range(levels):
            s, cs = _ssim_terms(x, y, taps, data_range)
            per_level.append((s if level == levels - 1 else cs).double().clamp_min(0.0))
            if level < levels - 1:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        stacked = torch.stack(per_level, 1)  # [B, levels]
        out.append(torch.prod(stacked ** weights[None], 1))
    return torch.cat(out)


# -- checks ---------------------------------------------------------------------
def _check_uint8(images: torch.Tensor) -> None:
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 1:
        raise TypeError(f"expected uint8 [N, 1, H, W] images, got {images.dtype} {tuple(images.shape)}")


def _check_pairs(a: torch.Tensor, b: torch.Tensor) -> None:
    _check_uint8(a)
    _check_uint8(b)
    if a.shape != b.shape:
        raise ValueError(f"paired images must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
