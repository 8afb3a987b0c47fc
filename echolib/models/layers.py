"""Layers shared by the style-based GANs: equalized learning rate, FIR resampling, modulated convolution.

Equalized learning rate (Karras et al. 2018) stores weights as N(0, 1) and scales
them by He's constant at run time, so Adam's per-parameter step sizes mean the
same thing in every layer, whatever its fan-in. The FIR helpers implement the
``[1, 3, 3, 1]`` low-pass resampling of StyleGAN2 with shifted slices
(see :func:`blur` for why not depthwise convolutions), so no custom CUDA
extension is needed. Everything here
is architecture-agnostic: any GAN in echolib may reuse it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps the activation variance of a leaky ReLU at ~1


#: the 1D binomial low-pass of StyleGAN2's resampling, normalised to unit DC gain
FIR_TAPS = (0.125, 0.375, 0.375, 0.125)


def _taps_along(x: torch.Tensor, dim: int, taps: tuple[float, ...], n_out: int, stride: int) -> torch.Tensor:
    """``sum_k taps[k] * x[k + stride * i]`` along ``dim`` for ``i < n_out``: a 1D FIR as shifted slices."""
    out = None
    for k, t in enumerate(taps):
        index = [slice(None)] * x.ndim
        index[dim] = slice(k, k + stride * (n_out - 1) + 1, stride)
        term = x[tuple(index)]
        out = term * t if out is None else out.add(term, alpha=t)
    return out


def _pad_along(x: torch.Tensor, dim: int, pad: int) -> torch.Tensor:
    return F.pad(x, [pad, pad] if dim == 3 else [0, 0, pad, pad]) if pad else x


def _fir(x: torch.Tensor, dim: int, taps: tuple[float, ...], pad: int) -> torch.Tensor:
    """Stride-1 FIR along ``dim`` (2 or 3) with zero padding ``pad`` at both ends."""
    x = _pad_along(x, dim, pad)
    return _taps_along(x, dim, taps, x.shape[dim] - len(taps) + 1, 1)


def _down(x: torch.Tensor, dim: int, taps: tuple[float, ...]) -> torch.Tensor:
    """``y[m] = t0 x[2m-1] + t1 x[2m] + t2 x[2m+1] + t3 x[2m+2]`` (zero outside): FIR, then every other sample."""
    x = _pad_along(x, dim, 1)
    return _taps_along(x, dim, taps, x.shape[dim] // 2 - 1, 2)


def _up(x: torch.Tensor, dim: int, taps: tuple[float, ...]) -> torch.Tensor:
    """The adjoint of :func:`_down`, in polyphase form: twice the length, each output from two inputs."""
    n = x.shape[dim]
    xp = _pad_along(x, dim, 1)
    before, near, after = xp.narrow(dim, 0, n), xp.narrow(dim, 1, n), xp.narrow(dim, 2, n)
    even = near.mul(taps[1]).add(before, alpha=taps[3])
    odd = near.mul(taps[2]).add(after, alpha=taps[0])
    return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)


class _Fir(torch.autograd.Function):
    """Stride-1 FIR whose gradient is another stride-1 FIR (reversed taps, padding ``K - 1 - pad``).

    Autograd through shifted slices would work, but each slice's backward
    allocates a zero tensor of the full input and copies into it, and the
    gradients of the K slices are then summed: about three times the kernels
    and memory passes of the transposed filter written directly. The adjoint of
    the adjoint is the forward again, so R1 and path-length regularisation (a
    gradient of a gradient) stay exact.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int, taps: tuple[float, ...], pad: int) -> torch.Tensor:
        ctx.args = (dim, taps[::-1], len(taps) - 1 - pad)
        return _fir(x, dim, taps, pad)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _Fir.apply(grad, *ctx.args), None, None, None


class _Down(torch.autograd.Function):
    """:func:`_down` with :func:`_up` (same taps) as its exact gradient, and vice versa."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int, taps: tuple[float, ...]) -> torch.Tensor:
        if x.shape[dim] % 2:
            raise ValueError(f"2x downsampling needs an even size, got {x.shape[dim]} along dim {dim}")
        ctx.args = (dim, taps)
        return _down(x, dim, taps)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _Up.apply(grad, *ctx.args), None, None


class _Up(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int, taps: tuple[float, ...]) -> torch.Tensor:
        ctx.args = (dim, taps)
        return _up(x, dim, taps)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _Down.apply(grad, *ctx.args), None, None


def blur(x: torch.Tensor, pad: int, taps: tuple[float, ...] = FIR_TAPS, gain: float = 1.0) -> torch.Tensor:
    """Separable FIR low-pass with zero padding ``pad`` on every side.

    Written as weighted sums of shifted slices rather than a depthwise
    convolution: the latter's double backward (needed by R1 and path-length
    regularisation) loops over channel groups, which costs seconds per step,
    and its kernels force layout conversions under channels_last. Slices and
    adds differentiate any number of times as cheap elementwise passes (with
    hand-written transposes, see :class:`_Fir`).
    """
    if not 0 <= pad < len(taps):
        raise ValueError(f"blur padding must be in [0, {len(taps) - 1}], got {pad}")
    taps = tuple(t * math.sqrt(gain) for t in taps)
    return _Fir.apply(_Fir.apply(x, 3, taps, pad), 2, taps, pad)


def downsample2d(x: torch.Tensor, taps: tuple[float, ...] = FIR_TAPS) -> torch.Tensor:
    """2x downsampling: the FIR low-pass evaluated only at every other sample."""
    if len(taps) != 4:  # _down and _up are written out for StyleGAN2's 4-tap filter (polyphase pairs)
        raise ValueError(f"2x resampling takes a 4-tap filter, got {len(taps)} taps")
    return _Down.apply(_Down.apply(x, 3, taps), 2, taps)


def upsample2d(x: torch.Tensor) -> torch.Tensor:
    """2x upsampling: zero insertion then the [1, 3, 3, 1] low-pass (gain 4), in polyphase form.

    Each output sample is 3/4 of its nearest input plus 1/4 of the next nearest
    (zero beyond the border), exactly what ``upfirdn2d(up=2)`` with this filter
    gives: the adjoint of :func:`downsample2d` with the taps doubled.
    """
    taps = tuple(2 * t for t in FIR_TAPS)
    return _Up.apply(_Up.apply(x, 3, taps), 2, taps)


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
            x = F.conv2d(downsample2d(x), w)
        elif self.down == 2:
            # blur with padding so that a valid strided conv lands exactly on H/2
            x = blur(x, pad=(len(FIR_TAPS) - 2 + self.k - 1) // 2)
            x = F.conv2d(x, w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.k // 2)
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
            x = F.conv2d(x, w, padding=kh // 2)
        else:
            x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
            x = blur(x, pad=_up_pad(kh), gain=4.0)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(b, c_out, 1, 1)
        return x

    w = weight.float()[None] * styles.reshape(b, 1, c_in, 1, 1)  # [B, O, I, k, k]
    if dcoefs is not None:
        w = w * dcoefs.reshape(b, c_out, 1, 1, 1)
    xg = x.reshape(1, b * c_in, *x.shape[2:])
    if up == 1:
        out = F.conv2d(xg, w.reshape(b * c_out, c_in, kh, kw).to(x.dtype), padding=kh // 2, groups=b)
    else:
        wt = w.transpose(1, 2).reshape(b * c_in, c_out, kh, kw).to(x.dtype)
        out = F.conv_transpose2d(xg, wt, stride=2, groups=b)
        out = blur(out, pad=_up_pad(kh), gain=4.0)
    return out.reshape(b, c_out, *out.shape[2:])
