"""One representation for every image set a metric may compare.

Real frames come as folders, zips or manifests; generated images as a folder of
samples, a tensor, or a model's sampler that draws them on demand. Metrics all
need the same thing: ``uint8 [N, 1, H, W]`` on the CPU plus, where known, the
video each image belongs to (memorization is calibrated on same-video pairs,
the classifier test holds out whole videos). :func:`as_image_set` makes that
from any of the inputs, drawing a fixed number of images with a seeded
generator where a choice is needed, so evaluations are reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from echolib.data.frames import FrameDataset
from echolib.errors import DataError
from echolib.images import to_uint8

Sampler = Callable[[int, torch.Generator], torch.Tensor]
SAMPLE_BATCH = 250


@dataclass
class ImageSet:
    """uint8 ``[N, 1, H, W]`` CPU images; ``video_ids`` name a video per image (its own name if unknown).

    ``cacheable`` is False for fresh draws from a sampler: caching their features
    would only fill the disk, since the next evaluation draws other images.
    """

    images: torch.Tensor
    video_ids: list[str]
    label: str
    cacheable: bool = True

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def has_videos(self) -> bool:
        """True when some video contributes several frames (so same-video pairs exist)."""
        return len(set(self.video_ids)) < len(self.video_ids)

    def fingerprint(self) -> str:
        """sha256 of the pixels and shape: the key under which features are cached."""
        h = hashlib.sha256(str(tuple(self.images.shape)).encode())
        h.update(self.images.contiguous().numpy().tobytes())
        return h.hexdigest()

    def subset(self, idx: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[idx], [self.video_ids[int(i)] for i in idx], self.label, self.cacheable)


def as_image_set(
    source,
    *,
    n: int | None = None,
    seed: int = 0,
    label: str | None = None,
    resolution: int | None = None,
    device: str | torch.device = "cpu",
) -> ImageSet:
    """A path, :class:`FrameDataset`, uint8/float tensor or sampler ``(n, generator) -> [-1, 1]`` as an ImageSet.

    ``n`` caps a fixed set to a seeded random subset (whole set when ``n`` is
    None or larger) and is the number of images drawn from a sampler (required
    then; its generator lives on ``device``, where the model is). Float tensors
    are read as model outputs in [-1, 1].
    """
    if isinstance(source, ImageSet):
        out = source
    elif isinstance(source, (str, Path)):
        ds = FrameDataset(source, resolution=resolution)
        out = ImageSet(ds.images.cpu(), ds.video_ids, label or str(source))
    elif isinstance(source, FrameDataset):
        out = ImageSet(source.images.cpu(), source.video_ids, label or str(source.source or "dataset"))
    elif isinstance(source, torch.Tensor):
        images = _as_uint8(source, "tensor")
        out = ImageSet(images, [f"img{i}" for i in range(len(images))], label or "tensor")
    elif callable(source):
        if n is None:
            raise DataError("a sampler needs n, the number of images to draw")
        images = draw(source, n, seed, device)
        return ImageSet(images, [f"sample{i}" for i in range(n)], label or "sampler", cacheable=False)
    else:
        raise DataError(
            f"cannot evaluate a {type(source).__name__}: pass a folder/zip/manifest path, a FrameDataset, "
            "a uint8 [N, 1, H, W] tensor or a sampler (n, generator) -> images in [-1, 1]"
        )
    if len(out) == 0:
        raise DataError(f"{out.label}: no images")
    if n is not None and n < len(out):
        g = torch.Generator().manual_seed(seed)
        out = out.subset(torch.randperm(len(out), generator=g)[:n].sort().values)
    return out


@torch.no_grad()
def draw(sampler: Sampler, n: int, seed: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` images from a sampler in batches, one generator on ``device`` seeded with ``seed``: uint8 CPU."""
    g = torch.Generator(device=device).manual_seed(seed)
    chunks = []
    for start in range(0, n, SAMPLE_BATCH):
        images = sampler(min(SAMPLE_BATCH, n - start), g)
        chunks.append(_as_uint8(images, "sampler output"))
    return torch.cat(chunks)


def _as_uint8(images: torch.Tensor, what: str) -> torch.Tensor:
    if images.dim() == 3:
        images = images[:, None]
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise DataError(f"{what}: expected [N, 1, H, W] images, got shape {tuple(images.shape)}")
    if images.shape[1] == 3:
        images = images[:, :1] if images.dtype == torch.uint8 else images.mean(1, keepdim=True)
    if images.dtype == torch.uint8:
        return images.cpu().contiguous()
    if not images.is_floating_point():
        raise DataError(f"{what}: expected uint8 or float images, got {images.dtype}")
    return to_uint8(images).cpu().contiguous()
