# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # Diffusion models and rectified flow
#
# The study compared five generators, all of them adversarial or autoregressive;
# its best, StyleGAN2-ADA, reached an FID of 9.17. Since 2021 the strongest image
# generators have been *diffusion models*: a network learns to remove noise from
# corrupted images, and new images are made by starting from pure noise and
# removing it step by step. There is no discriminator, so training is plain
# regression: it does not collapse onto a few modes and does not oscillate, and
# its loss is a faithful progress measure. This chapter builds one in the form
# that Karras et al. (2022, "Elucidating the Design Space of Diffusion-Based
# Generative Models", EDM) found best, and the closely related *rectified flow*
# (Liu et al. 2023; Lipman et al. 2023), as a configuration of the same code
# (`echolib/models/diffusion.py`, network in `echolib/models/unet.py`).
#
# ## Denoising is the whole method (EDM)
#
# Let $x_0$ be a frame (pixels in $[-1, 1]$) and $n \sim \mathcal N(0, I)$. The
# corruption adds Gaussian noise of standard deviation $\sigma$, $x = x_0 + \sigma n$.
# The *ideal denoiser* $D(x;\sigma) = \mathbb E[x_0 \mid x]$ is all a generator
# needs, because it gives the score of the noisy distribution,
# $\nabla_x \log p(x;\sigma) = (D(x;\sigma) - x)/\sigma^2$. EDM learns it with a
# network $F_\theta$ wrapped so that the network's input and its training target
# have unit variance at every noise level ($\sigma_d = 0.5$ is the data's
# standard deviation):
#
# $$ D_\theta(x;\sigma) = c_\text{skip}(\sigma)\,x + c_\text{out}(\sigma)\,
#    F_\theta\!\big(c_\text{in}(\sigma)\,x;\ c_\text{noise}(\sigma)\big), $$
#
# $$ c_\text{skip} = \frac{\sigma_d^2}{\sigma^2+\sigma_d^2},\qquad
#    c_\text{out} = \frac{\sigma\,\sigma_d}{\sqrt{\sigma^2+\sigma_d^2}},\qquad
#    c_\text{in} = \frac{1}{\sqrt{\sigma^2+\sigma_d^2}},\qquad
#    c_\text{noise} = \tfrac14 \ln\sigma . $$
#
# At small $\sigma$ the skip connection passes the input through and the network
# only predicts a small correction; at large $\sigma$ the input carries almost no
# information and the network predicts the clean image directly. Training
# minimises
#
# $$ \mathcal L = \mathbb E_{\sigma, x_0, n}\Big[\lambda(\sigma)\,
#    \big\lVert D_\theta(x_0 + \sigma n;\sigma) - x_0 \big\rVert_2^2\Big],\qquad
#    \lambda(\sigma) = \frac{\sigma^2+\sigma_d^2}{(\sigma\,\sigma_d)^2} = \frac{1}{c_\text{out}^2}, $$
#
# with $\ln\sigma \sim \mathcal N(P_\text{mean}, P_\text{std}^2)$,
# $P_\text{mean} = -1.2$, $P_\text{std} = 1.2$: the weight makes every noise level
# count equally for $F_\theta$, and the log-normal spends the training on the
# middle levels, where the loss can still be reduced (at very small $\sigma$ the
# task is trivial, at very large $\sigma$ impossible).
#
# ## Sampling: the probability-flow ODE and Heun's method
#
# Every noise level has a distribution $p(x;\sigma)$; the ordinary differential
# equation
#
# $$ \frac{\mathrm d x}{\mathrm d\sigma} = -\sigma\,\nabla_x \log p(x;\sigma)
#    = \frac{x - D_\theta(x;\sigma)}{\sigma} $$
#
# moves a sample of $p(x;\sigma_\text{max})$, which is plain Gaussian noise of
# standard deviation $\sigma_\text{max} = 80$, to a sample of the data
# distribution at $\sigma = 0$. It is deterministic: the starting noise alone fixes
# the image. EDM integrates it on the levels
#
# $$ \sigma_i = \Big(\sigma_\text{max}^{1/\rho} + \tfrac{i}{N-1}\big(\sigma_\text{min}^{1/\rho}
#    - \sigma_\text{max}^{1/\rho}\big)\Big)^{\rho},\quad i = 0..N-1,\qquad \sigma_N = 0, $$
#
# with $\rho = 7$ (short steps at low noise, where fine detail forms) and Heun's
# second-order method: an Euler step $x' = x_i + (\sigma_{i+1}-\sigma_i)\,d_i$ with
# $d_i = (x_i - D(x_i;\sigma_i))/\sigma_i$, then a correction with the slope at
# the end point, $x_{i+1} = x_i + (\sigma_{i+1}-\sigma_i)\,\tfrac12(d_i + d'_{i})$.
# The last step, to $\sigma = 0$, stays an Euler step, so $N$ steps cost
# $2N-1$ network evaluations (NFE): 18 steps, 35 NFE, by default.
#
# ### One evaluation per step: DPM-Solver++(2M)
#
# Heun's method treats the whole right-hand side as unknown. Lu et al. (2022,
# "DPM-Solver++") noticed that most of it is not: in terms of
# $\lambda = -\ln\sigma$ the ODE is $x$ times a known factor plus a term in the
# denoiser, $x_{i+1} = \frac{\sigma_{i+1}}{\sigma_i}\,x_i +
# \big(1 - e^{-h_i}\big)\,\hat D_i$ with $h_i = \lambda_{i+1} - \lambda_i$,
# exact if the denoiser's output $\hat D$ were constant over the step. The
# first-order choice $\hat D_i = D(x_i;\sigma_i)$ is DDIM. The *multistep*
# second-order method extrapolates linearly from the previous step's estimate,
# $\hat D_i = (1 + \tfrac{1}{2r_i})\,D_i - \tfrac{1}{2r_i}\,D_{i-1}$,
# $r_i = h_{i-1}/h_i$, so every step costs one network evaluation: $N$ steps,
# $N$ NFE (`sampler: dpm2m`). Rectified flow uses the same update with
# $\alpha_t = 1-t$, $\sigma_t = t$ and $\hat x_0 = x - t\,v$. The tests check that it
# follows the exact path whenever the denoiser is constant, and that its error
# falls four-fold per halving of the step on a problem with a closed-form solution.
#
# ## Rectified flow
#
# Rectified flow corrupts along a straight line instead,
# $x_t = (1-t)\,x_0 + t\,\epsilon$, $t \in [0, 1]$, and the network predicts the
# line's velocity:
#
# $$ \mathcal L_\text{RF} = \mathbb E_{t, x_0, \epsilon}\big\lVert v_\theta(x_t, t) - (\epsilon - x_0)\big\rVert_2^2,
#    \qquad \operatorname{logit}(t) \sim \mathcal N(0, 1), $$
#
# and samples follow $\mathrm dx/\mathrm dt = v_\theta(x, t)$ from $t = 1$ to $0$
# (Euler or Heun). It is the same family as EDM: dividing by $1-t$ gives
# $x_t/(1-t) = x_0 + \sigma\epsilon$ with $\sigma = t/(1-t)$, so the logit-normal
# $t$ (Esser et al. 2024) is a log-normal $\sigma$. The learned paths are nearly
# straight, which is what makes few-step sampling work well.
#
# ## Conditioning on the cardiac phase, and guidance
#
# A conditional model learns $p(x \mid c)$ for a label $c$ read from the training
# manifest: the cardiac phase (`ED`, `ES` or `other`). The one-hot label is
# embedded and added to the noise embedding. With probability 0.1 the label is
# replaced by an all-zero "no label" vector during training, so the same network
# also learns $p(x)$, and sampling can use *classifier-free guidance* (Ho &
# Salimans 2022): $D_w = D(x\mid\varnothing) + w\,\big(D(x\mid c) - D(x\mid\varnothing)\big)$,
# where $w > 1$ trades diversity for closer adherence to the class. This gives the
# utility experiments a generator of labelled end-diastolic and end-systolic frames.
#
# ## The denoiser network
#
# $F_\theta$ is the U-Net of Dhariwal & Nichol (2021, "ADM"): residual blocks
# (GroupNorm, SiLU, $3\times3$ convolutions, dropout) at five resolutions, from
# $128\times128$ down to $8\times8$ and back, with every encoder activation
# concatenated into the decoder at the same resolution; the noise embedding
# (sinusoids of $c_\text{noise}$ through a two-layer MLP) sets a per-channel scale
# and shift of each block's second normalisation; self-attention at $16\times16$
# and $8\times8$ (and in the bottleneck), computed with fused scaled-dot-product
# attention. The last layer of every residual branch starts at zero, so the
# untrained network outputs exactly 0 and the untrained denoiser is
# $c_\text{skip}\,x$. Training uses Adam ($2\cdot10^{-4}$, $\beta = (0.9, 0.999)$,
# linear warm-up), bf16 autocast for the network with the preconditioning and
# loss in fp32, and an exponential moving average of the weights for sampling.
#
# ## The eight configurations
#
# | config | formulation | what varies (against E1) | parameters |
# |---|---|---|---|
# | E1 | EDM | baseline: width 64, 2 blocks/level, attention at 16 and 8 px, dropout 0.1, batch 64 | 22 M |
# | E2 | EDM | width 128 | 88 M |
# | E3 | EDM | 3 blocks per level, attention also at 32 px | 29 M |
# | E4 | EDM | no dropout | 22 M |
# | E5 | EDM | batch 128, learning rate $4\cdot10^{-4}$ | 22 M |
# | E6 | rectified flow | E1's network and optimiser | 22 M |
# | E7 | rectified flow | width 128 | 88 M |
# | E8 | EDM | E2 conditioned on the cardiac phase (ED/ES/other) | 88 M |
#
# `smoke` (and its conditional twin `smoke_cond`) is a 0.35 M-parameter model at
# $64\times64$ that trains for 0.2 kimg on a CPU in seconds: it exercises every
# mechanism, so this chapter runs anywhere, but its samples are only the first
# blobs of a fan, not echocardiograms. Set `config = "E1"` (and a GPU) for real ones.
#
# `cpu64` is for readers without a GPU. It is not one of the study's configurations:
# a 1.9 M-parameter EDM U-Net at $64\times64$ (width 32, attention at 8 px, batch 32)
# that two CPU cores train on real frames at about 60 s/kimg. On the 10,000 shared
# EchoNet frames, after 100 kimg, no sample is closer to a training frame than
# frames of one video are to each other; its scores beside the other `cpu64` runs
# and the study's published samples are in the comparison chapter. Steps matter at
# this stage of training: the section *On real frames: the `cpu64` model after 100
# kimg* below scores the same model with 5, 10 and 18 steps of each solver.

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
config = "smoke"  # a config in echolib/configs/diffusion (smoke, E1..E8) or a YAML path
cond_config = "smoke_cond"  # a phase-conditioned config for the last section (e.g. E8); None skips it
kimg = None  # training length; None: as configured
device = "auto"  # auto, cpu or cuda
seed = 0  # training seed; sampling below uses it too
runs = os.environ.get("ECHOLIB_RUNS", "runs")  # folder of run folders
step_counts = [1, 2, 4, 8, 18]  # ODE steps compared in the quality-versus-steps section
samplers = ["heun", "dpm2m"]  # ODE solvers compared there (heun, euler, dpm2m)
n_eval = 32  # generated frames per step count for the statistics (2000+ for a meaningful FID)

