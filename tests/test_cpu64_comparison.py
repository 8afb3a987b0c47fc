"""bench/cpu64_comparison.sh, the CPU route to the book's 64 px comparison, dry-run on the phantom with smoke configs."""

from __future__ import annotations

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
def test_trains_scores_under_one_protocol_and_keeps_the_records_then_resumes(tmp_path):
    env = {"DATA": "phantom", "CONFIG": "smoke", "ARCHS": "wgan", "N": "32", "RESOLUTION": "32",
           "WORK": str(tmp_path / "work"), "MEASURED": str(tmp_path / "measured"), "LABEL": "cpu-test"}
    done = _run(tmp_path, **env)
    assert done.returncode == 0, done.stderr[-3000:]
    label = tmp_path / "measured" / "cpu-test"
    records = read_jsonl(label / "evaluate_runs.jsonl")
    rows = {r["row"] for r in records}
    assert "cpu-test/wgan-smoke" in {r["run"] for r in records}
    assert any(row.startswith("reference:") for row in rows)
    assert len({r["protocol"] for r in records}) == 1 and {r["n_fake"] for r in records} == {32}
    assert (label / "wgan-smoke" / "config.yaml").is_file() and "cores" in (label / "machine.txt").read_text()
    assert not any(p.suffix in {".png", ".pt"} for p in label.rglob("*"))

    # a second call reuses the finished run instead of training again, and refuses to overwrite the kept label
    log = tmp_path / "work" / "runs" / "wgan" / "smoke" / "log.csv"
    before = log.read_text()
    again = _run(tmp_path, **env)
    assert again.returncode == 2 and "exists" in again.stderr.splitlines()[-1]
    assert log.read_text() == before


def test_a_missing_frames_folder_is_one_line_and_exit_2(tmp_path):
    done = _run(tmp_path, DATA=str(tmp_path / "nowhere"), WORK=str(tmp_path / "w"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "nowhere" in done.stderr
