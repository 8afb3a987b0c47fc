"""Training and sampling speed of every architecture through the real trainer; prints JSON lines.

For each architecture and variant: train ``--ticks`` ticks of ``--tick-kimg``
after one warm-up tick (compilation, cuDNN autotuning, allocator growth), read
each tick's seconds from the run's ``log.csv`` (tick time excludes checkpoints
and sample grids), and report the median. Then time sampling. Every case runs
in a fresh process, so its peak memory, thread pool and compilation are its own.

    python bench/train_speed.py --arch stylegan2_ada --config E4 --data frames/ --device cuda
    python bench/train_speed.py --device cpu            # every architecture, smoke configs
    python bench/train_speed.py --device cpu --config cpu64 --variants cpu --flops --steady-state \
        --tick-steps 16,wgan=4,diffusion=4,vqgan=8 --sample-n 0

``--variants`` names the ways to train the same configuration (``config``: as
written, the default); ``cpu`` stands for ``fp32-1thread,fp32,bf16,bf16-cl,compiled``,
the CPU comparison of the reproducibility chapter:

* ``fp32-1thread``: eager fp32, contiguous, one intra-op thread (how the cpu64
  runs trained before the trainer used every core),
* ``fp32``, ``bf16``, ``bf16-cl``: eager, every core, fp32 / bf16 autocast /
  bf16 autocast with channels_last,
* ``compiled``: the fastest eager variant measured before it in this run
  (fp32-1thread aside), compiled. Its ``compile_s`` is the warm-up tick's time
  beyond a steady tick's: compiling the graphs (a fresh Inductor cache, as on a
  first run) and nothing else worth counting.

``--rounds R`` measures the variants R times in turn and ends each architecture
with a ``summary`` line per variant (medians over rounds): on a shared machine
the load drifts, and in turn it drifts over every variant alike. ``--threads 1``
runs every variant on one thread, where other processes on the machine cost a
variant its share of a core, not the stalls of a two-thread barrier waiting for
a descheduled thread.

Each record carries ``speedup`` over the same architecture's ``fp32-1thread``
and ``speedup_vs_fp32`` over ``fp32`` (when measured), its settings (precision,
channels_last, compile, threads), the GFLOP/s achieved (``--flops``: the FLOPs
of a kimg from ``bench/step_flops.py``), and the load average before and after
(this bench measures on shared machines too).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: steady state on the CPU from the first tick: the phases a short run would never reach start at once
#: (VQGAN's discriminator trains from 8 kimg in cpu64, MedGAN's critic-only warm-up cycles come first)
STEADY_STATE: dict[str, dict[str, Any]] = {
    "vqgan": {"model": {"disc_start_kimg": 0.0, "disc_warmup_kimg": 0.0}},
    "medgan": {"model": {"warmup_cycles": 0}},
}


@dataclass(frozen=True)
class Variant:
    """A way to train a configuration: ``train:`` settings on top of it, and the threads (None: the trainer's rule)."""

    train: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    on_fastest: bool = False  # on top of the fastest eager variant measured before it (``compiled``)


_EAGER = {"compile": False}
VARIANTS = {
    "config": Variant(),
    "fp32-1thread": Variant({"precision": "fp32", "memory_format": "contiguous", **_EAGER}, threads=1),
    "fp32": Variant({"precision": "fp32", "memory_format": "contiguous", **_EAGER}),
    "bf16": Variant({"precision": "bf16", "memory_format": "contiguous", **_EAGER}),
    "bf16-cl": Variant({"precision": "bf16", "memory_format": "channels_last", **_EAGER}),
    "compiled": Variant({"compile": True}, on_fastest=True),
}
GROUPS = {"cpu": ["fp32-1thread", "fp32", "bf16", "bf16-cl", "compiled"]}
BASELINE, BASELINE_ALL_CORES = "fp32-1thread", "fp32"


def bench_one(arch: str, config: str, data: str, device: str, ticks: int, tick_kimg: float | None,
              batch: int | None, overrides: dict, sample_n: int) -> dict:
    """Train and time one case in this process (the parent runs each in a fresh one: :func:`run_case`)."""
    import torch

    from echolib.config import merge
    from echolib.devices import resolve_device
    from echolib.report.records import read_log
    from echolib.train.loop import Trainer
    from echolib.train.run_config import load_config
    from echolib.train.run_folder import RunFolder
    from echolib.train.sampling import model_sampler

    dev = resolve_device(device)
    over: dict = merge({"train": {"tensorboard": False, "snapshot_kimg": 0, "sample_kimg": 0, "metrics_kimg": 0}},
                       overrides)  # fmt: skip
    if batch:
        over["train"]["batch"] = batch
    run = load_config(arch, config, over)
    if tick_kimg:
        run.train.tick_kimg = tick_kimg
    run.train.kimg = run.train.tick_kimg * (ticks + 1)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(run, data, Path(tmp) / "run", device=dev, progress=False)
        t0 = time.perf_counter()
        trainer.fit()
        wall = time.perf_counter() - t0
        log = read_log(Path(tmp) / "run")
        meta = RunFolder(Path(tmp) / "run").meta()
        seconds = log["sec_per_kimg"].astype(float).tolist()
        per_tick = seconds[1:] or seconds
        sec_per_kimg = statistics.median(per_tick)
        # the timed ticks' peak: on a GPU each log row holds its own tick's, and the warm-up tick's includes the
        # workspaces cuDNN autotuning tries (StyleGAN2-ADA E4 on an H100: 41 GB with it, 11 GB in the step
        # benchmark after warm-up); on the CPU each row holds the process's peak resident memory so far
        timed = log["mem_gb"].astype(float).tolist()[1:] or log["mem_gb"].astype(float).tolist()
        losses = {k: float(log[k].iloc[-1]) for k in log.columns if k.startswith("loss")}
        result = {
            "architecture": arch,
            "config": config,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else meta["device"],
            "torch": torch.__version__,
            "batch": run.train.batch,
            "resolution": run.train.resolution,
            "precision": meta.get("precision"),
            "channels_last": meta.get("channels_last"),
            "compile": run.train.compile,
            "threads": meta.get("threads"),
            "ticks_timed": len(per_tick),
            "tick_kimg": run.train.tick_kimg,
            "sec_per_kimg": round(sec_per_kimg, 4),
            "sec_per_kimg_best": round(min(per_tick), 4),
            "images_per_s": round(1000.0 / sec_per_kimg, 2),
            "warmup_tick_s": round(seconds[0] * run.train.tick_kimg, 2),
            "peak_mem_gb": round(max(timed), 3),
            "wall_s": round(wall, 1),
            "last_losses": losses,
            "losses_finite": all(math.isfinite(v) for v in losses.values()),
        }
        if sample_n > 0:
            sampler = model_sampler(trainer.model, batch=64)
            g = torch.Generator(device=dev).manual_seed(0)
            sampler(min(sample_n, 16), g)  # warm-up
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            images = sampler(sample_n, g)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            result["sampling_images_per_s"] = round(sample_n / (time.perf_counter() - t0), 2)
            result["samples_finite"] = bool(torch.isfinite(images).all())
    result["load_avg_before"], result["load_avg_after"] = round(load_before, 2), round(os.getloadavg()[0], 2)
    return result


def run_case(spec: dict, threads: int | None, cache: str) -> dict:
    """:func:`bench_one` in a fresh process with the Inductor cache ``cache`` and ``threads`` (None: inherited)."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, __file__, "--case", json.dumps(spec)], capture_output=True, text=True,
                          env=env, check=False)  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"architecture": spec["arch"], "config": spec["config"], "error": f"exit {done.returncode}: {tail}"}


def variant_overrides(name: str, measured: dict[str, float]) -> tuple[dict, str | None]:
    """The ``train:`` overrides of variant ``name`` and, for ``compiled``, the eager variant it builds on."""
    v = VARIANTS[name]
    if not v.on_fastest:
        return dict(v.train), None
    eager = {k: t for k, t in measured.items() if k != BASELINE and not VARIANTS[k].on_fastest
             and not VARIANTS[k].train.get("compile")}  # fmt: skip
    base = min(eager, key=eager.__getitem__) if eager else None
    return {**(VARIANTS[base].train if base else {}), **v.train}, base


def bench_arch(arch: str, args: argparse.Namespace, variants: list[str], config: str) -> list[dict]:
    """Every variant of one architecture, ``--rounds`` times in turn, so that a change in the machine's load
    falls on every variant alike; then, with more than one round, a summary line per variant (medians).

    A compiled variant keeps its Inductor cache from round to round: the first
    round pays a first run's compilation (its ``compile_s``), the later ones
    only tracing, and time the same steady state.
    """
    flops = None
    if args.flops or args.tick_steps:
        from step_flops import measure

        try:
            flops = measure(arch, config, [4, 8], overrides=STEADY_STATE.get(arch) if args.steady_state else None)
        except Exception as exc:  # noqa: BLE001 -- the timings stand without it
            print(f"{arch}: FLOP count failed ({type(exc).__name__}: {exc})", file=sys.stderr)
    tick_kimg = args.tick_kimg
    steps = tick_steps(args.tick_steps, arch) if args.tick_steps else None
    if steps and flops:  # whole steps, so lazy regularisers (R1 every 16) weigh in every tick alike
        tick_kimg = round(steps * flops["batch"] * flops["real_batches_per_step"] / 1000, 6)
    by_variant: dict[str, list[dict]] = {name: [] for name in variants}
    bases: dict[str, str | None] = {}
    out = []
    with tempfile.TemporaryDirectory() as caches:
        for round_ in range(args.rounds):
            for name in variants:
                done = {k: statistics.median(r["sec_per_kimg"] for r in rs) for k, rs in by_variant.items() if rs}
                train_over, base = variant_overrides(name, done) if name not in bases else variant_overrides(
                    name, {b: 0.0} if (b := bases[name]) else {})  # the same base in every round
                bases[name] = base
                if name == "config" and args.compile:
                    train_over["compile"] = True
                over = {"train": train_over}
                if args.steady_state and arch in STEADY_STATE:
                    over = {**STEADY_STATE[arch], **over}
                spec = {"arch": arch, "config": config, "data": args.data, "device": args.device,
                        "ticks": args.ticks, "tick_kimg": tick_kimg, "batch": args.batch, "overrides": over,
                        "sample_n": args.sample_n}  # fmt: skip
                threads = VARIANTS[name].threads or args.threads
                r = {"variant": name, "round": round_, **run_case(spec, threads, f"{caches}/{name}")}
                if base:
                    r["on"] = base
                if "sec_per_kimg" in r:
                    if r.get("compile"):
                        r["compile_s"] = round(r["warmup_tick_s"] - r["sec_per_kimg"] * r["tick_kimg"], 1)
                    by_variant[name].append(r)
                    this_round = {k: rs[-1] for k, rs in by_variant.items() if rs and rs[-1]["round"] == round_}
                    _add_rates(r, flops if args.flops else None, this_round)
                    if args.steady_state and arch in STEADY_STATE:
                        r["steady_state_overrides"] = STEADY_STATE[arch]
                out.append(r)
                print(json.dumps(r), flush=True)
    if args.rounds > 1:
        for summary in summarise(by_variant, flops if args.flops else None):
            out.append(summary)
            print(json.dumps(summary), flush=True)
    return out


def tick_steps(spec: str, arch: str) -> int | None:
    """Steps per tick for ``arch`` from ``"16,wgan=4"``: the plain number for every architecture not named."""
    default: int | None = None
    named: dict[str, int] = {}
    for part in spec.split(","):
        name, _, steps = part.rpartition("=")
        if name:
            named[name] = int(steps)
        else:
            default = int(steps)
    return named.get(arch, default)


def _add_rates(r: dict, flops: dict | None, measured: dict[str, dict]) -> None:
    """GFLOP/s achieved and the speed-ups over the baselines among ``measured`` (records of the same round)."""
    if flops:
        r["gflop_per_kimg"] = flops["gflop_per_kimg"]
        r["achieved_gflops"] = round(flops["gflop_per_kimg"] / r["sec_per_kimg"], 1)
    for key, ref in (("speedup", BASELINE), ("speedup_vs_fp32", BASELINE_ALL_CORES)):
        if ref in measured and ref != r["variant"]:
            r[key] = round(measured[ref]["sec_per_kimg"] / r["sec_per_kimg"], 2)


def summarise(by_variant: dict[str, list[dict]], flops: dict | None) -> list[dict]:
    """One line per variant over its rounds: median s/kimg, its rates, the first round's compile time."""
    out, medians = [], {}
    for name, rounds in by_variant.items():
        if not rounds:
            continue
        first = rounds[0]
        s = {k: first[k] for k in ("architecture", "config", "device", "torch", "batch", "resolution", "precision",
                                   "channels_last", "compile", "threads", "tick_kimg", "on") if k in first}  # fmt: skip
        s.update(variant=name, summary=True, rounds=len(rounds),
                 sec_per_kimg=round(statistics.median(r["sec_per_kimg"] for r in rounds), 4),
                 sec_per_kimg_rounds=[r["sec_per_kimg"] for r in rounds],
                 peak_mem_gb=max(r["peak_mem_gb"] for r in rounds),
                 load_avg_before=min(r["load_avg_before"] for r in rounds),
                 load_avg_after=max(r["load_avg_after"] for r in rounds),
                 losses_finite=all(r["losses_finite"] for r in rounds))  # fmt: skip
        if "compile_s" in first:
            s["compile_s"] = first["compile_s"]
        medians[name] = s
        out.append(s)
    for s in out:
        _add_rates(s, flops, medians)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="all", help="architecture, comma-separated architectures, or 'all'")
    p.add_argument("--config", default=None, help="config name (default: smoke on CPU, E4 on CUDA)")
    p.add_argument("--data", default="phantom")
    p.add_argument("--device", default="auto")
    p.add_argument("--ticks", type=int, default=3, help="timed ticks after one warm-up tick")
    p.add_argument("--tick-kimg", type=float, default=None, help="kimg per tick (default: the config's)")
    p.add_argument("--tick-steps", default=None,
                   help="ticks of this many training steps (images per step counted as step_flops.py does); "
                        "'16,wgan=4' gives WGAN 4")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--variants", default="config",
                   help=f"comma-separated, from {', '.join(VARIANTS)}; or {', '.join(GROUPS)} (see above)")
    p.add_argument("--compile", action="store_true", help="compile the 'config' variant")
    p.add_argument("--flops", action="store_true", help="count each config's FLOPs per kimg; report GFLOP/s achieved")
    p.add_argument("--steady-state", action="store_true",
                   help=f"start the phases of {', '.join(STEADY_STATE)} that a short run never reaches at once")
    p.add_argument("--sample-n", type=int, default=256, help="images for the sampling speed; 0 = do not time it")
    p.add_argument("--rounds", type=int, default=1, help="measure every variant this many times, in turn")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads of every variant that sets none (default: the trainer's rule)")
    p.add_argument("--case", help=argparse.SUPPRESS)  # one case, in this process: how the parent runs each
    args = p.parse_args(argv)
    if args.case:
        spec = json.loads(args.case)
        try:
            result = bench_one(spec["arch"], spec["config"], spec["data"], spec["device"], spec["ticks"],
                               spec["tick_kimg"], spec["batch"], spec["overrides"], spec["sample_n"])
        except Exception as exc:  # noqa: BLE001 -- report it; the parent goes on to the next case
            result = {"architecture": spec["arch"], "config": spec["config"], "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(result), flush=True)
        return 0
    from echolib.devices import resolve_device
    from echolib.models.registry import available_architectures

    archs = available_architectures() if args.arch == "all" else [a for a in args.arch.split(",") if a]
    variants = [v for name in args.variants.split(",") if name for v in GROUPS.get(name, [name])]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        print(f"error: --variants: unknown {', '.join(unknown)}; choose from {', '.join([*VARIANTS, *GROUPS])}",
              file=sys.stderr)  # fmt: skip
        return 2
    dev = resolve_device(args.device)
    config = args.config or ("E4" if dev.type == "cuda" else "smoke")
    status = 0
    for arch in archs:
        results = bench_arch(arch, args, variants, config)
        status |= int(any("error" in r for r in results))
    return status


if __name__ == "__main__":
    sys.exit(main())
