"""Train an architecture with a named configuration; resumes when the run folder has a checkpoint.

Examples::

    python -m echolib train stylegan2_ada --config E4 --data frames/ --kimg 500 --out runs/stylegan2_ada/E4
    torchrun --nproc_per_node 4 -m echolib train stylegan2_ada --config E4 --data frames/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from echolib.config import merge, parse_overrides
from echolib.errors import ConfigError

HELP = "train an architecture (resumes automatically from the run folder's latest checkpoint)"


def configure(p: argparse.ArgumentParser) -> None:
    # lazy: keeps python -m echolib --help fast
    from echolib.models.registry import ARCHITECTURES

    p.add_argument("arch", help=f"architecture: {', '.join(ARCHITECTURES)} or one an installed package registers")
    p.add_argument("--config", default="smoke", help="config name in echolib/configs/<arch>/ (smoke, cpu64, E1..E8, ...; "
                   "`python -m echolib configs ARCH` lists them) or a YAML path")
    p.add_argument("--data", default="phantom", help="'phantom' (built-in) or a folder/.zip/manifest.csv of frames")
    p.add_argument("--out", default=None, help="run folder (default: runs/<arch>/<config>)")
    p.add_argument("--kimg", type=float, default=None, help="training length in kimg (overrides the config)")
    p.add_argument("--batch", type=int, default=None, help="global batch size (overrides the config)")
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides the config)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set model.r1_gamma=4 --set train.tick_kimg=2")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks (falls back to eager)")
    p.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.train.loop import Interrupted, train
    from echolib.train.run_config import load_config
    from echolib.train.run_folder import RunFolder

    overrides = parse_overrides(args.set)
    for key in ("batch", "seed"):
        if getattr(args, key) is not None:
            overrides = merge(overrides, {"train": {key: getattr(args, key)}})
    if args.compile:
        overrides = merge(overrides, {"train": {"compile": True}})
    run_cfg = load_config(args.arch, args.config, overrides)
    out = Path(args.out) if args.out else Path("runs") / args.arch / run_cfg.name
    if args.no_resume and RunFolder(out).has_checkpoints():
        raise ConfigError(f"{out} already holds checkpoints and --no-resume was given")
    try:
        path = train(run_cfg, args.data, out, device=args.device, kimg=args.kimg, progress=not args.no_progress)
    except Interrupted as exc:
        print(f"{exc}. Run the same command again to resume.", file=sys.stderr)
        return 128 + exc.signum
    print(f"run folder: {path}")
    return 0
