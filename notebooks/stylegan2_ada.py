# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # StyleGAN2-ADA
#
# The reference study's best generator was StyleGAN2 {cite}`karras2020stylegan2`
# trained with adaptive discriminator augmentation (ADA) {cite}`karras2020ada`:
# configuration E4 reached an FID of 9.17 after 764 kimg, far ahead of MedGAN (63.5),
# WGAN (68.3) and VQGAN (139.5) {cite}`hernandez2025comparative`. The study ran
# NVIDIA's `stylegan2-ada-pytorch`; this chapter rebuilds the method as one readable
# module (`echolib/models/stylegan2.py`, augmentation in `echolib/augment/ada.py`,
# equalised-learning-rate layers in `echolib/models/layers.py`) for one-channel
# frames, trains it, and reads the study's own logs and samples beside ours.
#
# ## The generator
#
# **Mapping network.** A latent $z \in \mathbb R^{512}$, $z \sim \mathcal N(0, I)$, is
# normalised to unit mean square and passed through an MLP $f$ (8 fully connected
# layers with leaky ReLU, learning rate $100\times$ smaller than the rest) to an
# intermediate latent $w = f(z) \in \mathcal W$. The point is disentanglement: the
# Gaussian $z$ must cover every combination of factors with the same density, so
# rare combinations (a thick septum *and* a dilated atrium) warp the space around
# them. $\mathcal W$ is learned, need not follow any fixed distribution, and
# empirically ends up closer to linear in the factors of variation. The generator
# keeps a running mean $\bar w$ of the mapped latents for truncation.
#
# **Modulated convolutions.** The image is built from a learned $4\times4$ constant
# by $3\times3$ convolutions at $4, 8, \dots, 128$ pixels (2x upsampling with a
# $[1,3,3,1]$ low-pass filter between resolutions). Each convolution is steered
# by $w$: a learned affine map gives one scale $s_i$ per *input* channel $i$, the
# weights $w_{ijk}$ (input $i$, output $j$, tap $k$) are modulated, and then
# *demodulated* so that each output channel has unit expected variance again:
#
# $$ w'_{ijk} = s_i \, w_{ijk}, \qquad
#    w''_{ijk} = \frac{w'_{ijk}}{\sqrt{\sum_{i,k} {w'_{ijk}}^2 + \epsilon}} . $$
#
# This replaces StyleGAN's adaptive instance normalisation, which normalised the
# activations themselves and left the "droplet" artefacts the network used to
# smuggle signal strength past the normalisation. Every layer $\ell$ receives its own
# copy $w_\ell$ of the latent (all equal unless styles are mixed, below).
#
# **Noise inputs.** After each convolution a single-channel Gaussian noise image,
# scaled by a learned per-layer strength, is added to every feature map. It gives
# the network a cheap source of stochastic detail: speckle in an echocardiogram is
# exactly the kind of texture that should vary without the anatomy changing.
#
# **Skip generator.** Every resolution ends in a $1\times1$ modulated convolution
# without demodulation to one channel (`toRGB`, here `toGray`); the output is the
# sum of these images, each upsampled to the final size. Early in training the
# low resolutions dominate the sum, later the high ones, without the explicit
# progressive growing of earlier GANs.
#
# ## The discriminator
#
# A residual network mirrors the generator: a $1\times1$ convolution from the image,
# then per resolution two $3\times3$ convolutions (the second one downsampling with
# the same low-pass filter) plus a $1\times1$ downsampling skip, summed and scaled by
# $\sqrt{1/2}$. At $4\times4$ a *minibatch standard deviation* feature is appended:
# the standard deviation of every feature over groups of 4 images, averaged to one
# extra channel. A generator that collapses to a few modes makes this feature small
# and is easy to detect. A convolution and two dense layers produce one logit.
# All layers use equalised learning rate (weights stored as $\mathcal N(0,1)$ and
# scaled by He's constant at run time).
#
# ## Losses and regularisation
#
# With $D$ producing logits and $\operatorname{softplus}(t) = \log(1+e^t)$, the
# non-saturating logistic loss is
#
# $$ \mathcal L_D = \mathbb E_z\big[\operatorname{softplus}(D(G(z)))\big]
#    + \mathbb E_x\big[\operatorname{softplus}(-D(x))\big], \qquad
#    \mathcal L_G = \mathbb E_z\big[\operatorname{softplus}(-D(G(z)))\big]. $$
#
# **R1** penalises the discriminator's gradient on real data,
#
# $$ R_1 = \frac{\gamma}{2}\, \mathbb E_{x}\big\lVert \nabla_x D(x) \big\rVert_2^2 , $$
#
# which keeps $D$ from pushing ever harder against the data manifold and makes
# training converge locally to the equilibrium (Mescheder et al., 2018). $\gamma$ is the study's most important
# knob: E4 used $\gamma = 8$ where E2 used 32. Computing $R_1$ needs a double
# backward pass, so it is applied *lazily*, every 16 minibatches, with its weight
# multiplied by 16 so that its average effect is unchanged; Adam's learning rate
# and betas are scaled by $c = 16/17$ ($\beta^c$) to account for the extra steps.
#
# **Path-length regularisation** asks that a fixed-size step in $\mathcal W$ change
# the image by a fixed amount in every direction:
#
# $$ \mathcal L_{pl} = \mathbb E_{w, y \sim \mathcal N(0, I)}
#    \Big(\big\lVert \mathbf J_w^{\top} y \big\rVert_2 - a\Big)^2, $$
#
# where $\mathbf J_w = \partial G / \partial w$, $y$ is a random image scaled by
# $1/\sqrt{HW}$ and $a$ is a running mean of the lengths. It makes the mapping from
# $\mathcal W$ to images smoother and better conditioned (weight 2, every 4
# minibatches, on half a batch). As in the official loss, $a$ is updated with this
# batch's mean before the penalty and keeps that mean's gradient (a term of weight
# 0.01 that also pulls the batch's lengths together).
#
# **Style mixing.** For 90% of the generated images two latents $z_1, z_2$ are mapped,
# and the layers from a random crossover point on take $w_2$ instead of $w_1$. The
# network can then not assume that adjacent layers' styles are correlated, which
# localises each style to the scales it controls.
#
# ## Sampling: the EMA generator and truncation
#
# Samples come from an exponential moving average of the generator's weights
# (half-life 10 kimg; `auto` and E5 also cap it at 5% of the images shown so
# far, so that their average starts from the first step's weights), which
# averages out the oscillation of adversarial training.
# *Truncation* trades diversity for typicality by pulling latents toward the mean,
#
# $$ w' = \bar w + \psi\,(w - \bar w), \qquad 0 \le \psi \le 1 , $$
#
# $\psi = 1$ being the untruncated model. The study's 10,000-image synthetic dataset
# and its FID used $\psi = 1$; $\psi = 0.7$ is the usual setting for pictures.
#
# ## Adaptive discriminator augmentation
#
# With tens of thousands of training images the discriminator memorises the
# training set, its outputs on real and generated images drift apart, and its
# feedback to the generator becomes meaningless. ADA augments *every* image the
# discriminator sees, real and generated, in $\mathcal L_D$, $\mathcal L_G$ and
# $R_1$ alike, with a differentiable pipeline. Each operation fires independently
# per image with probability $p$. Because the generator is trained through the
# same augmentation, it still learns the clean distribution as long as the
# augmentations are *non-leaking*: invertible in distribution, which holds for
# $p$ below roughly 0.8. An echo flipped upside down is not a valid apical view, but
# as long as most images stay upright the generator has no reason to produce one.
#
# The operations of the official default pipeline `bgc`: **b**lit (horizontal
# flip, rotation by multiples of $90°$, integer translation up to 12.5% of the
# frame), **g**eometric (isotropic scaling, arbitrary rotation, anisotropic
# scaling, fractional translation, composed into one affine warp with reflection
# padding) and **c**olour (brightness, contrast, luma flip). As in the official
# pipeline, the geometric warp runs at twice the resolution between Symlet-6
# wavelet filters: a bilinear warp at native resolution washes out the fine
# speckle (a 0.37-pixel shift of a 0.3 cycles/pixel pattern keeps 62% of its
# contrast at 1x, 90% at 2x). Unlike the official pipeline, the blits come first
# at native resolution, where they are exact (`ada_supersample: false` warps
# everything once at 1x, a little faster). Hue and saturation
# do not exist in one channel, so the colour group here is only brightness,
# contrast and the luma flip $x \mapsto -x$ (inversion about mid-grey). The
# longer pipelines add image-space filtering, additive noise and cutout; the
# study used `bgc`.
#
# Rather than tuning $p$, ADA measures overfitting with the heuristic
#
# $$ r_t = \mathbb E\big[\operatorname{sign}(D(x_\text{real}))\big] \in [-1, 1] , $$
#
# the share of real images that $D$ calls real minus the share it calls fake,
# accumulated over 4 minibatches (and, as officially, over the lazy $R_1$ pass's
# own judgement of the reals when one falls among them). $r_t = 0$ means no
# overfitting, $r_t = 1$ complete overfitting. Every 4 minibatches
#
# $$ p \leftarrow \operatorname{clip}_{[0,1]}\Big(p + \operatorname{sign}(r_t - r^\ast)\,
#    \frac{B \cdot 4}{500\,000}\Big), $$
#
# so that $p$ can move from 0 to 1 in 500 kimg, towards keeping $r_t$ at the
# target $r^\ast$ (0.6 by default; the study tried 0.5, 0.6, 0.7 and 0.85). Every
# quantity of the controller lives on the GPU, so it never stalls training. (The
# official controller clamps $p$ only at 0 and lets it run past 1, where every
# operation fires anyway; ours stops at 1, so after a spell of heavy overfitting
# $p$ starts coming down at once instead of first working off the excess.)
#
# ## The configurations
#
# The study's run folders name the official `11gb-gpu` configuration with its
# $\gamma$, batch and ADA target overridden; the configuration files say how we
# read them. The study published no E5, so our E5 asks a question of its own.
#
# | config | study run (folder suffix) | what varies | study's best FID (kimg) |
# |---|---|---|---|
# | E1 | E1 `gamma32-batch32-ada-target0.7` | ADA target 0.7 | 24.71 (516) |
# | E2 | E2 `gamma32-batch32-ada-target0.6` | the default target | 45.60 (1016) |
# | E3 | E3 `gamma32-batch16-ada-target0.6` | batch 16 | 14.87 (348) |
# | **E4** | **E4** `gamma8-batch32-ada-target0.6` | $\gamma = 8$: the study's best | **9.17 (764)** |
# | E5 | none | E4's settings on the official `auto` network (mapping depth 2, half the feature maps) | |
# | E6 | E6 `gamma32-batch32-ada-target0.6` | E2 repeated (we change the seed: run-to-run spread) | 17.52 (856) |
# | E7 | E7 `gamma32-batch32-ada-target0.85` | ADA target 0.85 (weaker augmentation) | 19.75 (400) |
# | E8 | E8 `gamma32-batch32-ada-target0.5` | ADA target 0.5 (stronger augmentation) | 18.71 (472) |
# | E9 | E9 `gamma32-batch32-noaug` | no augmentation: the ADA ablation | 22.80 (556) |
# | auto | none | the official `--cfg auto` rule at $128\times128$ | |
#
# `smoke` is a model with a few thousand parameters per layer at $64\times64$ that
# trains for 0.2 kimg on a CPU in seconds. Every mechanism above runs in it
# (mapping, modulation, noise, style mixing, lazy R1, path length, ADA with a
# controller fast enough to move visibly), so this chapter builds anywhere, but its
# samples are noise-textured blobs, not hearts. Set `config = "E4"` and a GPU
# for real ones.
#
# `cpu64` is for readers without a GPU. It is not one of the study's configurations:
# E4's method (R1, ADA toward 0.6, EMA) on a thin network at $64\times64$ (64 feature
# maps up to 32 px, 32 at 64 px; 0.43 M parameters in $G$, 0.37 M in $D$), mapping
# depth 2, batch 16, $\gamma = 0.1$, no path-length term. Two CPU cores train it on real
# frames at about 42 s/kimg. On the 10,000 shared EchoNet frames its grids show fans
# with a septum at 20 kimg and four chambers at 40. After 120 kimg it is the best of
# the `cpu64` runs, with no memorised frame (the comparison chapter's `cpu64` table
# has the scores). $D$ never overfitted in that
# time ($r_t$ stayed under the target), so ADA left $p$ at 0. Run this notebook
# with `config = "cpu64"` and `data` set to the frames.

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

