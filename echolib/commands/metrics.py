"""Check the metrics themselves: does each one order image sets the way they are known to be ordered?

Examples::

    python -m echolib metrics validate --real phantom --resolution 64 --n 200 --json
    python -m echolib metrics validate --real ../shared/data/echonet-dynamic-128/frames --resolution 64 \\
        --run runs/stylegan2_ada/cpu64 --kimgs 4,20,40 --published --expect "published model>stylegan2_ada/cpu64@40"

Every set is scored against the held-out videos of ``--real`` (the trainer's
default split, as the comparison uses them): graded corruptions of real frames
of other videos (ones the feature extractor never trained on), samples of a
run's checkpoints (later beats earlier), the study's published samples, and
pairs a person stated (``--expect BETTER>WORSE``, set names as printed). With
``--human KEY --answers DIR``, the two-set Turing questionnaire's answers add
the raters' judgments; without them the suite says it has none. The output:
for each metric, the share of pairs of each kind it orders correctly, and the
pairs it gets wrong (``--json``: one record per score and per agreement row).
"""

from __future__ import annotations

import argparse
import json
import sys

from echolib.errors import ConfigError, DataError

HELP = "validate the metrics: how often each orders known pairs of image sets correctly"


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="metrics_command", metavar="ACTION", required=True)
    v = sub.add_parser("validate", help="score graded corruptions, checkpoints and judged pairs; agreement per metric",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("--real", required=True, help="real frames: folder, .zip, manifest.csv or 'phantom'")
    v.add_argument("--extractor", default="echo", help="feature extractor (echo, echo-v1, inception-v3-compat)")
    v.add_argument("--inception", action="store_true",
                   help="also score feature metrics with Inception-v3 (needs its weights file)")
    v.add_argument("--resolution", type=int, default=128, help="size every set is scored at (default 128)")
    v.add_argument("--n", type=int, default=1000, help="images per set (default 1000; fewer when the data has fewer)")
    v.add_argument("--run", default=None, help="a run folder whose checkpoints join the suite (later beats earlier)")
    v.add_argument("--kimgs", default=None, help="with --run: comma-separated kimg of its checkpoints (default: all)")
    v.add_argument("--published", action="store_true", help="add the study's published E4 samples as a set")
    v.add_argument("--expect", action="append", default=[], metavar="BETTER>WORSE",
                   help="a stated pair of set names (repeatable)")
    v.add_argument("--human", default=None, metavar="KEY", help="key of a two-set Turing questionnaire")
    v.add_argument("--answers", default=None, help="with --human: the raters' answers folder")
    v.add_argument("--corruptions", default=None,
                   help="comma-separated subset of the corruption families (default: all)")
    v.add_argument("--seed", type=int, default=0, help="seed of subsets, corruptions and classifier folds")
    v.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    v.add_argument("--json", action="store_true", help="one JSON record per line instead of tables")


def run(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.metrics import validation
    from echolib.metrics.corruptions import SUITE_STRENGTHS
    from echolib.metrics.fidelity import INCEPTION
    from echolib.metrics.inputs import as_image_set
    from echolib.metrics.protocol import reference_frames
    from echolib.report import scoring

    if args.n < 8:
        raise ConfigError(f"--n must be at least 8 images per set, got {args.n}")
    if (args.human is None) != (args.answers is None):
        raise ConfigError("--human KEY and --answers DIR go together")
    kinds = SUITE_STRENGTHS if args.corruptions is None else _families(args.corruptions, SUITE_STRENGTHS)
    splits = scoring.evaluation_splits(args.real, resolution=args.resolution)
    reference = as_image_set(splits.heldout, label="held-out videos")
    base = validation.subset(reference_frames(as_image_set(splits.train), args.extractor), args.n, args.seed)
    sets, pairs = validation.corruption_sets(base, kinds, seed=args.seed + 1)
    if args.run:
        checkpoints = _checkpoint_sets(args, splits)
        sets.update(checkpoints)
        pairs += validation.ordered_pairs(list(checkpoints), "training", "a later checkpoint beats an earlier one")
    if args.published:
        sets["published model"] = _published(args)
    if args.human:
        # lazy: keeps python -m echolib --help fast
        from echolib.turing.set_pairs import judged_pairs, set_images

        judged = judged_pairs(args.human, args.answers)
        for name, images in set_images(args.human, args.resolution).items():
            sets.setdefault(name, images)
        pairs += judged
        if not judged:
            print(f"no human judgments: no answers in {args.answers} decide a pair", file=sys.stderr)
    else:
        print("no human judgments: pass --human KEY --answers DIR of a two-set questionnaire", file=sys.stderr)
    for text in args.expect:
        better, sep, worse = text.partition(">")
        if not sep or better.strip() not in sets or worse.strip() not in sets:
            raise ConfigError(f"--expect {text!r}: expected BETTER>WORSE with both names among the sets: "
                              f"{', '.join(n for n in sets if not n[0].isdigit())}")
        pairs.append(validation.Pair(better.strip(), worse.strip(), "stated", text))
    extractors = [args.extractor] + ([INCEPTION] if args.inception else [])
    scores = validation.score_sets(reference, sets, extractors, seed=args.seed, device=args.device,
                                   progress=not args.json)
    table = validation.agreement(scores, pairs)
    context = {"real": str(args.real), "resolution": args.resolution, "n_real": len(reference), "n": args.n,
               "extractor": args.extractor}
    if args.json:
        for name, row in scores.items():
            for col, value in row.items():
                print(json.dumps({"record": "score", "set": name, "column": col, "value": value, **context}))
        for row in table:
            print(json.dumps({"record": "agreement", **row, **context}))
        for p in pairs:
            print(json.dumps({"record": "pair", "better": p.better, "worse": p.worse, "source": p.source,
                              "note": p.note}))
        return 0
    print(_format(table))
    return 0


def _families(text: str, known: dict) -> dict:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(f"--corruptions: unknown {unknown or 'empty list'}; choose from {', '.join(known)}")
    return {n: known[n] for n in names}


def _checkpoint_sets(args: argparse.Namespace, splits) -> dict:
    """``<run>@<kimg>``: samples of each asked-for checkpoint of ``--run``, at the suite's size."""
    # lazy: keeps python -m echolib --help fast
    from echolib.metrics.inputs import ImageSet
    from echolib.report.scoring import run_images
    from echolib.train import checkpoint as ckpt
    from echolib.train.run_folder import RunFolder

    run = RunFolder(args.run)
    available = {ckpt.checkpoint_kimg(p): p for p in run.checkpoints()}
    if not available:
        raise ConfigError(f"--run {args.run}: no checkpoints")
    wanted = sorted(available) if args.kimgs is None else [float(k) for k in args.kimgs.split(",")]
    missing = [k for k in wanted if k not in available]
    if missing:
        raise ConfigError(f"--kimgs: no checkpoint at {missing} kimg in {args.run} (has {sorted(available)})")
    out: dict[str, ImageSet] = {}
    for k in wanted:
        images = run_images(run, args.n, size=args.resolution, seed=args.seed, device=args.device,
                            conditions_from=splits.heldout, checkpoint=available[k])
        out[f"{run.label}@{k:g}"] = ImageSet(images.images, images.video_ids, f"{run.label}@{k:g}", cacheable=True)
    return out


def _published(args: argparse.Namespace):
    # lazy: keeps python -m echolib --help fast
    from echolib.data.frames import FrameDataset
    from echolib.metrics import validation
    from echolib.metrics.inputs import as_image_set
    from echolib.metrics.references import study_samples

    folder = study_samples()
    if folder is None:
        raise DataError("--published: the study's samples are not in the shared data ($ECHOLIB_SHARED_DATA)")
    return validation.subset(as_image_set(FrameDataset(folder, resolution=args.resolution), label="published model"),
                             args.n, args.seed)


def _format(table: list[dict]) -> str:
    lines = [f"{'metric':28s} {'pairs':>18s}  share  wrong"]
    for row in table:
        wrong = "; ".join(row["wrong"][:3]) + (" ..." if len(row["wrong"]) > 3 else "")
        lines.append(f"{row['column']:28s} {row['source'] + ' ' + str(row['agreed']) + '/' + str(row['pairs']):>18s}"
                     f"  {row['share']:.2f}  {wrong}")
    return "\n".join(lines)
