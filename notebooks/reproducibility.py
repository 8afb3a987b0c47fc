# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # Reproducibility
#
# Every number in this book is read from a run folder or recomputed by
# `echolib` from files whose hashes are listed here. To rebuild the book:
#
# ```bash
# make book                                   # built-in phantom, CPU, smoke configurations
# make book DATA=../shared/data/echonet-dynamic-128/frames   # real frames
# ```
#
# This appendix records the software versions, the device, the data and the
# feature extractors that produced the numbers of this build.

# %% tags=["remove-cell"]
# Setup for a fresh kernel (Colab, a Python without echolib): installs echolib from the checkout this
# notebook sits in, or from ECHOLIB_SOURCE, a checkout's path or a pip URL of this repository.
ECHOLIB_SOURCE = ""
import importlib.util, os, subprocess, sys
from pathlib import Path

if importlib.util.find_spec("echolib") is None:
    here = [Path.cwd(), *Path.cwd().parents]
    checkout = next((p for p in here if (p / "echolib").is_dir() and (p / "pyproject.toml").is_file()), None)
    src = ECHOLIB_SOURCE or os.environ.get("ECHOLIB_SOURCE") or (str(checkout) if checkout else "")
    if not src:
        print("echolib is not installed: set ECHOLIB_SOURCE in this cell to a checkout or pip URL of this repository.")
    elif Path(src).expanduser().is_dir():
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-e", src])
        sys.path.insert(0, str(Path(src).expanduser().resolve()))  # a running kernel does not read the new .pth
    else:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", src])
        importlib.invalidate_caches()

# %% tags=["parameters"]
import os

data = "phantom"  # "phantom" (built-in) or a folder/zip/manifest of real frames
runs = os.environ.get("ECHOLIB_RUNS", "runs")  # folder of run folders

# %% tags=["hide-input"]
from pathlib import Path

import pandas as pd
from IPython.display import display

from echolib.data.sources import resolve_data
from echolib.paths import PROJECT, shown_path
from echolib.report.environment import dependency_table, device_info, folder_sha256
from echolib.report.extractors import extractor_table
from echolib.report.records import run_summary

# %% [markdown]
# ## Software
#
# Every package that `pyproject.toml` names, with the version this build ran
# (`installed`), the version `requirements.lock` pins (what `make` installs),
# who needs it (`echolib` itself, or the extra that adds it: `notebooks`,
# `book`, `test`) and what for.

# %%
dependencies = dependency_table()
assert (dependencies.loc[dependencies["needed by"] == "echolib", "installed"] != "not installed").all()
dependencies

# %% [markdown]
# ## Device

# %%
pd.Series(device_info(), name="value").to_frame()

# %% [markdown]
# ## Data
#
# The training frames are identified by a sha256 over the names and bytes of
# every PNG, in sorted order.

# %%
data_path = resolve_data(data)
digest, count = folder_sha256(data_path)
assert count > 0
pd.DataFrame([{"data": str(data), "resolved": shown_path(data_path), "frames": count, "sha256": digest}])

# %% [markdown]
# ## Feature extractors
#
# A FID computed with one feature extractor is a different metric from a FID
# computed with another, and so is a FID under other weights of the same
# network. Every metric record names its extractor and the sha256 of its
# weights. The table shows the weights file this machine would load for each
# extractor (nothing is downloaded to fill it; the environment variable in `override`
# points elsewhere), and counts the records in this build's runs: a record in
# `records, other weights` was made with another file and would not be rebuilt
# by this machine as it stands. `pixel` is no network: JSD, SSIM, PSNR and
# MS-SSIM on the intensities.

# %%
extractors = extractor_table(runs)
assert extractors.loc["echo", "sha256"] != "-", "the echo extractor ships with echolib"
extractors

# %% [markdown]
# ### How the `echo` features respond to what goes wrong in generated frames
#
# The metric validation suite (`python -m echolib metrics validate`) scores
# real frames of videos the extractor never trained on, degraded at three
# strengths each, against the held-out videos. A metric fit to rank generators
# grows with every strength of every failure; the table gives echo-FID for each
# set, at 64 px and 128 px, from the kept records (the first row is the clean
# frames: the floor). `echo-v1` is the first extractor, kept by name so that
# its records stay readable.

# %% tags=["hide-input"]
from echolib.report.metric_validation import kept_suites, score_table

sensitivity = {}
for name, suite in kept_suites(PROJECT / "book" / "measured").items():
    table = score_table(suite, [c for c in score_table(suite).columns if c.startswith("fid [")])
    sensitivity[Path(name).stem.removeprefix("metric_validation-")] = table.iloc[:, 0] if len(table.columns) else None
pd.DataFrame({k: v for k, v in sensitivity.items() if v is not None}).round(1) if sensitivity else \
    print("no metric validation records are kept in book/measured of this checkout")

# %% [markdown]
# ## Runs in this build

# %%
pd.DataFrame(run_summary(runs))

# %% [markdown]
# ## Training without a GPU
#
# The `cpu64` configurations train on two CPU cores. `bench/train_speed.py
# --device cpu --config cpu64 --variants cpu` trains each of them through the
# real trainer in several ways, one after another in one run: eager fp32 on one
# thread, eager fp32 on every core, bf16 autocast, bf16 with channels_last, and
# compiled. Each row is the median seconds per kimg of short ticks after a
# warm-up tick, the GFLOP/s that makes (the FLOPs of a kimg counted by
# `bench/step_flops.py`), the process's peak resident memory, and the speed-up
# over eager fp32 on one thread (`speed-up`) and on every core (`vs fp32`).
# `compile s` is the warm-up tick's time beyond a steady tick's. `load` is the
# machine's 1-minute load average before and after the case: what else ran on
# the machine meanwhile. `cpu64 uses` marks how each configuration trains as
# written.

# %% tags=["hide-input"]
from echolib.report.cpu_speed import (
    config_speedups,
    latest_cpu_records,
    latest_stability_records,
    speed_table,
    stability_runs,
    stability_summary,
)

cpu_records = latest_cpu_records(PROJECT / "book" / "measured")
if cpu_records is None:
    print("no CPU speed benchmark is kept in book/measured of this checkout")
else:
    print(cpu_records.name, "|", (cpu_records / "machine.txt").read_text().splitlines()[0])
    display(speed_table(cpu_records))
    display(config_speedups(cpu_records))

# %% [markdown]
# bf16 keeps 8 bits of mantissa. Its stability on real frames: StyleGAN2-ADA
# `cpu64` trained in fp32 and in bf16 from the same seeds on the shared EchoNet
# frames, each scored by `evaluate --runs` (its samples against the held-out
# videos, `echo` features, 64 px, each with its 95 % interval over half-samples
# of the videos). A difference between precisions matters only if it is larger
# than the difference between seeds: the fp32 range spans the fp32 seeds'
# intervals, and bf16 is called stable where each bf16 run falls inside it.

# %% tags=["hide-input"]
stable_records = latest_stability_records(PROJECT / "book" / "measured", "stylegan2_ada")
stability = stability_runs(stable_records, "stylegan2_ada") if stable_records is not None else pd.DataFrame()
if stability.empty:
    print("no fp32/bf16 stability runs are kept beside the CPU benchmark")
else:
    assert stability["losses finite"].all()
    display(stability)
    display(stability_summary(stability))