from echolib.data.sources import REPO_ROOT

data = "phantom"  # "phantom" (built-in) or a folder/zip/manifest of frames
config = "smoke"  # a config in echolib/configs/stylegan2_ada (smoke, E1..E9, auto) or a YAML path
kimg = None  # training length; None: as configured
device = "auto"  # auto, cpu or cuda
seed = 0  # training seed; sampling below uses it too
runs = os.environ.get("ECHOLIB_RUNS", "runs")  # folder of run folders
shared = os.environ.get("ECHOLIB_SHARED_DATA", str(REPO_ROOT.parent / "shared" / "data"))  # real frames, study files
truncations = [1.0, 0.7]  # truncation psi of the final sample grids
mix_cutoff = 4  # style mixing: the first this many style inputs (4x4 and 8x8 blocks) come from the row latents

# %% tags=["hide-input"]
import math
import tempfile
from pathlib import Path

import pandas as pd
import torch

from echolib.data.frames import FrameDataset
from echolib.data.sources import resolve_data
from echolib.report import stylegan_figures as sgf
from echolib.report.plots import loss_curves, metric_curves, sample_timeline
from echolib.report.records import read_log, read_metrics
from echolib.report.study_logs import load_study_logs, study_best
from echolib.paths import shown_path
from echolib.train.run_config import load_config
from echolib.train.run_folder import RunFolder
from echolib.train.runs import ensure_run
from echolib.train.sampling import checked_samples, load_model, write_samples

