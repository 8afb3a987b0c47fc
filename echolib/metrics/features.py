"""Feature extractors: the compact domain network ``echo`` and where every extractor's weights live.

Why a domain extractor: Inception-v3 was trained on ImageNet photographs; on
128x128 grayscale echocardiograms its features mostly encode texture statistics
that ImageNet cares about, and its weights (95 MB) cannot be downloaded on an
offline machine. ``echo`` is a small CNN (about 0.7 M parameters, under 3 MB)
trained by echolib on real EchoNet-Dynamic frames with self-supervised
contrastive learning (:mod:`echolib.metrics.train_extractor`), shipped in
``echolib/assets`` and identified by the sha256 of its weights file. It is
registered with torch-fidelity as a feature extractor, so
``torch_fidelity.calculate_metrics(..., feature_extractor="echo")`` computes
FID, KID and precision/recall on it with torch-fidelity's own code.

Its features are read at four depths: each channel's spatial mean and
standard deviation at the stem (24 channels) and the first two stages (48 and
96), and the means of the 256-d head that the contrastive loss trained, 592
numbers in all, each standardised with its mean and standard deviation over the
training frames (stored in the weights), so every feature has unit variance on
real data. Why not the head alone: contrastive learning keeps what tells one
frame from another (the heart, its size and position) and discards what all
real frames share, such as the straight edges of the sector and the grain of
the speckle, which is exactly what a generator may get wrong; shallow layers
still carry it. Why the spreads: every convolution is followed by GroupNorm,
which rescales each frame's activations, so a blurred frame's weaker fine-scale
responses barely move their means; their spread across the frame does.

The first extractor (``echo-v1``, means only, trained to ignore brightness
changes of +-10 %) ranked a blurry, darker set of samples ahead of the
study's crisp published samples; it stays selectable by name so that its
records remain readable, and a record names the weights it came from by
sha256. What each version's features respond to, checked on held-out videos,
is in its card (``echo_extractor.json``) and in the metric validation suite's
records (``python -m echolib metrics validate``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pickle
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from echolib.errors import ConfigError, DataError

ECHO = "echo"
ECHO_V1 = "echo-v1"
FEATURE = "pooled"  # torch-fidelity feature name of the echo embedding
ENV_ECHO_WEIGHTS = "ECHOLIB_ECHO_WEIGHTS"  # replaces the weights of "echo" (not of the kept earlier versions)
_ASSETS = Path(__file__).resolve().parents[1] / "assets"
#: the shipped echo extractors by name: the current one, and the first, kept so that its records stay readable
ECHO_ASSETS: dict[str, Path] = {ECHO: _ASSETS / "echo_extractor.pt", ECHO_V1: _ASSETS / "echo_extractor_v1.pt"}
ASSET_WEIGHTS = ECHO_ASSETS[ECHO]
RESOLUTION = 128
READOUTS = ("pooled", "moments")  # what a frame's features are made of (EchoEncoder.pooled)


class EchoEncoder(nn.Module):
    """Stride-2 stages of 3x3 convolutions, GroupNorm and SiLU, a 1x1 head; pooled features at four depths.

    GroupNorm rather than BatchNorm: a frame's features must not depend on the
    other frames of its batch, in training or evaluation.
    """

    feat_mean: torch.Tensor
    feat_std: torch.Tensor

    def __init__(self, widths: tuple[int, ...] = (24, 48, 96, 192), dim: int = 256, readout: str = "moments") -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ConfigError(f"echo extractor readout {readout!r}: expected one of {', '.join(READOUTS)}")
        self.widths, self.dim, self.readout = tuple(widths), dim, readout
        layers: list[nn.Module] = [*_conv(1, widths[0], stride=2)]
        taps = [len(layers) - 1]  # stem output
        for c_in, c_out in itertools.pairwise(widths):
            layers += [*_conv(c_in, c_out, stride=2), *_conv(c_out, c_out, stride=1)]
            taps.append(len(layers) - 1)
        layers += [nn.Conv2d(widths[-1], dim, 1)]
        self.body = nn.Sequential(*layers)
        # the last stage feeds the head linearly, so its own average would add nothing new
        self.taps = tuple(taps[:-1])
        per_tap = 2 if readout == "moments" else 1
        self.feature_dim = per_tap * sum(widths[:-1]) + dim
        # per-dimension standardisation measured on the training frames after training
        self.register_buffer("feat_mean", torch.zeros(self.feature_dim))
        self.register_buffer("feat_std", torch.ones(self.feature_dim))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The head's pooled output for float images in [-1, 1] ``[B, 1, 128, 128]``: what the loss trains."""
        return self.body(x).mean((2, 3))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Raw statistics at the stem, the early stages and the head: ``[B, feature_dim]``.

        ``pooled`` (the first extractor, ``echo-v1``): each channel's spatial
        mean. ``moments``: each channel's spatial mean *and* standard deviation
        at the stem and the early stages, then the head's means. Every
        convolution is followed by GroupNorm, which rescales a frame's
        activations to unit variance per group: a blurred or smoothed frame,
        whose fine-scale responses are weaker, looks almost the same in their
        means. How the responses vary across the frame (speckle, sharp walls,
        a crisp sector edge against a smeared one) is in their spread.
        """
        out = []
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i in self.taps:
                out.append(x.mean((2, 3)))
                if self.readout == "moments":
                    out.append(x.std((2, 3)))
        out.append(x.mean((2, 3)))
        return torch.cat(out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.pooled(x) - self.feat_mean) / self.feat_std


def _conv(c_in: int, c_out: int, stride: int) -> tuple[nn.Module, ...]:
    return (nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.GroupNorm(min(8, c_out // 4), c_out), nn.SiLU())


def prepare_uint8(x: torch.Tensor, resolution: int = RESOLUTION) -> torch.Tensor:
    """uint8 ``[B, C, H, W]`` (C = 1 or 3 equal channels) -> float ``[B, 1, 128, 128]`` in [-1, 1]."""
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"echo extractor expects uint8 [B, 1|3, H, W] images, got {x.dtype} {tuple(x.shape)}")
    x = x.float().mean(1, keepdim=True) if x.shape[1] == 3 else x.float()
    if x.shape[-2:] != (resolution, resolution):
        shrink = x.shape[-1] > resolution
        x = F.interpolate(x, size=(resolution, resolution), mode="area" if shrink else "bilinear", align_corners=None)
    return x.mul_(2.0 / 255.0).sub_(1.0)


# -- weights ---------------------------------------------------------------------
def echo_weights_path(path: str | Path | None = None, name: str = ECHO) -> Path:
    """The weights of echo extractor ``name``: ``path``, else (for ``echo``) ``$ECHOLIB_ECHO_WEIGHTS``, else shipped."""
    if name not in ECHO_ASSETS:
        raise ConfigError(f"unknown echo extractor {name!r}; shipped: {', '.join(ECHO_ASSETS)}")
    from_env = path is None and name == ECHO and bool(os.environ.get(ENV_ECHO_WEIGHTS))
    chosen = Path(path) if path is not None else Path(os.environ[ENV_ECHO_WEIGHTS]) if from_env else ECHO_ASSETS[name]
    if not chosen.is_file():
        hint = (f" (set by ${ENV_ECHO_WEIGHTS})" if from_env else "") + \
            "; train one with `python -m echolib.metrics.train_extractor --data FRAMES --out FILE`"
        raise ConfigError(f"echo extractor weights not found at {chosen}{hint}")
    return chosen


def file_sha256(path: str | Path) -> str:
    return _sha256_cached(str(Path(path).resolve()), *_stat_key(Path(path)))


def _stat_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def video_digest(video_id: str) -> str:
    """A short, salted digest naming a video in an extractor's card without listing EchoNet file names."""
    return hashlib.sha256(f"echolib-video:{video_id}".encode()).hexdigest()[:12]


