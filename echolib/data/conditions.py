"""Condition maps for image-to-image models: Canny contours and left-ventricle masks.

Pix2Pix learns ``frame = G(condition)``. The study conditioned on the Canny
contours of each frame, a map any frame yields; the left-ventricle (LV) mask is
the anatomical alternative where one exists: the phantom draws it for every
frame, and EchoNet-Dynamic's preprocessing rasterises the experts' tracings
for the ED and ES frames (:mod:`echolib.data.echonet`). Both sources store a
mask as ``masks/<frame name>`` next to the frames and name it in the manifest's
``mask`` column.

Every map is ``uint8 [N, 1, H, W]`` with values 0 and 255, aligned with the
dataset's frames and on the dataset's device, so a conditional model gathers
it with the same indices as the frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from echolib.data.frames import holdout_split  # noqa: F401 -- re-exported for the models
from echolib.errors import DataError
from echolib.images import read_gray

Kind = Literal["canny", "mask"]


def canny(images: torch.Tensor, low: int = 100, high: int = 200) -> torch.Tensor:
    """``cv2.Canny`` of every uint8 frame (hysteresis thresholds ``low < high``, 3x3 Sobel): edges 255, else 0."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 1:
        raise TypeError(f"canny expects uint8 [N, 1, H, W] frames, got {images.dtype} {tuple(images.shape)}")
    if not 0 <= low <= high:
        raise DataError(f"canny thresholds must satisfy 0 <= low <= high, got low={low}, high={high}")
    frames = images[:, 0].cpu().numpy()
    edges = np.stack([cv2.Canny(np.ascontiguousarray(f), low, high) for f in frames]) if len(frames) else frames
    return torch.from_numpy(edges)[:, None].to(images.device)


def mask_path(dataset, index: int) -> Path | None:
    """Where frame ``index``'s LV mask lives: its manifest ``mask`` column, else ``masks/<name>`` beside it."""
    source = Path(dataset.source) if dataset.source is not None else None
    if source is None:
        return None
    root = source.parent if source.is_file() else source
    rel = dataset.records[index].mask
    if rel:
        return root / rel
    candidate = root / "masks" / dataset.names[index]
    return candidate if candidate.exists() else None


def lv_masks(dataset) -> torch.Tensor:
    """The LV masks of every frame, resized to the frames' size (area, then threshold at half)."""
    n, size = len(dataset), dataset.resolution
    paths = [mask_path(dataset, i) for i in range(n)]
    missing = [dataset.names[i] for i, p in enumerate(paths) if p is None or not p.exists()]
    if missing:
        raise DataError(
            f"{dataset.source}: {len(missing)} of {n} frames have no LV mask (first: {missing[0]}); masks are read "
            f"from the manifest's 'mask' column or masks/<name> beside the frames. The phantom writes them for "
            f"every frame; EchoNet preprocessing only for traced ED/ES frames, so keep only rows with a mask"
        )
    out = np.empty((n, 1, size, size), np.uint8)
    for i, p in enumerate(paths):
        assert p is not None  # checked above
        m = read_gray(p)
        if m.shape != (size, size):
            m = cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA)
        out[i, 0] = np.where(m >= 128, 255, 0)
    return torch.from_numpy(out).to(dataset.images.device)


def compute(dataset, kind: Kind = "canny", *, low: int = 100, high: int = 200) -> torch.Tensor:
    """The condition map of every frame of ``dataset`` (a :class:`~echolib.data.frames.FrameDataset`)."""
    if kind == "canny":
        return canny(dataset.images, low, high)
    if kind == "mask":
        return lv_masks(dataset)
    raise DataError(f"unknown condition {kind!r}; choose 'canny' or 'mask'")