# %% tags=["hide-input"]
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from echolib.config import to_dict
from echolib.data.frames import FrameDataset
from echolib.data.sources import REPO_ROOT, resolve_data
from echolib.images import to_float, to_uint8
from echolib.io import read_jsonl
from echolib.models.diffusion import edm_sigmas, flow_times, network_evaluations
from echolib.report.measured import measured_runs, measured_table, plot_measured, styled_measured
from echolib.report.plots import image_grid, loss_curves, metric_curves, sample_timeline
from echolib.report.records import read_log
from echolib.report.sampler_steps import compare_steps, steps_figure
from echolib.paths import shown_path
from echolib.train.run_config import load_config
from echolib.train.runs import ensure_run
from echolib.train.sampling import checked_samples, load_model

pd.set_option("display.precision", 4)

# %% [markdown]
# ## Training
#
# `ensure_run` trains the configuration into `runs/diffusion/<config>`, or reuses
# the run when it is already complete. One kimg is a thousand training frames,
# each at its own random noise level.

# %%
run = ensure_run("diffusion", config, data, runs, kimg=kimg, device=device, seed=seed)
model, checkpoint = load_model(run, device=device)
cfg = model.cfg
n_params = sum(p.numel() for p in model.nets["net"].parameters())
print(f"run: {shown_path(run)}\ncheckpoint: {checkpoint.name}\nU-Net parameters: {n_params / 1e6:.2f} M")
pd.Series(to_dict(cfg), name="value").to_frame().T

