"""VQGAN (Esser et al. 2021, "Taming Transformers") with an autoregressive transformer prior.

**Stage 1: a discrete autoencoder.** A convolutional encoder ``E`` (residual blocks
with GroupNorm and SiLU, self-attention at the lowest resolution) maps a frame
``x`` to a grid ``z = E(x)`` of ``h x w`` vectors, ``f = R / h`` times smaller
than the frame. Each vector is replaced by its nearest entry of a codebook
``{e_k}_{k<K}``,

$$ s_{ij} = \\arg\\min_k \\|z_{ij} - e_k\\|_2, \\qquad z_q = e_{s}, $$

and a decoder ``G`` reconstructs ``x_hat = G(z_q)``. The argmin has no gradient,
so the decoder's gradient is copied to the encoder (straight-through:
``z_q = z + sg[e_s - z]``). The codebook either learns by gradient with

$$ L_{VQ} = \\|sg[z] - e_s\\|^2 + \\beta \\|z - sg[e_s]\\|^2, \\qquad \\beta = 0.25, $$

(codebook term + commitment term), or, as a configuration, by exponential moving
averages of the assigned encoder outputs (van den Oord et al. 2017, app. A.1):
``N_k <- d N_k + (1 - d) n_k``, ``m_k <- d m_k + (1 - d) sum_{s=k} z``,
``e_k = m_k / N~_k`` with Laplace-smoothed counts ``N~_k`` and decay d = 0.99;
only the commitment term is then a loss. Codes whose usage falls below a
threshold can be restarted on random encoder outputs of the batch.

The autoencoder is trained as a GAN generator: L1 plus a perceptual distance
(LPIPS, or the domain ``echo`` extractor's intermediate features, handed in by
the trainer through :meth:`VQGAN.use_perceptual`; see
:mod:`echolib.metrics.perceptual`) as reconstruction loss, and, after ``disc_start_kimg``,
a PatchGAN discriminator ``D`` with the hinge loss. The GAN term is weighted
adaptively at the decoder's last layer ``G_L``,

$$ \\lambda = \\frac{\\|\\nabla_{G_L} L_{rec}\\|}{\\|\\nabla_{G_L} L_{GAN}\\| + 10^{-4}}, \\qquad
   L = L_{rec} + \\lambda\\, L_{GAN} + L_{VQ}, $$

so the adversarial gradient never swamps the reconstruction gradient whatever
the scale of the discriminator's logits.

That balance holds at the output layer only, and it does not make the game
fair. On the shared frames at 64 px (``cpu64``), an autoencoder whose GAN term
weighs ``disc_weight = 0.8`` (taming's value) fooled its discriminator within
25 steps of the switch-on, even one that had first learnt alone to separate
reconstructions from frames; it stayed fooled (hinge loss 1.0, equal mean
logits on both sides) while the reconstructions got worse. ``disc_warmup_kimg``
lets ``D`` train alone before its loss reaches the autoencoder, and a smaller
``disc_weight`` keeps the autoencoder from outrunning it. The step logs the
mean logits on each side (``logits_real``, ``logits_fake``): a hinge loss of 1.0
alone cannot tell a fooled discriminator from a balanced one.

**Stage 2: a prior over codes.** A GPT-style transformer (causal self-attention,
learned positional embeddings, a start token) models the code grid read in
raster order as a sequence,

$$ p(s) = \\prod_{i=1}^{hw} p(s_i \\mid s_{<i}), $$

trained by cross-entropy on the codes of real frames. New frames are sampled
code by code (temperature, optional top-k) and decoded by ``G``.

Both stages run in one trainer run: until ``prior_start_kimg`` the autoencoder
and discriminator train; from then on the autoencoder is frozen and each step
trains only the prior on codes of real batches. The trainer keeps a fraction
``train.holdout`` of the videos out of both stages, for held-out reconstruction
metrics. :meth:`VQGAN.sample` always
samples from the prior (also before it has trained: the frames are then
decodings of near-uniform random codes, i.e. meaningless), so sample grids and
training-time FID measure *generation*; reconstructions are measured separately
by :func:`echolib.report.reconstruction.reconstruction_metrics` (PSNR/SSIM on held-out frames), and shown in
stage 1 by the ``recon-*.png`` grids the trainer writes beside each sample grid
(:meth:`VQGAN.previews`). The study
mixed the two; here they never share a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from echolib.errors import ConfigError
from echolib.images import to_float
from echolib.models.base import GenerativeModel, PerceptualLosses, StepContext, backward, eval_mode, frozen, make_adam
from echolib.models.layers import PatchGAN

Perceptual = Literal["auto", "lpips", "echo", "none"]
#: integer codes of the resolved perceptual loss, as stored in checkpoints (extra_state holds no strings)
PERCEPTUAL_CODES = {"none": 0, "echo": 1, "lpips": 2}


@dataclass
class VQGANConfig:
    """The ``model:`` block of a vqgan config. Defaults: a taming-style f16 VQGAN at 128x128."""

    # autoencoder
    channels: int = 64  # base width of encoder/decoder
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)  # width multipliers per level; down factor = 2**(len - 1)
    num_res_blocks: int = 2  # residual blocks per level (decoder: one more)
    attn_resolutions: tuple[int, ...] = ()  # extra self-attention at these feature sizes (the bottleneck always has it)
    z_channels: int = 256  # encoder output / decoder input width
    # codebook
    codebook_size: int = 512  # number of codes K
    code_dim: int = 256  # dimension of each code vector
    codebook: Literal["st", "ema"] = "st"  # learned by gradient (straight-through + codebook loss) or by EMA updates
    beta: float = 0.25  # commitment weight
    ema_decay: float = 0.99  # decay of the EMA codebook statistics (codebook: ema)
    ema_eps: float = 1e-5  # Laplace smoothing of the EMA cluster sizes (codebook: ema)
    restart_threshold: float = 0.0  # restart codes whose EMA usage (assignments per step) is below this; 0 = off
    codebook_weight: float = 1.0  # weight of the VQ loss in the autoencoder objective
    # reconstruction and adversarial losses
    l1_weight: float = 1.0  # weight of |x - x_hat|
    perceptual: Perceptual = "auto"  # auto: lpips if its weights are present, else echo, else none
    perceptual_weight: float = 1.0  # weight of the perceptual distance
    disc_start_kimg: float = 200.0  # the GAN loss reaches the autoencoder from this many kimg
    disc_warmup_kimg: float = 0.0  # the discriminator trains alone this many kimg before disc_start_kimg
    disc_factor: float = 1.0  # scales both the GAN loss of the autoencoder and the discriminator loss
    disc_weight: float = 0.8  # multiplier of the adaptive weight lambda (taming: 0.8)
    adaptive_max: float = 1e4  # clamp of the adaptive weight
    disc_channels: int = 64  # PatchGAN width at the input resolution
    disc_layers: int = 3  # PatchGAN strided layers
    disc_norm: Literal["batch", "spectral", "none"] = "batch"  # PatchGAN normalisation (taming: batch)
    lr: float = 1e-4  # Adam learning rate of autoencoder and discriminator
    betas: tuple[float, float] = (0.5, 0.9)  # Adam betas of autoencoder and discriminator
    # prior (stage 2)
    prior_start_kimg: float = 1000.0  # stage 2 from this many kimg: autoencoder frozen, only the prior trains
    prior_dim: int = 512  # transformer width
    prior_layers: int = 8  # transformer blocks
    prior_heads: int = 8  # attention heads
    prior_dropout: float = 0.0  # dropout in attention/MLP (draws from the trainer-seeded torch RNG)
    prior_lr: float = 2e-4  # Adam learning rate of the prior
    prior_betas: tuple[float, float] = (0.9, 0.95)  # Adam betas of the prior
    temperature: float = 1.0  # default sampling temperature
    top_k: int | None = None  # default top-k filter when sampling; null = full distribution
    # data


# -- autoencoder building blocks -------------------------------------------------
def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups where the width allows (taming), fewer for narrow test models."""
    return nn.GroupNorm(math.gcd(32, channels), channels, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = group_norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions of a feature map, with a residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, 1, c, h * w).transpose(-1, -2).unbind(1)
        y = F.scaled_dot_product_attention(q, k, v)  # [b, 1, hw, c]
        return x + self.proj(y.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """3x3 stride-2 convolution with the asymmetric padding of taming (exactly halves the size)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour 2x then a 3x3 convolution (no checkerboard artefacts of transposed convs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _stage(c_in: int, c_out: int, blocks: int, attn: bool) -> tuple[nn.ModuleList, int]:
    layers = nn.ModuleList()
    for _ in range(blocks):
        layers.append(ResBlock(c_in, c_out))
        c_in = c_out
        if attn:
            layers.append(AttnBlock(c_out))
    return layers, c_out


class Encoder(nn.Module):
    """``x [B, C, R, R] -> z [B, z_channels, R/f, R/f]``."""

    def __init__(self, cfg: VQGANConfig, resolution: int, channels: int) -> None:
        super().__init__()
        mult, ch = cfg.channel_mult, cfg.channels
        self.conv_in = nn.Conv2d(channels, ch * mult[0], 3, padding=1)
        self.levels = nn.ModuleList()
        c, size = ch * mult[0], resolution
        for i, m in enumerate(mult):
            blocks, c = _stage(c, ch * m, cfg.num_res_blocks, size in cfg.attn_resolutions)
            if i < len(mult) - 1:
                blocks.append(Downsample(c))
                size //= 2
            self.levels.append(blocks)
        self.mid = nn.Sequential(ResBlock(c, c), AttnBlock(c), ResBlock(c, c))
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in cast("Sequence[nn.ModuleList]", self.levels):
            for layer in level:
                h = layer(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """``z_q [B, z_channels, R/f, R/f] -> x_hat [B, C, R, R]`` (unbounded; clamp to [-1, 1] when sampling)."""

    def __init__(self, cfg: VQGANConfig, resolution: int, channels: int) -> None:
        super().__init__()
        mult, ch = cfg.channel_mult, cfg.channels
        c = ch * mult[-1]
        size = resolution // 2 ** (len(mult) - 1)
        self.conv_in = nn.Conv2d(cfg.z_channels, c, 3, padding=1)
        self.mid = nn.Sequential(ResBlock(c, c), AttnBlock(c), ResBlock(c, c))
        self.levels = nn.ModuleList()
        for i in reversed(range(len(mult))):
            blocks, c = _stage(c, ch * mult[i], cfg.num_res_blocks + 1, size in cfg.attn_resolutions)
            if i > 0:
                blocks.append(Upsample(c))
                size *= 2
            self.levels.append(blocks)
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, channels, 3, padding=1)

    @property
    def last_layer(self) -> torch.Tensor:
        """The weight at which the adaptive GAN weight compares gradients."""
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in cast("Sequence[nn.ModuleList]", self.levels):
            for layer in level:
                h = layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# -- the codebook -----------------------------------------------------------------
@dataclass
class Quantized:
    """What the quantizer hands back: straight-through codes, the VQ loss and what EMA updates need."""

    z_q: torch.Tensor  # [B, D, h, w] fp32, gradient flows to the encoder
    loss: torch.Tensor  # 0-dim: codebook + commitment (st) or commitment only (ema)
    codes: torch.Tensor  # [B, h, w] long
    z_flat: torch.Tensor  # [B*h*w, D] fp32 encoder outputs, detached


def one_hot(codes: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, K]`` float one-hot rows of the flattened codes, by comparison.

    Unlike ``F.one_hot`` and ``torch.bincount`` this never reads the codes back to
    the host (they validate or size their output from the values), so a
    training step stays free of GPU syncs; sums over it are exact and deterministic.
    """
    return (codes.reshape(-1, 1) == torch.arange(size, device=codes.device)).float()


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantisation against ``K`` codes of size ``D``.

    ``st``: the codebook is a parameter learned through the codebook loss.
    ``ema``: the codebook is a buffer updated by :meth:`update` (called by the
    model after the autoencoder's forward, never by evaluation forwards), so it
    receives no gradient. Both keep ``usage``, an EMA of assignments per step,
    used for dead-code restarts. Under DDP the statistics are summed over ranks
    and restart vectors come from rank 0, so every rank holds the same codebook.
    """

    codebook: torch.Tensor
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor
    usage: torch.Tensor

    def __init__(self, size: int, dim: int, beta: float, mode: str, decay: float, eps: float) -> None:
        super().__init__()
        self.size, self.dim, self.beta, self.mode, self.decay, self.eps = size, dim, beta, mode, decay, eps
        if mode == "st":
            self.codebook = nn.Parameter(torch.empty(size, dim).uniform_(-1.0 / size, 1.0 / size))
        else:
            codebook = torch.randn(size, dim)
            self.register_buffer("codebook", codebook)
            # counts start at one with sums equal to the codes, so an unused code stays where it is
            self.register_buffer("cluster_size", torch.ones(size))
            self.register_buffer("embed_sum", codebook.clone())
        self.register_buffer("usage", torch.zeros(size))

    def forward(self, z: torch.Tensor) -> Quantized:
        b, d, h, w = z.shape
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            flat = z.permute(0, 2, 3, 1).reshape(-1, d)
            e = self.codebook.float()
            dist = flat.square().sum(1, keepdim=True) - 2.0 * flat @ e.t() + e.square().sum(1)[None]
            codes = dist.argmin(1)
            z_q = F.embedding(codes, e).view(b, h, w, d).permute(0, 3, 1, 2)
            commit = F.mse_loss(z, z_q.detach())
            loss = self.beta * commit if self.mode == "ema" else F.mse_loss(z_q, z.detach()) + self.beta * commit
            z_q = z + (z_q - z).detach()
        return Quantized(z_q=z_q, loss=loss, codes=codes.view(b, h, w), z_flat=flat.detach())

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, h, w] -> z_q [B, D, h, w]``."""
        return F.embedding(codes, self.codebook.float()).permute(0, 3, 1, 2)

    @torch.no_grad()
    def update(self, q: Quantized, pick: torch.Tensor, threshold: float) -> None:
        """EMA statistics, the EMA codebook (ema mode) and dead-code restarts, after a training forward.

        ``pick`` holds ``K`` random row indices into ``q.z_flat`` (drawn by the
        caller from the step's generator) for restarts.
        """
        with torch.autocast(q.z_flat.device.type, enabled=False):
            onehot = one_hot(q.codes, self.size)
            counts = onehot.sum(0)
            sums = onehot.t() @ q.z_flat if self.mode == "ema" else None
            if _distributed():
                torch.distributed.all_reduce(counts)
                if sums is not None:
                    torch.distributed.all_reduce(sums)
            self.usage.lerp_(counts, 1.0 - self.decay)
            if sums is not None:  # ema mode
                self.cluster_size.lerp_(counts, 1.0 - self.decay)
                self.embed_sum.lerp_(sums, 1.0 - self.decay)
                n = self.cluster_size.sum()
                smoothed = (self.cluster_size + self.eps) / (n + self.size * self.eps) * n
                self.codebook.copy_(self.embed_sum / smoothed[:, None])
            if threshold > 0:
                self._restart(q.z_flat[pick], threshold)

    def _restart(self, candidates: torch.Tensor, threshold: float) -> None:
        if _distributed():
            torch.distributed.broadcast(candidates, src=0)
        dead = (self.usage < threshold)[:, None]
        self.codebook.data.copy_(torch.where(dead, candidates.to(self.codebook.dtype), self.codebook.data))
        self.usage.copy_(torch.where(dead[:, 0], torch.full_like(self.usage, threshold), self.usage))
        if self.mode == "ema":
            self.cluster_size.copy_(torch.where(dead[:, 0], torch.ones_like(self.cluster_size), self.cluster_size))
            self.embed_sum.copy_(torch.where(dead, candidates, self.embed_sum))


class VQAutoencoder(nn.Module):
    """Encoder, 1x1 projections to and from code space, quantizer and decoder."""

    def __init__(self, cfg: VQGANConfig, resolution: int, channels: int) -> None:
        super().__init__()
        self.encoder = Encoder(cfg, resolution, channels)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.code_dim, 1)
        self.quantizer = VectorQuantizer(
            cfg.codebook_size, cfg.code_dim, cfg.beta, cfg.codebook, cfg.ema_decay, cfg.ema_eps
        )
        self.post_quant_conv = nn.Conv2d(cfg.code_dim, cfg.z_channels, 1)
        self.decoder = Decoder(cfg, resolution, channels)

    def encode(self, x: torch.Tensor) -> Quantized:
        return self.quantizer(self.quant_conv(self.encoder(x)))

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z_q))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decode(self.quantizer.lookup(codes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        q = self.encode(x)
        return self.decode(q.z_q), q


# -- discriminator ----------------------------------------------------------------
def patch_discriminator(cfg: VQGANConfig, channels: int) -> PatchGAN:
    """Taming's NLayerDiscriminator: widths up to 8x the first, no layer where there is no norm, default biases."""
    if cfg.disc_norm not in ("batch", "spectral", "none"):
        raise ConfigError(f"model.disc_norm must be 'batch', 'spectral' or 'none', got {cfg.disc_norm!r}")
    return PatchGAN(channels, cfg.disc_channels, cfg.disc_layers, max_channels=8 * cfg.disc_channels,
                    norm="batch" if cfg.disc_norm == "batch" else None, spectral=cfg.disc_norm == "spectral",
                    zero_bias=False)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real.float()).mean() + F.relu(1.0 + logits_fake.float()).mean())


