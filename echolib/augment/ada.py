"""Adaptive discriminator augmentation (Karras et al. 2020, "Training GANs with limited data").

Every image the discriminator sees, real or generated, passes through the same
differentiable pipeline; each operation fires independently per image with
probability ``p``. Because the generator is trained through the augmentation
too, it learns the clean distribution as long as every operation is invertible
in distribution ("non-leaking", p < ~0.8). ``p`` is not tuned by hand: every
few steps it moves towards keeping the overfitting heuristic

    r_t = E[sign(D(x_real))]

at a target (0.6): a discriminator that is too sure about the reals gets more
augmentation, one that is not gets less.

Grayscale specifics: the colour group keeps brightness, contrast and luma flip
(hue and saturation do not exist in one channel). The official pipeline applies
colour transforms around the origin of the [-1, 1] range, so on grayscale the
luma flip is ``x -> -x`` (inversion about mid-grey) and contrast scales about
mid-grey; we keep that. Geometric operations are composed into one affine
map per image and applied with bilinear ``grid_sample`` and reflection
padding. The continuous ones (scaling, rotation, anisotropy, fractional
shift) warp at twice the resolution between Symlet-6 wavelet filters, as in
the official pipeline: a bilinear warp at native resolution shifts a fine
pattern with a quarter of the error but loses its contrast (a 0.37 px shift of
0.3 cycles/px keeps 62 % of its amplitude at 1x, 90 % at 2x), and the speckle
of an echo is such a pattern. Unlike the official pipeline, flips, quarter
turns and whole-pixel shifts are applied first at native resolution, where
they are exact: through the asymmetric Symlet filter a flip would also shift
the image by a fraction of a pixel. Image-space filtering uses a four-band
difference-of-Gaussians filter bank instead of the official wavelet bank.

Randomness never comes from the global RNG: ``draws`` provides ``rand`` and
``randn`` of a *global* batch shape and returns this process's slice (the
trainer's :class:`~echolib.models.base.StepContext` does exactly that), so DDP
ranks and resumed runs augment identically. :class:`GeneratorDraws` wraps a plain
``torch.Generator`` for tests and single-process use.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from echolib.resampling import downsample2d, upsample2d

# -- random draws ---------------------------------------------------------------


class Draws(Protocol):
    """Global-shape random draws returning the local slice (``StepContext`` satisfies this)."""

    def rand(self, *global_shape: int) -> torch.Tensor: ...

    def randn(self, *global_shape: int) -> torch.Tensor: ...


class GeneratorDraws:
    """Draws from one ``torch.Generator`` on ``device``: the single-process case."""

    def __init__(self, generator: torch.Generator, device: torch.device | str | None = None) -> None:
        self.generator = generator
        self.device = torch.device(device) if device is not None else generator.device

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.device)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device)

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        return torch.randint(high, shape, generator=self.generator, device=self.device)


# -- pipeline presets -----------------------------------------------------------

_BLIT = {"xflip": 1.0, "rotate90": 1.0, "xint": 1.0}
_GEOM = {"scale": 1.0, "rotate": 1.0, "aniso": 1.0, "xfrac": 1.0}
_COLOR = {"brightness": 1.0, "contrast": 1.0, "lumaflip": 1.0}
_FILTER = {"imgfilter": 1.0}
_NOISE = {"noise": 1.0}
_CUTOUT = {"cutout": 1.0}

#: the official pipeline names (hue/saturation dropped: grayscale)
PIPES: dict[str, dict[str, float]] = {
    "blit": _BLIT,
    "geom": _GEOM,
    "color": _COLOR,
    "filter": _FILTER,
    "noise": _NOISE,
    "cutout": _CUTOUT,
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, **_FILTER},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE, **_CUTOUT},
}

OPS: tuple[str, ...] = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast")
OPS += ("lumaflip", "imgfilter", "noise", "cutout")

# columns of the per-image uniform (U) and normal (N) draws; one draw of each per call
_U_COLS = 26
_N_COLS = 11
_BAND_POWER = (10.0, 1.0, 1.0, 1.0)  # expected power per band, low to high (1/f spectrum), as in the paper


def _per_axis(v: torch.Tensor, dim: int, a: float, b: float) -> torch.Tensor:
    """``v`` with its x and y entries along ``dim`` scaled by ``a`` and ``b``.

    Python numbers, not a tensor of them: a tensor built from host data inside a
    step is a blocking copy on a GPU. Equal factors (square images) cost one
    multiplication or none.
    """
    if a == b:
        return v if a == 1 else v * a
    x, y = v.unbind(dim)
    return torch.stack([x * a, y * b], dim)


def _normalised(linear: torch.Tensor, shift: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """An affine map in pixels about the centre as ``affine_grid``'s ``theta`` (align_corners=False).

    ``[D A D^-1 | D b]`` with ``D = diag(2/w, 2/h)``: entry (i, j) of A scales by d_i / d_j.
    """
    linear = _per_axis(_per_axis(linear, 1, 1, w / h), 2, 1, h / w)
    return torch.cat([linear, _per_axis(shift, 1, 2 / w, 2 / h)], 2)


def _rotations(angles: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` angles -> ``[N, K, 2, 2]`` rotation matrices, in one pass for all K."""
    c, si = torch.cos(angles), torch.sin(angles)
    return torch.stack([c, -si, si, c], dim=-1).unflatten(-1, (2, 2))


