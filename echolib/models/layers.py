"""Layers shared by the style-based GANs: equalized learning rate, FIR resampling, modulated convolution.

Equalized learning rate (Karras et al. 2018) stores weights as N(0, 1) and scales
them by He's constant at run time, so Adam's per-parameter step sizes mean the
same thing in every layer, whatever its fan-in. The FIR helpers implement the
``[1, 3, 3, 1]`` low-pass resampling of StyleGAN2 as products with small
banded matrices (see :func:`blur` for why not depthwise convolutions), and
every convolution differentiates twice on ordinary kernels
(:mod:`echolib.models.conv_grads`), so no custom CUDA extension is needed.
Everything here is architecture-agnostic: any GAN in echolib may reuse it.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from echolib.models.conv_grads import conv2d, conv_transpose2d

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps the activation variance of a leaky ReLU at ~1


#: the 1D binomial low-pass of StyleGAN2's resampling, normalised to unit DC gain
FIR_TAPS = (0.125, 0.375, 0.375, 0.125)


def fir_matrix(
    n_in: int, n_out: int, taps: tuple[float, ...], stride: int, pad: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """``M[i, j] = taps[j + pad - stride * i]`` (zero elsewhere): a 1D FIR with zero padding and stride as a matrix.

    Memoised in eager mode because the same few matrices serve every layer at
    every step: built once per size, device and dtype, so a step launches no
    kernels for them. A compiled graph builds them from device-side ops
    (no host copies) that Inductor folds into constants.
    """
    if torch.compiler.is_compiling():
        return _build_fir_matrix(n_in, n_out, taps, stride, pad, device, dtype)
    return _cached_fir_matrix(n_in, n_out, taps, stride, pad, device, dtype)


def _build_fir_matrix(n_in, n_out, taps, stride, pad, device, dtype) -> torch.Tensor:
    offset = torch.arange(n_in, device=device)[None, :] + pad - stride * torch.arange(n_out, device=device)[:, None]
    m = torch.zeros(n_out, n_in, device=device, dtype=dtype)
    for k, t in enumerate(taps):
        m = torch.where(offset == k, t, m)
    return m


@functools.lru_cache(maxsize=256)
def _cached_fir_matrix(n_in, n_out, taps, stride, pad, device, dtype) -> torch.Tensor:
    with torch.inference_mode(False):  # a matrix first made while sampling must still be savable for backward
        return _build_fir_matrix(n_in, n_out, taps, stride, pad, device, dtype)


def apply_along(x: torch.Tensor, m: torch.Tensor, dim: int) -> torch.Tensor:
    """``y = m @ x`` along ``dim``, as one (batched) matmul over the tensor's memory order.

    Permuting to the physical order (outermost stride first) makes every
    reshape a view, for channels_last and contiguous tensors alike: along the
    innermost dimension it is one GEMM, otherwise a batched GEMM whose columns
    are all the dimensions inside ``dim``. So the filter is one read and one
    write of the activations, at the bandwidth cuBLAS reaches, where shifted
    slices took a strided elementwise pass per tap.
    """
    order = sorted(range(x.ndim), key=lambda d: -x.stride(d))
    xp = x.permute(order)
    axis = order.index(dim)
    if axis == x.ndim - 1:
        y = torch.matmul(xp, m.t())
    else:
        shape = xp.shape
        rows = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :])
        y = torch.matmul(m, xp.reshape(rows)).reshape(*shape[:axis], m.shape[0], *shape[axis + 1 :])
    return y.permute([order.index(d) for d in range(x.ndim)])


def _fir(x: torch.Tensor, dim: int, taps: tuple[float, ...], *, stride: int = 1, pad: int = 0, n_out: int | None = None):
    n_in = x.shape[dim]
    n_out = n_out if n_out is not None else (n_in + 2 * pad - len(taps)) // stride + 1
    return apply_along(x, fir_matrix(n_in, n_out, taps, stride, pad, x.device, x.dtype), dim)


def _fir_up(x: torch.Tensor, dim: int, taps: tuple[float, ...]) -> torch.Tensor:
    """Zero insertion then the FIR: the transpose of the FIR-and-decimate of :func:`downsample2d`."""
    n_in = x.shape[dim]
    m = fir_matrix(2 * n_in, n_in, taps, 2, (len(taps) - 2) // 2, x.device, x.dtype)
    return apply_along(x, m.t(), dim)


def blur(x: torch.Tensor, pad: int, taps: tuple[float, ...] = FIR_TAPS, gain: float = 1.0) -> torch.Tensor:
    """Separable FIR low-pass with zero padding ``pad`` on every side.

    Each 1D pass is a product with a small banded matrix (:func:`apply_along`)
    rather than a depthwise convolution: matmuls differentiate any number of
    times into matmuls, so R1 and path-length regularisation (gradients of
    gradients) stay as cheap as the forward, whereas a depthwise convolution's
    double backward loops over channel groups and converts layouts under
    channels_last.
    """
    if not 0 <= pad < len(taps):
        raise ValueError(f"blur padding must be in [0, {len(taps) - 1}], got {pad}")
    taps = tuple(t * math.sqrt(gain) for t in taps)
    return _fir(_fir(x, 3, taps, pad=pad), 2, taps, pad=pad)


def _check_resampling_taps(taps: tuple[float, ...]) -> None:
    if len(taps) < 2 or len(taps) % 2:  # symmetric padding of an even filter lands exactly on 2x / half the size
        raise ValueError(f"2x resampling takes an even number of taps, got {len(taps)}")


def downsample2d(x: torch.Tensor, taps: tuple[float, ...] = FIR_TAPS) -> torch.Tensor:
    """2x downsampling: the FIR low-pass evaluated only at every other sample (``upfirdn2d(down=2)``)."""
    _check_resampling_taps(taps)
    for dim in (3, 2):
        if x.shape[dim] % 2:
            raise ValueError(f"2x downsampling needs an even size, got {x.shape[dim]} along dim {dim}")
        x = _fir(x, dim, taps, stride=2, pad=(len(taps) - 2) // 2, n_out=x.shape[dim] // 2)
    return x


def upsample2d(x: torch.Tensor, taps: tuple[float, ...] = FIR_TAPS) -> torch.Tensor:
    """2x upsampling: zero insertion then the low-pass with gain 4 (``upfirdn2d(up=2)``).

    With StyleGAN2's filter each output sample is 3/4 of its nearest input plus
    1/4 of the next nearest (zero beyond the border): the adjoint of
    :func:`downsample2d` with the taps doubled.
    """
    _check_resampling_taps(taps)
    taps = tuple(2 * t for t in taps)
    return _fir_up(_fir_up(x, 3, taps), 2, taps)


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
