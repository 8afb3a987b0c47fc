"""DCGAN generator and discriminator (Radford et al. 2016), shared by WGAN and MedGAN.

Both the study's WGAN and its MedGAN used this backbone: transposed
convolutions doubling the resolution from 4x4, batch normalisation and ReLU in
the generator, strided convolutions and LeakyReLU in the discriminator. Widths
halve as resolution doubles, capped at ``max_channels``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

Norm = Literal["batch", "instance", "layer", "none"]


def _width(base: int, level: int, cap: int) -> int:
    """Channels at ``level`` steps above the output resolution."""
    return min(base * 2**level, cap)


def _norm(kind: Norm, channels: int, size: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # LayerNorm over C,H,W: safe with a gradient penalty
    return nn.Identity()


class Generator(nn.Module):
    """``z [B, z_dim] -> image [B, C, R, R]`` in [-1, 1]."""

    def __init__(self, z_dim: int, resolution: int, channels: int = 1, base: int = 64, cap: int = 512,
                 norm: Norm = "batch") -> None:
        super().__init__()
        levels = int(math.log2(resolution)) - 2  # 4 -> resolution
        self.z_dim = z_dim
        top = _width(base, levels - 1, cap)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, top, 4, 1, 0, bias=False), _norm(norm, top, 4), nn.ReLU(inplace=True)
        ]
        c, size = top, 4
        for level in range(levels - 1, 0, -1):
            nxt = _width(base, level - 1, cap)
            size *= 2
            layers += [nn.ConvTranspose2d(c, nxt, 4, 2, 1, bias=False), _norm(norm, nxt, size), nn.ReLU(inplace=True)]
            c = nxt
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """``image [B, C, R, R] -> score [B]`` (a logit, or a critic value for WGAN)."""

    def __init__(self, resolution: int, channels: int = 1, base: int = 64, cap: int = 512, norm: Norm = "batch") -> None:
        super().__init__()
        levels = int(math.log2(resolution)) - 2
        layers: list[nn.Module] = [nn.Conv2d(channels, base, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c, size = base, resolution // 2
        for level in range(1, levels):
            nxt = _width(base, level, cap)
            size //= 2
            layers += [nn.Conv2d(c, nxt, 4, 2, 1, bias=False), _norm(norm, nxt, size), nn.LeakyReLU(0.2, inplace=True)]
            c = nxt
        layers += [nn.Conv2d(c, 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)
        self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def _dcgan_init(m: nn.Module) -> None:
    """N(0, 0.02) convolutions and N(1, 0.02) norm scales, as in the DCGAN paper."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
