# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # Pix2Pix: frames translated from contours
#
# The other generators of this book draw a frame from noise. Pix2Pix (Isola, Zhu,
# Zhou and Efros, CVPR 2017) instead *translates*: it learns a map $c \mapsto x$
# from a condition image $c$ to a frame $x$, from pairs $(c, x)$. The study
# conditioned on the Canny contours of each frame; the left-ventricle (LV) mask
# is the anatomical alternative where one is known (every phantom frame; the
# EchoNet frames whose LV an expert traced).
#
# ## Condition maps
#
# The Canny detector (`cv2.Canny` on the 8-bit frame) smooths with a $3\times3$
# Sobel gradient, keeps local maxima of the gradient magnitude along its
# direction, and links them by hysteresis: pixels above the high threshold
# (200) start an edge, pixels above the low one (100) continue it. The result is
# a binary map, 255 on edges. On a B-mode frame it traces the sector outline,
# the walls and valves, and a good deal of speckle. The LV mask is 255 inside the
# traced cavity.
#
# ## Networks and losses
#
# The generator is a **U-Net**: eight (at $256^2$; seven at $128^2$) stride-2
# convolutions take $c$ down to $1\times1$, and a mirror of transposed
# convolutions brings it back, each decoder level concatenated with the encoder
# level of the same size. The skips carry the condition's edges straight to the
# output; the bottleneck only has to carry what is global. Its only randomness
# is dropout ($p = 0.5$) in the three decoder blocks after the bottleneck, kept
# on at test time: the paper found that noise fed as an input is ignored.
#
# The discriminator is a **PatchGAN**: a fully convolutional net on the pair
# $(c, x)$ whose every output scores one $70\times70$ patch as real or fake
# ($14\times14$ overlapping patches at $128^2$). Its loss and the generator's are
#
# $$ \mathcal L_D = \tfrac12\,\mathbb E\big[\mathrm{BCE}(D(c, x), 1) + \mathrm{BCE}(D(c, G(c)), 0)\big], \qquad
#    \mathcal L_G = \mathbb E\big[\mathrm{BCE}(D(c, G(c)), 1)\big] + \lambda\, \mathbb E\,\lVert x - G(c)\rVert_1, $$
#
# with $\lambda = 100$. The L1 term alone gives the right low frequencies and a
# blurred image (the conditional mean); the patch discriminator penalises
# blur and untextured regions, which is where the speckle comes from.
#
# ## What is evaluated
#
# A tenth of the videos (`train.holdout: 0.1`, by a seeded hash of the video id) never reaches
# training. Two questions are then asked:
#
# * **reconstruction** -- translate the contours of a held-out frame and compare
#   the result with *that* frame (PSNR in dB and SSIM, both on 8-bit images).
#   Unlike the study's SSIM/PSNR between random unpaired frames, these pairs
#   correspond, so the numbers measure how much of a frame its contours pin down.
# * **generation** -- contours (or masks) of unseen hearts go in, new frames come
#   out; these are the samples scored with FID/KID like every other model's. The
#   model stores no conditions: `python -m echolib sample RUN --n 100 --out DIR`
#   translates the contours of the run's held-out frames (of the data it trained
#   on), and `--conditions-from FRAMES` those of the frames in another folder.
#
# `cpu64` is for readers without a GPU. It is not one of the study's configurations:
# the paper's objective (L1 weight 100 and the PatchGAN term) at $64\times64$ with
# half the widths (32 channels at full resolution, capped at 256: 7.3 M parameters
# in the U-Net, 0.7 M in the PatchGAN), batch 16. Two CPU cores train it on real
# frames at about 10 s/kimg. On the 10,000 shared EchoNet frames, 100 kimg
# translate the contours of held-out hearts into recognisable apical four-chamber
# frames with PSNR 21.2 dB and SSIM 0.72 against the true frames (training hearts:
# 22.6 dB, 0.76). Scored as a generator like the others (the comparison chapter's
# `cpu64` table: each sample translates the contours of one held-out frame), it
# scores close to the best unconditional model. This is not generation from
# nothing, since the contours come from the frames they are compared with. Run
# this notebook with `config = "cpu64"` and `data` set to the frames.

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

