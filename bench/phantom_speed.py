"""Time the phantom: 10,000 frames at 128x128 written as PNGs (+ masks and manifest).

Prints one JSON line: {"n", "size", "seconds", "frames_per_s", "cpu_count", "workers", "cpu_seconds"}.
The target is under 60 s on 2 CPU cores. ``cpu_seconds`` (this process and its
workers) tells what the run costs when the cores are shared: on a busy machine the
wall time says more about the neighbours than about the phantom.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from echolib.data.phantom import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phantom-bench-") as tmp:
        start = time.perf_counter()
        cpu_start = _cpu_seconds()
        generate(Path(tmp) / "frames", args.n, args.size, args.seed, workers=args.workers, progress=False)
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_start
    print(json.dumps({
        "n": args.n,
        "size": args.size,
        "seconds": round(seconds, 2),
        "frames_per_s": round(args.n / seconds, 1),
        "cpu_count": os.cpu_count(),
        "workers": args.workers,
        "cpu_seconds": round(cpu, 2),
    }))


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
