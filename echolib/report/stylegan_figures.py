"""Figures and tables of the StyleGAN2-ADA chapter: what ADA does to a frame, how its ``p`` moved,
the lazy regularisers, style mixing, the configuration table, and grids side by side.

Drawing functions return a matplotlib Figure and table functions a pandas
DataFrame, so the chapter notebook stays one line per figure. The pixels come
from the model and :mod:`echolib.augment.ada` themselves: nothing here
re-implements an augmentation or a generator step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from echolib.augment.ada import OPS, AugmentPipe, GeneratorDraws
from echolib.images import make_grid, to_float, to_uint8
from echolib.models.registry import config_names, config_path
from echolib.report.records import read_log
from echolib.train.run_config import load_config

if TYPE_CHECKING:
    from echolib.models.stylegan2 import Generator

_PAD = 2  # pixels between tiles, as in echolib.images.make_grid


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    """One frame (``[H, W]``, ``[1, H, W]`` or ``[1, 1, H, W]``, uint8 or float in [-1, 1]) as float ``[1, 1, H, W]``."""
    x = to_float(image) if image.dtype == torch.uint8 else image.float()
    while x.ndim < 4:
        x = x.unsqueeze(0)
    if x.shape[:2] != (1, 1):
        raise ValueError(f"expected one single-channel frame, got shape {tuple(image.shape)}")
    return x


def _native_size(canvas: np.ndarray, scale: float) -> tuple[float, float]:
    """Figure size (inches) at which one image pixel is ``scale`` screen pixels."""
    dpi = plt.rcParams["figure.dpi"]
    return scale * canvas.shape[1] / dpi, scale * canvas.shape[0] / dpi


# -- ADA: the augmentations and the controller ----------------------------------------


@torch.no_grad()
def augment_examples(
    image: torch.Tensor,
    ops: Sequence[str] = OPS,
    pipes: Sequence[str] = ("bgc",),
    *,
    p: float = 1.0,
    n: int = 6,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """``n`` random draws of each operation alone, then of each named pipeline, all at probability ``p``.

    Each row gets a fresh generator seeded with ``seed``, so a row is
    reproducible on its own. Returns float images ``[n, 1, H, W]`` per label;
    they may leave [-1, 1] (brightness and contrast are not clamped in training
    either), :func:`augment_figure` clips them for display.
    """
    x = _as_batch(image).expand(n, -1, -1, -1)
    pipelines = {op: AugmentPipe(**{op: 1.0}, supersample=True) for op in ops}
    pipelines |= {f"{name} (all)": AugmentPipe.from_name(name) for name in pipes}
    out = {}
    for label, pipe in pipelines.items():
        draws = GeneratorDraws(torch.Generator().manual_seed(seed), x.device)
        out[label] = pipe.to(x.device)(x, p, draws)
    return out


def augment_figure(image: torch.Tensor, examples: Mapping[str, torch.Tensor], scale: float = 1.0) -> Figure:
    """One row per label: the original frame, a white gap, then the augmented draws."""
    original = to_uint8(_as_batch(image).clamp(-1, 1))
    w = original.shape[3]
    left = make_grid(original, nrow=1, pad=_PAD)
    gap = np.full((left.shape[0], max(w // 6, 4)), 255, np.uint8)
    rows = [np.concatenate([left, gap, make_grid(images.clamp(-1, 1), nrow=len(images), pad=_PAD)], axis=1)
            for images in examples.values()]
    canvas = np.concatenate(rows, axis=0)
    fig, ax = plt.subplots(figsize=_native_size(canvas, scale))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255)
    ax.set_yticks([(i + 0.5) * left.shape[0] for i in range(len(rows))], list(examples))
    ax.set_xticks([_PAD + w / 2], ["original"])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.tight_layout()
    return fig


def ada_curves(run: str | Path, target: float | None = None) -> Figure:
    """The augmentation probability ``p`` and the overfitting heuristic ``r_t`` against kimg."""
    log = read_log(run)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for ax, key, title in ((axes[0], "augment_p", "augmentation probability $p$"),
                           (axes[1], "ada_rt", r"$r_t = \mathrm{E}[\mathrm{sign}\,D(x_\mathrm{real})]$")):
        if key in log:
            sel = log.dropna(subset=[key])
            ax.plot(sel["kimg"], sel[key], marker="." if len(sel) < 30 else None)
        ax.set_title(title)
        ax.set_xlabel("kimg")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(-0.02, 1.02)
    if target is not None:
        axes[1].axhline(target, ls="--", c="k", lw=0.8, label=f"target {target:g}")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def lazy_regularizer_curves(run: str | Path, keys: Sequence[str] = ("loss_r1", "loss_pl")) -> Figure:
    """Regularisers that run every k-th step are missing from ticks without such a step: plot only the ticks
    that have them, with markers, so short runs show points instead of an empty panel."""
    log = read_log(run)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        if key in log:
            sel = log.dropna(subset=[key])
            ax.plot(sel["kimg"], sel[key], marker="o" if len(sel) < 30 else None, ms=4)
        ax.set_title(key)
        ax.set_xlabel("kimg")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# -- style mixing -------------------------------------------------------------------------


@torch.no_grad()
def style_mixing(
    G: Generator,
    z_rows: torch.Tensor,
    z_cols: torch.Tensor,
    cutoff: int,
    *,
    psi: float = 1.0,
    noise_mode: str = "const",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images of the row latents, of the column latents, and ``mixed[i, j]``: layers ``< cutoff`` (the coarse,
    low-resolution styles) from row ``i``, the rest from column ``j``.

    ``G`` is an :class:`echolib.models.stylegan2.Generator`. With ``noise_mode="const"`` the per-pixel
    noise is the same fixed draw for every image, so the differences are the styles' alone.
    """
    if not 0 <= cutoff <= G.num_ws:
        raise ValueError(f"cutoff must be in [0, {G.num_ws}], got {cutoff}")
    ws_r = G.map(z_rows, psi=psi)
    ws_c = G.map(z_cols, psi=psi)
    r, c = len(z_rows), len(z_cols)
    coarse = torch.arange(G.num_ws, device=ws_r.device)[None, None, :, None] < cutoff
    mixed = torch.where(coarse, ws_r[:, None], ws_c[None, :]).reshape(r * c, G.num_ws, -1)

    def synth(ws: torch.Tensor) -> torch.Tensor:
        return G.synthesize(ws, noise_mode=noise_mode).float().clamp(-1, 1)

    img_m = synth(mixed)
    return synth(ws_r), synth(ws_c), img_m.reshape(r, c, *img_m.shape[1:])


