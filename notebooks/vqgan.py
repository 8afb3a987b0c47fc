# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # VQGAN with a transformer prior
#
# A VQGAN (Esser, Rombach & Ommer, 2021, *Taming Transformers for High-Resolution
# Image Synthesis*) generates in two stages. The first learns a *discrete*
# autoencoder: frames become small grids of integers, indices into a learned
# codebook, and a decoder trained as the generator of a GAN turns such grids back
# into frames. The second learns a *prior* over the grids, an autoregressive
# transformer; sampling it and decoding gives new frames. The reference study
# trained eight VQGAN configurations (VQ1..VQ8, best FID 139.47 for VQ6, far behind
# StyleGAN2-ADA's 9.17) but its logs and scores do not separate how well the
# autoencoder *reconstructs* from how well the model *generates*. This chapter
# keeps the two apart: PSNR/SSIM of reconstructions of held-out hearts measure
# stage 1, FID/KID of prior samples measure the whole model.
#
# ## Stage 1: a discrete autoencoder
#
# A convolutional encoder $E$ (residual blocks with GroupNorm and SiLU,
# self-attention at the lowest resolution) maps a frame $x \in [-1,1]^{R\times R}$
# to a grid $z = E(x)$ of $h \times w$ vectors, $h = R/f$ for a down factor $f$
# (16 in the baseline: an $8\times 8$ grid at $128\times128$). Each vector is
# replaced by its nearest codebook entry $e_k$, $k < K$:
#
# $$ s_{ij} = \arg\min_k \lVert z_{ij} - e_k \rVert_2, \qquad z_q = e_{s}. $$
#
# The decoder $G$ reconstructs $\hat x = G(z_q)$. The argmin has no gradient, so
# the decoder's gradient is copied to the encoder unchanged (straight-through:
# $z_q = z + \mathrm{sg}[e_s - z]$, $\mathrm{sg}$ the stop-gradient). The codebook
# learns either by gradient through
#
# $$ L_{VQ} = \lVert \mathrm{sg}[z] - e_s \rVert_2^2 + \beta\, \lVert z - \mathrm{sg}[e_s] \rVert_2^2, \qquad \beta = 0.25, $$
#
# whose first term pulls codes towards the encoder outputs assigned to them and
# whose second (*commitment*) term keeps the encoder near its codes; or, in the
# configuration `codebook: ema`, by exponential moving averages of the assigned
# outputs (counts $N_k \leftarrow d N_k + (1-d) n_k$, sums
# $m_k \leftarrow d m_k + (1-d)\sum_{s_{ij}=k} z_{ij}$, codes $e_k = m_k/\tilde N_k$
# with Laplace-smoothed counts $\tilde N_k$, $d = 0.99$), with only the commitment
# term left as a loss. Codes that fall out of use can be restarted on random
# encoder outputs (`restart_threshold`).
#
# The autoencoder's loss is a reconstruction term, L1 plus a perceptual distance
# $P$ (LPIPS when both its weights files are present, `ECHOLIB_VGG16_WEIGHTS` and
# `ECHOLIB_LPIPS_WEIGHTS` or torch's hub cache; otherwise the intermediate features
# of the domain extractor `echo`; otherwise none: `run.json` records which, with
# the sha256 of its weights, under `model`), plus a
# GAN term once a PatchGAN discriminator $D$ is switched on after
# `disc_start_kimg`. $D$ minimises the hinge loss
# $\tfrac12\,\mathbb E[\max(0, 1 - D(x))] + \tfrac12\,\mathbb E[\max(0, 1 + D(\hat x))]$,
# the autoencoder $L_{GAN} = -\mathbb E[D(\hat x)]$, weighted adaptively at the
# decoder's last layer $G_L$:
#
# $$ \lambda = \frac{\lVert \nabla_{G_L} L_{rec} \rVert}{\lVert \nabla_{G_L} L_{GAN} \rVert + 10^{-4}}, \qquad
#    L = \underbrace{\lVert x - \hat x\rVert_1 + w_P\, P(x, \hat x)}_{L_{rec}} + \lambda\, w_D\, L_{GAN} + L_{VQ}. $$
#
# Whatever the scale of $D$'s logits, the adversarial gradient at the output
# layer is then a fixed fraction $w_D$ (0.8) of the reconstruction gradient.
#
# ## Stage 2: a prior over codes
#
# Read in raster order, a code grid is a sequence $s = (s_1, \dots, s_{hw})$.
# A GPT-style transformer (causal self-attention, learned positional embeddings,
# a start token $s_0$) models it autoregressively,
#
# $$ p(s) = \prod_{i=1}^{hw} p(s_i \mid s_{<i}), $$
#
# trained by cross-entropy on the codes of real frames (the loss in bits per code
# is at most $\log_2 K$, the cost of a uniform prior). To generate, codes are drawn
# one at a time from $\mathrm{softmax}(\ell / T)$, optionally restricted to the
# $k$ largest logits, and the grid is decoded by $G$. A temperature $T < 1$
# trades diversity for typicality.
#
# Both stages run in one training run: until `prior_start_kimg` the autoencoder
# and discriminator train; from then on the autoencoder is frozen and every step
# trains only the prior (its EMA copy samples). Sample grids and training-time
# metrics always come from the prior, so before stage 2 they show decodings of
# near-uniform random codes; reconstructions are shown separately below. A
# fraction of the videos (`train.holdout`, 10% by default) is never shown to either stage.
#
# ## Configurations
#
# `smoke` is a tiny CPU configuration for this chapter's default build. The eight
# study-scale configurations (128x128, 1500 kimg: stage 1 to 1000 kimg, the prior
# after) each change one axis of the baseline E1:
#
# | config | what varies | value (E1's) |
# |---|---|---|
# | E1 | baseline (taming-style f16 VQGAN) | 512 codes of dim 256, straight-through, $f = 16$ |
# | E2 | codebook size | 256 (512) |
# | E3 | codebook size | 1024 (512) |
# | E4 | down factor | 8: 16x16 = 256 codes per frame (16: 8x8) |
# | E5 | codebook learning | EMA (decay 0.99) + dead-code restarts (straight-through) |
# | E6 | code dimension | 32 (256) |
# | E7 | discriminator start | 0 kimg, as the study's VQ8 (200 kimg) |
# | E8 | perceptual weight | 0.1 (1.0) |
#
# `cpu64` is for readers without a GPU, not one of the study's configurations: an
# f8 VQGAN at $64\times64$ (8x8 codes from 256, EMA codebook with dead-code
# restarts, autoencoder 3.2 M parameters) and a 4-layer prior (0.9 M). The
# straight-through codebook collapsed to about 12 codes within 4 kimg on two CPU
# cores, hence the EMA codebook, which kept all 256 in use (perplexity 191). On
# the 10,000 shared EchoNet frames, 80 kimg (20 for the autoencoder, then 60 for
# the prior) reconstruct held-out frames at PSNR 23.5 dB and SSIM 0.77 and
# generate recognisable four-chamber fans (the comparison chapter's `cpu64` table
# has their scores). Prior training is cheap (8 s/kimg) and
# pays: at 40 kimg (prior at 5.3 bits per code) the same run scored echo-FID 60.6
# and KID 0.444; at 80 kimg the prior is at 5.0 bits and still improving. The
# first run of this recipe, with the study's GAN weight (below), reached 19.9 dB,
# 0.46 and echo-FID 79.6 at 40 kimg, with recall 0.50 (KID 0.404).
#
# **A discriminator the autoencoder outruns.** The first `cpu64` run used taming's
# GAN weight, `disc_weight` 0.8, and switched $D$ on at 8 kimg without a warm-up.
# From then on $D$'s hinge loss sat at 1.0: it never told reconstructions from
# frames. Meanwhile the adaptive weight grew from 1.6 to 650 and the L1
# reconstruction error rose from 0.099 to 0.14. Probes from its 8 kimg
# checkpoint (`bench/vqgan_disc_probe.py`) show why. Each probe trained 150 to
# 250 steps of 16 frames and logged the mean logit of $D$ on frames and on
# reconstructions (their gap: how far $D$ separates them).
#
# | probe (from the 8 kimg autoencoder) | $D$'s hinge loss | logit gap | L1 |
# |---|---|---|---|
# | as run: `disc_weight` 0.8, no warm-up | 0.99-1.05 throughout | -0.18 to 0.05 | 0.12-0.15 |
# | the same $D$, autoencoder not shown its loss (`disc_weight` 0) | 0.40 at 50 steps, 0.03 at 125 | 2.3, then 5.0 | 0.08-0.09 |
# | 2 kimg warm-up (125 steps), then 0.8 | 0.03 at switch-on, 1.30 25 steps later | 5.0, then 0.10 to -0.21 | 0.084 -> 0.14 |
# | spectral norm in $D$, or no normalisation | 1.00 ($D$ learns next to nothing, then its output stops depending on the input) | 0.00 | 0.10-0.14 |
# | `disc_weight` 0.1, no warm-up | 0.93 at 25 steps, then 0.47-0.69 | 0.5-1.6 | 0.09 |
# | `disc_weight` 0.1, 1 kimg warm-up | 0.25-0.76 | 0.7-2.1 | 0.09 |
#
# $D$ itself learns fast, and it is not broken: alone, it separates the two within
# 50 steps. But an autoencoder that follows $D$'s gradient at 80% of the
# reconstruction gradient's norm, at the same learning rate, changes its
# reconstructions faster than $D$ can learn. It fooled even a $D$ that had first
# learnt alone, within 25 steps, and kept it fooled while its own
# reconstructions got worse. At 0.1, $D$ keeps separating and the reconstructions
# keep improving: in the full run, L1 fell from 0.099 to 0.080 between 8 and 20
# kimg while $D$'s logit gap stayed between 0.6 and 1.5. `cpu64` therefore uses `disc_weight` 0.1 and a 1 kimg warm-up
# (`disc_warmup_kimg`; alone, the warm-up did not help). The study's own VQ2 and
# VQ3 logs show the same discriminator loss of 1.0 (section on the study's logs
# below). The E configurations keep taming's 0.8, as the study ran them: to try
# the fix at 128 px, add `--set model.disc_weight=0.1`.

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
config = "smoke"  # a config in echolib/configs/vqgan (smoke, cpu64, E1..E8) or a YAML path
kimg = None  # training length; None: as configured
device = "auto"  # auto, cpu or cuda
seed = 0  # training seed (data order, initial weights); sampling below uses it too
runs = os.environ.get("ECHOLIB_RUNS", "runs")  # folder of run folders
study_logs = str(shared_data() / "seed-reference" / "training-logs")  # the study's logs ($ECHOLIB_SHARED_DATA)