data = "phantom"  # "phantom" (built-in) or a folder/zip/manifest of frames
config = "smoke"  # a config in echolib/configs/pix2pix (smoke, cpu64, E1..E8) or a YAML path
kimg = None  # training length; None: as configured
device = "auto"  # auto, cpu or cuda
seed = 0  # training seed (data order, dropout noise, initial weights); sampling below uses it too
runs = os.environ.get("ECHOLIB_RUNS", "runs")  # folder of run folders

# %% tags=["hide-input"]
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from echolib.config import to_dict
from echolib.data.frames import FrameDataset, split_holdout
from echolib.data.sources import resolve_data
from echolib.images import to_float
from echolib.report.reconstruction import reconstruction_scores
from echolib.data.sources import REPO_ROOT
from echolib.report.measured import measured_runs, measured_table, plot_measured, styled_measured
from echolib.report.plots import image_grid, loss_curves, metric_curves, sample_timeline
from echolib.report.records import read_log
from echolib.train.run_records import load_run_config
from echolib.paths import shown_path
from echolib.train.runs import ensure_run
from echolib.train.conditions import condition_maps
from echolib.train.sampling import checked_samples, load_model

pd.set_option("display.precision", 4)

# %% [markdown]
# ## Training
#
# `ensure_run` trains the configuration into `runs/pix2pix/<config>`, or reuses
# the finished run.

# %%
run = ensure_run("pix2pix", config, data, runs, kimg=kimg, device=device, seed=seed)
model, checkpoint = load_model(run, device=device)
cfg = model.cfg
resolution = model.resolution
print(f"run: {shown_path(run)}\ncheckpoint: {checkpoint.name}")
pd.Series(to_dict(cfg), name="value").to_frame().T

# %% [markdown]
# ## The data and its conditions
#
# The frames of the data, split as the trainer split them (`train.holdout` of
# the videos never reach training): held-out hearts first. Top row: frames; bottom row: their condition maps.

# %%
dataset = FrameDataset(resolve_data(data, size=resolution), resolution=resolution)
train_cfg = load_run_config(run).train
train_part, held = split_holdout(dataset, train_cfg.holdout, train_cfg.holdout_seed)
assert held is not None and len(held) > 0, "no held-out videos: raise train.holdout in the configuration"
seen = train_part.subset(range(min(max(len(held), 8), len(train_part))))
maps = condition_maps(model, held)
assert maps.shape == held.images.shape and set(maps.unique().tolist()) <= {0, 255}
n_show = min(8, len(held))
image_grid(torch.cat([held.images[:n_show], maps[:n_show]]), nrow=n_show,
           title=f"{len(held)} held-out frames of {len(set(held.video_ids))} hearts, and their {cfg.condition} maps");
print(f"{len(dataset)} frames, {len(held)} held out; condition pixels on: {(maps > 0).float().mean():.1%}")

# %% [markdown]
# ## Losses
#
# `loss_D` is the patch discriminator's cross-entropy ($\ln 2 \approx 0.69$ when
# it cannot tell), `loss_G_gan` the generator's adversarial term, `loss_L1` the
# mean absolute error in $[-1, 1]$ units and `loss_G` their weighted sum.

# %%
log = read_log(run)
keys = ["loss_D", "loss_G_gan", "loss_L1", "loss_G"]
assert len(log) > 0
for k in keys:
    assert log[k].map(math.isfinite).all(), k
assert log["loss_L1"].iloc[-1] < log["loss_L1"].iloc[0], "L1 should fall during training"
loss_curves(run, keys);

# %% [markdown]
# ## Condition, translation, truth
#
# Held-out hearts: each column shows the condition, the generator's frame and
# the real frame the condition came from.

# %%
g = torch.Generator(device=model.device).manual_seed(seed)
fake = model.translate(maps[:n_show], g).cpu()
assert fake.shape == (n_show, 1, resolution, resolution) and fake.min() >= -1 and fake.max() <= 1
triplets = torch.cat([to_float(maps[:n_show]), fake, to_float(held.images[:n_show])])
image_grid(triplets, nrow=n_show, title="condition / Pix2Pix / real (held-out hearts)");

# %% [markdown]
# ## Reconstruction scores
#
# Mean PSNR and SSIM between each translated frame and its own real frame, on
# the held-out videos and on as many training videos. A gap between the two
# columns measures overfitting to the training hearts.

# %%
scores = pd.DataFrame({"held-out videos": reconstruction_scores(model, held, seed=seed),
                       "training videos": reconstruction_scores(model, seen, seed=seed)}).T
