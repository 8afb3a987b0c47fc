"""Tables of the metric validation suite, read from the records ``python -m echolib metrics validate --json`` printed.

The book does not rerun the suite on licensed frames at build time: a session
runs it, keeps its JSON lines under ``book/measured/<label>/`` (no images), and
these functions turn them into the tables the chapters show, so no number is
typed twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from echolib.io import read_jsonl
from echolib.metrics.registry import ranking_metrics, spec

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


def metric_of(column: str) -> tuple[str, str | None]:
    """``"fid [echo]"`` -> ``("fid", "echo")``; a pixel metric's column has no extractor."""
    name, _, rest = column.partition(" [")
    return name, rest.rstrip("]") or None


def _shares(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each ranking metric's best share of pairs ordered right (over its extractors), by metric name."""
    table = agreement_table(records)
    ranking = ranking_metrics()
    shares: dict[str, float] = {}
    for column, all_pairs in zip(table.get("metric", []), table.get("all pairs", [])):
        name = metric_of(column)[0]
        if name in ranking:
            shares[name] = max(shares.get(name, 0.0), float(all_pairs))
    return shares


def validated_metrics(records: Sequence[dict[str, Any]], share: float = 0.75) -> list[str]:
    """Ranking metrics that order at least ``share`` of the suite's pairs right, best first.

    A tie goes to the metric listed first in the registry, so the order never
    depends on the order of the records.
    """
    ranking = ranking_metrics()
    shares = _shares(records)
    ordered = sorted(shares, key=lambda m: (-shares[m], ranking.index(m)))
    return [m for m in ordered if shares[m] >= share]


def leading_metric(records: Sequence[dict[str, Any]]) -> str | None:
    """The feature-space ranking metric that orders the most of the suite's pairs right: what a comparison leads with.

    Pixel statistics (grey-level histograms) compete for validation but not for
    the lead: they cannot see where a grey level sits, so a set with every
    pixel of a real frame in the wrong place would match them perfectly, and no
    pair of the suite tests that blindness.
    """
    ordered = [m for m in validated_metrics(records, share=0.0) if spec(m).space == "features"]
    return ordered[0] if ordered else None


def kept_suites(root: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Every kept suite under ``root`` (``<label>/metric_validation-*.jsonl``), by ``label/file name``, oldest first."""
    return {f"{p.parent.name}/{p.name}": read_validation(p) for p in sorted(Path(root).glob("*/metric_validation-*.jsonl"))}


def suite_for(suites: Mapping[str, list[dict[str, Any]]], resolution: int,
              extractor: str) -> list[dict[str, Any]] | None:
    """The newest of ``suites`` (:func:`kept_suites`) scored at ``resolution`` with ``extractor``.

    That suite decides a table's leading metric; the caller reads the kept
    suites once and asks this for each table.
    """
    found = [s for s in suites.values()
             if suite_context(s).get("resolution") == resolution and suite_context(s).get("extractor") == extractor]
    return found[-1] if found else None
