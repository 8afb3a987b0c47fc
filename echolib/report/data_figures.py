"""Figures and tables of the data chapter: phantom beside real frames, the study's preprocessing
step by step, its ED/ES heuristic against the truth, and dataset statistics.

Drawing functions return a matplotlib Figure and scoring functions a pandas
DataFrame, so the chapter notebook stays one line per figure or table. The
pixels come from :mod:`echolib.data.echonet` (the study's recipe) and
:mod:`echolib.data.phantom_sim`; nothing here re-implements a preprocessing choice
except :func:`preprocessing_steps`, which splits :func:`~echolib.data.echonet.finish_frame`
into its two operations to show them, and is tested to compose back to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from echolib.data.echonet import (
    BRIGHT,
    OUT_SIZE,
    Agreement,
    chance_agreement,
    finish_frame,
    heuristic_agreement,
    study_mask,
    to_study_gray,
    video_picks,
)
from echolib.data.echonet import clip_picks as _clip_picks
from echolib.data.frames import split_by_video
from echolib.data.manifest import video_id_of
from echolib.data.phantom_sim import SYSTOLE, cycle_phase
from echolib.metrics.pixel import intensity_histogram, sector_mask

KS = (1, 2, 3, 5)  # tolerances (frames) at which the heuristic's picks are scored
ES_COLOR, ED_COLOR, AREA_COLOR = "tab:red", "tab:blue", "0.55"


# -- the study's preprocessing, one operation at a time ----------------------------------
def preprocessing_steps(frame: np.ndarray) -> dict[str, np.ndarray]:
    """The images the study's recipe passes through for one video frame (BGR or gray, any size).

    ``bright`` is the binarisation the frame choice counts: pixels above
    :data:`~echolib.data.echonet.BRIGHT` in the *masked 112x112* frame, before
    any upscaling (the count runs on every frame of a video; only the four chosen
    frames are upscaled and filtered).
    """
    mask = study_mask()
    raw = to_study_gray(frame, np.ones_like(mask))
    masked = raw * mask
    upscaled = cv2.resize(masked, (OUT_SIZE, OUT_SIZE), interpolation=cv2.INTER_LANCZOS4)
    return {
        "raw (112x112)": raw,
        "sector mask": mask,
        "masked": masked,
        "Lanczos-4 to 128": upscaled,
        "bilateral filter": cv2.bilateralFilter(upscaled, 5, 15, 15),
        f"> {BRIGHT} (counted)": masked > BRIGHT,
    }


# -- pictures ----------------------------------------------------------------------------
def _show(ax, image: np.ndarray) -> None:
    image = np.asarray(image)
    if image.dtype == bool or image.max(initial=0) <= 1:  # masks and binarisations: black/white
        ax.imshow(image.astype(np.uint8), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def frame_panels(groups: Mapping[str, np.ndarray], col_labels: Mapping[str, Sequence[str]] | None = None,
                 row_labels: Mapping[str, Sequence[str]] | None = None, size: float = 1.5) -> Figure:
    """Blocks of frames side by side, one block per source, each ``uint8 [rows, cols, H, W]``.

    Same scale and colour map everywhere (0 black, 255 white) so brightness
    compares across sources, as a reader comparing phantom and real would want.
    """
    if not groups:
        raise ValueError("frame_panels: no groups to show")
    blocks = {name: np.asarray(g) for name, g in groups.items()}
    for name, g in blocks.items():
        if g.ndim != 4:
            raise ValueError(f"frame_panels: group {name!r} must be [rows, cols, H, W], got shape {g.shape}")
    rows = max(g.shape[0] for g in blocks.values())
    cols = [g.shape[1] for g in blocks.values()]
    fig = plt.figure(figsize=(size * sum(cols) + 0.5 * len(cols), size * rows + 0.6), layout="constrained")
    subfigs = np.atleast_1d(cast(Any, fig.subfigures(1, len(blocks), width_ratios=cols, wspace=0.03)))
    for sub, (name, g) in zip(subfigs, blocks.items()):
        axes = sub.subplots(rows, g.shape[1], squeeze=False)
        sub.suptitle(name)
        for r in range(rows):
            for c in range(g.shape[1]):
                ax = axes[r, c]
                if r >= g.shape[0]:
                    ax.axis("off")
                    continue
                _show(ax, g[r, c])
                if r == 0 and col_labels and name in col_labels:
                    ax.set_title(col_labels[name][c], fontsize=8)
                if c == 0 and row_labels and name in row_labels:
                    ax.set_ylabel(row_labels[name][r], fontsize=7)
    return fig


def image_row(images: Mapping[str, np.ndarray], size: float = 2.0, title: str | None = None) -> Figure:
    """Titled panels in one row (the preprocessing steps); masks and binary maps drawn black/white."""
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.5), squeeze=False,
                             layout="constrained")
    for ax, (name, image) in zip(axes[0], images.items()):
        _show(ax, image)
        ax.set_title(f"{name}\n{image.shape[1]}x{image.shape[0]}", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def bright_count_curve(counts: Sequence[int] | np.ndarray, *, es: Sequence[int] = (), ed: Sequence[int] = (),
                       lv_area: Sequence[float] | None = None, fps: float | None = None,
                       title: str | None = None) -> Figure:
    """Pixels above the threshold per frame, the study's picks on it, and the true ES/ED frames.

    The picks are recomputed here as the argmax/argmin of ``counts`` (first on
    ties, like :func:`~echolib.data.echonet.study_picks`). With ``lv_area`` (the
    LV cavity in pixels, known for the phantom) a second axis shows what the
    heuristic tries to read indirectly.
    """
    counts = np.asarray(counts)
    systole, diastole = int(np.argmax(counts)), int(np.argmin(counts))
    fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    t = np.arange(len(counts))
    ax.plot(t, counts, color="k", lw=1.4, label=f"pixels > {BRIGHT}")
    ax.plot(systole, counts[systole], "^", ms=10, color=ES_COLOR, label=f'most: "systole" (frame {systole})')
    ax.plot(diastole, counts[diastole], "v", ms=10, color=ED_COLOR, label=f'fewest: "diastole" (frame {diastole})')
    for i, f in enumerate(es):
        ax.axvline(f, color=ES_COLOR, ls="--", lw=1, label="true ES" if i == 0 else None)
    for i, f in enumerate(ed):
        ax.axvline(f, color=ED_COLOR, ls=":", lw=1.4, label="true ED" if i == 0 else None)
    ax.set_xlabel("frame" + (f" ({fps:g} frames/s)" if fps else ""))
    ax.set_ylabel(f"pixels > {BRIGHT} inside the mask")
    ax.set_xlim(-0.5, len(counts) - 0.5)
    handles, labels = ax.get_legend_handles_labels()
    if lv_area is not None:
        ax2 = ax.twinx()
        (line,) = ax2.plot(t, np.asarray(lv_area), color=AREA_COLOR, lw=1.2, label="LV cavity area (right)")
        ax2.set_ylabel("LV cavity, pixels", color=AREA_COLOR)
        handles.append(line)
        labels.append(line.get_label())
    ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    if title:
        ax.set_title(title)
    return fig


# -- the ED/ES heuristic against the truth ------------------------------------------------
PICK_COLUMNS = ("video", "n_frames", "systole", "diastole", "es", "ed")


def clip_picks(clips: Sequence, names: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`~echolib.data.echonet.clip_picks` as a table: the study's picks on phantom clips beside the truth."""
    return _picks_table(_clip_picks(clips, names))


