"""Trainer settings shared by every architecture (the ``train:`` block of a config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from echolib.errors import ConfigError


@dataclass
class TrainConfig:
    kimg: float = 1000.0  # training length: thousands of real images shown to the discriminator/model
    batch: int = 32  # global batch size (split evenly over DDP ranks)
    resolution: int = 128  # square frame size; a power of two the architecture supports
    seed: int = 0  # seeds data order, latents and initial weights; same seed on CPU -> same bytes
    tick_kimg: float = 4.0  # a tick (one log.csv row, one progress update) every this many kimg
    snapshot_kimg: float = 40.0  # checkpoint every this many kimg (rounded to whole ticks); 0 = only at the end
    sample_kimg: float = 40.0  # sample grid from fixed latents every this many kimg; 0 = only at the end
    grid_size: int = 32  # images in each sample grid
    keep_last: int = 3  # checkpoints to keep besides best.pt
    ema_kimg: float = 10.0  # EMA half-life of the generator in kimg (StyleGAN2-ADA: batch * 10 / 32)
    ema_rampup: float | None = 0.05  # EMA half-life is at most this fraction of kimg so far; null = off
    # bf16 autocast of the networks (weights, optimizer, losses and EMA stay fp32): auto = on CUDA only;
    # bf16 = on CUDA and the CPU (fast with AVX512-BF16/AMX, slower than fp32 without); fp32 = never
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    # layout of activations and weights: auto = channels_last on CUDA, contiguous on the CPU (where channels_last
    # speeds up only some networks: measured per cpu64 config); channels_last / contiguous = on every device
    memory_format: Literal["auto", "channels_last", "contiguous"] = "auto"
    compile: bool = False  # torch.compile the networks (falls back to eager if compilation fails)
    cudnn_benchmark: bool = True  # on CUDA let cuDNN time its algorithms per shape (training shapes are fixed)
    holdout: float = 0.1  # fraction of videos never trained on (held-out evaluation); 0 = train on every frame
    holdout_seed: int = 0  # seed of the by-video hash that picks the held-out videos
    data_on_device: bool = True  # keep the uint8 dataset resident on the training device
    metrics_kimg: float = 0.0  # compute metrics every this many kimg during training; 0 = never
    metrics: list[str] = field(default_factory=lambda: ["fid", "kid"])  # which metrics during training
    metrics_extractor: str = "echo"  # feature extractor for metrics during training
    metrics_n: int = 1000  # generated images per metric evaluation during training
    tensorboard: bool = True  # also write TensorBoard event files next to log.csv


#: settings that change how a run is carried out, not what it computes: a resumed run may change them
RUNTIME_SETTINGS = frozenset({"kimg", "compile", "cudnn_benchmark", "data_on_device", "tensorboard", "memory_format"})


def upgrade_train_block(train: dict[str, Any] | None, source: str = "config") -> dict[str, Any] | None:
    """A ``train:`` block with the spellings of older echolib versions replaced by today's.

    Run folders keep the ``config.yaml`` they were started with, so a resumed or
    re-read run may still say ``bf16: true`` (echolib before ``precision``
    existed: bf16 on CUDA, fp32 on the CPU, which is ``precision: auto``) or
    ``bf16: false`` (``fp32``). Both spellings at once would be ambiguous.
    """
    if not isinstance(train, dict) or "bf16" not in train:
        return train
    out = dict(train)
    old = out.pop("bf16")
    if not isinstance(old, bool):
        raise ConfigError(f"{source}: train.bf16 (the old spelling of train.precision) must be true or false, got {old!r}")
    if "precision" in out:
        raise ConfigError(f"{source}: train.bf16 and train.precision both given; keep only precision")
    out["precision"] = "auto" if old else "fp32"
    return out
