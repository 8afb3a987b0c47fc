"""Run a notebook once per configuration with papermill (resumable; continues past failures).

Example::

    python -m echolib sweep --notebook notebooks/stylegan2_ada.py --configs E1,E2,E3,E4 \\
        -p kimg 500 -p data ../shared/data/echonet-dynamic-128/frames -p device cuda
"""

from __future__ import annotations

import argparse

import yaml

HELP = "execute a notebook once per configuration with papermill into each run folder"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--notebook", required=True, help="Jupytext notebook, e.g. notebooks/stylegan2_ada.py")
    p.add_argument("--configs", required=True, help="comma-separated config names, e.g. E1,E2,E3")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="notebook parameter (value parsed as YAML: 500 is an int, cuda a string)")
    p.add_argument("--runs", default="runs", help="folder of run folders")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.pipeline.sweep import sweep

    params = {name: yaml.safe_load(value) for name, value in args.parameter}
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    outcomes = sweep(args.notebook, configs, params, runs=args.runs, progress=not args.no_progress)
    width = max(len(o.config) for o in outcomes)
    print("\nsweep summary")
    for o in outcomes:
        extra = f"  {o.error}" if o.error else ""
        print(f"  {o.config:<{width}}  {o.status:<7}  {o.seconds:7.1f} s  {o.notebook}{extra}")
    failed = [o.config for o in outcomes if o.status == "failed"]
    if failed:
        print(f"{len(failed)} configuration(s) failed: {', '.join(failed)}; rerun the same command to retry them")
        return 1
    return 0
