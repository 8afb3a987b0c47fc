"""The small protocol every architecture implements so one trainer drives them all.

A model owns its networks (``nets``), their EMA copies (``ema``), and knows how
to take one training step and how to sample. The trainer owns everything else:
data, the kimg clock, randomness, mixed precision, compilation, distribution,
EMA updates, logging, checkpoints and metrics.

Rules that keep training exactly resumable and DDP-equivalent:

* All randomness in ``train_step`` comes from ``ctx`` (``ctx.randn`` etc.). These
  draw the *global* batch with a generator seeded from ``(seed, step)`` and
  return this rank's slice, so one process with batch 32 and two processes with
  batch 16 each see the same numbers, and a resumed run the same as an
  uninterrupted one.
* Real images come from ``ctx.next_real()``; the trainer counts every real image
  drawn towards kimg, so a WGAN taking five critic steps per generator step is
  charged for five batches, as StyleGAN2-ADA counts images shown to D.
* Call ``self.fwd[name]`` (possibly DDP-wrapped and compiled) only in the phase
  that updates that network. Elsewhere call ``self.peer[name]`` (compiled too,
  never DDP-wrapped, so DDP never waits for gradients that are not coming),
  inside ``with frozen(net):`` when gradients flow through it: a compiled graph
  then leaves out the weight gradients nobody asked for.
* Differentiate with :func:`backward` (autocast off), not ``loss.backward()``:
  autocast is for forward passes only.
* Return losses as detached 0-dim tensors; never call ``.item()`` in a step (it
  stalls the GPU). The trainer averages them per tick with one host sync.

What a model needs from outside is handed in, never fetched: the frames through
``ctx`` and :meth:`GenerativeModel.setup`, perceptual distances through
:meth:`GenerativeModel.use_perceptual` (a :class:`PerceptualLosses`), and an
image-conditioned model's condition maps (named by its :meth:`GenerativeModel.condition_spec`)
in each real batch while training and as ``sample(condition=...)`` when sampling.
A model stores no conditions, so what ``sample`` returns depends only on its
weights and its arguments, never on whether the object came from a trainer or a
checkpoint. A model module imports nothing from ``echolib.metrics``,
``echolib.data`` or ``echolib.report`` and reads no weights files of its own.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn

from echolib.errors import ConfigError


@dataclass
class RealBatch:
    """A local batch of real frames: floats in [-1, 1], their dataset indices, and their condition maps if asked."""

    images: torch.Tensor  # [B, 1, H, W] float in [-1, 1]
    index: torch.Tensor  # [B] long, positions in the training dataset
    conditions: torch.Tensor | None = None  # [B, C, H, W] uint8 maps of these frames (image-conditioned models)


@dataclass(frozen=True)
class ConditionSpec:
    """Which map of a frame an image-conditioned model translates; the caller computes it from frames.

    ``kind`` is ``"canny"`` (the frame's contours, with hysteresis thresholds
    ``low`` and ``high``) or ``"mask"`` (its left-ventricle mask).
    """

    kind: Literal["canny", "mask"]
    low: int = 100
    high: int = 200


def local_slice(tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s share of a tensor drawn for the global batch (its first dimension)."""
    if world_size == 1:
        return tensor
    n = tensor.shape[0]
    if n % world_size:
        raise ValueError(f"global batch {n} is not divisible by world size {world_size}")
    k = n // world_size
    return tensor[rank * k : (rank + 1) * k]


@dataclass
class StepContext:
    """Everything a training step may depend on besides the model's own state."""

    step: int
    nimg: int
    batch: int  # global batch size (sum over ranks)
    device: torch.device
    generator: torch.Generator
    next_real: Callable[[], RealBatch]
    rank: int = 0
    world_size: int = 1
    autocast: Callable[[], AbstractContextManager] = field(default=nullcontext)
    channels_last: bool = False  # the trainer keeps networks and real batches channels_last: inputs a model makes follow

    # Global draws, local slices: see the module docstring.
    def local(self, tensor: torch.Tensor) -> torch.Tensor:
        return local_slice(tensor, self.rank, self.world_size)

    def randn(self, *global_shape: int) -> torch.Tensor:
        return self.local(torch.randn(global_shape, generator=self.generator, device=self.device))

    def rand(self, *global_shape: int) -> torch.Tensor:
        return self.local(torch.rand(global_shape, generator=self.generator, device=self.device))

    def randint(self, high: int, *global_shape: int) -> torch.Tensor:
        return self.local(torch.randint(high, global_shape, generator=self.generator, device=self.device))


