"""FIR low-pass resampling as products with small banded matrices: StyleGAN2's ``upfirdn2d`` in plain PyTorch.

The one home of the ``[1, 3, 3, 1]`` filter and its 2x up- and downsampling,
below both of its users: the style-based GANs' layers
(:mod:`echolib.models.layers`) and ADA's geometric augmentation
(:mod:`echolib.augment.ada`). Matrices rather than depthwise convolutions
because matmuls differentiate any number of times into matmuls (see :func:`blur`).
"""

from __future__ import annotations

import functools
import math

import torch

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
    strides = x.stride()
    order = sorted(range(x.ndim), key=lambda d: -strides[d])
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
