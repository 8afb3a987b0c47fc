"""Count the work in one architecture's training steps: FLOPs and dispatched operations, on any device.

Speed targets are set in seconds per kimg on a GPU, but two things that bound
that number can be counted anywhere, the CPU included:

* **FLOPs** (``torch.utils.flop_counter``: convolutions, matrix products and
  their first and second derivatives, so R1 and path-length regularisation
  count). The FIR resampling's products with banded matrices (batched
  matmuls with a broadcast, stride-0 matrix: ``echolib.resampling``) are
  left out: cuBLAS multiplies their zeros too, but that is not the model's
  work. Divided by a GPU's peak throughput they give a floor on sec/kimg
  that no implementation beats; divided by a measured sec/kimg
  (``bench/step_speed.py``) they give the throughput actually achieved.
* **Operations dispatched** per step (views and allocations excluded): in
  eager mode each is at least one kernel launch on a GPU, a few microseconds
  of host time, so their number bounds how fast the host can keep the GPU fed.

Steps run at small batches (FLOPs are linear in the batch: the bench fits
``a + b * batch`` over ``--batches`` and extrapolates to the config's batch)
over a 16-step cycle, so lazy regularisers count in proportion. Prints one JSON
line per config.

    python bench/step_flops.py --arch stylegan2_ada --configs E4,auto --batches 4,8
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import linecache
import sys
import types

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from echolib.data.frames import FrameDataset
from echolib.metrics.perceptual import PERCEPTUAL_LOSSES
from echolib.models.base import GenerativeModel, StepContext
from echolib.train.conditions import condition_maps
from echolib.train.ema import update_ema
from echolib.train.real_batches import RealDraws
from echolib.train.run_config import build_model, load_config

#: no kernel (views, metadata) or allocation only: not counted as launches
_FREE = {
    "aten.view", "aten._unsafe_view", "aten.t", "aten.expand", "aten.as_strided", "aten.detach", "aten.alias",
    "aten.unsqueeze", "aten.squeeze", "aten.permute", "aten.transpose", "aten.reshape", "aten.slice",
    "aten.select", "aten.split", "aten.unbind", "aten.split_with_sizes", "aten.narrow", "aten.empty",
    "aten.empty_like", "aten.empty_strided", "aten.diagonal", "aten.unflatten", "aten.flatten", "aten.view_as",
    "aten.chunk", "aten.movedim", "aten.lift_fresh", "aten.scalar_tensor", "aten._local_scalar_dense",
}  # fmt: skip

#: H100 SXM dense bf16 tensor-core peak (NVIDIA datasheet), the default for the sec/kimg floor
H100_BF16_TFLOPS = 989.0
CYCLE = 16


def _is_fir_product(packet, args) -> bool:
    """A batched matmul with one matrix broadcast over the batch: the FIR filters' banded matrices."""
    return packet is torch.ops.aten.bmm and any(a.stride(0) == 0 and a.shape[0] > 1 for a in args[:2])


class Work(TorchDispatchMode):
    """FLOPs (torch's own per-op formulas) and launches, counted as operations dispatch.

    ``FlopCounterMode`` itself cannot be used: its module tracker fails on the
    ``no_grad`` generator pass of a GAN's discriminator step.

    FLOPs are also attributed to the line of the model's own step code that
    dispatched them (``steps``: its methods' code objects): a ``.backward()``
    line gets its whole backward pass, so the shares say which phase of a step
    (generator update, discriminator update, R1, path length) costs what.
    """

    def __init__(self, steps: frozenset[types.CodeType] | set[types.CodeType] = frozenset()) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()
        self.flops = 0
        self.steps = steps
        self.by_line: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        if str(packet) not in _FREE:
            self.ops[str(packet)] += 1
        if packet in flop_registry and not _is_fir_product(packet, args):
            flops = flop_registry[packet](*args, **kwargs, out_val=out)
            self.flops += flops
            if self.steps:
                self.by_line[self._step_line()] += flops
        return out

    def _step_line(self) -> str:
        frame: types.FrameType | None = sys._getframe(2)
        while frame is not None and frame.f_code not in self.steps:
            frame = frame.f_back
        if frame is None:
            return "(outside the step)"
        return f"{frame.f_code.co_name}: {linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()}"


