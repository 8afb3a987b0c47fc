"""Figures of a Turing test: the study's (bars with percentages, confusion matrices) and ours.

Each function draws into a given ``ax`` (or a new figure) from the dict of
:func:`echolib.turing.analysis.summarize`, so a figure in the book is
regenerated from the same numbers its tables print.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from echolib.turing.formats import FORMATS


def _axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _bars_with_percent(ax, values: Sequence[float | None], labels: Sequence[str],
                       groups: Sequence[str | None] | None = None) -> None:
    """Bars labelled with their percentage; coloured by group (e.g. the model a question shows) when given."""
    vals = [np.nan if v is None else v for v in values]
    x = np.arange(len(vals))
    if groups is None or all(g is None for g in groups):
        ax.bar(x, np.nan_to_num(vals), edgecolor="black", linewidth=1.0, color="#4C72B0")
    else:
        names = list(dict.fromkeys(str(g) for g in groups))
        colours = dict(zip(names, matplotlib.color_sequences["tab10"]))
        for name in names:
            idx = [i for i, g in enumerate(groups) if str(g) == name]
            ax.bar(x[idx], np.nan_to_num([vals[i] for i in idx]), edgecolor="black", linewidth=1.0,
                   color=colours[name], label=name)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    crowded = len(vals) > 20
    for i, v in enumerate(vals):
        if not np.isnan(v):
            ax.text(i, v + 0.02, f"{v * 100:.0f}%" if crowded else f"{v * 100:.1f}%", ha="center", va="bottom",
                    fontsize=6 if crowded else 8)
    ax.set_xticks(x, labels, rotation=90 if crowded else 0)
    ax.set_ylim(0, 1.1)
    ax.grid(axis="y", linestyle="--", alpha=0.4)
    ax.set_axisbelow(True)


def plot_accuracy(summary: dict[str, Any], ax=None, chance: float | None = None):
    """The study's figure: accuracy per rater, bars labelled in percent; a dashed line at chance if given."""
    ax = _axes(ax, (7, 4))
    _bars_with_percent(ax, summary["accuracy"], summary["raters"])
    if chance is not None:
        ax.axhline(chance, color="crimson", linestyle=":", label=f"chance ({chance:.0%})")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("rater")
    ax.set_ylabel("accuracy (partial credit)")
    ax.set_title("Accuracy per rater")
    return ax


def plot_fooling_rate(summary: dict[str, Any], ax=None, exact: bool = False):
    """The study's figure: fooling rate per question, bars in percent, the format under each label.

    When the key names the sources, bars are coloured by the model whose synthetic images the question shows.
    """
    ax = _axes(ax, (11, 4))
    values = summary["fooling_rate_exact" if exact else "fooling_rate"]
    crowded = len(values) > 20
    labels = [f"{q} ({FORMATS[f].label})" if crowded else f"{q}\n{FORMATS[f].label}"
              for q, f in zip(summary["questions"], summary["formats"])]
    _bars_with_percent(ax, values, labels, summary.get("question_models"))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylabel("fooling rate" + (" (answer not exactly the key)" if exact else " (share of picks not real)"))
    ax.set_title("Fooling rate per question")
    return ax


