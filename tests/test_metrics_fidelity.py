"""FID, KID and precision/recall through torch-fidelity; Inception and LPIPS weights loading paths."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from echolib.errors import ConfigError
from echolib.metrics import evaluate, extractor_sha256, fidelity
from echolib.metrics.corruptions import corrupt
from echolib.metrics.evaluate import FeatureCache
from echolib.metrics.inputs import ImageSet
from echolib.metrics.pixel import random_pairs
from echolib.metrics.references import phantom_image_set


@pytest.fixture(scope="module")
def phantom_a() -> ImageSet:
    return phantom_image_set(40, seed=11)


@pytest.fixture(scope="module")
def phantom_b() -> ImageSet:
    return phantom_image_set(40, seed=11, first=40)


@pytest.fixture(scope="module")
def encode():
    return FeatureCache("echo", torch.device("cpu"), cache=False)


def test_fid_of_a_set_with_itself_is_zero(phantom_a, encode):
    f = encode(phantom_a)
    blurred = encode(ImageSet(corrupt(phantom_a.images, "blur", 2.0), phantom_a.video_ids, "blur"))
    reference = fidelity.fid(blurred, f)
    assert reference > 1.0
    assert abs(fidelity.fid(f, f)) < 1e-3 * reference


@pytest.mark.parametrize("kind, strengths", [("noise", (6.0, 18.0, 48.0)), ("blur", (0.8, 1.6, 3.2))])
def test_fid_and_kid_grow_with_corruption_strength(phantom_a, encode, kind, strengths):
    """Distance between a set and its own corrupted copy: 0 at strength 0, then growing."""
    f_a = encode(phantom_a)
    fids, kids = [fidelity.fid(f_a, f_a)], [fidelity.kid(f_a, f_a)[0]]
    for s in strengths:
        f_b = encode(ImageSet(corrupt(phantom_a.images, kind, s, seed=3), phantom_a.video_ids, f"{kind} {s}"))
        fids.append(fidelity.fid(f_b, f_a))
        kids.append(fidelity.kid(f_b, f_a)[0])
    assert all(x < y for x, y in itertools.pairwise(fids)), fids
    assert all(x < y for x, y in itertools.pairwise(kids)), kids


def test_kid_is_about_zero_for_two_halves_of_one_set(phantom_a, phantom_b, encode):
    both = encode(phantom_a), encode(phantom_b)
    f = torch.cat(both)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(f), generator=g)
    half1, half2 = f[perm[: len(f) // 2]], f[perm[len(f) // 2 :]]
    kid_halves, std, size = fidelity.kid(half1, half2, subset_size=100)
    blurred = encode(ImageSet(corrupt(phantom_b.images, "blur", 1.5), phantom_b.video_ids, "blur"))
    kid_blur = fidelity.kid(blurred, both[0], subset_size=100)[0]
    assert size == 100 and std > 0
    assert abs(kid_halves) < 0.05 * kid_blur and abs(kid_halves) < 3 * std



def test_kid_has_no_std_when_every_subset_is_both_whole_sets(phantom_a, phantom_b, encode):
    f_a, f_b = encode(phantom_a), encode(phantom_b)
    mean, std, size = fidelity.kid(f_b, f_a)
    assert size == len(f_a) == len(f_b) and std is None
    mean_half, std_half, _ = fidelity.kid(f_b, f_a, subset_size=len(f_a) // 2)
    assert std_half > 0 and mean_half == pytest.approx(mean, abs=3 * std_half)

def test_our_metrics_equal_a_direct_torch_fidelity_call(tmp_path, phantom_a, phantom_b):
    """Same folders, same extractor: evaluate() and torch_fidelity.calculate_metrics agree."""
    import torch_fidelity

    from echolib.images import save_batch

    real_dir, fake_dir = tmp_path / "real", tmp_path / "fake"
    save_batch(phantom_a.images[:96], real_dir)
    save_batch(phantom_b.images[:80], fake_dir)
    ours = {
        r["metric"]: r
        for r in evaluate(real_dir, fake_dir, metrics=["fid", "kid", "precision", "recall"], extractor="echo", device="cpu",
                          cache=False)
    }
    theirs = torch_fidelity.calculate_metrics(
        input1=str(fake_dir),
        input2=str(real_dir),
        feature_extractor="echo",
        fid=True,
        kid=True,
        prc=True,
        kid_subset_size=80,
        cuda=False,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
    )
    assert ours["fid"]["value"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-4)
    assert ours["kid"]["value"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-4, abs=1e-7)
    assert ours["kid"]["subset_size"] == 80
    assert ours["precision"]["value"] == pytest.approx(theirs["precision"], abs=1e-6)
    assert ours["recall"]["value"] == pytest.approx(theirs["recall"], abs=1e-6)
    assert ours["fid"]["extractor"] == "echo" and ours["fid"]["extractor_sha256"] == extractor_sha256("echo")
    assert ours["fid"]["n_real"] == 96 and ours["fid"]["n_fake"] == 80


def test_precision_recall_see_a_collapsed_generator(phantom_a, phantom_b, encode):
    """A generator that repeats a few hearts covers little of the real manifold: recall collapses, precision does not.

    The hearts it repeats are real ones (of the reference set, with noise): at
    40 frames a set's k-NN balls in the echo space are small, so four hearts of
    *other* phantom videos are a question of coverage, not of this property.
    """
    f_real = encode(phantom_a)
    one_heart = phantom_a.images[:4].repeat(20, 1, 1, 1)
    noisy = corrupt(one_heart, "noise", 2.0, seed=5)
    f_fake = encode(ImageSet(noisy, ["x"] * len(noisy), "collapsed"))
    _p_good, r_good = fidelity.precision_recall(encode(phantom_b), f_real)
    p_bad, r_bad = fidelity.precision_recall(f_fake, f_real)
    assert r_bad < 0.2 < r_good
    assert r_bad < p_bad


# -- Inception: fails at once without weights, runs the real loading path with them ---------------------
def test_missing_inception_weights_fail_at_once_saying_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.delenv(fidelity.ENV_INCEPTION_WEIGHTS, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ConfigError) as err:
        evaluate(
            torch.zeros(8, 1, 32, 32, dtype=torch.uint8),
            torch.zeros(8, 1, 32, 32, dtype=torch.uint8),
            metrics=["fid"],
            extractor="inception-v3-compat",
            cache=False,
        )
    msg = str(err.value)
    assert "weights-inception-2015-12-05-6726825d.pth" in msg and "https://" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg and fidelity.ENV_INCEPTION_WEIGHTS in msg
    monkeypatch.setenv(fidelity.ENV_INCEPTION_WEIGHTS, str(tmp_path / "nowhere.pth"))
    with pytest.raises(ConfigError, match="nowhere.pth"):
        fidelity.inception_weights_path()


def _random_inception_weights(path, monkeypatch) -> None:
    """Random weights with exactly the shapes torch-fidelity's Inception expects.

    The class loads weights in its constructor, so to learn the shapes we build it
    once with loading switched off; the test then uses the real loading path.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with monkeypatch.context() as m:
        m.setattr(torch, "load", lambda *a, **k: {})
        m.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, strict=True: None)
        torch.manual_seed(0)
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="unused")
    torch.save(net.state_dict(), path)