# %% [markdown]
# ## Loss
#
# The logged loss is the weighted denoising error averaged over each tick. Each
# step draws its own noise levels, so the curve is noisy, and it does not fall to
# zero: at high noise no network can know the exact frame, only the average of
# all frames consistent with what is left. For EDM it starts near 1 (the
# variance of the target of $F_\theta$) plus a term for the data's mean; for
# rectified flow near $1 + \mathbb E\,x_0^2$.

# %%
log = read_log(run)
assert len(log) > 0 and "loss" in log and log["loss"].map(math.isfinite).all()
loss_curves(run, ["loss"]);

# %% [markdown]
# ## What the denoiser has learned, level by level
#
# The left panel is the loss of the final (EMA) network at fixed noise levels on
# real frames, with the density of the training noise levels behind it; the right
# panel shows a real frame corrupted at six levels (top) and the network's
# estimate of the clean frame from each (bottom). A trained model recovers the
# fan and the chamber layout from heavy noise, and speckle only from light noise.

# %% tags=["hide-input"]
dataset = FrameDataset(resolve_data(data, size=model.resolution), resolution=model.resolution)
real = to_float(dataset.images[:256]).to(model.device)
g = torch.Generator(device=model.device).manual_seed(seed)
if cfg.formulation == "edm":
    levels = np.exp(np.linspace(math.log(0.01), math.log(80.0), 12))
    density = np.exp(-((np.log(levels) - cfg.p_mean) ** 2) / (2 * cfg.p_std**2))
    shown = [0.05, 0.2, 0.5, 1.0, 2.5, 10.0]
    level_name = r"$\sigma$"
