"""Real batches drawn the way the trainer draws them: one home for the trainer and every harness that replays a step.

A step's ``next_real`` draws ``batch`` uniform indices from the step's own
generator (so any step can be replayed from its seed), keeps this rank's share
of them (global draws, local slices: :class:`~echolib.models.base.StepContext`),
and hands the model those frames as floats in [-1, 1] on the step's device,
channels_last when the networks are, with the same frames' condition maps for
an image-conditioned model. The test suite's step contexts and the step
benchmarks (``bench/step_speed.py``, ``bench/step_flops.py``) draw through
:class:`RealDraws` too, so a step they test or time sees what a training step sees.
"""

from __future__ import annotations

import torch

from echolib.data.frames import FrameDataset
from echolib.images import to_float
from echolib.models.base import RealBatch, local_slice


class RealDraws:
    """``StepContext.next_real``: each call draws one real batch; :attr:`drawn` counts the images drawn.

    ``frames`` is a :class:`~echolib.data.frames.FrameDataset` or its uint8
    ``[N, C, H, W]`` images; ``conditions`` the maps of the same frames, in
    the same order. ``drawn`` is what kimg counts: a model may draw more than
    one batch a step (a WGAN critic draws one per update).
    """

    def __init__(self, frames: FrameDataset | torch.Tensor, batch: int, generator: torch.Generator, *,
                 conditions: torch.Tensor | None = None, channels_last: bool = False,
                 device: torch.device | str | None = None, rank: int = 0, world_size: int = 1) -> None:
        self.frames, self.batch, self.generator = frames, batch, generator
        self.conditions, self.channels_last = conditions, channels_last
        self.device = torch.device(device) if device is not None else generator.device
        self.rank, self.world_size = rank, world_size
        self.drawn = 0

    def __call__(self) -> RealBatch:
        idx = torch.randint(len(self.frames), (self.batch,), generator=self.generator, device=self.generator.device)
        local = local_slice(idx, self.rank, self.world_size)
        if isinstance(self.frames, FrameDataset):
            uint8 = self.frames.batch(local)
        else:
            uint8 = self.frames.index_select(0, local.to(self.frames.device))
        images = to_float(uint8).to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        maps = None
        if self.conditions is not None:
            maps = self.conditions[local.to(self.conditions.device)].to(self.device)
        self.drawn += self.batch
        return RealBatch(images=images, index=local, conditions=maps)
