"""Downstream utility of a synthetic set: a classifier trained on real, synthetic and both, tested on real videos.

Task ``phase``: tell end-systolic (ES) from end-diastolic (ED) frames. One small
fixed classifier (``echolib.metrics.utility``) is trained in turn on the real
training frames, on the synthetic frames and on both, and tested on the ES and
ED frames of the held-out real videos (the run's, read from ``--run`` or the
synthetic set's datasheet, else the trainer's default split). Accuracy and AUC
come with 95 % intervals over videos. Labels: a manifest's ``phase_label``, the
synthetic set's ``condition`` column, or the study's file-name rule on its
shared frames (``_f1`` ES, ``_f2`` ED). Examples::

    python -m echolib utility --real phantom --synthetic syn/ --json
    python -m echolib utility --real ../shared/data/echonet-dynamic-128/frames --synthetic syn/ --records u.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from echolib.errors import ConfigError

HELP = "train on synthetic, test on real: an ES/ED classifier from real, synthetic and both frames"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--real", required=True, help="real frames: 'phantom', a folder, zip or manifest.csv")
    p.add_argument("--synthetic", required=True, help="a synthetic set: synthesize's folder, or labelled frames")
    p.add_argument("--task", default="phase", help="the downstream task (phase: ES against ED)")
    p.add_argument("--run", default=None, help="the run whose held-out videos are the test (default: the datasheet's)")
    p.add_argument("--n-train", type=int, default=None, help="cap each training set at this many frames (seeded)")
    p.add_argument("--seed", type=int, default=0, help="seed of the classifier and of any cap")
    p.add_argument("--steps", type=int, default=None,
                   help="optimiser steps of each classifier (default: the fixed recipe's; recorded in each record)")
    p.add_argument("--records", default=None, help="append the records to this JSONL file")
    p.add_argument("--json", action="store_true", help="print one JSON record per line instead of a table")


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.metrics.records import append_records
    from echolib.metrics.utility import Recipe
    from echolib.pipeline.utility import run_utility

    recipe = Recipe()
    if args.steps is not None:
        if args.steps < 1:
            raise ConfigError(f"--steps must be a positive number of optimiser steps, got {args.steps}")
        recipe = dataclasses.replace(recipe, steps=args.steps)
    records, sets = run_utility(args.real, args.synthetic, task=args.task, run=args.run, n_train=args.n_train,
                                seed=args.seed, recipe=recipe)
    if args.records:
        append_records(args.records, records)
    if args.json:
        for r in records:
            print(json.dumps(r), flush=True)
        return 0
    print(f"test: {len(sets.test)} ES/ED frames of {len(set(sets.test.groups))} real videos ({sets.split}); "
          f"labels: real from {sets.real_labels}, synthetic from {sets.synthetic_labels}")
    print(f"{'trained on':12s} {'frames':>7s} {'accuracy':>22s} {'AUC':>22s}")
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        by.setdefault(r["train_set"], {})[r["metric"]] = r
    for name, pair in by.items():
        acc, auc = pair["phase_accuracy"], pair["phase_auc"]
        print(f"{name:12s} {acc['n_train']:7d} {_cell(acc):>22s} {_cell(auc):>22s}")
    return 0


def _cell(record: dict) -> str:
    lo, hi = record["interval"]
    return f"{record['value']:.3f} [{lo:.3f}, {hi:.3f}]"
