"""The comparative study: every run and every reference evaluated by the same code.

Rows of the comparison are

* each run folder under ``runs/<arch>/<config>`` (its final EMA generator,
  ``n`` samples), evaluated against the *held-out* videos of the data (the
  trainer never saw them) with the training split as the memorisation bank;
* the study's published model (its 2,000 StyleGAN2-ADA E4 samples), evaluated
  by exactly the same call;
* the data itself (training frames against the held-out ones: what a generator
  that copies its training set would score) and, on other data than the
  phantom, the built-in phantom (:func:`reference_records`);
* the study's own reported numbers, read from its training logs (Inception
  features, its own code: a different metric, shown for continuity only).

Evaluations are appended to each run's ``metrics.jsonl`` with
``source: compare``; a run whose latest checkpoint already has records of an
evaluation like this one (same data, resolution, extractor, metrics, sample
count and seed) is not evaluated again, so rebuilding the book adds no
duplicates. Only runs trained on the data of the comparison take part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from echolib.data.frames import FrameDataset, holdout_split
from echolib.errors import DataError
from echolib.report.records import read_run_meta
from echolib.train import checkpoint as ckpt

#: order of architectures in tables and figures
ARCH_ORDER = ("stylegan2_ada", "diffusion", "vqgan", "wgan", "medgan", "pix2pix")
#: metrics of the comparison and whether lower is better
DIRECTION = {
    "fid": True, "kid": True, "precision": False, "recall": False, "jsd": True, "jsd_sector": True,
    "ssim": False, "psnr": False, "ms_ssim": True, "memorized_fraction": True, "c2st_auc": None, "lpips": True,
}
DEFAULT_METRICS = ("fid", "kid", "precision", "recall", "jsd", "ssim", "psnr", "ms_ssim", "memorized_fraction",
                   "c2st_auc")
#: what the radar and heatmap rank by default: the metrics that order models (SSIM and PSNR on random pairs
#: score real-vs-real like real-vs-generated, and MS-SSIM's best value is the data's, not an extreme)
RANKED = ("fid", "kid", "precision", "recall", "jsd", "jsd_sector", "memorized_fraction", "c2st_auc", "lpips")


@dataclass(frozen=True)
class Splits:
    """The data a comparison is made against."""

    train: FrameDataset
    heldout: FrameDataset
    source: str
    fingerprint: str = ""  # of the whole dataset, as a run folder records it (run.json data_fingerprint)


def evaluation_splits(data: str | Path, resolution: int = 128, holdout: float = 0.1, seed: int = 0) -> Splits:
    """The same by-video split the trainer uses (``train.holdout``, ``train.holdout_seed``)."""
    from echolib.data.sources import resolve_data

    path = resolve_data(data, size=resolution)
    full = FrameDataset(path, resolution=resolution)
    from echolib.train.run_records import fingerprint

    train_idx, held_idx = holdout_split(full.video_ids, holdout, seed)
    return Splits(full.subset(train_idx), full.subset(held_idx), str(data), fingerprint(full))


def architectures_with(config: str, names: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """Which architectures a comparison of ``config`` can train, and which it must leave out.

    Not every configuration exists for every architecture (``smoke_cond`` is the
    diffusion model's alone, and a user's own architecture may lack ``cpu64``), and
    a comparison should say what it left out rather than fail. A YAML path is taken
    as given for every architecture.
    """
    from echolib.errors import ConfigError
    from echolib.models.registry import available_architectures, config_names

    known = available_architectures()
    names = known if names is None else list(names)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"architectures: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    has = [n for n in names if Path(config).is_file() or config in config_names(n)]
    return has, [n for n in names if n not in has]


def find_runs(runs: str | Path, splits: Splits | None = None) -> list[Path]:
    """Run folders with at least one checkpoint, in the book's architecture order.

    With ``splits``, only runs trained on that data (the same data argument, or
    the same frames by fingerprint): a runs folder may also hold runs of other
    data, whose scores against these held-out videos would mean nothing.
    """
    found = [p.parent for p in Path(runs).glob("*/*/checkpoints") if ckpt.list_checkpoints(p)]
    if splits is not None:
        found = [r for r in found if trained_on(r, splits)]
    return sorted(found, key=lambda r: (_arch_rank(r.parent.name), r.name))


def trained_on(run: Path, splits: Splits) -> bool:
    """Whether ``run`` was trained on the data ``splits`` come from (its ``run.json``)."""
    meta = read_run_meta(run)
    return meta.get("data") == splits.source or meta.get("data_fingerprint") == splits.fingerprint


def _arch_rank(arch: str) -> int:
    return ARCH_ORDER.index(arch) if arch in ARCH_ORDER else len(ARCH_ORDER)


def latest_kimg(run: Path) -> float:
    return int(ckpt.list_checkpoints(run / "checkpoints")[-1].stem.split("-")[1]) / 1000.0


def run_samples(run: Path, n: int, *, size: int = 128, seed: int = 0, device: str = "auto",
                batch: int = 64, conditions_from: FrameDataset | None = None) -> torch.Tensor:
    """``n`` samples of the run's latest EMA generator as uint8 ``[n, 1, size, size]`` (drawn once, reused).

    Samples of a run trained at another resolution are resized to ``size``
    (area when shrinking, bilinear when enlarging) so every row of a comparison
    is measured at one resolution. An image-conditioned model (Pix2Pix) translates the
    conditions of ``conditions_from``'s frames, each in turn and again from the
    first when ``n`` is larger, so its samples come from as many unseen hearts
    as there are frames. Without it, it draws from the few conditions its
    checkpoint stores, and ``n`` samples repeat those few hearts: too little
    variety for recall or a two-sample test to mean anything.
    """
    from echolib.images import to_uint8
    from echolib.train.sampling import load_model

    model, _ = load_model(run, device=device)
    conditions = None
    if model.image_conditioned and conditions_from is not None and len(conditions_from):
        conditions = model.make_conditions(frames_at(conditions_from, model.resolution)).to(model.device)
    g = torch.Generator(device=model.device).manual_seed(seed)
    chunks = []
    for start in range(0, n, batch):
        m = min(batch, n - start)
        given = {} if conditions is None else {"condition": conditions[torch.arange(start, start + m) % len(conditions)]}
        x = model.sample(m, g, **given).float()
        if x.shape[-1] != size:
            mode = "area" if x.shape[-1] > size else "bilinear"
            x = torch.nn.functional.interpolate(x, size=(size, size), mode=mode).clamp(-1, 1)
        chunks.append(to_uint8(x).cpu())
    return torch.cat(chunks)


def frames_at(frames: FrameDataset, resolution: int) -> FrameDataset:
    """The same frames loaded from their source at ``resolution``, as a run trained at that size saw them.

    Conditions (edges, masks) are computed at the model's own size: edges
    found at 128 px and shrunk are not the edges a 64 px model learned from.
    """
    if frames.resolution == resolution:
        return frames
    if frames.source is None:
        raise DataError(f"frames without a source cannot be reloaded at {resolution} px")
    full = FrameDataset(frames.source, resolution=resolution)
    index = {name: i for i, name in enumerate(full.names)}
    missing = [name for name in frames.names if name not in index]
    if missing:
        raise DataError(f"{frames.source}: {len(missing)} frames not found at {resolution} px (first: {missing[0]})")
    return full.subset([index[name] for name in frames.names])


def is_image_conditioned(run: Path) -> bool:
    """Whether the run's architecture translates maps of frames (from its run.json; nothing loaded)."""
    from echolib.models.registry import model_class

    arch = read_run_meta(run).get("arch")
    return bool(arch) and model_class(arch).image_conditioned


