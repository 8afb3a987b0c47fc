"""Preprocess a public dataset into 128x128 training frames + manifest.csv.

``python -m echolib preprocess echonet --root EchoNet-Dynamic --out data/echonet``
reads the official layout (Videos/, FileList.csv, VolumeTracings.csv). With
``--recipe study`` the frames are exactly the study's (first, most-bright
"systole", least-bright "diastole", last); the default recipe takes ES/ED from
the experts' tracings where present. Reruns resume: finished videos are skipped.

``python -m echolib preprocess study-frames --root FRAMES --out DIR`` writes
``DIR/manifest.csv`` for a folder of the study's ``<video>_f<k>.png`` frames (the
shared EchoNet frames): every frame with its phase by the study's name rule
(``_f1`` systole = ES, ``_f2`` diastole = ED), pointing at the frames where they
are. A phase-conditioned model or the phase utility test then trains on
``--data DIR/manifest.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "EchoNet-Dynamic videos -> 128x128 frames + manifest.csv (resumable, parallel); or label the study's frames"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=["echonet", "study-frames"],
                   help="echonet: EchoNet-Dynamic videos; study-frames: a folder of the study's <video>_f<k>.png "
                        "frames, labelled by its name rule (no frame copied)")
    p.add_argument("--root", required=True,
                   help="echonet: Videos/, FileList.csv, VolumeTracings.csv; study-frames: the frames folder")
    p.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
    p.add_argument("--recipe", choices=["default", "study"], default="default",
                   help="study: the study's frame choice exactly; default: expert ED/ES where traced")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--limit", type=int, default=None, help="only the first N videos of FileList.csv")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.data.echonet import preprocess, write_study_manifest
    from echolib.data.manifest import read_manifest

    if args.dataset == "study-frames":
        out = write_study_manifest(args.root, Path(args.out) / "manifest.csv")
        print(f"{out}: {len(read_manifest(out))} frames of {args.root} with the study's phase labels (_f1 ES, _f2 ED, others 'other'); "
              "no frame copied")
        return 0

    result = preprocess(args.root, args.out, recipe=args.recipe, workers=args.workers, limit=args.limit,
                        progress=not args.quiet)
    print(f"{result.out}: {result.frames} frames in manifest.csv; videos processed {result.processed}, "
          f"already done {result.skipped}, failed {result.errors}" + (" (see errors.csv)" if result.errors else ""))
    return 0