def step_code(model: GenerativeModel) -> set[types.CodeType]:
    """Code objects of the model's own methods (its classes up to GenerativeModel): where step lines live."""
    codes = set()
    for cls in type(model).__mro__:
        if not (issubclass(cls, GenerativeModel) and cls is not GenerativeModel):
            continue
        for value in vars(cls).values():
            if inspect.isfunction(value):
                codes.add(value.__code__)
    return codes


def count(arch: str, config: str, batch: int, overrides: dict | None = None,
          ) -> tuple[float, float, collections.Counter[str], dict[str, float]]:
    """FLOPs, real images drawn (what kimg counts), dispatched ops and FLOP shares by step line, per step."""
    torch.manual_seed(0)
    run = load_config(arch, config, overrides or None)
    run.train.batch = batch
    if hasattr(run.model, "mbstd_group"):
        run.model.mbstd_group = min(run.model.mbstd_group, batch)
    res = run.train.resolution
    data = torch.randint(0, 256, (64, 1, res, res), dtype=torch.uint8)
    model = build_model(run)
    model.use_perceptual(PERCEPTUAL_LOSSES)  # as the trainer does
    frames = FrameDataset.of_images(data)
    model.setup(frames, heldout=None)
    maps = condition_maps(model, frames) if model.image_conditioned else None  # as the trainer hands them
    model.to(memory_format=torch.channels_last)  # the layout the trainer and step_speed.py train in on a GPU
    opts = model.make_optimizers()
    gen = torch.Generator()
    next_real = RealDraws(frames, batch, gen, conditions=maps, channels_last=True)

    def step(i: int) -> None:
        gen.manual_seed(i)
        ctx = StepContext(step=i, nimg=i * batch, batch=batch, device=torch.device("cpu"), generator=gen,
                          next_real=next_real, channels_last=True)  # fmt: skip
        model.train_step(ctx, opts)
        for name, ema in model.ema.items():
            update_ema(ema, model.nets[name], 0.999)

    step(CYCLE - 1)
    next_real.drawn = 0
    work = Work(step_code(model))
    with work:
        for i in range(CYCLE, 2 * CYCLE):
            step(i)
    shares = {line: flops / work.flops for line, flops in work.by_line.most_common()} if work.flops else {}
    return work.flops / CYCLE, next_real.drawn / CYCLE / batch, work.ops, shares


def measure(arch: str, config: str, batches: list[int], peak_tflops: float = H100_BF16_TFLOPS,
            overrides: dict | None = None) -> dict:
    """The JSON record of one config: FLOPs per step and per kimg at its batch, fitted over ``batches``."""
    target = load_config(arch, config, overrides or None).train.batch
    measured = [(b, *count(arch, config, b, overrides)) for b in batches]
    (b0, f0, _, _, _), (b1, f1, batches_drawn, ops1, shares) = measured[0], measured[-1]
    slope = (f1 - f0) / (b1 - b0)
    flops = f0 + slope * (target - b0)
    per_kimg = flops * 1000 / (batches_drawn * target)
    return {
        "arch": arch,
        "config": config,
        "batch": target,
        "measured_batches": batches,
        "gflop_per_image_step": round(slope / 1e9, 2),
        "real_batches_per_step": batches_drawn,
        "tflop_per_step": round(flops / 1e12, 3),
        "tflop_per_kimg": round(per_kimg / 1e12, 1),
        "gflop_per_kimg": round(per_kimg / 1e9, 1),  # the same, to three significant digits for small models
        "floor_sec_per_kimg": round(per_kimg / (peak_tflops * 1e12), 3),
        "peak_tflops": peak_tflops,
        "ops_per_step": round(sum(ops1.values()) / CYCLE),
        "top_ops": {k: round(v / CYCLE, 1) for k, v in ops1.most_common(8)},
        # at the largest measured batch; lines under 1 % of the FLOPs are left out
        "flop_share_by_step_line": {k: round(v, 3) for k, v in shares.items() if v >= 0.01},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="stylegan2_ada")
    parser.add_argument("--configs", default="E4")
    parser.add_argument("--batches", default="4,8", help="two (or more) small batches to fit FLOPs = a + b * batch")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_TFLOPS,
                        help="device peak for the sec/kimg floor (default: H100 SXM dense bf16)")  # fmt: skip
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    for config in args.configs.split(","):
        print(json.dumps(measure(args.arch, config, batches, args.peak_tflops)), flush=True)


if __name__ == "__main__":
    main()
