"""How well an autoencoding model reconstructs frames: VQGAN's stage 1 measured on its own.

Kept out of the model module, which imports no metrics (see :mod:`echolib.models.base`).
"""

from __future__ import annotations

from typing import Any

import torch

from echolib.images import to_uint8
from echolib.metrics.pixel import psnr, ssim
from echolib.models.base import eval_mode
from echolib.models.vqgan import VQGAN
from echolib.progress import progress_bar


@torch.no_grad()
def reconstruction_metrics(model: VQGAN, frames: Any, *, n: int | None = None, batch: int = 64,
                           progress: bool = False) -> dict[str, float]:
    """PSNR (dB, pooled MSE as :func:`echolib.metrics.pixel.psnr`) and mean SSIM of frames vs their reconstructions.

    Paired, unlike the study's random real/generated pairs, so the numbers
    measure the autoencoder alone (what stage 2 can at best reach). ``frames``:
    a :class:`~echolib.data.frames.FrameDataset` or a uint8 tensor ``[N, 1, H, W]``;
    pass frames of videos the model never saw for a held-out score.
    """
    images = frames.images if hasattr(frames, "images") else frames
    if n is not None:
        images = images[:n]
    if len(images) == 0:
        raise ValueError("reconstruction_metrics needs at least one frame")
    originals, recons = [], []
    with eval_mode(model):
        for i in progress_bar(range(0, len(images), batch), enabled=progress, desc="reconstructing"):
            x = images[i : i + batch]
            originals.append(x.cpu())
            recons.append(to_uint8(model.reconstruct(x)).cpu())
    a, b = torch.cat(originals), torch.cat(recons)
    return {"psnr": float(psnr(a, b)), "ssim": float(ssim(a, b).mean()), "n": len(a)}
