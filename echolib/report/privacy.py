"""The *Utility and privacy* chapter's tables and figures, read from a synthetic set's datasheet, manifest and records.

A synthetic set made by ``python -m echolib synthesize`` answers its two
questions in its own folder: ``datasheet.json`` (what it is, the privacy
filter's calibration, the evaluation of the kept set) and ``manifest.csv``
(every draw's nearest-training distances). ``python -m echolib utility`` prints
records of the phase classifier trained on real, synthetic and both. This
module turns those into what the chapter shows; it computes nothing the
records do not hold, except the nearest training frame of the closest samples
(:func:`closest_pairs`), which no record keeps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from echolib.data.frames import FrameDataset
from echolib.data.sources import resolve_data
from echolib.io import read_jsonl
from echolib.metrics.intervals import proportion_interval
from echolib.train.run_config import load_config

#: the datasheet a synthesized folder holds: ``echolib.pipeline.synthesize.DATASHEET`` (a layer above; a test keeps them one)
DATASHEET = "datasheet.json"
#: the memorisation records of a datasheet's evaluation, and the space each measures
MEMORIZATION_METRICS = {"memorized_fraction": "features", "memorized_fraction_pixel": "pixel"}
#: the manifest column of each space's nearest-training distance
DISTANCE_COLUMNS = {"features": "nn_distance", "pixel": "nn_distance_pixel"}
TRAIN_SETS = ("real", "synthetic", "both")


def _interval(interval: Sequence[float] | None, digits: int = 3) -> str:
    if not interval or any(v is None or not math.isfinite(float(v)) for v in interval):
        return "–"
    return f"[{float(interval[0]):.{digits}g}, {float(interval[1]):.{digits}g}]"


def _with_interval(value: float | None, interval: Sequence[float] | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(float(value)):
        return "–"
    shown = _interval(interval, digits)
    return f"{float(value):.{digits}g}" + ("" if shown == "–" else f" {shown}")


def _num(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(float(value)) else f"{float(value):.3g}"


def _rate(value: float | None, interval: Sequence[float] | None = None) -> str:
    """A share as a percentage, with its interval in percent."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    text = f"{100 * float(value):.1f} %"
    if interval and all(v is not None and math.isfinite(float(v)) for v in interval):
        text += f" [{100 * float(interval[0]):.1f}, {100 * float(interval[1]):.1f}]"
    return text


# -- the datasheet ------------------------------------------------------------------------------------------
def read_datasheet(folder: str | Path) -> dict[str, Any]:
    """A synthetic set's ``datasheet.json``."""
    return json.loads((Path(folder) / DATASHEET).read_text())


def datasheet_table(sheet: Mapping[str, Any]) -> pd.DataFrame:
    """The datasheet's key fields as ``field``/``value`` rows: model, sampler, data, filter, counts, terms.

    Only fields a reader may see: the run's label, the checkpoint's name and
    sha256, never the folder the set or the run lies in on the machine that made it.
    """
    m, s, c, d, f = sheet["model"], sheet["sampler"], sheet["counts"], sheet["data"], sheet["privacy_filter"]
    spaces = f["spaces"]
    labels = ", ".join(m.get("labels") or []) or "none"
    by_condition = c.get("kept_by_condition")
    rows = [
        ("model", f"{m['arch']}, {m['resolution']}x{m['resolution']} px, EMA generator"),
        ("run", m["run"]),
        ("checkpoint", f"{m['checkpoint']} ({m['kimg']:g} kimg)"),
        ("checkpoint sha256", str(m["checkpoint_sha256"])[:16] + "…"),
        ("phase labels", labels),
        ("sampler options", json.dumps(s["options"]) if s.get("options") else "the model's defaults"),
        ("seed, batch", f"{s['seed']}, {s['batch']}"),
        ("training data", f"{d['source']}: {d['training_frames']} training frames"),
        ("held-out videos", (f"{d['heldout_videos']} videos, {d['heldout_frames']} frames "
                            f"(fingerprint {d['heldout_fingerprint']})")),
        ("privacy filter", "applied" if f["applied"] else "not applied (draws flagged, none rejected)"),
        ("percentile", f"{100 * f['percentile']:g} % closest of unseen patients' frames"),
        ("thresholds", f"features {spaces['features']['threshold']:.4g}, pixels {spaces['pixel']['threshold']:.4g}"),
        ("drawn / flagged / rejected / kept", f"{c['drawn']} / {c['flagged']} / {c['rejected']} / {c['kept']}"),
        ("draws flagged", _rate(c.get("flag_rate"), c.get("flag_rate_interval"))),
        ("unseen patients' frames rejected", _rate(f.get("heldout_rejection_rate"),
                                                   f.get("heldout_rejection_interval"))),
    ]
    if by_condition:
        rows.append(("kept per label", ", ".join(f"{k} {v}" for k, v in by_condition.items())))
    rows += [
        ("evaluated", (f"{len(sheet.get('evaluation') or [])} records on "
                      f"{(sheet.get('evaluation') or [{}])[0].get('n_fake', 0)} kept samples")),
        ("licence", sheet["licence"].split(". ")[0] + "."),
        ("must not be used for", f"{len(sheet['must_not'])} uses, listed in its README.md"),
        ("made by", f"echolib {sheet.get('echolib')}, {str(sheet.get('time', ''))[:10]}"),
    ]
    return pd.DataFrame(rows, columns=["field", "value"])


