# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # How echolib is built
#
# `echolib` is six layers. Each imports only the layers below it, and each
# concept (a run folder, what a metric is, how a table's rows are scored) has
# one home that everything else asks. This appendix is drawn from the source
# at build time (`echolib.layout` reads every import of every module), and the
# same lists are what `tests/test_layout.py` checks: an import against the
# direction of the arrows fails the tests before it reaches this page.

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

# %% tags=["hide-input"]
from IPython.display import Markdown, display

from echolib.report.layout_figure import homes_table, layer_diagram, model_rules, package_table

# %% [markdown]
# ## The layers
#
# Boxes are packages, bands are layers; an arrow goes from the package that
# imports to the one imported. Solid arrows are imports at module level (wider
# for more of them), dashed ones imports inside a function only, which the
# command modules use so that `python -m echolib --help` answers at once.
# Plumbing (typed configs, atomic files, image conversions, errors, devices,
# progress bars) may be used by every layer and is drawn without arrows.

# %% tags=["hide-input"]
layer_diagram();

# %% [markdown]
# What each package owns (the first line of its docstring) and its size:

# %% tags=["hide-input"]
display(package_table().style.hide(axis="index"))

# %% [markdown]
# ## One home for each concept
#
# Where a concept is defined, and what every other module asks instead of
# spelling it again. A test imports each home, so this table cannot name a
# module that is gone.

# %% tags=["hide-input"]
display(homes_table().style.hide(axis="index"))

# %% [markdown]
# ## From frames to a chapter
#
# 1. **Frames.** EchoNet-Dynamic preprocessing and the built-in phantom write a
#    folder of 8-bit frames with a manifest (`echolib.data`); a `FrameDataset`
#    holds the frames and each frame's manifest fields (video, phase, EF).
# 2. **Training.** `python -m echolib train` builds the model from its typed
#    configuration (`echolib.train.run_config`), holds whole videos out
#    (`echolib.train.splits`), and runs the kimg loop (`echolib.train.loop`). The
#    model gets everything from the trainer: real batches (with their condition
#    maps for Pix2Pix), perceptual distances, labels.
# 3. **The run folder.** Everything a run leaves (configuration, `run.json` with
#    its held-out videos, the log, metric records, samples, checkpoints) is
#    named by `RunFolder` alone.
# 4. **Records.** `python -m echolib evaluate` scores a run under one
#    `Protocol`: the run's own held-out videos as the real set, fixed sample
#    counts, the feature extractor and the sha256 of its weights. Each metric
#    is appended as one self-describing record; what a metric is comes from the
#    metric registry.
# 5. **Chapters.** The notebooks (`notebooks/*.py`, run by papermill with the
#    parameters `data`, `runs` and `device`) read records through
#    `echolib.report` and draw the figures and tables of this book; numbers
#    measured elsewhere are kept under `book/measured/` without images or paths.

# %% [markdown]
# ## The rules of a model
#
# Every architecture is a subclass of `GenerativeModel` in
# `echolib/models/base.py`; one trainer drives all of them because each keeps
# these rules (the module's own words):

# %% tags=["hide-input"]
display(Markdown(model_rules()))
