"""Loading a trained model from a run folder and writing samples from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from echolib.devices import resolve_device
from echolib.errors import CheckpointError, ConfigError, TrainingError
from echolib.images import save_batch
from echolib.models.base import GenerativeModel, eval_mode
from echolib.progress import progress_bar
from echolib.train import checkpoint as ckpt
from echolib.train.run_config import build_model, from_plain
from echolib.train.run_folder import RunFolder


def find_checkpoint(run: str | Path, kimg: float | None = None) -> Path:
    """A checkpoint file, or the latest (or the one nearest ``kimg``) in a run folder."""
    if Path(run).is_file():
        return Path(run)
    folder = RunFolder(run)
    found = folder.checkpoints()
    if not found:
        raise CheckpointError(f"{run} holds no checkpoints (expected {folder.checkpoints_dir}/ckpt-*.pt)")
    if kimg is None:
        return found[-1]
    return min(found, key=lambda p: abs(ckpt.checkpoint_kimg(p) - kimg))


def load_model(run: str | Path, *, kimg: float | None = None, device: str = "auto") -> tuple[GenerativeModel, Path]:
    """Rebuild the model from the checkpoint's own config and load its weights (weights_only)."""
    path = find_checkpoint(run, kimg)
    dev = resolve_device(device)
    state = ckpt.load(path, map_location="cpu")
    cfg = state["config"]
    run_cfg = from_plain(cfg["arch"], cfg.get("name", "checkpoint"), cfg, str(path))
    if run_cfg.arch != state["arch"]:
        raise CheckpointError(f"checkpoint {path}: config says {run_cfg.arch!r} but arch is {state['arch']!r}")
    model = build_model(run_cfg)
    for name, net in model.nets.items():
        ckpt.load_state_strict(net, state["nets"][name], f"network {name!r}", path)
    for name, net in model.ema.items():
        ckpt.load_state_strict(net, state["ema"][name], f"EMA network {name!r}", path)
    model.load_extra_state(state.get("extra", {}))
    model.to(dev).eval()
    return model, path


class SamplingStopped(Exception):
    """A sampler gave up between chunks because its ``stop`` callback said so (the trainer got a signal)."""


def model_sampler(
    model: GenerativeModel,
    batch: int = 64,
    use_ema: bool = True,
    stop: Callable[[], bool] | None = None,
    **options: Any,
):
    """``(n, generator) -> float images [-1, 1]`` in chunks, for metrics and sampling.

    ``stop`` is asked before every chunk: generating a metric's thousands of
    images takes minutes on a CPU, and a trainer told to stop should not make
    its user (or the cluster's kill timer) wait for an evaluation it will redo.
    """

    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        chunks = []
        with eval_mode(model):
            for i in range(0, n, batch):
                if stop is not None and stop():
                    raise SamplingStopped(f"sampling stopped after {i} of {n} images")
                chunks.append(model.sample(min(batch, n - i), generator, use_ema=use_ema, **options).cpu())
        return torch.cat(chunks)

    return sample


def check_samples(samples: torch.Tensor, n: int, channels: int, resolution: int, min_spread: float = 1e-3) -> None:
    """Refuse a batch that no working generator returns: wrong shape, NaN/Inf, outside [-1, 1], one image repeated.

    ``min_spread`` bounds the per-pixel standard deviation across samples,
    averaged over pixels: zero exactly when every sample is the same image
    (a generator collapsed to a point), whatever that image looks like.
    """
    expected = (n, channels, resolution, resolution)
    if tuple(samples.shape) != expected:
        raise TrainingError(f"samples have shape {tuple(samples.shape)}, expected {expected}")
    bad = int((~torch.isfinite(samples)).sum())
    if bad:
        raise TrainingError(f"{bad} of {samples.numel()} sample values are NaN or infinite")
    lo, hi = float(samples.min()), float(samples.max())
    if lo < -1 or hi > 1:
        raise TrainingError(f"sample values span [{lo:.3g}, {hi:.3g}], expected images in [-1, 1]")
    spread = float(samples.float().std(dim=0).mean()) if n > 1 else float("inf")
    if spread < min_spread:
        raise TrainingError(f"all {n} samples are the same image (spread across samples {spread:.2e} < {min_spread:g})")


def checked_samples(
    model: GenerativeModel, n: int = 32, seed: int = 0, *, batch: int = 32, min_spread: float = 1e-3, **options: Any
) -> torch.Tensor:
    """``n`` samples of the EMA model from ``seed``, passed through :func:`check_samples`.

    The closing cell of every architecture notebook: under ``pytest --nbval``
    it is what fails when a change leaves a model emitting NaNs, values out
    of range or a single repeated image, rather than a grid nobody reads.
    """
    g = torch.Generator(device=model.device).manual_seed(seed)
    samples = model_sampler(model, batch=batch, **options)(n, g)
    check_samples(samples, n, model.channels, model.resolution, min_spread)
    return samples


def write_samples(
    model: GenerativeModel,
    n: int,
    out: str | Path,
    *,
    seed: int = 0,
    batch: int = 64,
    use_ema: bool = True,
    progress: bool = True,
    **options: Any,
) -> list[Path]:
    """``img_00000.png ...``; the same seed, batch and device give the same files."""
    if batch <= 0:
        raise ConfigError(f"batch must be a positive number of images per forward pass, got {batch}")
    model.check_sample_options(options)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator(device=model.device).manual_seed(seed)
    written: list[Path] = []
    model.eval()
    with progress_bar(total=n, enabled=progress, unit="img", desc="sampling") as bar:
        for start in range(0, n, batch):
            k = min(batch, n - start)
            images = model.sample(k, g, use_ema=use_ema, **options)
            written += save_batch(images, out, start=start)
            bar.update(k)
    return written
