"""Memorisation, calibrated on unseen patients: near-copies of training frames are flagged, new patients at the
chosen rate, and the same-patient leak is reported on its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from echolib.errors import DataError
from echolib.metrics import corruptions, evaluate, memorization
from echolib.metrics.evaluate import FeatureCache
from echolib.metrics.inputs import ImageSet
from echolib.metrics.references import phantom_image_set


def _videos(n_videos: int, frames: int, dim: int, seed: int, spread: float = 0.4) -> tuple[torch.Tensor, list[str]]:
    """Vectors of ``n_videos`` "patients" (a centre each) with ``frames`` noisy views of each: a cheap stand-in for
    features, with the clustering of real videos."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_videos, dim, generator=g)
    x = centres.repeat_interleave(frames, 0) + spread * torch.randn(n_videos * frames, dim, generator=g)
    return x, [f"s{seed}v{i // frames}" for i in range(n_videos * frames)]


def test_unseen_patients_are_flagged_at_the_chosen_rate():
    bank, bank_ids = _videos(300, 4, 8, seed=1)
    rates, covered = [], 0
    for seed in range(20):  # a fresh set of unseen patients each time, and other halves
        held, held_ids = _videos(300, 4, 8, seed=100 + seed)
        cal = memorization.calibrate(bank, bank_ids, held, held_ids, percentile=0.05, seed=seed)
        assert cal.method == memorization.HELDOUT and cal.percentile == 0.05
        share = float((cal.calibration_distances <= cal.threshold).float().mean())
        assert 0.05 <= share < 0.05 + 1.5 / len(cal.calibration_distances)  # the threshold is the 5 % quantile
        assert not set(cal.check_videos) & set(np.array(held_ids)[memorization.video_halves(held_ids, seed)])
        rates.append(cal.heldout_flag_rate)
        lo, hi = cal.heldout_interval()
        covered += lo <= 0.05 <= hi
    assert abs(np.mean(rates) - 0.05) < 0.01  # unbiased over draws
    assert 0.015 < min(rates) and max(rates) < 0.09
    assert covered >= 18  # the interval (check half and threshold noise, 95 % nominal) holds the chosen rate
    held, held_ids = _videos(300, 4, 8, seed=200)
    other = memorization.calibrate(bank, bank_ids, held, held_ids, percentile=0.2)
    lo, hi = other.heldout_interval()
    assert other.threshold > cal.threshold and lo <= 0.2 <= hi and 0.15 < other.heldout_flag_rate < 0.25


def test_leaving_training_videos_out_calibrates_like_held_out_videos():
    bank, bank_ids = _videos(300, 4, 8, seed=1)
    held, held_ids = _videos(300, 4, 8, seed=2)
    heldout = memorization.calibrate(bank, bank_ids, held, held_ids)
    lovo = memorization.calibrate(bank, bank_ids)
    assert lovo.method == memorization.LEAVE_ONE_VIDEO_OUT
    assert lovo.threshold == pytest.approx(heldout.threshold, rel=0.1)
    assert lovo.heldout_flag_rate == pytest.approx(0.05, abs=0.04)
    with pytest.raises(DataError, match="also among the training frames"):
        memorization.calibrate(bank, bank_ids, bank[:8], bank_ids[:8])
    with pytest.raises(DataError, match="at least 3"):
        memorization.calibrate(bank[:8], ["a"] * 4 + ["b"] * 4)