def style_mixing_figure(rows: torch.Tensor, cols: torch.Tensor, mixed: torch.Tensor, title: str | None = None,
                        scale: float = 1.0) -> Figure:
    """The classic layout: column sources on top, row sources on the left, their mixes in between."""
    r, c = mixed.shape[:2]
    blank = torch.ones_like(rows[:1])
    tiles = torch.cat([blank, cols] + [torch.cat([rows[i : i + 1], mixed[i]]) for i in range(r)])
    grid = make_grid(tiles, nrow=c + 1, pad=_PAD)
    fig, ax = plt.subplots(figsize=_native_size(grid, scale))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255)
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# -- configurations and side-by-side grids ---------------------------------------------


def _first_sentence(path: Path, name: str) -> str:
    """The first sentence of a config file's leading comment, without its ``<Arch> <name>:`` prefix."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    text = re.sub(rf"^StyleGAN2-ADA\s+`?{re.escape(name)}`?:\s*", "", text)
    return re.split(r"(?<=[.)])\s+(?=[A-Z])", text, maxsplit=1)[0]


def config_table(arch: str = "stylegan2_ada", names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per configuration, read from its YAML file with the dataclass defaults filled in."""
    rows = []
    for name in names if names is not None else sorted(config_names(arch), key=_natural):
        run = load_config(arch, name)
        m, t = run.model, run.train
        rows.append({
            "config": name, "batch": t.batch, "r1_gamma": m.r1_gamma, "augment": m.augment,
            "ada_target": m.ada_target if m.augment == "ada" else None, "augpipe": m.augpipe,
            "mapping_layers": m.mapping_layers, "channel_base": m.channel_base, "lr": m.lr,
            "ema_kimg": t.ema_kimg, "resolution": t.resolution, "kimg": t.kimg, "seed": t.seed,
            "note": _first_sentence(config_path(arch, name), name),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("config")


def _natural(name: str) -> tuple:
    """E2 before E10; named configs (auto, smoke) after the numbered ones."""
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", name)
    return (0, m.group(1), int(m.group(2))) if m else (1, name, 0)


def side_by_side(panels: Mapping[str, torch.Tensor], nrow: int = 4, scale: float = 1.0) -> Figure:
    """Image grids next to each other, one titled panel each; resolutions may differ between panels."""
    grids = {title: make_grid(images, nrow=nrow) for title, images in panels.items()}
    fig, axes = plt.subplots(1, len(grids), figsize=(4.2 * scale * len(grids), 4.4 * scale), squeeze=False)
    for ax, (title, grid) in zip(axes.flat, grids.items()):
        ax.imshow(grid, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    return fig


def study_fid_curves(logs: pd.DataFrame, highlight: str | None = None) -> Figure:
    """FID against kimg for each configuration of a study log table (``load_study_logs`` rows of one arch);
    the best point of ``highlight`` is marked."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for config, df in sorted(logs.groupby("config"), key=lambda item: _natural(item[0])):
        fid = df.dropna(subset=["fid", "kimg"]).sort_values("kimg")
        strong = config == highlight
        ax.plot(fid["kimg"], fid["fid"], label=config, lw=1.6 if strong else 0.9, alpha=1.0 if strong else 0.75)
        if strong and len(fid):
            best = fid.loc[fid["fid"].idxmin()]
            ax.plot(best["kimg"], best["fid"], "k*", ms=10)
            ax.annotate(f"{config}: {best['fid']:.2f} at {best['kimg']:.0f} kimg", (best["kimg"], best["fid"]),
                        xytext=(10, -4), textcoords="offset points", fontsize=8, va="top",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
            ax.set_ylim(bottom=0.6 * best["fid"])
    ax.set_yscale("log")
    ax.set_xlabel("kimg")
    ax.set_ylabel("FID (the study's)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(ncol=4, fontsize=7)
    fig.tight_layout()
    return fig