def _order(a: Sequence[float], b: Sequence[float]) -> str:
    """Where interval ``a`` lies against interval ``b``: ``above``, ``below`` or ``overlap``."""
    return "above" if a[0] > b[1] else "below" if a[1] < b[0] else "overlap"


def copying_verdict(sheet: Mapping[str, Any]) -> str:
    """Did the generator's draws sit near training frames more often than unseen patients' frames do? One sentence.

    Both rates use the filter's rule (at or below the threshold in either
    space), so they are the same test: the draws' and the second half of the
    held-out videos'. Read from their intervals only: a generator that copies
    no more than chance is flagged at the held-out rate, not at 0.
    """
    c, f = sheet["counts"], sheet["privacy_filter"]
    draws, held = c.get("flag_rate"), f.get("heldout_rejection_rate")
    d_int, h_int = c.get("flag_rate_interval"), f.get("heldout_rejection_interval")
    if draws is None or held is None or not d_int or not h_int:
        return "the datasheet has no flag rates of both the draws and the held-out frames"
    shown = f"draws flagged {_rate(draws, d_int)}, unseen patients' frames {_rate(held, h_int)}"
    order = _order(d_int, h_int)
    if order == "above":
        return (f"{shown}: the generator draws near its training frames more often than new patients sit near them; "
                f"the filter removed the {c['rejected']} flagged draws, but the model reproduces training frames.")
    if order == "below":
        return f"{shown}: fewer than unseen patients; no sign that the generator reproduces its training frames."
    return f"{shown}: no different within the intervals; no sign that the generator reproduces its training frames."


def evaluation_table(sheet: Mapping[str, Any]) -> pd.DataFrame:
    """The datasheet's evaluation records of the kept set: metric, value, 95 % interval."""
    return pd.DataFrame([{"metric": r["metric"], "extractor": r.get("extractor"), "n_fake": r.get("n_fake"),
                          "n_real": r.get("n_real"), "value": _with_interval(r.get("value"), r.get("interval"))}
                         for r in sheet.get("evaluation") or []])


# -- memorisation ----------------------------------------------------------------------------------------
def draw_flags(rows: Sequence[Mapping[str, str]], space: str, threshold: float) -> np.ndarray:
    """For every draw of a manifest: is its nearest-training distance in ``space`` at or below ``threshold``?"""
    return draw_distances(rows, space) <= threshold


def draw_distances(rows: Sequence[Mapping[str, str]], space: str) -> np.ndarray:
    """Every draw's nearest-training distance in ``space`` (``features`` or ``pixel``), from the manifest."""
    return np.array([float(r[DISTANCE_COLUMNS[space]]) for r in rows], dtype=float)


