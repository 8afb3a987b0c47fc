"""Keep what a GPU session measured in ``book/measured/LABEL``, without images, checkpoints or paths.

The companion of ``bench/gpu_session.sh``: give it the ``session.tgz`` a lent
machine brought back (or the session's work folder) and a label naming the card
and the date; it prints one JSON line per folder or file it wrote:

    python bench/keep_session.py /path/to/files_at/session.tgz --label h100-2026-11-28

Then describe the runs in ``book/measured/README.md`` and plot them in their
chapters (``echolib.report.measured.measured_runs``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    from echolib.errors import EchoError
    from echolib.report.measured import keep_session

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("session", type=Path, help="session.tgz or the session's work folder (with runs/)")
    ap.add_argument("--label", required=True, help="folder name under --root, e.g. h100-2026-11-28")
    ap.add_argument("--root", type=Path, default=ROOT / "book" / "measured", help="default: book/measured")
    ap.add_argument("--overwrite", action="store_true", help="replace the files of an existing label")
    args = ap.parse_args(argv)
    try:
        kept = keep_session(args.session, args.root, args.label, overwrite=args.overwrite)
    except EchoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for run in kept.runs:
        print(json.dumps({"run": str(run), "files": sorted(p.name for p in run.iterdir())}))
    for path in kept.files:
        print(json.dumps({"file": str(path)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