else:
    levels = np.linspace(0.02, 0.98, 12)
    logit = np.log(levels / (1 - levels))
    density = np.exp(-((logit - cfg.t_mean) ** 2) / (2 * cfg.t_std**2)) / (levels * (1 - levels))
    shown = [0.1, 0.3, 0.5, 0.7, 0.85, 0.95]
    level_name = "$t$"
per_level = model.level_losses(real[:64], list(levels), g).cpu().numpy()
assert np.isfinite(per_level).all()
x0 = real[:1].expand(len(shown), -1, -1, -1)
lv = torch.tensor(shown, device=model.device, dtype=torch.float32)
noisy = model.corrupt(x0, lv, torch.randn(x0.shape, generator=g, device=g.device).to(model.device))
clean = model.predict_clean(noisy, lv)
assert clean.shape == noisy.shape and torch.isfinite(clean).all()

fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 1.6]})
ax = axes[0]
ax.plot(levels, per_level, marker="o")
ax.set_xscale("log" if cfg.formulation == "edm" else "linear")
ax.set_xlabel(level_name)
ax.set_ylabel("loss at this level")
ax.grid(alpha=0.3)
ax2 = ax.twinx()
ax2.fill_between(levels, density / density.max(), alpha=0.15, color="gray")
ax2.set_yticks([])
ax = axes[1]
ax.imshow(np.concatenate([np.concatenate(list(to_uint8(t.clamp(-1, 1).cpu())[:, 0].numpy()), axis=1)
                          for t in (noisy, clean)]), cmap="gray", vmin=0, vmax=255)