pd.set_option("display.precision", 4)
pd.set_option("display.max_colwidth", 80)
real_frames = Path(shared) / "echonet-dynamic-128" / "frames"
study_logs = Path(shared) / "seed-reference" / "training-logs"
study_samples = Path(shared) / "seed-reference" / "stylegan2-ada-E4-samples"

# %% [markdown]
# The configuration files, read with their defaults filled in (`ada_target` is
# empty where augmentation is off):

# %%
configs = sgf.config_table()
assert {f"E{i}" for i in range(1, 10)} <= set(configs.index)
assert configs.loc["E4", ["batch", "r1_gamma", "ada_target"]].tolist() == [32, 8.0, 0.6]
configs[["batch", "r1_gamma", "augment", "ada_target", "mapping_layers", "channel_base", "lr", "ema_kimg",
         "resolution", "kimg", "seed", "note"]]

# %% [markdown]
# ## What the augmentations do to a frame
#
# One frame (a real EchoNet-Dynamic frame when the shared data is at hand, else a
# frame of the training data) under each operation alone at $p = 1$, five random
# draws per row, and under the whole `bgc` pipeline at $p = 1$ in the last row.
# The first ten rows are the study's pipeline; filter, noise and cutout belong to
# the longer pipelines. At $p = 1$ every image gets every operation; training
# starts at $p = 0$ and the controller raises $p$ only as far as needed to hold
# $r_t$ at its target, so at $p = 0.2$, say, four in five images skip any given
# operation.