# %% tags=["hide-input"]
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from echolib.data.frames import FrameDataset, split_holdout
from echolib.data.sources import resolve_data
from echolib.images import make_grid, to_float
from echolib.report.reconstruction import reconstruction_metrics
from echolib.data.sources import REPO_ROOT
from echolib.report.measured import measured_runs, measured_table, plot_measured, styled_measured
from echolib.report.plots import image_grid, loss_curves, metric_curves, sample_timeline
from echolib.report.records import read_log, read_run_meta
from echolib.report.study_logs import read_log as read_study_log
from echolib.train.run_records import load_run_config
from echolib.paths import shown_path
from echolib.train.runs import ensure_run
from echolib.train.sampling import checked_samples, load_model

pd.set_option("display.precision", 4)

# %% [markdown]
# ## Training
#
# `ensure_run` trains the configuration into `runs/vqgan/<config>` or reuses the
# finished run. The table lists the model settings that define the method.

# %%
run = ensure_run("vqgan", config, data, runs, kimg=kimg, device=device, seed=seed)
model, checkpoint = load_model(run, device=device)
cfg = model.cfg
resolution = model.resolution
print(f"run: {shown_path(run)}\ncheckpoint: {checkpoint.name}")
facts = read_run_meta(run).get("model", {})  # run.json: what `auto` resolved to on the training machine
print(f"perceptual loss used: {facts.get('perceptual', model.perceptual)} (config: {cfg.perceptual}; "
      f"weights sha256 {(facts.get('perceptual_weights_sha256') or '-')[:16]})")