ax.set_xticks([(i + 0.5) * model.resolution for i in range(len(shown))], [f"{s:g}" for s in shown])
ax.set_yticks([model.resolution / 2, 1.5 * model.resolution], ["noisy", "denoised"])
ax.set_xlabel(level_name)
fig.tight_layout()

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
# The sample grids written during training (the same starting noise each time),
# then 32 frames from the final EMA network with the configuration's sampler.

# %%
sample_timeline(run);

# %%
samples = checked_samples(model, 32, seed)
nfe = network_evaluations(cfg.sampler, cfg.steps)
image_grid(samples, nrow=8, title=f"diffusion/{Path(run).name}: {cfg.steps} {cfg.sampler} steps ({nfe} NFE)");

# %% [markdown]
# ## Quality against the number of steps
#
# The samplers are deterministic, so the same starting noise can be integrated with
# fewer or more steps and with either solver: each row of the grid is one solver
# and step count, each column one starting noise. The table compares each set of
# `n_eval` frames with real frames by their pixel statistics (mean, standard
# deviation, and the study's JSD, the Jensen-Shannon distance of the pooled
# intensity histograms) and by FID in the `echo` feature space. With too few steps
# the images stay blurred averages (one step from $\sigma_\text{max}$ returns the
# denoiser's guess of the mean frame); EDM found 18 Heun steps (35 NFE) within a
# few percent of the converged FID on its benchmarks, and the table shows where
# this model settles and how much of the way DPM-Solver++(2M) gets with a half or
# a quarter of the evaluations. (With the default `n_eval` of 32 frames the FID is
# strongly biased upwards: compare it only across rows, and use 2,000 or more
# frames for numbers worth reporting.)

# %%
real_eval = dataset.images[torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n_eval]]
by_steps_run = compare_steps(model, real_eval, samplers, step_counts, n=n_eval, metrics=["fid", "jsd"],
                             extractor="echo", seed=seed, device=str(model.device))
by_steps = pd.DataFrame(by_steps_run.rows).set_index(["sampler", "steps"]).drop(columns="extractor")
grid_rows = by_steps_run.previews
real_row = pd.Series({"mean": to_float(real_eval).mean().item(), "std": to_float(real_eval).std().item()},
                     name=("real", ""))
assert (by_steps["jsd"] >= 0).all() and (by_steps["jsd"] <= math.sqrt(math.log(2)) + 1e-9).all()
assert all(torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1 for x in grid_rows)
pd.concat([by_steps, real_row.to_frame().T])

# %%
image_grid(torch.cat(grid_rows), nrow=8,
           title="rows: " + ", ".join(f"{solver} {s}" for solver in samplers for s in step_counts) + " steps");

# %%
steps_figure(by_steps_run.rows, ["jsd", "fid"]);

# %% [markdown]
# ### On real frames: the `cpu64` model after 100 kimg
#
# The `cpu64` configuration trained again on the 10,000 shared EchoNet frames
# (9,056 training frames, two CPU cores, 100 kimg in 1 h 45 min, about 60 s/kimg;
# stopped and resumed once at 20 kimg), then scored by `bench/sampler_steps.py`:
# 256 samples per row from the same starting noise, against the 944 frames of the
# held-out videos, in the `echo` feature space (so the numbers compare rows, not
# papers). Its record is in `book/measured/` (no images: the frames are licensed),
# and the table and figures below are drawn from it.
#
# DPM-Solver++(2M) matches Heun's 35-evaluation quality with 18 evaluations, so it
# samples twice as fast at equal quality, and with 5 evaluations it gives usable
# frames where 5 Heun steps give noise-speckled blur. Between 5 and 10 steps its
# FID does not improve, while KID and the two-sample test do: with 256 samples FID
# scatters by a few points, so read the three together. The sample grid at 100 kimg
# (Heun, 18 steps) shows apical four-chamber views at 64 px: the sector, the
# septum, four chambers and the valve planes, with a few frames distorted.
# StyleGAN2-ADA's `cpu64` run scores better in less time (the comparison chapter),
# so on a CPU at 64 px the GAN still leads.

