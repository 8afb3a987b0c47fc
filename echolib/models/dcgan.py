"""DCGAN generator and discriminator (Radford et al. 2016), shared by WGAN and MedGAN.

Both the study's WGAN and its MedGAN used this backbone: transposed
convolutions doubling the resolution from 4x4, batch normalisation and ReLU in
the generator, strided convolutions and LeakyReLU in the discriminator. Widths
halve as resolution doubles, capped at ``max_channels``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from echolib.models.layers import Norm, gan_init, norm_layer


def _width(base: int, level: int, cap: int) -> int:
    """Channels at ``level`` steps above the output resolution."""
    return min(base * 2**level, cap)


class Generator(nn.Module):
    """``z [B, z_dim] -> image [B, C, R, R]`` in [-1, 1]."""

    def __init__(self, z_dim: int, resolution: int, channels: int = 1, base: int = 64, cap: int = 512,
                 norm: Norm = "batch") -> None:
        super().__init__()
        levels = int(math.log2(resolution)) - 2  # 4 -> resolution
        self.z_dim = z_dim
        top = _width(base, levels - 1, cap)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, top, 4, 1, 0, bias=False), norm_layer(norm, top), nn.ReLU(inplace=True)
        ]
        c = top
        for level in range(levels - 1, 0, -1):
            nxt = _width(base, level - 1, cap)
            layers += [nn.ConvTranspose2d(c, nxt, 4, 2, 1, bias=False), norm_layer(norm, nxt), nn.ReLU(inplace=True)]
            c = nxt
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(gan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """``image [B, C, R, R] -> score [B]`` (a logit, or a critic value for WGAN)."""

    def __init__(self, resolution: int, channels: int = 1, base: int = 64, cap: int = 512, norm: Norm = "batch") -> None:
        super().__init__()
        levels = int(math.log2(resolution)) - 2
        layers: list[nn.Module] = [nn.Conv2d(channels, base, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c = base
        for level in range(1, levels):
            nxt = _width(base, level, cap)
            layers += [nn.Conv2d(c, nxt, 4, 2, 1, bias=False), norm_layer(norm, nxt), nn.LeakyReLU(0.2, inplace=True)]
            c = nxt
        layers += [nn.Conv2d(c, 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)
        self.apply(gan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()