keys = ("codebook_size", "code_dim", "codebook", "restart_threshold", "perceptual_weight", "disc_start_kimg",
        "disc_warmup_kimg", "disc_weight", "lr", "prior_start_kimg", "prior_layers", "prior_dim")
settings = {"resolution": resolution, "down factor": model.down_factor,
            "codes per frame": f"{model.code_size} x {model.code_size}", "perceptual (resolved)": model.perceptual}
settings |= {k: getattr(cfg, k) for k in keys}
pd.Series(settings, name=f"vqgan/{config}").to_frame()

# %% [markdown]
# ## Losses
#
# Stage 1 logs the L1 reconstruction error `loss_rec`, the perceptual distance
# (when one is used), the VQ loss `loss_q`, and once the discriminator is on its
# hinge loss `loss_D`, the autoencoder's GAN loss `loss_G` and the adaptive weight
# $\lambda$. Stage 2 logs the prior's cross-entropy in nats (`loss_prior`) and in
# bits per code. Dashed lines: discriminator start and prior start. In the study's
# own logs the discriminator loss of VQ2-VQ8 sits at exactly `disc_factor` times
# 1.0 (its value when $D$ outputs zero for every patch) for most of training: the
# discriminator had stopped discriminating, so its GAN term shaped little: the
# failure of the first `cpu64` run, where the autoencoder had outrun it (above).

