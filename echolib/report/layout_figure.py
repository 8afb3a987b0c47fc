"""The appendix's picture of echolib: its layers as bands, its packages as boxes, its imports as arrows.

Drawn from :mod:`echolib.layout` at build time, so the figure cannot drift from
the code: an import added tomorrow is an arrow in tomorrow's book, and one
against the layers' direction fails ``tests/test_layout.py`` before it gets there.
"""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from echolib import layout
from echolib.models import base

_BOX_W, _BOX_H, _ROW_H = 1.7, 0.5, 1.25


def layer_diagram(edges: dict[tuple[str, str], int] | None = None,
                  every: dict[tuple[str, str], int] | None = None) -> Figure:
    """Layers top to bottom, packages left to right; an arrow from importer to imported package.

    Solid arrows are imports at module level (wider for more of them); dashed
    ones are imports inside functions only. Plumbing is one band without
    arrows: every layer may use it, and drawing those arrows would hide the others.
    """
    if edges is None or every is None:
        imports = list(layout.all_imports())  # the source is read once for both views
        edges = layout.package_edges(imports, top_level_only=True) if edges is None else edges
        every = layout.package_edges(imports, top_level_only=False) if every is None else every
    plumbing = layout.LAYERS[-1]
    centres: dict[str, tuple[float, float]] = {}
    width = max(len(layer.packages) for layer in layout.LAYERS[:-1]) * (_BOX_W + 0.6)
    fig, ax = plt.subplots(figsize=(10, 1.1 * len(layout.LAYERS) + 0.6))
    for row, layer in enumerate(layout.LAYERS):
        y = -row * _ROW_H
        ax.add_patch(FancyBboxPatch((-0.4, y - 0.45), width + 0.2, 0.9, boxstyle="round,pad=0.02",
                                    facecolor="0.95" if row % 2 else "0.9", edgecolor="none", zorder=0))
        ax.text(-0.5, y, layer.name, ha="right", va="center", fontsize=9, color="0.3")
        if layer is plumbing:
            ax.text(width / 2 - 0.2, y, " · ".join(layer.packages), ha="center", va="center", fontsize=8,
                    family="monospace")
            continue
        step = width / len(layer.packages)
        for i, name in enumerate(layer.packages):
            x = step * (i + 0.5) - 0.2
            centres[name] = (x, y)
            ax.add_patch(FancyBboxPatch((x - _BOX_W / 2, y - _BOX_H / 2), _BOX_W, _BOX_H, boxstyle="round,pad=0.03",
                                        facecolor="white", edgecolor="0.2", zorder=2))
            ax.text(x, y, name, ha="center", va="center", fontsize=9, family="monospace", zorder=3)
    for (a, b), count in sorted(every.items()):
        if a not in centres or b not in centres:
            continue
        solid = (a, b) in edges
        (xa, ya), (xb, yb) = centres[a], centres[b]
        ax.add_patch(FancyArrowPatch((xa, ya - _BOX_H / 2), (xb, yb + _BOX_H / 2), arrowstyle="-|>",
                                     mutation_scale=9, linestyle="-" if solid else (0, (3, 3)),
                                     linewidth=0.6 + 0.5 * math.log2(1 + (edges.get((a, b), 0) if solid else 0)),
                                     color="0.15" if solid else "0.55", connectionstyle="arc3,rad=0.06", zorder=1))
    ax.set_xlim(-2.6, width)
    ax.set_ylim(-(len(layout.LAYERS) - 1) * _ROW_H - 0.6, 0.6)
    ax.axis("off")
    fig.tight_layout()
    return fig


def package_table() -> pd.DataFrame:
    """Layer, package, what it owns, modules and lines of source: one row per package, top to bottom."""
    rows = [{"layer": f.layer, "package": f.name, "what it owns": as_markdown(f.owns).replace("`", ""),
             "modules": f.modules, "lines": f.lines} for f in layout.package_facts()]
    return pd.DataFrame(rows)


def homes_table() -> pd.DataFrame:
    """Each concept and the module and object that own it."""
    return pd.DataFrame([{"concept": h.concept, "home": f"{h.module}.{h.owner}"} for h in layout.HOMES])


def as_markdown(docstring: str) -> str:
    """A docstring's reStructuredText roles and literals as Markdown code spans, for a page of the book."""
    text = re.sub(r":(?:meth|class|func|mod|attr|data):`~?([^`]+)`", r"`\1`", docstring)
    return text.replace("``", "`")


def model_rules() -> str:
    """The rules of :mod:`echolib.models.base` (its docstring after the title line), as Markdown."""

    return as_markdown((base.__doc__ or "").split("\n\n", 1)[1])
