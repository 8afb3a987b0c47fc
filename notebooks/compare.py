# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # The comparison
#
# Every architecture of this book, trained by the same trainer on the same
# frames, evaluated by the same code against the same held-out videos — videos
# no model saw during training. Reference rows anchor the numbers:
#
# * **the data itself**: training frames scored against the held-out ones, i.e.
#   what a generator that copies its training set would obtain — the floor of
#   FID/KID, precision and recall near 1, and a memorised fraction near 1, which
#   is what that metric is for;
# * **the published model**: the 2,000 samples of the study's best
#   StyleGAN2-ADA (configuration E4, 764 kimg) {cite}`hernandez2025comparative`,
#   evaluated here by exactly the same call as our models;
# * **the built-in phantom**, when the book is built on other frames: how far
#   the default data is from them;
#
# and the study's **reported** numbers, read from its training logs, show what
# it measured with its own code and Inception features — a different metric,
# kept for continuity.
#
# ```{note}
# The default build trains each architecture's *smoke* configuration for a
# fraction of a kimg on the built-in phantom, on a CPU. Its numbers show that
# the pipeline runs end to end, not how good the architectures are. Run
# `make book DATA=<frames>` after full training runs for the real comparison.
# ```
#
# **Without a GPU.** Every architecture has a `cpu64`
# configuration, its model at $64\times64$ and narrower, and this notebook with
# `config = "cpu64"`, `resolution = 64` and `data` set to real frames trains
# whichever of those runs are missing and scores them. On the 10,000 shared
# EchoNet frames and two CPU cores, with 256 samples per row:
#
# | run | training | echo-FID | KID | precision | recall | memorised | C2ST AUC |
# |---|---|---|---|---|---|---|---|
# | StyleGAN2-ADA | 120 kimg, 1 h 24 min | 9.1 | 0.021 | 0.85 | 0.88 | 0 | 0.61 |
# | MedGAN | 120 kimg, 13 min | 21.0 | 0.095 | 0.86 | 0.86 | 0 | 0.81 |
# | diffusion (EDM) | 100 kimg, 1 h 40 min | 22.9 | 0.098 | 0.84 | 0.91 | 0 | 0.66 |
# | WGAN-GP | 250 kimg, 29 min | 28.5 | 0.167 | 0.81 | 0.85 | 0 | 0.97 |
# | VQGAN + prior | 80 kimg (20 + 60), 40 min | 38.0 | 0.281 | 0.80 | 0.82 | 0 | 0.98 |
# | Pix2Pix, from the held-out frames' contours | 100 kimg, 21 min | 9.9 | 0.033 | 0.91 | 0.84 | 0 | 0.67 |
# | the study's StyleGAN2-ADA E4 samples, downsized | 764 kimg, GPU | 29.8 | 0.171 | 0.97 | 0.80 | 0 | 0.77 |
# | training frames (a copier) | | 9.6 | −0.012 | 0.93 | 0.95 | 1.0 | 0.41 |
#
# FID from 256 samples is strongly biased upwards, so these rows compare with
# each other only. Our StyleGAN2-ADA leads, as it did in the study: its FID is at
# the floor 256 samples allow (the training frames themselves score 9.6), and
# the classifier two-sample test tells its samples from real frames least often
# (AUC 0.61), though more often than it tells training frames (0.41). By FID, a
# 13-minute MedGAN and the diffusion model also score better than the published
# model's samples downsized to this size; the two-sample test separates those two,
# and the diffusion samples come second. The diffusion row is an earlier session's
# run, scored the same way; retrained, the same configuration scores 21.6 with its
# 18 Heun steps and 20.9 with 18 steps of DPM-Solver++(2M), half the network
# evaluations (the diffusion chapter's steps table).
#
# Pix2Pix is not generating from nothing: each of its samples translates the
# contours of one held-out frame, the very frames it is compared with, so its row
# measures how well contours pin a frame down, an advantage no unconditional
# model has. Fed only the 64 contour maps its checkpoint stores (as this chapter
# did before 2026-11-27), the same run scores FID 41.1 with recall 0.02: 256
# samples of 64 hearts. Now every held-out frame's contours are translated in turn.
#
# **Metrics.** FID and KID compare Gaussian / kernel statistics of features
# {cite}`heusel2017fid,binkowski2018kid`; precision and recall
# {cite}`kynkaanniemi2019prc` separate fidelity from coverage; JSD, SSIM and PSNR
# are the study's pixel statistics (SSIM and PSNR on *random unpaired* pairs, as
# the study computed them: they score real-vs-real like real-vs-generated and
# cannot rank models); MS-SSIM among generated images measures diversity (five
# scales; a 64 px comparison has room for four, and its records say so);
# the memorised fraction counts generated images closer to a training frame than
# frames of one video are to each other; the classifier two-sample test
# {cite}`lopezpaz2017c2st` reports the out-of-fold ROC AUC of a classifier
# telling real from generated (0.5 = indistinguishable). Every column names the
# feature extractor that produced it.

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

