"""Controlled degradations of real frames, to check that a metric sees what it should.

A useful distance between image sets is about zero for two samples of the same
distribution and grows with every departure from it. Feeding it real frames
degraded by a known amount, at increasing strength, turns that requirement into
a test: additive noise, blur, speckle smoothing (what an over-regularised
generator produces) and smooth geometric distortion (anatomy bent out of
shape). Each function maps uint8 ``[N, 1, H, W]`` to the same, is deterministic
for a given seed, and is the identity at strength 0.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

CORRUPTIONS = ("noise", "blur", "speckle_smoothing", "distortion")


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


def corrupt(images: torch.Tensor, kind: str, strength: float, seed: int = 0) -> torch.Tensor:
    """Dispatch by name: ``noise`` (sigma), ``blur`` (sigma px), ``speckle_smoothing`` (bilateral sigma),
    ``distortion`` (RMS displacement px)."""
    if kind == "noise":
        return gaussian_noise(images, strength, seed)
    if kind == "blur":
        return gaussian_blur(images, strength)
    if kind == "speckle_smoothing":
        return speckle_smoothing(images, strength)
    if kind == "distortion":
        return elastic_distortion(images, strength, seed)
    raise ValueError(f"unknown corruption {kind!r}; known: {', '.join(CORRUPTIONS)}")


#: strengths of the extractor's sanity checks, from barely visible to severe (an elastic distortion of
#: less than about 3 px RMS is hard to see at all on a 128x128 frame, so it is not asked for)
STRENGTHS = {
    "noise": (4.0, 12.0, 36.0),
    "blur": (1.0, 2.0, 4.0),
    "speckle_smoothing": (20.0, 40.0, 80.0),
    "distortion": (3.0, 6.0, 10.0),
}
