"""Controlled degradations of real frames, to check that a metric sees what it should.

A useful distance between image sets is about zero for two samples of the same
distribution and grows with every departure from it. Feeding it real frames
degraded by a known amount, at increasing strength, turns that requirement into
a test. The degradations are the ways generated echoes go wrong: additive noise,
blur, speckle smoothed away (an over-regularised generator) or exaggerated,
global gain, gamma and contrast off (a darker or flatter image), checkerboard
artefacts (transposed convolutions), blockiness, a soft sector edge, the sector's
geometry off, smooth distortion of the anatomy, and duplicated images (mode
collapse). Each function maps uint8 ``[N, 1, H, W]`` to the same, is
deterministic for a given seed, and is the identity at strength 0. Lengths in
pixels are given at 128 px and scaled with the image (a 2 px blur at 128 px is a
1 px blur at 64 px), so one strength means the same degradation at every size.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

CORRUPTIONS = ("noise", "blur", "speckle_smoothing", "distortion", "speckle_exaggeration", "gain", "gamma",
               "contrast", "checkerboard", "blockiness", "edge_softening", "geometry", "duplicates")


def gaussian_noise(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Add N(0, sigma^2) noise in 8-bit units, then round and clip."""
    if sigma <= 0:
        return images.clone()
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=g) * sigma
    return (images.float() + noise).round_().clamp_(0, 255).to(torch.uint8)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Isotropic Gaussian blur with standard deviation ``sigma`` pixels (mirrored borders)."""
    if sigma <= 0:
        return images.clone()
    arr = images.numpy()
    out = np.empty_like(arr)
    for i in range(len(arr)):
        out[i, 0] = cv2.GaussianBlur(arr[i, 0], (0, 0), float(sigma), borderType=cv2.BORDER_REFLECT_101)
    return torch.from_numpy(out)


def speckle_smoothing(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Edge-preserving despeckling: a bilateral filter whose range and space sigmas are ``strength``.

    Flattens the granular speckle inside tissue while keeping chamber walls,
    the signature of generators that learn the mean image but not its texture.
    The neighbourhood diameter grows with the strength (``d = 2 ceil(strength/10) + 1``).
    """
    if strength <= 0:
        return images.clone()
    d = 2 * math.ceil(strength / 10) + 1
    arr = images.numpy()
    out = np.empty_like(arr)
    for i in range(len(arr)):
        out[i, 0] = cv2.bilateralFilter(arr[i, 0], d, float(strength), float(strength))
    return torch.from_numpy(out)


def elastic_distortion(images: torch.Tensor, amplitude: float, seed: int = 0, smoothness: float = 12.0) -> torch.Tensor:
    """Warp by a smooth random displacement field whose RMS length is ``amplitude`` pixels.

    The field is white noise low-passed with a Gaussian of ``smoothness`` pixels
    and rescaled, one field per image; sampling is bilinear with zero padding.
    """
    if amplitude <= 0:
        return images.clone()
    n, _, h, w = images.shape
    g = torch.Generator().manual_seed(seed)
    field = torch.randn(n, 2, h, w, generator=g)
    radius = math.ceil(3 * smoothness)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    taps = torch.exp(-(x**2) / (2 * smoothness**2))
    taps /= taps.sum()
    field = F.pad(field.reshape(n * 2, 1, h, w), (radius,) * 4, mode="circular")
    field = F.conv2d(F.conv2d(field, taps.view(1, 1, 1, -1)), taps.view(1, 1, -1, 1)).reshape(n, 2, h, w)
    field = field / field.pow(2).sum(1, keepdim=True).mean((2, 3), keepdim=True).sqrt() * amplitude
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    gx = (xs[None] + field[:, 0]) * (2.0 / (w - 1)) - 1.0
    gy = (ys[None] + field[:, 1]) * (2.0 / (h - 1)) - 1.0
    grid = torch.stack([gx, gy], -1)
    out = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _scale(images: torch.Tensor) -> float:
    """Pixel lengths are given at 128 px; this converts them to the images' own size."""
    return images.shape[-1] / 128.0