def echonet_picks(root: str | Path, limit: int | None = None) -> pd.DataFrame:
    """:func:`~echolib.data.echonet.video_picks` as a table: the picks on real videos beside the experts' frames."""
    return _picks_table(video_picks(root, limit))


def _picks_table(picks: Sequence) -> pd.DataFrame:
    return pd.DataFrame([dataclasses.asdict(p) for p in picks], columns=list(PICK_COLUMNS))


def cycle_positions(clips: Sequence, picks: pd.DataFrame) -> Figure:
    """Where in the heart cycle the picks fall (phantom clips, whose timing is known).

    The x axis is the fraction of the beat since end-diastole (ES at
    :data:`~echolib.data.phantom_sim.SYSTOLE`); the grey curve is the phantom's
    contraction (0 relaxed, 1 contracted) over the beat, so a reader sees why a
    flat stretch of the curve (diastasis) leaves the "fewest bright pixels" pick
    free to wander.
    """
    fig, ax = plt.subplots(figsize=(8, 3.0), layout="constrained")
    bins = np.linspace(0.0, 1.0, 41).tolist()
    for column, color, label in (("systole", ES_COLOR, 'most bright pixels ("systole")'),
                                 ("diastole", ED_COLOR, 'fewest bright pixels ("diastole")')):
        beat = [float(np.mod(c.times[int(i)], 1.0)) for c, i in zip(clips, picks[column])]
        ax.hist(beat, bins=bins, color=color, alpha=0.6, label=label)
    ax.axvline(SYSTOLE, color=ES_COLOR, ls="--", lw=1, label="true ES")
    for x in (0.0, 1.0):
        ax.axvline(x, color=ED_COLOR, ls=":", lw=1.4, label="true ED" if x == 0 else None)
    ax.set_xlabel("fraction of the beat since end-diastole")
    ax.set_ylabel("clips")
    ax.set_xlim(-0.02, 1.02)
    ax2 = ax.twinx()
    s = np.linspace(0.0, 1.0, 201)
    ax2.plot(s, cycle_phase(s), color=AREA_COLOR, lw=1.2)
    ax2.set_ylabel("contraction (0 ED, 1 ES)", color=AREA_COLOR)
    ax2.set_ylim(-0.05, 1.6)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def by_video(names: Sequence[str], frames: Sequence[int] = (0, 1, 2, 3)) -> tuple[np.ndarray, list[str]]:
    """Positions ``int [V, len(frames)]`` of the frames ``<video>_f<k>`` of every video that has all of them.

    Videos are sorted by id; names without a frame number are ignored.
    """
    index: dict[str, dict[int, int]] = {}
    for i, name in enumerate(names):
        stem = Path(name).stem
        head, _, k = stem.rpartition("_f")
        if head and k.isdigit():
            index.setdefault(video_id_of(name), {})[int(k)] = i
    videos = sorted(v for v, ks in index.items() if all(k in ks for k in frames))
    positions = np.array([[index[v][k] for k in frames] for v in videos], dtype=np.int64).reshape(-1, len(frames))
    return positions, videos


