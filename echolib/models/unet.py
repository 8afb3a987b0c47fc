"""The denoiser network of the diffusion models: an ADM-style U-Net (Dhariwal & Nichol 2021).

A U-Net suits denoising because the task is local at small noise levels (fix
speckle, sharpen a valve leaflet) and global at large ones (where is the septum,
how big is the left ventricle). The encoder halves the resolution level by
level, the decoder doubles it back, and every encoder activation is
concatenated into the decoder at the same resolution, so fine detail never has
to squeeze through the bottleneck.

The pieces, as in ADM and EDM's ``DhariwalUNet``:

* **Residual blocks** ``GroupNorm -> SiLU -> conv -> adaptive GroupNorm -> SiLU
  -> dropout -> conv`` plus a (1x1 when widths differ) skip; down- and
  up-sampling happen *inside* residual blocks (average pooling / nearest
  neighbour on both branches), so the resampling path is residual too.
* **Noise conditioning** by a sinusoidal (positional) or random-Fourier
  embedding of the scalar noise level, passed through a two-layer MLP; every
  block turns it into a per-channel scale and shift of its second GroupNorm
  (``h = norm(h) * (1 + scale) + shift``, ADM's ``use_scale_shift_norm``).
* **Class conditioning** (optional) by a bias-free linear map of a one-hot label
  added to the noise embedding; the all-zero vector is the "no label" input
  that classifier-free guidance needs.
* **Self-attention** after the residual blocks at the listed resolutions (16x16
  and below: attention is quadratic in pixels) and in the middle, computed by
  ``scaled_dot_product_attention`` (flash kernels on GPU).
* The last convolution of every residual branch, of every attention projection
  and of the output layer starts at zero, so at initialisation each block is
  the identity and the network outputs exactly 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, TypedDict

import torch
import torch.nn.functional as F
from torch import nn

Embedding = Literal["positional", "fourier"]


class _BlockOptions(TypedDict):
    """The residual-block arguments every block of a U-Net shares."""

    emb_dim: int
    dropout: float
    head_channels: int
    skip_scale: float


def group_norm(channels: int) -> nn.GroupNorm:
    """32 groups as in ADM, fewer for narrow layers so every group has at least 4 channels (as EDM)."""
    return nn.GroupNorm(min(32, max(1, channels // 4)), channels, eps=1e-5)


def zero_init(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class PositionalEmbedding(nn.Module):
    """Transformer sinusoids of a scalar: ``[cos(x f_k), sin(x f_k)]``, ``f_k = max_positions^(-k/half)``."""

    freqs: torch.Tensor

    def __init__(self, dim: int, max_positions: float = 10000.0) -> None:
        super().__init__()
        half = dim // 2
        self.register_buffer("freqs", max_positions ** (-torch.arange(half, dtype=torch.float32) / half))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angle = x.float()[:, None] * self.freqs[None]
        return torch.cat([angle.cos(), angle.sin()], dim=1)


class FourierEmbedding(nn.Module):
    """Random Fourier features ``[cos(2 pi x f_k), sin(2 pi x f_k)]``, ``f_k ~ N(0, scale^2)`` (NCSN++)."""

    freqs: torch.Tensor

    def __init__(self, dim: int, scale: float = 16.0) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.randn(dim // 2) * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angle = (2 * math.pi) * x.float()[:, None] * self.freqs[None]
        return torch.cat([angle.cos(), angle.sin()], dim=1)


class SelfAttention(nn.Module):
    """Multi-head self-attention over all pixels of a feature map, residual and zero-initialised."""

    def __init__(self, channels: int, head_channels: int = 64, skip_scale: float = 1.0) -> None:
        super().__init__()
        self.heads = max(1, channels // head_channels)
        if channels % self.heads:
            raise ValueError(f"attention width {channels} is not divisible into {self.heads} heads")
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero_init(nn.Conv2d(channels, channels, 1))
        self.skip_scale = skip_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.permute(1, 0, 2, 4, 3).unbind(0)  # [B, heads, HW, d]; free when channels_last
        if q.stride(-1) != 1:
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.permute(0, 1, 3, 2).reshape(b, c, h, w)
        return (x + self.proj(out)) * self.skip_scale


class ResBlock(nn.Module):
    """Pre-activation residual block with adaptive scale/shift from the embedding; optional resampling/attention."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_dim: int,
        *,
        dropout: float = 0.0,
        resample: Literal["up", "down"] | None = None,
        attention: bool = False,
        head_channels: int = 64,
        skip_scale: float = 1.0,
        takes_skip: bool = False,
    ) -> None:
        super().__init__()
        self.resample = resample
        self.takes_skip = takes_skip  # decoder blocks concatenate an encoder activation first
        self.skip_scale = skip_scale
        self.norm0 = group_norm(in_channels)
        self.conv0 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.affine = nn.Linear(emb_dim, 2 * out_channels)
        self.norm1 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = zero_init(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.attn = SelfAttention(out_channels, head_channels, skip_scale) if attention else None

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv0(self._resample(F.silu(self.norm0(x))))
        x = self._resample(x)
        scale, shift = self.affine(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.norm1(h) * (1 + scale) + shift)
        h = self.conv1(self.dropout(h))
        x = (h + self.skip(x)) * self.skip_scale
        return self.attn(x) if self.attn is not None else x


class UNet(nn.Module):
    """``(x [B, C, R, R], c_noise [B], labels [B, K] one-hot or None) -> [B, C_out, R, R]``.

    ``channel_mult[l]`` scales ``channels`` at level ``l`` (level 0 is full
    resolution); ``num_blocks`` residual blocks per level in the encoder and one
    more in the decoder (it also consumes the downsampling block's output).
    """

    def __init__(
        self,
        resolution: int,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        channels: int = 64,
        channel_mult: Sequence[int] = (1, 2, 2, 2),
        num_blocks: int = 2,
        attn_resolutions: Sequence[int] = (16,),
        mid_attention: bool = True,
        head_channels: int = 64,
        dropout: float = 0.0,
        embedding: Embedding = "positional",
        num_classes: int = 0,
        skip_scale: float = 1.0,
    ) -> None:
        super().__init__()
        levels = len(channel_mult)
        if levels < 1 or resolution % 2 ** (levels - 1) or resolution // 2 ** (levels - 1) < 4:
            raise ValueError(f"{levels} U-Net levels need a resolution of at least {4 * 2 ** (levels - 1)}, "
                             f"got {resolution}")
        emb_dim = 4 * channels
        self.num_classes = num_classes
        self.map_noise = PositionalEmbedding(channels) if embedding == "positional" else FourierEmbedding(channels)
        self.map_mlp = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.map_label = nn.Linear(num_classes, emb_dim, bias=False) if num_classes else None
        block: _BlockOptions = {"emb_dim": emb_dim, "dropout": dropout, "head_channels": head_channels,
                                "skip_scale": skip_scale}

        cur = channels * channel_mult[0]
        self.conv_in = nn.Conv2d(in_channels, cur, 3, padding=1)
        skips = [cur]
        res = resolution
        self.enc = nn.ModuleList()
        for level, mult in enumerate(channel_mult):
            if level > 0:
                self.enc.append(ResBlock(cur, cur, resample="down", **block))
                res //= 2
                skips.append(cur)
            for _ in range(num_blocks):
                self.enc.append(ResBlock(cur, channels * mult, attention=res in attn_resolutions, **block))
                cur = channels * mult
                skips.append(cur)
        self.mid = nn.ModuleList([ResBlock(cur, cur, attention=mid_attention, **block), ResBlock(cur, cur, **block)])
        self.dec = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for _ in range(num_blocks + 1):
                self.dec.append(ResBlock(cur + skips.pop(), channels * mult, attention=res in attn_resolutions,
                                         takes_skip=True, **block))
                cur = channels * mult
            if level > 0:
                self.dec.append(ResBlock(cur, cur, resample="up", **block))
                res *= 2
        self.out = nn.Sequential(group_norm(cur), nn.SiLU(), zero_init(nn.Conv2d(cur, out_channels, 3, padding=1)))

    def embed(self, c_noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        emb = self.map_mlp(self.map_noise(c_noise))
        if self.map_label is not None:
            if labels is None:
                labels = torch.zeros(c_noise.shape[0], self.num_classes, device=c_noise.device)
            emb = emb + self.map_label(labels.float())
        return F.silu(emb)  # every block's affine layer starts from SiLU(emb), as ADM's emb_layers

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(c_noise, labels)
        h = self.conv_in(x)
        skips = [h]
        for blk in self.enc:
            h = blk(h, emb)
            skips.append(h)
        for blk in self.mid:
            h = blk(h, emb)
        for blk in self.dec:
            if blk.takes_skip:
                h = torch.cat([h, skips.pop()], dim=1)
            h = blk(h, emb)
        return self.out(h)