def _sector(images: torch.Tensor, threshold: int = 8) -> torch.Tensor:
    """Float ``[N, 1, H, W]`` mask of each frame's ultrasound sector (pixels brighter than the black background,
    with holes inside the fan closed by a 3-pass max filter of the column-wise fill)."""
    bright = (images > threshold).float()
    k = max(3, 2 * round(3 * _scale(images)) + 1)
    return F.max_pool2d(F.avg_pool2d(bright, k, 1, k // 2).gt(0.15).float(), 3, 1, 1)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round_().clamp_(0, 255).to(torch.uint8)


def speckle_exaggeration(images: torch.Tensor, strength: float, seed: int = 0) -> torch.Tensor:
    """Multiplicative log-normal speckle ``x * exp(strength * N(0, 1))`` on the tissue: grainier than real echoes."""
    if strength <= 0:
        return images.clone()
    g = torch.Generator().manual_seed(seed)
    return _to_uint8(images.float() * torch.exp(strength * torch.randn(images.shape, generator=g)))


def gain(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Every intensity scaled by ``1 - strength``: a darker image (a generator that lost the overall brightness)."""
    return _to_uint8(images.float() * (1.0 - strength))


def gamma(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Intensities in [0, 1] raised to ``1 + strength``: mid-greys darkened, black and white kept."""
    return _to_uint8((images.float() / 255.0).pow(1.0 + strength) * 255.0)


def contrast(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Inside the sector, deviations from the frame's mean intensity scaled by ``1 - strength``: a flatter image."""
    x, mask = images.float(), _sector(images)
    mean = (x * mask).sum((2, 3), keepdim=True) / mask.sum((2, 3), keepdim=True).clamp_min(1)
    return _to_uint8(torch.where(mask > 0, mean + (x - mean) * (1.0 - strength), x))


def checkerboard(images: torch.Tensor, strength: float) -> torch.Tensor:
    """A period-2 checkerboard of ``strength`` grey levels on the tissue: the artefact of transposed convolutions."""
    h, w = images.shape[-2:]
    pattern = ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2).float() * 2 - 1
    return _to_uint8(images.float() + strength * pattern * (images > 0).float())


def blockiness(images: torch.Tensor, block: float) -> torch.Tensor:
    """Each ``block`` x ``block`` square (px at 128 px) replaced by its mean: blocky, over-upsampled images."""
    k = round(block * _scale(images))
    if k <= 1:
        return images.clone()
    h, w = images.shape[-2:]
    small = F.avg_pool2d(images.float(), k, k, ceil_mode=True)
    return _to_uint8(F.interpolate(small, scale_factor=k, mode="nearest")[..., :h, :w])


def edge_softening(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """The image blurred with ``sigma`` px (at 128 px) along the sector's border only: a soft, smeared fan edge,
    as an undertrained generator draws it, with the tissue inside left sharp.

    The blend weight is 1 on the border and falls to 0 within about two sigmas
    of it, on either side, so brightness bleeds into the black background as
    well as fading inside.
    """
    if sigma <= 0:
        return images.clone()
    s = sigma * _scale(images)
    radius = max(1, math.ceil(3 * s))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    taps = torch.exp(-(x**2) / (2 * s * s))
    taps /= taps.sum()

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.pad(t, (radius,) * 4, mode="replicate")
        return F.conv2d(F.conv2d(t, taps.view(1, 1, 1, -1)), taps.view(1, 1, -1, 1))

    soft = blur(_sector(images))
    weight = (1 - (2 * soft - 1).abs()).clamp(0, 1)
    x_float = images.float()
    return _to_uint8(weight * blur(x_float) + (1 - weight) * x_float)


def geometry(images: torch.Tensor, strength: float) -> torch.Tensor:
    """The fan widened by ``1 + strength`` about its apex (top centre) and shortened as much: a sector of the
    wrong shape, as a generator that has not learnt the probe's geometry draws it."""
    if strength == 0:
        return images.clone()
    n, _, h, w = images.shape
    sx, sy = 1.0 / (1.0 + strength), 1.0 + strength  # sample closer to the centre across, further down
    theta = torch.tensor([[sx, 0.0, 0.0], [0.0, sy, sy - 1.0]], dtype=torch.float32).expand(n, 2, 3)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    return _to_uint8(F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False))


def duplicates(images: torch.Tensor, share: float, seed: int = 0, keep: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Mode collapse: a ``share`` of the images replaced by copies of ``keep`` of the others; also each image's source.

    Returns the images and, per image, the index of the image it is a copy of
    (itself when untouched), so copies can be grouped with their original.
    """
    n = len(images)
    source = torch.arange(n)
    if share <= 0:
        return images.clone(), source
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    replaced = order[: round(share * n)]
    kept = order[round(share * n):][:keep]
    if len(kept) == 0:
        kept = order[:1]
    source[replaced] = kept[torch.randint(len(kept), (len(replaced),), generator=g)]
    return images[source].clone(), source


def corrupt(images: torch.Tensor, kind: str, strength: float, seed: int = 0) -> torch.Tensor:
    """Dispatch by name; the strength's unit is the one its function documents (see :data:`STRENGTHS`).

    ``duplicates`` returns the images only here; :func:`duplicates` also says
    which image each copy came from.
    """
    if kind == "noise":
        return gaussian_noise(images, strength, seed)
    if kind == "blur":
        return gaussian_blur(images, strength * _scale(images))
    if kind == "speckle_smoothing":
        return speckle_smoothing(images, strength)
    if kind == "distortion":
        return elastic_distortion(images, strength * _scale(images), seed, 12.0 * _scale(images))
    if kind == "speckle_exaggeration":
        return speckle_exaggeration(images, strength, seed)
    simple = {"gain": gain, "gamma": gamma, "contrast": contrast, "checkerboard": checkerboard,
              "blockiness": blockiness, "edge_softening": edge_softening, "geometry": geometry}
    if kind in simple:
        return simple[kind](images, strength)
    if kind == "duplicates":
        return duplicates(images, strength, seed)[0]
    raise ValueError(f"unknown corruption {kind!r}; known: {', '.join(CORRUPTIONS)}")


#: strengths of the extractor's sanity checks, from barely visible to severe (an elastic distortion of
#: less than about 3 px RMS is hard to see at all on a 128x128 frame, so it is not asked for)
STRENGTHS = {
    "noise": (4.0, 12.0, 36.0),
    "blur": (1.0, 2.0, 4.0),
    "speckle_smoothing": (20.0, 40.0, 80.0),
    "distortion": (3.0, 6.0, 10.0),
}

#: the metric validation suite's graded failure modes (units: see each function), weakest first
SUITE_STRENGTHS: dict[str, tuple[float, ...]] = {
    **STRENGTHS,
    "speckle_exaggeration": (0.15, 0.3, 0.6),  # log-normal sigma
    "gain": (0.05, 0.1, 0.2),  # relative darkening (the 40-kimg cpu64 samples are about 9 % darker than real)
    "gamma": (0.1, 0.2, 0.4),  # exponent - 1
    "contrast": (0.1, 0.2, 0.4),  # relative loss of contrast
    "checkerboard": (3.0, 6.0, 12.0),  # grey levels
    "blockiness": (4.0, 8.0, 16.0),  # block side, px at 128 px (2 px at 64 px is the smallest block there)
    "edge_softening": (1.0, 2.0, 4.0),  # px at 128 px
    "geometry": (0.05, 0.1, 0.2),  # relative widening of the fan
    "duplicates": (0.25, 0.5, 0.9),  # share of images that are copies of 8 others
}
