"""Time diffusion training steps and sampling the way the trainer runs them.

Training: ``model.train_step`` under bf16 autocast with a StepContext whose real
images come from a uint8 dataset resident on the device (random frames: speed
does not depend on content), followed by the EMA update; sec/kimg is the median
over the timed steps. Sampling: images per second of ``model.sample`` with the
config's default solver (e.g. 18 Heun steps = 35 network evaluations). Prints
one JSON line per variant: ``{"config", "gpu", "batch", "resolution",
"channels_last", "compile", "params_m", "sec_per_kimg", "step_ms_median",
"peak_mem_gb", "finite", "sample_img_per_s", "nfe"}``.
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(config: str, steps: int, warmup: int, channels_last: bool, compile_: bool, sample_n: int) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    run = load_config("diffusion", config, {"model": {"labels": []}})
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

    losses = []

    def step(i: int) -> None:
        gen.manual_seed(i)
        ctx = StepContext(step=i, nimg=i * batch, batch=batch, device=device, generator=gen, next_real=next_real,
                          autocast=cast)
        with cast():
            losses.append(model.train_step(ctx, opts)["loss"])
        update_ema(model.ema["net"], model.nets["net"], 0.999)

    for i in range(warmup):
        step(i)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(warmup, warmup + steps):
        t0 = time.perf_counter()
        step(i)
        _sync(device)
        times.append(time.perf_counter() - t0)
    finite = bool(torch.isfinite(torch.stack(losses)).all())
    step_s = statistics.median(times)
    g = torch.Generator(device=device).manual_seed(0)
    model.sample(min(sample_n, 8), g)  # warm-up (cudnn autotuning for the sampling batch shapes)
    _sync(device)
    t0 = time.perf_counter()
    images = model.sample(sample_n, g)
    _sync(device)
    sample_s = time.perf_counter() - t0
    m = run.model
    return {
        "config": config,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "batch": batch,
        "resolution": res,
        "channels_last": channels_last,
        "compile": compile_,
        "params_m": round(sum(p.numel() for p in model.nets["net"].parameters()) / 1e6, 2),
        "sec_per_kimg": round(step_s * 1000 / batch, 3),
        "step_ms_median": round(step_s * 1000, 2),
        "peak_mem_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
        "finite": finite and bool(torch.isfinite(images).all()),
        "sample_img_per_s": round(sample_n / sample_s, 1),
        "nfe": 2 * m.steps - 1 if m.sampler == "heun" else m.steps,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", nargs="+", default=["E1"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--sample-n", type=int, default=256)
    p.add_argument("--no-channels-last", action="store_true", help="also time without channels_last")
    p.add_argument("--compile", action="store_true", help="also time with torch.compile")
    a = p.parse_args()
    for config in a.config:
        variants = [(True, False)]
        if a.no_channels_last:
            variants.append((False, False))
        if a.compile:
            variants.append((True, True))
        for cl, comp in variants:
            print(json.dumps(bench(config, a.steps, a.warmup, cl, comp, a.sample_n)), flush=True)


if __name__ == "__main__":
    main()