# %%
resolution = load_config("stylegan2_ada", config).train.resolution
if real_frames.is_dir():
    ada_source, ada_frames = "EchoNet-Dynamic", FrameDataset(real_frames, limit=1)
else:
    ada_source, ada_frames = f"training data ({data})", FrameDataset(resolve_data(data, size=resolution),
                                                                       resolution=resolution, limit=1)
frame = ada_frames.images[0]
examples = sgf.augment_examples(frame, p=1.0, n=5, seed=seed)
for label, images in examples.items():
    assert images.shape == (5, *frame.shape) and torch.isfinite(images).all(), label
print(f"frame: {ada_frames.names[0]} ({ada_source})")
sgf.augment_figure(frame, examples, scale=0.75);

# %% [markdown]
# ## Training
#
# `ensure_run` trains the configuration into `runs/stylegan2_ada/<config>`, or
# reuses the run when it is already complete. Training length is counted in kimg,
# thousands of real images shown to the discriminator, as the study's logs do.

# %%
run = ensure_run("stylegan2_ada", config, data, runs, kimg=kimg, device=device, seed=seed)
model, checkpoint = load_model(run, device=device)
cfg = model.cfg
G = model.sampling_net("G", use_ema=True)
n_params = {name: sum(p.numel() for p in net.parameters()) for name, net in model.nets.items()}
print(f"run: {shown_path(run)}\ncheckpoint: {checkpoint.name}\nresolution: {model.resolution}, "
      + ", ".join(f"{k}: {v / 1e6:.3f} M parameters" for k, v in n_params.items())
      + f"\nstyle inputs (num_ws): {G.num_ws}, noise inputs: {len(G.noise_resolutions)}")

# %% [markdown]
# ## Losses
#
# $\mathcal L_G$ and $\mathcal L_D$ are averaged over each tick; `D_real` and
# `D_fake` are the mean logits on (augmented) real and generated images. At the
# start both are near 0 and $\mathcal L_D \approx 2\log 2$. A discriminator that
# overfits shows as `D_real` climbing away from `D_fake` while the generator's
# loss rises; ADA's job is to stop that gap from opening.

# %%
log = read_log(run)
keys = [k for k in ("loss_G", "loss_D", "D_real", "D_fake") if k in log]
assert len(log) > 0 and {"loss_G", "loss_D"} <= set(keys)
for k in keys:
    assert log[k].map(math.isfinite).all(), k
loss_curves(run, keys);

# %% [markdown]
# The lazy regularisers run on every 16th (R1) and every 4th (path length)
# minibatch, so a short run's ticks may contain none: the panels show only the
# ticks that had one. `loss_r1` is $\frac{\gamma}{2}\lVert\nabla D\rVert^2$ before the
# lazy factor 16; `loss_pl` is the weighted path-length penalty (absent when the
# configuration turns it off, as `cpu64` does).

# %%
regularizers = ["loss_r1"] + (["loss_pl"] if cfg.pl_weight > 0 else [])
for k in regularizers:
    values = log[k].dropna() if k in log else pd.Series(dtype=float)
    assert len(values) > 0, f"{k} was never logged"
    assert values.map(math.isfinite).all() and (values >= 0).all(), k
sgf.lazy_regularizer_curves(run, regularizers);

