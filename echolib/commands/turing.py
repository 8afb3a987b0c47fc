"""Visual Turing test: build a blinded questionnaire, analyse the answers (ours or the study's CSV).

Examples::

    python -m echolib turing build --real frames/ --generated e4=samples/ --out tt/q
    python -m echolib turing analyze tt/answers --key tt/q.key.json --json
    python -m echolib turing analyze Ecocardiogramas_Evaluation_Limpio.csv --format study --json

The rater app runs in JupyterLab: ``from echolib.turing.app import TuringApp;
TuringApp("tt/q", "tt/answers")``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from echolib.errors import ConfigError

HELP = "visual Turing test: build a blinded questionnaire, analyse answers or the study's CSV"


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="turing_command", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="build a blinded, randomised questionnaire and its separate key")
    b.add_argument("--real", required=True, help="folder/zip/manifest of real frames")
    b.add_argument("--generated", required=True, nargs="+", metavar="[NAME=]DIR",
                   help="folders of generated frames, optionally named (name defaults to the folder name)")
    b.add_argument("--out", required=True, help="new questionnaire folder (what raters get)")
    b.add_argument("--key", default=None, help="where to write the key (default: <out>.key.json, beside --out)")
    b.add_argument("--seed", type=int, default=None,
                   help="seed of image choice, positions and names (default: a fresh one, recorded in the key)")
    b.add_argument("--size", type=int, default=None, help="resize every image to this square size")
    b.add_argument("--one-of-two", type=int, default=10, help="questions: pick the real image of two")
    b.add_argument("--two-of-four", type=int, default=5, help="questions: pick the two real images of four")
    b.add_argument("--one-of-four", type=int, default=3, help="questions: pick the one real image of four")
    b.add_argument("--per-image", type=int, default=0, help="questions: real or synthetic, confidence 1-5")
    b.add_argument("--title", default="Visual Turing test: echocardiograms", help="title shown to raters")
    b.set_defaults(_turing=_build)

    a = sub.add_parser("analyze", help="analyse answers: our answers folder (+ --key) or the study's CSV")
    a.add_argument("source", help="answers folder (<rater>.jsonl files) or the study's CSV")
    a.add_argument("--format", choices=("auto", "study", "answers"), default="auto",
                   help="input format (auto: a .csv file is the study's, a folder ours)")
    a.add_argument("--key", default=None, help="the questionnaire's key.json (answers format only)")
    a.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    a.add_argument("--figures", default=None, help="also write the figures (PNG) into this folder")
    a.set_defaults(_turing=_analyze)


def run(args: argparse.Namespace) -> int:
    return int(args._turing(args) or 0)


def _build(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.turing.questionnaire import build_questionnaire

    generated: dict[str, str] = {}
    for spec in args.generated:
        name, sep, folder = spec.partition("=")
        if not sep:
            name, folder = Path(spec).name, spec
        if not name or name in generated:
            raise ConfigError(f"--generated {spec}: give each model a distinct, non-empty name (NAME=DIR)")
        generated[name] = folder
    counts = {"one_of_two": args.one_of_two, "two_of_four": args.two_of_four, "one_of_four": args.one_of_four,
              "per_image": args.per_image}
    if any(n < 0 for n in counts.values()):
        raise ConfigError(f"question counts must be >= 0, got {counts}")
    q, key = build_questionnaire(args.real, generated, args.out, args.key, counts=counts, seed=args.seed,
                                 size=args.size, title=args.title)
    print(json.dumps({"questionnaire": str(q.folder), "id": q.id, "questions": len(q.questions),
                      "key": str(key.path)}, indent=2))
    return 0


def _analyze(args: argparse.Namespace) -> int:
    # lazy: keeps python -m echolib --help fast
    from echolib.turing.analysis import summarize

    source = Path(args.source)
    fmt = args.format
    if fmt == "auto":
        fmt = "study" if source.suffix.lower() == ".csv" else "answers"
    if fmt == "study":
        # lazy: keeps python -m echolib --help fast
        from echolib.turing.study import load_study_csv

        resp = load_study_csv(source)
    else:
        if args.key is None:
            raise ConfigError(f"analyze {source}: answers need the questionnaire's key: pass --key KEY.json")
        # lazy: keeps python -m echolib --help fast
        from echolib.turing.answers import collect_responses

        resp = collect_responses(args.key, source)
    summary = summarize(resp)
    if args.figures:
        _write_figures(summary, Path(args.figures))
    if args.json:
        print(json.dumps(summary))
    else:
        print(_table(summary))
    return 0


def _table(s: dict) -> str:
    def pct(v):
        return "   -  " if v is None else f"{v * 100:5.1f}%"

    lines = [f"source: {s['source']}", "", "rater    accuracy   score-test p"]
    for r, acc, t in zip(s["raters"], s["accuracy"], s["score_test"]):
        lines.append(f"{r:<8} {pct(acc)}     {t['pvalue']:.3f}")
    lines += ["", "question  format        fooling  fooling(exact)"]
    for q, f, fr, fe in zip(s["questions"], s["formats"], s["fooling_rate"], s["fooling_rate_exact"]):
        lines.append(f"{q:<9} {f:<13} {pct(fr)}  {pct(fe)}")
    lines += ["", "Fleiss' kappa: " + ", ".join(f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in s["kappa"].items())]
    return "\n".join(lines)


def _write_figures(summary: dict, folder: Path) -> None:
    # lazy: keeps python -m echolib --help fast
    import matplotlib

    matplotlib.use("Agg")
    # lazy: pyplot only once the backend is chosen
    import matplotlib.pyplot as plt

    from echolib.turing import plots

    folder.mkdir(parents=True, exist_ok=True)
    for name, draw in (("accuracy", plots.plot_accuracy), ("fooling_rate", plots.plot_fooling_rate),
                       ("accuracy_ci", plots.plot_accuracy_ci), ("kappa", plots.plot_kappa)):
        ax = draw(summary)
        ax.figure.savefig(folder / f"{name}.png", dpi=150, bbox_inches="tight")
        plt.close(ax.figure)
    for name, draw_figure in (("confusion_image", plots.plot_image_confusions),
                              ("confusion_position", plots.plot_position_confusions)):
        fig = draw_figure(summary)
        fig.savefig(folder / f"{name}.png", dpi=150, bbox_inches="tight")
        plt.close(fig)