def card_path(weights: str | Path) -> Path:
    """The JSON card written next to a weights file (recipe, data, sanity checks)."""
    return Path(weights).with_suffix(".json")


def training_video_digests(weights: str | Path) -> frozenset[str] | None:
    """Digests of the videos the weights were trained on, from their card; None when the card does not say."""
    card = card_path(weights)
    if not card.is_file():
        return None
    try:
        digests = json.loads(card.read_text()).get("data", {}).get("train_video_digests")
    except ValueError:
        return None
    return None if digests is None else frozenset(digests)


def load_echo_encoder(path: str | Path | None = None) -> EchoEncoder:
    """Build the encoder from a weights file (``weights_only=True``: tensors and plain metadata)."""
    path = echo_weights_path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        arch = state["arch"]
        model = EchoEncoder(tuple(arch["widths"]), int(arch["dim"]), str(arch.get("readout", "pooled")))
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise DataError(f"{path}: not an echo extractor weights file ({type(exc).__name__}: {exc})") from exc
    return model.eval().requires_grad_(False)


def echo_checkpoint(model: EchoEncoder, **meta: object) -> dict:
    """What a weights file holds: the architecture, the state dict and plain metadata."""
    return {
        "arch": {"widths": list(model.widths), "dim": model.dim, "resolution": RESOLUTION, "readout": model.readout},
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "meta": dict(meta),
    }


# -- torch-fidelity --------------------------------------------------------------
class FeatureExtractorEcho(FeatureExtractorBase):
    """torch-fidelity adapter: uint8 ``[B, 3, H, W]`` in, the standardised 424-d echo features out."""

    def __init__(self, name: str, features_list, feature_extractor_weights_path=None, **kwargs) -> None:
        super().__init__(name, features_list)
        self.encoder = load_echo_encoder(feature_extractor_weights_path)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = prepare_uint8(x)
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        feats = self.encoder(x).float()
        return tuple(feats for _ in self.features_list)

    @staticmethod
    def get_provided_features_list():
        return (FEATURE,)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return FEATURE

    @staticmethod
    def can_be_compiled():
        return True

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, RESOLUTION, RESOLUTION, dtype=torch.uint8)


def register() -> None:
    """Make ``feature_extractor="echo"`` (and the kept ``echo-v1``) known to torch-fidelity (idempotent)."""
    for name in ECHO_ASSETS:
        if name not in FEATURE_EXTRACTORS_REGISTRY:
            register_feature_extractor(name, FeatureExtractorEcho)


register()
