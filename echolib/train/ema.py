"""Exponential moving average of generator weights, as in StyleGAN2-ADA.

The half-life is given in kimg, so it means the same thing at any batch size;
during the first part of training it is capped at ``rampup * kimg_so_far`` so the
average is not dominated by the random initialisation.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(batch: int, nimg: int, ema_kimg: float, rampup: float | None) -> float:
    """Decay per step for a step that showed ``batch`` images, ``nimg`` images so far."""
    ema_nimg = ema_kimg * 1000.0
    if rampup is not None:
        ema_nimg = min(ema_nimg, nimg * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """``ema <- beta * ema + (1 - beta) * net`` for parameters; buffers are copied."""
    ema_params: list[torch.Tensor] = list(ema.parameters())
    net_params = [p.detach() for p in net.parameters()]
    if len(ema_params) != len(net_params):
        raise RuntimeError("EMA and network have different parameter lists")
    if ema_params:
        torch._foreach_lerp_(ema_params, net_params, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), net.buffers()):
        b_ema.copy_(b)