def _pad_spec(dim: int, pad: int) -> list[int]:
    return [pad, pad, 0, 0] if dim == 3 else [0, 0, pad, pad]


def _taps(xp: torch.Tensor, kernel: torch.Tensor, dim: int, n: int) -> torch.Tensor:
    """``sum_k kernel[:, k] * xp[k : k + n]`` along ``dim``: one FIR per image as shifted slices."""
    out = xp.narrow(dim, 0, n) * kernel[:, 0]
    for k in range(1, kernel.shape[1]):
        out = out + xp.narrow(dim, k, n) * kernel[:, k]
    return out


class _ReflectFir(torch.autograd.Function):
    """Per-image 1D FIR (odd length) along ``dim`` with reflection padding, as shifted slices.

    A grouped convolution would do the same, but its double backward (R1
    differentiates through the augmentation twice) loops over the groups. The
    gradient is written by hand (:class:`_ReflectFirT`) because autograd
    through slices allocates a full-size zero tensor per tap (25 of them); the
    transpose of the transpose is this filter again, so every order of
    derivative stays a slice filter. ``kernel`` is random, never learned: it
    gets no gradient.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
        ctx.save_for_backward(kernel)
        ctx.dim = dim
        xp = F.pad(x, _pad_spec(dim, kernel.shape[1] // 2), mode="reflect")
        return _taps(xp, kernel, dim, x.shape[dim])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (kernel,) = ctx.saved_tensors
        return _ReflectFirT.apply(grad, kernel, ctx.dim), None, None


class _ReflectFirT(torch.autograd.Function):
    """The transpose of :class:`_ReflectFir`: full correlation with the reversed taps, then the
    reflected border folded back onto the samples it was copied from."""

    @staticmethod
    def forward(ctx, grad: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
        ctx.save_for_backward(kernel)
        ctx.dim = dim
        taps, n = kernel.shape[1], grad.shape[dim]
        padded = _taps(F.pad(grad, _pad_spec(dim, taps - 1)), kernel.flip(1), dim, n + taps - 1)
        template = grad.new_empty(grad.shape)  # only its shape is read
        return torch.ops.aten.reflection_pad2d_backward(padded, template, _pad_spec(dim, taps // 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (kernel,) = ctx.saved_tensors
        return _ReflectFir.apply(grad, kernel, ctx.dim), None, None


def _filter_along(x: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    """Per-image 1D FIR along ``dim`` (``kernel``: ``[N, taps, 1, 1, 1]``, odd taps) with reflection padding."""
    if kernel.requires_grad or kernel.shape[1] % 2 == 0:
        raise ValueError("the image filter's kernel must be odd-length and must not require gradients")
    return _ReflectFir.apply(x, kernel, dim)


class _GridSample(torch.autograd.Function):
    """Bilinear ``grid_sample`` (reflection padding) whose input gradient is itself differentiable.

    R1 differentiates D(augment(x)) with respect to x and then differentiates
    that gradient again; PyTorch's ``grid_sampler_2d_backward`` has no derivative
    on every build. The input gradient is linear in the incoming gradient, and
    its derivative with respect to that gradient is the forward warp again, so
    two small Functions close the loop. The grid gets no gradient (it is random,
    never learned).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grid)
        ctx.x_shape = x.shape
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (grid,) = ctx.saved_tensors
        return _GridSampleBackward.apply(grad_out, grid, ctx.x_shape), None


