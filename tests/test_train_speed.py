"""bench/train_speed.py: one JSON line per architecture through the real trainer, errors reported per line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "train_speed.py"


def test_each_named_architecture_gets_its_line_and_an_unknown_one_an_error(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--arch", "wgan,nosuch,medgan", "--device", "cpu",
                           "--ticks", "1", "--tick-kimg", "0.02", "--sample-n", "8"], capture_output=True, text=True,
                          check=False, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600, cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]  # one architecture failed; the others still report
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["architecture"] for r in lines] == ["wgan", "nosuch", "medgan"]
    wgan, unknown, medgan = lines
    assert "unknown architecture 'nosuch'" in unknown["error"]
    for r in (wgan, medgan):
        assert r["config"] == "smoke" and r["ticks_timed"] == 1 and r["tick_kimg"] == 0.02
        assert r["sec_per_kimg"] > 0 and r["images_per_s"] > 0 and r["sampling_images_per_s"] > 0
        assert r["samples_finite"] is True and set(r["last_losses"]) >= {"loss_D", "loss_G"}