# %% [markdown]
# ## The augmentation probability during training
#
# $p$ (left) and the overfitting heuristic $r_t$ (right) with its target. While
# $r_t$ is above the target $p$ climbs at the controller's fixed rate; once the
# discriminator can no longer tell the augmented reals apart so confidently,
# $r_t$ falls below the target and $p$ turns back. In a long run $p$ settles
# where the two balance, and it keeps creeping up as the discriminator sees the
# same images again and again.

# %%
if cfg.augment == "ada":
    p_log = log["augment_p"]
    assert p_log.between(0, 1).all() and log["ada_rt"].between(-1, 1).all()
    assert 0 <= float(model.ada.p) <= 1
    print(f"final p = {float(model.ada.p):.3f}, last r_t = {float(model.ada.rt):.3f} (target {cfg.ada_target})")
    fig = sgf.ada_curves(run, target=cfg.ada_target)
else:
    print(f"augment = {cfg.augment!r}: this configuration has no adaptive p")

# %% [markdown]
# ## Metrics during training
#
# FID and KID of generated frames against the training frames, when the run
# computed metrics during training (`metrics_kimg > 0` in the configuration; the
# E configurations do so every 16 kimg, as the study did).

# %%
if read_metrics(run).empty:
    print(f"{shown_path(run)} has no metric records (metrics_kimg = {load_config('stylegan2_ada', config).train.metrics_kimg})")
else:
    fig = metric_curves(run, ["fid", "kid"])

# %% [markdown]
# ## Samples
#
# The grids written during training, from the same fixed latents each time:

# %%
sample_timeline(run);

# %% [markdown]
# The final EMA generator, the same 16 latents and noise at each truncation. A
# smaller $\psi$ pulls every image toward the image of $\bar w$: fewer odd
# frames, less variety. The check below verifies that truncation is exactly the
# interpolation above, in $\mathcal W$.

# %%
panels = {}
for psi in truncations:
    x = checked_samples(model, 16, seed, batch=16, truncation=psi)
    panels[f"truncation $\\psi$ = {psi:g} (pixel std across samples {x.std(dim=0).mean():.3f})"] = x
z = torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(model.device)
with torch.no_grad():
    w_full, w_trunc = G.map(z), G.map(z, psi=0.7)
torch.testing.assert_close(w_trunc - G.mapping.w_avg, 0.7 * (w_full - G.mapping.w_avg), atol=1e-5, rtol=1e-5)
sgf.side_by_side(panels, nrow=4);

# %% [markdown]
# **Style mixing.** Each row source (left) gives the styles of the first
# `mix_cutoff` style inputs, the coarse $4\times4$ and $8\times8$ layers, and each
# column source (top) gives all finer ones. The noise is the same fixed draw in
# every image, so what differs is the styles alone. In trained StyleGANs the
# coarse styles set pose and overall shape and the fine ones texture and
# colour; for echocardiograms that would be the view and the geometry of the
# heart against speckle and brightness. The smoke model has not learned such a
# split yet.

# %%
g = torch.Generator().manual_seed(seed + 1)
z_rows, z_cols = torch.randn(4, G.z_dim, generator=g), torch.randn(5, G.z_dim, generator=g)
rows, cols, mixed = sgf.style_mixing(G, z_rows.to(model.device), z_cols.to(model.device), mix_cutoff)
assert mixed.shape == (4, 5, 1, model.resolution, model.resolution) and torch.isfinite(mixed).all()
sgf.style_mixing_figure(rows.cpu(), cols.cpu(), mixed.cpu(), title=f"styles 0-{mix_cutoff - 1} from rows, "
                        f"{mix_cutoff}-{G.num_ws - 1} from columns");

# %% [markdown]
# ## A synthetic dataset
#
# The study's synthetic dataset is 10,000 PNGs from the E4 generator at
# $\psi = 1$. With a trained run the same comes from one command:
#
# ```bash
# python -m echolib sample runs/stylegan2_ada/E4 --n 10000 --out synthetic/E4 --truncation 1.0 --seed 0
# ```
#
# It calls `write_samples`, which the cell below uses for 16 images: the same
# seed, batch size and device give the same files.

# %%
with tempfile.TemporaryDirectory() as tmp:
    written = write_samples(model, 16, tmp, seed=seed, progress=False, truncation=1.0)
    pngs = sorted(Path(tmp).glob("*.png"))
    assert len(written) == 16 and len(pngs) == 16, len(pngs)
    back = FrameDataset(tmp)
    assert back.images.shape == (16, 1, model.resolution, model.resolution) and back.images.dtype == torch.uint8
print(f"wrote and read back {len(pngs)} PNGs ({pngs[0].name} ... {pngs[-1].name})")

