"""The condition maps an image-conditioned model translates, computed from frames for whoever drives it.

A model names the map it needs (:meth:`~echolib.models.base.GenerativeModel.condition_spec`)
and never computes or stores one: the trainer, the samplers and the evaluations
all ask this function, so the maps a model trained on and the maps it is
scored on are made the same way.
"""

from __future__ import annotations

from typing import Any

import torch

from echolib.data import conditions
from echolib.models.base import GenerativeModel


def condition_maps(model: GenerativeModel, frames: Any) -> torch.Tensor:
    """``model``'s condition map of every frame of ``frames`` (a FrameDataset): uint8 ``[N, C, H, W]``.

    The maps lie on the frames' device, aligned with their indices. A model that
    translates no maps raises :class:`~echolib.errors.ConfigError`.
    """
    spec = model.condition_spec()
    return conditions.compute(frames, spec.kind, low=spec.low, high=spec.high)