# %%
cpu_run = REPO_ROOT / "book" / "measured" / "cpu-2026-11-27" / "diffusion-cpu64"
if (cpu_run / "steps.jsonl").is_file():
    cpu_steps = read_jsonl(cpu_run / "steps.jsonl")
    assert {r["sampler"] for r in cpu_steps} == {"heun", "dpm2m"} and all(r["fid"] > 0 for r in cpu_steps)
    display(pd.DataFrame(cpu_steps).set_index(["sampler", "steps"])[  # noqa: F821 -- IPython's display
        ["nfe", "fid", "kid", "precision", "recall", "c2st_auc", "images_per_s"]])
    steps_fig = steps_figure(cpu_steps, ["fid", "kid"],
                             title="cpu64 at 100 kimg: 256 samples against 944 held-out frames (echo)")
    for ax in steps_fig.axes:
        ax.set_yscale("log")
    loss_curves(cpu_run, ["loss"])
else:
    print(f"{cpu_run} is not in this checkout (installed from a wheel): its figures are in the online book")

# %% [markdown]
# The noise levels (EDM) or times (rectified flow) that the default sampler
# visits: EDM's $\rho = 7$ schedule crowds the steps at low noise, where the
# fine texture of the speckle is decided.

# %%
grid_levels = edm_sigmas(cfg.steps, cfg.sigma_min, cfg.sigma_max, cfg.rho) if cfg.formulation == "edm" \
    else flow_times(cfg.steps)
pd.DataFrame({"step": range(len(grid_levels)), "sigma" if cfg.formulation == "edm" else "t": grid_levels}).T

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
runs_128 = measured_runs(REPO_ROOT / "book" / "measured", "diffusion", resolution=128)
plot_measured(runs_128, ["loss"])
print(f"{len(runs_128)} run(s) of diffusion at 128 px kept:", ", ".join(f"{r.parent.name}/{r.name}" for r in runs_128)
      or "none in this checkout")

# %%
styled_measured(measured_table(REPO_ROOT / "book" / "measured", "diffusion", resolution=128))

# %% [markdown]
# The sampler table of the H100 run at its two checkpoints: Heun and DPM-Solver++(2M) at 5,
# 10 and 18 steps, 500 samples per row from one starting noise, against the 468 held-out
# frames, `echo` features (`bench/sampler_steps.py`).

# %%
for measured_run in runs_128:
    if not (measured_run / "steps.jsonl").is_file():
        continue
    gpu_steps = read_jsonl(measured_run / "steps.jsonl")
    for name in sorted({r["checkpoint"] for r in gpu_steps}):
        at = [r for r in gpu_steps if r["checkpoint"] == name]
        kimg_at = int(name.split("-")[1].split(".")[0]) / 1000
        display(pd.DataFrame(at).set_index(["sampler", "steps"])[  # noqa: F821 -- IPython's display
            ["nfe", "fid", "kid", "images_per_s"]].rename(columns={"fid": f"fid @ {kimg_at:g} kimg"}))
        fig = steps_figure(at, ["fid", "kid"], title=f"{measured_run.name} at {kimg_at:g} kimg: {at[0]['n']} "
                           f"samples against {at[0]['n_real']} held-out frames (echo)")
        for ax in fig.axes:
            ax.set_yscale("log")