assert 0 < scores.loc["held-out videos", "psnr"] < 100 and -1 <= scores.loc["held-out videos", "ssim"] <= 1
scores

# %% [markdown]
# ## What dropout adds
#
# The same condition translated with eight dropout draws: their mean, and the
# per-pixel standard deviation (brighter = more variation). With
# `test_dropout: false`, or a configuration trained without dropout (E8), the
# translator is deterministic and the right panel is black.

# %%
g = torch.Generator(device=model.device).manual_seed(seed)
draws = torch.cat([model.translate(maps[:1], g).cpu() for _ in range(8)])
spread = draws.std(0)[0]
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, img, title in ((axes[0], to_float(maps[0])[0], "condition"), (axes[1], draws.mean(0)[0], "mean of 8 draws"),
                       (axes[2], spread, f"std (max {spread.max():.2f})")):
    ax.imshow(img, cmap="gray", vmin=None if title.startswith("std") else -1, vmax=None if title.startswith("std") else 1)
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()
assert torch.isfinite(draws).all()

# %% [markdown]
# ## Generation from unseen hearts
#
# The model, loaded from its checkpoint alone, stores no conditions: like
# `python -m echolib sample`, it is handed the maps of held-out frames. Here 32
# frames translated from maps drawn from the held-out set.

# %%
samples = checked_samples(model, 32, seed, condition=maps)
image_grid(samples, nrow=8, title=f"pix2pix/{Path(run).name}: {checkpoint.name}");

# %% [markdown]
# ## Metrics and samples during training
#
# FID/KID of translated held-out conditions against the training frames, when
# the run computed metrics during training (each chunk of samples draws distinct
# conditions from all held-out frames), and the sample grids written during
# training (the same conditions and dropout draws every time).

# %%
metric_curves(run, ["fid", "kid"]);

# %%
sample_timeline(run);

# %% [markdown]
# ## On real frames at 128 px
#
# The E-configurations train at 128 px for hundreds of kimg, which needs a GPU.
# Runs of this architecture at 128 px kept in `book/measured/` (curves and metric
# records; no images, because the frames are licensed) are plotted here: those that
# `bench/gpu_session.sh` trained on a lent GPU and `bench/keep_session.py` kept, and
# those trained on this project's 2-core CPU (labels `cpu-*`). The cell says so
# when none has been recorded yet.

# %%
runs_128 = measured_runs(REPO_ROOT / "book" / "measured", "pix2pix", resolution=128)
plot_measured(runs_128, ["loss_D", "loss_G_gan", "loss_L1", "loss_G"])
print(f"{len(runs_128)} run(s) of pix2pix at 128 px kept:", ", ".join(f"{r.parent.name}/{r.name}" for r in runs_128)
      or "none in this checkout")

# %%
styled_measured(measured_table(REPO_ROOT / "book" / "measured", "pix2pix", resolution=128))

# %% [markdown]
# **The H100 session of 2026-11-27** (`book/measured/h100-2026-11-27b/pix2pix-E4`: E4 is the
# paper's L1-only baseline, Canny contours, on 5,000 real frames, 128 px; the table above is
# read from its records). The run shared one H100 with the four other architectures for six
# minutes, more than twice as slow as the 0.49 s/kimg it trains at alone, and reached hundreds
# of kimg. The L1 error fell steadily (curve above). The discriminator still trains but does
# not reach the generator in E4, and it separates translations from frames almost perfectly
# (its loss near zero, the generator's unused GAN term large): L1 alone makes frames that are
# easy to tell apart. The grid at 240 kimg shows four-chamber frames that follow their contours
# closely, smooth rather than speckled, as the paper's L1 baseline is.
#
# Its held-out evaluation in that session (table above; note its **recall**) was made the old
# way: 1,000 samples drawn from 64 held-out contour maps that its checkpoint stored. 64
# hearts cannot cover the held-out set, whatever the samples look like, so these numbers are
# not comparable with the other rows. Since then, `evaluate --runs` and the comparison chapter
# feed Pix2Pix the contours of every held-out frame in turn
# (`scoring.run_images(..., conditions_from=splits.heldout)`). Its records say so
# (`"conditions": "held-out frames"`, shown in the table's protocol), and a record made the
# old way is never reused.
