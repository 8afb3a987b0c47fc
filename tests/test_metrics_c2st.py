"""Classifier two-sample test: chance for one distribution, near 1 for different ones; DeLong interval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from echolib.errors import DataError
from echolib.metrics.c2st import c2st, delong_ci
from echolib.metrics.corruptions import corrupt
from echolib.metrics.evaluate import FeatureCache, evaluate
from echolib.metrics.inputs import ImageSet
from echolib.metrics.references import phantom_image_set


def test_delong_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0, 1, 40), rng.normal(0.8, 1, 30)]).round(1)  # with ties
    labels = np.concatenate([np.zeros(40, int), np.ones(30, int)])
    pos, neg = scores[labels == 1], scores[labels == 0]
    psi = (pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])
    auc_ref = psi.mean()
    v10, v01 = psi.mean(1), psi.mean(0)
    se = np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))
    auc, lo, hi = delong_ci(scores, labels)
    assert auc == pytest.approx(auc_ref)
    assert lo == pytest.approx(auc_ref - 1.959964 * se, abs=1e-5) and hi == pytest.approx(
        auc_ref + 1.959964 * se, abs=1e-5
    )
    from sklearn.metrics import roc_auc_score

    assert auc == pytest.approx(roc_auc_score(labels, scores))


@pytest.fixture(scope="module")
def encode():
    return FeatureCache("echo", torch.device("cpu"), cache=False)


def test_auc_is_chance_for_one_distribution(encode):
    a = phantom_image_set(45, seed=31)
    b = phantom_image_set(45, seed=31, first=45)
    result = c2st(encode(a), encode(b), a.video_ids, b.video_ids, seed=0)
    assert 0.38 < result.auc < 0.62 and result.ci_low < 0.5 < result.ci_high
    assert result.folds == 5 and len(result.scores) == len(a) + len(b)


def test_auc_is_near_one_for_a_visibly_different_set(encode):
    a = phantom_image_set(45, seed=31)
    b = phantom_image_set(45, seed=31, first=45)
    smoothed = ImageSet(corrupt(b.images, "speckle_smoothing", 80.0), b.video_ids, "smoothed")
    result = c2st(encode(a), encode(smoothed), a.video_ids, smoothed.video_ids, seed=0)
    assert result.auc > 0.95 and result.ci_low > 0.85


@pytest.mark.realdata
def test_phantom_vs_real_is_near_one(real_frames, encode):
    from echolib.data.frames import FrameDataset

    real = FrameDataset(real_frames, limit=240)
    phantom = phantom_image_set(60, seed=5)
    result = c2st(
        encode(ImageSet(real.images, real.video_ids, "real")), encode(phantom), real.video_ids, phantom.video_ids
    )
    assert result.auc > 0.97


@pytest.mark.realdata
def test_real_vs_real_is_chance(real_frames, encode):
    from echolib.data.frames import FrameDataset

    parts = FrameDataset(real_frames, limit=800).split((0.5, 0.5), seed=0, names=("a", "b"))
    a = ImageSet(parts["a"].images, parts["a"].video_ids, "a")
    b = ImageSet(parts["b"].images, parts["b"].video_ids, "b")
    result = c2st(encode(a), encode(b), a.video_ids, b.video_ids)
    assert 0.4 < result.auc < 0.6 and result.ci_low < 0.5 < result.ci_high


def test_a_small_real_set_takes_fewer_folds_each_with_two_videos_of_each_class(encode):
    """Six real videos against 100 single generated images: scikit-learn's balancing alone left folds with one video."""
    real = phantom_image_set(6, seed=31)
    fake = phantom_image_set(25, seed=32)
    fake_ids = [f"g{i}" for i in range(len(fake))]
    result = c2st(encode(real), encode(fake), real.video_ids, fake_ids, seed=0)
    assert 2 <= result.folds <= 3 and len(result.fold_aucs) == result.folds
    assert 0.0 <= result.ci_low <= result.auc <= result.ci_high <= 1.0


def test_fewer_than_four_videos_is_refused_by_name(encode):
    real = phantom_image_set(3, seed=31)
    fake = phantom_image_set(25, seed=32)
    with pytest.raises(DataError, match="at least 4 videos"):
        c2st(encode(real), encode(fake), real.video_ids, [f"g{i}" for i in range(len(fake))])


def test_evaluate_drops_c2st_from_its_default_list_when_the_real_set_is_too_small():
    real = phantom_image_set(3, seed=31)
    fake = phantom_image_set(10, seed=32)
    with pytest.warns(UserWarning, match="c2st_auc skipped"):
        records = evaluate(real, fake.images, extractor="echo", device="cpu", cache=False)
    assert "c2st_auc" not in {r["metric"] for r in records} and "fid" in {r["metric"] for r in records}
    with pytest.raises(DataError, match="at least 4 videos"):
        evaluate(real, fake.images, metrics=["c2st_auc"], extractor="echo", device="cpu", cache=False)