from echolib.metrics.references import shared_data

data = "phantom"  # "phantom" (built-in) or a folder/zip/manifest of real frames
config = "smoke"  # configuration trained for every architecture that has it and no run yet (smoke, cpu64, E4, ...)
kimg = None  # training length override for those runs (None: as configured)
architectures = None  # names to compare, e.g. ["wgan", "pix2pix"]; None: every one that has `config`
device = "auto"  # "auto", "cpu" or "cuda"
seed = 0
runs = os.environ.get("ECHOLIB_RUNS", "runs")  # folder of run folders
n = 128  # generated images per model (use 10000 for the published comparison)
extractor = "echo"  # feature extractor for fid/kid/precision/recall/memorisation/c2st
resolution = 128  # resolution of the comparison, as in the study; samples of runs at other sizes are resized
shared = str(shared_data())  # reference files of the study: $ECHOLIB_SHARED_DATA, else ../shared/data

# %% tags=["hide-input"]
from pathlib import Path

import numpy as np
import pandas as pd

from echolib.report import compare, plots, scoring
from echolib.train.runs import ensure_run

pd.set_option("display.precision", 4)
study_samples = Path(shared) / "seed-reference" / "stylegan2-ada-E4-samples"
study_logs = Path(shared) / "seed-reference" / "training-logs"

# %% [markdown]
# ## The runs
#
# Every available architecture that has the chosen configuration is trained (or
# its finished run reused). Not every configuration exists for every
# architecture (`smoke_cond` is the diffusion model's alone, and your own
# architecture may have no `cpu64`), so a comparison leaves those out and says so.
# Other runs of these architectures in the runs folder join the comparison when
# they were trained on the same data; runs of other data are named and left out.

# %%
archs, left_out = compare.architectures_with(config, architectures)
if left_out:
    print(f"no {config!r} configuration for {', '.join(left_out)}: left out of this comparison")
for arch in archs:
    ensure_run(arch, config, data, runs, kimg=kimg, device=device, seed=seed, progress=False)
frames = scoring.load_frames(data, resolution)
groups, not_comparable = scoring.comparable_runs(runs, frames, archs)
for label, why in not_comparable.items():
    print(f"left out {label}: {why}")
splits, run_dirs = groups[0]  # the runs that held out the same videos: one table
for _, other in groups[1:]:
    print(f"held out other videos, scored in tables of their own: {', '.join(r.label for r in other)}")
assert {r.path.parent.name for r in run_dirs} >= set(archs)
pd.DataFrame({"run": [r.label for r in run_dirs]})

# %% [markdown]
# ## Evaluation
#
# One protocol scores every row of the table: the same held-out frames (the
# videos the runs' own `run.json` says they never saw), the same number of
# images per row, one feature extractor identified by the sha256 of its
# weights, one seed. The same evaluation runs from the command line, for a runs
# folder filled by sweeps or on another machine: `python -m echolib evaluate
# --real DATA --runs RUNS --extractor echo` prints these records, reference rows
# included, and appends each run's to its `metrics.jsonl`.

# %% tags=["hide-input"]
protocol = scoring.make_protocol(splits, n, extractor=extractor, seed=seed, device=device)
print(f"{protocol.description}; {len(splits.train)} training frames; {n} images per row; protocol {protocol.id}")
assert not set(splits.train.video_ids) & set(splits.heldout.video_ids)
records, samples = scoring.score_runs(run_dirs, protocol, splits, device=device, draw_all=True)
refs, ref_images, ref_left_out = scoring.reference_records(splits, protocol, study_samples)
for name, why in ref_left_out.items():
    print(f"no {name} row: {why}")
