r"""Diffusion (EDM, Karras et al. 2022) and rectified flow (Liu et al. 2023) with one U-Net denoiser.

Both methods learn to undo a fixed corruption that turns a frame ``x_0`` into
Gaussian noise, and generate by integrating an ordinary differential equation
(ODE) from noise back to data with a few dozen network evaluations. There is no
discriminator: training is plain regression, so it neither collapses nor
oscillates, which is why diffusion models overtook GANs on most benchmarks.

**EDM.** The corruption adds noise of standard deviation ``sigma``,
``x = x_0 + sigma n``. A network ``F`` is wrapped into a denoiser whose input and
training target have unit variance at every noise level (``sigma_data`` is the
data's standard deviation, 0.5 for images in [-1, 1]):

$$ D(x; \sigma) = c_\mathrm{skip}(\sigma)\, x + c_\mathrm{out}(\sigma)\,
   F\big(c_\mathrm{in}(\sigma)\, x;\ c_\mathrm{noise}(\sigma)\big), $$
$$ c_\mathrm{skip} = \frac{\sigma_d^2}{\sigma^2 + \sigma_d^2},\quad
   c_\mathrm{out} = \frac{\sigma \sigma_d}{\sqrt{\sigma^2 + \sigma_d^2}},\quad
   c_\mathrm{in} = \frac{1}{\sqrt{\sigma^2 + \sigma_d^2}},\quad
   c_\mathrm{noise} = \tfrac14 \ln \sigma . $$

Training minimises
``E[ lambda(sigma) ||D(x_0 + sigma n; sigma) - x_0||^2 ]`` with
``ln sigma ~ N(P_mean, P_std^2)`` (-1.2, 1.2) and
``lambda = (sigma^2 + sigma_d^2) / (sigma sigma_d)^2 = 1 / c_out^2``, so the
effective loss on ``F`` has unit weight at every ``sigma``. Samples follow the
probability-flow ODE ``dx / dsigma = (x - D(x; sigma)) / sigma`` from
``sigma_max = 80`` to 0 along
``sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``
(rho = 7: small steps where detail forms), with Heun's second-order method and
an Euler last step to ``sigma = 0``: ``2N - 1`` network evaluations. The
``dpm2m`` sampler (DPM-Solver++(2M), Lu et al. 2022) spends one evaluation per
step instead: it integrates the linear part of the ODE exactly in
``lambda = -ln sigma`` and extrapolates the denoiser linearly from the previous
step, so at 5 to 10 evaluations it keeps detail that Heun's method cannot.

**Rectified flow / flow matching.** The corruption is a straight line,
``x_t = (1 - t) x_0 + t eps``, and the network predicts its velocity
``v = eps - x_0`` (loss ``||v_theta(x_t, t) - (eps - x_0)||^2``), with ``t``
logit-normal (``logit t ~ N(0, 1)``, Esser et al. 2024: most weight on the
middle of the path, where the target is least predictable). Samples integrate
``dx / dt = v_theta(x, t)`` from ``t = 1`` to 0 with Euler or Heun steps. The
two formulations are the same family: ``x_t / (1 - t) = x_0 + sigma eps`` with
``sigma = t / (1 - t)``, so the logit-normal ``t`` is a log-normal ``sigma``.

**Conditioning** (optional) on the cardiac phase the training dataset carries
from its manifest (``phase_label``: ED, ES, other): a one-hot label is embedded and
added to the noise embedding; during training it is replaced by the "no label"
zero vector with probability ``label_dropout``, so one network also learns
the unconditional model, and sampling can use classifier-free guidance
(Ho & Salimans 2022): ``D_w = D(x | none) + w (D(x | c) - D(x | none))``.

Mixed precision: the U-Net runs under the trainer's bf16 autocast; the
preconditioning, the noise levels, the ODE state and the loss stay in fp32.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F

from echolib.errors import ConfigError, DataError
from echolib.models.base import FrameFields, GenerativeModel, StepContext, backward, eval_mode, make_adam
from echolib.models.unet import Embedding, UNet

Formulation = Literal["edm", "flow"]
Sampler = Literal["heun", "euler", "dpm2m"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)


@dataclass
class DiffusionConfig:
    formulation: Formulation = "edm"  # "edm" (denoising, Karras et al. 2022) or "flow" (rectified flow, velocity)
    # -- denoiser U-Net (ADM-style) --
    channels: int = 64  # base width of the U-Net (level 0); the noise embedding is 4x this
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)  # width multiplier per level; 5 levels: 128 px -> 8 px
    num_blocks: int = 2  # residual blocks per level in the encoder (decoder: one more)
    attn_resolutions: tuple[int, ...] = (16, 8)  # self-attention after the blocks at these resolutions
    mid_attention: bool = True  # self-attention in the middle (bottleneck) block
    head_channels: int = 64  # channels per attention head
    dropout: float = 0.1  # dropout inside residual blocks (EDM: 0.13 on CIFAR-10; regularises small datasets)
    embedding: Embedding = "positional"  # noise-level embedding: "positional" sinusoids or "fourier" (edm only)
    # -- EDM --
    sigma_data: float = 0.5  # standard deviation of the data the preconditioning assumes
    p_mean: float = -1.2  # training noise levels: ln(sigma) ~ N(p_mean, p_std^2)
    p_std: float = 1.2  # (see p_mean)
    sigma_min: float = 0.002  # sampling: lowest noise level before the final step to 0
    sigma_max: float = 80.0  # sampling: starting noise level
    rho: float = 7.0  # sampling: curvature of the sigma schedule (larger: more steps at low noise)
    # -- rectified flow --
    t_mean: float = 0.0  # training times: logit(t) ~ N(t_mean, t_std^2) (logit-normal, SD3)
    t_std: float = 1.0  # (see t_mean)
    # -- sampling --
    sampler: Sampler = "heun"  # ODE solver: "heun" (2*steps-1 evaluations), "euler" or "dpm2m" (steps evaluations)
    steps: int = 18  # default number of ODE steps (EDM: 18 Heun steps = 35 network evaluations)
    guidance: float = 1.0  # default classifier-free guidance scale w for labelled sampling (1 = none)
    sample_bf16: bool = True  # evaluate the network in bf16 while sampling on CUDA (ODE state stays fp32)
    # -- optimisation --
    lr: float = 2e-4  # Adam learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas (EDM/ADM)
    lr_rampup_kimg: float = 100.0  # linear learning-rate warm-up over this many kimg; 0 = none
    # -- conditioning on cardiac phase --
    labels: list[str] = field(default_factory=list)  # class names, e.g. [ED, ES, other]; empty = unconditional
    label_key: str = "phase_label"  # manifest column holding each frame's label
    label_dropout: float = 0.1  # probability of training a frame without its label (needed for guidance)


def edm_precond(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, ...]:
    """``c_skip, c_out, c_in, c_noise`` of EDM (its Table 1), elementwise in the dtype of ``sigma``."""
    var = sigma.square() + sigma_data**2
    c_skip = sigma_data**2 / var
    c_out = sigma * sigma_data / var.sqrt()
    c_in = var.rsqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


def edm_loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """``lambda(sigma) = (sigma^2 + sigma_d^2) / (sigma sigma_d)^2``: equal to ``1 / c_out^2``."""
    return (sigma.square() + sigma_data**2) / (sigma * sigma_data).square()


def edm_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float) -> list[float]:
    """EDM's schedule, ``steps`` levels from ``sigma_max`` down to ``sigma_min``, then 0.

    Python floats on purpose: the solver branches on them without touching the GPU.
    """
    if steps == 1:
        return [sigma_max, 0.0]
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return [(a + i / (steps - 1) * (b - a)) ** rho for i in range(steps)] + [0.0]


def flow_times(steps: int) -> list[float]:
    """Uniform times from 1 (noise) to 0 (data): rectified-flow paths are nearly straight."""
    return [1.0 - i / steps for i in range(steps + 1)]


def network_evaluations(sampler: Sampler, steps: int) -> int:
    """Denoiser calls that ``steps`` steps of ``sampler`` cost (Heun skips its correction on the step to 0)."""
    return 2 * steps - 1 if sampler == "heun" else steps


def half_log_snr(alpha: float, sigma: float) -> float:
    """``lambda = ln(alpha / sigma)``, -inf for pure noise (alpha = 0) and +inf for clean data (sigma = 0)."""
    if alpha == 0:
        return -math.inf
    if sigma == 0:
        return math.inf
    return math.log(alpha / sigma)


def solve_dpmpp_2m(
    denoise: Callable[[torch.Tensor, float], torch.Tensor],
    x: torch.Tensor,
    grid: Sequence[float],
    scales: Callable[[float], tuple[float, float]],
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022) along ``grid``, for ``x_t = alpha_t x_0 + sigma_t n``.

    ``denoise(x, t)`` predicts ``x_0``; ``scales(t)`` gives ``(alpha_t, sigma_t)``.
    Written in ``lambda = ln(alpha / sigma)``, the probability-flow ODE is linear
    in ``x`` plus a term in ``x_0``; the step integrates the linear part exactly
    and holds ``x_0`` at a linear extrapolation from the previous step's estimate,
    so a step costs one evaluation and the method is second order. The first step
    (no history) and the last (to ``sigma = 0``, where ``lambda`` is infinite) are
    first order, which is DDIM. A denoiser that returns the same ``x_0`` everywhere
    (data of one frame) is integrated exactly by any number of steps.
    """
    d_prev, h_prev = None, math.inf
    for t, t_next in itertools.pairwise(grid):
        (a, s), (a_next, s_next) = scales(t), scales(t_next)
        d = denoise(x, t)
        h = half_log_snr(a_next, s_next) - half_log_snr(a, s)
        d_hat = d
        if d_prev is not None and s_next > 0:
            k = 1 / (2 * (h_prev / h))  # 0 when the previous step started from pure noise (h_prev infinite)
            d_hat = (1 + k) * d - k * d_prev
        x = (s_next / s) * x - a_next * math.expm1(-h) * d_hat
        d_prev, h_prev = d, h
    return x


