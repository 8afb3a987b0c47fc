"""Wasserstein GAN (Arjovsky et al. 2017) and WGAN-GP (Gulrajani et al. 2017).

The critic ``D`` estimates the Wasserstein-1 distance between real and
generated frames,

$$ W(P_r, P_g) \\approx \\max_{\\|D\\|_L \\le 1} \\; E_{x\\sim P_r}[D(x)] - E_{z}[D(G(z))], $$

so its loss is ``D(fake) - D(real)`` and the generator's is ``-D(fake)``. The
Lipschitz constraint is enforced either by clipping the critic's weights to
``[-c, c]`` after each step (the study: c = 0.01, five critic steps per
generator step, RMSprop at 5e-5) or by a gradient penalty
``lambda * (||grad D(x_hat)|| - 1)^2`` on random interpolates ``x_hat``
(WGAN-GP: lambda = 10, Adam, no batch norm in the critic).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from echolib.errors import ConfigError
from echolib.models.base import GenerativeModel, StepContext, backward, eval_mode, frozen, make_adam, uncompiled
from echolib.models.dcgan import Discriminator, Generator
from echolib.models.layers import Norm


@dataclass
class WGANConfig:
    z_dim: int = 100  # latent size
    g_channels: int = 64  # generator width at the output resolution (doubles per level down)
    d_channels: int = 64  # critic width at the input resolution
    max_channels: int = 512  # cap on widths
    loss: Literal["clip", "gp"] = "clip"  # weight clipping (WGAN) or gradient penalty (WGAN-GP)
    clip: float = 0.01  # weight clipping range [-clip, clip] (loss: clip)
    gp_weight: float = 10.0  # gradient-penalty weight lambda (loss: gp)
    n_critic: int = 5  # critic updates per generator update
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"  # RMSprop as in WGAN; Adam as in WGAN-GP
    lr: float = 5e-5  # learning rate of both networks
    betas: tuple[float, float] = (0.5, 0.9)  # Adam betas (optimizer: adam)
    critic_norm: Norm = "batch"  # normalisation in the critic ("layer" or "none" for WGAN-GP)
    g_norm: Norm = "batch"  # normalisation in the generator (DCGAN: batch)


class WassersteinDCGAN(GenerativeModel):
    """DCGAN networks, their optimizers, and the critic/generator updates WGAN and MedGAN share.

    Subclasses decide *how many* critic updates a step gets (WGAN: ``n_critic``;
    MedGAN: its T1/T2 rule); the updates themselves are these.
    """

    ema_names = ()

    def __init__(self, cfg: Any, resolution: int = 128, channels: int = 1) -> None:
        super().__init__(cfg, resolution, channels)
        if getattr(cfg, "loss", None) == "gp" and cfg.critic_norm == "batch":
            raise ConfigError(
                "model.critic_norm: batch normalisation couples the samples of a batch, but the gradient penalty "
                "constrains each sample's gradient (Gulrajani et al. 2017); use critic_norm 'layer' or 'none' with "
                "loss 'gp'"
            )
        self.nets["G"] = Generator(cfg.z_dim, resolution, channels, cfg.g_channels, cfg.max_channels, cfg.g_norm)
        self.nets["D"] = Discriminator(resolution, channels, cfg.d_channels, cfg.max_channels, cfg.critic_norm)
        self.finish_init()

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        if c.optimizer == "rmsprop":
            return {k: torch.optim.RMSprop(self.nets[k].parameters(), lr=c.lr) for k in ("G", "D")}
        return {k: make_adam(self.nets[k].parameters(), c.lr, c.betas) for k in ("G", "D")}

    def critic_step(self, real: torch.Tensor, z: torch.Tensor, opt: torch.optim.Optimizer, *, clip: float | None,
                    gp_alpha: torch.Tensor | None = None, gp_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One critic update on ``real`` against ``G(z)``; returns ``(L_D, gradient penalty or None)``.

        Real and fake pass separately, as in the WGAN code: a batch-norm critic then
        normalises fakes by fake-only statistics here and in the generator step
        (one function, not two).
        """
        with torch.no_grad():
            fake = self.peer["G"](z)
        loss = self.fwd["D"](fake).float().mean() - self.fwd["D"](real).float().mean()
        gp = None
        if gp_alpha is not None:
            gp = gradient_penalty(uncompiled(self.fwd["D"]), real, fake, gp_alpha)  # a gradient of a gradient
            loss = loss + gp_weight * gp
        opt.zero_grad(set_to_none=True)
        backward(loss)
        opt.step()
        if clip is not None:
            params: list[torch.Tensor] = list(self.nets["D"].parameters())
            with torch.no_grad():
                torch._foreach_clamp_min_(params, -clip)
                torch._foreach_clamp_max_(params, clip)
        return loss.detach(), None if gp is None else gp.detach()

    def generator_step(self, z: torch.Tensor, opt: torch.optim.Optimizer) -> torch.Tensor:
        """One generator update minimising ``-D(G(z))``; D is its frozen peer (no DDP sync, no weight grads)."""
        with frozen(self.nets["D"]):
            loss = -self.peer["D"](self.fwd["G"](z)).float().mean()
        opt.zero_grad(set_to_none=True)
        backward(loss)
        opt.step()
        return loss.detach()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, *, use_ema: bool = True, **options: Any) -> torch.Tensor:
        self.check_sample_options(options)
        G = self.sampling_net("G", use_ema)
        z = torch.randn(n, self.cfg.z_dim, generator=generator, device=generator.device)
        with eval_mode(G):
            return G(z.to(self.device)).float()


class WGAN(WassersteinDCGAN):
    arch = "wgan"
    Config = WGANConfig

    def train_step(self, ctx: StepContext, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        c = self.cfg
        d_losses, gps = [], []
        for _ in range(c.n_critic):
            real = ctx.next_real().images
            z = ctx.randn(ctx.batch, c.z_dim)
            alpha = ctx.rand(ctx.batch, 1, 1, 1) if c.loss == "gp" else None
            loss, gp = self.critic_step(real, z, optimizers["D"], clip=c.clip if c.loss == "clip" else None,
                                        gp_alpha=alpha, gp_weight=c.gp_weight)
            d_losses.append(loss)
            if gp is not None:
                gps.append(gp)
        g_loss = self.generator_step(ctx.randn(ctx.batch, c.z_dim), optimizers["G"])
        out = {"loss_G": g_loss, "loss_D": torch.stack(d_losses).mean()}
        if gps:
            out["loss_gp"] = torch.stack(gps).mean()
        return out


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``E[(||grad_x D(x_hat)||_2 - 1)^2]`` on interpolates (computed in fp32)."""
    with torch.autocast(real.device.type, enabled=False):
        x_hat = (alpha * real.float() + (1 - alpha) * fake.float()).requires_grad_(True)
        score = critic(x_hat).float()
        (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).square().mean()