records += refs
published = ref_images.get("published model")
table = compare.comparison_table(records, intervals=True)
assert {r["protocol"] for r in records} == {protocol.id}
assert all(r["value"] is not None and np.isfinite(r["value"]) for r in records)
assert set(table["architecture"]) >= set(archs)

# %% [markdown]
# ## The table
#
# Best value of every metric for every architecture and configuration. The
# `reference` rows (the data, the published model) are scored by the same code
# as ours. The `study (reported)` rows at the bottom are the study's best
# configuration per architecture by its own FID and KID (Inception features,
# its code, its real set): they fill only their own `[inception, study]`
# columns — compare them with each other, not with the columns of our rows.
#
# On the built-in phantom the published model, trained on real echoes, is
# scored against phantom frames: its row then measures how far the phantom is
# from real data, not the model. Build with `DATA=<real frames>` to rank it.

# %%
from IPython.display import HTML

reported = compare.study_rows(study_logs) if study_logs.is_dir() else pd.DataFrame()
if reported.empty:
    print(f"the study's logs are not at {study_logs}: no reported rows")
full = compare.with_references(table, reported)
assert len(full) == len(table) + (0 if reported.empty else reported["architecture"].nunique())
table_html = compare.with_intervals(full).to_html(index=False, classes="comparison",
                                                float_format=lambda v: f"{v:.4g}", na_rep="–")
if config.startswith("smoke"):  # the default build: say what its rows are where the reader looks
    where = "the built-in phantom" if data == "phantom" else "these frames"
    table_html = (f"<p class='table-caption'><b>Our rows are smoke runs</b>: each architecture's <code>{config}</code> "
                  f"configuration, trained for a fraction of a kimg on {where}. They show that the pipeline runs end "
                  "to end, not how good the architectures are.</p>" + table_html)
HTML(table_html)

# %% [markdown]
# Who leads? A row is said to lead by a metric only when its 95 % interval is
# clear of every other model's (intervals from half-samples of the videos for
# FID, KID, precision, recall and JSD; a score interval for the classifier's AUC).

# %%
for metric in ("fid", "kid", "c2st_auc"):
    print(compare.verdict(records, metric))

# %% [markdown]
# All of the study's reported numbers (best over each configuration's
# training log).

# %%
HTML(reported.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="–"))

# %% [markdown]
# ## FID during training

# %%
plots.metric_curves([r.path for r in run_dirs], ["fid", "kid"], extractor=extractor);

# %% [markdown]
# ## Radar, heatmap and violin charts
#
# As in the study: a radar of normalised scores (outer is better) and a heatmap
# of the same table. Normalisation is across the rows shown, so it ranks, it
# does not measure. Unlike the study's, their axes are only the metrics that can
# rank models: SSIM and PSNR on random pairs (which score real against real like
# real against generated) and MS-SSIM (best at the data's own value, not at an
# extreme) stay in the table. A row without a value sits at the centre.

# %%
compare.radar(table);

# %%
compare.heatmap(table);

# %% [markdown]
# The violin plot shows, per image, the feature distance to the nearest
# training frame. Held-out real frames show the natural spread; a generator
# whose distances sit far below it copies, one far above it is unrealistic.

# %%
bank = compare.features_of(splits.train.images, extractor=extractor, device=device)
dist = {"real held-out": compare.nearest_distances(splits.heldout.images, bank, extractor, device)}
for label in ("published model", "phantom"):
    if label in ref_images:
        dist[label] = compare.nearest_distances(ref_images[label].images, bank, extractor, device)
for label, images in samples.items():
    dist[label] = compare.nearest_distances(images.images, bank, extractor, device)
assert all(np.isfinite(v).all() for v in dist.values())
compare.violin(dist);

# %% [markdown]
# ## Samples side by side

# %%
grids = {"real held-out": splits.heldout.images[:16]}
for label, images in samples.items():
    grids[label] = images.images[:16]
for name, images in ref_images.items():
    grids[name] = images.images[:16]
compare.samples_side_by_side(grids);
