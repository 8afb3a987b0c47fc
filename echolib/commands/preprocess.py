"""Preprocess a public dataset into 128x128 training frames + manifest.csv.

``python -m echolib preprocess echonet --root EchoNet-Dynamic --out data/echonet``
reads the official layout (Videos/, FileList.csv, VolumeTracings.csv). With
``--recipe study`` the frames are exactly the study's (first, most-bright
"systole", least-bright "diastole", last); the default recipe takes ES/ED from
the experts' tracings where present. Reruns resume: finished videos are skipped.
"""

from __future__ import annotations

import argparse

HELP = "EchoNet-Dynamic videos -> 128x128 frames + manifest.csv (resumable, parallel)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=["echonet"], help="which dataset layout (echonet: EchoNet-Dynamic)")
    p.add_argument("--root", required=True, help="dataset folder (Videos/, FileList.csv, VolumeTracings.csv)")
    p.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
    p.add_argument("--recipe", choices=["default", "study"], default="default",
                   help="study: the study's frame choice exactly; default: expert ED/ES where traced")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--limit", type=int, default=None, help="only the first N videos of FileList.csv")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.data.echonet import preprocess

    result = preprocess(args.root, args.out, recipe=args.recipe, workers=args.workers, limit=args.limit,
                        progress=not args.quiet)
    print(f"{result.out}: {result.frames} frames in manifest.csv; videos processed {result.processed}, "
          f"already done {result.skipped}, failed {result.errors}" + (" (see errors.csv)" if result.errors else ""))
    return 0
