"""The comparison's tables and figures, from records scored under one protocol.

Rows come from :mod:`echolib.report.scoring` (runs and reference rows scored
by one :class:`~echolib.metrics.protocol.Protocol`) and, for continuity, the
study's own reported numbers read from its training logs (Inception features,
its code, its real set: a different metric, in columns of its own). A table
refuses records of two protocols. Each metric is read through the registry
(:mod:`echolib.metrics.registry`): which way is better, and whether it may
rank; a row "leads" only where its interval separates from every other row's
(:func:`leader`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from echolib.errors import ConfigError
from echolib.images import make_grid
from echolib.metrics.evaluate import FeatureCache, resolve_device
from echolib.metrics.inputs import as_image_set
from echolib.metrics.protocol import check_one_protocol
from echolib.metrics.registry import DEFAULT_METRICS, REGISTRY, ranking_metrics, spec
from echolib.models.registry import available_architectures, config_names
from echolib.report.scoring import ARCH_ORDER
from echolib.report.study_logs import study_best


def architectures_with(config: str, names: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """Which architectures a comparison of ``config`` can train, and which it must leave out.

    Not every configuration exists for every architecture (``smoke_cond`` is the
    diffusion model's alone, and a user's own architecture may lack ``cpu64``), and
    a comparison should say what it left out rather than fail. A YAML path is taken
    as given for every architecture.
    """
    known = available_architectures()
    names = known if names is None else list(names)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"architectures: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    has = [n for n in names if Path(config).is_file() or config in config_names(n)]
    return has, [n for n in names if n not in has]


#: a memorisation column's companion: the share of unseen patients' frames flagged by the same threshold
HELDOUT_SUFFIX = " held-out"


def comparison_table(records: Sequence[dict[str, Any]], metrics: Sequence[str] = DEFAULT_METRICS,
                     intervals: bool = False) -> pd.DataFrame:
    """One row per architecture/configuration (and reference): each metric's value at the row's latest checkpoint.

    Records of one table must share a protocol (the same real set, sample
    sizes, extractor weights and seed), or this raises. A row with several
    records of a metric (evaluated again after more training) shows the one at
    the highest kimg, the last written. Column names carry the feature
    extractor where one is used; with ``intervals`` each ranked column is
    followed by ``<column> low`` and ``<column> high``. A memorisation column
    is followed by ``<column> held-out``, the record's held-out flag rate: a
    generator that copies no more than chance sits at it.
    """
    check_one_protocol(records)
    df = pd.DataFrame.from_records(list(records))
    if df.empty:
        return df
    rows = []
    for (kind, _), group in df.groupby(["kind", "row"], sort=False):
        row: dict[str, Any] = {"architecture": group["architecture"].iloc[0],
                               "configuration": group["configuration"].iloc[0], "kind": kind}
        for metric in metrics:
            sel = group[group["metric"] == metric]
            if sel.empty:
                continue
            if "kimg" in sel:
                sel = sel.assign(_k=sel["kimg"].astype(float).fillna(-1.0)).sort_values("_k", kind="stable")
            latest = sel.iloc[-1]
            col = column_name(metric, latest["extractor"])
            row[col] = float("nan") if latest["value"] is None else float(latest["value"])
            held = latest.get("heldout_flag_rate")  # memorisation: the rate a generator that copies nothing scores
            if held is not None and not pd.isna(held):
                row[f"{col}{HELDOUT_SUFFIX}"] = float(held)
            if intervals and spec(metric).ranks:
                lo, hi = _interval(latest)
                row[f"{col} low"], row[f"{col} high"] = lo, hi
        rows.append(row)
    return pd.DataFrame(rows)


def _interval(record: pd.Series) -> tuple[float, float]:
    iv = record.get("interval")
    if isinstance(iv, (list, tuple)) and len(iv) == 2 and None not in iv:
        return float(iv[0]), float(iv[1])
    return float("nan"), float("nan")


def leader(records: Sequence[dict[str, Any]], metric: str, kinds: Sequence[str] = ("ours",)) -> dict[str, Any]:
    """Which row of ``kinds`` is best by ``metric``, and whether its interval separates it from every other row.

    Returns ``{"metric", "best", "runner_up", "separated", "order"}``: ``order``
    lists the rows best first; ``separated`` is True only when the best row's
    interval and every other row's are disjoint, the one case in which the book
    says a row *leads*. Rows without an interval never separate.
    """
    s = spec(metric)
    if not s.ranks:
        raise ValueError(f"{metric!r} cannot rank models; use one of {', '.join(ranking_metrics())}")
    check_one_protocol(records)
    latest: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("metric") == metric and r.get("kind", "ours") in kinds and r.get("value") is not None:
            latest[r["row"]] = r
    order = sorted(latest, key=lambda row: s.score(latest[row]["value"]))
    if not order:
        return {"metric": metric, "best": None, "runner_up": None, "separated": False, "order": []}

    def bounds(row: str) -> tuple[float, float]:
        iv = latest[row].get("interval")
        if not iv or None in iv:
            return float("nan"), float("nan")
        lo, hi = (float(v) for v in iv)
        if s.better == "chance":  # distance from chance: the interval folds around 0.5
            d = sorted(abs(v - 0.5) for v in (lo, hi))
            return (0.0 if lo <= 0.5 <= hi else d[0]), d[1]
        return (-hi, -lo) if s.better == "higher" else (lo, hi)

    best_hi = bounds(order[0])[1]
    separated = len(order) > 1 and all(math.isfinite(best_hi) and bounds(r)[0] > best_hi for r in order[1:])
    return {"metric": metric, "best": order[0], "runner_up": order[1] if len(order) > 1 else None,
            "separated": separated, "order": order}


def verdict(records: Sequence[dict[str, Any]], metric: str, kinds: Sequence[str] = ("ours",)) -> str:
    """One sentence on who leads by ``metric``: a lead is claimed only where the intervals separate."""
    result = leader(records, metric, kinds)
    if result["best"] is None:
        return f"No row has a {metric} value."
    if result["runner_up"] is None:
        return f"{result['best']} is the only row with a {metric} value: there is nothing to lead."
    if result["separated"]:
        return f"{result['best']} leads by {metric}: its 95 % interval is clear of every other row's."
    return (f"No row leads by {metric}: {result['best']} has the best value, but its 95 % interval overlaps "
            f"{result['runner_up']}'s.")


def judgement(records: Sequence[dict[str, Any]], leading: str, validated: Sequence[str],
              kinds: Sequence[str] = ("ours",)) -> str:
    """The verdict by the ``leading`` metric, followed by every other ``validated`` metric that disagrees.

    The book calls a row better only when the leading metric's intervals
    separate it and no validated metric disagrees without comment: this
    sentence is that comment, generated from the same records as the table.
    """
    text = verdict(records, leading, kinds)
    lead = leader(records, leading, kinds)["best"]
    agree, disagree = [], []
    for metric in validated:
        if metric == leading or not any(r.get("metric") == metric for r in records):
            continue
        other = leader(records, metric, kinds)
        if other["best"] is None:
            continue
        if other["best"] == lead:
            agree.append(metric)
        else:
            disagree.append(f"{metric} puts {other['best']} first"
                            + (" with separated intervals" if other["separated"] else ", within overlapping intervals"))
    if disagree:
        text += " Disagreeing: " + "; ".join(disagree) + "."
    if agree:
        text += f" Agreeing on the best row: {', '.join(agree)}."
    return text


def with_intervals(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The table for reading: each ranked column as ``value [low, high]`` text, the ``low``/``high`` columns folded in."""
    out = table[[c for c in table.columns if not c.endswith((" low", " high"))]].copy()
    for col in out.columns:
        if f"{col} low" not in table:
            continue
        lo, hi = table[f"{col} low"], table[f"{col} high"]
        out[col] = [_fmt(v, digits) + ("" if not (math.isfinite(a) and math.isfinite(b)) else
                                       f" [{_fmt(a, digits)}, {_fmt(b, digits)}]")
                    for v, a, b in zip(table[col].astype(float), lo.astype(float), hi.astype(float))]
    return out


