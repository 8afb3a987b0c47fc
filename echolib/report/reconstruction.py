"""How well a model gives back the frames it was handed: VQGAN's autoencoder, Pix2Pix's translations.

Paired scores (each output against the frame it came from), kept out of the
model modules, which import no metrics (see :mod:`echolib.models.base`).
"""

from __future__ import annotations

from typing import Any

import torch

from echolib.images import to_uint8
from echolib.metrics.pixel import psnr, ssim
from echolib.models.base import eval_mode
from echolib.models.pix2pix import Pix2Pix
from echolib.models.vqgan import VQGAN
from echolib.progress import progress_bar
from echolib.train.conditions import condition_maps


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


@torch.no_grad()
def reconstruction_scores(model: Pix2Pix, dataset, *, batch: int = 64, seed: int = 0) -> dict[str, float]:
    """Translate every frame's own condition and compare with the frame, on 8-bit images (range 255).

    ``psnr``: mean over frames of each pair's PSNR in dB; ``ssim``: mean SSIM (Gaussian window,
    :func:`echolib.metrics.pixel.ssim`). On held-out videos this measures how much of a frame its
    condition pins down; unlike the study's SSIM/PSNR between random unpaired frames, these pairs correspond.
    """
    cond = condition_maps(model, dataset)
    g = torch.Generator(device=model.device).manual_seed(seed)
    outs = [to_uint8(model.translate(cond[i : i + batch], g)).cpu() for i in range(0, len(cond), batch)]
    fake, real = torch.cat(outs), dataset.images.cpu()
    mse = (fake.double() - real.double()).pow(2).mean((1, 2, 3)).clamp_min(1e-10 * 255.0**2)
    psnr_db = 10.0 * torch.log10(255.0**2 / mse)  # per pair, then averaged (psnr() pools the MSE instead)
    return {"psnr": float(psnr_db.mean()), "ssim": float(torch.as_tensor(ssim(fake, real)).double().mean()),
            "n": len(real)}