def evaluate_run(run: Path, images: torch.Tensor, splits: Splits, metrics: Sequence[str] = DEFAULT_METRICS, *,
                 extractor: str = "echo", seed: int = 0, device: str = "auto") -> list[dict[str, Any]]:
    """Records for a run's samples against the held-out videos, appended to its ``metrics.jsonl``.

    When the run's latest checkpoint already has the records of an evaluation
    like this one, those are returned instead of evaluating (and appending) again.
    """
    from echolib.metrics import append_records, evaluate

    context = _evaluation_context(run, splits, metrics, len(images), extractor, seed)
    earlier = _records_in_context(run, context, metrics)
    if earlier is not None:
        return earlier
    records = evaluate(splits.heldout, images, metrics=list(metrics), extractor=extractor, train=splits.train,
                       seed=seed, device=device, kimg=context["kimg"], run=str(run))
    for r in records:
        r.update({k: v for k, v in context.items() if k not in ("n_fake", "kimg")})
    append_records(run / "metrics.jsonl", records)
    return records


def earlier_evaluation(run: Path, splits: Splits, metrics: Sequence[str] = DEFAULT_METRICS, *, n: int,
                       extractor: str = "echo", seed: int = 0) -> list[dict[str, Any]] | None:
    """The records of an evaluation like this one at the run's latest checkpoint, or None (then nothing to reuse).

    Lets a caller skip drawing ``n`` samples (minutes for a diffusion model)
    that :func:`evaluate_run` would not use.
    """
    return _records_in_context(run, _evaluation_context(run, splits, metrics, n, extractor, seed), metrics)