# %% [markdown]
# ## The study's runs
#
# The study logged FID every 16 kimg for eight runs (`study_logs`, from its public
# repository; FID there is its own Inception-feature FID against its real frames,
# a different number from any FID computed here). Every run improves quickly for
# a few hundred kimg, reaches its best between about 350 and 1000 kimg, and then
# degrades, several of them badly (the table's last FIDs): the study reported
# each run's best checkpoint, not its last. E4, the only run with $\gamma = 8$, is
# best by a wide margin and, with E3, the most stable in its last 500 kimg. For
# perspective, the official `auto` rule ($\gamma = 0.0002\,\text{res}^2/B$) would
# have chosen $\gamma \approx 0.1$ for 128-pixel frames at batch 32: the study's
# $\gamma = 32$ is a strong penalty at this resolution, and E4's 8 is a step in the
# rule's direction (our `auto` configuration takes the whole step).

# %%
if (study_logs / "stylegan2_ada").is_dir():
    logs = load_study_logs(study_logs)
    logs = logs[logs["arch"] == "stylegan2_ada"]
    best = study_best(study_logs).query("arch == 'stylegan2_ada'").set_index("config")
    fids = logs.dropna(subset=["fid"]).sort_values("kimg")
    late = fids[fids["kimg"] > fids.groupby("config")["kimg"].transform("max") - 500]
    best["last kimg"] = logs.groupby("config")["kimg"].max()
    best["last FID"] = fids.groupby("config")["fid"].last()
    best["median FID, last 500 kimg"] = late.groupby("config")["fid"].median()
    best["study run folder"] = logs.groupby("config")["carpeta"].first()
    e4 = best.loc["E4"]
    assert best["fid"].idxmin() == "E4" and abs(e4["fid"] - 9.17) < 0.005 and abs(e4["best_kimg"] - 764) < 1
    fig = sgf.study_fid_curves(logs, highlight="E4")
    columns = ["fid", "best_kimg", "kid", "last kimg", "last FID", "median FID, last 500 kimg", "study run folder"]
    display(best[columns])  # noqa: F821 -- IPython's display
else:
    print(f"the study's logs are not at {shown_path(study_logs)} (set shared or ECHOLIB_SHARED_DATA): no study curves")

# %% [markdown]
# 16 of the study's published E4 samples (764 kimg) beside 16 of ours from the
# final EMA generator at $\psi = 1$. The study's PNGs are RGB with three equal
# channels; `FrameDataset` reads them as grayscale.

# %%
if study_samples.is_dir():
    theirs = FrameDataset(study_samples, limit=16).images
    assert theirs.shape == (16, 1, 128, 128) and theirs.dtype == torch.uint8
    ours = model.sample(16, torch.Generator(device=model.device).manual_seed(seed), truncation=1.0).cpu()
    fig = sgf.side_by_side({"the study's E4 (764 kimg)": theirs,
                            f"ours: {config}, {checkpoint.stem} ({model.resolution} px)": ours}, nrow=4)
else:
    print(f"the study's samples are not at {shown_path(study_samples)} (set shared or ECHOLIB_SHARED_DATA)")

