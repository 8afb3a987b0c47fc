"""Notebooks as programs: parameter checks, papermill execution, resumable sweeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from echolib.errors import ConfigError
from echolib.pipeline.notebooks import check_parameters, execute, parameters
from echolib.pipeline.sweep import sweep

ROOT = Path(__file__).resolve().parent.parent

TOY = '''# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% tags=["parameters"]
import os
config = "A"
kimg = 1
scale = 0.5
runs = os.environ.get("ECHOLIB_RUNS", "runs")

# %%
from pathlib import Path
folder = Path(runs) / "toy" / config
folder.mkdir(parents=True, exist_ok=True)
count = folder / "executions"
count.write_text(str(int(count.read_text()) + 1 if count.exists() else 1))
assert config != "BAD", "this configuration fails on purpose"
result = kimg * scale
'''


@pytest.fixture
def toy(tmp_path) -> Path:
    path = tmp_path / "toy.py"
    path.write_text(TOY)
    return path


def test_parameters_are_read_with_their_kinds(toy):
    params = parameters(toy)
    assert {k: p.kind for k, p in params.items()} == {"config": "str", "kimg": "int", "scale": "float", "runs": "expr"}


def test_bad_parameters_are_refused_before_execution(toy):
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) kimgs; valid: config \(str\), kimg \(int\)"):
        check_parameters(toy, {"kimgs": 3})
    with pytest.raises(ConfigError, match="parameter kimg expects int .*got str '500'"):
        check_parameters(toy, {"kimg": "500"})
    check_parameters(toy, {"kimg": 5, "scale": 2, "runs": "/x"})  # int is a fine float


def test_execute_injects_parameters(toy, tmp_path):
    out = execute(toy, tmp_path / "out.ipynb", {"kimg": 4, "runs": str(tmp_path / "r")}, progress=False)
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "kimg = 4" in injected[0].source
    assert (tmp_path / "r" / "toy" / "A" / "executions").read_text() == "1"


def test_sweep_resumes_and_continues_past_failures(toy, tmp_path):
    runs = tmp_path / "runs"
    first = sweep(toy, ["A", "BAD", "C"], {"kimg": 2}, runs=runs, progress=False)
    assert [o.status for o in first] == ["done", "failed", "done"]
    assert "fails on purpose" in first[1].error
    assert json.loads((runs / "toy" / "BAD" / "sweep.json").read_text())["status"] == "failed"
    second = sweep(toy, ["A", "BAD", "C"], {"kimg": 2}, runs=runs, progress=False)
    assert [o.status for o in second] == ["skipped", "failed", "skipped"]
    assert (runs / "toy" / "A" / "executions").read_text() == "1"
    assert (runs / "toy" / "BAD" / "executions").read_text() == "2"
    longer = sweep(toy, ["A"], {"kimg": 5}, runs=runs, progress=False)  # other parameters: not the same work
    assert [o.status for o in longer] == ["done"] and (runs / "toy" / "A" / "executions").read_text() == "2"
    assert json.loads((runs / "toy" / "A" / "sweep.json").read_text())["params"]["kimg"] == 5


def test_sweep_validates_everything_before_the_first_run(toy, tmp_path):
    with pytest.raises(ConfigError, match="expects int"):
        sweep(toy, ["A"], {"kimg": "lots"}, runs=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="-p runs .* and --runs .* disagree"):  # was replaced in silence
        sweep(toy, ["A"], {"runs": str(tmp_path / "mine")}, runs=tmp_path / "other", progress=False)
    assert not (tmp_path / "toy").exists()
    with pytest.raises(ConfigError, match="unknown config\\(s\\) E99 for wgan; choose from"):
        wgan_nb = tmp_path / "wgan.py"
        wgan_nb.write_text(TOY)
        sweep(wgan_nb, ["E99"], runs=tmp_path, progress=False)


def test_sweep_cli_exit_status(toy, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "echolib", "sweep", "--notebook", str(toy), "--configs", "A,BAD",
           "-p", "kimg", "3", "--runs", str(tmp_path), "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert r.returncode == 1
    assert "1 configuration(s) failed: BAD" in r.stdout