def plot_confusions(
    matrices: Sequence[Sequence[Sequence[int]]],
    titles: Sequence[str],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    ylabel: str = "truth",
    xlabel: str = "rater's verdict",
    ncols: int | None = None,
):
    """One heatmap per rater: colour is the row share, text the count and the row percentage.

    Five 2x2 matrices fit one row of a book page; five 4x4 ones there shrink
    their counts to unreadable, so larger matrices wrap after three.
    """
    # lazy: seaborn takes seconds to import; only this plot needs it
    import seaborn as sns

    n = len(matrices)
    ncols = ncols or min(n, 5 if len(row_labels) <= 2 else 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.7 * ncols, 2.5 * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, matrix, title in zip(axes.flat, matrices, titles):
        cm = np.asarray(matrix, dtype=float)
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        text = np.array([[f"{int(c)}\n{s:.0%}" for c, s in zip(rc, rs)] for rc, rs in zip(cm, share)])
        sns.heatmap(share, annot=text, fmt="", vmin=0, vmax=1, cmap="Blues", cbar=False, ax=ax,
                    xticklabels=col_labels, yticklabels=row_labels, annot_kws={"fontsize": 8}, square=True)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
    fig.tight_layout()
    return fig


def plot_image_confusions(summary: dict[str, Any]):
    return plot_confusions(summary["confusion_image"]["matrices"], summary["raters"], ["real", "synthetic"],
                           ["picked", "not picked"], ylabel="image shown", xlabel="picked as real?")


def plot_position_confusions(summary: dict[str, Any]):
    labels = [str(x) for x in summary["confusion_position"]["labels"]]
    return plot_confusions(summary["confusion_position"]["matrices"], summary["raters"], labels, labels,
                           ylabel="position of the real image", xlabel="position picked")


def plot_accuracy_ci(summary: dict[str, Any], ax=None):
    """Ours: accuracy per rater and format with Clopper-Pearson 95% intervals and each format's chance level."""
    ax = _axes(ax, (8, 4))
    formats = list(dict.fromkeys(summary["formats"]))
    width = 0.8 / len(formats)
    for j, fmt in enumerate(formats):
        xs, ys, lo, hi = [], [], [], []
        for r, per in enumerate(summary["binomial"]):
            if fmt in per:
                e = per[fmt]
                xs.append(r + (j - (len(formats) - 1) / 2) * width)
                ys.append(e["accuracy"])
                lo.append(e["accuracy"] - e["ci_low"])
                hi.append(e["ci_high"] - e["accuracy"])
        line = ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, label=FORMATS[fmt].label)
        ax.hlines(summary["chance"][fmt], -0.5, len(summary["raters"]) - 0.5, colors=line[0].get_color(),
                  linestyles=":", linewidth=1)
    ax.set_xticks(range(len(summary["raters"])), summary["raters"])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("rater")
    ax.set_ylabel("share of correct picks")
    ax.set_title("Accuracy per format with 95% intervals (dotted: chance)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", linestyle="--", alpha=0.4)
    return ax


def plot_kappa(summary: dict[str, Any], ax=None):
    """Ours: Fleiss' kappa per format and over all images, with Landis and Koch's bands for reference."""
    ax = _axes(ax, (5, 3.5))
    names = list(summary["kappa"])
    vals = [np.nan if summary["kappa"][k] is None else summary["kappa"][k] for k in names]
    labels = [FORMATS[k].label if k in FORMATS else k for k in names]
    ax.bar(range(len(vals)), np.nan_to_num(vals), color="#55A868", edgecolor="black")
    for i, v in enumerate(vals):
        if not np.isnan(v):
            ax.text(i, v + (0.02 if v >= 0 else -0.06), f"{v:.2f}", ha="center", fontsize=8)
    for y in (0.2, 0.4, 0.6):
        ax.axhline(y, color="gray", linestyle=":", linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(vals)), labels)
    ax.set_ylim(min(-0.2, np.nanmin(vals) - 0.1) if vals else -0.2, 1)
    ax.set_ylabel("Fleiss' kappa")
    ax.set_title("Agreement between raters")
    return ax


def plot_roc(curves: Sequence[dict[str, Any]], ax=None):
    """Ours, per-image mode: ROC curves from confidence ratings, AUC in the legend."""
    ax = _axes(ax, (4.5, 4.5))
    for c in curves:
        if c["fpr"]:
            style = {"color": "black", "linewidth": 2} if c["rater"] == "all" else {"alpha": 0.7}
            ax.step(c["fpr"], c["tpr"], where="post", label=f"{c['rater']} (AUC {c['auc']:.2f})", **style)
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":")
    ax.set_xlabel("false positive rate (synthetic judged real)")
    ax.set_ylabel("true positive rate (real judged real)")
    ax.set_title("ROC of the raters' beliefs")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_aspect("equal")
    return ax


def plot_question(questionnaire, question_id: str, px: float = 2.2):
    """What a rater sees for one question (images side by side, positions labelled), for the book."""
    q = next(x for x in questionnaire.questions if x.id == question_id)
    n = len(q.images)
    cols = 1 if n == 1 else 2
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(px * cols, px * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            with Image.open(io.BytesIO(questionnaire.image_bytes(q.images[i]))) as im:
                ax.imshow(np.asarray(im.convert("L")), cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"position {i}", fontsize=8)
    fig.suptitle(f"{q.id}: {FORMATS[q.format].prompt}", fontsize=8)
    fig.tight_layout()
    return fig
