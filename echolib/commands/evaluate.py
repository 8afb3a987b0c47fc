"""Compare generated images with real frames: FID, KID, precision/recall, JSD, SSIM, PSNR, MS-SSIM,
memorization and a classifier two-sample test.

The feature extractor is the standard ``inception-v3-compat`` by default (its
weights file must be present: the error says where to put it); ``--extractor
echo`` uses echolib's offline echocardiogram extractor. Examples::

    python -m echolib evaluate --real ../shared/data/echonet-dynamic-128/frames --fake samples/ --extractor echo --json
    python -m echolib evaluate --real frames/ --fake runs/a/samples runs/b/samples --references --extractor echo
    python -m echolib evaluate --real frames/ --fake samples/ --metrics fid,kid
    python -m echolib evaluate --real frames/ --runs runs/ --extractor echo --n 2000

Every value is appended as a record to ``--records`` (never overwriting earlier
lines). ``--references`` adds the study's StyleGAN2-ADA E4 samples and the
built-in phantom as reference rows, evaluated by the same code.

``--runs DIR`` evaluates every run folder under ``DIR`` (``<arch>/<config>`` with a
checkpoint) that was trained on ``--real``, as the comparison chapter does: ``--n``
samples (default 1000) of each run's latest EMA generator against the held-out videos
of ``--real`` (the trainer's by-video split, which it never trained on), with the
training split as the memorisation bank. Each run's records are appended to its own
``metrics.jsonl`` (``source: compare``), and a run already evaluated this way at its
latest checkpoint is not evaluated again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

HELP = "compare generated images with real frames (FID, KID, prc, JSD, SSIM, PSNR, MS-SSIM, memorization, C2ST)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--real", required=True, help="real frames: folder, .zip, manifest.csv or 'phantom'")
    p.add_argument("--fake", nargs="+", default=[], help="generated images: one or more folders/zips/manifests")
    p.add_argument("--runs", default=None,
                   help="evaluate every run folder under this folder trained on --real, against its held-out videos")
    p.add_argument("--resolution", type=int, default=None,
                   help="with --runs: the resolution every run is measured at, samples resized to it (default 128)")
    p.add_argument("--holdout", type=float, default=None,
                   help="with --runs: the held-out share of videos the runs were trained with (train.holdout, "
                        "default 0.1)")
    p.add_argument("--train", default=None, help="the model's training frames, for memorization (default: --real)")
    p.add_argument("--extractor", default="inception-v3-compat",
                   help="feature extractor: inception-v3-compat (default; needs its weights file, see "
                        "$ECHOLIB_INCEPTION_WEIGHTS) or echo (offline, shipped with echolib)")
    p.add_argument("--metrics", default=None, help="comma-separated subset (default: all but lpips)")
    p.add_argument("--n", type=int, default=None, help="use at most this many images per set (seeded subset)")
    p.add_argument("--seed", type=int, default=0, help="seed of subsets, pairings and folds")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--references", action="store_true", help="add the study's E4 samples and the phantom as rows")
    p.add_argument("--run", default=None, help="run label for the records (default: the --fake path)")
    p.add_argument("--kimg", type=float, default=None, help="training length of the evaluated model, for the records")
    p.add_argument(
        "--records",
        default=None,
        help="metrics file to append to (default: $ECHOLIB_RUNS/evaluate/metrics.jsonl, runs/ if unset)",
    )
    p.add_argument(
        "--gallery", default=None, help="write the closest generated/training pairs of the first --fake here (PNG)"
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached features")
    p.add_argument("--json", action="store_true", help="print one JSON record per line instead of a table")


def run(args: argparse.Namespace) -> int:
    from echolib.data.sources import resolve_data
    from echolib.errors import ConfigError
    from echolib.metrics import append_records, evaluate
    from echolib.metrics.inputs import as_image_set

    if args.runs is not None:
        return _evaluate_runs(args)
    only_with_runs = [f"--{k}" for k in ("resolution", "holdout") if getattr(args, k) is not None]
    if only_with_runs:
        verb = "applies" if len(only_with_runs) == 1 else "apply"
        raise ConfigError(f"{' and '.join(only_with_runs)} only {verb} with --runs (evaluating run folders)")
    if not args.fake and not args.references:
        raise ConfigError("give --fake FOLDER (one or more), --references or --runs FOLDER")
    real = as_image_set(resolve_data(args.real, progress=False), n=args.n, seed=args.seed, label=str(args.real))
    train = as_image_set(resolve_data(args.train, progress=False), label=str(args.train)) if args.train else None
    sets: dict[str, object] = {}
    for fake in args.fake:
        sets[args.run if args.run and len(args.fake) == 1 else str(fake)] = resolve_data(fake, progress=False)
    if args.references:
        from echolib.metrics.references import reference_sources

        given = {Path(str(src)).resolve() for src in sets.values()}
        sets.update({k: v for k, v in reference_sources().items() if Path(str(v)).resolve() not in given})
    records_path = (
        Path(args.records)
        if args.records
        else Path(os.environ.get("ECHOLIB_RUNS", "runs")) / "evaluate" / ("metrics.jsonl")
    )
    metrics = args.metrics.split(",") if args.metrics else None
    all_records = []
    for label, source in sets.items():
        records = evaluate(
            real,
            source,
            metrics=metrics,
            extractor=args.extractor,
            train=train,
            n=args.n,
            seed=args.seed,
            device=args.device,
            kimg=None if label.startswith("reference:") else args.kimg,
            run=label,
            cache=not args.no_cache,
        )
        append_records(records_path, records)
        all_records += records
        if args.json:
            for r in records:
                print(json.dumps(r), flush=True)
    if not args.json:
        print(format_table(all_records))
        print(f"\n{len(all_records)} records appended to {records_path}", file=sys.stderr)
    if args.gallery and args.fake:
        _write_gallery(Path(args.gallery), real if train is None else train, args, sets)
    return 0


def _evaluate_runs(args: argparse.Namespace) -> int:
    """Every run trained on ``--real``, scored against the held-out videos that run never saw."""
    from echolib.errors import ConfigError, DataError
    from echolib.progress import progress_bar
    from echolib.report import compare

    given = [f"--{k}" for k in ("fake", "train", "run", "kimg", "records", "gallery") if getattr(args, k)]
    given += ["--references"] if args.references else []
    if given:
        raise ConfigError(f"--runs takes its samples, training frames and records from each run folder; "
                          f"leave out {', '.join(given)}")
    if not Path(args.runs).is_dir():
        raise DataError(f"--runs {args.runs}: no such folder")
    if args.n is not None and args.n < 2:
        raise ConfigError(f"--n must be at least 2 with --runs, got {args.n}")
    resolution = 128 if args.resolution is None else args.resolution
    holdout = 0.1 if args.holdout is None else args.holdout
    splits = compare.evaluation_splits(args.real, resolution=resolution, holdout=holdout)
    runs = compare.find_runs(args.runs, splits)
    if not runs:
        raise DataError(f"--runs {args.runs}: no run folder (<arch>/<config>/checkpoints) was trained on "
                        f"{args.real}; `python -m echolib train ... --data {args.real} --out {args.runs}/<arch>/<config>`")
    metrics = tuple(args.metrics.split(",")) if args.metrics else compare.DEFAULT_METRICS
    n = args.n or 1000
    all_records = []
    for run in progress_bar(runs, desc="runs", unit="run"):
        records = compare.earlier_evaluation(run, splits, metrics, n=n, extractor=args.extractor, seed=args.seed)
        if records is None:  # not evaluated like this at its latest checkpoint: draw the samples
            images = compare.run_samples(run, n, size=resolution, seed=args.seed, device=args.device,
                                         conditions_from=splits.heldout)
            records = compare.evaluate_run(run, images, splits, metrics, extractor=args.extractor, seed=args.seed,
                                           device=args.device)
        records = [{**r, "run": f"{run.parent.name}/{run.name}"} for r in records]
        all_records += records
        if args.json:
            for r in records:
                print(json.dumps(r), flush=True)
    if not args.json:
        print(format_table(all_records))
        print(f"\n{len(runs)} runs against the {len(splits.heldout)} held-out frames of {args.real}; "
              "records appended to each run's metrics.jsonl", file=sys.stderr)
    return 0


def format_table(records: list[dict]) -> str:
    """Rows: evaluated sets; columns: metrics (in record order); then the extractor line."""
    runs = list(dict.fromkeys(r["run"] for r in records))
    metrics = list(dict.fromkeys(r["metric"] for r in records))
    cell = {(r["run"], r["metric"]): r for r in records}
    width = max([len("set")] + [len(str(x)) for x in runs])
    cols = [max(len(m), 9) for m in metrics]
    lines = ["  ".join(["set".ljust(width)] + [m.rjust(c) for m, c in zip(metrics, cols)])]
    for run_label in runs:
        row = [str(run_label).ljust(width)]
        for m, c in zip(metrics, cols):
            r = cell.get((run_label, m))
            v = None if r is None else r["value"]
            row.append(("-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}").rjust(c))
        lines.append("  ".join(row))
    first = records[0] if records else {}
    feats = [r for r in records if r["extractor"] not in ("pixel",) and r.get("extractor_sha256")]
    if feats:
        lines.append(
            f"\nfeature extractor: {feats[0]['extractor']} (sha256 {feats[0]['extractor_sha256'][:16]}...), "
            f"n_real={first.get('n_real')}"
        )
    lines.append(
        "ssim/psnr: random real/generated pairs (the study's pairing; cannot rank models); "
        "ssim_nn/psnr_nn: nearest real image; jsd: whole image, jsd_sector: inside the sector mask"
    )
    return "\n".join(lines)


def _write_gallery(path: Path, train, args: argparse.Namespace, sets: dict) -> None:
    from echolib.metrics import memorization
    from echolib.metrics.evaluate import FeatureCache, resolve_device
    from echolib.metrics.inputs import as_image_set
    from echolib.report.memorization import plot_closest_pairs

    fake = as_image_set(next(iter(sets.values())), n=args.n, seed=args.seed + 1)
    encode = FeatureCache(args.extractor, resolve_device(args.device), not args.no_cache)
    result = memorization.memorization(encode(fake), encode(train), train.video_ids)
    fig = plot_closest_pairs(memorization.closest_pairs(result, fake.images, train.images, k=8))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"gallery written to {path}", file=sys.stderr)
