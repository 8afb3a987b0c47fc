"""Sample checks used by the notebooks' closing cells: what a working generator can and cannot return."""

from __future__ import annotations

import pytest
import torch

from echolib.errors import TrainingError
from echolib.train.run_config import build_model, load_config
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


@pytest.mark.parametrize("arch, takes", [
    ("stylegan2_ada", ["truncation", "noise_mode"]), ("wgan", []), ("medgan", []),
    ("vqgan", ["temperature", "top_k"]), ("pix2pix", ["condition"]),
    ("diffusion", ["steps", "sampler", "label", "guidance"]),
])
def test_sample_options_are_read_from_each_signature_and_refused_before_any_file(arch, takes, tmp_path):
    from echolib.errors import ConfigError
    from echolib.train.sampling import write_samples

    model = build_model(load_config(arch, "smoke"))
    assert model.sample_options() == takes
    model.check_sample_options(dict.fromkeys(takes, 1))  # every option it takes passes
    expected = f"{arch} sampling: unknown option\\(s\\) psi; it takes {', '.join(takes) or 'none'}$"
    with pytest.raises(ConfigError, match=expected):
        write_samples(model, 4, tmp_path / "out", psi=0.7, progress=False)
    assert not (tmp_path / "out").exists()  # refused before the folder or a progress bar
