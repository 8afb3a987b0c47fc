"""Convolutions whose gradients are convolutions: same values and derivatives as PyTorch's, to second order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from echolib.models.conv_grads import conv2d, conv_transpose2d

CASES = {
    "3x3": (lambda x, w: conv2d(x, w, padding=1), lambda x, w: F.conv2d(x, w, padding=1), (2, 4, 7, 9), (3, 4, 3, 3)),
    "strided": (lambda x, w: conv2d(x, w, stride=2), lambda x, w: F.conv2d(x, w, stride=2), (2, 4, 10, 10), (3, 4, 3, 3)),
    "1x1": (lambda x, w: conv2d(x, w), lambda x, w: F.conv2d(x, w), (2, 4, 5, 6), (3, 4, 1, 1)),
    "grouped": (
        lambda x, w: conv2d(x, w, padding=1, groups=2), lambda x, w: F.conv2d(x, w, padding=1, groups=2),
        (2, 4, 6, 6), (6, 2, 3, 3),
    ),
    "transposed": (
        lambda x, w: conv_transpose2d(x, w, stride=2), lambda x, w: F.conv_transpose2d(x, w, stride=2),
        (2, 4, 5, 5), (4, 3, 3, 3),
    ),
    "transposed grouped": (
        lambda x, w: conv_transpose2d(x, w, stride=2, groups=2),
        lambda x, w: F.conv_transpose2d(x, w, stride=2, groups=2), (2, 4, 5, 5), (4, 3, 3, 3),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_values_gradients_and_gradients_of_gradients_equal_pytorchs(case):
    ours, ref, x_shape, w_shape = CASES[case]
    torch.manual_seed(0)
    x = torch.randn(x_shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(w_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(ours, (x, w))
    results = []
    for fn in (ours, ref):
        y = fn(x, w)
        probe = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
        gx, gw = torch.autograd.grad((y * probe).sum(), (x, w), create_graph=True)
        penalty = gx.square().sum() + (gw * gw.flip(0)).sum()  # what R1 / path length differentiate
        results.append((y, gx, gw, *torch.autograd.grad(penalty, (x, w))))
    for a, b in zip(*results, strict=True):
        assert torch.allclose(a, b), case


def _convolution_kernels(fn) -> list[tuple[int, int]]:
    """Spatial kernel sizes of every ``aten.convolution`` in a gradient-of-gradient of ``fn``."""
    kernels = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket is torch.ops.aten.convolution:
                kernels.append(tuple(args[1].shape[2:]))
            return func(*args, **(kwargs or {}))

    x = torch.randn(2, 3, 16, 16, requires_grad=True).to(memory_format=torch.channels_last)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    with Record():
        (gx,) = torch.autograd.grad(fn(x, w).square().sum(), x, create_graph=True)
        gx.square().sum().backward()
    assert w.grad is not None
    return kernels


def test_double_backward_convolves_with_the_layer_kernel_not_an_image_sized_one():
    """PyTorch's own double backward gets the weight term from a convolution whose kernel is the image
    (a slow generic cuDNN kernel on the GPU); ours only ever convolves with 3x3 kernels."""
    assert set(_convolution_kernels(lambda x, w: conv2d(x, w, padding=1))) == {(3, 3)}
    assert (16, 16) in _convolution_kernels(lambda x, w: F.conv2d(x, w, padding=1))


def test_outside_autograd_it_is_the_plain_convolution():
    x, w = torch.randn(1, 2, 6, 6), torch.randn(3, 2, 3, 3)
    with torch.no_grad():
        assert torch.equal(conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))


def test_under_bf16_autocast_gradients_of_gradients_match_pytorchs_and_keep_the_leaves_dtypes():
    """The backward runs outside autocast; the forward's cast inputs keep it in bf16 without mixing dtypes."""
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    results = []
    for fn in (lambda x, w: conv2d(x, w, stride=2), lambda x, w: F.conv2d(x, w, stride=2)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = fn(x, w)
            (gx,) = torch.autograd.grad(y.float().square().sum(), x, create_graph=True)
        (gw,) = torch.autograd.grad(gx.square().sum(), w)
        assert y.dtype == torch.bfloat16 and gx.dtype == torch.float32 and gw.dtype == torch.float32
        results.append((y.float(), gx, gw))
    for a, b in zip(*results, strict=True):
        assert torch.allclose(a, b, rtol=0.05, atol=0.05 * b.abs().max().item())
