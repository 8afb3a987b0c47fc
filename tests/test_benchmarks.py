"""The benchmarks under bench/ run on this machine and print the JSON they promise.

Their numbers are machine-dependent and not asserted; what a GPU session relies
on is asserted instead: one parseable line per case, every field present, an
error reported per line without stopping the rest, and counts that two
benchmarks measure independently agreeing.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
pytestmark = pytest.mark.slow  # each runs a benchmark script in a subprocess: not for make test-fast


def bench(script: str, *args: str, cwd: Path, expect_rc: int = 0) -> list[dict]:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, check=False,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600, cwd=cwd)
    assert done.returncode == expect_rc, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_train_speed_gives_each_named_architecture_its_line_and_an_unknown_one_an_error(tmp_path):
    lines = bench("train_speed.py", "--arch", "wgan,nosuch,medgan", "--device", "cpu", "--ticks", "1",
                  "--tick-kimg", "0.02", "--sample-n", "8", cwd=tmp_path, expect_rc=1)
    assert [r["architecture"] for r in lines] == ["wgan", "nosuch", "medgan"]
    wgan, unknown, medgan = lines
    assert "unknown architecture 'nosuch'" in unknown["error"]  # reported, and medgan still measured
    for r in (wgan, medgan):
        assert r["config"] == "smoke" and r["ticks_timed"] == 1 and r["tick_kimg"] == 0.02
        assert r["sec_per_kimg"] > 0 and r["images_per_s"] > 0 and r["sampling_images_per_s"] > 0
        assert r["samples_finite"] is True and set(r["last_losses"]) >= {"loss_D", "loss_G"}


def test_step_speed_variants_and_step_flops_count_the_same_operations(tmp_path):
    steps = bench("step_speed.py", "--arch", "wgan", "--configs", "smoke", "--variants", "default,no-channels-last",
                  "--steps", "16", "--warmup", "2", "--flops", cwd=tmp_path)
    assert [(r["variant"], r["channels_last"]) for r in steps] == [("default", True), ("no-channels-last", False)]
    for r in steps:
        assert r["finite"] is True and r["sec_per_kimg"] > 0 and r["step_ms_median"] > 0
        assert r["tflop_per_kimg"] > 0 and r["achieved_tflops"] > 0
    (flops,) = bench("step_flops.py", "--arch", "wgan", "--configs", "smoke", cwd=tmp_path)
    assert flops["measured_batches"] == [4, 8] and flops["gflop_per_image_step"] > 0
    # the layout changes how fast a step runs, not what it dispatches; the FLOP counter sees the same step
    assert steps[0]["ops_per_step"] == steps[1]["ops_per_step"] == flops["ops_per_step"] > 0
    assert steps[0]["tflop_per_kimg"] == flops["tflop_per_kimg"]


def test_metrics_speed_times_every_default_metric_and_phantom_speed_renders_frames(tmp_path):
    (line,) = bench("metrics_speed.py", "--scenario", "cpu", "--n", "64", "--threads", "1", "--workers", "1",
                    cwd=tmp_path)
    (run,) = line["runs"]
    assert run["extractor"] == "echo" and run["seconds"] > 0
    assert {"features", "fid", "kid", "prc", "c2st_auc", "ssim"} <= set(run["stages"])
    assert math.isfinite(run["values"]["fid"]) and run["values"]["fid"] > 0  # two disjoint sets of hearts
    (phantom,) = bench("phantom_speed.py", "--n", "32", "--size", "64", "--workers", "1", cwd=tmp_path)
    assert phantom["n"] == 32 and phantom["size"] == 64 and phantom["frames_per_s"] > 0