def _records_in_context(run: Path, context: dict[str, Any], metrics: Sequence[str]) -> list[dict[str, Any]] | None:
    from echolib.io import read_jsonl

    earlier: dict[str, dict[str, Any]] = {}
    for r in read_jsonl(run / "metrics.jsonl"):
        if all(r.get(k) == v for k, v in context.items()):
            earlier[r["metric"]] = r  # the latest of each metric (one evaluation's records are appended together)
    return [earlier[m] for m in metrics if m in earlier] if earlier else None


def _evaluation_context(run: Path, splits: Splits, metrics: Sequence[str], n: int, extractor: str,
                        seed: int) -> dict[str, Any]:
    context = {"source": "compare", "data": splits.source, "resolution": splits.heldout.resolution,
               "features": extractor, "seed": seed, "requested": list(metrics), "n_fake": n, "kimg": latest_kimg(run)}
    if is_image_conditioned(run):  # records from the stored conditions alone (before 2026-11-27) are not reused
        context["conditions"] = "held-out frames"
    return context


def evaluate_reference(name: str, images: FrameDataset | str | Path, splits: Splits,
                       metrics: Sequence[str] = DEFAULT_METRICS, *, extractor: str = "echo", n: int = 1000,
                       seed: int = 0, device: str = "auto") -> list[dict[str, Any]]:
    """Records for a fixed set of images (the study's samples, the phantom, held-out real frames)."""
    from echolib.metrics import evaluate

    fake = images if isinstance(images, FrameDataset) else FrameDataset(images, resolution=splits.train.resolution)
    records = evaluate(splits.heldout, fake, metrics=list(metrics), extractor=extractor, train=splits.train,
                       n=min(n, len(fake)), seed=seed, device=device, run=name)
    for r in records:
        r.update(source="reference", data=splits.source)
    return records


def reference_records(splits: Splits, study_samples: str | Path | None = None,
                      metrics: Sequence[str] = DEFAULT_METRICS, *, extractor: str = "echo", n: int = 1000,
                      seed: int = 0, device: str = "auto") -> tuple[list[dict[str, Any]], dict[str, FrameDataset]]:
    """Records of every reference row, and the image sets behind them (for the violins and grids).

    * the training frames themselves (what a copier scores);
    * the study's published samples, when the folder exists;
    * the built-in phantom, when the comparison is on other data (on the
      phantom it *is* the data, and the training-frames row already says it).
    """
    from echolib.data.sources import is_phantom, resolve_data

    sets: dict[str, tuple[str, str, FrameDataset]] = {
        "training frames": ("data", "training frames (a copier)", splits.train)}
    if study_samples is not None and Path(study_samples).is_dir():
        sets["published model"] = ("stylegan2_ada (published)", "study E4 samples",
                                   FrameDataset(study_samples, limit=n, resolution=splits.train.resolution))
    if not is_phantom(splits.source):
        phantom = resolve_data("phantom", size=splits.train.resolution, progress=False)
        sets["phantom"] = ("phantom", "built-in phantom", FrameDataset(phantom, limit=n,
                                                                       resolution=splits.train.resolution))
    records: list[dict[str, Any]] = []
    for name, (arch, cfg, images) in sets.items():
        recs = evaluate_reference(name, images, splits, metrics, extractor=extractor, n=n, seed=seed, device=device)
        records += label_records(recs, "reference", arch, cfg)
    return records, {name: images for name, (_, _, images) in sets.items()}


