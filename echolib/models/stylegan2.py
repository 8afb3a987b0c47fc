"""StyleGAN2 with adaptive discriminator augmentation, for one-channel (grayscale) frames.

Generator (Karras et al. 2020, "Analyzing and improving the image quality of
StyleGAN"): an MLP maps ``z`` to ``w``; a learned 4x4 constant is refined by
modulated, demodulated 3x3 convolutions whose per-channel scales come from
``w``; per-pixel noise adds stochastic detail; every resolution contributes a
one-channel image through a ``toGray`` layer and the upsampled sum is the
output ("skip" architecture). Discriminator: residual blocks with FIR
downsampling, a minibatch standard-deviation feature and two dense layers.

Training (``train_step``) follows the official StyleGAN2-ADA recipe: the
non-saturating logistic loss; lazy R1 on reals every ``r1_interval`` steps and
lazy path-length regularisation every ``pl_interval`` steps, each with its own
optimizer step scaled by the interval, and Adam's learning rate and betas
rescaled for the extra steps; style mixing; ADA on every image D sees
(:mod:`echolib.augment.ada`). Nothing in a step waits for the GPU: ADA's ``p``,
the path-length mean and all losses stay device tensors.

:func:`auto_config` reproduces the official ``--cfg auto`` rule.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from echolib.augment.ada import PIPES, AdaptiveAugment, GeneratorDraws
from echolib.errors import ConfigError
from echolib.models.base import GenerativeModel, StepContext, backward, frozen, make_adam, uncompiled
from echolib.models.layers import EqualConv2d, EqualLinear, bias_act, modulated_conv2d
from echolib.resampling import upsample2d


@dataclass
class StyleGAN2Config:
    """The ``model:`` block of a stylegan2_ada config. Defaults: the official ``stylegan2`` spec at 128x128."""

    z_dim: int = 512  # size of the input latent z
    w_dim: int = 512  # size of the intermediate latent w
    mapping_layers: int = 8  # depth of the mapping MLP (official: 8 for stylegan2/paper configs, 2 for auto)
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping layers
    w_avg_beta: float = 0.995  # decay of the running mean of w used for truncation
    channel_base: int = 32768  # channels at resolution r are min(channel_base // r, channel_max); 16384 = auto
    channel_max: int = 512  # upper bound on channels per layer
    conv_clamp: float | None = 256.0  # clamp conv outputs to +-this (official mixed-precision guard); null = off
    mbstd_group: int = 4  # minibatch-stddev group size (the local batch must be divisible by it)
    mbstd_channels: int = 1  # minibatch-stddev feature channels
    style_mixing: float = 0.9  # probability that a generated image mixes two latents at a random layer
    lr: float = 0.002  # Adam learning rate of G and D before the lazy-regularisation scaling (auto: 0.0025)
    betas: list[float] = field(default_factory=lambda: [0.0, 0.99])  # Adam betas before lazy-reg scaling
    eps: float = 1e-8  # Adam epsilon
    r1_gamma: float = 10.0  # R1 weight gamma (penalty gamma/2 * |grad D(real)|^2)
    r1_interval: int = 16  # lazy R1 every this many steps; 0 = add R1 to every D step (no lazy scaling)
    pl_weight: float = 2.0  # path-length regularisation weight; 0 = off
    pl_interval: int = 4  # lazy path-length reg every this many steps; 0 = every G step (no lazy scaling)
    pl_batch_shrink: int = 2  # path-length reg uses batch // this images
    pl_decay: float = 0.01  # decay of the running mean path length
    augment: Literal["ada", "fixed", "noaug"] = "ada"  # ADA (adaptive p), fixed p, or no augmentation
    augpipe: str = "bgc"  # operations: blit, geom, color, filter, noise, cutout, bg, bgc, bgcf, bgcfn, bgcfnc
    augment_p: float = 0.0  # initial augmentation probability (the constant p when augment=fixed)
    ada_target: float = 0.6  # target of r_t = E[sign(D(real))]
    ada_interval: int = 4  # adjust p every this many steps
    ada_kimg: float = 500.0  # p can move from 0 to 1 in this many kimg
    ada_supersample: bool = True  # continuous geometric ops warp at 2x between Symlet-6 filters, as official
    fused_modconv: bool = False  # grouped (batch-as-groups) modulated conv in training; False is faster on GPU
    sample_batch: int = 64  # images per forward pass in sample()


def channels_at(resolution: int, base: int, cmax: int) -> int:
    return min(base // resolution, cmax)


# ---------------------------------------------------------------------------- generator


class MappingNetwork(nn.Module):
    """z -> w: normalised z through an MLP with a 100x smaller learning rate; tracks the mean w."""

    w_avg: torch.Tensor

    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mul: float, w_avg_beta: float) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.net = nn.Sequential(*[EqualLinear(a, b, act="lrelu", lr_mul=lr_mul) for a, b in itertools.pairwise(dims)])
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.float()
        z = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        return self.net(z)

    @torch.no_grad()
    def track(self, w: torch.Tensor) -> None:
        self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up), per-pixel noise with learned strength, bias, leaky ReLU."""

    noise_const: torch.Tensor

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, *, up: int, clamp: float | None) -> None:
        super().__init__()
        self.up, self.clamp, self.resolution = up, clamp, resolution
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None, fused: bool) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, fused=fused)
        if noise is not None:
            x = x + (noise * self.noise_strength).to(x.dtype)
        return bias_act(x, self.bias, "lrelu", clamp=self.clamp)


