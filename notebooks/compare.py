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
# frames, scored by one **protocol** against the same held-out videos, the
# videos each run's own `run.json` says it never saw. A protocol fixes
# everything a number depends on: the real frames it is measured against, how
# many images each row contributes, the feature extractor and the sha256 of
# its weights, and the seed. Every record carries the protocol's id, and a
# table refuses rows of two protocols. Reference rows are scored under the
# same protocol, on the same number of images:
#
# * **training frames (a copier)**: frames the generators trained on, of
#   videos the feature extractor never saw: what copying the training set
#   scores: the floor of FID and KID, and a memorised fraction of 1, which is
#   what that metric is for;
# * **the published model**: the study's StyleGAN2-ADA E4 samples (764 kimg)
#   {cite}`hernandez2025comparative`, scored by exactly the same call as ours;
# * **the built-in phantom**, when the comparison is on other frames.
#
# Every ranked number has a 95 % interval: half-samples of the videos for FID,
# KID, precision, recall and JSD, a score interval for a classifier's AUC. A
# row is said to *lead* only where its interval is clear of every other row's.
# The study's **reported** numbers, read from its training logs, follow in
# columns of their own: its code, Inception features and real set make them
# another metric, kept for continuity.
#
# **Metrics.** FID and KID compare Gaussian / kernel statistics of features
# {cite}`heusel2017fid,binkowski2018kid`; precision and recall
# {cite}`kynkaanniemi2019prc` separate fidelity from coverage; JSD, SSIM and PSNR
# are the study's pixel statistics (SSIM and PSNR on *random unpaired* pairs, as
# the study computed them: they score real-vs-real like real-vs-generated and
# cannot rank models); MS-SSIM among generated images measures diversity;
# the memorised fraction counts generated images closer to a training frame than
# frames of one video are to each other; the classifier two-sample tests
# {cite}`lopezpaz2017c2st` report the out-of-fold ROC AUC of a classifier
# telling real from generated (0.5 = indistinguishable), one on the extractor's
# features and one, a small CNN, on the pixels. Every column names the feature
# extractor that produced it. Which metric leads the ranking is decided below
# by the metric validation suite, not assumed.

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

from IPython.display import HTML, display

from echolib.paths import shown_path
from echolib.report import compare, plots, scoring
from echolib.train.runs import ensure_run

pd.set_option("display.precision", 4)
study_samples = Path(shared) / "seed-reference" / "stylegan2-ada-E4-samples"
study_logs = Path(shared) / "seed-reference" / "training-logs"

# %% [markdown]
# ## Measured on real frames at 64 px, without a GPU
#
# Every architecture has a `cpu64` configuration, its model at $64\times64$
# and narrower. A session trained each on the 10,000 shared EchoNet frames on a
# two-core CPU and scored them with `python -m echolib evaluate --runs`; its
# records are kept in `book/measured/` (no images: the frames are licensed),
# and this table is generated from them (`bench/cpu64_comparison.sh` repeats
# the whole session). The diffusion row is the phase-conditioned recipe
# `cpu64_cond`, sampled with phases in the proportions it trained on: the same
# run makes the synthetic dataset of the *Utility and privacy* chapter.
#
# An earlier version of this table scored the model rows and the reference rows
# against different real sets, on fewer samples, with the first version of the
# `echo` extractor. Its numbers cannot be compared with these and are not shown.

# %% tags=["hide-input"]
from echolib.paths import PROJECT
from echolib.report.measured import measured_comparisons
from echolib.report.metric_validation import kept_suites, leading_metric, suite_for, validated_metrics

MEASURED = PROJECT / "book" / "measured"
suites = kept_suites(MEASURED)
kept = measured_comparisons(MEASURED, resolution=64)
for label, kept_records in kept.items():
    first = kept_records[0]
    print(f"{label}: {first['n_fake']} images per row against {first['n_real']} held-out frames, "
          f"{first['extractor']} features (weights {str(first['extractor_sha256'])[:12]}), protocol {first['protocol']}")
    display(HTML(compare.with_intervals(compare.comparison_table(kept_records, intervals=True)).to_html(
        index=False, classes="comparison measured", na_rep="–")))
    suite = suite_for(suites, 64, first["extractor"])
    lead = leading_metric(suite) if suite else "fid"
    print(f"leading metric: {lead}" + (" (the metric validation suite's best at 64 px, below)" if suite else
                                       " (no metric validation suite at 64 px is kept: FID by default)"))
    print(compare.judgement(kept_records, lead, validated_metrics(suite) if suite else []))
if not kept:
    print("no 64 px comparison is kept in book/measured of this checkout")

# %% [markdown]
# Pix2Pix is not generating from nothing: each of its samples translates the
# contours of one held-out frame, the very frames it is compared with, so its
# row measures how well contours pin a frame down, an advantage no
# unconditional model has.
#
# ## Which metric leads, and why
#
# A metric earns the right to rank generators by ranking image sets whose order
# is known. The metric validation suite (`python -m echolib metrics validate`)
# scores real frames of unseen videos under graded corruptions (blur, noise,
# speckle smoothed or exaggerated, darker, flatter, checkerboard, blocky, a soft
# sector edge, a misshapen sector, duplicated images), the checkpoints of a
# training run, the published samples against an early checkpoint, and, where
# raters have answered the two-set questionnaire, people's choices. The table
# gives each metric's share of pairs ordered right, from the kept records.
#
# **The rule.** A table leads with the feature-space ranking metric that
# orders the most pairs right in the suite run at the table's resolution with
# the table's extractor (a tie goes to the metric the registry lists first).
# Grey-level histogram distances (JSD) are validated like the others but never
# lead: they cannot see where a grey level sits, and no pair of the suite tests
# that blindness. A row is called
# better only where that metric's 95 % intervals separate it from every other
# row, and every other metric that orders at least three pairs in four right is
# checked against it: the verdict under each table names those that disagree.
# A metric that saturates (a classifier's AUC of 1.0 for every degraded set)
# cannot order the pairs it ties, and its share says so.

# %% tags=["hide-input"]
from echolib.report.metric_validation import agreement_table, suite_context

for name, suite in suites.items():
    context = suite_context(suite)
    print(f"{name}: {context['n']} images per set against {context['n_real']} held-out frames, "
          f"{context['resolution']} px, {context['extractor']} features; leading metric: {leading_metric(suite)}")
    display(agreement_table(suite).style.format({"all pairs": "{:.2f}"}).hide(axis="index"))
if not suites:
    print("no metric validation records are kept in book/measured of this checkout")

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
reported = compare.study_rows(study_logs) if study_logs.is_dir() else pd.DataFrame()
if reported.empty:
    print(f"the study's logs are not at {shown_path(study_logs)}: no reported rows")
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
suite = suite_for(suites, resolution, extractor)
lead = leading_metric(suite) if suite else "fid"
print(compare.judgement(records, lead, validated_metrics(suite) if suite else ["kid", "c2st_auc"]))

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
