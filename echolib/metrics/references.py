"""The reference rows of every comparison: the published model's samples and the phantom.

A table of our models means little without the study's own best model next to
it, evaluated by the same code on the same real frames: the 2,000 StyleGAN2-ADA
E4 samples in ``shared/data/seed-reference``. The built-in phantom is the other
anchor: a deliberately imperfect, hand-made generator that any learned model
should beat. Both are plain image folders, so they go through
:func:`echolib.metrics.evaluate` exactly like a model's samples.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from echolib.data.phantom import frame_name
from echolib.data.phantom_sim import FRAMES_PER_HEART, render_hearts
from echolib.data.sources import resolve_data
from echolib.metrics.inputs import ImageSet

STUDY = "reference:study-stylegan2-ada-E4"
PHANTOM = "reference:phantom"
ENV_SHARED = "ECHOLIB_SHARED_DATA"


def shared_data() -> Path:
    """``$ECHOLIB_SHARED_DATA``, else ``../shared/data`` next to the project (as the tests assume)."""
    env = os.environ.get(ENV_SHARED)
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def study_samples() -> Path | None:
    """The study's E4 samples folder, or None when the shared data is absent."""
    path = shared_data() / "seed-reference" / "stylegan2-ada-E4-samples"
    return path if path.is_dir() else None


def reference_sources(n_phantom: int = 2000, seed: int = 0) -> dict[str, object]:
    """``{run label: source}`` for :func:`evaluate`: the study's samples (when present) and the phantom."""
    out: dict[str, object] = {}
    study = study_samples()
    if study is not None:
        out[STUDY] = study
    out[PHANTOM] = resolve_data("phantom", n=n_phantom, seed=seed, progress=False)
    return out


def phantom_image_set(hearts: int, seed: int = 0, first: int = 0):
    """``4 * hearts`` phantom frames rendered in memory (hearts ``first .. first + hearts - 1``) as an ImageSet.

    Video ids follow the phantom's file names (``PH<seed>H<heart>``), so the four
    frames of a heart group like the frames of an EchoNet video.
    """
    ids = range(first, first + hearts)
    rendered, _, _ = render_hearts(seed, ids, 128)
    images = torch.from_numpy(rendered.frames.copy())[:, None]
    videos = [frame_name(seed, h, k).rsplit("_f", 1)[0] for h in ids for k in range(FRAMES_PER_HEART)]
    return ImageSet(images, videos, f"phantom seed {seed}")
