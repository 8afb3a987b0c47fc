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

``--runs DIR`` scores every run folder under ``DIR`` (``<arch>/<config>`` with a
checkpoint) that was trained on ``--real``, as the comparison chapter does: ``--n``
samples (default 1000) of each run's latest EMA generator against the videos that
run held out, read from its own ``run.json`` (never frames it trained on), with
its training frames as the memorisation bank. Runs that held out the same videos
share one protocol, and the reference rows (training frames of videos the
extractor never saw, the study's published samples, the phantom) are scored
under it too, on the same number of images: every printed record names its
``row``, ``real_fingerprint``, ``n_real``, ``n_fake``, extractor and weights'
sha256, and ``extractor_overlap``. Each run's records are appended to its own
``metrics.jsonl`` (``source: compare``), and a run already scored under the same
protocol at its latest checkpoint is not sampled again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from echolib.errors import ConfigError, DataError

HELP = "compare generated images with real frames (FID, KID, prc, JSD, SSIM, PSNR, MS-SSIM, memorization, C2ST)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--real", required=True, help="real frames: folder, .zip, manifest.csv or 'phantom'")
    p.add_argument("--fake", nargs="+", default=[], help="generated images: one or more folders/zips/manifests")
    p.add_argument("--runs", default=None,
                   help="evaluate every run folder under this folder trained on --real, against its held-out videos")
    p.add_argument("--resolution", type=int, default=None,
                   help="with --runs: the resolution every run is measured at, samples resized to it (default 128)")
    p.add_argument("--train", default=None, help="the model's training frames, for memorization (default: --real)")
    p.add_argument("--extractor", default="inception-v3-compat",
                   help="feature extractor: inception-v3-compat (default; needs its weights file, see "
                        "$ECHOLIB_INCEPTION_WEIGHTS) or echo (offline, shipped with echolib)")
    p.add_argument("--metrics", default=None, help="comma-separated subset (default: all but lpips)")
    p.add_argument("--n", type=int, default=None, help="use at most this many images per set (seeded subset)")
    p.add_argument("--seed", type=int, default=0, help="seed of subsets, pairings and folds")
    p.add_argument("--replicates", type=int, default=None,
                   help="half-samples of the videos behind each 95%% interval (default 50; 0: no intervals)")
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
    # lazy: keeps python -m echolib --help fast
    from echolib.data.sources import resolve_data
    from echolib.metrics import append_records, evaluate
    from echolib.metrics.inputs import as_image_set
    from echolib.train.run_folder import RunFolder

    if args.runs is not None:
        return _evaluate_runs(args)
    if args.resolution is not None:
        raise ConfigError("--resolution only applies with --runs (evaluating run folders)")
    if not args.fake and not args.references:
        raise ConfigError("give --fake FOLDER (one or more), --references or --runs FOLDER")
    real = as_image_set(resolve_data(args.real, progress=False), n=args.n, seed=args.seed, label=str(args.real))
    train = as_image_set(resolve_data(args.train, progress=False), label=str(args.train)) if args.train else None
    sets: dict[str, object] = {}
    for fake in args.fake:
        sets[args.run if args.run and len(args.fake) == 1 else str(fake)] = resolve_data(fake, progress=False)
    if args.references:
        # lazy: keeps python -m echolib --help fast
        from echolib.metrics.references import reference_sources

        given = {Path(str(src)).resolve() for src in sets.values()}
        sets.update({k: v for k, v in reference_sources().items() if Path(str(v)).resolve() not in given})
    records_path = (
        Path(args.records)
        if args.records
        else RunFolder(Path(os.environ.get("ECHOLIB_RUNS", "runs")) / "evaluate").metrics_file
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
            replicates=_replicates(args),
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


def _replicates(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.metrics.intervals import DEFAULT_REPLICATES

    if args.replicates is not None and args.replicates < 0:
        raise ConfigError(f"--replicates must be 0 (no intervals) or a positive number, got {args.replicates}")
    return DEFAULT_REPLICATES if args.replicates is None else args.replicates


def _evaluate_runs(args: argparse.Namespace) -> int:
    """Every run trained on ``--real`` and the reference rows, scored under one protocol per held-out set."""
    # lazy: keeps python -m echolib --help fast
    from echolib.metrics.references import study_samples
    from echolib.report import scoring

    given = [f"--{k}" for k in ("fake", "train", "run", "kimg", "records", "gallery") if getattr(args, k)]
    given += ["--references"] if args.references else []
    if given:
        raise ConfigError(f"--runs takes its samples, training frames and records from each run folder, and adds "
                          f"the reference rows itself; leave out {', '.join(given)}")
    if not Path(args.runs).is_dir():
        raise DataError(f"--runs {args.runs}: no such folder")
    if args.n is not None and args.n < 2:
        raise ConfigError(f"--n must be at least 2 with --runs, got {args.n}")
    frames = scoring.load_frames(args.real, 128 if args.resolution is None else args.resolution)
    groups, left_out = scoring.comparable_runs(args.runs, frames)
    for label, why in left_out.items():
        print(f"left out {label}: {why}", file=sys.stderr)
    if not groups:
        raise DataError(f"--runs {args.runs}: no run folder (<arch>/<config>/checkpoints) trained on {args.real} can "
                        f"be scored; `python -m echolib train ... --data {args.real} --out {args.runs}/<arch>/<config>`")
    metrics = tuple(args.metrics.split(",")) if args.metrics else None
    all_records = []
    for splits, runs in groups:
        protocol = scoring.make_protocol(splits, args.n or 1000, extractor=args.extractor, seed=args.seed,
                                         replicates=_replicates(args), device=args.device,
                                         **({"metrics": metrics} if metrics else {}))
        records, _ = scoring.score_runs(runs, protocol, splits, device=args.device, progress=not args.json)
        refs, _, ref_left = scoring.reference_records(splits, protocol, study_samples())
        for name, why in ref_left.items():
            print(f"reference row {name!r} left out: {why}", file=sys.stderr)
        for r in records + refs:
            if args.json:
                print(json.dumps(_printable(r)), flush=True)
        all_records += records + refs
        if not args.json:
            print(f"{protocol.description}; {protocol.n_fake} images per row; protocol {protocol.id}",
                  file=sys.stderr)
    if not args.json:
        print(format_table(all_records))
    return 0


def _printable(record: dict) -> dict:
    """A record as printed: its row first, the fields every row of the table shares, then the rest."""
    first = ("row", "metric", "value", "interval", "n_real", "n_fake", "real_fingerprint", "extractor",
             "extractor_sha256", "extractor_overlap", "protocol")
    return {**{k: record.get(k) for k in first}, **{k: v for k, v in record.items() if k not in first}}


def format_table(records: list[dict]) -> str:
    """Rows: evaluated sets; columns: metrics (in record order); then the extractor line."""
    runs = list(dict.fromkeys(r.get("row") or r["run"] for r in records))
    metrics = list(dict.fromkeys(r["metric"] for r in records))
    cell = {(r.get("row") or r["run"], r["metric"]): r for r in records}
    width = max([len("set")] + [len(str(x)) for x in runs])
    cols = [max([len(m), 9] + [len(_cell(cell.get((x, m)))) for x in runs]) for m in metrics]
    lines = ["  ".join(["set".ljust(width)] + [m.rjust(c) for m, c in zip(metrics, cols)])]
    for run_label in runs:
        row = [str(run_label).ljust(width)]
        for m, c in zip(metrics, cols):
            r = cell.get((run_label, m))
            row.append(_cell(r).rjust(c))
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


def _cell(record: dict | None) -> str:
    """``value`` or ``value [low, high]`` with four significant digits; ``-`` when missing."""
    if record is None:
        return "-"
    v = record["value"]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    iv = record.get("interval")
    if iv and None not in iv:
        return f"{v:.4g} [{iv[0]:.3g}, {iv[1]:.3g}]"
    return f"{v:.4g}"


def _write_gallery(path: Path, train, args: argparse.Namespace, sets: dict) -> None:
    # lazy: keeps python -m echolib --help fast
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
