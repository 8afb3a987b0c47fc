"""bench/cpu64_comparison.sh, the CPU route to the book's 64 px comparison, dry-run on the phantom with smoke configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from echolib.io import read_jsonl

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, PY=sys.executable, OMP_NUM_THREADS="1", **env)
    return subprocess.run(["bash", str(ROOT / "bench" / "cpu64_comparison.sh")], env=full, capture_output=True,
                          text=True, check=False, timeout=900)


@pytest.mark.slow
def test_trains_scores_under_one_protocol_makes_the_dataset_and_keeps_the_records_then_resumes(tmp_path):
    env = {"DATA": "phantom", "CONFIG": "smoke", "ARCHS": "diffusion", "N": "32", "RESOLUTION": "32",
           "N_DATASET": "24", "UTILITY_STEPS": "30", "WORK": str(tmp_path / "work"), "MEASURED": str(tmp_path / "measured"),
           "LABEL": "cpu-test"}
    done = _run(tmp_path, **env)
    assert done.returncode == 0, done.stderr[-3000:]
    label = tmp_path / "measured" / "cpu-test"
    records = read_jsonl(label / "evaluate_runs.jsonl")
    rows = {r["row"] for r in records}
    # the diffusion row is the phase-conditioned run, scored like any other
    assert "cpu-test/diffusion-smoke_cond" in {r["run"] for r in records}
    assert any(row.startswith("reference:") for row in rows)
    assert len({r["protocol"] for r in records}) == 1 and {r["n_fake"] for r in records} == {32}
    assert (label / "diffusion-smoke_cond" / "config.yaml").is_file() and "cores" in (label / "machine.txt").read_text()

    # the same run made a filtered dataset: its datasheet and the utility records are kept, naming no folder here
    sheet = json.loads((label / "synthesize-diffusion-smoke_cond" / "datasheet.json").read_text())
    assert sheet["counts"]["kept"] == 24 and sheet["privacy_filter"]["applied"]
    assert sheet["settings"]["run"] == sheet["model"]["run"] == "cpu-test/diffusion-smoke_cond"
    utility = read_jsonl(label / "utility.jsonl")
    assert {r["train_set"] for r in utility} >= {"real", "synthetic", "both"}, utility[0]
    assert {r["recipe"]["steps"] for r in utility} == {30}  # the smoke run's classifier, as asked
    assert {r["synthetic"] for r in utility} == {"cpu-test/synthesize-diffusion-smoke_cond"}
    kept_text = "".join(p.read_text() for p in label.rglob("*") if p.is_file())
    assert str(tmp_path) not in kept_text
    assert not any(p.suffix in {".png", ".pt"} for p in label.rglob("*"))

    # a second call reuses the finished run instead of training again, and refuses to overwrite the kept label
    log = tmp_path / "work" / "runs" / "diffusion" / "smoke_cond" / "log.csv"
    utility_out = tmp_path / "work" / "utility.out"
    before = log.read_text(), utility_out.stat().st_mtime_ns
    again = _run(tmp_path, **env)
    assert again.returncode == 2 and "exists" in again.stderr.splitlines()[-1]
    assert (log.read_text(), utility_out.stat().st_mtime_ns) == before  # neither trained nor tested again

    # grown: the dataset continues to the larger N, is tested again and replaces the kept records
    grown = _run(tmp_path, **{**env, "N_DATASET": "30", "KEEP": "overwrite"})
    assert grown.returncode == 0, grown.stderr[-3000:]
    assert log.read_text() == before[0]
    sheet = json.loads((label / "synthesize-diffusion-smoke_cond" / "datasheet.json").read_text())
    assert sheet["counts"]["kept"] == 30
    assert utility_out.stat().st_mtime_ns > before[1]


@pytest.mark.parametrize(("env", "named"), [({"DATA": "no/such/frames"}, "no/such/frames"),
                                            ({"DATA": "phantom", "KEEP": "yes"}, "KEEP")])
def test_bad_input_is_one_line_and_exit_2(tmp_path, env, named):
    done = _run(tmp_path, **env, WORK=str(tmp_path / "w"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and named in done.stderr
