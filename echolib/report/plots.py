"""Figures people would rather look at than read: losses, metrics, samples.

Every function takes run folders (or tables read from them) and returns a
matplotlib Figure, so notebooks stay one line per figure and the book shows
exactly what the run records hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from echolib.images import make_grid
from echolib.report.records import read_log, read_metrics, sample_grids

_SKIP = {"tick", "kimg", "step", "time_s", "sec_per_kimg", "kimg_per_s", "mem_gb"}


def _label(run: str | Path) -> str:
    p = Path(run)
    return f"{p.parent.name}/{p.name}"


def loss_curves(runs: str | Path | Sequence[str | Path], keys: Sequence[str] | None = None,
                smooth: int = 1) -> Figure:
    """One panel per logged loss/statistic against kimg; several runs overlay."""
    runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    logs = [(r, read_log(r)) for r in runs]
    if keys is None:
        keys = sorted({c for _, df in logs for c in df.columns if c not in _SKIP})
    keys = list(keys)
    n = max(len(keys), 1)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for run, df in logs:
            if key in df and len(df):
                sel = df[["kimg", key]].astype(float).dropna()  # lazy terms (R1, PL) skip some ticks
                y = sel[key]
                if smooth > 1:
                    y = y.rolling(smooth, min_periods=1).mean()
                ax.plot(sel["kimg"], y, marker="." if len(sel) < 20 else None, label=_label(run))
        ax.set_title(key)
        ax.set_xlabel("kimg")
        ax.grid(alpha=0.3)
        if not ax.lines:  # e.g. a VQGAN run stopped before its prior's loss existed
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="0.4")
            ax.set_xticks([])
            ax.set_yticks([])
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    if len(runs) > 1 and keys:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def metric_curves(runs: str | Path | Sequence[str | Path], metrics: Sequence[str] = ("fid",),
                  extractor: str | None = None, source: str | None = "train") -> Figure:
    """Metric value against kimg (e.g. FID-vs-kimg), one panel per metric, one line per run and extractor.

    Only records of ``source`` (the trainer's, by default: the comparison
    chapter's own evaluations of a finished run are another measurement) and,
    when given, of ``extractor``. A FID under another extractor is another
    metric, so extractors are never joined into one line; values that were not
    finite (stored as empty) are left out and counted in the title.
    """
    runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    lines = 0
    for ax, metric in zip(axes.flat, metrics):
        extractors, missing, drawn = set(), 0, lines
        for run in runs:
            df = read_metrics(run)
            if df.empty or "metric" not in df:
                continue
            sel = df[df["metric"] == metric]
            if source is not None and "source" in sel:
                sel = sel[sel["source"] == source]
            if extractor is not None and "extractor" in sel:
                sel = sel[sel["extractor"] == extractor]
            sel = sel.dropna(subset=["kimg"])
            groups = sel.groupby("extractor", dropna=False) if "extractor" in sel else [(None, sel)]
            for name, part in groups:
                missing += int(part["value"].isna().sum())
                part = part.dropna(subset=["value"]).sort_values("kimg")
                if len(part):
                    extractors.add(name)
                    label = _label(run) if extractor is not None or name is None else f"{_label(run)} ({name})"
                    ax.plot(part["kimg"], part["value"], marker="o", label=label)
                    lines += 1
        named = extractor or (next(iter(extractors)) if len(extractors) == 1 else None)
        ax.set_title(f"{metric} ({named})" if named else metric)
        ax.set_ylabel(f"{metric}, {named} features" if named else metric)
        if missing:
            ax.set_title(f"{ax.get_title()}; {missing} non-finite left out")
        ax.set_xlabel("kimg")
        ax.grid(alpha=0.3)
        if lines == drawn:  # empty axes from 0 to 1 read as a plot of zeros
            ax.text(0.5, 0.5, f"no {metric} records from {source or 'any source'}\n"
                    "(metrics_kimg = 0 in the run's config?)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8, color="0.35")
            ax.set_xticks([])
            ax.set_yticks([])
    if lines > 1:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def sample_timeline(run: str | Path, max_panels: int = 4, kind: str = "grid") -> Figure:
    """Sample grids from fixed latents at several points of training (``kind="recon"``: a VQGAN's previews)."""
    grids = sample_grids(run, kind)
    if not grids:
        fig, ax = plt.subplots(figsize=(3, 1))
        ax.text(0.5, 0.5, "no sample grids yet" if kind == "grid" else f"no {kind} grids yet", ha="center",
                va="center")
        ax.axis("off")
        return fig
    idx = np.unique(np.linspace(0, len(grids) - 1, min(max_panels, len(grids))).round().astype(int))
    fig, axes = plt.subplots(1, len(idx), figsize=(4 * len(idx), 4), squeeze=False)
    for ax, i in zip(axes.flat, idx):
        kimg, grid = grids[i]
        ax.imshow(grid, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{kimg:g} kimg")
        ax.axis("off")
    fig.tight_layout()
    return fig


def image_grid(images: torch.Tensor, nrow: int = 8, title: str | None = None, scale: float = 1.0) -> Figure:
    """A grid of ``[N, 1, H, W]`` images (uint8 or float in [-1, 1])."""
    grid = make_grid(images, nrow=nrow)
    h, w = grid.shape
    fig, ax = plt.subplots(figsize=(scale * w / 80, scale * h / 80))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255)
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
