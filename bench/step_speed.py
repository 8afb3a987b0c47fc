"""Time one architecture's training steps outside the trainer, in variants, for GPU tuning.

Each step is ``model.train_step`` under bf16 autocast (on CUDA; ``--precision``) with a
StepContext whose real images come from a uint8 tensor resident on the device
(random frames: speed does not depend on content), followed by the EMA update.
Timed steps are a multiple of 16, so lazy regularisers (StyleGAN2's R1 every 16
steps, path length every 4) count in proportion. Variants toggle channels_last,
cuDNN autotuning and ``torch.compile``; ``--profile FILE`` writes a profiler
table of 16 steps; ``--sync-debug`` counts, on a GPU, the operations that make
the host wait for the device during 16 steps (``torch.cuda.set_sync_debug_mode``;
``tests/test_host_syncs.py`` checks the same on the CPU); ``--flops`` counts the
FLOPs of 16 steps (``bench/step_flops.py``) and reports the throughput the timed
steps achieved, the number to hold against the device's peak. Prints one JSON line
per (config, variant). For the end-to-end number through the real trainer use
``bench/train_speed.py``.

    python bench/step_speed.py --arch stylegan2_ada --configs E4,auto --variants default,no-channels-last,compile
    python bench/step_speed.py --arch diffusion --configs E1,E6 --sample
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
import warnings

import torch

from echolib.config import parse_overrides
from echolib.data.frames import FrameDataset
from echolib.devices import autocast_dtype
from echolib.metrics.perceptual import PERCEPTUAL_LOSSES
from echolib.models.base import StepContext
from echolib.train.compiling import wire_forwards
from echolib.train.conditions import condition_maps
from echolib.train.distributed import DistInfo
from echolib.train.ema import update_ema
from echolib.train.real_batches import RealDraws
from echolib.train.run_config import build_model, load_config


def bench(arch: str, config: str, steps: int, warmup: int, channels_last: bool, cudnn_benchmark: bool,
          compile_: bool, profile: str | None = None, sample: bool = False, sync_debug: bool = False,
          flops: bool = False, overrides: dict | None = None, precision: str = "auto") -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.manual_seed(0)
    run = load_config(arch, config, overrides or None)
    batch, res = run.train.batch, run.train.resolution
    data = torch.randint(0, 256, (max(4096, 4 * batch), 1, res, res), dtype=torch.uint8, device=device)
    model = build_model(run)
    model.use_perceptual(PERCEPTUAL_LOSSES)  # as the trainer does
    frames = FrameDataset.of_images(data)
    model.setup(frames, heldout=None)
    maps = condition_maps(model, frames) if model.image_conditioned else None  # as the trainer hands them
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    wire_forwards(model, device, DistInfo(), compile_)  # as the trainer does: fwd and peer compiled
    opts = model.make_optimizers()
    gen = torch.Generator(device=device)
    dtype = autocast_dtype(precision, device)  # as the trainer reads train.precision
    cast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype is not None else contextlib.nullcontext

    # counts the real images consumed: what kimg counts (a WGAN critic draws a batch per update)
    next_real = RealDraws(frames, batch, gen, conditions=maps, channels_last=channels_last, device=device)

    def step(i: int) -> dict[str, torch.Tensor]:
        gen.manual_seed(i)
        ctx = StepContext(step=i, nimg=i * batch, batch=batch, device=device, generator=gen, next_real=next_real,
                          autocast=cast, channels_last=channels_last)  # fmt: skip
        with cast():
            out = model.train_step(ctx, opts)
        for name, ema in model.ema.items():
            update_ema(ema, model.nets[name], 0.999)
        return out

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t_warm = time.perf_counter()
    for i in range(warmup):
        step(i)
    sync()
    warmup_s = time.perf_counter() - t_warm  # with --compile: mostly compilation; said at once, in case a limit cuts us off
    print(f"{arch} {config}: {warmup} warm-up steps took {warmup_s:.1f} s", file=sys.stderr, flush=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, finite = [], torch.ones((), dtype=torch.bool, device=device)
    next_real.drawn = 0
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        t = time.perf_counter()
        out = step(i)
        finite &= torch.stack([v.float() for v in out.values()]).isfinite().all()
        if i % 16 == 15:  # per-step times need a sync; keep it off most steps
            sync()
            times.append((time.perf_counter() - t) * 1000)
    sync()
    seconds = time.perf_counter() - start
    images = next_real.drawn
    result = {
        "arch": arch,
        "config": config,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "batch": batch,
        "resolution": res,
        "channels_last": channels_last,
        "cudnn_benchmark": cudnn_benchmark,
        "compile": compile_,
        "precision": "bf16" if dtype is not None else "fp32",
        "params_m": round(sum(p.numel() for p in model.nets.parameters()) / 1e6, 2),
        "sec_per_kimg": round(seconds / (images / 1000), 3),
        "step_ms_median": round(statistics.median(times), 1) if times else None,
        "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
        "finite": bool(finite),
        "warmup_s": round(warmup_s, 1),
    }
    result.update({k: round(float(v), 4) for k, v in model.tick_stats().items()})
    if sample:
        model.eval()
        g = torch.Generator(device=device).manual_seed(0)
        model.sample(min(batch, 16), g)
        sync()
        t = time.perf_counter()
        n = 0
        while time.perf_counter() - t < 5.0:
            n += len(model.sample(batch, g))
            sync()
        result["sample_img_per_s"] = round(n / (time.perf_counter() - t), 1)
    if flops:
        from step_flops import CYCLE, Work

        model.train()
        work = Work()
        with work:
            for i in range(CYCLE):
                step(i)
        per_step = work.flops / CYCLE
        result["tflop_per_kimg"] = round(per_step * steps / images * 1000 / 1e12, 2)
        result["achieved_tflops"] = round(per_step * steps / seconds / 1e12, 4)
        result["ops_per_step"] = round(sum(work.ops.values()) / CYCLE)
    if sync_debug and device.type == "cuda":
        model.train()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                for i in range(16):
                    step(i)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message)]
        result["host_syncs_per_step"] = round(len(syncs) / 16, 2)
        result["host_sync_kinds"] = sorted(set(syncs))[:5]
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        model.train()
        with torch_profile(activities=acts) as prof:
            for i in range(16):
                step(i)
            sync()
        key = "cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"  # CPU: where time is spent
        with open(profile, "w") as fh:
            fh.write(prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=60))
    return result


VARIANTS = {
    "default": {"channels_last": True, "cudnn_benchmark": True, "compile_": False},
    "no-channels-last": {"channels_last": False, "cudnn_benchmark": True, "compile_": False},
    "no-cudnn-benchmark": {"channels_last": True, "cudnn_benchmark": False, "compile_": False},
    "compile": {"channels_last": True, "cudnn_benchmark": True, "compile_": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="stylegan2_ada")
    parser.add_argument("--configs", default="E4", help="comma-separated config names")
    parser.add_argument("--variants", default="default", help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=64, help="timed steps (a multiple of 16)")
    parser.add_argument("--warmup", type=int, default=16)
    parser.add_argument("--sample", action="store_true", help="also time sampling (images/s over 5 s)")
    parser.add_argument("--profile", help="write a profiler table of 16 steps of the first run to this file")
    parser.add_argument("--sync-debug", action="store_true", help="count host-device synchronisations (GPU only)")
    parser.add_argument("--flops", action="store_true", help="count FLOPs and ops of 16 steps; report TFLOP/s achieved")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                        help="autocast as train.precision means it (auto: bf16 on CUDA, fp32 on the CPU)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set model.ada_supersample=false")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    profile = args.profile
    for config in args.configs.split(","):
        for variant in args.variants.split(","):
            result = bench(args.arch, config, args.steps, args.warmup, profile=profile, sample=args.sample,
                           sync_debug=args.sync_debug, flops=args.flops, overrides=overrides, precision=args.precision,
                           **VARIANTS[variant])
            profile = None
            print(json.dumps({"variant": variant, "set": args.set, **result}), flush=True)


if __name__ == "__main__":
    main()