@pytest.mark.slow
def test_inception_extractor_through_the_real_loading_path(tmp_path, monkeypatch, phantom_a, phantom_b):
    weights = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    _random_inception_weights(weights, monkeypatch)
    monkeypatch.setenv(fidelity.ENV_INCEPTION_WEIGHTS, str(weights))
    real, fake = phantom_a.images[:24], phantom_b.images[:24]
    recs = {
        r["metric"]: r
        for r in evaluate(
            real, fake, metrics=["fid", "kid"], extractor="inception-v3-compat", device="cpu", cache=tmp_path / "cache"
        )
    }
    import hashlib

    assert recs["fid"]["extractor"] == "inception-v3-compat"
    assert recs["fid"]["extractor_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert math.isfinite(recs["fid"]["value"]) and recs["fid"]["value"] > 0
    same = evaluate(
        real, real, metrics=["fid"], extractor="inception-v3-compat", device="cpu", cache=tmp_path / "cache"
    )[0]["value"]
    assert abs(same) < 1e-3 * recs["fid"]["value"]
    # a file holding more than tensors is refused before torch-fidelity unpickles it
    torch.save({"x": np.arange(3)}, weights)
    with pytest.raises(Exception, match="not a plain weights file"):
        evaluate(real, fake, metrics=["fid"], extractor="inception-v3-compat", device="cpu", cache=False)


# -- LPIPS ---------------------------------------------------------------------------------------------------
def test_missing_lpips_weights_fail_at_once(tmp_path, monkeypatch):
    from echolib.metrics import lpips

    monkeypatch.delenv(lpips.ENV_LPIPS_WEIGHTS, raising=False)
    monkeypatch.delenv(lpips.ENV_VGG16_WEIGHTS, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ConfigError, match="vgg16-397923af.pth"):
        lpips.lpips_weights_paths()


@pytest.mark.slow
def test_lpips_through_the_real_loading_path(lpips_weights, phantom_a, phantom_b):
    from echolib.metrics import lpips

    net = lpips.LPIPS()
    a, b = phantom_a.images[:6], phantom_b.images[:6]
    same = lpips.lpips_pairs(net, a, a, torch.device("cpu"))
    diff = lpips.lpips_pairs(net, a, b, torch.device("cpu"))
    assert torch.allclose(same, torch.zeros(6), atol=1e-6) and (diff > 0).all()
    rec = evaluate(a, b, metrics=["lpips"], extractor="echo", device="cpu", cache=False, seed=3)[0]
    ri, fi = random_pairs(6, 6, seed=3)
    expected = lpips.lpips_pairs(net, a[ri], b[fi], torch.device("cpu")).mean().item()
    assert rec["metric"] == "lpips" and rec["value"] == pytest.approx(expected, rel=1e-5)
    assert rec["pairing"] == "random" and rec["extractor"] == "lpips-vgg16"


@pytest.mark.slow
def test_lpips_as_a_loss_equals_the_metric_and_passes_gradients(lpips_weights, phantom_a, phantom_b):
    from echolib.images import to_float
    from echolib.metrics import lpips

    a, b = phantom_a.images[:4], phantom_b.images[:4]
    net = lpips.LPIPS()
    x = to_float(a).requires_grad_(True)  # [-1, 1], as a generator's output
    loss = lpips.LPIPSLoss(net)(x, to_float(b))
    torch.testing.assert_close(loss.detach(), net(a, b), rtol=1e-4, atol=1e-6)  # the same number as the metric
    loss.sum().backward()
    assert float(x.grad.abs().sum()) > 0 and all(p.grad is None for p in net.parameters())
    assert lpips.lpips_available()