# %%
log = read_log(run)
assert len(log) > 0
stage1 = [k for k in ("loss_rec", "loss_perceptual", "loss_q", "loss_D", "loss_G", "adaptive_weight") if k in log]
stage2 = [k for k in ("loss_prior", "prior_bits_per_code") if k in log]
fig = loss_curves(run, stage1 + stage2)
for ax in fig.axes:
    if ax.has_data():
        ax.axvline(cfg.disc_start_kimg, ls="--", c="gray", lw=0.8)
        ax.axvline(cfg.prior_start_kimg, ls="--", c="k", lw=0.8)
plt.show()

# %%
for k in stage1 + stage2:
    values = log[k].dropna()
    assert len(values) and values.map(math.isfinite).all(), k
if "loss_prior" in log:
    bits = log["prior_bits_per_code"].dropna()
    assert bits.iloc[-1] < math.log2(cfg.codebook_size), "the prior should beat a uniform distribution over codes"
if "adaptive_weight" in log:
    assert (log["adaptive_weight"].dropna() > 0).all()

# %% [markdown]
# ## Is the discriminator discriminating?
#
# A hinge loss of 1.0 is what $D$ scores when it gives frames and reconstructions
# the same logits, whether it has been fooled or never learnt anything, so the
# loss alone cannot say whether the GAN term shapes the autoencoder. The mean
# logits on each side can: while $D$ works, frames score above reconstructions.
# The shaded ticks are the warm-up, when $D$ trains alone (`disc_warmup_kimg`).

# %%
if "logits_real" in log:
    d = log.dropna(subset=["logits_real"])
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(d["kimg"], d["logits_real"], label="frames")
    ax.plot(d["kimg"], d["logits_fake"], label="reconstructions")
    ax.axvspan(cfg.disc_start_kimg - cfg.disc_warmup_kimg, cfg.disc_start_kimg, color="0.9")
    ax.set_xlabel("kimg")
    ax.set_ylabel("mean logit of D")
    ax.legend()
    plt.show()
    gap = d["logits_real"] - d["logits_fake"]
    assert gap.map(math.isfinite).all()
    print(f"mean logit gap, frames minus reconstructions: {gap.iloc[0]:.2f} in the first tick with D, "
          f"{gap.iloc[-1]:.2f} in the last")
else:
    print("the discriminator never switched on in this run")