def _shift(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    return torch.roll(images, (dy, dx), (2, 3))  # the fan's black surround wraps in, not tissue


@pytest.fixture(scope="module")
def phantom():
    """30 training hearts, 30 unseen hearts, and the training frames again with their speckle re-drawn."""
    from echolib.data.phantom_sim import render_hearts

    bank = phantom_image_set(30, seed=21)
    held = phantom_image_set(30, seed=21, first=30)
    again, _, _ = render_hearts(21, range(30), 128, speckle_seed=1)
    return bank, held, torch.from_numpy(again.frames.copy())[:, None]


@pytest.mark.slow  # about 20 s: ten sets of 30 frames through the extractor
def test_copies_and_near_copies_of_training_frames_are_flagged(phantom):
    bank, held, respeckled = phantom
    x = bank.images[::2]  # two frames of every training heart
    variants = {
        "copy": x,
        "noise 2": corruptions.gaussian_noise(x, 2.0, seed=1),
        "noise 4": corruptions.gaussian_noise(x, 4.0, seed=1),
        "shift 1": _shift(x, 1, 0),
        "shift 2": _shift(x, 2, -2),
        "shift 3": _shift(x, 0, 3),
        "shift 3 diagonal": _shift(x, -3, 3),
        "gain +5 %": corruptions.gain(x, -0.05),
        "gain -5 %": corruptions.gain(x, 0.05),
        "speckle re-drawn": respeckled[::2],
    }
    encode = FeatureCache("echo", torch.device("cpu"), cache=False)
    f_bank, f_held = encode(bank), encode(held)
    caught = {}
    for name, images in variants.items():
        queries = ImageSet(images, [f"q{i}" for i in range(len(images))], name)
        feat = memorization.memorization(encode(queries), f_bank, bank.video_ids, f_held, held.video_ids)
        pix = memorization.pixel_memorization(images, bank.images, bank.video_ids, held.images, held.video_ids)
        caught[name] = float((feat.flagged | pix.flagged).float().mean())  # the privacy filter's rule
        assert pix.fraction >= 0.95, (name, pix.fraction)  # pixel space alone, translations searched
        if name == "copy":
            assert feat.fraction == pix.fraction == 1.0
            assert (pix.nn_distance == 0).all() and pix.nn_index.tolist() == list(range(0, len(bank), 2))
    assert min(caught.values()) >= 0.95, caught
    # the same thresholds on the unseen hearts' check half: about the chosen 5 %, not the copies' 100 %
    for cal in (feat.calibration, pix.calibration):
        assert cal.heldout_flag_rate <= 0.2 and cal.heldout_interval()[0] <= 0.05


def test_same_patient_in_another_phase_is_reported_separately(phantom):
    """A training heart's other frames are not pixel copies; the record says how often such a leak is caught."""
    bank, held, _ = phantom
    seen = [i for i in range(len(bank)) if i % 4 != 3]  # train on three frames of each heart ...
    other_phase = bank.images[3::4]  # ... and sample the fourth: same patient, another moment
    train = ImageSet(bank.images[seen], [bank.video_ids[i] for i in seen], "three frames per heart")
    result = memorization.pixel_memorization(other_phase, train.images, train.video_ids, held.images, held.video_ids)
    rate = result.calibration.same_video_flag_rate
    assert rate is not None and result.fields()["same_video_flag_rate"] == rate
    # the reported rate predicts how often the unseen phase of a training heart is flagged
    assert abs(result.fraction - rate) < 0.2, (result.fraction, rate)
    fresh = memorization.pixel_memorization(held.images, train.images, train.video_ids, None, None)
    assert fresh.calibration.method == memorization.LEAVE_ONE_VIDEO_OUT
    assert memorization.same_video_distances(torch.randn(4, 3), ["a", "b", "c", "d"]) is None


def test_records_carry_the_calibration(phantom):
    bank, held, _ = phantom
    copies = ImageSet(bank.images[:40], [f"c{i}" for i in range(40)], "copies")
    recs = evaluate(held, copies, metrics=["memorized_fraction", "memorized_fraction_pixel"], extractor="echo",
                    train=bank, device="cpu", cache=False)
    fresh = evaluate(held, held, metrics=["memorized_fraction_pixel"], extractor="echo", train=bank, cache=False)[0]
    for r in recs + [fresh]:
        assert r["definition"] == memorization.DEFINITION and r["calibration"] == memorization.HELDOUT
        assert r["percentile"] == 0.05 and r["threshold"] > 0 and r["n_check_videos"] + r["n_calibration_videos"] == 30
        assert 0 <= r["heldout_flag_rate"] <= 1 and r["heldout_interval"][0] <= r["heldout_flag_rate"]
        assert r["sample_flag_rate"] == r["value"] and r["interval"][0] <= r["value"] <= r["interval"][1]
        assert 0.5 < r["same_video_flag_rate"] <= 1  # phantom frames of one heart are close: such leaks are caught
    assert [r["value"] for r in recs] == [1.0, 1.0]
    assert fresh["value"] < 0.15  # unseen hearts sit near the held-out rate


def test_calibration_needs_unseen_videos_and_evaluate_says_so():
    x = phantom_image_set(2, seed=2).images  # two hearts, frames named as their own videos
    with pytest.raises(DataError, match="never saw"):
        evaluate(x, x, metrics=["memorized_fraction_pixel"], extractor="echo", cache=False)
    with pytest.warns(UserWarning, match="memorization skipped"):  # by default it is left out instead
        recs = evaluate(x, x, metrics=None, extractor="echo", device="cpu", cache=False)
    assert not [r for r in recs if r["metric"].startswith("memorized")]


@pytest.mark.realdata
@pytest.mark.slow
def test_near_copies_of_real_frames_are_flagged(real_frames):
    """On the shared frames: 60 unseen videos set the threshold; shifted and re-gained training frames are caught."""
    from echolib.data.frames import FrameDataset

    parts = FrameDataset(real_frames, limit=2400).split((0.8, 0.2), seed=0, names=("train", "fresh"))
    bank = ImageSet(parts["train"].images, parts["train"].video_ids, "train")
    held = ImageSet(parts["fresh"].images[:240], parts["fresh"].video_ids[:240], "fresh")
    x = bank.images[:200:2]
    for images in (x, _shift(x, 3, -3), corruptions.gain(x, 0.05), corruptions.gaussian_noise(x, 4.0)):
        result = memorization.pixel_memorization(images, bank.images, bank.video_ids, held.images, held.video_ids)
        assert result.fraction >= 0.95
    assert result.calibration.heldout_flag_rate < 0.2
