"""The one place where image tensors change representation.

On disk and in datasets images are ``uint8`` ``[N, 1, H, W]``; inside models
they are floats in ``[-1, 1]``. Keeping both conversions here means every model,
metric and writer agrees on rounding and clamping.
"""

from __future__ import annotations

import io
import typing
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from echolib.errors import DataError
from echolib.io import atomic_write_bytes


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float32 ``[-1, 1]`` (on the tensor's device)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 images, got {images.dtype}")
    return images.to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float ``[-1, 1]`` -> uint8, rounding to nearest and clamping out-of-range values."""
    if not images.is_floating_point():
        raise TypeError(f"to_uint8 expects floating-point images, got {images.dtype}")
    return images.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def read_gray(path: str | Path | typing.BinaryIO, name: str | None = None) -> np.ndarray:
    """Read a PNG/JPEG as one uint8 channel ``[H, W]``.

    Accepts 8-bit grayscale, 16-bit grayscale (scaled to 8 bits), RGB whose
    channels are equal (the study's samples), palette images, and RGBA/LA whose
    alpha is ignored. RGB with differing channels is refused: silently converting
    colour images would hide a wrong dataset. A file that cannot be read is a
    :class:`~echolib.errors.DataError` naming it, so every command reports it as
    the one-line error (exit status 2) rather than a traceback.
    """
    if name is None:
        name = str(path)
    if isinstance(path, str):
        path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            img: Image.Image = opened.convert("RGBA") if opened.mode == "P" else opened
            mode = img.mode
            arr = np.asarray(img)
    except Exception as exc:  # PIL raises many types for corrupt or non-image files
        raise DataError(f"{name}: not a readable image ({type(exc).__name__}: {exc})") from exc
    if mode.startswith("I;16") or mode == "I":
        arr = arr.astype(np.float64)
        top = 255.0 if mode == "I" and arr.max() <= 255 else 65535.0
        return np.clip(np.round(arr * (255.0 / top)), 0, 255).astype(np.uint8)
    if mode == "L":
        return arr.copy()
    if mode == "LA":
        return arr[..., 0].copy()
    if mode in ("RGB", "RGBA"):
        rgb = arr[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise DataError(f"{name}: colour image (RGB channels differ); expected grayscale")
        return rgb[..., 0].copy()
    raise DataError(f"{name}: unsupported image mode {mode!r}; expected 8/16-bit grayscale or gray RGB")


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a ``[H, W]`` uint8 array as a PNG deterministically (no timestamps)."""
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"png_bytes expects a [H, W] uint8 array, got {image.dtype} {image.shape}")
    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def write_gray(path: str | Path, image: np.ndarray) -> None:
    """Write one grayscale PNG atomically, so a killed writer never leaves half a file."""
    atomic_write_bytes(Path(path), png_bytes(image))


def save_batch(images: torch.Tensor, out_dir: str | Path, start: int = 0, prefix: str = "img_") -> list[Path]:
    """Write ``[N, 1, H, W]`` images (uint8 or float in [-1, 1]) as numbered PNGs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if images.is_floating_point():
        images = to_uint8(images)
    arr = images.cpu().numpy()
    paths = []
    for i, img in enumerate(arr):
        p = out / f"{prefix}{start + i:05d}.png"
        write_gray(p, img[0])
        paths.append(p)
    return paths


def make_grid(images: torch.Tensor, nrow: int = 8, pad: int = 2) -> np.ndarray:
    """Tile ``[N, 1, H, W]`` images into one uint8 ``[H', W']`` array for sample grids."""
    if images.is_floating_point():
        images = to_uint8(images)
    arr = images.cpu().numpy()[:, 0]
    n, h, w = arr.shape
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    grid = np.zeros((nrows * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.uint8)
    for i, img in enumerate(arr):
        r, c = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = img
    return grid
