"""Pix2Pix (Isola et al., CVPR 2017): a frame translated from its contours (or its left-ventricle mask).

A conditional GAN learns the map ``c -> x`` from a condition image ``c`` (the
Canny contours of the frame, as the study did, or the LV mask) to the frame
``x``. The generator is a U-Net: an encoder of stride-2 convolutions down to
1x1 and a mirrored decoder whose every level is concatenated with the encoder
level of the same size, so edges in ``c`` reach the output without squeezing
through the bottleneck. Its only noise is dropout (p = 0.5) in the three decoder
blocks after the bottleneck, kept on when sampling. Batch norm, unlike the
paper (which normalises test batches by their own statistics), uses its running
statistics when sampling, so an image does not depend on the others in its
batch or on the batch size. The discriminator is a
70x70 *PatchGAN*: a fully convolutional net that scores every overlapping
70x70 patch of ``(c, x)`` as real or fake (30x30 scores at 256 px, 14x14 at 128,
6x6 at 64), which models high frequencies while L1 takes care of the low ones:

$$ \\mathcal L_D = \\tfrac12\\,\\mathbb E\\big[\\mathrm{BCE}(D(c, x), 1) + \\mathrm{BCE}(D(c, G(c)), 0)\\big], $$
$$ \\mathcal L_G = \\mathbb E\\big[\\mathrm{BCE}(D(c, G(c)), 1)\\big] + \\lambda\\, \\mathbb E\\,\\lVert x - G(c) \\rVert_1, \\qquad \\lambda = 100. $$

The model stores no conditions: :meth:`Pix2Pix.condition_spec` names the map
it translates, and whoever drives it computes the maps from frames
(:mod:`echolib.data.conditions`). The trainer hands each real batch its frames'
maps (``RealBatch.conditions``) and samples grids and its own FID from the maps
of the held-out videos; ``sample(n, generator, condition=maps)`` translates
``maps`` (``uint8`` or float ``[m, 1, H, W]``, floats in [-1, 1]; in order when
``m == n``, else ``n`` drawn from them). ``python -m echolib sample RUN``
translates the maps of the run's held-out frames, or of ``--conditions-from FRAMES``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from echolib.errors import ConfigError
from echolib.images import to_float
from echolib.models.base import ConditionSpec, GenerativeModel, StepContext, backward, eval_mode, frozen, make_adam
from echolib.models.layers import PatchGAN, gan_init, norm_layer

Norm = Literal["batch", "instance", "none"]


@dataclass
class Pix2PixConfig:
    condition: Literal["canny", "mask"] = "canny"  # input map: Canny contours of the frame or its LV mask
    canny_low: int = 100  # cv2.Canny lower hysteresis threshold (uint8 frame)
    canny_high: int = 200  # cv2.Canny upper hysteresis threshold
    g_channels: int = 64  # U-Net width at full resolution (doubles per level down)
    d_channels: int = 64  # PatchGAN width of its first layer
    max_channels: int = 512  # cap on widths (pix2pix: 512)
    d_layers: int = 3  # PatchGAN stride-2 layers: 3 gives the 70x70 receptive field
    norm: Norm = "batch"  # normalisation in both networks (pix2pix: batch; instance when batch = 1)
    dropout: float = 0.5  # dropout probability in the decoder's noisy blocks
    dropout_blocks: int = 3  # decoder blocks after the bottleneck that use dropout
    test_dropout: bool = True  # keep dropout on when sampling: pix2pix's only source of variation
    l1_weight: float = 100.0  # lambda: weight of the L1 reconstruction term
    gan_weight: float = 1.0  # weight of the adversarial term (0: the paper's "L1 only" ablation)
    lr: float = 2e-4  # Adam learning rate of both networks
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas

    #: keys older runs' configs carry that mean nothing now: read and dropped (conditions are given to sample())
    RETIRED_KEYS: ClassVar[tuple[str, ...]] = ("n_fixed",)


class Pix2PixGenerator(nn.Module):
    """Pix2Pix's U-Net: ``condition [B, 1, R, R] -> image [B, 1, R, R]`` in [-1, 1], skips at every level.

    Dropout takes explicit multiplicative masks (``dropout_shapes``) so that
    every random draw comes from the caller's generator: the trainer's
    per-step generator when training, the sampling generator when sampling.
    """

    def __init__(self, resolution: int, in_ch: int = 1, out_ch: int = 1, base: int = 64, cap: int = 512,
                 norm: Norm = "batch", dropout_blocks: int = 3) -> None:
        super().__init__()
        depth = int(math.log2(resolution))  # stride-2 levels down to 1x1
        widths = [min(base * 2**i, cap) for i in range(depth)]
        self.widths, self.resolution = widths, resolution
        self.downs = nn.ModuleList()
        for i, w in enumerate(widths):
            c_in = in_ch if i == 0 else widths[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(c_in, w, 4, 2, 1, bias=norm != "batch" or i in (0, depth - 1)))
            if 0 < i < depth - 1:  # neither the outermost nor the innermost level is normalised
                layers.append(norm_layer(norm, w))
            self.downs.append(nn.Sequential(*layers))
        # ups[j] maps level depth-1-j back to the size of level depth-2-j (the last one to the image)
        self.ups = nn.ModuleList()
        for j in range(depth):
            level = depth - 1 - j
            c_in = widths[level] * (1 if j == 0 else 2)
            if level == 0:
                self.ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, out_ch, 4, 2, 1), nn.Tanh()))
            else:
                c_out = widths[level - 1]
                self.ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=norm != "batch"),
                                              norm_layer(norm, c_out)))
        self.noisy = list(range(1, min(dropout_blocks, depth - 2) + 1))  # decoder blocks after the bottleneck
        self.apply(gan_init)

    def dropout_shapes(self, batch: int) -> list[tuple[int, ...]]:
        depth = len(self.widths)
        return [(batch, self.widths[depth - 2 - j], 2 ** (j + 1), 2 ** (j + 1)) for j in self.noisy]

    def forward(self, c: torch.Tensor, masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        skips = []
        h = c
        for down in self.downs:
            h = down(h)
            skips.append(h)
        h = skips.pop()
        noise = dict(zip(self.noisy, masks)) if masks is not None else {}
        for j, up in enumerate(self.ups):
            if j > 0:
                h = torch.cat([h, skips.pop()], 1)
            h = up(h)
            if j in noise:
                h = h * noise[j].to(h.dtype)
        return h


class Pix2Pix(GenerativeModel):
    arch = "pix2pix"
    Config = Pix2PixConfig
    ema_names = ()
    image_conditioned = True

    def __init__(self, cfg: Pix2PixConfig, resolution: int = 128, channels: int = 1) -> None:
        super().__init__(cfg, resolution, channels)
        if cfg.condition not in ("canny", "mask"):
            raise ConfigError(f"pix2pix: condition must be 'canny' or 'mask', got {cfg.condition!r}")
        if not 0.0 <= cfg.dropout < 1.0:
            raise ConfigError(f"pix2pix: dropout must be in [0, 1), got {cfg.dropout}")
        self.nets["G"] = Pix2PixGenerator(resolution, channels, channels, cfg.g_channels, cfg.max_channels, cfg.norm,
                              cfg.dropout_blocks)
        self.nets["D"] = PatchGAN(2 * channels, cfg.d_channels, cfg.d_layers, max_channels=cfg.max_channels,
                                  norm=cfg.norm)
        self.finish_init()

    def supported_resolutions(self) -> tuple[int, ...]:
        return (64, 128, 256)

    def condition_spec(self) -> ConditionSpec:
        return ConditionSpec(self.cfg.condition, self.cfg.canny_low, self.cfg.canny_high)

    # -- training ---------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {k: make_adam(self.nets[k].parameters(), self.cfg.lr, self.cfg.betas) for k in ("G", "D")}

    def _masks(self, shapes, draw) -> list[torch.Tensor]:
        keep = 1.0 - self.cfg.dropout
        return [(draw(*s) < keep).float().div_(keep) for s in shapes] if self.cfg.dropout > 0 else []

    def train_step(self, ctx: StepContext, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        c = self.cfg
        G, D = cast(Pix2PixGenerator, self.nets["G"]), self.nets["D"]
        batch = ctx.next_real()
        if batch.conditions is None:
            raise ConfigError("pix2pix: real batches carry no condition maps (the trainer adds them for "
                              "image-conditioned models: see condition_spec)")
        real = batch.images
        cond = to_float(batch.conditions).to(ctx.device)
        if ctx.channels_last:
            cond = cond.contiguous(memory_format=torch.channels_last)
        masks = self._masks(G.dropout_shapes(ctx.batch), ctx.rand)
        fake = self.fwd["G"](cond, masks)

        d_real = self.fwd["D"](cond, real).float()
        d_fake = self.fwd["D"](cond, fake.detach()).float()
        loss_d = 0.5 * (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                        + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        optimizers["D"].zero_grad(set_to_none=True)
        backward(loss_d)
        optimizers["D"].step()

        with frozen(D):
            d_gen = self.peer["D"](cond, fake).float()
        loss_gan = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        loss_l1 = (fake.float() - real.float()).abs().mean()
        loss_g = c.gan_weight * loss_gan + c.l1_weight * loss_l1
        optimizers["G"].zero_grad(set_to_none=True)
        backward(loss_g)
        optimizers["G"].step()
        return {"loss_G": loss_g.detach(), "loss_G_gan": loss_gan.detach(), "loss_L1": loss_l1.detach(),
                "loss_D": loss_d.detach()}

    # -- sampling ---------------------------------------------------------
    @torch.no_grad()
    def translate(self, condition: torch.Tensor, generator: torch.Generator | None = None, *,
                  use_ema: bool = True) -> torch.Tensor:
        """``G(condition)`` for uint8 or float ([-1, 1]) conditions; dropout noise from ``generator``."""
        cond = to_float(condition) if condition.dtype == torch.uint8 else condition.float()
        G = cast(Pix2PixGenerator, self.sampling_net("G", use_ema))
        masks = None
        if self.cfg.test_dropout and self.cfg.dropout > 0:
            if generator is None:
                raise ValueError("pix2pix: test_dropout needs a generator for its dropout noise")
            masks = [m.to(self.device) for m in self._masks(G.dropout_shapes(len(cond)), _drawer(generator))]
        with eval_mode(G):  # dropout comes from the explicit masks; batch norm uses its running statistics
            return G(cond.to(self.device), masks).float()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, *, use_ema: bool = True,
               condition: torch.Tensor | None = None, **options: Any) -> torch.Tensor:
        self.check_sample_options(options)
        if condition is None or len(condition) == 0:
            raise ConfigError("pix2pix translates condition maps of frames: pass condition= (maps computed as "
                              "condition_spec() names them; the sample command: --conditions-from FRAMES)")
        if len(condition) != n:
            k = len(condition)
            pick = (torch.randperm(k, generator=generator, device=generator.device)[:n] if n <= k
                    else torch.randint(k, (n,), generator=generator, device=generator.device))
            condition = condition[pick.to(condition.device)]
        return self.translate(condition, generator, use_ema=use_ema)


def _drawer(generator: torch.Generator):
    return lambda *shape: torch.rand(shape, generator=generator, device=generator.device)