def adaptive_weight(rec_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor,
                    max_weight: float = 1e4) -> torch.Tensor:
    """``||grad L_rec|| / (||grad L_GAN|| + 1e-4)`` at ``last_layer``, clamped to ``[0, max_weight]``, detached."""
    with torch.autocast(last_layer.device.type, enabled=False):  # each gradient op in its forward's dtype
        (g_rec,) = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)
        (g_gan,) = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)
    weight = g_rec.float().norm() / (g_gan.float().norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()


# -- the prior --------------------------------------------------------------------
class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None,
                pos: int = 0) -> torch.Tensor:
        """Training: all positions, causal mask. Sampling: one new position ``pos`` against the key/value cache."""
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        else:
            if t != 1:
                raise ValueError("cached attention takes one new position at a time")
            keys, values = cache
            keys[:, :, pos : pos + 1] = k
            values[:, :, pos : pos + 1] = v
            y = F.scaled_dot_product_attention(q, keys[:, :, : pos + 1], values[:, :, : pos + 1])
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """Pre-norm transformer block (GPT-2)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), CausalSelfAttention(dim, heads, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, cache=None, pos: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, pos)
        return x + self.mlp(self.ln2(x))


class CodePrior(nn.Module):
    """GPT over code sequences: ``logits[:, i]`` predicts ``s_i`` from the start token and ``s_<i``."""

    def __init__(self, vocab: int, length: int, dim: int, layers: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"model.prior_dim ({dim}) must be divisible by model.prior_heads ({heads})")
        self.vocab, self.length, self.heads = vocab, length, heads
        self.start = vocab  # the start token is one past the last code
        self.tok = nn.Embedding(vocab + 1, dim)
        self.pos = nn.Parameter(torch.zeros(1, length, dim))
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:  # an Embedding has no bias
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.pos, 0.0, 0.02)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, L] -> logits [B, L, K]`` (teacher forcing)."""
        start = torch.full_like(codes[:, :1], self.start)
        x = self.tok(torch.cat([start, codes[:, :-1]], 1)) + self.pos[:, : codes.shape[1]]
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def new_cache(self, n: int, device: torch.device, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        dim = self.pos.shape[-1]
        shape = (n, self.heads, self.length, dim // self.heads)
        return [(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))
                for _ in self.blocks]

    def step(self, token: torch.Tensor, pos: int, cache) -> torch.Tensor:
        """Logits ``[B, K]`` for position ``pos`` given the token at ``pos - 1`` (the start token at 0)."""
        x = self.tok(token[:, None]) + self.pos[:, pos : pos + 1]
        for block, kv in zip(self.blocks, cache):
            x = block(x, kv, pos)
        return self.head(self.ln_f(x))[:, -1]


def sample_logits(logits: torch.Tensor, generator: torch.Generator, temperature: float = 1.0,
                  top_k: int | None = None) -> torch.Tensor:
    """One index per row of ``logits [B, K]``: softmax(logits / T) restricted to the ``top_k`` largest."""
    if temperature <= 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")
    with torch.autocast(logits.device.type, enabled=False):
        logits = logits.float() / temperature
        if top_k is not None and top_k < logits.shape[-1]:
            if top_k < 1:
                raise ConfigError(f"top_k must be at least 1, got {top_k}")
            kth = logits.topk(top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.softmax(-1)
    return torch.multinomial(probs.to(generator.device), 1, generator=generator).to(logits.device)[:, 0]


@torch.no_grad()
def generate_codes(prior: CodePrior, n: int, generator: torch.Generator, temperature: float = 1.0,
                   top_k: int | None = None) -> torch.Tensor:
    """Ancestral sampling ``s_i ~ p(s_i | s_<i)`` with a key/value cache: ``[n, L]`` long."""
    device = prior.pos.device
    cache = prior.new_cache(n, device, prior.pos.dtype)
    token = torch.full((n,), prior.start, device=device, dtype=torch.long)
    out = torch.empty(n, prior.length, device=device, dtype=torch.long)
    for i in range(prior.length):
        token = sample_logits(prior.step(token, i, cache), generator, temperature, top_k)
        out[:, i] = token
    return out


def code_statistics(counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Codebook usage (share of codes used at least once) and perplexity ``exp(H(p))`` of code frequencies."""
    p = counts.double() / counts.sum().clamp_min(1)
    entropy = -(p * p.clamp_min(1e-30).log()).sum()
    return {"codebook_usage": (counts > 0).double().mean(), "codebook_perplexity": entropy.exp()}


# -- the model ----------------------------------------------------------------------
class VQGAN(GenerativeModel):
    arch = "vqgan"
    Config = VQGANConfig
    ema_names = ("prior",)  # the prior samples; the autoencoder is frozen by the time the prior trains
    PREVIEW_FRAMES: ClassVar[int] = 16  # held-out frames in each stage-1 recon grid

    def __init__(self, cfg: VQGANConfig, resolution: int = 128, channels: int = 1) -> None:
        super().__init__(cfg, resolution, channels)
        _validate(cfg, resolution)
        self.code_size = resolution // self.down_factor
        self.nets["autoencoder"] = VQAutoencoder(cfg, resolution, channels)
        self.nets["D"] = patch_discriminator(cfg, channels)
        self.nets["prior"] = CodePrior(cfg.codebook_size, self.code_size**2, cfg.prior_dim, cfg.prior_layers,
                                       cfg.prior_heads, cfg.prior_dropout)
        #: the perceptual distance: the configured name until :meth:`use_perceptual` resolves ``auto``
        self.perceptual: str = cfg.perceptual
        self._perceptual_losses: PerceptualLosses | None = None  # handed in by the trainer (use_perceptual)
        self._perceptual_fn: dict[str, Any] = {}  # built lazily: only training needs it, on the training device
        self._code_counts: torch.Tensor | None = None  # code histogram since the last tick
        self._stage = 1
        self._preview_frames: torch.Tensor | None = None  # uint8, from setup: reconstruction previews
        self.finish_init()

    @property
    def down_factor(self) -> int:
        return 2 ** (len(self.cfg.channel_mult) - 1)

    def stage_at(self, nimg: int) -> int:
        return 2 if nimg >= round(self.cfg.prior_start_kimg * 1000) else 1

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        return {
            "autoencoder": make_adam(self.nets["autoencoder"].parameters(), c.lr, c.betas),
            "D": make_adam(self.nets["D"].parameters(), c.lr, c.betas),
            "prior": make_adam(self.nets["prior"].parameters(), c.prior_lr, c.prior_betas),
        }

    # -- training -------------------------------------------------------------
    def train_step(self, ctx: StepContext, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        self._stage = self.stage_at(ctx.nimg)
        real = ctx.next_real().images
        if self._stage == 2:
            return self._prior_step(real, optimizers)
        return self._autoencoder_step(ctx, real, optimizers)

    def _autoencoder_step(self, ctx: StepContext, real: torch.Tensor, optimizers) -> dict[str, torch.Tensor]:
        c = self.cfg
        ae, D = cast(VQAutoencoder, self.nets["autoencoder"]), self.nets["D"]
        disc_on = ctx.nimg >= round(c.disc_start_kimg * 1000) and c.disc_factor > 0
        disc_train = ctx.nimg >= round((c.disc_start_kimg - c.disc_warmup_kimg) * 1000) and c.disc_factor > 0
        recon, q = self.fwd["autoencoder"](real)
        rec = (real.float() - recon.float()).abs().mean()
        loss_rec = c.l1_weight * rec
        out = {"loss_rec": rec.detach(), "loss_q": q.loss.detach()}
        perceptual = self._perceptual(ctx.device)
        if perceptual is not None and c.perceptual_weight > 0:
            p = perceptual(real, recon).float().mean()
            loss_rec = loss_rec + c.perceptual_weight * p
            out["loss_perceptual"] = p.detach()
        loss = loss_rec + c.codebook_weight * q.loss
        if disc_on:
            with frozen(D):
                g_loss = -self.peer["D"](recon).float().mean()
            lam = adaptive_weight(loss_rec, g_loss, ae.decoder.last_layer, c.adaptive_max)
            loss = loss + c.disc_weight * lam * c.disc_factor * g_loss
            out.update(loss_G=g_loss.detach(), adaptive_weight=lam)
        optimizers["autoencoder"].zero_grad(set_to_none=True)
        backward(loss)
        optimizers["autoencoder"].step()
        pick = torch.randint(q.z_flat.shape[0], (c.codebook_size,), generator=ctx.generator, device=ctx.device)
        ae.quantizer.update(q, pick, c.restart_threshold)
        self._count_codes(q.codes)
        if disc_train:
            logits_real, logits_fake = self.fwd["D"](real), self.fwd["D"](recon.detach())
            d_loss = c.disc_factor * hinge_d_loss(logits_real, logits_fake)
            optimizers["D"].zero_grad(set_to_none=True)
            backward(d_loss)
            optimizers["D"].step()
            # the hinge loss alone cannot tell a discriminator that separates nothing (all logits
            # equal, loss 1.0) from a balanced one: the mean logits on each side can
            out.update(loss_D=d_loss.detach(), logits_real=logits_real.detach().float().mean(),
                       logits_fake=logits_fake.detach().float().mean())
        out["loss_AE"] = loss.detach()
        return out

    def _prior_step(self, real: torch.Tensor, optimizers) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            codes = cast(VQAutoencoder, self.nets["autoencoder"]).encode(real).codes.flatten(1)
        logits = self.fwd["prior"](codes)
        with torch.autocast(real.device.type, enabled=False):
            loss = F.cross_entropy(logits.float().flatten(0, 1), codes.flatten())
        optimizers["prior"].zero_grad(set_to_none=True)
        backward(loss)
        optimizers["prior"].step()
        self._count_codes(codes)
        # bits per code: comparable across codebook sizes (log2 K for a uniform prior)
        return {"loss_prior": loss.detach(), "prior_bits_per_code": loss.detach() / math.log(2.0)}

    def use_perceptual(self, losses: PerceptualLosses) -> None:
        """Take the trainer's perceptual distances and resolve ``perceptual: auto`` against the weights present.

        A resumed run's checkpoint then restores the name it started with
        (:meth:`load_extra_state`), wherever it resumes.
        """
        self._perceptual_losses = losses
        if self.perceptual == "auto":
            self.perceptual = losses.resolve("auto")

    def _losses(self) -> PerceptualLosses:
        if self._perceptual_losses is None:
            raise RuntimeError(
                f"vqgan: perceptual loss {self.perceptual!r} needs the distances handed in first: call "
                "model.use_perceptual(echolib.metrics.perceptual.PERCEPTUAL_LOSSES), as the trainer does"
            )
        return self._perceptual_losses

    def _perceptual(self, device: torch.device) -> nn.Module | None:
        if self.perceptual == "none":
            return None
        if self.perceptual not in self._perceptual_fn:
            self._perceptual_fn[self.perceptual] = self._losses().build(self.perceptual, device)
        return self._perceptual_fn[self.perceptual]

    def _count_codes(self, codes: torch.Tensor) -> None:
        counts = one_hot(codes, self.cfg.codebook_size).sum(0, dtype=torch.float64)
        self._code_counts = counts if self._code_counts is None else self._code_counts + counts

    def tick_stats(self) -> dict[str, torch.Tensor | float]:
        """Codebook usage/perplexity of the codes assigned since the last tick (then reset), and the stage."""
        stats: dict[str, torch.Tensor | float] = {"stage": float(self._stage)}
        if self._code_counts is not None:
            stats.update(code_statistics(self._code_counts))
            self._code_counts = None
        return stats

    def setup(self, dataset, heldout=None) -> None:
        """Keep a few held-out frames (training frames without a held-out split) for reconstruction previews."""
        source = heldout if heldout is not None and len(heldout) else dataset
        self._preview_frames = source.images[: self.PREVIEW_FRAMES].cpu()

    def previews(self) -> dict[str, tuple[torch.Tensor, int]]:
        """In stage 1, ``recon``: held-out frames, each followed by its reconstruction (four pairs a row).

        Sample grids decode the prior's codes, which mean nothing until stage 2;
        these show how the autoencoder and its codebook are doing meanwhile.
        """
        if self._stage != 1 or self._preview_frames is None or not len(self._preview_frames):
            return {}
        frames = _as_float(self._preview_frames, self.device)
        pairs = torch.stack([frames, self.reconstruct(frames)], dim=1).flatten(0, 1)
        return {"recon": (pairs, 8)}

    def run_facts(self) -> dict[str, Any]:
        sha = None if self.perceptual == "none" else self._losses().weights_sha256(self.perceptual)
        return {"perceptual": self.perceptual, "perceptual_config": self.cfg.perceptual,
                "perceptual_weights_sha256": sha}

    def extra_state(self) -> dict[str, Any]:
        if self.perceptual == "auto":  # never written to a checkpoint: use_perceptual resolves it first
            self._losses()
        state: dict[str, Any] = {"perceptual": PERCEPTUAL_CODES[self.perceptual]}
        if self._code_counts is not None:  # a checkpoint in mid-tick keeps the partial histogram
            state["code_counts"] = self._code_counts.detach().cpu()
        return state

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        if "perceptual" in state:  # a resumed run keeps the loss it started with, wherever it resumes
            names = {v: k for k, v in PERCEPTUAL_CODES.items()}
            self.perceptual = names[int(state["perceptual"])]
        counts = state.get("code_counts")
        self._code_counts = None if counts is None else counts.to(self.device, torch.float64)

    # -- sampling and reconstruction ----------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, *, use_ema: bool = True, temperature: float | None = None,
               top_k: int | None = None, **options: Any) -> torch.Tensor:
        """Codes from the prior (EMA weights by default), decoded: ``[n, C, H, W]`` in [-1, 1].

        Works at any point of training; before stage 2 the prior is untrained
        and the frames decode near-uniform random codes.
        """
        self.check_sample_options(options)
        temperature = self.cfg.temperature if temperature is None else temperature
        top_k = self.cfg.top_k if top_k is None else top_k
        prior = cast(CodePrior, self.sampling_net("prior", use_ema))
        with eval_mode(prior, self.nets["autoencoder"]):
            codes = generate_codes(prior, n, generator, temperature, top_k)
            return self.decode_codes(codes.view(n, self.code_size, self.code_size))

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        ae = cast(VQAutoencoder, self.nets["autoencoder"])
        return ae.decode_codes(codes.to(self.device)).float().clamp(-1.0, 1.0)

    @torch.no_grad()
    def encode_codes(self, images: torch.Tensor) -> torch.Tensor:
        """Frames (uint8, or float in [-1, 1]) -> code grid ``[B, h, w]``."""
        return cast(VQAutoencoder, self.nets["autoencoder"]).encode(_as_float(images, self.device)).codes

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Encode, quantise, decode: frames (uint8, or float in [-1, 1]) -> float ``[B, C, H, W]`` in [-1, 1]."""
        recon, _ = self.nets["autoencoder"](_as_float(images, self.device))
        return recon.float().clamp(-1.0, 1.0)


def _as_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    images = images.to(device)
    return to_float(images) if images.dtype == torch.uint8 else images.float()


def _validate(cfg: VQGANConfig, resolution: int) -> None:
    if not cfg.channel_mult:
        raise ConfigError("model.channel_mult must list at least one width multiplier")
    factor = 2 ** (len(cfg.channel_mult) - 1)
    if resolution // factor < 1 or resolution % factor:
        raise ConfigError(f"model.channel_mult gives a down factor of {factor}, too large for resolution {resolution}")
    if cfg.codebook_size < 2:
        raise ConfigError(f"model.codebook_size must be at least 2, got {cfg.codebook_size}")
    if not 0.0 < cfg.ema_decay < 1.0:
        raise ConfigError(f"model.ema_decay must lie in (0, 1), got {cfg.ema_decay}")
    if not 0.0 <= cfg.disc_warmup_kimg <= cfg.disc_start_kimg:
        raise ConfigError(
            f"model.disc_warmup_kimg must lie in [0, disc_start_kimg = {cfg.disc_start_kimg}], got {cfg.disc_warmup_kimg}"
        )
    if cfg.top_k is not None and cfg.top_k < 1:
        raise ConfigError(f"model.top_k must be at least 1 or null, got {cfg.top_k}")
    if cfg.temperature <= 0:
        raise ConfigError(f"model.temperature must be positive, got {cfg.temperature}")
