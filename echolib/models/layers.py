"""Layers shared by echolib's networks, each in one place for every model that uses it.

**Convolutional GANs** (DCGAN, Pix2Pix, VQGAN): :func:`norm_layer` (the
normalisation a config names), :func:`gan_init` (the N(0, 0.02) initialisation
of DCGAN, pix2pix and taming) and :class:`PatchGAN`, the discriminator that
scores every overlapping patch of an image.

**Style-based GANs**: equalized
learning rate, resampling convolutions, modulated convolution. Equalized learning rate (Karras et al. 2018) stores weights as N(0, 1) and scales
them by He's constant at run time, so Adam's per-parameter step sizes mean the
same thing in every layer, whatever its fan-in. The ``[1, 3, 3, 1]`` low-pass
resampling of StyleGAN2 comes from :mod:`echolib.resampling` (which ADA's
augmentation shares), and every convolution differentiates twice on ordinary
kernels (:mod:`echolib.models.conv_grads`), so no custom CUDA extension is needed.
Everything here is architecture-agnostic: any GAN in echolib may reuse it.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from echolib.models.conv_grads import conv2d, conv_transpose2d
from echolib.resampling import FIR_TAPS, blur, downsample2d

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps the activation variance of a leaky ReLU at ~1


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, act: str, gain: float = 1.0, clamp: float | None = None):
    """Bias, activation (``lrelu``/``linear``), gain and optional clamp, in that order (StyleGAN2 order)."""
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
        gain = gain * LRELU_GAIN
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}")
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        # hardtanh is clamp with a one-kernel backward; clamp's backward is four (two compares, an and, a where)
        x = F.hardtanh(x, -clamp, clamp)
    return x


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate and a learning-rate multiplier."""

    def __init__(
        self, in_features: int, out_features: int, *, act: str = "linear", lr_mul: float = 1.0, bias_init: float = 0.0
    ) -> None:
        super().__init__()
        self.act = act
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain
        if self.act == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, self.act)


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate; ``down=2`` blurs then strides (StyleGAN2 style)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        act: str = "linear",
        down: int = 1,
        clamp: float | None = None,
    ) -> None:
        super().__init__()
        if down not in (1, 2):
            raise ValueError("down must be 1 or 2")
        self.act, self.down, self.clamp, self.k = act, down, clamp, kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.down == 2 and self.k == 1:
            x = conv2d(downsample2d(x), w)
        elif self.down == 2:
            # blur with padding so that a valid strided conv lands exactly on H/2
            x = blur(x, pad=(len(FIR_TAPS) - 2 + self.k - 1) // 2)
            x = conv2d(x, w, stride=2)
        else:
            x = conv2d(x, w, padding=self.k // 2)
        clamp = self.clamp * gain if self.clamp is not None else None
        return bias_act(x, self.bias, self.act, gain=gain, clamp=clamp)


def demod_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``1 / ||w * s||`` per sample and output channel, ``[B, O]``, without forming per-sample weights."""
    w2 = weight.float().square().sum(dim=(2, 3))  # [O, I]
    return (styles.float().square() @ w2.t() + eps).rsqrt()


def _up_pad(k: int) -> int:
    """Padding of the blur after a stride-2 transposed conv with a ``k``-tap kernel: output exactly 2H."""
    return (len(FIR_TAPS) + 1 - k) // 2


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool = True,
    up: int = 1,
    fused: bool = False,
) -> torch.Tensor:
    """StyleGAN2's modulated convolution (odd kernel, same padding; ``up=2`` doubles the size).

    ``fused=False`` scales activations before and after one shared-weight conv:
    the fastest choice for training because cuDNN sees an ordinary convolution.
    ``fused=True`` folds styles into per-sample weights and runs a grouped conv
    (batch as groups): exact per-sample weights, better for tiny batches.
    Styles and demodulation are computed in fp32 so bf16 autocast cannot
    under-resolve the normalisation.
    """
    b, c_in = x.shape[:2]
    c_out, _, kh, kw = weight.shape
    styles = styles.float()
    dcoefs = demod_coefficients(weight, styles) if demodulate else None
    if up not in (1, 2):
        raise ValueError("up must be 1 or 2")

    if not fused:
        x = x * styles.to(x.dtype).reshape(b, c_in, 1, 1)
        w = weight.to(x.dtype)
        if up == 1:
            x = conv2d(x, w, padding=kh // 2)
        else:
            x = conv_transpose2d(x, w.transpose(0, 1), stride=2)
            x = blur(x, pad=_up_pad(kh), gain=4.0)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(b, c_out, 1, 1)
        return x

    w = weight.float()[None] * styles.reshape(b, 1, c_in, 1, 1)  # [B, O, I, k, k]
    if dcoefs is not None:
        w = w * dcoefs.reshape(b, c_out, 1, 1, 1)
    xg = x.reshape(1, b * c_in, *x.shape[2:])
    if up == 1:
        out = conv2d(xg, w.reshape(b * c_out, c_in, kh, kw).to(x.dtype), padding=kh // 2, groups=b)
    else:
        wt = w.transpose(1, 2).reshape(b * c_in, c_out, kh, kw).to(x.dtype)
        out = conv_transpose2d(xg, wt, stride=2, groups=b)
        out = blur(out, pad=_up_pad(kh), gain=4.0)
    return out.reshape(b, c_out, *out.shape[2:])


# -- blocks of the convolutional GANs ------------------------------------------------
Norm = Literal["batch", "instance", "layer", "none"]


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The normalisation ``kind`` over ``channels`` feature maps.

    ``layer`` is a LayerNorm over C, H, W (one group), safe under a gradient
    penalty because it does not couple the samples of a batch. ``none`` is an
    Identity, so a stack's indices, and with them its checkpoint keys, are
    the same whatever the choice.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {kind!r}; expected batch, instance, layer or none")


def gan_init(m: nn.Module, zero_bias: bool = True) -> None:
    """N(0, 0.02) convolution weights and N(1, 0.02) norm gains (DCGAN, pix2pix, taming), for ``module.apply``.

    Convolution biases are zeroed, as DCGAN and pix2pix do; taming's
    discriminator keeps PyTorch's default biases (``zero_bias=False``).
    """
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if zero_bias and m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class PatchGAN(nn.Module):
    """``inputs (concatenated on channels) -> logits [B, 1, P, P]``, one per overlapping patch (Isola et al. 2017).

    ``layers`` stride-2 4x4 convolutions (widths doubling from ``width`` up to
    ``max_channels``), one stride-1, then a 1-channel output: 70x70 patches for
    3 layers (:func:`receptive_field`), which model high frequencies and leave
    the low ones to a pixel loss. ``norm`` follows every convolution but the
    first and last; ``None`` leaves no layer in its place (taming's layout),
    while ``"none"`` puts an Identity there (pix2pix's): the two give different
    state-dict keys, so each model keeps its own. ``spectral`` divides every
    convolution's weight by its largest singular value (Miyato et al. 2018).
    """

    def __init__(self, in_channels: int, width: int = 64, layers: int = 3, *, max_channels: int = 512,
                 norm: str | None = "batch", spectral: bool = False, zero_bias: bool = True) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, layers + 1):
            nxt = min(width * 2**i, max_channels)
            seq.append(nn.Conv2d(c, nxt, 4, 2 if i < layers else 1, 1, bias=norm != "batch"))
            if norm is not None:
                seq.append(norm_layer(norm, nxt))
            seq.append(nn.LeakyReLU(0.2))
            c = nxt
        seq.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*seq)
        self.net.apply(lambda m: gan_init(m, zero_bias))
        if spectral:
            for m in self.net:
                if isinstance(m, nn.Conv2d):
                    nn.utils.parametrizations.spectral_norm(m)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat(inputs, 1) if len(inputs) > 1 else inputs[0])


def receptive_field(layers: int = 3) -> int:
    """Receptive field of :class:`PatchGAN` (all 4x4 kernels; ``layers`` stride-2 convs, then two stride-1)."""
    strides = [2] * layers + [1, 1]
    rf = 1
    for s in reversed(strides):
        rf = rf * s + (4 - s)
    return rf
