# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # Utility and privacy
#
# The study's end product was a dataset: 10,000 frames drawn from its best
# model, meant to be shared where real echoes cannot be. Two questions decide
# whether such a set is worth sharing, and a model's FID answers neither:
#
# * **Does it leak patients?** A generator can reproduce the frames it trained
#   on, and a reproduced frame of a patient is that patient's data. A sample is
#   suspect when it lies closer to a training frame than frames of patients the
#   generator never saw do.
# * **Is it useful?** A set is useful for what a model trained on it learns
#   about *real* hearts: train on synthetic, test on real
#   (EchoNet-Synthetic and EchoDiffusion report such tests for ejection fraction).
#
# **How suspicious is "close"?** Some real patients simply look like others, so
# a small distance to the nearest training frame proves nothing by itself. The
# threshold is set on real frames whose answer is known: frames of the run's
# held-out videos, patients the generator never saw. Their distances to the
# nearest training frame are what an image of a *new* patient scores. The
# held-out videos are split in two halves by a seeded hash of the video id; the
# threshold is the 5th percentile of the first half's distances, and the share
# of the second half at or below it, the **held-out flag rate**, is measured on
# frames that set no threshold: it should sit near 5 %, within the interval its
# sampling error allows. A generator that draws new patients is flagged at about
# that rate, not at 0; one that copies is flagged more often. The distance is
# measured in two spaces, the `echo` feature extractor's and pixel space
# (64x64 area means, the minimum over shifts of up to 4 px at 128 px), and the
# **privacy filter** rejects a draw at or below the threshold in either.
# EchoNet-Synthetic calibrates its filter the same way, at the 95th percentile
# of held-out-to-training similarity. The same-video rate says how often a
# training frame's nearest *sibling in its own video* falls under the threshold:
# how often a sample showing a training patient at another moment of the cycle
# would be caught (a patient leak that is no pixel copy).
#
# **What travels with the set.** `python -m echolib synthesize RUN --n N --out DIR
# --privacy-filter` draws from the run's EMA generator until N samples passed and
# writes them with a `manifest.csv` (every draw: its batch seed, condition,
# nearest-training distances in both spaces, flagged, passed) and a datasheet,
# `datasheet.json` and `README.md`: the model, run, checkpoint and its sha256,
# the sampler options and seed, the filter's thresholds and percentile, how many
# draws were made and rejected beside how many unseen patients' frames the same
# filter rejects, the evaluation of the kept set against the held-out videos
# (FID, KID, precision, recall, C2ST and memorisation, with intervals), the
# licence terms that follow from the source data's agreement, and what the set
# must not be used for.
#
# **The utility test.** `python -m echolib utility --real DATA --synthetic DIR
# --task phase --json` trains one small fixed classifier to tell end-systolic
# from end-diastolic frames, in turn on the real training frames, on the
# synthetic set (its labels are the phases the model was asked for) and on both,
# and tests each on the held-out real videos: accuracy and ROC AUC with 95 %
# intervals clustered by video.

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
config = "smoke_cond"  # the phase-conditioned diffusion configuration the set is drawn from (smoke_cond, E8, ...)
fallback_config = "smoke"  # drawn from instead when the frames name no phase (then no utility test)
kimg = None  # training length override for that run (None: as configured)
device = "auto"  # "auto", "cpu" or "cuda"
seed = 0
runs = os.environ.get("ECHOLIB_RUNS", "runs")  # folder of run folders; the set is written to <runs>/synthetic/
n = 64  # samples in the set (the study's dataset had 10000)
percentile = 0.05  # share of unseen patients' frames the memorisation threshold flags
extractor = "echo"  # feature space of the filter and the evaluation
n_train = None  # utility: at most this many frames per training set (None: all)

# %% tags=["hide-input"]
from pathlib import Path

import pandas as pd
from IPython.display import display

from echolib.paths import PROJECT, shown_path
from echolib.pipeline import synthesize as syn
from echolib.pipeline.utility import run_utility
from echolib.report import privacy
from echolib.report.memorization import plot_closest_pairs
from echolib.train.runs import ensure_run

pd.set_option("display.max_colwidth", 120)


def show(table: pd.DataFrame) -> None:
    display(table.style.hide(axis="index"))


# %% [markdown]
# ## The set
#
# The phase-conditioned diffusion model (`config`) is trained, or its finished
# run reused, and `synthesize` draws `n` samples from it, ES and ED in turn,
# with the privacy filter on, into a folder of the runs folder. A rebuild with
# the same settings finds the set complete and draws nothing.

