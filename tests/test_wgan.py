"""WGAN / WGAN-GP on the DCGAN backbone: shapes, the Lipschitz constraints, and a checkpoint round trip."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import trainer_context

from echolib.models.registry import config_names
from echolib.train.loop import Trainer
from echolib.train.run_config import build_model, load_config
from echolib.train.sampling import load_model

TINY = {"z_dim": 16, "g_channels": 8, "d_channels": 8, "max_channels": 32}


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Phantom frames (64x64) when the phantom exists, else the shared noise frames' recipe."""
    folder = tmp_path_factory.mktemp("wgan_frames") / "ph"
    try:
        from echolib.data.phantom import generate
    except ImportError:  # pragma: no cover - phantom not installed yet
        import numpy as np
        from PIL import Image

        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(64):
            Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), "L").save(folder / f"N{i // 4}_f{i % 4}.png")
        return folder
    return generate(folder, n=64, size=64, seed=1, workers=1, progress=False)


def model_for(resolution: int, **over):
    run = load_config("wgan", "smoke", {"model": {**TINY, **over}, "train": {"resolution": resolution}})
    torch.manual_seed(0)
    return build_model(run)


@pytest.mark.parametrize("resolution", [64, 128])
def test_shapes_and_ranges(resolution):
    model = model_for(resolution)
    g = torch.Generator().manual_seed(0)
    x = model.sample(5, g)
    assert x.shape == (5, 1, resolution, resolution) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    assert model.nets["D"](x).shape == (5,)


@pytest.mark.parametrize("loss", ["clip", "gp"])
def test_losses_finite_and_constraints_hold(loss):
    over = {"loss": loss, "clip": 0.02, "n_critic": 3}
    if loss == "gp":
        over |= {"optimizer": "adam", "lr": 1e-3, "critic_norm": "layer"}
    model = model_for(64, **over)
    images = torch.randint(0, 256, (32, 1, 64, 64), dtype=torch.uint8)
    opts = model.make_optimizers()
    g_before = [p.detach().clone() for p in model.nets["G"].parameters()]
    for step in range(3):
        out = model.train_step(trainer_context(images, step, 8), opts)
        assert all(v.dim() == 0 and torch.isfinite(v) and not v.requires_grad for v in out.values())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, model.nets["G"].parameters()))
    params = torch.cat([p.detach().flatten() for p in model.nets["D"].parameters()])
    if loss == "clip":
        # every critic parameter, norm gains included, stays in [-c, c] after the steps
        assert params.abs().max() <= 0.02 and (params.abs() == 0.02).any()
    else:
        assert set(out) == {"loss_G", "loss_D", "loss_gp"} and out["loss_gp"] > 0
        assert params.abs().max() > 0.02  # no clipping with the penalty


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    """A linear critic with a unit-norm weight has gradient norm exactly 1 everywhere: penalty 0."""
    from echolib.models.wgan import gradient_penalty

    w = torch.randn(1, 1, 8, 8)
    w /= w.norm()
    critic = lambda x: (x * w).flatten(1).sum(1)
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    assert gradient_penalty(critic, real, fake, torch.rand(4, 1, 1, 1)) == pytest.approx(0.0, abs=1e-10)
    steep = lambda x: 3 * critic(x)
    assert gradient_penalty(steep, real, fake, torch.rand(4, 1, 1, 1)) == pytest.approx(4.0, rel=1e-5)



def test_gradient_penalty_runs_through_a_compiled_critic():
    """AOTAutograd cannot differentiate a compiled graph twice: the penalty must use the eager critic."""
    from echolib.models.base import uncompiled
    from echolib.train.compiling import CompileFallback

    model = model_for(64, loss="gp", optimizer="adam", critic_norm="layer")
    for name, net in model.nets.items():
        compiled = CompileFallback(torch.compile(net, backend="aot_eager"), net, name)
        model.fwd[name] = model.peer[name] = compiled
    real = torch.rand(4, 1, 64, 64) * 2 - 1
    z = torch.randn(4, TINY["z_dim"])
    loss, gp = model.critic_step(real, z, model.make_optimizers()["D"], clip=None,
                                 gp_alpha=torch.rand(4, 1, 1, 1), gp_weight=10.0)  # fmt: skip
    assert torch.isfinite(loss) and gp > 0
    assert model.fwd["D"].compiled is not uncompiled(model.fwd["D"])  # the critic loss itself stayed compiled


def test_gradient_penalty_with_a_batch_norm_critic_is_refused():
    from echolib.errors import ConfigError

    with pytest.raises(ConfigError, match="critic_norm"):
        model_for(64, loss="gp", optimizer="adam", critic_norm="batch")

def test_configs_build_at_128():
    names = config_names("wgan")
    assert {f"E{i}" for i in range(1, 9)} <= set(names)
    losses = set()
    for name in names:
        run = load_config("wgan", name)
        if name.startswith("E"):  # the study-scale configurations
            assert run.train.resolution == 128 and 500 <= run.train.kimg <= 3000
        losses.add(run.model.loss)
    assert losses == {"clip", "gp"}


def test_checkpoint_round_trip(frames, tmp_path):
    run = load_config("wgan", "smoke", {"train": {"kimg": 0.08}})
    trainer = Trainer(run, frames, tmp_path / "run", device="cpu", progress=False)
    out = trainer.fit()
    loaded, _ = load_model(out, device="cpu")
    a = trainer.model.eval().sample(6, torch.Generator().manual_seed(3))
    b = loaded.sample(6, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and math.isfinite(float(a.sum()))