class FrameFields(Protocol):
    """What a model may read of the frames the trainer hands to :meth:`GenerativeModel.setup`.

    :class:`echolib.data.frames.FrameDataset` implements it: each frame's name and
    its manifest fields, so a model that needs labels (a phase-conditioned
    diffusion model) takes them from the dataset rather than reading files.
    """

    @property
    def names(self) -> list[str]:
        """Each frame's file name, in dataset order."""
        ...

    def field(self, column: str) -> list[str | None]:
        """Each frame's cell of manifest ``column`` as text; None where the frame has none."""
        ...


class PerceptualLosses(Protocol):
    """The perceptual distances the trainer offers a model (:mod:`echolib.metrics.perceptual` implements it).

    Names: ``lpips``, ``echo`` (the domain extractor's features) and ``none``;
    ``auto`` resolves to the best whose weights are present here.
    """

    def resolve(self, kind: str) -> str:
        """``auto`` -> ``lpips``, ``echo`` or ``none`` by the weights present; any other name unchanged."""
        ...

    def build(self, kind: str, device: torch.device) -> nn.Module | None:
        """A frozen ``(x, y) -> [B]`` distance for images in [-1, 1] on ``device``; None for ``none``."""
        ...

    def weights_sha256(self, kind: str) -> str | None:
        """The sha256 of the weights behind ``kind`` (for ``run.json``); None for ``none``."""
        ...


class GenerativeModel(nn.Module):
    """Base class: subclasses set ``arch``, ``Config`` and implement the abstract methods."""

    arch: ClassVar[str] = ""
    Config: ClassVar[type] = object
    #: names in ``nets`` that get an exponential moving average (sampling uses it)
    ema_names: ClassVar[tuple[str, ...]] = ()
    #: True when every sample translates a map computed from a frame (Pix2Pix's contours or masks):
    #: the trainer and every sampler hand it the maps :meth:`condition_spec` names, of frames it never trained on
    image_conditioned: ClassVar[bool] = False
    #: folder of named YAML configs (``smoke.yaml``, ``E1.yaml``, ...); None: ``echolib/configs/<arch>``
    config_dir: ClassVar[str | Path | None] = None

    def __init__(self, cfg: Any, resolution: int = 128, channels: int = 1) -> None:
        super().__init__()
        check_resolution(resolution, self.supported_resolutions())
        self.cfg = cfg
        self.resolution = resolution
        self.channels = channels
        self.nets = nn.ModuleDict()
        self.ema = nn.ModuleDict()
        #: callables used in training steps; the trainer may swap in DDP/compiled wrappers
        self.fwd: dict[str, Callable[..., Any]] = {}
        #: the same networks for phases that do not update them: compiled by the trainer if asked, never DDP
        self.peer: dict[str, Callable[..., Any]] = {}

    # -- construction helpers -------------------------------------------
    def supported_resolutions(self) -> tuple[int, ...]:
        return (64, 128, 256)

    def finish_init(self) -> None:
        """Call at the end of a subclass ``__init__``: builds EMA copies and forward table."""
        for name in self.ema_names:
            self.ema[name] = copy.deepcopy(self.nets[name]).eval().requires_grad_(False)
        self.fwd = {name: net for name, net in self.nets.items()}
        self.peer = dict(self.fwd)

    # -- protocol ---------------------------------------------------------
    def setup(self, dataset: Any, heldout: Any | None = None) -> None:
        """Called once by the trainer with the training split and the held-out split (or None).

        For what a model derives from the data before training (e.g. the class
        labels a label-conditioned model learns); the held-out videos are never trained on.
        """

    def use_perceptual(self, losses: PerceptualLosses) -> None:
        """Called by the trainer (and by anything else that trains the model) before :meth:`setup`.

        A model whose loss includes a perceptual distance keeps ``losses`` and
        builds the one it needs from it; the others ignore it.
        """

    def condition_spec(self) -> ConditionSpec:
        """The map of a frame this model translates (image-conditioned models only); callers compute it."""
        raise ConfigError(f"{self.arch}: not image-conditioned; it translates no maps of frames")

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, ctx: StepContext, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, *, use_ema: bool = True, **options: Any) -> torch.Tensor:
        """``n`` images, floats in [-1, 1], ``[n, C, H, W]`` on the model's device."""
        raise NotImplementedError

    def sample_options(self) -> list[str]:
        """The keyword options this model's :meth:`sample` takes, read from its signature."""
        params = list(inspect.signature(type(self).sample).parameters.values())[3:]  # after self, n, generator
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in params if p.kind in named and p.name != "use_ema"]

    def check_sample_options(self, options: Mapping[str, Any]) -> None:
        """Refuse options :meth:`sample` does not take, before any work is done.

        A ``--truncation`` meant for StyleGAN2 must not pass silently through
        another model, nor fail only after a progress bar has started.
        """
        if not options:
            return
        accepted = self.sample_options()
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            takes = ", ".join(accepted) or "none"
            raise ConfigError(f"{self.arch} sampling: unknown option(s) {', '.join(unknown)}; it takes {takes}")

    def previews(self) -> dict[str, tuple[torch.Tensor, int]]:
        """Image grids the trainer writes beside each sample grid, as ``samples/<name>-<kimg>.png``.

        For what a sample grid cannot show yet: a VQGAN's samples mean nothing
        before its prior trains, but its reconstructions show how stage 1 goes.
        Each entry is float images ``[N, C, H, W]`` in [-1, 1] and the images per row.
        """
        return {}

    def run_facts(self) -> dict[str, Any]:
        """What this model decided at run time that its configuration leaves open; ``run.json`` keeps it.

        E.g. VQGAN's ``perceptual: auto`` becomes LPIPS or the echo extractor
        depending on the weights present, which changes what the run optimised.
        """
        return {}

    def tick_stats(self) -> dict[str, torch.Tensor | float]:
        """Extra values to log once per tick (e.g. ADA's p); may hold device tensors."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        """Plain tensors/numbers (no objects) that a checkpoint must carry besides weights."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        pass

    # -- conveniences -------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def sampling_net(self, name: str, use_ema: bool) -> nn.Module:
        return self.ema[name] if use_ema and name in self.ema else self.nets[name]


