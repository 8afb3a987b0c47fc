# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # Wasserstein GAN
#
# A GAN's discriminator, trained to tell real frames from generated ones with a
# cross-entropy loss, makes the generator minimise (at the optimum) the
# Jensen-Shannon divergence between the two distributions. When the distributions
# barely overlap, as they do early in training for images, that divergence is
# flat and its gradients vanish. Arjovsky, Chintala and Bottou (2017) replaced it
# with the Wasserstein-1 (earth mover's) distance, which keeps shrinking smoothly as
# the generated distribution $P_g$ moves towards the real one $P_r$. Through the
# Kantorovich-Rubinstein duality it is a maximum over 1-Lipschitz functions $f$:
#
# $$ W(P_r, P_g) = \sup_{\lVert f \rVert_L \le 1} \; \mathbb E_{x \sim P_r}[f(x)] - \mathbb E_{x \sim P_g}[f(x)]. $$
#
# A *critic* $D$ (a discriminator without the sigmoid) plays $f$. It minimises
# $L_D = \mathbb E[D(G(z))] - \mathbb E[D(x)]$, so $-L_D$ is its running estimate of
# $W$ (up to the Lipschitz constant), and the generator minimises
# $L_G = -\mathbb E[D(G(z))]$. The critic is trained $n_{critic} = 5$ times per
# generator step so that it stays near its optimum. The Lipschitz constraint is
# what makes $D$ a distance estimate and not a classifier, and there are two ways
# to impose it:
#
# * **weight clipping** (the WGAN paper and the study): after every critic
#   update each weight is clamped to $[-c, c]$, $c = 0.01$, with RMSprop at
#   $5\cdot 10^{-5}$. Simple, but a clipped critic saturates: with batch norm
#   undoing every earlier scale, its output is bounded by roughly $c^2$ times
#   the fan-in of its last layer, and it often sits right at that bound.
# * **gradient penalty** (WGAN-GP, Gulrajani et al. 2017): no clipping; instead
#   $\lambda\, \mathbb E_{\hat x}[(\lVert \nabla_{\hat x} D(\hat x) \rVert_2 - 1)^2]$
#   with $\lambda = 10$ on random interpolates
#   $\hat x = \alpha x + (1-\alpha) G(z)$, $\alpha \sim U[0,1]$, Adam
#   ($10^{-4}$, $\beta = (0.5, 0.9)$), and layer norm instead of batch norm in
#   the critic (the penalty is per sample; a configuration asking for both stops
#   with a `ConfigError`). With `torch.compile` the penalty's gradient of a
#   gradient runs through the eager critic, as StyleGAN2's $R_1$ does.
#
# Both networks are the DCGAN of the WGAN authors' code: transposed convolutions
# from $4\times4$ to $128\times128$ with batch norm and ReLU in $G$, strided
# convolutions with LeakyReLU in $D$, 64 channels at full resolution doubling to
# 1024 at $4\times4$. Real and generated batches pass through the critic
# separately, as in that code, so a batch-norm critic is the same function in
# its own update and in the generator's.
#
# ## The eight configurations
#
# The study trained eight WGANs, W1-W8 (best FID 68.31, W6), and published their
# logs but not their settings. Once a clipped critic saturates its loss is flat,
# so the *scale* of the logged losses identifies the clip and the critic's last
# fan-in. `E1`-`E8` are our reading of those logs; the configuration files say
# why each was chosen:
#
# | config | study | what varies | study's best FID |
# |---|---|---|---|
# | E1 | W1 | the WGAN recipe: clip 0.01, 5 critic steps, RMSprop $5\cdot10^{-5}$ | 75.8 |
# | E2 | W2 | critic twice as wide (losses 2.0x W1's) | 173 |
# | E3 | W3 | learning rate $10^{-4}$ | 69.6 |
# | E4 | W4 | clip 0.02 (losses 4.0x) | 153 |
# | E5 | W5 | clip 0.07 (losses ~50x) | 210 |
# | E6 | W6 | a wider generator | 68.3 |
# | E7 | W7 | clip 0.1 (losses ~100x) | 158 |
# | E8 | (W8) | WGAN-GP instead of clipping | (93.6) |
#
# `cpu64` is for readers without a GPU, not one of the study's configurations:
# E8's WGAN-GP (Adam $10^{-4}$, $\lambda = 10$, layer-normalised critic) on a DCGAN
# at $64\times64$ with 32 channels at full resolution, capped at 256 (generator
# 1.1 M parameters, critic 0.7 M). Two CPU cores train it at about 6 s/kimg, where
# kimg counts the critic's real images, five batches per generator step. On the
# 10,000 shared EchoNet frames it gives coarse sector-shaped frames with a septum
# and chambers and no memorised frames, but a classifier still tells them from real
# frames and their intensity histogram is off (JSD 0.23; real frames 0.01). The
# critic's Wasserstein estimate fell from 54 to 4 over the run. The comparison
# chapter's `cpu64` table scores it beside the other `cpu64` runs.

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