class _GridSampleBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad_out: torch.Tensor, grid: torch.Tensor, x_shape: torch.Size) -> torch.Tensor:
        ctx.save_for_backward(grid)
        x = grad_out.new_empty(x_shape)  # only its shape and dtype are read
        grad_x, _ = torch.ops.aten.grid_sampler_2d_backward(
            grad_out, x, grid, 0, 2, False, [True, False]
        )  # bilinear (0), reflection (2), align_corners=False
        return grad_x

    @staticmethod
    def backward(ctx, grad2: torch.Tensor):
        (grid,) = ctx.saved_tensors
        return _GridSample.apply(grad2, grid), None, None


def warp(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``grid_sample`` with reflection padding, twice differentiable in ``x``, always in fp32."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _GridSample.apply(x.float(), grid.float())


#: Daubechies' least-asymmetric wavelet of order 6 (its orthonormal low-pass, scaled to unit DC gain): the
#: official pipeline's filter around its 2x geometric warp. Orthonormality makes downsampling the upsampled
#: image the identity, so the supersampling itself loses nothing.
SYM6 = tuple(t / math.sqrt(2.0) for t in (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
))  # fmt: skip


def _symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Mirror ``pad`` pixels about each edge, the edge pixel repeated (``grid_sample``'s reflection)."""
    for dim in (3, 2):
        n = x.shape[dim]
        x = torch.cat([x.narrow(dim, 0, pad).flip(dim), x, x.narrow(dim, n - pad, pad).flip(dim)], dim)
    return x


def _fold(coords: torch.Tensor) -> torch.Tensor:
    """Normalised coordinates reflected into [-1, 1] about the image's outer edges (period 4)."""
    return (coords - 1).remainder(4).sub(2).abs().sub(1)


def supersampled_warp(x: torch.Tensor, theta: torch.Tensor, taps: tuple[float, ...] = SYM6) -> torch.Tensor:
    """The affine warp ``theta`` (``affine_grid``'s convention) resampled at twice the resolution.

    The image is mirrored by half the filter length, upsampled 2x, sampled
    bilinearly on a 2x grid of the output, and filtered back down. The output
    grid is widened by a margin so that the down filter sees warped pixels
    beyond the border rather than zeros; sample points are folded into the
    image first, so reflection about its own edges holds however far the warp
    reaches, with no padding that depends on the batch (a host sync on a GPU).
    """
    n, c, h, w = x.shape
    pad, margin = len(taps) // 2, len(taps) // 4
    with torch.autocast(device_type=x.device.type, enabled=False):
        up = upsample2d(_symmetric_pad(x.float(), pad), taps)
        hm, wm = h + 2 * margin, w + 2 * margin
        widened = torch.cat([_per_axis(theta[:, :, :2].float(), 2, wm / w, hm / h), theta[:, :, 2:].float()], 2)
        grid = F.affine_grid(widened, [n, c, 2 * hm, 2 * wm], align_corners=False)
        grid = _per_axis(_fold(grid), 3, w / (w + 2 * pad), h / (h + 2 * pad))
        y = downsample2d(_GridSample.apply(up, grid), taps)
        return y[:, :, margin : margin + h, margin : margin + w]


def band_filters(taps: int = 25, sigmas: tuple[float, ...] = (1.0, 2.0, 4.0)) -> torch.Tensor:
    """Four 1D band-pass filters ``[4, taps]``, low to high frequency, that sum to a unit impulse.

    Differences of Gaussians one octave apart: ``G4``, ``G2 - G4``, ``G1 - G2``,
    ``delta - G1``. Unit gains reproduce the image exactly, so a per-band gain
    vector is a smooth equaliser around the identity.
    """
    x = torch.arange(taps, dtype=torch.float64) - taps // 2
    g = [torch.exp(-0.5 * (x / s) ** 2) for s in sigmas]
    g = [k / k.sum() for k in g]
    delta = (x == 0).double()
    bands = [g[2], g[1] - g[2], g[0] - g[1], delta - g[0]]
    return torch.stack(bands).float()


class AugmentPipe(nn.Module):
    """The ADA pipeline for ``[N, C, H, W]`` images in [-1, 1]; strengths multiply ``p`` per operation.

    Standard deviations and ranges are the paper's defaults. The output is
    float32; with every gate closed (e.g. ``p == 0``) it equals the input exactly.
    ``supersample=False`` warps every image at native resolution (one
    ``grid_sample`` instead of a 4x larger one and two filters; blurrier).
    """

    bands: torch.Tensor
    band_power: torch.Tensor

    def __init__(
        self,
        *,
        xflip: float = 0.0,
        rotate90: float = 0.0,
        xint: float = 0.0,
        scale: float = 0.0,
        rotate: float = 0.0,
        aniso: float = 0.0,
        xfrac: float = 0.0,
        brightness: float = 0.0,
        contrast: float = 0.0,
        lumaflip: float = 0.0,
        imgfilter: float = 0.0,
        noise: float = 0.0,
        cutout: float = 0.0,
        xint_max: float = 0.125,
        scale_std: float = 0.2,
        rotate_max: float = 1.0,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        imgfilter_std: float = 1.0,
        noise_std: float = 0.1,
        cutout_size: float = 0.5,
        supersample: bool = True,
    ) -> None:
        super().__init__()
        self.supersample = supersample
        self.strength = {
            "xflip": xflip, "rotate90": rotate90, "xint": xint, "scale": scale, "rotate": rotate, "aniso": aniso,
            "xfrac": xfrac, "brightness": brightness, "contrast": contrast, "lumaflip": lumaflip,
            "imgfilter": imgfilter, "noise": noise, "cutout": cutout,
        }  # fmt: skip
        self.xint_max, self.scale_std, self.rotate_max = xint_max, scale_std, rotate_max
        self.aniso_std, self.xfrac_std = aniso_std, xfrac_std
        self.brightness_std, self.contrast_std = brightness_std, contrast_std
        self.imgfilter_std, self.noise_std, self.cutout_size = imgfilter_std, noise_std, cutout_size
        self.register_buffer("bands", band_filters(), persistent=False)
        power = torch.tensor(_BAND_POWER)
        self.register_buffer("band_power", power / power.sum(), persistent=False)  # made once, not per call

    @classmethod
    def from_name(cls, name: str, *, supersample: bool = True, **kwargs: float) -> AugmentPipe:
        if name not in PIPES:
            raise ValueError(f"unknown augmentation pipeline {name!r}; choose one of {', '.join(PIPES)}")
        return cls(**PIPES[name], **kwargs, supersample=supersample)

    def _any(self, *names: str) -> bool:
        return any(self.strength[n] > 0 for n in names)

    def forward(self, images: torch.Tensor, p: torch.Tensor | float, draws: Draws, batch: int | None = None):
        """Augment a local batch; ``batch`` is the global batch size that ``draws`` slices (default: local)."""
        x = images.float()
        n, c, h, w = x.shape
        batch = n if batch is None else batch
        p = torch.as_tensor(p, dtype=torch.float32, device=x.device)
        u = draws.rand(batch, _U_COLS).to(x.device)
        g = draws.randn(batch, _N_COLS).to(x.device)
        s = self.strength

        def gate(col: int, strength: float, prob: torch.Tensor | None = None) -> torch.Tensor:
            return u[:, col] < (prob if prob is not None else strength * p)

        if self._any("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac"):
            x = self._geometric(x, u, g, gate, p)
        if self._any("brightness", "contrast", "lumaflip"):
            x = self._color(x, u, g, gate)
        if self._any("imgfilter"):
            x = self._filter(x, g, gate)
        if self._any("noise"):
            on = gate(22, s["noise"])
            sigma = torch.where(on, g[:, 10].abs() * self.noise_std, torch.zeros_like(g[:, 10]))
            noise = draws.randn(batch, c, h, w).to(x.device)
            x = torch.where(on[:, None, None, None], x + noise * sigma[:, None, None, None], x)
        if self._any("cutout"):
            on = gate(23, s["cutout"])
            size = torch.where(on, torch.full_like(u[:, 0], self.cutout_size), torch.zeros_like(u[:, 0]))
            cy = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h
            cx = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w
            keep = ((cx[None, :] - u[:, 24, None]).abs() >= size[:, None] / 2)[:, None, :] | (
                (cy[None, :] - u[:, 25, None]).abs() >= size[:, None] / 2
            )[:, :, None]
            x = x * keep[:, None].to(x.dtype)
        return x

    def _geometric(self, x, u, g, gate, p) -> torch.Tensor:
        """All geometric ops as one affine map per image: one warp, or with supersampling a blit and a 2x warp.

        The inverse transform (output pixel -> input pixel, about the centre) is

            S(1-2f, 1) R(-q pi/2) T(-t_int) S(1/k) R(-theta1) S(1/a, a) R(-theta2) T(-t_frac)

        (x-flip, quarter turns, integer translation, isotropic scaling, rotation,
        anisotropic scaling, rotation, fractional translation: the paper's order).
        It is built as a 2x2 linear part and a translation from a handful of
        batched operations, not as eight 3x3 matrices of per-entry tensors: on a
        GPU every operation is a kernel launch, and this runs several times per
        training step. A closed gate sets its parameter to the identity value
        (0 angle, 0 shift, 2**0 scale), so no per-op masking of matrices is needed.
        """
        h, w = x.shape[2:]
        s = self.strength
        zero = torch.zeros_like(u[:, 0])

        def on(col: int, name: str, prob: torch.Tensor | None = None) -> torch.Tensor:
            return gate(col, s[name], prob).to(x.dtype)

        # two rotations around the anisotropic scaling; each fires with 1 - sqrt(1 - p) so one of them fires w.p. p
        p_rot = 1 - torch.sqrt((1 - s["rotate"] * p).clamp(0, 1))
        # gate columns ordered so that every parameter group below is a slice (a list index is a host copy)
        gates = torch.stack([on(2, "rotate90"), on(8, "rotate", p_rot), on(11, "rotate", p_rot), on(0, "xflip"),
                             on(4, "xint"), on(7, "scale"), on(10, "aniso"), on(13, "xfrac")], 1)
        angles = torch.stack([torch.floor(u[:, 3] * 4) * (-math.pi / 2),  # quarter turns, then the two rotations
                              (u[:, 9] * 2 - 1) * (-math.pi * self.rotate_max),
                              (u[:, 12] * 2 - 1) * (-math.pi * self.rotate_max)], 1) * gates[:, 0:3]
        flip = torch.floor(u[:, 1] * 2) * gates[:, 3]
        log2_scale = g[:, 0] * (self.scale_std * gates[:, 5])
        log2_aniso = g[:, 1] * (self.aniso_std * gates[:, 6])
        # translations in pixels; integer ones are whole pixels
        t_int = torch.stack([torch.round((u[:, 5] * 2 - 1) * (self.xint_max * w)),
                             torch.round((u[:, 6] * 2 - 1) * (self.xint_max * h))], 1) * gates[:, 4:5]
        t_frac = _per_axis(g[:, 2:4] * (self.xfrac_std * gates[:, 7:8]), 1, w, h)

        rot = _rotations(angles)  # [N, 3, 2, 2]
        first = rot[:, 0] * torch.stack([1 - 2 * flip, 1 - zero], 1)[:, :, None]  # S(1-2f, 1) R(-q pi/2)
        aniso = torch.exp2(torch.stack([-log2_aniso, log2_aniso], 1))[:, None, :]  # columns of S(1/a, a)
        smooth = (rot[:, 1] * aniso) @ rot[:, 2] * torch.exp2(-log2_scale)[:, None, None]
        any_gate = gates.amax(1)[:, None, None, None] > 0
        if not self.supersample:
            linear = first @ smooth
            shift = -(first @ t_int[:, :, None] + linear @ t_frac[:, :, None])  # [N, 2, 1]
            moved = warp(x, F.affine_grid(_normalised(linear, shift, w, h), list(x.shape), align_corners=False))
            return torch.where(any_gate, moved, x)
        # The chain is a blit B (flip, quarter turns, integer shift; exact on the pixel grid) after a continuous
        # map C, and output(o) = x(B(C(o))): blit the image at native resolution, then warp that at 2x by C.
        # One 2x warp of B C would blur the blits: the asymmetric Symlet filter does not commute with a flip.
        blit = _normalised(first, -(first @ t_int[:, :, None]), w, h)
        z = torch.where(any_gate, warp(x, F.affine_grid(blit, list(x.shape), align_corners=False)), x)
        if not self._any("scale", "rotate", "aniso", "xfrac"):
            return z
        cont = _normalised(smooth, -(smooth @ t_frac[:, :, None]), w, h)
        continuous = torch.maximum(gates[:, 1:3].amax(1), gates[:, 5:8].amax(1))  # rotations, scale, aniso, xfrac
        return torch.where(continuous[:, None, None, None] > 0, supersampled_warp(z, cont), z)

    def _color(self, x, u, g, gate) -> torch.Tensor:
        """Brightness, contrast and luma flip as one per-image affine map ``x * scale + shift``."""
        s = self.strength
        on = [gate(col, s[name]).to(x.dtype) for col, name in ((14, "brightness"), (15, "contrast"), (16, "lumaflip"))]
        shift = g[:, 4] * (self.brightness_std * on[0])
        k = torch.exp2(g[:, 5] * (self.contrast_std * on[1])) * (1 - 2 * torch.floor(u[:, 17] * 2) * on[2])
        out = x * k[:, None, None, None] + (shift * k)[:, None, None, None]
        active = (on[0] + on[1] + on[2]) > 0
        return torch.where(active[:, None, None, None], out, x)

    def _filter(self, x, g, gate) -> torch.Tensor:
        n = x.shape[0]
        power = self.band_power
        gains = torch.ones(n, len(_BAND_POWER), device=x.device)
        active = torch.zeros(n, dtype=torch.bool, device=x.device)
        for i in range(len(_BAND_POWER)):
            on = gate(18 + i, self.strength["imgfilter"])
            t = torch.ones_like(gains)
            t[:, i] = torch.where(on, torch.exp2(g[:, 6 + i] * self.imgfilter_std), torch.ones_like(gains[:, 0]))
            # keep the expected power of a 1/f image constant whatever the band gains
            gains = gains * t / (power * t.square()).sum(dim=1, keepdim=True).sqrt()
            active = active | on
        kernel = (gains @ self.bands)[:, :, None, None, None]  # [N, taps, 1, 1, 1]: one 1D filter per image
        y = _filter_along(_filter_along(x, kernel, 3), kernel, 2)
        return torch.where(active[:, None, None, None], y, x)


# -- the adaptive controller ------------------------------------------------------


def adjust_p(
    p: torch.Tensor, rt: torch.Tensor, *, target: float, batch: int, interval: int, ada_kimg: float
) -> torch.Tensor:
    """One ADA update: move ``p`` by ``batch * interval / (ada_kimg * 1000)`` towards keeping ``rt`` at ``target``.

    With the defaults p can travel from 0 to 1 in ``ada_kimg`` thousand images.
    Pure tensor arithmetic, so the update never waits for the GPU.
    """
    step = batch * interval / (ada_kimg * 1000.0)
    return (p + torch.sign(rt - target) * step).clamp(0.0, 1.0)


class AdaptiveAugment(nn.Module):
    """Pipeline plus its probability ``p`` and the running ``sign(D(real))`` statistics, all on the device.

    ``mode``: ``"ada"`` adapts p, ``"fixed"`` keeps the initial p, ``"noaug"``
    passes images through untouched.
    """

    p: torch.Tensor
    rt: torch.Tensor
    signs: torch.Tensor

    def __init__(
        self,
        pipe: str = "bgc",
        *,
        mode: str = "ada",
        p: float = 0.0,
        target: float = 0.6,
        interval: int = 4,
        ada_kimg: float = 500.0,
        supersample: bool = True,
    ) -> None:
        super().__init__()
        if mode not in ("ada", "fixed", "noaug"):
            raise ValueError(f"augment mode must be ada, fixed or noaug, got {mode!r}")
        self.mode, self.target, self.interval, self.ada_kimg = mode, target, interval, ada_kimg
        self.pipe = AugmentPipe.from_name(pipe, supersample=supersample)
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("rt", torch.tensor(0.0))  # the last r_t used for an update
        self.register_buffer("signs", torch.zeros(2))  # [sum of sign(D(real)), count] since the last update

    @property
    def enabled(self) -> bool:
        return self.mode != "noaug"

    def forward(self, images: torch.Tensor, draws: Draws, batch: int | None = None) -> torch.Tensor:
        return self.pipe(images, self.p, draws, batch) if self.enabled else images

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor) -> None:
        """Accumulate ``sign(D(real))`` of one local batch."""
        if self.mode != "ada":
            return
        logits = real_logits.detach().float()
        self.signs += torch.stack([logits.sign().sum(), logits.new_full((), float(logits.numel()))])

    @torch.no_grad()
    def update(self, batch: int) -> None:
        """Adjust p from the statistics since the last update (sums over DDP ranks), then reset them."""
        if self.mode != "ada":
            return
        stats = self.signs.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)
        rt = stats[0] / stats[1].clamp(min=1.0)
        self.p.copy_(adjust_p(self.p, rt, target=self.target, batch=batch, interval=self.interval,
                              ada_kimg=self.ada_kimg))  # fmt: skip
        self.rt.copy_(rt)
        self.signs.zero_()