def _fmt(value: float, digits: int) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}g}"


def column_name(metric: str, extractor: Any) -> str:
    if isinstance(extractor, str) and extractor and extractor not in ("pixel", "none"):
        return f"{metric} [{extractor}]"
    return metric


def study_rows(study_logs: str | Path) -> pd.DataFrame:
    """The study's own best numbers per architecture/configuration (Inception features, its code)."""
    best = study_best(study_logs)
    if best.empty:
        return best
    best = best.rename(columns={"arch": "architecture", "config": "configuration"})
    best.insert(2, "kind", "study (reported)")
    rename = {m: column_name(m, "inception, study") for m in ("fid", "kid")}
    return best.rename(columns=rename)


def study_reference_rows(reported: pd.DataFrame) -> pd.DataFrame:
    """The study's best configuration of each architecture, by its own FID, as rows of the comparison.

    Only its FID and KID travel into the comparison table: they carry their own
    column (``[inception, study]``) because the features, real set and code
    differ from ours. Its JSD/SSIM/PSNR used other definitions (no sector mask,
    other pairing), so they stay in the full table of reported numbers.
    """
    fid = column_name("fid", "inception, study")
    if reported.empty or fid not in reported:
        return pd.DataFrame()
    keep = ["architecture", "configuration", "kind", fid, column_name("kid", "inception, study")]
    best = reported.loc[reported.groupby("architecture", sort=False)[fid].idxmin(), keep]
    best = best.assign(configuration=best["configuration"] + " (study's best)")
    order = {a: i for i, a in enumerate(ARCH_ORDER)}
    return best.sort_values("architecture", key=lambda s: s.map(lambda a: order.get(a, len(order)))) \
               .reset_index(drop=True)


def with_references(table: pd.DataFrame, reported: pd.DataFrame) -> pd.DataFrame:
    """The comparison table followed by the study's reported rows (their columns appended at the end)."""
    extra = study_reference_rows(reported)
    if extra.empty:
        return table
    return pd.concat([table, extra], ignore_index=True)


