"""Metric records: complete keys, append-only files, JSON-safe values."""

from __future__ import annotations

import json

import pytest

from echolib.metrics.records import METRICS, RECORD_KEYS, append_records, make_record, read_records


def _record(metric="fid", value=1.5, **kw):
    return make_record(metric, value, n_real=10, n_fake=12, extractor="echo", extractor_sha256="ab" * 32, **kw)


def test_record_has_every_key_and_lowercase_names():
    r = _record(kimg=100, run="runs/x", subset_size=5)
    assert list(r)[: len(RECORD_KEYS)] == list(RECORD_KEYS)
    assert r["subset_size"] == 5 and r["kimg"] == 100.0 and r["run"] == "runs/x"
    assert all(m == m.lower() for m in METRICS)
    for required in (
        "fid",
        "kid",
        "precision",
        "recall",
        "jsd",
        "ssim",
        "psnr",
        "ms_ssim",
        "memorized_fraction",
        "c2st_auc",
    ):
        assert required in METRICS


def test_unknown_metric_and_key_clash_are_refused():
    with pytest.raises(ValueError, match="unknown metric"):
        _record(metric="FID")
    with pytest.raises(ValueError, match="overwrite"):
        _record(time="yesterday")


def test_nan_becomes_null_and_records_append_without_overwriting(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    append_records(path, [_record(value=float("nan"))])
    first = path.read_bytes()
    append_records(path, [_record(value=2.0), _record("kid", 0.1)])
    assert path.read_bytes().startswith(first)  # earlier bytes untouched
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["value"] is None
    assert [r["metric"] for r in read_records(path)] == ["fid", "fid", "kid"]
    assert [r["value"] for r in read_records(path, "fid")] == [None, 2.0]


def test_incomplete_record_is_refused(tmp_path):
    bad = _record()
    del bad["extractor_sha256"]
    with pytest.raises(ValueError, match="extractor_sha256"):
        append_records(tmp_path / "m.jsonl", [bad])
    assert not (tmp_path / "m.jsonl").exists()
