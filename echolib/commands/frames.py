"""Inspect a frame source (folder, zip or manifest): count, size, videos, splits."""

from __future__ import annotations

import argparse
import json

HELP = "summarise a folder/zip/manifest of frames (count, size, videos, split sizes)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="folder of PNGs, .zip of PNGs, or manifest.csv")
    p.add_argument("--resolution", type=int, default=None, help="resize frames to this square size")
    p.add_argument("--seed", type=int, default=0, help="seed of the by-video split")


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.data.frames import FrameDataset

    ds = FrameDataset(args.source, resolution=args.resolution)
    splits = ds.split(seed=args.seed)
    summary = {
        "source": str(args.source),
        "frames": len(ds),
        "resolution": ds.resolution,
        "videos": len(set(ds.video_ids)),
        "splits": {k: {"frames": len(v), "videos": len(set(v.video_ids))} for k, v in splits.items()},
        "mean_intensity": float(ds.images.float().mean()),
    }
    print(json.dumps(summary, indent=2))
    return 0
