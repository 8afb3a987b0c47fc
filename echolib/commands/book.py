"""Build the HTML book: execute every chapter notebook (papermill), then Jupyter Book 1.x.

``make book`` runs this on the built-in phantom; point it at real frames with
``--data ../shared/data/echonet-dynamic-128/frames`` (``make book DATA=...``).
"""

from __future__ import annotations

import argparse

HELP = "execute the chapter notebooks and render the book into _build/html"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="phantom", help="'phantom' (built-in) or a folder/.zip/manifest of real frames")
    p.add_argument("--runs", default="runs", help="folder of run folders (finished runs are reused)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--only", default=None, help="comma-separated chapter names to (re)execute")
    p.add_argument("--no-execute", action="store_true", help="render the already executed notebooks only")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.pipeline.book import build

    only = [s.strip() for s in args.only.split(",")] if args.only else None
    index = build(args.data, args.runs, device=args.device, only=only, execute_notebooks=not args.no_execute,
                  progress=not args.no_progress)
    print(f"book: {index}")
    return 0
