"""LPIPS (Zhang et al., 2018) with the VGG16 backbone, from local weights files only.

The study reported LPIPS. It needs two files that cannot be downloaded here:
torchvision's ImageNet VGG16 (``vgg16-397923af.pth``) and the LPIPS linear
layers (torch-fidelity's ``weights-vgg16-lpips.pth``). echolib reads them from
``$ECHOLIB_VGG16_WEIGHTS`` / ``$ECHOLIB_LPIPS_WEIGHTS`` or torch's hub cache (where
torchvision and torch-fidelity would have put them), always with
``weights_only=True``, and fails at once with the addresses when they are
missing. The network is torch-fidelity's LPIPS: same input normalisation, the
same five VGG16 stages, unit-normalised activations, learned 1x1 weights,
spatial average; images are compared at their own resolution.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch_fidelity.sample_similarity_lpips import (
    URL_VGG16_LPIPS,
    NetLinLayer,
    SampleSimilarityLPIPS,
    normalize_tensor,
    spatial_average,
)

from echolib.errors import ConfigError, DataError

ENV_LPIPS_WEIGHTS = "ECHOLIB_LPIPS_WEIGHTS"
ENV_VGG16_WEIGHTS = "ECHOLIB_VGG16_WEIGHTS"
URL_VGG16 = "https://download.pytorch.org/models/vgg16-397923af.pth"
CHANNELS = (64, 128, 256, 512, 512)
_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))  # VGG16 feature indices ending at relu1_2 ... relu5_3
NAME = "lpips-vgg16"


def _weights(env: str, url: str) -> Path:
    given = os.environ.get(env)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise ConfigError(f"${env} points to {path}, which is not a file")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if cached.is_file():
        return cached
    raise ConfigError(f"LPIPS needs {url}: download it and save it as {cached}, or set ${env} to its path")


def lpips_weights_paths() -> tuple[Path, Path]:
    """(VGG16 weights, LPIPS linear-layer weights), or a ConfigError saying where to put them."""
    return _weights(ENV_VGG16_WEIGHTS, URL_VGG16), _weights(ENV_LPIPS_WEIGHTS, URL_VGG16_LPIPS)


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors come in many types
        raise DataError(f"{path}: not a plain weights file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise DataError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


class LPIPS(nn.Module):
    """``forward(a, b)`` on uint8 ``[B, 1|3, H, W]`` pairs -> ``[B]`` perceptual distances (the metric).

    :meth:`distance` is the same network on float images in [-1, 1] with
    gradients, for training (VQGAN's perceptual loss, :class:`LPIPSLoss`).
    """

    def __init__(self, vgg_path: str | Path | None = None, lin_path: str | Path | None = None) -> None:
        super().__init__()
        if vgg_path is None or lin_path is None:
            default_vgg, default_lin = lpips_weights_paths()
            vgg_path, lin_path = vgg_path or default_vgg, lin_path or default_lin
        features = torchvision.models.vgg16(weights=None).features
        vgg_state = {k[len("features.") :]: v for k, v in _load(Path(vgg_path)).items() if k.startswith("features.")}
        try:
            features.load_state_dict(vgg_state)
        except RuntimeError as exc:
            raise DataError(f"{vgg_path}: not torchvision VGG16 weights ({exc})") from exc
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in _SLICES)
        for i, c in enumerate(CHANNELS):
            setattr(self, f"lin{i}", NetLinLayer(c, use_dropout=True))
        lin_state = _load(Path(lin_path))
        try:
            nn.ModuleDict({f"lin{i}": getattr(self, f"lin{i}") for i in range(5)}).load_state_dict(lin_state)
        except RuntimeError as exc:
            raise DataError(f"{lin_path}: not LPIPS VGG16 linear-layer weights ({exc})") from exc
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.dtype != torch.uint8:
            raise ValueError(
                f"LPIPS compares uint8 pairs of equal shape, got {a.dtype} {tuple(a.shape)}, {tuple(b.shape)}"
            )
        return self._compare(_rgb(a), _rgb(b))

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``[B]`` distances of float ``[B, 1|3, H, W]`` images in [-1, 1]; differentiable in ``x`` and ``y``."""
        return self._compare(_rgb(x + 1.0) * 127.5, _rgb(y + 1.0) * 127.5)

    def _compare(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances of RGB images on the 0-255 scale (uint8, or float for gradients)."""
        x, y = SampleSimilarityLPIPS.normalize(a), SampleSimilarityLPIPS.normalize(b)
        total = x.new_zeros(len(a))
        for i, stage in enumerate(self.slices):
            x, y = stage(x), stage(y)
            diff = (normalize_tensor(x) - normalize_tensor(y)) ** 2
            total = total + spatial_average(getattr(self, f"lin{i}").model(diff)).reshape(len(a))
        return total


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class LPIPSLoss(nn.Module):
    """LPIPS as a frozen training loss: ``(x, y) -> [B]`` for images in [-1, 1], gradients to the images only."""

    def __init__(self, lpips: LPIPS | None = None) -> None:
        super().__init__()
        self.lpips = lpips if lpips is not None else LPIPS()
        self.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.lpips.distance(x, y)


def lpips_available() -> bool:
    """Whether both weights files are here (nothing is downloaded)."""
    try:
        lpips_weights_paths()
    except ConfigError:
        return False
    return True


@torch.no_grad()
def lpips_pairs(model: LPIPS, a: torch.Tensor, b: torch.Tensor, device: torch.device, batch: int = 64) -> torch.Tensor:
    """LPIPS of each pair ``(a[i], b[i])`` on ``device``: float32 CPU ``[N]``."""
    model = model.to(device)
    return torch.cat(
        [model(a[s : s + batch].to(device), b[s : s + batch].to(device)).float().cpu() for s in range(0, len(a), batch)]
    )