data = "phantom"  # "phantom" (built-in) or a folder/zip/manifest of frames
config = "smoke"  # a config in echolib/configs/wgan (smoke, cpu64, E1..E8) or a YAML path
kimg = None  # training length; None: as configured
device = "auto"  # auto, cpu or cuda
seed = 0  # training seed (data order, latents, initial weights); sampling below uses it too
runs = os.environ.get("ECHOLIB_RUNS", "runs")  # folder of run folders
study_logs = str(shared_data() / "seed-reference" / "training-logs")  # the study's logs ($ECHOLIB_SHARED_DATA)

# %% tags=["hide-input"]
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from echolib.config import to_dict
from echolib.data.sources import REPO_ROOT
from echolib.report.measured import measured_runs, measured_table, plot_measured, styled_measured
from echolib.report.plots import image_grid, loss_curves, metric_curves, sample_timeline
from echolib.report.records import read_log
from echolib.report.study_logs import read_log as read_study_log
from echolib.paths import shown_path
from echolib.train.runs import ensure_run
from echolib.train.sampling import checked_samples, load_model

pd.set_option("display.precision", 4)

# %% [markdown]
# ## Training
#
# `ensure_run` trains the configuration into `runs/wgan/<config>`, or reuses the
# run when it is already complete. Training length is counted in kimg, thousands
# of real frames shown to the critic: five critic steps per generator step cost
# five batches.

# %%
run = ensure_run("wgan", config, data, runs, kimg=kimg, device=device, seed=seed)
model, checkpoint = load_model(run, device=device)
cfg = model.cfg
print(f"run: {shown_path(run)}\ncheckpoint: {checkpoint.name}")
pd.Series(to_dict(cfg), name="value").to_frame().T

# %% [markdown]
# ## Losses
#
# $-L_D$ is the critic's estimate of the Wasserstein distance; it should fall as
# the generator improves (with clipping, only while the critic is not pinned at
# its bound). $L_G$ is meaningful only relative to the critic's current offset,
# since adding a constant to $D$ changes $L_G$ but not $L_D$. With the gradient
# penalty, `loss_gp` is the penalty term before its weight.

# %%
log = read_log(run)
keys = [k for k in ("loss_D", "loss_G", "loss_gp") if k in log]
assert len(log) > 0 and {"loss_D", "loss_G"} <= set(keys)
for k in keys:
    assert log[k].map(math.isfinite).all(), k
loss_curves(run, keys);

# %% [markdown]
# ## The Lipschitz constraint in the checkpoint
#
# With clipping every critic weight, batch-norm gains included, lies in
# $[-c, c]$, and most of them sit at the bounds: the clip, not the data, shapes
# the critic. The histogram shows where the weights of the last checkpoint are.

# %%
weights = torch.cat([p.detach().flatten().cpu() for p in model.nets["D"].parameters()])
fig, ax = plt.subplots(figsize=(5, 2.5))
ax.hist(weights.numpy(), bins=81)
ax.xaxis.set_major_locator(plt.MaxNLocator(5))  # the clip is small: default ticks overlap
ax.set_xlabel("critic weight")
ax.set_yscale("log")
if cfg.loss == "clip":
    assert weights.abs().max() <= cfg.clip + 1e-7
    for x in (-cfg.clip, cfg.clip):
        ax.axvline(x, ls="--", c="k", lw=0.8)
    print(f"share of critic weights at +-clip: {(weights.abs() >= cfg.clip - 1e-9).float().mean():.1%}")