# %% [markdown]
# ## Codebook usage
#
# A codebook is only as large as the part of it in use. Per tick, *usage* is the
# share of the $K$ codes assigned at least once and *perplexity* $\exp H(p)$ of the
# code frequencies $p$ is the effective number of codes ($K$ if all were used
# equally, 1 if one code took everything). Codebook collapse, a known failure of
# straight-through VQ, shows as a perplexity far below $K$; the EMA codebook with
# restarts (E5) and low-dimensional codes (E6) are the usual remedies.

# %%
fig = loss_curves(run, ["codebook_usage", "codebook_perplexity"])
plt.show()

# %%
assert (log["codebook_perplexity"].dropna() > 1).all() and log["codebook_usage"].between(0, 1).all()
print(f"final codebook usage {log['codebook_usage'].iloc[-1]:.2f}, "
      f"perplexity {log['codebook_perplexity'].iloc[-1]:.1f} of K = {cfg.codebook_size}")

# %% [markdown]
# ## Reconstructions of held-out hearts (stage 1)
#
# The autoencoder bounds what the whole model can reach: a sample can be no
# sharper than a reconstruction. PSNR and SSIM here compare each frame with *its
# own* reconstruction, on the videos held out of training and, for comparison,
# on as many training videos. (The study's SSIM/PSNR compared random unpaired
# real/generated frames, which cannot rank generators; these paired numbers
# measure the autoencoder alone.)

# %%
dataset = FrameDataset(resolve_data(data, size=resolution), resolution=resolution)
train_cfg = load_run_config(run).train
train_part, held = split_holdout(dataset, train_cfg.holdout, train_cfg.holdout_seed)
assert held is not None and len(held) > 0, "no held-out videos: raise train.holdout"
seen = train_part.subset(range(min(len(held), len(train_part))))
table = pd.DataFrame({"held-out videos": reconstruction_metrics(model, held),
                      "training videos": reconstruction_metrics(model, seen)}).T
table

# %%
assert 0 < table.loc["held-out videos", "psnr"] < 100 and -1 <= table.loc["held-out videos", "ssim"] <= 1
originals = held.images[:8]
recons = model.reconstruct(originals).cpu()
assert recons.shape == originals.shape and recons.min() >= -1 and recons.max() <= 1
pairs = torch.stack([to_float(originals), recons], 1).flatten(0, 1)  # original, reconstruction, ...
fig = image_grid(pairs, nrow=8, title="held-out frames (odd columns) and their reconstructions (even columns)")
plt.show()

# %% [markdown]
# ## Samples from the prior (stage 2)
#
# The same random stream sampled at two temperatures. At $T = 1$ the prior's
# own distribution is sampled; at $T = 0.7$ with top-$k$ it concentrates on its
# more probable codes: fewer odd frames, less variety.

