"""bench/gpu_session.sh, the one script a lent GPU runs, dry-run on the CPU: device minutes are too scarce to debug in.

Smoke configurations on the phantom take the place of E4 on real frames; every
other line of the script runs as it would on the GPU (parallel training stages
under time limits, the archive refreshed after each stage, the evaluation and
the steps table), and the archive it returns is kept the way the book keeps one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from echolib.io import read_jsonl
from echolib.report.measured import keep_session

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_session_script_trains_evaluates_and_returns_an_archive_the_book_can_keep(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, CONFIG="smoke", EVAL_N="32", STEPS_N="16", DEVICE="cpu", DATA="phantom", BUDGET="420",
               WORK=str(tmp_path / "work"), OUT=str(out), PY=sys.executable, PARALLEL="1", OMP_NUM_THREADS="1",
               STAGES="train_wgan,train_diffusion,evaluate_runs,diffusion_steps")
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_session.sh")], env=env, capture_output=True, text=True,
                          check=False, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    stages = {s["stage"]: s["rc"] for s in read_jsonl(out / "stages.jsonl")}
    assert stages == {"train_wgan": 0, "train_diffusion": 0, "evaluate_runs": 0, "diffusion_steps": 0}, stages
    with tarfile.open(out / "session.tgz") as tar:
        names = tar.getnames()
    assert any(n.endswith(".png") for n in names) and not any(n.endswith(".pt") for n in names)

    kept = keep_session(out / "session.tgz", tmp_path / "measured", "cpu-test")
    label = tmp_path / "measured" / "cpu-test"
    assert kept.runs == [label / "diffusion-smoke", label / "wgan-smoke"]
    evaluated = read_jsonl(label / "evaluate_runs.jsonl")
    models = [r for r in evaluated if not r["row"].startswith("reference:")]
    assert {r["run"] for r in models} == {"cpu-test/diffusion-smoke", "cpu-test/wgan-smoke"}
    assert {r["protocol"] for r in evaluated} and len({r["protocol"] for r in evaluated}) == 1
    assert {r["n_fake"] for r in models} == {32} and {"fid", "kid", "c2st_auc"} <= {r["metric"] for r in evaluated}
    steps = read_jsonl(label / "diffusion-smoke" / "steps.jsonl")
    assert [(r["sampler"], r["steps"], r["nfe"]) for r in steps] == [
        ("heun", 5, 9), ("heun", 10, 19), ("heun", 18, 35), ("dpm2m", 5, 5), ("dpm2m", 10, 10), ("dpm2m", 18, 18)]
    assert all(r["n"] == 16 and r["run"] == "cpu-test/diffusion-smoke" for r in steps)
    assert "torch" in (label / "machine.txt").read_text()
    assert not any(p.suffix in {".png", ".pt"} for p in label.rglob("*"))
