"""Memorization: is a generated image a copy of a training image?

For every generated image we find its nearest training image, in the feature
space of the extractor and in pixel space (64x64 area-averaged intensities,
:func:`echolib.metrics.pixel.pixel_vectors`). A distance means nothing on its
own, so it is calibrated on real data where the answer is known: the frames of
one EchoNet video are near-duplicates of each other (same heart, same probe
position, a fraction of a second apart). For each training frame we measure the
distance to the nearest *other frame of its own video*; the threshold is the
``quantile`` (default 0.1) of those distances. A generated image is flagged when
it is closer to some training image than that: closer than nine in ten
same-video pairs of real frames are to each other. ``memorized_fraction`` is the
share flagged.

An exact copy of a training frame has distance 0 and is always flagged; a frame
of a video the model never saw is, with features that separate hearts, further
from every training frame than its own video's frames would be, and is not.
:func:`closest_pairs` returns the gallery of the closest (generated, training)
pairs for the book.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from echolib.errors import DataError
from echolib.metrics.pixel import nearest_neighbours, pixel_vectors

DEFAULT_QUANTILE = 0.1


@dataclass
class Memorization:
    """Result of one search: the flagged share, the threshold, and each generated image's nearest training image."""

    fraction: float  # share of generated images below the threshold
    threshold: float  # calibrated distance (quantile of same-video nearest distances)
    quantile: float  # which quantile of the same-video distances is the threshold
    nn_distance: torch.Tensor  # [n_fake] distance to the nearest training image
    nn_index: torch.Tensor  # [n_fake] index of that training image
    calibration: torch.Tensor  # same-video nearest distances of the training frames
    space: str  # "features" or "pixel"


def same_video_distances(vectors: torch.Tensor, video_ids: list[str]) -> torch.Tensor:
    """For each frame that shares its video with others: distance to the nearest other frame of that video."""
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(video_ids):
        groups.setdefault(v, []).append(i)
    out = []
    for idx in groups.values():
        if len(idx) < 2:
            continue
        v = vectors[idx]
        d = torch.cdist(v.double(), v.double())
        d.fill_diagonal_(float("inf"))
        out.append(d.min(1).values)
    if not out:
        raise DataError(
            "memorization needs a training set with several frames per video (names '<video>_f<k>.png' or a "
            "manifest video_id column) to calibrate what a near-duplicate is"
        )
    return torch.cat(out).float()


def memorization(
    fake: torch.Tensor,
    train: torch.Tensor,
    train_video_ids: list[str],
    quantile: float = DEFAULT_QUANTILE,
    space: str = "features",
) -> Memorization:
    """Nearest training vector of each generated vector, flagged against the same-video calibration."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    fake, train = fake.float().cpu(), train.float().cpu()
    calibration = same_video_distances(train, train_video_ids)
    threshold = float(np.quantile(calibration.numpy(), quantile))
    dist, idx = nearest_neighbours(fake, train)
    fraction = float((dist < threshold).float().mean())
    return Memorization(fraction, threshold, quantile, dist, idx, calibration, space)


def pixel_memorization(
    fake_images: torch.Tensor,
    train_images: torch.Tensor,
    train_video_ids: list[str],
    quantile: float = DEFAULT_QUANTILE,
) -> Memorization:
    """:func:`memorization` on 64x64 area-averaged pixel intensities."""
    return memorization(pixel_vectors(fake_images), pixel_vectors(train_images), train_video_ids, quantile, "pixel")


def closest_pairs(
    result: Memorization, fake_images: torch.Tensor, train_images: torch.Tensor, k: int = 8
) -> list[dict]:
    """The ``k`` generated images nearest to a training image, closest first, as a gallery.

    Each entry: ``fake`` and ``train`` as uint8 ``[H, W]`` arrays, their indices,
    the distance, the threshold and whether the pair is flagged.
    """
    order = torch.argsort(result.nn_distance)[:k]
    gallery = []
    for i in order.tolist():
        j = int(result.nn_index[i])
        d = float(result.nn_distance[i])
        gallery.append(
            {
                "fake": fake_images[i, 0].numpy(),
                "train": train_images[j, 0].numpy(),
                "fake_index": i,
                "train_index": j,
                "distance": d,
                "threshold": result.threshold,
                "flagged": d < result.threshold,
                "space": result.space,
            }
        )
    return gallery
