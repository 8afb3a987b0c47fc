# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # Measured runs
#
# The default build of this book trains tiny *smoke* runs on the built-in phantom
# with a CPU. Runs that matter, the study's configurations on real EchoNet-Dynamic
# frames, need a GPU, which this project borrows for minutes at a time
# (`bench/README.md` says how a session is run). What such a session measured is
# kept in `book/measured/<label>/`, one folder per run: its `log.csv` (one row per
# tick), the trainer's metric records and its resolved configuration, plus the
# session's evaluation against held-out videos. No image is kept: the frames are
# licensed, and so are the grids a model draws from them.
#
# Both tables below are read from those files when the book is built; no number on
# this page is typed. Each architecture's chapter plots its runs' curves in its
# section *On real frames at 128 px* and says what their sample grids showed.

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
measured = None  # folder of kept records; None: book/measured in this checkout

# %%
from pathlib import Path

from echolib.paths import PROJECT, shown_path
from echolib.report.measured import measured_evaluations, measured_training, styled_measured

root = Path(measured) if measured else PROJECT / "book" / "measured"
print(f"records in {shown_path(root)}")

# %% [markdown]
# ## Training
#
# One row per kept run, labelled `<machine>-<date>/<architecture>-<configuration>`:
# the device it trained on (from the session's `machine.txt`), the kimg it reached,
# the median tick's seconds per kimg, and the best `echo`-FID the trainer measured
# along the way. That FID compares samples with *training* frames, an easier
# protocol than the held-out one below, so the two columns are not the same metric.
# Runs that trained side by side on one card shared it, and their seconds per kimg
# say so; a run alone on the card trains faster.

# %%
training = measured_training(root)
assert not training.empty, f"no kept runs under {root}"
styled_measured(training)

# %% [markdown]
# ## Against held-out videos
#
# After training, a session scores every run against the frames of the videos it
# never saw (`python -m echolib evaluate --runs`), with the protocol in the last
# column: samples drawn, held-out frames, feature extractor. Rows under one
# protocol compare with each other; the comparison chapter's rows use another
# (other sample counts, 64 px for the `cpu64` runs) and do not compare with these.
#
# Two rows need their chapter beside them. Pix2Pix translates the contours of a
# frame into a frame: in the session labelled `h100-2026-11-27b` its samples were
# drawn from the few contour maps its checkpoint stored, so its recall measures
# that handful of hearts, not the model (the Pix2Pix chapter explains it; later
# evaluations translate every held-out frame's contours and say so in their
# protocol). The diffusion model had tens of kimg where the GANs had hundreds; its
# chapter's sampler table scores a later checkpoint.

# %%
evaluations = measured_evaluations(root)
if evaluations.empty:
    print("no session in these records scored its runs against held-out videos")
styled_measured(evaluations)
