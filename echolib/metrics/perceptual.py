"""Perceptual distances between frames, for models that train on one (VQGAN's reconstruction loss).

Models import nothing from ``echolib.metrics`` and read no weights: the trainer
hands :data:`PERCEPTUAL_LOSSES` to :meth:`echolib.models.base.GenerativeModel.use_perceptual`,
and the model asks it for the distance its configuration names. ``lpips`` is
LPIPS on VGG16 (:mod:`echolib.metrics.lpips`), ``echo`` an LPIPS-like distance on
the domain extractor's intermediate features (:class:`EchoPerceptual`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from echolib.errors import ConfigError
from echolib.metrics.features import EchoEncoder, echo_weights_path, file_sha256, load_echo_encoder
from echolib.metrics.lpips import LPIPSLoss, lpips_available, lpips_weights_paths


def resolve_perceptual(kind: str) -> str:
    """``auto`` -> the best distance available here: ``lpips``, else ``echo``, else ``none``.

    LPIPS needs both its files, VGG16 and the linear layers
    (``ECHOLIB_VGG16_WEIGHTS`` / ``ECHOLIB_LPIPS_WEIGHTS`` or torch's hub cache;
    nothing is downloaded); ``echo`` needs the domain extractor's weights
    (``echolib/assets`` or ``ECHOLIB_ECHO_WEIGHTS``). The resolved value, never
    ``auto``, is what a run records in its checkpoints and ``run.json``.
    """
    if kind != "auto":
        return kind
    if lpips_available():
        return "lpips"
    if _echo_available():
        return "echo"
    return "none"


def _echo_available() -> bool:
    try:
        echo_weights_path()
    except ConfigError:
        return False
    return True


def perceptual_weights(kind: str) -> Path | None:
    """The weights file behind a resolved perceptual loss (LPIPS: its linear layers), for the run record."""
    if kind == "echo":
        return echo_weights_path()
    if kind == "lpips":
        return lpips_weights_paths()[1]
    return None


class EchoPerceptual(nn.Module):
    """An LPIPS-like distance on the frozen ``echo`` extractor: no learned layer weights.

    Every SiLU activation of the extractor (five resolutions) is unit-normalised
    along channels, as LPIPS does, and the squared differences are averaged over
    positions and layers. Frames are resized to the extractor's 128x128 first.
    """

    def __init__(self, encoder: EchoEncoder, resolution: int = 128) -> None:
        super().__init__()
        self.body = encoder.body
        self.resolution = resolution
        self.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        h = torch.cat([x, y])
        if h.shape[-1] != self.resolution:
            h = F.interpolate(h, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        total, taps = h.new_zeros(n, dtype=torch.float32), 0
        for layer in self.body:
            h = layer(h)
            if isinstance(layer, nn.SiLU):
                f = h.float()
                f = f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10)
                total = total + (f[:n] - f[n:]).square().sum(1).mean((1, 2))
                taps += 1
        return total / taps


def build_perceptual(kind: str, device: torch.device) -> nn.Module | None:
    """A frozen ``(x, y) -> [B]`` distance for images in [-1, 1], or None for ``none``."""
    if kind == "none":
        return None
    if kind == "echo":
        return EchoPerceptual(load_echo_encoder()).to(device)
    if kind == "lpips":  # a missing weights file is a ConfigError naming it and where it may go
        return LPIPSLoss().to(device)
    raise ConfigError(f"model.perceptual: expected one of auto, lpips, echo, none, got {kind!r}")


class PerceptualLosses:
    """The distances above behind :class:`echolib.models.base.PerceptualLosses`, the protocol models see."""

    def resolve(self, kind: str) -> str:
        return resolve_perceptual(kind)

    def build(self, kind: str, device: torch.device) -> nn.Module | None:
        return build_perceptual(kind, device)

    def weights_sha256(self, kind: str) -> str | None:
        weights = perceptual_weights(kind)
        return None if weights is None else file_sha256(weights)


#: what the trainer hands to every model it builds
PERCEPTUAL_LOSSES = PerceptualLosses()