def solve_ode(
    drift: Callable[[torch.Tensor, float], torch.Tensor], x: torch.Tensor, grid: Sequence[float], sampler: Sampler
) -> torch.Tensor:
    """Integrate ``dx/dt = drift(x, t)`` along ``grid``; Heun's correction on every step that does not end at 0.

    The last step to 0 stays Euler because the EDM drift ``(x - D) / sigma`` is
    undefined at ``sigma = 0`` (EDM's Algorithm 1); Heun thus costs ``2N - 1``
    evaluations for ``N`` steps.
    """
    for t, t_next in itertools.pairwise(grid):
        d = drift(x, t)
        x_next = x + (t_next - t) * d
        if sampler == "heun" and t_next > 0:
            x_next = x + (t_next - t) * 0.5 * (d + drift(x_next, t_next))
        x = x_next
    return x


class Diffusion(GenerativeModel):
    arch = "diffusion"
    Config = DiffusionConfig
    ema_names = ("net",)
    train_labels: torch.Tensor  # buffers registered in __init__, typed here
    class_freq: torch.Tensor

    def __init__(self, cfg: DiffusionConfig, resolution: int = 128, channels: int = 1) -> None:
        super().__init__(cfg, resolution, channels)
        _validate(cfg)
        self.classes: list[str] = list(cfg.labels)
        try:
            self.nets["net"] = UNet(
                resolution, channels, channels, channels=cfg.channels, channel_mult=cfg.channel_mult,
                num_blocks=cfg.num_blocks, attn_resolutions=cfg.attn_resolutions, mid_attention=cfg.mid_attention,
                head_channels=cfg.head_channels, dropout=cfg.dropout, embedding=cfg.embedding,
                num_classes=len(self.classes),
            )
        except ValueError as exc:
            raise ConfigError(f"model.channel_mult {list(cfg.channel_mult)} at resolution {resolution}: {exc}") from exc
        # Per-frame class indices of the training set (set in setup) and the class frequencies, used to draw
        # labels when a conditional model is sampled without one (so its samples follow the data's mix).
        self.register_buffer("train_labels", torch.zeros(0, dtype=torch.long), persistent=False)
        k = max(len(self.classes), 1)
        self.register_buffer("class_freq", torch.full((k,), 1.0 / k), persistent=False)
        self.finish_init()

    # -- data ------------------------------------------------------------------------
    def setup(self, dataset: FrameFields, heldout: Any | None = None) -> None:
        """Take each training frame's label from the dataset's manifest fields (conditional models only)."""
        if not self.classes:
            return
        key = self.cfg.label_key
        values = dataset.field(key)
        missing = [i for i, v in enumerate(values) if not v]
        where = getattr(dataset, "source", None) or "the training data"
        if missing:
            raise ConfigError(
                f"model.labels is {self.classes} (a conditional model) but {len(missing)} of {len(values)} frames in "
                f"{where} have no {key!r} (first: {dataset.names[missing[0]]}); train on a manifest.csv with a "
                f"{key!r} column (the phantom, preprocessed EchoNet, or `python -m echolib preprocess study-frames` "
                f"for the study's <video>_f<k>.png frames), or set model.labels: [] for an unconditional model"
            )
        labels = [v for v in values if v]  # all of them: none is missing
        unknown = sorted(set(labels) - set(self.classes))
        if unknown:
            raise DataError(
                f"{where}: {key!r} values {unknown} are not in model.labels {self.classes}; add them to model.labels"
            )
        index = torch.tensor([self.classes.index(v) for v in labels], dtype=torch.long)
        self.train_labels = index.to(self.class_freq.device)
        self.class_freq = torch.bincount(index, minlength=len(self.classes)).double().div(len(index)).float().to(
            self.class_freq.device)

    def extra_state(self) -> dict[str, Any]:
        return {"class_freq": self.class_freq.detach().cpu()} if self.classes else {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        if self.classes and "class_freq" in state:
            self.class_freq = state["class_freq"].to(self.class_freq.device, torch.float32)

    # -- the two parameterisations ------------------------------------------------------
    def denoise(self, net: Callable[..., torch.Tensor], x: torch.Tensor, sigma: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        """EDM's preconditioned denoiser ``D(x; sigma)`` (fp32 in and out; ``net`` may run in bf16)."""
        sigma = sigma.float().reshape(-1, 1, 1, 1)
        c_skip, c_out, c_in, c_noise = edm_precond(sigma, self.cfg.sigma_data)
        out = net(c_in * x.float(), c_noise.flatten(), labels)
        return c_skip * x.float() + c_out * out.float()

    def velocity(self, net: Callable[..., torch.Tensor], x: torch.Tensor, t: torch.Tensor,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
        """Rectified-flow velocity ``v(x_t, t)``; ``t`` enters as ``1000 t``, DDPM's timestep scale."""
        return net(x.float(), 1000.0 * t.float().flatten(), labels).float()

    # -- training ---------------------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": make_adam(self.nets["net"].parameters(), self.cfg.lr, tuple(self.cfg.betas))}

    def train_step(self, ctx: StepContext, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        c = self.cfg
        real = ctx.next_real()
        x0 = real.images.float()
        b = ctx.batch
        labels = self._train_labels(ctx, real.index)
        noise = ctx.randn(b, *x0.shape[1:])
        if c.formulation == "edm":
            level = (ctx.randn(b) * c.p_std + c.p_mean).exp()  # sigma, log-normal
        else:
            level = torch.sigmoid(ctx.randn(b) * c.t_std + c.t_mean)  # t, logit-normal
        loss = self.per_sample_loss(self.fwd["net"], x0, level, noise, labels).mean()
        opt = optimizers["net"]
        ramp = min(1.0, (ctx.nimg + b) / (c.lr_rampup_kimg * 1000)) if c.lr_rampup_kimg > 0 else 1.0
        for group in opt.param_groups:
            group["lr"] = c.lr * ramp
        opt.zero_grad(set_to_none=True)
        backward(loss)
        opt.step()
        return {"loss": loss.detach()}

    def corrupt(self, x0: torch.Tensor, level: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x0`` at noise level ``level`` [B]: ``x0 + sigma n`` (edm) or ``(1 - t) x0 + t n`` (flow)."""
        level = level.float().reshape(-1, 1, 1, 1)
        if self.cfg.formulation == "edm":
            return x0 + level * noise
        return (1 - level) * x0 + level * noise

    def per_sample_loss(self, net, x0: torch.Tensor, level: torch.Tensor, noise: torch.Tensor,
                        labels: torch.Tensor | None = None) -> torch.Tensor:
        """The training loss of each frame ``[B]`` at its noise level (sigma for edm, t for flow), in fp32."""
        x = self.corrupt(x0, level, noise)
        if self.cfg.formulation == "edm":
            sigma = level.float().reshape(-1, 1, 1, 1)
            err = edm_loss_weight(sigma, self.cfg.sigma_data) * (self.denoise(net, x, sigma, labels) - x0).square()
        else:
            err = (self.velocity(net, x, level, labels) - (noise - x0)).square()
        return err.flatten(1).mean(1)

    @torch.no_grad()
    def predict_clean(self, x: torch.Tensor, level: torch.Tensor, labels: torch.Tensor | None = None, *,
                      use_ema: bool = True) -> torch.Tensor:
        """The network's estimate of the clean frame from ``x`` at ``level``: ``D(x; sigma)`` or ``x - t v``."""
        net = self.sampling_net("net", use_ema)
        with eval_mode(net):
            if self.cfg.formulation == "edm":
                return self.denoise(net, x, level, labels)
            return x.float() - level.float().reshape(-1, 1, 1, 1) * self.velocity(net, x, level, labels)

    @torch.no_grad()
    def level_losses(self, x0: torch.Tensor, levels: Sequence[float], generator: torch.Generator, *,
                     use_ema: bool = True) -> torch.Tensor:
        """Mean training loss on frames ``x0`` at each fixed noise level: where the model has learned what."""
        net = self.sampling_net("net", use_ema)
        with eval_mode(net):
            out = []
            for level in levels:
                noise = torch.randn(x0.shape, generator=generator, device=generator.device).to(x0.device)
                lv = torch.full((x0.shape[0],), float(level), device=x0.device)
                labels = None
                if self.classes:  # evaluate the unconditional model (the "no label" input)
                    labels = torch.zeros(x0.shape[0], len(self.classes), device=x0.device)
                out.append(self.per_sample_loss(net, x0.float(), lv, noise, labels).mean())
            return torch.stack(out)

    def _train_labels(self, ctx: StepContext, index: torch.Tensor) -> torch.Tensor | None:
        """One-hot labels of the batch, zeroed ("no label") with probability ``label_dropout``."""
        if not self.classes:
            return None
        if self.train_labels.numel() == 0:
            raise ConfigError("a conditional diffusion model needs setup(dataset) before training")
        onehot = F.one_hot(self.train_labels[index.to(self.train_labels.device)], len(self.classes)).float()
        keep = (ctx.rand(ctx.batch) >= self.cfg.label_dropout).float()
        return onehot * keep[:, None]

    # -- sampling ----------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator,
        *,
        use_ema: bool = True,
        steps: int | None = None,
        sampler: Sampler | None = None,
        label: str | int | Sequence[str | int] | torch.Tensor | None = None,
        guidance: float | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """``n`` frames in [-1, 1] by the deterministic ODE sampler; only the starting noise is random.

        ``label`` (conditional models): a class name or index for all ``n``, or one per
        frame; ``None`` draws labels with the training set's class frequencies.
        ``guidance`` ``w`` > 1 sharpens the class (costs two evaluations per call).
        """
        self.check_sample_options(options)
        c = self.cfg
        steps = c.steps if steps is None else int(steps)
        sampler = sampler or c.sampler
        w = c.guidance if guidance is None else float(guidance)
        if steps < 1:
            raise ConfigError(f"diffusion.sample: steps must be >= 1, got {steps}")
        if sampler not in SAMPLERS:
            raise ConfigError(f"diffusion.sample: sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        net = self.sampling_net("net", use_ema)
        with eval_mode(net):
            x = torch.randn(n, self.channels, self.resolution, self.resolution, generator=generator,
                            device=generator.device).to(self.device)
            labels = self._sample_labels(n, label, generator)
            if labels is not None and w != 1.0 and self.cfg.label_dropout <= 0:
                raise ConfigError("classifier-free guidance needs a model trained with model.label_dropout > 0; "
                                  "sample with guidance=1")
            predict = self._guided(net, labels, w)
            if c.formulation == "edm":
                grid = edm_sigmas(steps, c.sigma_min, c.sigma_max, c.rho)
                if sampler == "dpm2m":
                    x = solve_dpmpp_2m(predict, x * grid[0], grid, lambda s: (1.0, s))
                else:
                    x = solve_ode(lambda x, s: (x - predict(x, s)) / s, x * grid[0], grid, sampler)
            elif sampler == "dpm2m":
                x = solve_dpmpp_2m(lambda x, t: x - t * predict(x, t), x, flow_times(steps), lambda t: (1.0 - t, t))
            else:
                x = solve_ode(predict, x, flow_times(steps), sampler)
        return x.clamp(-1, 1)

    def _guided(self, net, labels: torch.Tensor | None, w: float) -> Callable[[torch.Tensor, float], torch.Tensor]:
        """``(x, t) -> D`` (edm) or ``v`` (flow), with classifier-free guidance when ``w != 1``."""
        raw = self.denoise if self.cfg.formulation == "edm" else self.velocity
        amp = (torch.autocast("cuda", dtype=torch.bfloat16)
               if self.cfg.sample_bf16 and self.device.type == "cuda" else nullcontext())

        def predict(x: torch.Tensor, t: float) -> torch.Tensor:
            tt = torch.full((x.shape[0],), t, device=x.device)
            with amp:
                if labels is None or w == 1.0:
                    return raw(net, x, tt, labels)
                both = raw(net, torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([labels, torch.zeros_like(labels)]))
            cond, uncond = both.chunk(2)
            return uncond + w * (cond - uncond)

        return predict

    def _sample_labels(self, n: int, label: Any, generator: torch.Generator) -> torch.Tensor | None:
        if not self.classes:
            if label is not None:
                raise ConfigError("this diffusion model is unconditional (model.labels is empty); sample without label")
            return None
        if label is None:
            index = torch.multinomial(self.class_freq.to(generator.device), n, replacement=True, generator=generator)
        elif isinstance(label, (str, int)):
            index = torch.full((n,), self.class_index(label), dtype=torch.long)
        else:
            items = label.tolist() if isinstance(label, torch.Tensor) else list(label)
            if len(items) != n:
                raise ConfigError(f"diffusion.sample: got {len(items)} labels for {n} samples")
            index = torch.tensor([self.class_index(v) for v in items], dtype=torch.long)
        return F.one_hot(index.to(self.device), len(self.classes)).float()

    def class_index(self, label: str | int) -> int:
        if isinstance(label, str) and label in self.classes:
            return self.classes.index(label)
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(self.classes):
            return label
        raise ConfigError(f"unknown label {label!r}; this model knows {self.classes} (or indices 0..{len(self.classes) - 1})")


def _validate(c: DiffusionConfig) -> None:
    """Settings that would train silently wrong: fail at construction, naming the field."""
    checks = [
        (c.channels > 0, "model.channels must be positive"),
        (len(c.channel_mult) >= 1 and all(m > 0 for m in c.channel_mult), "model.channel_mult must be positive ints"),
        (c.num_blocks >= 1, "model.num_blocks must be >= 1"),
        (0.0 <= c.dropout < 1.0, "model.dropout must be in [0, 1)"),
        (c.sigma_data > 0, "model.sigma_data must be positive"),
        (c.p_std > 0 and c.t_std > 0, "model.p_std and model.t_std must be positive"),
        (0 < c.sigma_min < c.sigma_max, "need 0 < model.sigma_min < model.sigma_max"),
        (c.rho > 0, "model.rho must be positive"),
        (c.steps >= 1, "model.steps must be >= 1"),
        (c.sampler in SAMPLERS, f"model.sampler must be one of {', '.join(SAMPLERS)}, got {c.sampler!r}"),
        (c.lr > 0 and math.isfinite(c.lr), "model.lr must be a positive number"),
        (c.lr_rampup_kimg >= 0, "model.lr_rampup_kimg must be >= 0"),
        (0.0 <= c.label_dropout < 1.0, "model.label_dropout must be in [0, 1)"),
        (len(set(c.labels)) == len(c.labels), f"model.labels has duplicates: {c.labels}"),
        (c.formulation == "edm" or c.embedding == "positional",
         "model.embedding 'fourier' is meant for edm's c_noise = ln(sigma)/4; use 'positional' with formulation flow"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
