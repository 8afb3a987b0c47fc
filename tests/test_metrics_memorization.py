"""Memorization: exact copies of training frames are flagged, frames of unseen videos are not."""

from __future__ import annotations

import pytest
import torch

from echolib.metrics import evaluate, memorization
from echolib.metrics.evaluate import FeatureCache
from echolib.metrics.inputs import ImageSet
from echolib.metrics.references import phantom_image_set


def _copies_and_fresh(train: ImageSet, fresh: ImageSet, n_copies: int) -> ImageSet:
    """``n_copies`` exact training frames followed by the frames of unseen videos."""
    idx = torch.arange(0, 4 * n_copies, 4)  # one frame from each of the first n_copies videos
    images = torch.cat([train.images[idx], fresh.images])
    return ImageSet(images, [f"copy{i}" for i in range(n_copies)] + fresh.video_ids, "copies+fresh")


def _check(train: ImageSet, fresh: ImageSet, encode) -> None:
    n_copies = 8
    fake = _copies_and_fresh(train, fresh, n_copies)
    for result in (
        memorization.memorization(encode(fake), encode(train), train.video_ids),
        memorization.pixel_memorization(fake.images, train.images, train.video_ids),
    ):
        flagged = result.nn_distance < result.threshold
        assert flagged[:n_copies].all(), result.space  # every exact copy
        # zero up to float rounding (a frame's features vary in the last bits with its batch)
        assert (result.nn_distance[:n_copies] <= 0.05 * result.threshold).all()
        assert result.nn_index[:n_copies].tolist() == list(range(0, 4 * n_copies, 4))
        fresh_rate = flagged[n_copies:].float().mean().item()
        assert fresh_rate <= 0.05, (result.space, fresh_rate)  # unseen videos are not copies
        assert result.fraction == pytest.approx(flagged.float().mean().item())
        gallery = memorization.closest_pairs(result, fake.images, train.images, k=4)
        assert [g["distance"] for g in gallery] == sorted(g["distance"] for g in gallery)
        assert gallery[0]["distance"] <= 0.05 * result.threshold and gallery[0]["flagged"]
        assert (gallery[0]["fake"] == gallery[0]["train"]).all() and gallery[0]["fake"].shape == (128, 128)


def test_flags_copies_not_fresh_phantom_hearts():
    train = phantom_image_set(40, seed=21)
    fresh = phantom_image_set(25, seed=21, first=40)
    _check(train, fresh, FeatureCache("echo", torch.device("cpu"), cache=False))


@pytest.mark.realdata
def test_flags_copies_not_fresh_real_videos(real_frames):
    from echolib.data.frames import FrameDataset

    parts = FrameDataset(real_frames, limit=2400).split((0.5, 0.5), seed=0, names=("train", "fresh"))
    train = ImageSet(parts["train"].images[:600], parts["train"].video_ids[:600], "train")
    fresh = ImageSet(parts["fresh"].images[:200], parts["fresh"].video_ids[:200], "fresh")
    _check(train, fresh, FeatureCache("echo", torch.device("cpu"), cache=False))


def test_calibration_needs_videos_and_evaluate_says_so():
    from echolib.errors import DataError

    x = phantom_image_set(3, seed=2).images
    with pytest.raises(DataError, match="several frames per video"):
        memorization.memorization(torch.randn(4, 8), torch.randn(4, 8), ["a", "b", "c", "d"])
    with pytest.raises(DataError, match="several frames per video"):
        evaluate(x, x, metrics=["memorized_fraction_pixel"], extractor="echo", cache=False)
    # by default the metric is skipped with a warning instead
    with pytest.warns(UserWarning, match="memorization skipped"):
        recs = evaluate(x, x, metrics=None, extractor="echo", device="cpu", cache=False)
    assert not [r for r in recs if r["metric"].startswith("memorized")]
