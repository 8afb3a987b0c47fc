"""The memorization gallery: generated images beside their nearest training images.

A memorization fraction is an abstraction; the reader is convinced (or not) by
looking at the closest pairs. The data come from
:func:`echolib.metrics.memorization.closest_pairs`; this module only draws them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def plot_closest_pairs(gallery: list[dict], title: str | None = None) -> Figure:
    """Two rows: generated (top) over nearest training image (bottom), closest pair first.

    Each column is captioned with the distance; flagged pairs (at or below the
    threshold calibrated on unseen patients) are marked in red.
    """
    k = max(1, len(gallery))
    fig, axes = plt.subplots(2, k, figsize=(1.6 * k, 3.6), squeeze=False)
    for col in range(k):
        for row in range(2):
            axes[row, col].axis("off")
        if col >= len(gallery):
            continue
        pair = gallery[col]
        colour = "tab:red" if pair["flagged"] else "black"
        axes[0, col].imshow(pair["fake"], cmap="gray", vmin=0, vmax=255)
        axes[1, col].imshow(pair["train"], cmap="gray", vmin=0, vmax=255)
        axes[0, col].set_title(f"d={pair['distance']:.3g}", fontsize=8, color=colour)
    if gallery:
        axes[0, 0].text(
            -0.08, 0.5, "generated", transform=axes[0, 0].transAxes, rotation=90, va="center", ha="right", fontsize=9
        )
        axes[1, 0].text(
            -0.08,
            0.5,
            "nearest training",
            transform=axes[1, 0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=9,
        )
        space = gallery[0]["space"]
        threshold = gallery[0]["threshold"]
        fig.suptitle(title or f"closest pairs ({space}; red: at or below the threshold {threshold:.3g})", fontsize=9)
    fig.tight_layout()
    return fig
