"""Sample checks used by the notebooks' closing cells: what a working generator can and cannot return."""

from __future__ import annotations

import pytest
import torch

from echolib.errors import TrainingError
from echolib.models.registry import build_model, load_config
from echolib.train.sampling import check_samples, checked_samples


@pytest.fixture(scope="module")
def stylegan():
    torch.manual_seed(0)
    return build_model(load_config("stylegan2_ada", "smoke")).eval()


def test_checked_samples_of_a_real_model_pass_and_repeat_with_the_seed(stylegan):
    a = checked_samples(stylegan, 6, seed=1, batch=4)
    b = checked_samples(stylegan, 6, seed=1, batch=4)
    assert a.shape == (6, stylegan.channels, stylegan.resolution, stylegan.resolution)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, checked_samples(stylegan, 6, seed=2, batch=4))


def test_an_untrained_dcgan_in_eval_mode_is_refused_as_collapsed():
    # fresh batch-norm statistics (mean 0, var 1) in eval mode wash out z: one image, repeated
    torch.manual_seed(0)
    wgan = build_model(load_config("wgan", "smoke"))
    with pytest.raises(TrainingError, match="all 8 samples are the same image"):
        checked_samples(wgan, 8, seed=0)


def test_check_samples_names_what_is_wrong(stylegan):
    good = checked_samples(stylegan, 4, seed=0)
    r = stylegan.resolution
    with pytest.raises(TrainingError, match=r"shape \(4, 1, .*expected \(5, 1"):
        check_samples(good, 5, 1, r)
    nan = good.clone()
    nan[1, 0, 2, 3] = float("nan")
    with pytest.raises(TrainingError, match="1 of .* NaN or infinite"):
        check_samples(nan, 4, 1, r)
    with pytest.raises(TrainingError, match=r"expected images in \[-1, 1\]"):
        check_samples(good * 3, 4, 1, r)
    collapsed = good[:1].expand(4, -1, -1, -1)
    with pytest.raises(TrainingError, match="all 4 samples are the same image"):
        check_samples(collapsed, 4, 1, r)
    check_samples(good[:1], 1, 1, r)  # a single sample has no spread to check