def memorization_table(sheet: Mapping[str, Any], rows: Sequence[Mapping[str, str]] | None = None) -> pd.DataFrame:
    """One row per space: the calibrated threshold and every rate a reader compares it with.

    * ``held-out flagged``: frames of unseen patients (the check half) at or below
      the threshold, with its interval: what a generator that copies nothing scores;
    * ``draws flagged``: every draw of the manifest ``rows``, before the filter rejected any
      (``–`` without them: a kept datasheet travels without its manifest);
    * ``kept flagged``: the evaluation record of the kept set (``memorized_fraction``
      or ``memorized_fraction_pixel``): 0 when the filter was applied;
    * ``same video flagged``: a training frame's nearest sibling of its own video:
      how often a sample showing a training patient in another phase is caught;
    * the median nearest-training distance of the unseen patients' frames and of the kept samples.
    """
    records = {r["metric"]: r for r in sheet.get("evaluation") or [] if r["metric"] in MEMORIZATION_METRICS}
    out = []
    for metric, space in MEMORIZATION_METRICS.items():
        cal = sheet["privacy_filter"]["spaces"][space]
        rec = records.get(metric, {})
        flags = draw_flags(rows or [], space, cal["threshold"])
        drawn = (_rate(float(flags.mean()), proportion_interval(flags, [str(i) for i in range(len(flags))]))
                 if len(flags) else "–")
        out.append({"space": space, "threshold": f"{cal['threshold']:.4g}", "percentile": f"{100 * cal['percentile']:g} %",
                    "calibration": f"{cal['calibration']}, {cal['n_calibration_videos']} + {cal['n_check_videos']} videos",
                    "held-out flagged": _rate(cal["heldout_flag_rate"], cal.get("heldout_interval")),
                    "draws flagged": drawn,
                    "kept flagged": _rate(rec.get("value"), rec.get("interval")) if rec else "–",
                    "same video flagged": _rate(cal.get("same_video_flag_rate")),
                    "median distance, held-out / kept": f"{_num(cal.get('heldout_median_nn_distance'))} / "
                                                        f"{_num(rec.get('median_nn_distance'))}"})
    return pd.DataFrame(out)


def distance_figure(heldout: Mapping[str, np.ndarray], draws: Mapping[str, np.ndarray],
                    thresholds: Mapping[str, float], passed: np.ndarray | None = None) -> Figure:
    """Per space, the nearest-training distances of the draws beside those of held-out real frames.

    ``heldout[space]``: the unseen patients' frames (both halves); ``draws[space]``:
    every draw's (the manifest's); the calibrated threshold is a dashed line, and
    with ``passed`` the draws the filter rejected are drawn apart.
    """
    spaces = [s for s in ("features", "pixel") if s in draws]
    fig, axes = plt.subplots(1, len(spaces), figsize=(5.2 * len(spaces), 3.2), squeeze=False)
    for ax, space in zip(axes[0], spaces):
        real, fake = np.asarray(heldout[space], float), np.asarray(draws[space], float)
        both = np.concatenate([real, fake])
        bins = np.linspace(both.min(), both.max(), 31) if len(both) and both.max() > both.min() else 30
        ax.hist(real, bins=bins, density=True, alpha=0.5, color="tab:blue", label=f"held-out real ({len(real)})")
        if passed is None:
            ax.hist(fake, bins=bins, density=True, alpha=0.5, color="tab:orange", label=f"samples ({len(fake)})")
        else:
            ok = np.asarray(passed, bool)
            weights = np.full(len(fake), 1.0 / max(len(fake), 1))
            width = np.diff(bins).mean() if not isinstance(bins, int) else 1.0
            ax.hist([fake[ok], fake[~ok]], bins=bins, weights=[weights[ok] / width, weights[~ok] / width],
                    stacked=True, alpha=0.6, color=["tab:orange", "tab:red"],
                    label=[f"samples kept ({ok.sum()})", f"samples rejected ({(~ok).sum()})"])
        ax.axvline(thresholds[space], color="black", linestyle="--", linewidth=1,
                   label=f"threshold {thresholds[space]:.3g}")
        ax.set_xlabel(f"distance to the nearest training frame ({space})")
        ax.set_ylabel("density")
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def closest_pairs(images: torch.Tensor, distances: torch.Tensor, indices: torch.Tensor, train_images: torch.Tensor,
                  threshold: float, space: str, k: int = 6) -> list[dict]:
    """The ``k`` samples nearest to a training frame, closest first, as :func:`~echolib.report.memorization.plot_closest_pairs` draws them.

    ``distances``/``indices``: each sample's nearest-training distance and the
    index of that frame in ``train_images`` (uint8 ``[N, 1, H, W]``).
    """
    order = torch.argsort(distances)[:k]
    out = []
    for i in order.tolist():
        d = float(distances[i])
        j = int(indices[i])
        out.append({"fake": images[i, 0].numpy(), "train": train_images[j, 0].numpy(), "fake_index": i,
                    "train_index": j, "distance": d, "threshold": float(threshold), "flagged": d <= threshold,
                    "space": space})
    return out