# %% [markdown]
# **The H100 session of 2026-11-27** (`book/measured/h100-2026-11-27b/diffusion-E4`: EDM, E1
# without dropout, on 5,000 real frames, 128 px; the learning rate warmed up over 10 kimg
# instead of 100; the table after the curves is read from its records). For six minutes the
# run shared one H100 with the four other architectures and reached about 24 kimg; a second
# call then trained it alone, at about the speed of StyleGAN2-ADA E4 compiled, to 51 kimg (the
# median tick in the table is that call's). The loss fell steadily (curve above). The held-out
# evaluation in the table was made at the first checkpoint; the sampler tables above score both
# checkpoints with 500 samples each: between the two, the 18-step rows and the 10-step
# DPM-Solver++ row halved, 18 DPM-Solver++(2M) steps matched 18 Heun steps (35 evaluations),
# and 5 DPM-Solver++ steps stayed usable where 5 Heun steps did not. The grid at 41 kimg shows
# recognisable apical four-chamber views (sector, septum, valve planes, speckle), some with
# irregular chambers. Real frames against real frames score 7.3 under this protocol (500
# training frames against the 468 held-out ones).
#
# **How far it got against StyleGAN2-ADA.** The StyleGAN2-ADA E4 run of the same day
# (`h100-2026-11-27`, the StyleGAN2-ADA chapter) trains at about the diffusion model's speed
# (the *Measured runs* chapter has both), so equal kimg is equal H100 time. Its trainer's FID
# (samples against training frames, whose real-vs-real floor of 2.9 is lower than the held-out
# protocol's 7.3) first dropped below the diffusion model's 51-kimg sampler score after 60 kimg,
# and reached its best near 80 kimg. So at equal training the two are close. The diffusion model
# has not yet reached StyleGAN2-ADA's best, and its FID was still falling when the session ended.
# Whether it passes StyleGAN2-ADA, as EchoNet-Synthetic and EchoFlow found, needs hours of
# training, not the minutes a session lends. At 64 px on a CPU, StyleGAN2-ADA still leads (the
# comparison chapter).

# %% [markdown]
# ## Conditional samples: end-diastole and end-systole
#
# A phase-conditioned model (`cond_config`) trained on frames whose manifest
# names their phase (the phantom, or EchoNet-Dynamic through `echolib preprocess`;
# the study's bare folder of frames names none, and the section says so). Each column starts from the same noise; the rows ask for
# ED, ES and "other" without guidance ($w = 1$) and with $w = 2$. With the same
# starting noise the frames share their layout and differ only in what the label
# controls, which in a trained model should be the size of the ventricles and the
# thickness of the walls. The smoke model has seen 0.2 kimg, so here the labels
# change the noise pattern more than any anatomy.

# %% tags=["hide-input"]
cond_key = load_config("diffusion", cond_config).model.label_key if cond_config else None
unlabelled = sum(v is None for v in dataset.field(cond_key)) if cond_config else 0
if cond_config and not unlabelled:
    cond_run = ensure_run("diffusion", cond_config, data, runs, kimg=kimg, device=device, seed=seed)
    cond, _ = load_model(cond_run, device=device)
    assert cond.classes, f"{cond_config} is not a conditional configuration (model.labels is empty)"
    freq = pd.Series(cond.class_freq.cpu().numpy(), index=cond.classes, name="training share")
    panels = []
    for w in (1.0, 2.0):
        for label in cond.classes:
            gen = torch.Generator(device=cond.device).manual_seed(seed)
            x = cond.sample(8, gen, label=label, guidance=w)
            assert x.shape == (8, 1, cond.resolution, cond.resolution) and torch.isfinite(x).all()
            panels.append(x)
    assert not torch.equal(panels[0], panels[1]), "the label has no effect"
    display(freq.to_frame().T)  # noqa: F821 -- IPython's display
    image_grid(torch.cat(panels), nrow=8,
               title="rows: " + ", ".join(f"{c} (w={w:g})" for w in (1, 2) for c in cond.classes))
elif cond_config:
    print(f"{unlabelled} of {len(dataset)} frames of {data} have no {cond_key!r}: no conditional model on these frames")
else:
    print("cond_config is None: no conditional model in this build")