# %% tags=["hide-input"]
missing, n_frames, label_key = privacy.unlabelled_frames(data, "diffusion", config)
if missing:
    print(f"{missing} of {n_frames} frames of {shown_path(data) if data != 'phantom' else data} name no "
          f"{label_key!r}: the set is drawn from the unconditional {fallback_config!r} model, and has no utility test")
    config = fallback_config
run = ensure_run("diffusion", config, data, runs, kimg=kimg, device=device, seed=seed, progress=False)
out = Path(runs) / "synthetic" / f"diffusion-{config}-n{n}"
drawn = syn.synthesize(run, n, out, privacy_filter=True, seed=seed, percentile=percentile, extractor=extractor,
                       conditions=None if missing else ["ES", "ED"], overwrite=True, data=data, device=device,
                       progress=False)
sheet = drawn.datasheet
assert sheet["status"] == "complete" and drawn.kept == n == len(list(out.glob(f"{syn.PREFIX}*.png")))
print(f"{drawn.kept} samples of {sheet['model']['run']} in {shown_path(out)}, with manifest.csv, datasheet.json "
      "and README.md")
show(privacy.datasheet_table(sheet))

# %% [markdown]
# ## Does it leak patients?
#
# The calibration of each space and every rate to compare: the held-out flag
# rate (unseen patients, the half that set no threshold) is what a generator that
# copies nothing scores; *draws flagged* counts every draw before the filter
# rejected any, *kept flagged* is the evaluation record of the kept set (0 by
# construction when the filter is applied), *same video flagged* is the
# same-patient test's rate, and the last column gives the median distance to the
# nearest training frame of unseen patients' frames and of the kept samples.
# Intervals are 95 %, clustered by video.

# %% tags=["hide-input"]
show(privacy.memorization_table(sheet, drawn.rows))
print(privacy.copying_verdict(sheet))

# %% [markdown]
# Each draw's distance to its nearest training frame beside those of the
# held-out real frames, and the threshold (dashed). Draws left of it would
# have been rejected; a generator that copies piles up there.

# %% tags=["hide-input"]
view = syn.inspect(out, k=6, device=device)
privacy.distance_figure(view.heldout, view.draws, view.thresholds, view.passed);

# %% [markdown]
# The kept samples nearest to a training frame, over that frame: the pairs a
# reader must judge. A copy would look like its partner; red distances are at or
# below the threshold.

# %% tags=["hide-input"]
for space in ("features", "pixel"):
    plot_closest_pairs(view.pairs[space], title=f"closest pairs, {space} space (threshold "
                                                f"{view.thresholds[space]:.3g})");

# %% [markdown]
# The evaluation of the kept set against the held-out videos, from the
# datasheet. These rows are scored under one protocol; a set of another `n`
# or extractor is another number.

# %% tags=["hide-input"]
show(privacy.evaluation_table(sheet))
if config.startswith("smoke"):
    print(f"The set is drawn from a smoke run ({config}, {sheet['model']['kimg']:g} kimg): it shows that the "
          "pipeline runs end to end, not what a trained model leaks or teaches.")

# %% [markdown]
# ## Is it useful?
#
# The phase classifier trained on real training frames, on the synthetic set and
# on both, each tested on the held-out real videos of the run that made the set.

# %% tags=["hide-input"]
if sheet["model"]["labels"] and not missing:
    records, _ = run_utility(data, out, task="phase", run=run, n_train=n_train, seed=seed)
    print(privacy.utility_context(records))
    show(privacy.utility_table(records))
    print(privacy.utility_verdict(records))
else:
    print("the set has no phase labels: no utility test")

# %% [markdown]
# ## Measured on real frames
#
# Records of the same commands on the shared EchoNet frames, kept in
# `book/measured/` (records only: the frames and samples are licensed).

# %% tags=["hide-input"]
measured = PROJECT / "book" / "measured"
kept_utility = privacy.kept_utility(measured)
kept_sheets = privacy.kept_datasheets(measured)
for label, kept_sheet in kept_sheets.items():
    print(f"{label}: the datasheet of {kept_sheet['n']} samples of {kept_sheet['model']['run']}")
    show(privacy.datasheet_table(kept_sheet))
    print(privacy.copying_verdict(kept_sheet))
    show(privacy.memorization_table(kept_sheet))
    show(privacy.evaluation_table(kept_sheet))
for label, kept_records in kept_utility.items():
    print(f"{label}: {privacy.utility_context(kept_records)}")
    show(privacy.utility_table(kept_records))
    print(privacy.utility_verdict(kept_records))
if not kept_utility and not kept_sheets:
    print("no utility records or datasheets of real frames are kept in book/measured of this checkout yet")