# %% [markdown]
# ## Speed
#
# The official implementation gets part of its speed from custom CUDA kernels
# (resampling, fused bias and activation); this one is plain PyTorch and has to
# get its speed elsewhere. The uint8 dataset is
# resident on the GPU (40k frames of $128\times128$ are 0.66 GB), so a batch is
# an index gather; ADA runs on the GPU inside the same graph; the networks run
# under bf16 autocast with the penalties in fp32; Adam is the fused
# implementation; and nothing in a training step waits for the host: $p$, $r_t$,
# the path-length mean and every logged loss stay device tensors until the end
# of a tick, and no tensor is built from Python numbers inside a step (on a GPU
# each is a blocking copy; ADA's transform matrices once made about 200 of them
# per step). `tests/test_host_syncs.py` counts such round trips during 16 steps
# of every architecture on the CPU and requires none.
#
# Two places where plain PyTorch was slow needed their own formulation.
# **The $[1,3,3,1]$ resampling filters** are products with small banded
# matrices, one per axis (`echolib.resampling.apply_along`): permuted to
# the tensor's memory order, every reshape is a view, so under channels_last
# the filter is one batched GEMM per axis, one read and one write of the
# activations, and matmuls differentiate any number of times into matmuls. A
# grouped depthwise convolution is the obvious alternative, but its double
# backward loops over the channel groups (seconds per step at 512 channels);
# weighted sums of shifted slices, the version before this one, took a strided
# elementwise pass per tap and a padded copy per axis, and on an H100 they
# were over half of an eager E4 step. **Convolutions differentiated twice**
# (R1, path length) go through `echolib.models.conv_grads`: PyTorch's own
# double backward gets its weight term from a convolution whose kernel is the
# whole image, which cuDNN runs with a slow generic kernel (28 ms a call on the
# H100); here every derivative, of any order, is an ordinary convolution,
# transposed convolution, or cuDNN's weight-gradient kernel, the idea of
# NVlabs' `conv2d_gradfix` without its CUDA. ADA's image-space filter keeps
# slices with hand-written transposes: it runs on one-channel images.
#
# Two things bound the speed and can be counted on any machine
# (`bench/step_flops.py`, CPU numbers, batch 32, per training step averaged
# over the 16-step cycle of lazy regularisation):
#
# | | E4 (the study's network) | `auto` (the official default) |
# |---|---|---|
# | channels at 128 / 64 / 32 px | 256 / 512 / 512 | 128 / 256 / 512 |
# | FLOPs per kimg (forward, backward, R1 and path-length double backward) | 829 TFLOP | 307 TFLOP |
# | floor at an H100's 989 dense bf16 TFLOP/s | 0.84 s/kimg | 0.31 s/kimg |
# | throughput the 2.5 s/kimg target needs | 332 TFLOP/s (34 % of peak) | 123 TFLOP/s (12 %) |
# | operations dispatched per step (kernel launches in eager mode), as this section's changes landed | 4877 → 3806 → 2695 | 4743 → 3673 → 2563 |
#
# The official README's 12.8–13.7 s/kimg and 7.2 GB on one V100 are for
# `--cfg=auto`, i.e. 22–24 TFLOP/s (about 18 % of a V100's fp16 peak). The
# issue's 5.3 s/kimg on an H200 does not say which network ran: 57 TFLOP/s if it
# was `auto`, 154 if it had E4's width. Three things point to `auto`: the official
# `train.py` runs it unless told otherwise, batch 32 is already `auto`'s batch at
# $128\times128$, and the reference's 6.3 GB is close to the README's 7.2 GB for
# `auto`, while E4's width needs 10.6 GB in our bf16 step; our `auto` step peaks
# at 6.1 GB.
# Operation counts matter because in
# eager mode each costs several microseconds of host time: 3,700 of them at
# ~5 µs is ~19 ms per step, 0.6 s/kimg, before any GPU work; `torch.compile`
# fuses most of the forward passes. The cuts came from ADA building its affine
# map from a handful of batched operations instead of eight 3x3 matrices of
# per-entry tensors (220 → 119 operations per call, three calls a step), the
# conv clamp as `hardtanh` (one backward kernel instead of four), and one
# `unbind` of the per-layer latents instead of a slice per layer (each slice's
# gradient is a zero-filled copy of all of them); then the banded-matrix
# filters (two matmuls where there were two pads and eight strided passes) and
# the one-call discriminator update. The FLOP counts leave out the filters'
# matmuls (cuBLAS multiplies the matrices' zeros too, but that is not the
# model's work). With `conv_grads` the counter sees the regularisers' double
# backward as the convolutions it now is, and E4 counts 829 TFLOP per kimg
# where it counted 818.
#
# With `--compile`, every network call of the step is compiled, not only the
# update of each network: the discriminator judging fakes in the generator's
# update runs through its own compiled copy with its weights frozen (so the traced
# backward computes no weight gradients; the official loop freezes it the same
# way), as does the generator drawing fakes for the discriminator. Only R1 and the
# path-length penalty stay eager, since AOTAutograd cannot differentiate a
# compiled graph twice. `tests/test_compile.py` trains the smoke configuration
# compiled and eager on the CPU and requires the same losses and weights.
# `bench/step_flops.py` attributes E4's FLOPs to the lines of the step: the
# discriminator's update takes 46 % (its forward on fakes and reals, 15.2 %,
# and the backward, 30.4 %), the generator's update 37 % (its forward 7.4 %,
# the discriminator judging its fakes 7.6 %, the backward through both
# 22.3 %), the generator drawing fakes for the discriminator 7.4 %, and the
# lazy regularisers the rest (path length 5.5 %, R1 1.9 %). The compiled share of
# the FLOPs thus rose from about 69 % to about 92 %; the eager remainder is the
# double-backward regularisation.
# The discriminator's update judges the generated and the real images in one
# call of twice the batch (half the launches, fuller kernels at 4 to 16 px);
# minibatch-stddev groups each half apart, so the logits equal two separate
# calls (`tests/test_stylegan2.py`). This change came after the first GPU
# measurements below (2026-11-26) and is in the second (2026-11-27).
# `bench/train_speed.py` measures seconds per kimg through the trainer after warm-up, and `bench/step_speed.py` times the step alone in variants (channels_last, compile, a profiler table; `--flops` adds the TFLOP/s achieved).
#
# Measured on one NVIDIA H100 80GB HBM3 (torch 2.11, CUDA 13; `bench/step_speed.py`,
# batch 32, $128\times128$, bf16, channels_last, cuDNN autotuning, median over
# steps after warm-up; the trained row is the median sec/kimg of `log.csv`'s
# ticks, `bench/gpu_session.sh`):
#
# | | eager | `--compile` |
# |---|---|---|
# | E4 step, before the banded-matrix filters and `conv_grads` | 7.73 s/kimg (239 ms/step, 106 TFLOP/s) | not finished in the 140 s left for compiling |
# | E4 step, 2026-11-26 | 5.20 s/kimg (142 ms/step, 159 TFLOP/s) | 2.92 s/kimg (89 ms/step, 284 TFLOP/s; 94 s to compile) |
# | E4 step, 2026-11-27 (one-call discriminator update) | 4.20 s/kimg (136 ms/step) | |
# | E4 **trained** on 5,000 real frames, 2026-11-27 | | the median tick of its `log.csv`, printed below |
# | `auto` step, 2026-11-27 | | **2.10 s/kimg** (51 ms/step, 6.1 GB) |
# | official stylegan2-ada-pytorch, custom CUDA kernels (H200; most likely `auto`) | 5.3 s/kimg, 6.3 GB | |
#
# On the network the official figure most likely ran, `auto` (with E4's
# training settings that network is our E5), the compiled step takes 2.10
# s/kimg on an H100: 2.5 times faster than the official code with its
# CUDA kernels on an H200 (which has 1.4 times the H100's memory bandwidth), and
# inside the target of at most 2.5 s/kimg. (The `auto` rule's R1 gamma, 0.1024,
# differs from E4's 8; the value scales a term and costs nothing.) The study's
# 2.7-times-costlier E4 network trains compiled through the real trainer, ticks,
# grids, checkpoints and echo-FID included, at the speed printed below, close to
# the compiled step's. The profiler table of the compiled `auto` step shows
# the host busy for longer than the GPU (16 steps: 1.3 s of CPU time, 0.71 s of
# CUDA time, under profiling), so CUDA graphs are the next lever there. The
# pair of eager E4 steps with and without ADA's 2x warp read 4.20 and 4.52
# s/kimg: noise, since the step bench starts at $p = 0$ and warps few images.
#
# What 131 kimg (about 4 minutes of training, 29 passes over 4,532 training
# frames) gave, with the trainer's echo-FID (1,000 generated images against 1,000
# training frames) every 20 kimg, is in the table and curves below, read from the
# run's records. The losses settle near the equilibrium of the logistic loss
# ($2\ln 2 = 1.39$ for $D$, $\ln 2 = 0.69$ for $G$), $r_t$ stays below the 0.6
# target, so ADA's $p$ stays near 0: the discriminator does not yet overfit 4,532
# frames at 29 passes (the study's 40,120 frames would make it later still).
# The grid at 131 kimg shows apical four-chamber views: sector, septum, both
# atria and ventricles and the valve planes, a few frames still blurred or
# without chambers. FID from 1,000 images scatters by several points; the rise
# after 81 kimg is within that scatter at so few kimg.
#
# The run's record is kept in `book/measured/` (its `log.csv` and the trainer's
# metric records; no images, since it trained on licensed frames):

