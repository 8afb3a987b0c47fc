"""Generate built-in phantom frames: apical four-chamber B-mode-like PNGs, LV masks and a manifest.

Frames are named like the study's EchoNet frames (``PH<seed>H<heart>_f<k>.png``,
four per heart: k=0 first frame of a clip, 1 end-systole, 2 end-diastole, 3 last),
so datasets split by heart exactly as real data splits by video. ``manifest.csv``
records each frame's true cardiac phase and LV area; ``masks/`` holds the LV masks.
"""

from __future__ import annotations

import argparse
import time

HELP = "generate built-in phantom echo frames (+ LV masks and manifest.csv)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=2000, help="number of frames (4 per heart; default 2000)")
    p.add_argument("--size", type=int, default=128, help="frame side in pixels (default 128)")
    p.add_argument("--seed", type=int, default=0, help="seed: same seed, byte-identical frames (default 0)")
    p.add_argument("--out", required=True, help="new (or empty) output folder")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.data.phantom import generate

    start = time.perf_counter()
    out = generate(args.out, args.n, args.size, args.seed, workers=args.workers, progress=not args.quiet)
    seconds = time.perf_counter() - start
    print(f"wrote {args.n} phantom frames ({args.size}x{args.size}) to {out} in {seconds:.1f} s")
    return 0
