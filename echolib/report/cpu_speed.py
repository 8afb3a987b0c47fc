"""Training on two CPU cores: the speed of each ``cpu64`` variant and bf16's stability, as tables from records.

``bench/train_speed.py --device cpu --config cpu64 --variants cpu --flops``
prints one JSON line per (architecture, variant); a folder
``book/measured/cpu-<date>/`` keeps them as ``train_speed.jsonl`` beside the
machine's description and the stability runs (``<arch>-cpu64-<precision>-s<seed>``:
a kept run's ``log.csv``, ``config.yaml``, ``run.json`` and ``metrics.jsonl``,
scored by ``evaluate --runs``). The chapter shows these tables and types no
number of its own.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import torch

from echolib.devices import autocast_dtype, uses_channels_last
from echolib.errors import EchoError
from echolib.io import read_jsonl
from echolib.train.run_config import load_config
from echolib.train.run_folder import RunFolder

SPEED = "train_speed.jsonl"
#: the order variants appear in, fastest-to-set-up first (bench/train_speed.py's ``cpu`` group)
VARIANT_ORDER = ("fp32-1thread", "fp32", "bf16", "bf16-cl", "compiled", "config")
_STABILITY_RUN = re.compile(r"^(?P<arch>.+)-(?P<config>[^-]+)-(?P<precision>fp32|bf16)-s(?P<seed>\d+)$")


def latest_cpu_records(root: str | Path) -> Path | None:
    """The newest ``cpu-*`` folder under ``root`` that holds a speed benchmark, or None."""
    found = sorted(p.parent for p in Path(root).glob(f"cpu-*/{SPEED}"))
    return found[-1] if found else None


def latest_stability_records(root: str | Path, arch: str = "stylegan2_ada") -> Path | None:
    """The newest ``cpu-*`` folder under ``root`` that keeps fp32/bf16 stability runs of ``arch``, or None.

    A later speed benchmark may be kept without stability runs: each table
    reads the newest folder that has its own records.
    """
    found = sorted({log.parent.parent for log in Path(root).glob(f"cpu-*/{arch}-*/{RunFolder.LOG}")
                    if (m := _STABILITY_RUN.match(log.parent.name)) and m["arch"] == arch})
    return found[-1] if found else None


def speed_table(folder: str | Path) -> pd.DataFrame:
    """One row per (architecture, variant): s/kimg, GFLOP/s, peak memory, speed-ups, and what the config uses.

    With ``--rounds`` the row is the variant's median over its rounds.

    ``speed-up`` is over eager fp32 on one thread (how the cpu64 runs trained
    before), ``vs fp32`` over eager fp32 on every core; ``compile s`` is the
    warm-up tick's time beyond a steady tick's (compiled variants only);
    ``cpu64 uses`` marks the variant that trains the way the configuration is
    written today (read from it, not from the record).
    """
    records = _cases(read_jsonl(Path(folder) / SPEED))
    uses = {(arch, config): _config_settings(arch, config) for arch, config in {(r["architecture"], r["config"]) for r in records}}
    rows = []
    for r in records:
        rows.append({
            "architecture": r["architecture"],
            "variant": r["variant"] + (f" (on {r['on']})" if r.get("on") else ""),
            "threads": r.get("threads"),
            "s/kimg": r.get("sec_per_kimg"),
            "rounds": r.get("rounds", 1 if "sec_per_kimg" in r else None),
            "GFLOP/s": r.get("achieved_gflops"),
            "peak GB": r.get("peak_mem_gb"),
            "speed-up": r.get("speedup", 1.0 if r["variant"] == "fp32-1thread" else None),
            "vs fp32": r.get("speedup_vs_fp32", 1.0 if r["variant"] == "fp32" else None),
            "compile s": r.get("compile_s"),
            "cpu64 uses": "yes" if uses[r["architecture"], r["config"]] == _settings(r) else "",
            "load": _load(r),
            "error": r.get("error", ""),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    if not table["error"].astype(bool).any():
        table = table.drop(columns="error")
    order = {v: i for i, v in enumerate(VARIANT_ORDER)}
    table["_order"] = [order.get(v.split(" ")[0], len(order)) for v in table["variant"]]
    table = table.sort_values(["architecture", "_order"], kind="stable").drop(columns="_order")
    return table.set_index(["architecture", "variant"])


def _cases(records: list[dict]) -> list[dict]:
    """An architecture's summary lines (medians over ``--rounds``) where it has them, else its single cases."""
    summarised = {r["architecture"] for r in records if r.get("summary")}
    return [r for r in records if "variant" in r and bool(r.get("summary")) == (r["architecture"] in summarised)]


def _settings(record: dict) -> tuple | None:
    """How a benchmark case trained: precision, channels_last, compiled, on every core or one thread."""
    if "sec_per_kimg" not in record:
        return None
    return record.get("precision"), bool(record.get("channels_last")), bool(record.get("compile")), (
        record["variant"] == "fp32-1thread")  # fmt: skip