def video_grid(images: torch.Tensor | np.ndarray, names: Sequence[str], n: int, seed: int = 0,
               frames: Sequence[int] = (0, 1, 2, 3)) -> tuple[np.ndarray, list[str]]:
    """``n`` random videos that have all of ``frames`` (``<video>_f<k>`` names) as ``uint8 [n, len(frames), H, W]``."""
    positions, videos = by_video(names, frames)
    if len(videos) < n:
        raise ValueError(f"video_grid: {n} videos with frames {list(frames)} wanted, {len(videos)} found")
    rows = np.sort(np.random.default_rng(seed).choice(len(videos), n, replace=False))
    return _gather(images, positions[rows]), [videos[i] for i in rows]


def _gather(images: torch.Tensor | np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Images at ``positions`` (any shape) as ``uint8 [*positions.shape, H, W]``."""
    arr = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    arr = arr[:, 0] if arr.ndim == 4 else arr
    return arr[positions]


def kept_frames(masked: np.ndarray, systole: int, diastole: int) -> np.ndarray:
    """The four training frames of one video, as the study makes them: first, "systole", "diastole", last.

    ``masked`` is the video as the count sees it (:func:`~echolib.data.echonet.masked_clip`), ``uint8 [T, 112, 112]``;
    returns ``uint8 [4, 128, 128]`` (Lanczos-4 and bilateral filter, :func:`~echolib.data.echonet.finish_frame`).
    """
    return np.stack([finish_frame(masked[i]) for i in (0, systole, diastole, len(masked) - 1)])


def pick_contrast(grid: np.ndarray, videos: Sequence[str] | None = None) -> pd.DataFrame:
    """Bright pixels of the "systole" and "diastole" frames relative to the mean of the first and last frames.

    ``grid`` holds each video's four frames ``uint8 [V, 4, H, W]`` in the study's
    order. A heart's contraction changes the count by some per cent; a ratio far
    below 1 says the "fewest bright pixels" frame is dark for another reason
    (dropout, a gain change, the probe moving), i.e. the rule picked an artefact.
    """
    grid = np.asarray(grid)
    counts = (grid > BRIGHT).reshape(*grid.shape[:2], -1).sum(-1).astype(np.float64)
    ends = counts[:, [0, 3]].mean(1)
    ends[ends == 0] = np.nan
    return pd.DataFrame({"systole / ends": counts[:, 1] / ends, "diastole / ends": counts[:, 2] / ends},
                        index=list(videos) if videos is not None else None)


def contrast_histograms(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """Distributions of :func:`pick_contrast` per source, one panel per pick (1 = as bright as the clip's ends).

    The x range covers all but the outer 0.2% of the pooled values, which are counted in the edge bins.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.0), layout="constrained", sharey=True)
    columns = ("systole / ends", "diastole / ends")
    pooled = np.concatenate([t[c].dropna().to_numpy() for t in tables.values() for c in columns])
    lo, hi = min(np.quantile(pooled, 0.002), 0.9), max(np.quantile(pooled, 0.998), 1.1)
    bins = np.linspace(lo, hi, 60)
    for ax, column in zip(axes, columns):
        for name, table in tables.items():  # the rare values beyond the range are counted in the edge bins
            ax.hist(np.clip(table[column].dropna(), lo, hi), bins=bins, density=True, histtype="step", lw=1.4,
                    label=name)
        ax.axvline(1.0, color="k", ls=":", lw=1)
        ax.set_xlabel(f"bright pixels, {column}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=8)
    return fig


def _row(agreement: Agreement, ks: Sequence[int]) -> dict[str, float]:
    return {"n": agreement.n, "exact": agreement.exact, **{f"within_{k}": agreement.within[k] for k in ks},
            "mean_distance": agreement.mean_distance}


def heuristic_table(picks: pd.DataFrame, ks: Sequence[int] = KS) -> pd.DataFrame:
    """How often each pick lands on (or within ``k`` frames of) the nearest true event, against chance.

    Rows: the study's assignment (most bright pixels -> ES, fewest -> ED), the
    swapped assignment (is "brightest = systole" the right way round?), and a
    uniformly random frame. Distances are to the nearest event of that kind in
    the video, so clips with two EDs are easier, for chance too.
    """
    if picks.empty:
        raise ValueError("heuristic_table: no videos to score")
    rows = []
    for pick, label in (("systole", "most bright pixels"), ("diastole", "fewest bright pixels")):
        for target in ("es", "ed"):
            scored = heuristic_agreement(list(picks[pick]), list(picks[target]), ks)
            rows.append({"pick": label, "target": target.upper(), **_row(scored, ks)})
    for target in ("es", "ed"):
        expected = chance_agreement(list(picks["n_frames"]), list(picks[target]), ks)
        rows.append({"pick": "random frame (expected)", "target": target.upper(), **_row(expected, ks)})
    table = pd.DataFrame(rows).set_index(["pick", "target"])
    study = [("most bright pixels", "ES"), ("fewest bright pixels", "ED")]
    swapped = [("most bright pixels", "ED"), ("fewest bright pixels", "ES")]
    chance = [("random frame (expected)", "ES"), ("random frame (expected)", "ED")]
    return table.loc[study + swapped + chance]


# -- intensities and splits --------------------------------------------------------------------
def _as_tensor(frames) -> torch.Tensor:
    """``uint8`` ``[N, H, W]`` (numpy or torch) or ``[N, 1, H, W]`` -> ``uint8 [N, 1, H, W]`` tensor."""
    t = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
    if t.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames, got {t.dtype}")
    return t[:, None] if t.ndim == 3 else t


def sector_histogram(frames: np.ndarray | torch.Tensor, fan: torch.Tensor | None = None) -> np.ndarray:
    """Pooled 256-bin counts of the pixels inside ``fan`` (default: the frames' own sector).

    Counts the same pixels as :func:`~echolib.metrics.pixel.intensity_histogram`,
    a few hundred frames at a time, so ten thousand frames never become a
    billion-element index tensor.
    """
    t = _as_tensor(frames)
    fan = sector_mask(t) if fan is None else fan
    hist = np.zeros(256, np.float64)
    for start in range(0, len(t), 256):
        hist += intensity_histogram(t[start : start + 256], fan)
    return hist


def intensity_summary(groups: Mapping[str, np.ndarray | torch.Tensor]) -> pd.DataFrame:
    """Per source: share of the image inside the sector and grey-level statistics of the pixels inside it.

    The sector of each source is estimated from its own frames
    (:func:`~echolib.metrics.pixel.sector_mask`): phantom hearts each have their
    own fan, real frames share the study's fixed mask.
    """
    rows = {}
    levels = np.arange(256)
    for name, frames in groups.items():
        t = _as_tensor(frames)
        fan = sector_mask(t)
        p = sector_histogram(t, fan)
        p = p / p.sum()
        mean = float((levels * p).sum())
        cdf = np.cumsum(p)
        p10, median, p90 = (int(np.searchsorted(cdf, q)) for q in (0.1, 0.5, 0.9))
        rows[name] = {"frames": len(t), "sector share": float(fan.float().mean()), "mean": mean,
                      "std": float(np.sqrt((((levels - mean) ** 2) * p).sum())), "p10": p10, "median": median,
                      "p90": p90, "zero share in sector": float(p[0]), f"share > {BRIGHT}": float(p[BRIGHT + 1:].sum())}
    return pd.DataFrame.from_dict(rows, orient="index")


def intensity_histograms(groups: Mapping[str, np.ndarray | torch.Tensor]) -> Figure:
    """Grey-level distributions inside each source's sector: densities (log scale) and cumulative shares."""
    fig, (ax, cax) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    levels = np.arange(256)
    for name, frames in groups.items():
        hist = sector_histogram(frames)
        p = hist / hist.sum()
        ax.step(levels, p, where="mid", lw=1.2, label=name)
        cax.plot(levels, np.cumsum(p), lw=1.4, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("grey level")
    ax.set_ylabel("share of sector pixels")
    ax.set_title("histogram inside the sector")
    cax.axvline(BRIGHT, color="k", ls=":", lw=1)
    cax.text(BRIGHT + 4, 0.3, f"threshold {BRIGHT}", fontsize=8)
    cax.set_xlabel("grey level")
    cax.set_ylabel("cumulative share")
    cax.set_title("cumulative")
    for a in (ax, cax):
        a.set_xlim(0, 255)
        a.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def split_summary(video_ids: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                  names: Sequence[str] = ("train", "val", "test")) -> pd.DataFrame:
    """Frames and videos per split when whole videos are assigned by a seeded hash (as :meth:`FrameDataset.split`)."""
    part = np.asarray(split_by_video(list(video_ids), fractions, seed))
    vids = np.asarray(list(video_ids))
    rows = {n: {"videos": len(set(vids[part == i])), "frames": int((part == i).sum())} for i, n in enumerate(names)}
    rows["all"] = {"videos": len(set(vids)), "frames": len(vids)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["share of frames"] = table["frames"] / max(1, len(vids))
    return table
