"""Write PNG samples from a run's EMA generator (latest or chosen checkpoint).

This is how the study's 10,000-image synthetic dataset is made::

    python -m echolib sample runs/stylegan2_ada/E4 --n 10000 --out synthetic/ --truncation 1.0 --seed 0

An image-conditioned model (Pix2Pix) translates maps of real frames: by default
those of the run's held-out videos, read from the data its ``run.json`` names;
``--conditions-from FRAMES`` takes every frame of another folder instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from echolib.errors import ConfigError, DataError

if TYPE_CHECKING:  # imported when a command runs: `python -m echolib --help` stays quick
    import torch

    from echolib.models.base import GenerativeModel

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
    p.add_argument("--conditions-from", default=None, metavar="FRAMES",
                   help="image-conditioned models (pix2pix): translate the maps of these frames "
                        "(default: the run's held-out frames)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="model-specific sampling option, e.g. --opt steps=32 (diffusion), --opt temperature=0.9")


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
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
    if model.image_conditioned:
        options["condition"] = _condition_maps(model, args.run, args.conditions_from)
    elif args.conditions_from is not None:
        raise ConfigError(f"--conditions-from: a {model.arch} model translates no maps of frames")
    for old in earlier:  # only after the model loaded: a failure leaves the earlier samples alone
        old.unlink()
    written = write_samples(model, args.n, args.out, seed=args.seed, batch=args.batch,
                            use_ema=not args.no_ema, **options)
    print(f"wrote {len(written)} images from {path} to {args.out}")
    return 0


def _condition_maps(model: GenerativeModel, run: str, frames_from: str | None) -> torch.Tensor:
    """The maps ``model`` translates: of ``frames_from``'s frames, else of the run's held-out frames."""
    # lazy: keeps python -m echolib --help fast
    from echolib.data.frames import FrameDataset
    from echolib.data.sources import resolve_data
    from echolib.report import scoring
    from echolib.train.conditions import condition_maps
    from echolib.train.run_folder import RunFolder

    if frames_from is not None:
        frames = FrameDataset(resolve_data(frames_from, size=model.resolution, progress=False),
                              resolution=model.resolution)
        return condition_maps(model, frames).to(model.device)
    folder = RunFolder(Path(run).parent.parent if Path(run).is_file() else run)
    data = folder.meta().get("data")
    if not data or (data != "phantom" and not Path(data).exists()):
        raise DataError(f"{run}: a {model.arch} model translates maps of frames, and the data it trained on "
                        f"({data or 'not named in its run.json file'}) is not here; pass --conditions-from FRAMES")
    every = scoring.load_frames(data, model.resolution)
    held = every.split(scoring.run_heldout_videos(folder, every)).heldout
    return condition_maps(model, held).to(model.device)