# %%
top_k = max(2, cfg.codebook_size // 8)
hot = checked_samples(model, 16, seed, batch=16, temperature=1.0)
cold = checked_samples(model, 16, seed, batch=16, temperature=0.7, top_k=top_k)
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax, images, title in ((axes[0], hot, "T = 1.0"), (axes[1], cold, f"T = 0.7, top-k = {top_k}")):
    ax.imshow(make_grid(images, nrow=4), cmap="gray", vmin=0, vmax=255)
    ax.set_title(title)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The study's runs
#
# When the study's logs are at hand (`study_logs`), they show what its VQ1-VQ8
# recorded: per-epoch autoencoder losses (L1 `rec_loss`, `perceptual_loss`,
# `q_loss`, the discriminator's `disc_loss`) next to one FID per epoch, with no
# trace of a separately trained prior and no reconstruction score, so its VQGAN
# numbers cannot be split into reconstruction and generation quality. The
# discriminator loss of VQ2-VQ8 sits at one value for most of training, 0.5, 1 or
# 2: the hinge loss when $D$ outputs 0 on every patch, times that run's
# discriminator factor. The discriminator had stopped discriminating, as in the
# first `cpu64` run, where the autoencoder outran it at taming's GAN weight.

# %% tags=["hide-input"]
logs_dir = Path(study_logs) / "vqgan"
if logs_dir.is_dir():
    rows = {}
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for i in range(1, 9):
        loss = read_study_log(logs_dir / f"loss_history_vq{i}.csv")
        fid = read_study_log(logs_dir / f"metrics_history_disvq{i}.csv").dropna(subset=["fid"])
        rows[f"VQ{i}"] = {"epochs": int(loss["epoch"].max()), "best FID": fid["fid"].min(),
                          "at epoch": int(fid.loc[fid["fid"].idxmin(), "epoch"]),
                          "final rec_loss": loss["rec_loss"].iloc[-1], "final q_loss": loss["q_loss"].iloc[-1],
                          "disc_loss, median of last 10 epochs": loss["disc_loss"].tail(10).median()}
        ax.plot(fid["epoch"], fid["fid"], label=f"VQ{i}", lw=1)
    ax.set_xlabel("epoch (the study's)")
    ax.set_ylabel("FID")
    ax.legend(ncol=4, fontsize=7)
    fig.tight_layout()
    plt.show()
    summary = pd.DataFrame(rows).T
    assert abs(summary["best FID"].min() - 139.47) < 0.01 and summary["best FID"].idxmin() == "VQ6"
else:
    summary = f"study logs not found at {shown_path(logs_dir)}; set study_logs (or ECHOLIB_SHARED_DATA) to show them"
summary

# %% [markdown]
# ## Generation metrics and samples during training
#
# FID/KID of prior samples, when the run computed metrics during training
# (before `prior_start_kimg` they score decodings of an untrained prior). The
# timeline shows the sample grids written during training from fixed random
# streams: noise-like decodings in stage 1, frames once the prior learns.

# %%
fig = metric_curves(run, ["fid", "kid"])
plt.show()

# %%
fig = sample_timeline(run)
plt.show()

# %% [markdown]
# While stage 1 trains, the trainer writes a second grid beside each sample
# grid: held-out frames, each followed by its reconstruction (`recon-*.png`).
# These are what to watch before the prior exists: blur, lost valves or a
# collapsing codebook show up here first.

# %%
fig = sample_timeline(run, kind="recon")
plt.show()

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
runs_128 = measured_runs(REPO_ROOT / "book" / "measured", "vqgan", resolution=128)
plot_measured(runs_128, ["loss_rec", "loss_perceptual", "loss_q", "loss_D", "codebook_perplexity", "loss_prior"])
print(f"{len(runs_128)} run(s) of vqgan at 128 px kept:", ", ".join(f"{r.parent.name}/{r.name}" for r in runs_128)
      or "none in this checkout")

# %%
styled_measured(measured_table(REPO_ROOT / "book" / "measured", "vqgan", resolution=128))

# %% [markdown]
# **The H100 session of 2026-11-27** (`book/measured/h100-2026-11-27b/vqgan-E4`: the taming
# recipe with a straight-through codebook of 512 codes, on 5,000 real frames, 128 px; the
# discriminator started at 20 kimg and the prior was set to start at 60; the table above is
# read from its records). The run shared one H100 with the four other architectures for six
# minutes, about five times slower than the 2.15 s/kimg it trains at alone, and reached only
# tens of kimg, all of it stage 1. **The codebook collapsed**: the first tick used 342 of the
# 512 codes; by 4 kimg it used 8, and it never recovered (the perplexity curve above). The
# commitment term spiked and then decayed. This is the collapse that the `cpu64` header records
# for the straight-through codebook at 64 px (about 12 codes by 4 kimg). The reconstruction L1
# fell until 20 kimg, then rose once the discriminator came in at weight 0.8, as in the probes
# above.
#
# The prior never trained, so the evaluation row of that session scores decoded random codes:
# it says nothing about VQGAN as a generator. The grid at 20 kimg shows exactly that, grey
# squares with a few blobs. At 128 px, use E5 (EMA codebook with dead-code restarts, the
# codebook of `cpu64`) and start the prior sooner. With `cpu64`'s recipe, this architecture
# generates recognisable four-chamber frames at 64 px (the comparison chapter).
