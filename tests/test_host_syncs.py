"""Training never makes the host wait for the device.

On a GPU, a tensor built from Python data inside a step (``torch.tensor``,
``torch.as_tensor``: a blocking host-to-device copy) or a value read back
(``.item()``, ``float(t)``, ``bool(t)``: a device-to-host copy) stalls the CPU
until the GPU has finished everything queued, so kernel launches stop
overlapping compute. Both dispatch on every device as ``aten.lift_fresh`` and
``aten._local_scalar_dense``, so counting them on the CPU finds them without
a GPU (``bench/step_speed.py --sync-debug`` checks the same on a GPU).
"""

from __future__ import annotations

import collections
import traceback

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from echolib.data.frames import FrameDataset
from echolib.metrics.perceptual import PERCEPTUAL_LOSSES
from echolib.models.base import StepContext
from echolib.models.registry import ARCHITECTURES
from echolib.train.conditions import condition_maps
from echolib.train.loop import train
from echolib.train.real_batches import RealDraws
from echolib.train.run_config import build_model, load_config

HOST_TRIPS = {"aten.lift_fresh", "aten._local_scalar_dense"}


class HostTrips(TorchDispatchMode):
    """Counts host round trips by kind and by the echolib line that caused them."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: collections.Counter[str] = collections.Counter()
        self.lines: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kind = str(func.overloadpacket)
        if kind in HOST_TRIPS:
            self.kinds[kind] += 1
            ours = [f for f in traceback.extract_stack() if "/echolib/" in f.filename]
            self.lines[f"{ours[-1].filename.split('echolib/')[-1]}:{ours[-1].lineno}" if ours else "?"] += 1
        return func(*args, **(kwargs or {}))


def steps_of(arch: str, frames: FrameDataset, first: int, last: int, model=None, opts=None, maps=None):
    """Run ``model.train_step`` for steps ``first..last-1`` on phantom frames; returns the model, optimizers, maps.

    ``maps``: an image-conditioned model's condition maps of ``frames``, made
    once before the steps (as the trainer makes them), not inside them.
    """
    run = load_config(arch, "smoke")
    batch = run.train.batch
    if model is None:
        torch.manual_seed(0)
        model = build_model(run)
        model.use_perceptual(PERCEPTUAL_LOSSES)  # as the trainer does
        model.setup(frames, heldout=None)
        opts = model.make_optimizers()
        maps = condition_maps(model, frames) if model.image_conditioned else None
    gen = torch.Generator()
    next_real = RealDraws(frames, batch, gen, conditions=maps)
    for step in range(first, last):
        gen.manual_seed(step)
        ctx = StepContext(step=step, nimg=step * batch, batch=batch, device=torch.device("cpu"), generator=gen,
                          next_real=next_real)  # fmt: skip
        model.train_step(ctx, opts)
    return model, opts, maps


@pytest.fixture(scope="module")
def phantom64(tmp_path_factory) -> FrameDataset:
    from echolib.data import phantom

    folder = phantom.generate(tmp_path_factory.mktemp("ph") / "p64", 32, size=64, seed=0, workers=1, progress=False)
    return FrameDataset(folder / "manifest.csv", resolution=64)


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_training_steps_make_no_host_round_trips(arch, phantom64):
    model, opts, maps = steps_of(arch, phantom64, 0, 1)  # the first step may create optimizer state
    with HostTrips() as trips:
        steps_of(arch, phantom64, 1, 17, model, opts, maps)  # covers every lazy regulariser (intervals 4 and 16)
    assert not trips.kinds, f"{arch}: {dict(trips.kinds)} at {dict(trips.lines)}"


def test_the_trainer_loop_adds_none_per_step(noise_frames, tmp_path):
    # Same ticks, snapshots and grids; twice the steps. Anything per step shows up as a difference.
    counts = []
    for batch in (8, 4):
        cfg = load_config("wgan", "smoke", {"train": {"batch": batch, "kimg": 0.08, "tick_kimg": 0.04}})
        with HostTrips() as trips:
            train(cfg, noise_frames, tmp_path / f"b{batch}", device="cpu", progress=False)
        counts.append(trips.kinds["aten.lift_fresh"])  # the CPU loop reads losses back on purpose (NaN guard)
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("pipe", ["bgcfnc", "bgc"])
def test_every_augmentation_runs_without_host_round_trips(pipe):
    from echolib.augment.ada import AugmentPipe, GeneratorDraws

    x = torch.rand(4, 1, 32, 32) * 2 - 1
    p = torch.full((), 0.5)
    draws = GeneratorDraws(torch.Generator().manual_seed(0))
    augment = AugmentPipe.from_name(pipe)
    with HostTrips() as trips:
        y = augment(x, p, draws)
    assert not trips.kinds, f"{pipe}: {dict(trips.kinds)} at {dict(trips.lines)}"
    assert not torch.equal(x, y)
