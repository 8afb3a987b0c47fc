"""MedGAN (Guo et al., Computers in Biology and Medicine 2023): a WGAN whose critic trains only when needed.

MedGAN keeps the WGAN of Arjovsky et al. -- a DCGAN generator ``G`` and critic
``D``, weight clipping, RMSprop -- and replaces WGAN's fixed "five critic steps
per generator step" by a rule that reads the Wasserstein losses as a
convergence signal. With our critic convention (``D`` scores real frames high),

$$ \\hat W = E[D(x)] - E[D(G(z))], \\qquad L_D = -\\hat W, \\qquad L_G = -E[D(G(z))]. $$

A *cycle* (one ``train_step``) draws a real batch and fresh latents and
evaluates, without gradients, the critic's current gap ``W`` and the
generator's current loss ``L_G`` on them. Then

* if ``W > T2`` **and** ``L_G > T1`` the critic is ahead (it separates real from
  fake by more than ``T2`` and the generator is still losing by more than
  ``T1``): skip the critic, update only the generator;
* otherwise update the critic once on that real batch, then the generator once.

So every cycle gives ``(n_G, n_D) = (1, 0)`` or ``(1, 1)`` (:func:`schedule`).
The first ``warmup_cycles`` cycles train the critic ``warmup_n_critic`` times
each (WGAN's "100 critic steps at the start", cut from 25 cycles to 2) so the
gap is a meaningful distance estimate before the rule starts reading it.
Defaults ``T1 = 0.3``, ``T2 = 0.5`` are the study's and the authors' latest.

**Where the rule comes from.** The paper describes the schedule in words;
the exact rule above is read from the authors' public code
(github.com/geyao-c/MedGAN, ``AdaGAN_new_new.py``): there the critic is trained
unless ``D'(real) < D'(fake) - T2 and D'(fake) > T1``, with ``D'`` scoring fake
frames high (the original WGAN code's sign), i.e. ``D' = -D`` here, which gives
``W > T2 and L_G > T1``. The study's logged losses agree: in its MedGAN runs
``-L_D`` hovers near 0.5 (= ``T2``) and ``L_G`` stays above 0.3, the equilibrium
this rule produces (below ``T2`` the critic trains and widens the gap; above it
only the generator trains and narrows it). Two deliberate differences from that
code: weights are clipped *after* each critic update (as in our WGAN), so the
generator and the next check always see a critic inside the clip. As in that
code (and the original WGAN code), real and generated batches pass through the
critic separately, so the batch-norm statistics the generator is trained
against are the ones the critic was trained and checked with.

**No host sync.** Branching on ``W`` in Python would read a GPU value on the
host every cycle and stall the pipeline. By default the critic step is always
computed and then *rolled back* where the device-side flag says "skip": its
weights, batch-norm buffers, optimizer state and the generator's batch-norm
buffers are restored with ``torch.where``, which costs one critic step of
compute per skipped cycle and a copy of the critic's state, but never waits for
the GPU. ``host_decision: true`` reads the flag on the host instead (one sync per
cycle) and skips the critic's compute. Both give the same bytes on CPU (tested);
on GPU the rollback leaves host-side step counters alone (RMSprop ignores them;
fused Adam keeps them on the device). Under DDP the check statistics are averaged
over ranks first, so every rank takes the same decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from echolib.models.base import StepContext
from echolib.models.layers import Norm
from echolib.models.wgan import WassersteinDCGAN


@dataclass
class MedGANConfig:
    z_dim: int = 100  # latent size
    g_channels: int = 64  # generator width at the output resolution (doubles per level down)
    d_channels: int = 64  # critic width at the input resolution
    max_channels: int = 1024  # cap on widths (1024 = the WGAN authors' uncapped DCGAN at 128x128)
    clip: float = 0.01  # critic weights clipped to [-clip, clip] after every critic update
    t1: float = 0.3  # T1: skip the critic only while the generator's loss L_G exceeds this
    t2: float = 0.5  # T2: ... and the critic's gap W = -L_D exceeds this
    warmup_cycles: int = 2  # first cycles train the critic warmup_n_critic times (authors: 2)
    warmup_n_critic: int = 100  # critic updates in each warm-up cycle (authors: 100)
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"  # authors' default RMSprop; their --adam option: Adam
    lr: float = 5e-5  # learning rate of both networks
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas (optimizer: adam; the authors' beta1 0.5)
    g_norm: Norm = "batch"  # normalisation in the generator
    critic_norm: Norm = "batch"  # normalisation in the critic
    host_decision: bool = False  # read the skip flag on the host (one sync per cycle) instead of rolling back


def skip_critic(loss_g: Any, loss_d: Any, t1: float, t2: float) -> Any:
    """MedGAN's test: is the critic ahead? Works on floats and (elementwise) on tensors.

    ``-loss_d`` is the critic's estimate of the Wasserstein distance.
    """
    return (-loss_d > t2) & (loss_g > t1)


def schedule(
    loss_g: float,
    loss_d: float,
    t1: float = 0.3,
    t2: float = 0.5,
    *,
    cycle: int | None = None,
    warmup_cycles: int = 0,
    warmup_n_critic: int = 100,
) -> tuple[int, int]:
    """``(n_G, n_D)``: generator and critic updates for a cycle whose check measured these losses."""
    if cycle is not None and cycle < warmup_cycles:
        return 1, warmup_n_critic
    return (1, 0) if bool(skip_critic(loss_g, loss_d, t1, t2)) else (1, 1)


class MedGAN(WassersteinDCGAN):
    arch = "medgan"
    Config = MedGANConfig

    def train_step(self, ctx: StepContext, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        c = self.cfg
        G, D = self.nets["G"], self.nets["D"]
        if ctx.step < c.warmup_cycles:
            losses = [self.critic_step(ctx.next_real().images, ctx.randn(ctx.batch, c.z_dim), optimizers["D"],
                                       clip=c.clip)[0] for _ in range(c.warmup_n_critic)]
            loss_d = torch.stack(losses).mean()
            n_d = torch.full((), float(c.warmup_n_critic), device=ctx.device)
        else:
            real = ctx.next_real().images
            z_check, z_d = ctx.randn(ctx.batch, c.z_dim), ctx.randn(ctx.batch, c.z_dim)
            with torch.no_grad():
                check = torch.stack([self.peer["D"](real).float().mean(),
                                     self.peer["D"](self.peer["G"](z_check)).float().mean()])
                if ctx.world_size > 1:
                    torch.distributed.all_reduce(check)
                    check /= ctx.world_size
            loss_d, loss_g_check = check[1] - check[0], -check[1]
            skip = skip_critic(loss_g_check, loss_d, c.t1, c.t2)
            if c.host_decision:
                if not bool(skip):  # one host sync per cycle
                    self.critic_step(real, z_d, optimizers["D"], clip=c.clip)
            else:
                undo = Rollback([*D.parameters(), *D.buffers(), *G.buffers()], optimizers["D"], D.parameters())
                self.critic_step(real, z_d, optimizers["D"], clip=c.clip)
                undo(skip)
            n_d = (~skip).float()
        loss_g = self.generator_step(ctx.randn(ctx.batch, c.z_dim), optimizers["G"])
        return {"loss_G": loss_g, "loss_D": loss_d.detach(), "critic_updates": n_d}


class Rollback:
    """Snapshot tensors and an optimizer's state; later restore them where a device flag says so.

    ``undo(flag)`` keeps the new values where ``flag`` is False and the snapshot
    where it is True, elementwise with ``torch.where``: no host sync. Optimizer
    state created by the step being undone (lazy initialisation) is reset to
    zeros, which is what PyTorch's optimizers start from. Tensors on another
    device than the flag (host-side step counters) are left as they are.
    """

    def __init__(self, tensors: Iterable[torch.Tensor], optimizer: torch.optim.Optimizer,
                 params: Iterable[nn.Parameter]) -> None:
        self.tensors = [t for t in tensors]
        self.saved = [t.detach().clone() for t in self.tensors]
        self.optimizer = optimizer
        self.params = list(params)
        self.state = [{k: v.clone() for k, v in optimizer.state.get(p, {}).items() if torch.is_tensor(v)}
                      for p in self.params]

    @torch.no_grad()
    def __call__(self, flag: torch.Tensor) -> None:
        for t, s in zip(self.tensors, self.saved):
            t.copy_(torch.where(flag, s, t))
        for p, before in zip(self.params, self.state):
            for k, v in self.optimizer.state.get(p, {}).items():
                if torch.is_tensor(v) and v.device == flag.device:
                    old = before.get(k)
                    v.copy_(torch.where(flag, old if old is not None else torch.zeros_like(v), v))