# -- utility ----------------------------------------------------------------------------------------------
def utility_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The phase classifier trained on each set and tested on held-out real videos: accuracy and AUC with intervals.

    One row per training set (real, synthetic, both, in that order), from the
    ``phase_accuracy`` and ``phase_auc`` records of ``utility --json``.
    """
    by_set: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("metric") not in ("phase_accuracy", "phase_auc"):
            continue
        row = by_set.setdefault(r["train_set"], {"trained on": r["train_set"], "training frames": r.get("n_train"),
                                                 "of them synthetic": r.get("n_fake"),
                                                 "test frames": r.get("n_real"),
                                                 "test videos": r.get("n_test_videos")})
        name = "accuracy" if r["metric"] == "phase_accuracy" else "AUC"
        row[name] = _with_interval(r.get("value"), r.get("interval"))
    order = [s for s in TRAIN_SETS if s in by_set] + sorted(set(by_set) - set(TRAIN_SETS))
    return pd.DataFrame([by_set[s] for s in order])


def utility_context(records: Sequence[Mapping[str, Any]]) -> str:
    """One line on what the utility records measured: task, split, labels, classifier, seed."""
    if not records:
        return "no utility records"
    r = records[0]
    return (f"task {r.get('task')}: tested on {r.get('n_real')} frames of {r.get('n_test_videos')} real videos "
            f"({r.get('split')}); real labels: {r.get('real_labels')}; synthetic labels: {r.get('synthetic_labels')}; "
            f"classifier: {r.get('classifier')}; seed {r.get('seed')}; intervals {r.get('interval_method')}")


# -- what is kept in book/measured --------------------------------------------------------------------------
def kept_utility(measured: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Utility records kept under ``measured/*/utility*.jsonl``, by ``<label>/<file>``."""
    root = Path(measured)
    out = {}
    for path in sorted(root.glob("*/utility*.jsonl")):
        records = [r for r in read_jsonl(path) if r.get("metric") in ("phase_accuracy", "phase_auc")]
        if records:
            out[f"{path.parent.name}/{path.name}"] = records
    return out


def kept_datasheets(measured: str | Path) -> dict[str, dict[str, Any]]:
    """Datasheets kept under ``measured/*/synthesize*/datasheet.json``, by ``<label>/<folder>``."""
    root = Path(measured)
    out = {}
    for path in sorted(root.glob(f"*/synthesize*/{DATASHEET}")):
        try:
            out[f"{path.parent.parent.name}/{path.parent.name}"] = json.loads(path.read_text())
        except ValueError:
            continue
    return out


def utility_verdict(records: Sequence[Mapping[str, Any]], metric: str = "phase_auc") -> str:
    """What the records say, in one sentence: does training on synthetic frames teach what holds on real ones?

    Read from the intervals only: chance (0.5) inside the synthetic row's
    interval means it taught nothing measurable; below the real row's interval
    means less than real frames teach; overlapping means no difference shown.
    """
    rows = {r["train_set"]: r for r in records if r.get("metric") == metric}
    syn, real, both = rows.get("synthetic"), rows.get("real"), rows.get("both")
    if syn is None or real is None:
        return f"no {metric} records of both the real and the synthetic training set"
    lo, hi = syn["interval"]
    shown = f"trained on synthetic frames, {metric} {_with_interval(syn['value'], syn['interval'])}"
    if lo <= 0.5 <= hi:
        verdict = f"{shown}: chance (0.5) lies in its interval; the synthetic set teaches nothing measurable about " \
                  "the phase of real frames"
    elif _order(syn["interval"], real["interval"]) == "below":
        verdict = f"{shown}: above chance, below real frames' {_with_interval(real['value'], real['interval'])}"
    else:
        verdict = f"{shown}: above chance, and no different from real frames' " \
                  f"{_with_interval(real['value'], real['interval'])} within the intervals"
    if both is not None:
        gain = _order(both["interval"], real["interval"]).replace("overlap", "no different from")
        verdict += f"; real and synthetic together: {_with_interval(both['value'], both['interval'])}, {gain} real alone"
    return verdict + "."


def unlabelled_frames(data: str | Path, arch: str, config: str) -> tuple[int, int, str | None]:
    """``(frames without the label, frames, label key)`` for ``arch``/``config`` on ``data``; ``(0, n, None)`` unconditional.

    A phase-conditioned configuration trains only on frames whose manifest
    names every frame's label (the phantom, ``echolib preprocess`` output); a
    bare folder of the study's frames names none.
    """
    run = load_config(arch, config)
    key = getattr(run.model, "label_key", None) if getattr(run.model, "labels", None) else None
    size = run.train.resolution
    dataset = FrameDataset(resolve_data(data, size=size, progress=False), resolution=size)
    if key is None:
        return 0, len(dataset), None
    return sum(v is None for v in dataset.field(key)), len(dataset), key
