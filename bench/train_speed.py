"""Training and sampling speed of every architecture through the real trainer; prints JSON lines.

For each architecture: train ``--ticks`` ticks of ``--tick-kimg`` after one
warm-up tick (compilation, cuDNN autotuning, allocator growth), read each
tick's seconds from the run's ``log.csv`` (tick time excludes checkpoints and
sample grids), and report the median. Then time sampling.

    python bench/train_speed.py --arch stylegan2_ada --config E4 --data frames/ --device cuda
    python bench/train_speed.py --device cpu            # every architecture, smoke configs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from echolib.models.registry import available_architectures, load_config
from echolib.report.records import read_log
from echolib.train.loop import Trainer, resolve_device
from echolib.train.sampling import model_sampler


def bench_one(arch: str, config: str, data: str, device: str, ticks: int, tick_kimg: float | None,
              batch: int | None, compile_: bool, sample_n: int) -> dict:
    dev = resolve_device(device)
    over: dict = {"train": {"tensorboard": False, "snapshot_kimg": 0, "sample_kimg": 0, "metrics_kimg": 0,
                            "compile": compile_}}
    if batch:
        over["train"]["batch"] = batch
    run = load_config(arch, config, over)
    if tick_kimg:
        run.train.tick_kimg = tick_kimg
    run.train.kimg = run.train.tick_kimg * (ticks + 1)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(run, data, Path(tmp) / "run", device=dev, progress=False)
        t0 = time.perf_counter()
        trainer.fit()
        wall = time.perf_counter() - t0
        log = read_log(Path(tmp) / "run")
        per_tick = log["sec_per_kimg"].astype(float).tolist()[1:] or log["sec_per_kimg"].astype(float).tolist()
        sec_per_kimg = statistics.median(per_tick)
        # the timed ticks' peak: on a GPU each log row holds its own tick's, and the warm-up tick's includes the
        # workspaces cuDNN autotuning tries (StyleGAN2-ADA E4 on an H100: 41 GB with it, 11 GB in the step
        # benchmark after warm-up)
        timed = log["mem_gb"].astype(float).tolist()[1:] or log["mem_gb"].astype(float).tolist()
        peak = max(timed)
        losses = {k: float(log[k].iloc[-1]) for k in log.columns if k.startswith("loss")}
        sampler = model_sampler(trainer.model, batch=64)
        g = torch.Generator(device=dev).manual_seed(0)
        sampler(min(sample_n, 16), g)  # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        images = sampler(sample_n, g)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        sample_s = time.perf_counter() - t0
    return {
        "architecture": arch,
        "config": config,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "batch": run.train.batch,
        "resolution": run.train.resolution,
        "compile": compile_,
        "bf16": dev.type == "cuda" and run.train.bf16,
        "ticks_timed": len(per_tick),
        "tick_kimg": run.train.tick_kimg,
        "sec_per_kimg": round(sec_per_kimg, 4),
        "sec_per_kimg_best": round(min(per_tick), 4),
        "images_per_s": round(1000.0 / sec_per_kimg, 2),
        "peak_mem_gb": round(peak, 3),
        "wall_s": round(wall, 1),
        "sampling_images_per_s": round(sample_n / sample_s, 2),
        "samples_finite": bool(torch.isfinite(images).all()),
        "last_losses": losses,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="all", help="architecture, comma-separated architectures, or 'all'")
    p.add_argument("--config", default=None, help="config name (default: smoke on CPU, E4 on CUDA)")
    p.add_argument("--data", default="phantom")
    p.add_argument("--device", default="auto")
    p.add_argument("--ticks", type=int, default=3, help="timed ticks after one warm-up tick")
    p.add_argument("--tick-kimg", type=float, default=None, help="kimg per tick (default: the config's)")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--sample-n", type=int, default=256)
    args = p.parse_args(argv)
    archs = available_architectures() if args.arch == "all" else [a for a in args.arch.split(",") if a]
    dev = resolve_device(args.device)
    config = args.config or ("E4" if dev.type == "cuda" else "smoke")
    status = 0
    for arch in archs:
        try:
            result = bench_one(arch, config, args.data, args.device, args.ticks, args.tick_kimg, args.batch,
                               args.compile, args.sample_n)
        except Exception as exc:  # noqa: BLE001 -- report and go on to the next architecture
            result = {"architecture": arch, "config": config, "error": f"{type(exc).__name__}: {exc}"}
            status = 1
        print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
