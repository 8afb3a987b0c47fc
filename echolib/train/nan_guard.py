"""The NaN guard: stop training at the first non-finite loss, naming the step and the checkpoint to resume from.

Reading a loss back every step would make the host wait for the device, so
each step only folds its losses into one small tensor per loss, on the device:
the first step at which that loss was NaN or Inf, or -1. The loop asks
:meth:`NanGuard.check` where it syncs anyway (a tick's end, before a
checkpoint) and, on the CPU where a read costs nothing, every step. Checking
before every checkpoint means a poisoned state never becomes the checkpoint a
resume loads.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from echolib.errors import TrainingError
from echolib.train import distributed as dist
from echolib.train.run_folder import RunFolder


class NanGuard:
    """Per loss, the first step whose value was not finite, kept on the device."""

    def __init__(self) -> None:
        self.first_bad: dict[str, torch.Tensor] = {}

    def observe(self, losses: Mapping[str, torch.Tensor], step: int) -> None:
        """Fold in the losses of ``step`` without a host sync (``torch.full`` is a fill, not a copy)."""
        for name, value in losses.items():
            bad = ~torch.isfinite(value)
            step_t = torch.full((), step, device=value.device)
            prev = self.first_bad.get(name)
            if prev is None:
                self.first_bad[name] = torch.where(bad, step_t, torch.full_like(step_t, -1))
            else:
                self.first_bad[name] = torch.where((prev < 0) & bad, step_t, prev)

    def check(self, info: dist.DistInfo, kimg: float, folder: RunFolder) -> None:
        """Raise :class:`TrainingError` naming the earliest bad loss over every rank (a collective under DDP)."""
        if not self.first_bad:
            return
        names = list(self.first_bad)
        steps = dist.all_min(torch.stack([self.first_bad[k].to(torch.float64) for k in names]), info).tolist()
        # -1 means "never"; all_min over ranks would pick -1, so rank-local values suffice on one process.
        bad = [(int(s), k) for s, k in zip(steps, names) if s >= 0]
        if bad:
            step, name = min(bad)
            last = folder.latest_checkpoint()
            raise TrainingError(
                f"non-finite loss {name!r} at step {step} (kimg {kimg:.3f}); "
                f"training stopped. Last good checkpoint: {last or 'none yet'}. "
                f"Lower the learning rate or check the data, then resume from it."
            )
