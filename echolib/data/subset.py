"""A smaller copy of a frame folder made of whole videos, for machines that take little data.

A lent GPU machine receives at most 64 MiB with each call, so its benchmarks
and trial runs see a subset of the frames. Whole videos are kept (chosen by a
seeded hash of the video id, the same hash the by-video splits use) so the
trainer's held-out videos stay unseen hearts rather than neighbours of
training frames.

    python -m echolib.data.subset ../shared/data/echonet-dynamic-128/frames .gpu-data/frames --n 5000
"""

from __future__ import annotations

import argparse
import shutil
from collections import defaultdict
from pathlib import Path

from echolib.data.frames import unit_hash
from echolib.data.manifest import IMAGE_SUFFIXES, video_id_of
from echolib.errors import DataError


def choose_videos(names: list[str], n: int, seed: int = 0) -> list[str]:
    """File names of whole videos, in a seeded order, until at least ``n`` frames (all if fewer)."""
    if n <= 0:
        raise DataError(f"--n must be positive, got {n}")
    by_video: dict[str, list[str]] = defaultdict(list)
    for name in names:
        by_video[video_id_of(name)].append(name)
    chosen: list[str] = []
    for vid in sorted(by_video, key=lambda v: (unit_hash(f"subset:{seed}:{v}"), v)):
        if len(chosen) >= n:
            break
        chosen += sorted(by_video[vid])
    return chosen


def copy_subset(source: str | Path, dest: str | Path, n: int, seed: int = 0) -> list[Path]:
    """Copy the chosen frames into ``dest`` (created; files already there with the same size are kept)."""
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise DataError(f"{source}: not a folder of frames")
    names = sorted(p.name for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not names:
        raise DataError(f"{source}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name in choose_videos(names, n, seed):
        src, dst = source / name, dest / name
        if not (dst.exists() and dst.stat().st_size == src.stat().st_size):
            shutil.copyfile(src, dst)
        out.append(dst)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="folder of frames named <video>_f<k>.png")
    p.add_argument("dest", help="folder to create")
    p.add_argument("--n", type=int, default=5000, help="at least this many frames (whole videos)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    files = copy_subset(args.source, args.dest, args.n, args.seed)
    size = sum(f.stat().st_size for f in files)
    videos = len({video_id_of(f.name) for f in files})
    print(f"{len(files)} frames of {videos} videos, {size / 2**20:.1f} MiB in {args.dest}")


if __name__ == "__main__":
    main()
