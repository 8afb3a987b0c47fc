"""2D convolutions whose gradients are again ordinary convolutions, to any order.

R1 and path-length regularisation differentiate a gradient, so every
convolution of StyleGAN2 is differentiated twice. PyTorch's native double
backward (``_convolution_double_backward``) gets the weight-gradient term by
a convolution whose kernel is the whole image (batch folded into channels),
which cuDNN runs with a slow generic kernel: on an H100 one such call took
28 ms, and the double backward as a whole 13% of an eager E4 step.

Here the gradient with respect to the input is a (transposed) convolution,
and the gradient with respect to the weight is ``aten.convolution_backward``
asking only for the weight, cuDNN's own weight-gradient kernels. Both are
autograd Functions again, and their gradients are once more the forward
convolution and these two, so any order of differentiation stays on the
fast kernels. This is the idea of NVlabs' ``conv2d_gradfix``, written for
today's PyTorch: no custom CUDA. Under autocast the inputs are cast as autocast
would cast them before they enter the autograd Functions (casts inside a
Function's forward would cut the graph that second derivatives follow), so
the backward, which runs outside autocast, computes in the same precision and
never mixes dtypes.

Inside ``torch.compile`` the native convolutions are used: compiled graphs
are never differentiated twice (R1 and path length run eagerly), and
Inductor knows the native ops best.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ConvSpec:
    """Everything about a convolution but its tensors."""

    transposed: bool = False
    stride: int = 1
    padding: int = 0
    output_padding: int = 0
    groups: int = 1

    def run(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return F.conv_transpose2d(
                x, w, stride=self.stride, padding=self.padding, output_padding=self.output_padding, groups=self.groups
            )
        return F.conv2d(x, w, stride=self.stride, padding=self.padding, groups=self.groups)

    def input_grad_spec(self, x_shape: torch.Size, y_shape: torch.Size, k: tuple[int, int]) -> ConvSpec:
        """The convolution that maps ``dL/dy`` to ``dL/dx`` with the same weight: the transposed one.

        Going from a strided convolution back to its input, the transposed
        convolution needs the output padding that makes it land on x's size
        exactly (a strided convolution drops the remainder).
        """
        if self.transposed:
            return ConvSpec(False, self.stride, self.padding, 0, self.groups)
        pads = {x_shape[d] - ((y_shape[d] - 1) * self.stride - 2 * self.padding + k[d - 2]) for d in (2, 3)}
        if len(pads) != 1:
            raise ValueError(f"convolution gradients need equal output padding along H and W, got {sorted(pads)}")
        return ConvSpec(True, self.stride, self.padding, pads.pop(), self.groups)


def conv2d(x: torch.Tensor, w: torch.Tensor, *, stride: int = 1, padding: int = 0, groups: int = 1) -> torch.Tensor:
    """``F.conv2d`` with gradients of every order on ordinary convolution kernels."""
    return _convolve(x, w, ConvSpec(False, stride, padding, 0, groups))


def conv_transpose2d(
    x: torch.Tensor, w: torch.Tensor, *, stride: int = 1, padding: int = 0, output_padding: int = 0, groups: int = 1
) -> torch.Tensor:
    """``F.conv_transpose2d`` with gradients of every order on ordinary convolution kernels."""
    return _convolve(x, w, ConvSpec(True, stride, padding, output_padding, groups))


def _convolve(x: torch.Tensor, w: torch.Tensor, spec: ConvSpec) -> torch.Tensor:
    if torch.compiler.is_compiling() or not torch.is_grad_enabled():
        return spec.run(x, w)
    dtype = _compute_dtype(x)  # cast as autograd ops, outside the Function, so the graph reaches x and w
    return _Conv.apply(x.to(dtype), w.to(dtype), spec)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype autocast would run a convolution in (bf16 under bf16 autocast), else the input's."""
    kind = x.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, spec: ConvSpec) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        y = spec.run(x, w)
        ctx.spec, ctx.y_shape = spec, y.shape
        return y

    @staticmethod
    def backward(ctx, gy: torch.Tensor):
        x, w = ctx.saved_tensors
        gy = gy.to(x.dtype)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = _convolve(gy, w, ctx.spec.input_grad_spec(x.shape, ctx.y_shape, w.shape[2:]))
        if ctx.needs_input_grad[1]:
            gw = _WeightGrad.apply(gy, x, w.shape, ctx.spec)
        return gx, gw, None  # autograd casts each to its input's dtype


class _WeightGrad(torch.autograd.Function):
    """``dL/dw`` from ``dL/dy`` and x, by cuDNN's weight-gradient kernels; linear in both arguments."""

    @staticmethod
    def forward(ctx, gy: torch.Tensor, x: torch.Tensor, w_shape: torch.Size, spec: ConvSpec) -> torch.Tensor:
        weight = torch.empty((), dtype=x.dtype, device=x.device).expand(w_shape)  # only its shape is read
        _, gw, _ = torch.ops.aten.convolution_backward(
            gy, x, weight, None, [spec.stride] * 2, [spec.padding] * 2, [1, 1], spec.transposed,
            [spec.output_padding] * 2, spec.groups, [False, True, False],
        )  # fmt: skip
        ctx.save_for_backward(gy, x)
        ctx.spec = spec
        return gw

    @staticmethod
    def backward(ctx, ggw: torch.Tensor):
        gy, x = ctx.saved_tensors
        ggw = ggw.to(x.dtype)
        ggy = gx = None
        if ctx.needs_input_grad[0]:  # dw is linear in dy: its transpose is the forward convolution with ggw
            ggy = _convolve(x, ggw, ctx.spec)
        if ctx.needs_input_grad[1]:  # and linear in x: the input gradient of the forward, with ggw as weight
            gx = _convolve(gy, ggw, ctx.spec.input_grad_spec(x.shape, gy.shape, ggw.shape[2:]))
        return ggy, gx, None, None