def _config_settings(arch: str, config: str) -> tuple | None:
    """How ``config`` as it is written today trains on a CPU (every core): compared with each case's settings."""
    try:
        t = load_config(arch, config).train
    except EchoError:  # an architecture or configuration this installation lacks
        return None
    cpu = torch.device("cpu")
    precision = "bf16" if autocast_dtype(t.precision, cpu) is not None else "fp32"
    return precision, uses_channels_last(t.memory_format, cpu), t.compile, False


def _load(record: dict) -> str:
    """The 1-minute load average before and after a case: how much else ran on the machine meanwhile."""
    before, after = record.get("load_avg_before"), record.get("load_avg_after")
    return "" if before is None else f"{before:.1f}-{after:.1f}"


def config_speedups(folder: str | Path) -> pd.DataFrame:
    """Per architecture: the variant ``cpu64`` trains with, its s/kimg and speed-ups (the target's columns)."""
    table = speed_table(folder).reset_index()
    used = table[table["cpu64 uses"] == "yes"].drop_duplicates("architecture", keep="last")
    return used.set_index("architecture")[["variant", "s/kimg", "speed-up", "vs fp32"]]


def stability_runs(folder: str | Path, arch: str = "stylegan2_ada") -> pd.DataFrame:
    """The kept fp32 and bf16 runs of ``arch``: precision, seed, length, finite losses, their evaluation.

    ``echo-FID`` and ``KID`` (with its standard deviation over subsets) are the
    ``evaluate --runs`` records (``source: compare``) at each run's final kimg:
    its samples against the held-out videos.
    """
    rows = []
    for run in sorted(Path(folder).glob(f"{arch}-*")):
        m, kept = _STABILITY_RUN.match(run.name), RunFolder(run)
        if not (m and kept.log_file.is_file()):
            continue
        log = pd.read_csv(kept.log_file)
        losses = log[[c for c in log.columns if c.startswith("loss")]].astype(float)
        meta = kept.meta() if kept.meta_file.is_file() else {}
        scored = _compare_records(kept)
        rows.append({
            "run": run.name,
            "precision": meta.get("precision", m["precision"]),
            "seed": int(m["seed"]),
            "kimg": float(log["kimg"].iloc[-1]),
            "losses finite": bool(losses.map(math.isfinite).all().all()),
            "echo-FID": scored.get("fid", {}).get("value"),
            **_interval_columns("echo-FID", scored.get("fid", {})),
            "KID": scored.get("kid", {}).get("value"),
            **_interval_columns("KID", scored.get("kid", {})),
            "KID std": scored.get("kid", {}).get("std"),
            "n fake / real": _counts(scored.get("fid", {})),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def _compare_records(run: RunFolder) -> dict[str, dict]:
    """The latest ``evaluate --runs`` record of each metric among ``run``'s records."""
    records = [r for r in run.records() if r.get("source") == "compare"] if run.metrics_file.is_file() else []
    return {r["metric"]: r for r in sorted(records, key=lambda r: r.get("kimg") or 0)}


def _counts(record: dict) -> str:
    return f"{record['n_fake']} / {record['n_real']}" if record else ""


def _interval_columns(name: str, record: dict) -> dict[str, float]:
    """``<name> low`` and ``<name> high``: the record's 95 % interval, NaN where it has none."""
    interval = record.get("interval")
    low, high = interval if interval and None not in interval else (math.nan, math.nan)
    return {f"{name} low": float(low), f"{name} high": float(high)}


def _bounds(runs: pd.DataFrame, metric: str, spread: str | None) -> tuple[pd.Series, pd.Series]:
    """Each run's 95 % interval of ``metric`` (from its record); without one, the value widened by ``spread``."""
    value = runs[metric].astype(float)
    low, high = runs[f"{metric} low"].astype(float), runs[f"{metric} high"].astype(float)
    widen = runs[spread].astype(float).fillna(0.0) if spread else 0.0
    return low.fillna(value - widen), high.fillna(value + widen)


def stability_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """fp32's run-to-run range of echo-FID and KID beside bf16's, and whether every bf16 run lies inside it.

    The fp32 range spans the 95 % intervals of every fp32 seed (half-samples
    of the held-out videos, as each record states; a record without one counts
    its value, KID widened by its standard deviation over subsets): what fp32
    itself gives from seed to seed. bf16 is stable where each bf16 value falls
    inside it.
    """
    if runs.empty:
        return pd.DataFrame()
    rows = []
    for metric, spread in (("echo-FID", None), ("KID", "KID std")):
        fp32, bf16 = runs[runs["precision"] == "fp32"], runs[runs["precision"] == "bf16"]
        lows, highs = _bounds(fp32, metric, spread)
        low, high = lows.min(), highs.max()
        inside = bool(((bf16[metric] >= low) & (bf16[metric] <= high)).all()) if len(bf16) else None
        rows.append({
            "metric": metric,
            "fp32 runs": ", ".join(f"{v:.4g}" for v in fp32[metric]),
            "fp32 low": float(low),
            "fp32 high": float(high),
            "bf16 runs": ", ".join(f"{v:.4g}" for v in bf16[metric]),
            "bf16 inside": inside,
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("metric")
