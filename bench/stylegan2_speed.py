"""Time StyleGAN2-ADA training steps the way the trainer runs them: sec/kimg after warm-up.

Each step is ``model.train_step`` under bf16 autocast with a StepContext whose
real images come from a uint8 dataset resident on the device (random frames:
speed does not depend on content), followed by the generator's EMA update.
The timed window is a whole number of 16-step R1 periods, so lazy R1 and
path-length steps count in proportion. Prints one JSON line per variant:
``{"config", "gpu", "batch", "resolution", "channels_last", "cudnn_benchmark",
"compile", "sec_per_kimg", "step_ms_median", "peak_mem_gb", "finite", "augment_p"}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch

from echolib.images import to_float
from echolib.models.base import RealBatch, StepContext
from echolib.models.registry import build_model, load_config
from echolib.train.ema import update_ema


def bench(
    config: str,
    steps: int,
    warmup: int,
    channels_last: bool,
    cudnn_benchmark: bool,
    compile_: bool,
    profile: str | None = None,
) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.manual_seed(0)
    run = load_config("stylegan2_ada", config)
    batch, res = run.train.batch, run.train.resolution
    model = build_model(run).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile_:
        model.fwd = {k: torch.compile(v) for k, v in model.fwd.items()}
    opts = model.make_optimizers()
    data = torch.randint(0, 256, (4096, 1, res, res), dtype=torch.uint8, device=device)
    gen = torch.Generator(device=device)
    cast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext

    def next_real() -> RealBatch:
        idx = torch.randint(len(data), (batch,), generator=gen, device=device)
        x = to_float(data[idx])
        return RealBatch(x.contiguous(memory_format=torch.channels_last) if channels_last else x, idx)

    def step(i: int) -> dict[str, torch.Tensor]:
        gen.manual_seed(i)
        ctx = StepContext(step=i, nimg=i * batch, batch=batch, device=device, generator=gen, next_real=next_real,
                          autocast=cast)  # fmt: skip
        with cast():
            out = model.train_step(ctx, opts)
        update_ema(model.ema["G"], model.nets["G"], 0.999)
        return out

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for i in range(warmup):
        step(i)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, finite = [], torch.ones((), dtype=torch.bool, device=device)
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
    if profile:  # one R1 period under the profiler, kernels sorted by device time
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch_profile(activities=acts) as prof:
            for i in range(16):
                step(i)
            sync()
        key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        with open(profile, "w") as fh:
            fh.write(prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=60))
    return {
        "config": config,
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "batch": batch,
        "resolution": res,
        "channels_last": channels_last,
        "cudnn_benchmark": cudnn_benchmark,
        "compile": compile_,
        "sec_per_kimg": round(seconds / (steps * batch / 1000), 3),
        "step_ms_median": round(statistics.median(times), 1) if times else None,
        "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
        "finite": bool(finite),
        "augment_p": round(float(model.ada.p), 4),
    }


VARIANTS = {
    "default": {"channels_last": True, "cudnn_benchmark": True, "compile_": False},
    "no-channels-last": {"channels_last": False, "cudnn_benchmark": True, "compile_": False},
    "no-cudnn-benchmark": {"channels_last": True, "cudnn_benchmark": False, "compile_": False},
    "compile": {"channels_last": True, "cudnn_benchmark": True, "compile_": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", default="E4", help="comma-separated config names")
    parser.add_argument("--variants", default="default", help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=64, help="timed steps (a multiple of 16 keeps R1 in proportion)")
    parser.add_argument("--warmup", type=int, default=16)
    parser.add_argument("--profile", help="write a profiler table of 16 steps of the first run to this file")
    args = parser.parse_args()
    profile = args.profile
    for config in args.configs.split(","):
        for variant in args.variants.split(","):
            result = bench(config, args.steps, args.warmup, profile=profile, **VARIANTS[variant])
            profile = None
            print(json.dumps({"variant": variant, **result}), flush=True)


if __name__ == "__main__":
    main()
