"""Make a synthetic dataset from a run: N samples that pass a privacy filter, a manifest and a datasheet.

Draws from the run's EMA generator until ``--n`` samples passed and writes them
as PNGs into ``--out`` with ``manifest.csv`` (every draw: file, seed, condition,
nearest-training distances, flagged, passed), ``datasheet.json`` and a
``README.md`` datasheet (model, checkpoint sha256, sampler options, the filter's
threshold and percentile, drawn and rejected counts, the evaluation of the kept
set against the run's held-out videos with intervals, licence terms, what the
set must not be used for). Examples::

    python -m echolib synthesize runs/diffusion/cpu64 --n 10000 --out synthetic/ --privacy-filter
    python -m echolib synthesize runs/diffusion/smoke_cond --n 64 --out syn/ --condition ES,ED --opt steps=10

``--privacy-filter`` rejects a draw whose nearest training frame is closer than
the ``--percentile`` (default 5 %) closest frames of unseen patients are, in the
feature space or in pixel space (``echolib.metrics.memorization``). A non-empty
``--out`` is refused unless it holds an earlier synthesize of the same settings,
which a rerun continues (to a larger ``--n`` too); ``--overwrite`` replaces an
earlier synthesize of other settings.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from echolib.errors import ConfigError

HELP = "draw a filtered synthetic dataset from a run, with its manifest and datasheet (resumable)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder (its latest checkpoint's EMA generator)")
    p.add_argument("--n", type=int, required=True, help="number of samples to keep")
    p.add_argument("--out", required=True, help="output folder (empty, or an earlier synthesize to continue)")
    p.add_argument("--privacy-filter", action="store_true",
                   help="reject draws at or below the memorisation threshold in either space")
    p.add_argument("--seed", type=int, default=0, help="random seed of the draws")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="model-specific sampling option, e.g. --opt steps=18 --opt sampler=dpm2m")
    p.add_argument("--condition", default=None,
                   help="phase-conditioned models: labels drawn in turn, e.g. ES,ED (default: training frequencies)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier synthesize of other settings in --out")
    p.add_argument("--data", default=None, help="the run's training data (default: as its run.json names it)")
    p.add_argument("--percentile", type=float, default=0.05,
                   help="share of unseen patients' frames the threshold flags (default 0.05)")
    p.add_argument("--extractor", default="echo", help="feature space of the filter and the evaluation (default echo)")
    p.add_argument("--batch", type=int, default=64, help="images per draw (part of the seeds' meaning)")
    p.add_argument("--eval-n", type=int, default=2000,
                   help="kept samples scored against the held-out videos (default 2000, at most --n; 0: none)")
    p.add_argument("--max-draws", type=int, default=None, help="give up after this many draws (default 20 x --n)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (there is none unless stderr is a terminal)")


def parse_options(items: list[str]) -> dict:
    """``KEY=VALUE`` sampling options with YAML values (``steps=10`` is an int)."""
    options = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--opt {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        options[key.strip()] = yaml.safe_load(value)
    return options


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.pipeline.synthesize import synthesize

    if args.eval_n < 0:
        raise ConfigError(f"--eval-n must be 0 (no evaluation) or positive, got {args.eval_n}")
    conditions = None if args.condition is None else [c.strip() for c in args.condition.split(",") if c.strip()]
    done = synthesize(args.run, args.n, args.out, privacy_filter=args.privacy_filter, seed=args.seed,
                      options=parse_options(args.opt), conditions=conditions, overwrite=args.overwrite,
                      data=args.data, percentile=args.percentile, extractor=args.extractor, batch=args.batch,
                      device=args.device, n_eval=args.eval_n, max_draws=args.max_draws,
                      progress=not args.no_progress and sys.stderr.isatty())
    counts = done.datasheet["counts"]
    print(f"{done.out}: {counts['kept']} samples kept of {counts['drawn']} drawn ({counts['rejected']} rejected); "
          f"datasheet in README.md and datasheet.json")
    return 0