@contextmanager
def eval_mode(*nets: nn.Module) -> Iterator[None]:
    """``nets`` in eval mode inside the block (no dropout, running norm statistics); their modes are restored after.

    Sampling happens between training steps, on the raw networks as well as the
    EMA copies, and must neither draw dropout masks from the global RNG nor move
    batch-norm statistics.
    """
    modes = [[m.training for m in net.modules()] for net in nets]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for net, flags in zip(nets, modes, strict=True):
            for m, flag in zip(net.modules(), flags, strict=True):
                m.training = flag


@contextmanager
def frozen(*nets: nn.Module) -> Iterator[None]:
    """Parameters of ``nets`` do not require gradients inside the block; their flags are restored after.

    A phase that differentiates through a network it does not update (the
    discriminator in a generator step) then records no weight gradients: eager
    autograd would prune them anyway given ``backward(inputs=...)``, but a
    compiled graph fixes at trace time what its backward computes. This is how
    the official StyleGAN2-ADA loop sets ``requires_grad`` per phase.
    """
    params = [p for net in nets for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def backward(loss: torch.Tensor, inputs: list[torch.Tensor] | None = None) -> None:
    """``loss.backward(inputs=inputs)`` with autocast off: every gradient op in the dtype its forward ran in.

    The trainer runs a whole step under autocast, and on the CPU a backward
    pass runs in the calling thread with that thread's autocast state: the
    gradient matmuls and convolutions of the parts a model keeps in fp32 on
    purpose (R1's and the gradient penalty's second derivatives, augmentation,
    modulation, a diffusion model's loss weighting) would be cast to bf16.
    With autocast off here the parts that ran in bf16 still differentiate in
    bf16 (their saved tensors and gradients are bf16), the rest in fp32.
    """
    with torch.autocast(loss.device.type, enabled=False):
        loss.backward(inputs=inputs)


def uncompiled(fn: Any) -> Any:
    """The eager callable behind a compiled one (kept DDP-wrapped): for double-backward phases.

    AOTAutograd cannot differentiate a compiled graph twice, and R1 and the path
    length penalty are gradients of gradients. Understands torch's
    ``OptimizedModule`` (``_orig_mod``) and the trainer's compile fallback (``eager``).
    """
    for attr in ("eager", "_orig_mod"):
        inner = getattr(fn, attr, None)
        if inner is not None:
            return uncompiled(inner)
    return fn


def check_resolution(resolution: int, supported: tuple[int, ...]) -> None:
    if not isinstance(resolution, int) or resolution <= 0 or resolution & (resolution - 1):
        raise ConfigError(f"resolution must be a power of two, got {resolution!r}")
    if resolution not in supported:
        raise ConfigError(f"resolution {resolution} not supported; choose one of {', '.join(map(str, supported))}")


def make_adam(
    params: Any, lr: float, betas: tuple[float, float] = (0.0, 0.99), eps: float = 1e-8, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """Adam, fused on CUDA and CPU (one kernel for all parameters, no host reads of the step count), plain elsewhere."""
    params = [p for p in params if p.requires_grad]
    fused = bool(params) and params[0].device.type in ("cuda", "cpu")
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused or None)