# %%
measured = REPO_ROOT / "book" / "measured" / "h100-2026-11-27" / "stylegan2_ada-E4"
if RunFolder(measured).log_file.is_file():
    h100_log = read_log(measured)
    assert h100_log["kimg"].iloc[-1] > 100 and h100_log["loss_D"].map(math.isfinite).all()
    speed = h100_log["sec_per_kimg"]
    print(f"trained compiled: median {speed.median():.2f} s/kimg over {len(speed)} ticks "
          f"({speed.min():.2f}-{speed.max():.2f}), peak {h100_log['mem_gb'].max():.1f} GB, "
          f"{h100_log['kimg'].iloc[-1]:.0f} kimg")
    fids = read_metrics(measured).pivot_table(index="kimg", columns="metric", values="value")[["fid", "kid"]]
    at_fid = pd.merge_asof(fids.reset_index(), h100_log[["kimg", "loss_D", "loss_G", "augment_p"]],
                           on="kimg", direction="nearest")
    display(at_fid.set_index("kimg").round(3).T)  # noqa: F821 -- IPython's display
    loss_curves(measured, ["loss_G", "loss_D", "D_real", "D_fake", "augment_p", "ada_rt"])
    fid_figure = metric_curves(measured, ["fid", "kid"])
    for ax in fid_figure.axes:
        ax.set_yscale("log")
else:
    print(f"{measured} is not in this checkout (installed from a wheel): its figures are in the online book")