# -- figures ----------------------------------------------------------------
def _scores(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Each metric mapped to [0, 1] across rows, 1 = best (direction-aware; AUC: closeness to 0.5)."""
    out = pd.DataFrame(index=table.index)
    for col in columns:
        metric = col.split(" [")[0]
        v = table[col].astype(float)
        better = REGISTRY[metric].better if metric in REGISTRY else "lower"
        if better == "chance":
            v = -(v - 0.5).abs()
        elif better == "lower":
            v = -v
        lo, hi = v.min(), v.max()
        if not math.isfinite(hi - lo) or hi == lo:  # one value (or none): every row that has it ties at best
            out[col] = v.where(v.isna(), 1.0)
        else:
            out[col] = (v - lo) / (hi - lo)
    return out


def _row_labels(table: pd.DataFrame) -> list[str]:
    return [f"{a}/{c}" if k == "ours" else f"{a} ({k})" for a, c, k in
            zip(table["architecture"], table["configuration"], table["kind"])]


def _ranked_columns(table: pd.DataFrame) -> list[str]:
    ranked = ranking_metrics()
    return [c for c in table.columns if c.split(" [")[0] in ranked and not c.endswith((" low", " high", HELDOUT_SUFFIX))
            and table[c].notna().any()]


def radar(table: pd.DataFrame, columns: Sequence[str] | None = None) -> Figure:
    """Radar chart of normalised scores (outer = better), one polygon per row, as the study drew.

    By default the axes are the metrics that rank models (the registry's); a
    row without a value on an axis sits at the centre there.
    """
    columns = list(columns or _ranked_columns(table))
    scores = _scores(table, columns).fillna(0.0)
    angles = np.linspace(0, 2 * np.pi, len(columns), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(6.5, 6.5), subplot_kw={"polar": True})
    for label, (_, row) in zip(_row_labels(table), scores.iterrows()):
        vals = row.tolist()
        ax.plot(angles + angles[:1], vals + vals[:1], lw=1.5, label=label)
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.08)
    ax.set_xticks(angles)
    ax.set_xticklabels([c.replace(" [", "\n[") for c in columns], fontsize=8)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels([])
    ax.set_title("normalised scores (outer = better)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.05, 1.0), fontsize=7)
    fig.tight_layout()
    return fig


def heatmap(table: pd.DataFrame, columns: Sequence[str] | None = None) -> Figure:
    """Rows x metrics coloured by normalised score (green = better), annotated with the values."""
    # lazy: seaborn takes seconds to import; only these two plots need it
    import seaborn as sns

    columns = list(columns or _ranked_columns(table))
    scores = _scores(table, columns)
    values = table[columns].astype(float)
    annot = values.map(lambda v: "" if not math.isfinite(v) else (f"{v:.3g}"))
    fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 3, 0.45 * len(table) + 1.5))
    sns.heatmap(scores.to_numpy(dtype=float), annot=annot.to_numpy(), fmt="", cmap="RdYlGn", vmin=0, vmax=1,
                xticklabels=columns, yticklabels=_row_labels(table), cbar_kws={"label": "score (1 = best)"}, ax=ax)
    ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right", fontsize=8)
    fig.tight_layout()
    return fig


def violin(distances: dict[str, np.ndarray], xlabel: str = "distance to the nearest training frame") -> Figure:
    """Per-image distributions, one violin per row (e.g. nearest-neighbour feature distances)."""
    # lazy: seaborn takes seconds to import; only these two plots need it
    import seaborn as sns

    long = pd.DataFrame([(k, float(v)) for k, vs in distances.items() for v in np.asarray(vs).ravel()],
                        columns=["row", "value"])
    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(distances) + 1.5))
    sns.violinplot(data=long, y="row", x="value", hue="row", legend=False, cut=0, inner="quartile", ax=ax,
                   density_norm="width")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


def features_of(images: torch.Tensor, extractor: str = "echo", device: str = "auto") -> torch.Tensor:
    """Features of uint8 ``[N, 1, H, W]`` images (cached on disk by content, as in :func:`echolib.metrics.evaluate`)."""
    return FeatureCache(extractor, resolve_device(device))(as_image_set(images))


def nearest_distances(images: torch.Tensor, bank_features: torch.Tensor, extractor: str = "echo",
                      device: str = "auto") -> np.ndarray:
    """Feature distance of each image to its nearest neighbour in a bank (the memorisation view per image)."""
    feats = features_of(images, extractor=extractor, device=device)
    d = torch.cdist(feats.float(), bank_features.float())
    return d.min(dim=1).values.cpu().numpy()


def samples_side_by_side(grids: dict[str, torch.Tensor], ncol: int = 4) -> Figure:
    """One panel of samples per row label (uint8 or float [-1, 1] images)."""
    n = len(grids)
    cols = min(ncol, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.6 * rows), squeeze=False)
    for ax, (label, images) in zip(axes.flat, grids.items()):
        ax.imshow(make_grid(images, nrow=4), cmap="gray", vmin=0, vmax=255)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig
