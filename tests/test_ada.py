"""Adaptive discriminator augmentation: identity at p=0, every operation live and differentiable, the
geometry exact, DDP ranks consistent, and p driven by the overfitting heuristic in the right direction."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import dispatched_ops

from echolib.augment.ada import (
    OPS,
    PIPES,
    AdaptiveAugment,
    AugmentPipe,
    GeneratorDraws,
    adjust_p,
    band_filters,
    supersampled_warp,
    warp,
)
from echolib.models.base import RealBatch, StepContext


def images(n: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Asymmetric smooth-plus-noise images in [-1, 1]: no augmentation can leave them unchanged by accident."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    base = torch.tanh(2 * xx + yy**2 - 0.3)[None, None]
    return (0.7 * base + 0.3 * torch.rand(n, 1, size, size, generator=g) * 2 - 0.3).clamp(-1, 1)


def draws(seed: int = 0) -> GeneratorDraws:
    return GeneratorDraws(torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(PIPES))
def test_p_zero_is_exactly_the_identity(name):
    x = images()
    y = AugmentPipe.from_name(name)(x, torch.tensor(0.0), draws())
    assert torch.equal(y, x)


@pytest.mark.parametrize("op", OPS)
def test_each_operation_alone_changes_images_and_passes_gradients(op):
    x = images().requires_grad_(True)
    y = AugmentPipe(**{op: 1.0})(x, torch.tensor(1.0), draws(1))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert (y - x).abs().amax() > 1e-3, f"{op} at p=1 left every image unchanged"
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_flips_and_quarter_turns_are_exact():
    x = images(16)
    y = AugmentPipe(xflip=1.0)(x, 1.0, draws(2))
    flipped = [torch.allclose(y[i], x[i].flip(-1), atol=1e-5) for i in range(16)]
    same = [torch.allclose(y[i], x[i], atol=1e-5) for i in range(16)]
    assert all(a or b for a, b in zip(flipped, same, strict=True)) and any(flipped) and any(same)
    y = AugmentPipe(rotate90=1.0)(x, 1.0, draws(3))
    turns = [[torch.allclose(y[i], torch.rot90(x[i], k, dims=(1, 2)), atol=1e-5) for k in range(4)] for i in range(16)]
    assert all(sum(t) == 1 for t in turns)
    assert len({t.index(True) for t in turns}) >= 3  # several different quarter turns were drawn


def test_integer_translation_moves_whole_pixels_with_reflection():
    x = images(4, 32)
    y = AugmentPipe(xint=1.0)(x, 1.0, draws(4))
    for i in range(4):
        # the interior matches x shifted by some whole-pixel offset within the +-12.5% range
        errs = {
            (dy, dx): (y[i, :, 6:-6, 6:-6] - torch.roll(x[i], (dy, dx), dims=(1, 2))[:, 6:-6, 6:-6]).abs().max()
            for dy in range(-4, 5)
            for dx in range(-4, 5)
        }
        assert min(errs.values()) < 1e-5
    assert y.min() >= x.min() - 1e-6 and y.max() <= x.max() + 1e-6  # reflection padding adds no new values


def _explicit_geometry(u: torch.Tensor, g: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's chain of eight 3x3 matrices, multiplied out one by one (every gate open): the oracle.

    Returned as the blit (flip, quarter turns, integer shift) and the continuous rest, whose product is the chain.
    """

    def mat(rows):
        return torch.tensor(rows, dtype=torch.float64)

    def scale(sx, sy):
        return mat([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])

    def rotate(t):
        return mat([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])

    def translate(tx, ty):
        return mat([[1, 0, tx], [0, 1, ty], [0, 0, 1]])

    blits, rests = [], []
    for ui, gi in zip(u.double().tolist(), g.double().tolist(), strict=True):
        k, a = 2 ** (gi[0] * 0.2), 2 ** (gi[1] * 0.2)
        blit = (
            scale(1 - 2 * math.floor(ui[1] * 2), 1)
            @ rotate(-math.pi / 2 * math.floor(ui[3] * 4))
            @ translate(-round((ui[5] * 2 - 1) * 0.125 * w), -round((ui[6] * 2 - 1) * 0.125 * h))
        )
        rest = (
            scale(1 / k, 1 / k)
            @ rotate(-(ui[9] * 2 - 1) * math.pi)
            @ scale(1 / a, a)
            @ rotate(-(ui[12] * 2 - 1) * math.pi)
            @ translate(-gi[2] * 0.125 * w, -gi[3] * 0.125 * h)
        )
        blits.append(scale(2 / w, 2 / h) @ blit @ scale(w / 2, h / 2))
        rests.append(scale(2 / w, 2 / h) @ rest @ scale(w / 2, h / 2))
    return torch.stack(blits)[:, :2].float(), torch.stack(rests)[:, :2].float()


def _grid(theta: torch.Tensor, shape) -> torch.Tensor:
    return torch.nn.functional.affine_grid(theta, list(shape), align_corners=False)


@pytest.mark.parametrize("supersample", [False, True])
@pytest.mark.parametrize("shape", [(6, 1, 32, 32), (6, 2, 24, 40)])
def test_geometry_is_the_papers_chain_of_transforms(shape, supersample):
    """The batched construction equals the eight elementary matrices multiplied in order, square or not.

    Without supersampling the whole chain is one warp; with it, the blit part warps first at native
    resolution and the continuous rest at 2x.
    """
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(5))
    y = AugmentPipe.from_name("bg", supersample=supersample)(x, 1.0, draws(6))  # p = 1: every gate is open
    ref_draws = draws(6)
    u, g = ref_draws.rand(shape[0], 26), ref_draws.randn(shape[0], 11)
    blit, rest = _explicit_geometry(u, g, *shape[2:])
    if supersample:
        expected = supersampled_warp(warp(x, _grid(blit, shape)), rest)
    else:
        whole = torch.cat([blit[:, :, :2] @ rest[:, :, :2], blit[:, :, :2] @ rest[:, :, 2:] + blit[:, :, 2:]], 2)
        expected = warp(x, _grid(whole, shape))
    assert torch.allclose(y, expected, atol=1e-4), (y - expected).abs().max()
    assert (y - x).abs().amax() > 0.1


def test_supersampling_is_exact_for_the_identity_and_keeps_a_fine_pattern_in_place():
    """2x up and down between orthonormal Symlet filters is the identity; a sub-pixel shift then stays sharp."""
    x = torch.randn(3, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(3, 2, 3)
    assert torch.allclose(supersampled_warp(x, identity)[..., 4:-4, 4:-4], x[..., 4:-4, 4:-4], atol=1e-4)
    n, f, d = 96, 0.3, 0.37  # 0.3 cycles per pixel (speckle scale), shifted by 0.37 px
    cols = torch.arange(n, dtype=torch.float32)
    pattern = torch.cos(2 * math.pi * f * cols).expand(1, 1, n, n).contiguous()
    truth = torch.cos(2 * math.pi * f * (cols + d)).expand(1, 1, n, n)
    shift = torch.tensor([[[1.0, 0.0, 2 * d / n], [0.0, 1.0, 0.0]]])
    error = {
        "1x": (warp(pattern, _grid(shift, pattern.shape)) - truth)[..., 8:-8, 8:-8].pow(2).mean().sqrt(),
        "2x": (supersampled_warp(pattern, shift) - truth)[..., 8:-8, 8:-8].pow(2).mean().sqrt(),
    }
    assert error["2x"] < 0.1 and error["1x"] > 0.2, error


def test_supersampled_warp_is_twice_differentiable():
    """R1 differentiates D(augment(x)) twice; the 2x path (pad, filters, warp) must support that."""
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    theta = torch.tensor([[[0.9, -0.3, 0.05], [0.3, 0.9, -0.02]]]).expand(2, 2, 3)
    y = supersampled_warp(x.float(), theta)
    (grad,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    (grad2,) = torch.autograd.grad(grad.square().sum(), x)
    assert grad.abs().sum() > 0 and grad2.abs().sum() > 0 and torch.isfinite(grad2).all()


def test_color_ops_are_per_image_affine_maps_and_lumaflip_negates():
    x = images(16)
    y = AugmentPipe(brightness=1.0, contrast=1.0)(x, 1.0, draws(5))
    for i in range(16):
        a, b = torch.linalg.lstsq(torch.stack([x[i].flatten(), torch.ones(x[i].numel())], 1), y[i].flatten()).solution
        assert torch.allclose(a * x[i] + b, y[i], atol=1e-4)
    y = AugmentPipe(lumaflip=1.0)(x, 1.0, draws(6))
    neg = [torch.allclose(y[i], -x[i]) for i in range(16)]
    assert all(neg[i] or torch.equal(y[i], x[i]) for i in range(16)) and any(neg)


def test_warp_is_twice_differentiable_like_grid_sample():
    """R1 differentiates through the augmentation twice; the custom warp must match grid_sample's calculus."""
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    theta = torch.tensor([[[0.9, 0.3, 0.1], [-0.2, 1.1, 0.05]]] * 2, dtype=torch.float64)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    ref = torch.nn.functional.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
    assert torch.allclose(warp(x, grid).double(), ref, atol=1e-6)
    x32 = x.detach().float().requires_grad_(True)
    a = torch.randn(2, requires_grad=True)
    y = (warp(x32, grid) * a[None, :, None, None]).square().sum()
    (g,) = torch.autograd.grad(y, x32, create_graph=True)
    g.square().sum().backward()  # gradient of a gradient, as in R1
    ref32 = torch.nn.functional.grid_sample(x32, grid.float(), padding_mode="reflection", align_corners=False)
    (g_ref,) = torch.autograd.grad((ref32 * a[None, :, None, None]).square().sum(), x32)
    assert torch.allclose(g, g_ref, atol=1e-5) and a.grad is not None and torch.isfinite(a.grad).all()


def _grouped_conv_filter(x: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    """The image filter as a reflection pad plus one grouped convolution (a group per image and channel)."""
    n, c, h, w = x.shape
    taps = kernel.shape[1]
    pad = [taps // 2, taps // 2, 0, 0] if dim == 3 else [0, 0, taps // 2, taps // 2]
    xp = torch.nn.functional.pad(x, pad, mode="reflect").reshape(1, n * c, h + pad[2] * 2, w + pad[0] * 2)
    weight = kernel.reshape(n, 1, taps).repeat_interleave(c, 0)  # [N*C, 1, taps]
    weight = weight[:, :, None, :] if dim == 3 else weight[:, :, :, None]
    return torch.nn.functional.conv2d(xp, weight, groups=n * c).reshape(n, c, h, w)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("taps", [5, 25])
def test_image_filter_derivatives_equal_the_grouped_convolution(dim, taps):
    """The image filter's hand-written transpose (no autograd through its 25 slices) gives the same
    gradients, and gradients of gradients (R1), as autograd through a grouped convolution."""
    from echolib.augment.ada import _filter_along

    x = torch.randn(2, 2, 30, 28, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(2, taps, 1, 1, 1, dtype=torch.float64)
    ours, ref = (lambda t: _filter_along(t, kernel, dim)), (lambda t: _grouped_conv_filter(t, kernel, dim))
    assert torch.allclose(ours(x), ref(x))
    probe = torch.randn(x.shape, dtype=x.dtype, requires_grad=True)
    weight = torch.randn_like(x)
    grads = []
    for fn in (ours, ref):
        with dispatched_ops() as seen:
            (g,) = torch.autograd.grad((fn(x) * probe).sum(), x, create_graph=True)  # A^T probe
            (gg,) = torch.autograd.grad((weight * g.square()).sum(), probe)  # the transpose's own gradient
        grads.append((g, gg))
        if fn is ours:
            ours_ops = seen
    assert torch.allclose(grads[0][0], grads[1][0]) and torch.allclose(grads[0][1], grads[1][1])
    assert "aten.reflection_pad2d_backward" in ours_ops and "aten.slice_backward" not in ours_ops


def test_filter_bank_is_a_partition_of_unity():
    bank = band_filters()
    total = bank.sum(0)
    impulse = torch.zeros_like(total)
    impulse[total.numel() // 2] = 1
    assert torch.allclose(total, impulse, atol=1e-6)
    assert torch.allclose(bank[0].sum(), torch.tensor(1.0)) and bank[1:].sum(1).abs().max() < 1e-6  # DC only in band 0


def test_each_operation_fires_with_probability_p():
    x = images(4000, 8)
    y = AugmentPipe(noise=1.0)(x, torch.tensor(0.3), draws(7))
    fired = ((y - x).flatten(1).abs().amax(1) > 0).float().mean()
    assert abs(fired - 0.3) < 0.03


def test_global_draws_make_ddp_ranks_augment_like_one_process():
    """Two ranks with half the batch each see exactly the augmentation of one process with the whole batch."""
    x = images(8)
    pipe = AugmentPipe.from_name("bgcfnc")

    def ctx(rank: int, world: int) -> StepContext:
        return StepContext(
            step=0, nimg=0, batch=8, device=torch.device("cpu"), generator=torch.Generator().manual_seed(9),
            next_real=lambda: RealBatch(x, torch.arange(8)), rank=rank, world_size=world,
        )  # fmt: skip

    whole = pipe(x, 0.5, ctx(0, 1), batch=8)
    halves = [pipe(x[4 * r : 4 * r + 4], 0.5, ctx(r, 2), batch=8) for r in range(2)]
    assert torch.allclose(torch.cat(halves), whole, atol=1e-6)


def test_same_draws_same_augmentation():
    x = images()
    pipe = AugmentPipe.from_name("bgcfnc")
    assert torch.equal(pipe(x, 0.7, draws(11)), pipe(x, 0.7, draws(11)))
    assert not torch.equal(pipe(x, 0.7, draws(11)), pipe(x, 0.7, draws(12)))


# -- the adaptive controller ----------------------------------------------------------


def test_p_rises_while_d_overfits_and_falls_when_it_does_not():
    batch, interval, ada_kimg = 32, 4, 1.0
    ada = AdaptiveAugment("bgc", target=0.6, interval=interval, ada_kimg=ada_kimg)
    step = batch * interval / (ada_kimg * 1000)
    overfit = torch.full((batch,), 3.0)  # D says "real" with confidence on every real: sign = +1, r_t = 1
    for k in range(1, 6):
        for _ in range(interval):
            ada.observe(overfit)
        ada.update(batch)
        assert ada.p.item() == pytest.approx(k * step) and ada.rt.item() == 1.0
    unsure = torch.tensor([1.0, -1.0] * (batch // 2))  # r_t = 0 < target
    for _ in range(3):
        ada.observe(unsure)
        ada.update(batch)
    assert ada.p.item() == pytest.approx(2 * step) and ada.rt.item() == 0.0
    for _ in range(10):
        ada.observe(unsure)
        ada.update(batch)
    assert ada.p.item() == 0.0  # clamped at 0


def test_p_saturates_at_one_after_ada_kimg():
    p = torch.tensor(0.0)
    for _ in range(200):  # 200 updates x 32 x 4 images = 25.6 kimg > ada_kimg = 20
        p = adjust_p(p, torch.tensor(1.0), target=0.6, batch=32, interval=4, ada_kimg=20.0)
    assert p.item() == 1.0


def test_fixed_and_noaug_modes_never_move_p():
    fixed = AdaptiveAugment("bgc", mode="fixed", p=0.25)
    off = AdaptiveAugment("bgc", mode="noaug")
    for ada in (fixed, off):
        ada.observe(torch.ones(8))
        ada.update(8)
    assert fixed.p.item() == 0.25 and off.p.item() == 0.0
    x = images()
    assert off(x, draws()) is x
    assert not torch.equal(fixed(x, draws()), x)