fig.tight_layout()

# %% [markdown]
# ## The study's runs
#
# When the study's logs are at hand (`study_logs`), their FID curves and loss
# scales show what the configurations above are read from: W2, W4, W5 and W7
# have flat, saturated losses at 2x, 4x, 50x and 100x W1's, and the best runs
# (W3, W6) are the ones whose critic loss still moves.

# %% tags=["hide-input"]
logs_dir = Path(study_logs) / "wgan"
if logs_dir.is_dir():
    study = {p.stem.replace("metrics_wgan", ""): read_study_log(p) for p in sorted(logs_dir.glob("*.csv"))}
    summary = pd.DataFrame({
        name: {"epochs": int(df["epoch"].max()), "best FID": df["fid"].min(),
               "at epoch": int(df.loc[df["fid"].idxmin(), "epoch"]),
               "median loss_D": df["loss_D"].median(), "median loss_G": df["loss_G"].median()}
        for name, df in study.items()}).T
    summary["loss scale vs W1"] = summary["median loss_D"] / summary.loc["W1", "median loss_D"]
    assert abs(summary["best FID"].min() - 68.31) < 0.01 and summary["best FID"].idxmin() == "W6"
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for name, df in study.items():
        fid = df.dropna(subset=["fid"])
        ax.plot(fid["epoch"], fid["fid"], label=name, lw=1)
    ax.set_xlabel("epoch (the study's)")
    ax.set_ylabel("FID")
    ax.set_yscale("log")
    ax.legend(ncol=4, fontsize=7)
    fig.tight_layout()
else:
    summary = f"study logs not found at {shown_path(logs_dir)}; set study_logs (or ECHOLIB_SHARED_DATA) to show them"
summary

# %% [markdown]
# ## Metrics during training
#
# FID and KID of generated frames against the training frames, when the run
# computed metrics during training (`metrics_kimg > 0` in the configuration).

# %%
metric_curves(run, ["fid", "kid"]);

# %% [markdown]
# ## Samples
#
# The sample grids written during training, from fixed latents, then 32 frames
# from the final generator (batch norm in evaluation mode).

# %%
sample_timeline(run);

# %%
samples = checked_samples(model, 32, seed)
image_grid(samples, nrow=8, title=f"wgan/{Path(run).name}: {checkpoint.name}");

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
runs_128 = measured_runs(REPO_ROOT / "book" / "measured", "wgan", resolution=128)
plot_measured(runs_128, ["loss_D", "loss_G", "loss_gp"])
print(f"{len(runs_128)} run(s) of wgan at 128 px kept:", ", ".join(f"{r.parent.name}/{r.name}" for r in runs_128)
      or "none in this checkout")

# %%
styled_measured(measured_table(REPO_ROOT / "book" / "measured", "wgan", resolution=128))

# %% [markdown]
# **The H100 session of 2026-11-27** (`book/measured/h100-2026-11-27b/wgan-E4`: the study's
# W4, weight clipping at 0.02, on 5,000 real frames, 128 px; the table above is read from its
# records). The run shared one H100 with the four other architectures for six minutes, several
# times slower than the 0.12 s/kimg it trains at alone, and still reached hundreds of kimg. Its
# trainer's `echo`-FID (samples against training frames, curve above) stayed level through
# 500 kimg, and the grids up to then show fan-shaped four-chamber views with streaky, blotched
# speckle. Then the generator collapsed: at 707 kimg every frame of the grid is the same small
# bright blob repeated in a 4x4 tiling on black, and the FID curve leaps by more than an order of
# magnitude. The critic's loss gave no warning: it stayed in the same band all along (curve
# above), so only the grids and the FID show the collapse. Against the held-out videos at the
# end of the run, a classifier tells every sample from a real frame.
#
# This matches the study: its clipped WGANs were its worst models (the study's table above).
# Weight clipping lets a critic with batch norm find one direction that separates everything,
# and the generator then chases it. Use the gradient-penalty configuration: `cpu64` (WGAN-GP)
# trains stably at 64 px on two CPU cores (the comparison chapter).
