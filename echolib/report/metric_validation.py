"""Tables of the metric validation suite, read from the records ``python -m echolib metrics validate --json`` printed.

The book does not rerun the suite on licensed frames at build time: a session
runs it, keeps its JSON lines under ``book/measured/<label>/`` (no images), and
these functions turn them into the tables the chapters show, so no number is
typed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from echolib.io import read_jsonl

SOURCES = ("corruption", "training", "stated", "human")


def read_validation(path: str | Path) -> list[dict[str, Any]]:
    """The records of one suite run (score, agreement and pair lines)."""
    return read_jsonl(Path(path))


def agreement_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows: metric columns; columns: each kind of pair as ``agreed/pairs``, and the share over all pairs."""
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("record") != "agreement":
            continue
        row = rows.setdefault(r["column"], {"metric": r["column"], "_agreed": 0, "_pairs": 0})
        row[r["source"]] = f"{r['agreed']}/{r['pairs']}"
        row["_agreed"] += r["agreed"]
        row["_pairs"] += r["pairs"]
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(list(rows.values()))
    table["all pairs"] = table["_agreed"] / table["_pairs"]
    columns = ["metric"] + [s for s in SOURCES if s in table] + ["all pairs"]
    return table.sort_values("all pairs", ascending=False, kind="stable")[columns].reset_index(drop=True)


def wrong_pairs(records: Sequence[dict[str, Any]], column: str) -> list[str]:
    """The pairs a metric column orders the wrong way, over every kind of pair."""
    return [w for r in records if r.get("record") == "agreement" and r["column"] == column for w in r["wrong"]]


def score_table(records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows: the suite's sets in the order scored; columns: metric columns (all, or those given)."""
    scores: dict[str, dict[str, float]] = {}
    for r in records:
        if r.get("record") == "score":
            scores.setdefault(r["set"], {})[r["column"]] = r["value"]
    table = pd.DataFrame.from_dict(scores, orient="index")
    if columns is not None:
        table = table[[c for c in columns if c in table]]
    table.index.name = "set"
    return table


def suite_context(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What every set was scored against (real data, resolution, set size, extractor), from the first record."""
    first = next((r for r in records if r.get("record") == "score"), {})
    return {k: first.get(k) for k in ("real", "resolution", "n_real", "n", "extractor")}
