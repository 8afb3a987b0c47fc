"""The reference study's own training logs (``seed-reference/training-logs``), read carefully.

The logs are the study's CSV exports. Some end with summary rows (row indices
of the best epochs, means, deviations) whose ``epoch`` cell is empty or text;
those are dropped: only rows whose epoch is a number are measurements.
Column names differ per architecture; they are normalised to
``G_loss, D_loss, fid, kid, jsd, ssim, psnr, lpips`` and ``kimg`` (StyleGAN2-ADA).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

#: direction of "better" for each metric the study logged
LOWER_IS_BETTER = {"fid": True, "kid": True, "jsd": True, "lpips": True, "ssim": False, "psnr": False}

_RENAME = {"G_loss": "loss_G", "D_loss": "loss_D", "FID": "fid", "KID": "kid", "JSD": "jsd", "SSIM": "ssim",
           "PSNR": "psnr", "LPIPS": "lpips", "kimg_acu": "kimg"}
_ARCH_FILES = {
    "stylegan2_ada": (r"Metrics_Style(E\d+)\.csv", lambda m: m.group(1)),
    "medgan": (r"metrics_medgan(M\d+)\.csv", lambda m: m.group(1)),
    "wgan": (r"metrics_wgan(W\d+)\.csv", lambda m: m.group(1)),
    "vqgan": (r"metrics_history_disvq(\d+)\.csv", lambda m: f"VQ{m.group(1)}"),
}


def read_log(path: str | Path) -> pd.DataFrame:
    """One study CSV with summary rows dropped and columns normalised."""
    df = pd.read_csv(path)
    df.columns = [c.strip() for c in df.columns]
    df["epoch"] = pd.to_numeric(df["epoch"], errors="coerce")
    df = df[df["epoch"].notna()].copy()
    df = df.drop(columns=[c for c in ("kimg",) if c in df and "kimg_acu" in df])
    df = df.rename(columns={c: _RENAME.get(c, c) for c in df.columns})
    for c in df.columns:
        if c != "carpeta":
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df.reset_index(drop=True)


def load_study_logs(root: str | Path) -> pd.DataFrame:
    """All metric logs as one long table with ``arch`` and ``config`` columns."""
    root = Path(root)
    frames = []
    for arch, (pattern, name) in _ARCH_FILES.items():
        folder = root / arch
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            m = re.fullmatch(pattern, path.name)
            if not m:
                continue
            df = read_log(path)
            df.insert(0, "config", name(m))
            df.insert(0, "arch", arch)
            frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["arch", "config", "epoch"])
    return pd.concat(frames, ignore_index=True)


def study_best(root: str | Path) -> pd.DataFrame:
    """Best value of each metric per (arch, config), and the epoch/kimg of the best FID."""
    logs = load_study_logs(root)
    rows = []
    for (arch, config), df in logs.groupby(["arch", "config"], sort=True):
        row: dict = {"arch": arch, "config": config}
        for metric, lower in LOWER_IS_BETTER.items():
            if metric in df and df[metric].notna().any():
                row[metric] = df[metric].min() if lower else df[metric].max()
        if "fid" in df and df["fid"].notna().any():
            best = df.loc[df["fid"].idxmin()]
            row["best_epoch"] = float(best["epoch"])
            if "kimg" in df and pd.notna(best.get("kimg")):
                row["best_kimg"] = float(best["kimg"])
        rows.append(row)
    return pd.DataFrame(rows)


def study_best_per_arch(root: str | Path) -> pd.DataFrame:
    """The configuration with the lowest FID for each architecture (the study's headline numbers)."""
    best = study_best(root).dropna(subset=["fid"])
    return best.loc[best.groupby("arch")["fid"].idxmin()].reset_index(drop=True)
