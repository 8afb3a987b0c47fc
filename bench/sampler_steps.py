"""Quality and speed of a trained diffusion run against the number of ODE steps; prints one JSON line per row.

For every sampler and step count, ``--n`` samples of the run's EMA network from
the same starting noise, scored against the held-out videos of the data the run
was trained on (the trainer's by-video split, read from the run's config), with
sampling time and images per second:

    python bench/sampler_steps.py runs/diffusion/cpu64 --samplers heun,dpm2m --steps 5,10,18 --n 256
    python bench/sampler_steps.py runs/diffusion/E4 --device cuda --n 1000 --extractor echo

``--real`` overrides the data (for a run folder moved from another machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--steps expects positive integers separated by commas, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    from echolib.errors import EchoError
    from echolib.report.sampler_steps import compare_steps
    from echolib.report.scoring import load_frames, run_heldout_videos
    from echolib.train.run_folder import RunFolder
    from echolib.train.sampling import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="run folder of a diffusion model (with checkpoints/ and config.yaml)")
    ap.add_argument("--real", help="the run's training data (default: as its run.json records)")
    ap.add_argument("--samplers", default="heun,dpm2m", help="comma-separated ODE solvers (heun, euler, dpm2m)")
    ap.add_argument("--steps", type=_ints, default=[5, 10, 18], help="comma-separated step counts")
    ap.add_argument("--n", type=int, default=256, help="samples per row")
    ap.add_argument("--metrics", default="fid,kid", help="comma-separated metrics of echolib.metrics")
    ap.add_argument("--extractor", default="echo", help="feature extractor (echo or inception-v3-compat)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        model, checkpoint = load_model(args.run, device=args.device)
        run = RunFolder(args.run)
        data = args.real or run.meta().get("data")
        if not data:
            raise EchoError(f"{run.meta_file}: no 'data' recorded; pass --real with the frames the run was trained on")
        frames = load_frames(data, model.resolution)
        splits = frames.split(run_heldout_videos(run, frames))
        device = torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else \
            f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        head = {"run": args.run.name, "arch": model.arch, "checkpoint": checkpoint.name, "device": device,
                "resolution": model.resolution, "n": args.n, "n_real": len(splits.heldout)}

        def emit(row: dict) -> None:  # one line per row as it is scored: a time limit keeps the rows before it
            print(json.dumps({**head, **{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}}),
                  flush=True)

        compare_steps(model, splits.heldout, args.samplers.split(","), args.steps, n=args.n,
                      metrics=args.metrics.split(","), extractor=args.extractor, seed=args.seed,
                      device=args.device, on_row=emit)
    except EchoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