def run_label(run: str) -> tuple[str, str]:
    p = Path(run)
    return p.parent.name, p.name


def comparison_table(records: Sequence[dict[str, Any]], metrics: Sequence[str] = DEFAULT_METRICS) -> pd.DataFrame:
    """One row per architecture/configuration (and reference), the best value of each metric.

    "Best" is over the records of a row (e.g. several checkpoints), lowest for
    distances, highest for precision/recall/SSIM/PSNR, closest to 0.5 for the
    classifier AUC. Column names carry the feature extractor where one is used.
    """
    df = pd.DataFrame.from_records(list(records))
    if df.empty:
        return df
    rows = []
    for (kind, row_name), group in df.groupby(["kind", "row"], sort=False):
        row: dict[str, Any] = {"architecture": group["architecture"].iloc[0], "configuration": group["configuration"].iloc[0],
                               "kind": kind}
        for metric in metrics:
            sel = group[group["metric"] == metric]
            if sel.empty:
                continue
            col = column_name(metric, sel["extractor"].iloc[0])
            direction = DIRECTION.get(metric)
            values = sel["value"].astype(float)
            if direction is None:
                best = values.iloc[(values - 0.5).abs().argmin()]
            else:
                best = values.min() if direction else values.max()
            row[col] = best
        rows.append(row)
    return pd.DataFrame(rows)


def column_name(metric: str, extractor: Any) -> str:
    if isinstance(extractor, str) and extractor and extractor not in ("pixel", "none"):
        return f"{metric} [{extractor}]"
    return metric


def label_records(records: Sequence[dict[str, Any]], kind: str, architecture: str, configuration: str) -> list[dict]:
    out = []
    for r in records:
        r = dict(r)
        r.update(kind=kind, architecture=architecture, configuration=configuration,
                 row=f"{kind}:{architecture}/{configuration}")
        out.append(r)
    return out


def study_rows(study_logs: str | Path) -> pd.DataFrame:
    """The study's own best numbers per architecture/configuration (Inception features, its code)."""
    from echolib.report.study_logs import study_best

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
        direction = DIRECTION.get(metric)
        if direction is None:
            v = -(v - 0.5).abs()
        elif direction:
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
    return [c for c in table.columns if c.split(" [")[0] in RANKED and table[c].notna().any()]


def radar(table: pd.DataFrame, columns: Sequence[str] | None = None) -> Figure:
    """Radar chart of normalised scores (outer = better), one polygon per row, as the study drew.

    By default the axes are the metrics that rank models (:data:`RANKED`); a
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
    from echolib.metrics.evaluate import FeatureCache, resolve_device
    from echolib.metrics.inputs import as_image_set

    return FeatureCache(extractor, resolve_device(device))(as_image_set(images))


def nearest_distances(images: torch.Tensor, bank_features: torch.Tensor, extractor: str = "echo",
                      device: str = "auto") -> np.ndarray:
    """Feature distance of each image to its nearest neighbour in a bank (the memorisation view per image)."""
    feats = features_of(images, extractor=extractor, device=device)
    d = torch.cdist(feats.float(), bank_features.float())
    return d.min(dim=1).values.cpu().numpy()


def samples_side_by_side(grids: dict[str, torch.Tensor], ncol: int = 4) -> Figure:
    """One panel of samples per row label (uint8 or float [-1, 1] images)."""
    from echolib.images import make_grid

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
