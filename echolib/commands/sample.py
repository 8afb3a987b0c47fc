"""Write PNG samples from a run's EMA generator (latest or chosen checkpoint).

This is how the study's 10,000-image synthetic dataset is made::

    python -m echolib sample runs/stylegan2_ada/E4 --n 10000 --out synthetic/ --truncation 1.0 --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "sample N images from a run (or a checkpoint file) into a folder of PNGs"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder (uses its latest checkpoint) or a checkpoint .pt file")
    p.add_argument("--n", type=int, default=64, help="number of images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--kimg", type=float, default=None, help="use the checkpoint nearest to this kimg")
    p.add_argument("--truncation", type=float, default=None, help="truncation psi (StyleGAN2)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--batch", type=int, default=64, help="images per forward pass")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the img_*.png files --out already holds (without it, such a folder is refused)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="model-specific sampling option, e.g. --opt steps=32 (diffusion), --opt temperature=0.9")


def run(args: argparse.Namespace) -> int:
    import yaml

    from echolib.errors import ConfigError
    from echolib.train.sampling import load_model, write_samples

    if args.n <= 0:
        raise ConfigError(f"--n must be a positive number of images, got {args.n}")
    if args.batch <= 0:
        raise ConfigError(f"--batch must be a positive number of images per forward pass, got {args.batch}")
    options = {}
    for item in args.opt:
        if "=" not in item:
            raise ConfigError(f"--opt {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        options[k] = yaml.safe_load(v)
    if args.truncation is not None:
        options["truncation"] = args.truncation
    earlier = sorted(Path(args.out).glob("img_*.png")) if Path(args.out).is_dir() else []
    if earlier and not args.overwrite:
        raise ConfigError(f"--out {args.out} already holds {len(earlier)} sampled images (img_*.png); "
                          "choose another folder, or pass --overwrite to replace them")
    model, path = load_model(args.run, kimg=args.kimg, device=args.device)
    for old in earlier:  # only after the model loaded: a failure leaves the earlier samples alone
        old.unlink()
    written = write_samples(model, args.n, args.out, seed=args.seed, batch=args.batch,
                            use_ema=not args.no_ema, **options)
    print(f"wrote {len(written)} images from {path} to {args.out}")
    return 0