class ToImage(nn.Module):
    """1x1 modulated conv without demodulation to the output channels (toRGB; here toGray)."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, clamp: float | None) -> None:
        super().__init__()
        self.clamp = clamp
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.weight_gain = 1.0 / math.sqrt(c_in)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, "linear", clamp=self.clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | 2x-up conv) + conv + toGray; the image path is upsampled and summed."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, img_channels: int, clamp) -> None:
        super().__init__()
        self.resolution = resolution
        self.first = c_in == 0
        if self.first:
            self.const = nn.Parameter(torch.randn(c_out, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(c_in, c_out, w_dim, resolution, up=2, clamp=clamp)
        self.conv1 = SynthesisLayer(c_out, c_out, w_dim, resolution, up=1, clamp=clamp)
        self.to_img = ToImage(c_out, img_channels, w_dim, clamp)
        self.num_conv = 1 if self.first else 2

    def forward(self, x, img, ws: Sequence[torch.Tensor], noise: list[torch.Tensor | None], fused: bool):
        """``ws``: num_conv + 1 latents ``[B, w_dim]`` (the last one feeds toGray)."""
        if self.first:
            x = self.const.unsqueeze(0).expand(ws[0].shape[0], -1, -1, -1)
            x = self.conv1(x, ws[0], noise[0], fused)
        else:
            x = self.conv0(x, ws[0], noise[0], fused)
            x = self.conv1(x, ws[1], noise[1], fused)
        y = self.to_img(x, ws[self.num_conv], fused).float()
        img = y if img is None else upsample2d(img) + y
        return x, img


class Generator(nn.Module):
    """Mapping + synthesis. ``forward`` takes every random tensor as an argument (see ``StyleGAN2ADA``)."""

    def __init__(self, cfg: StyleGAN2Config, resolution: int, img_channels: int) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.resolution = cfg.z_dim, cfg.w_dim, resolution
        self.fused = cfg.fused_modconv
        levels = int(math.log2(resolution))
        self.block_resolutions = [2**i for i in range(2, levels + 1)]
        blocks = []
        for r in self.block_resolutions:
            c_in = 0 if r == 4 else channels_at(r // 2, cfg.channel_base, cfg.channel_max)
            c_out = channels_at(r, cfg.channel_base, cfg.channel_max)
            blocks.append(SynthesisBlock(c_in, c_out, cfg.w_dim, r, img_channels, cfg.conv_clamp))
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_conv for b in blocks) + 1
        #: resolution of each noise input, in the order ``forward`` expects them
        self.noise_resolutions = [b.resolution for b in blocks for _ in range(b.num_conv)]
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers, cfg.mapping_lr_mul, cfg.w_avg_beta)

    def map(self, z, mix_z=None, mix_cutoff=None, psi: float = 1.0, update_w_avg: bool = False) -> torch.Tensor:
        """Latents ``[B, num_ws, w_dim]``; layers ``>= mix_cutoff[i]`` of image i take ``mix_z[i]``'s w."""
        n = z.shape[0]
        w = self.mapping(z if mix_z is None else torch.cat([z, mix_z]))
        if update_w_avg:
            self.mapping.track(w[:n])
        if psi != 1.0:
            w = self.mapping.w_avg.lerp(w, psi)
        ws = w[:n, None].expand(n, self.num_ws, self.w_dim)
        if mix_z is not None:
            layer = torch.arange(self.num_ws, device=z.device)
            take = (layer[None, :] >= mix_cutoff[:, None])[:, :, None]
            ws = torch.where(take, w[n:, None], ws)
        return ws

    def synthesize(self, ws: torch.Tensor, noise: list[torch.Tensor] | None = None, noise_mode: str = "random"):
        noises = self._noise(ws, noise, noise_mode)
        # one unbind, not a slice per layer: its gradient is a single stack, where each slice's
        # gradient would be a zero-filled copy of all of ws
        per_layer = ws.unbind(1)
        x = img = None
        i = 0
        for block in cast("Sequence[SynthesisBlock]", self.blocks):
            x, img = block(x, img, per_layer[i : i + block.num_conv + 1], noises[i : i + block.num_conv], self.fused)
            i += block.num_conv
        return img

    def _noise(self, ws, noise, mode) -> list[torch.Tensor | None]:
        if noise is not None:
            return list(noise)
        blocks = cast("Sequence[SynthesisBlock]", self.blocks)
        layers = [layer for b in blocks for layer in ([b.conv1] if b.first else [b.conv0, b.conv1])]
        if mode == "const":
            return [layer.noise_const[None, None] for layer in layers]
        if mode == "none":
            return [None] * len(layers)
        if mode == "random":  # only for direct calls: training and sample() pass their own draws
            n = ws.shape[0]
            return [torch.randn(n, 1, r, r, device=ws.device) for r in self.noise_resolutions]
        raise ValueError(f"noise_mode must be random, const or none, got {mode!r}")

    def forward(
        self,
        z: torch.Tensor | None = None,
        mix_z: torch.Tensor | None = None,
        mix_cutoff: torch.Tensor | None = None,
        noise: list[torch.Tensor] | None = None,
        *,
        ws: torch.Tensor | None = None,
        psi: float = 1.0,
        noise_mode: str = "random",
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        """Images from latents ``z`` (mapped here) or from given ``ws`` (then the mapping is skipped)."""
        if ws is None:
            ws = self.map(z, mix_z, mix_cutoff, psi=psi, update_w_avg=update_w_avg)
        return self.synthesize(ws, noise, noise_mode)


# ---------------------------------------------------------------------------- discriminator


def minibatch_stddev(x: torch.Tensor, group: int, channels: int, parts: int = 1) -> torch.Tensor:
    """Append the std of features over groups of images (strided groups, as in StyleGAN2).

    ``parts`` independent batches stacked along the batch dimension (fakes then
    reals, judged in one call) are grouped separately, exactly as if each had
    its own call: a group never mixes generated and real images.
    """
    n, c, h, w = x.shape
    if n % parts:
        raise ValueError(f"a batch of {n} does not split into {parts} equal parts")
    m = n // parts
    g = min(group, m)
    if m % g:
        raise ConfigError(f"minibatch-stddev group {g} does not divide the local batch {m}; change mbstd_group")
    y = x.float().reshape(parts, g, m // g, channels, c // channels, h, w)
    y = (y - y.mean(dim=1, keepdim=True)).square().mean(dim=1)
    y = (y + 1e-8).sqrt().mean(dim=(3, 4, 5))  # [parts, m/g, channels]
    y = y[:, None].expand(parts, g, m // g, channels).reshape(n, channels, 1, 1).expand(n, channels, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (the second downsamples) plus a 1x1 downsampling skip, each x sqrt(1/2)."""

    def __init__(self, c_tmp: int, c_out: int, img_channels: int, first: bool, clamp) -> None:
        super().__init__()
        self.from_img = EqualConv2d(img_channels, c_tmp, 1, act="lrelu", clamp=clamp) if first else None
        self.conv0 = EqualConv2d(c_tmp, c_tmp, 3, act="lrelu", clamp=clamp)
        self.conv1 = EqualConv2d(c_tmp, c_out, 3, act="lrelu", down=2, clamp=clamp)
        self.skip = EqualConv2d(c_tmp, c_out, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.from_img is not None:
            x = self.from_img(x)
            if self.conv0.weight.is_contiguous(memory_format=torch.channels_last):
                # a one-channel image is both layouts at once, so the 1x1 conv above returns NCHW; convert once
                # here rather than in each of the two convolutions that read x at full resolution
                x = x.contiguous(memory_format=torch.channels_last)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class Discriminator(nn.Module):
    def __init__(self, cfg: StyleGAN2Config, resolution: int, img_channels: int) -> None:
        super().__init__()

        def ch(r: int) -> int:
            return channels_at(r, cfg.channel_base, cfg.channel_max)

        levels = int(math.log2(resolution))
        self.blocks = nn.Sequential(
            *[
                DiscriminatorBlock(ch(2**i), ch(2 ** (i - 1)), img_channels, i == levels, cfg.conv_clamp)
                for i in range(levels, 2, -1)
            ]
        )
        c4 = ch(4)
        self.mbstd_group, self.mbstd_channels = cfg.mbstd_group, cfg.mbstd_channels
        self.conv = EqualConv2d(c4 + cfg.mbstd_channels, c4, 3, act="lrelu", clamp=cfg.conv_clamp)
        self.fc = EqualLinear(c4 * 16, c4, act="lrelu")
        self.out = EqualLinear(c4, 1)

    def forward(self, img: torch.Tensor, parts: int = 1) -> torch.Tensor:
        """Logits ``[B]``; ``parts``: independent batches stacked in ``img`` (see :func:`minibatch_stddev`)."""
        x = self.blocks(img)
        x = self.conv(minibatch_stddev(x, self.mbstd_group, self.mbstd_channels, parts))
        return self.out(self.fc(x.flatten(1))).squeeze(1)


# ---------------------------------------------------------------------------- the model


class StyleGAN2ADA(GenerativeModel):
    arch = "stylegan2_ada"
    Config = StyleGAN2Config
    ema_names = ("G",)
    pl_mean: torch.Tensor

    def __init__(self, cfg: StyleGAN2Config, resolution: int = 128, channels: int = 1) -> None:
        super().__init__(cfg, resolution, channels)
        _validate(cfg)
        self.nets["G"] = Generator(cfg, resolution, channels)
        self.nets["D"] = Discriminator(cfg, resolution, channels)
        self.ada = AdaptiveAugment(
            cfg.augpipe,
            mode=cfg.augment,
            p=cfg.augment_p,
            target=cfg.ada_target,
            interval=cfg.ada_interval,
            ada_kimg=cfg.ada_kimg,
            supersample=cfg.ada_supersample,
        )
        self.register_buffer("pl_mean", torch.zeros([]))
        self.finish_init()

    # -- optimisation -------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam per network; lazy regularisation rescales lr and betas so the extra steps keep Adam's statistics."""
        c = self.cfg
        out = {}
        for name, interval in (("G", c.pl_interval), ("D", c.r1_interval)):
            ratio = interval / (interval + 1) if interval > 0 else 1.0
            betas = (c.betas[0] ** ratio, c.betas[1] ** ratio)
            out[name] = make_adam(self.nets[name].parameters(), c.lr * ratio, betas=betas, eps=c.eps)
        return out

    def _latents(self, ctx: StepContext, n: int) -> dict[str, Any]:
        """Everything random the generator needs for ``n`` (global) images, drawn from the step context."""
        G = cast(Generator, self.nets["G"])
        out: dict[str, Any] = {"z": ctx.randn(n, G.z_dim)}
        if self.cfg.style_mixing > 0 and G.num_ws > 1:
            out["mix_z"] = ctx.randn(n, G.z_dim)
            cutoff = ctx.randint(G.num_ws - 1, n) + 1
            out["mix_cutoff"] = torch.where(ctx.rand(n) < self.cfg.style_mixing, cutoff, G.num_ws)
        out["noise"] = [ctx.randn(n, 1, r, r) for r in G.noise_resolutions]
        return out

    def _augment(self, images: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return self.ada(images, ctx, images.shape[0] * ctx.world_size)  # ctx draws global shapes

    def train_step(self, ctx: StepContext, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        c = self.cfg
        G, D = self.nets["G"], self.nets["D"]
        g_params: list[torch.Tensor] = [p for p in G.parameters() if p.requires_grad]
        d_params: list[torch.Tensor] = [p for p in D.parameters() if p.requires_grad]
        opt_g, opt_d = optimizers["G"], optimizers["D"]
        stats: dict[str, torch.Tensor] = {}
        do_pl = c.pl_weight > 0 and (c.pl_interval == 0 or ctx.step % c.pl_interval == 0)
        do_r1 = c.r1_gamma > 0 and (c.r1_interval == 0 or ctx.step % c.r1_interval == 0)
        real = ctx.next_real().images

        # G: make D call generated images real (D is not updated here: its peer, frozen, gradients only to G).
        img = self.fwd["G"](**self._latents(ctx, ctx.batch), update_w_avg=True)
        with frozen(D):
            loss_g = F.softplus(-self.peer["D"](self._augment(img, ctx))).mean()
        opt_g.zero_grad(set_to_none=True)
        if do_pl and c.pl_interval == 0:
            loss_pl = self._path_length(ctx)
            stats["loss_pl"] = loss_pl.detach()
            backward(loss_g + loss_pl, g_params)
        else:
            backward(loss_g, g_params)
        opt_g.step()
        stats["loss_G"] = loss_g.detach()

        if do_pl and c.pl_interval > 0:
            loss_pl = self._path_length(ctx)
            opt_g.zero_grad(set_to_none=True)
            backward(loss_pl * c.pl_interval, g_params)
            opt_g.step()
            stats["loss_pl"] = loss_pl.detach()

        # D: logistic loss on augmented generated and real images.
        with torch.no_grad():
            fake = self.peer["G"](**self._latents(ctx, ctx.batch))
        # one call on both halves: half the launches, twice the batch at the small resolutions
        judged = torch.cat([self._augment(fake, ctx), self._augment(real, ctx)])
        logits_fake, logits_real = self.fwd["D"](judged, parts=2).chunk(2)
        self.ada.observe(logits_real)
        loss_d = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        opt_d.zero_grad(set_to_none=True)
        if do_r1 and c.r1_interval == 0:
            loss_r1 = self._r1(ctx, real)
            stats["loss_r1"] = loss_r1.detach()
            backward(loss_d + loss_r1, d_params)
        else:
            backward(loss_d, d_params)
        opt_d.step()
        stats.update(loss_D=loss_d.detach(), D_real=logits_real.detach().float().mean(),
                     D_fake=logits_fake.detach().float().mean())  # fmt: skip

        if do_r1 and c.r1_interval > 0:
            loss_r1 = self._r1(ctx, real, observe=True)
            opt_d.zero_grad(set_to_none=True)
            backward(loss_r1 * c.r1_interval, d_params)
            opt_d.step()
            stats["loss_r1"] = loss_r1.detach()

        if (ctx.step + 1) % c.ada_interval == 0:
            self.ada.update(ctx.batch)
        return stats

    def _r1(self, ctx: StepContext, real: torch.Tensor, observe: bool = False) -> torch.Tensor:
        """gamma/2 * E|grad_x D(aug(x))|^2 on reals, in fp32 (a second-order term bf16 would round away).

        ``observe``: the lazy R1 pass judges a fresh augmentation of the reals, and
        the official loop counts its signs in ADA's r_t like the main pass's.
        """
        with torch.autocast(device_type=ctx.device.type, enabled=False):
            x = real.detach().float().requires_grad_(True)
            logits = uncompiled(self.fwd["D"])(self._augment(x, ctx)).float()
            if observe:
                self.ada.observe(logits)
            (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
            penalty = grad.square().sum(dim=(1, 2, 3)).mean() * (self.cfg.r1_gamma / 2)
        return penalty + logits.mean() * 0  # keeps every D parameter in the graph (DDP)

    def _path_length(self, ctx: StepContext) -> torch.Tensor:
        """Penalise deviation of |J_w^T y| from its running mean: smooth, well-conditioned w -> image maps."""
        c = self.cfg
        n = max(ctx.batch // c.pl_batch_shrink, ctx.world_size)
        latents = self._latents(ctx, n)
        noise = latents.pop("noise")
        ws = cast(Generator, self.nets["G"]).map(**latents)  # the mapping's gradient flows back through ws
        img = uncompiled(self.fwd["G"])(ws=ws, noise=noise)
        h, w = img.shape[2:]
        y = ctx.randn(n, img.shape[1], h, w) / math.sqrt(h * w)
        (grad,) = torch.autograd.grad((img.float() * y).sum(), ws, create_graph=True)
        lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()
        global_mean = None
        if ctx.world_size > 1:  # one running mean for all ranks, as one process with the global batch keeps
            global_mean = lengths.mean().detach()
            torch.distributed.all_reduce(global_mean)
            global_mean = global_mean / ctx.world_size
        penalty, pl_mean = path_length_penalty(lengths, self.pl_mean, c.pl_decay, global_mean)
        self.pl_mean.copy_(pl_mean)
        return penalty * c.pl_weight + img.float().mean() * 0

    # -- sampling -------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator,
        *,
        use_ema: bool = True,
        truncation: float = 1.0,
        noise_mode: str = "random",
        **options: Any,
    ) -> torch.Tensor:
        """``n`` images in [-1, 1] (clamped); latents and noise come only from ``generator``."""
        self.check_sample_options(options)
        G = cast(Generator, self.sampling_net("G", use_ema))
        draws = GeneratorDraws(generator, self.device)
        z = draws.randn(n, G.z_dim)
        out = []
        for i in range(0, n, self.cfg.sample_batch):
            zi = z[i : i + self.cfg.sample_batch]
            noise = None
            if noise_mode == "random":
                noise = [draws.randn(zi.shape[0], 1, r, r) for r in G.noise_resolutions]
            out.append(G(zi, noise=noise, psi=truncation, noise_mode=noise_mode).float().clamp(-1, 1))
        return torch.cat(out) if out else torch.empty(0, self.channels, self.resolution, self.resolution)

    # -- logging and state --------------------------------------------------------
    def tick_stats(self) -> dict[str, torch.Tensor | float]:
        if not self.ada.enabled:
            return {}
        return {"augment_p": self.ada.p, "ada_rt": self.ada.rt}

    def extra_state(self) -> dict[str, Any]:
        return {
            "ada_p": self.ada.p.detach().clone(),
            "ada_rt": self.ada.rt.detach().clone(),
            "ada_signs": self.ada.signs.detach().clone(),
            "pl_mean": self.pl_mean.detach().clone(),
        }

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        for key, buf in (("ada_p", self.ada.p), ("ada_rt", self.ada.rt), ("ada_signs", self.ada.signs),
                         ("pl_mean", self.pl_mean)):  # fmt: skip
            if key in state:
                buf.copy_(torch.as_tensor(state[key]))


def _validate(cfg: StyleGAN2Config) -> None:
    checks = [
        (cfg.z_dim > 0 and cfg.w_dim > 0, "z_dim and w_dim must be positive"),
        (cfg.mapping_layers >= 1, "mapping_layers must be at least 1"),
        (cfg.channel_base > 0 and cfg.channel_max > 0, "channel_base and channel_max must be positive"),
        (cfg.mbstd_group >= 1 and cfg.mbstd_channels >= 1, "mbstd_group and mbstd_channels must be at least 1"),
        (0.0 <= cfg.style_mixing <= 1.0, "style_mixing is a probability in [0, 1]"),
        (len(cfg.betas) == 2, "betas must be two numbers"),
        (cfg.r1_interval >= 0 and cfg.pl_interval >= 0, "r1_interval and pl_interval must be >= 0"),
        (cfg.pl_batch_shrink >= 1, "pl_batch_shrink must be at least 1"),
        (0.0 <= cfg.augment_p <= 1.0, "augment_p is a probability in [0, 1]"),
        (cfg.ada_interval >= 1 and cfg.ada_kimg > 0, "ada_interval must be >= 1 and ada_kimg > 0"),
        (cfg.sample_batch >= 1, "sample_batch must be at least 1"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(f"stylegan2_ada model config: {msg}")
    if cfg.augpipe not in PIPES:
        raise ConfigError(
            f"stylegan2_ada model config: augpipe {cfg.augpipe!r} unknown; choose one of {', '.join(PIPES)}"
        )


def path_length_penalty(lengths: torch.Tensor, running_mean: torch.Tensor, decay: float,
                        global_mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``(|J^T y| - a)^2`` and the new running mean ``a`` (to store detached).

    As in the official loss, ``a`` is the running mean moved toward this batch's
    mean *with* its gradient: the penalty pulls the batch mean toward the lengths
    too (a ``decay``-weighted term). Under DDP ``global_mean`` (all ranks' mean,
    detached) sets the value, so every rank keeps the same running mean, and the
    gradient still flows through the local lengths.
    """
    local = lengths.mean()
    batch_mean = local if global_mean is None else global_mean + (local - local.detach())
    a = running_mean.lerp(batch_mean, decay)
    return (lengths - a).square().mean(), a.detach()


# ---------------------------------------------------------------------------- the official auto rule


def auto_config(resolution: int, gpus: int = 1, batch: int | None = None) -> dict[str, dict[str, Any]]:
    """``{"model": ..., "train": ...}`` overrides reproducing stylegan2-ada-pytorch's ``--cfg auto``.

    The rule: batch = max(min(gpus * min(4096 // res, 32), 64), gpus); minibatch-
    stddev group min(batch // gpus, 4); feature maps x1 at >= 512 px else x0.5
    (channel_base 32768 or 16384); lr 0.002 at >= 1024 px else 0.0025;
    gamma = 0.0002 * res^2 / batch; EMA half-life batch * 10 / 32 kimg with a
    5% ramp-up; mapping depth 2. As with the official ``--batch``, an explicit
    ``batch`` replaces only the batch size: gamma and the EMA stay those of the rule.
    """
    mb = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
    fmaps = 1.0 if resolution >= 512 else 0.5
    model = {
        "mapping_layers": 2,
        "channel_base": int(fmaps * 32768),
        "channel_max": 512,
        "mbstd_group": min(mb // gpus, 4),
        "lr": 0.002 if resolution >= 1024 else 0.0025,
        "r1_gamma": 0.0002 * resolution**2 / mb,
    }
    train = {"batch": batch if batch is not None else mb, "resolution": resolution, "ema_kimg": mb * 10 / 32,
             "ema_rampup": 0.05}  # fmt: skip
    return {"model": model, "train": train}
