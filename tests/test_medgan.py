"""MedGAN: the T1/T2 schedule (pure and inside train_step), sync-free rollback, resume, round trip."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import trainer_context

from echolib.models.medgan import schedule, skip_critic
from echolib.models.registry import config_names
from echolib.train import checkpoint as ckpt
from echolib.train.loop import Trainer, train
from echolib.train.run_config import build_model, load_config
from echolib.train.sampling import load_model

TINY = {"z_dim": 16, "g_channels": 8, "d_channels": 8, "max_channels": 32, "warmup_cycles": 1, "warmup_n_critic": 3}


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """64 phantom frames at 64x64 (16 hearts)."""
    from echolib.data.phantom import generate

    return generate(tmp_path_factory.mktemp("medgan") / "ph", n=64, size=64, seed=2, workers=1, progress=False)


@pytest.fixture(scope="module")
def images(frames):
    from echolib.data.frames import FrameDataset

    return FrameDataset(frames).images


def model_for(resolution: int = 64, **over):
    run = load_config("medgan", "smoke", {"model": {**TINY, **over}, "train": {"resolution": resolution}})
    torch.manual_seed(0)
    return build_model(run)


# -- the rule ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "loss_g, loss_d, expected",
    [
        (0.6, -0.8, (1, 0)),  # gap 0.8 > T2 and L_G 0.6 > T1: critic ahead, generator only
        (0.6, -0.4, (1, 1)),  # gap below T2: train the critic
        (0.2, -0.8, (1, 1)),  # generator loss below T1: train the critic
        (0.2, -0.4, (1, 1)),  # both below
        (0.6, -0.5, (1, 1)),  # gap exactly T2 is not "above"
        (0.3, -0.8, (1, 1)),  # L_G exactly T1 is not "above"
        (-0.6, 0.8, (1, 1)),  # critic upside down (negative gap)
    ],
)
def test_schedule_branches(loss_g, loss_d, expected):
    assert schedule(loss_g, loss_d, 0.3, 0.5) == expected


def test_schedule_warmup_and_tensor_form():
    assert schedule(0.6, -0.8, 0.3, 0.5, cycle=0, warmup_cycles=2, warmup_n_critic=100) == (1, 100)
    assert schedule(0.6, -0.8, 0.3, 0.5, cycle=1, warmup_cycles=2, warmup_n_critic=100) == (1, 100)
    assert schedule(0.6, -0.8, 0.3, 0.5, cycle=2, warmup_cycles=2, warmup_n_critic=100) == (1, 0)
    # a scripted loss trace, elementwise on tensors, agrees with the scalar rule
    loss_g = torch.tensor([0.9, 0.9, 0.1, 0.4, 0.31, 0.29])
    loss_d = torch.tensor([-0.9, -0.2, -0.9, -0.51, -0.49, -0.6])
    flags = skip_critic(loss_g, loss_d, 0.3, 0.5)
    assert flags.dtype == torch.bool
    assert flags.tolist() == [schedule(float(g), float(d))[1] == 0 for g, d in zip(loss_g, loss_d)]
    assert flags.tolist() == [True, False, False, True, False, False]


# -- inside train_step ------------------------------------------------------------
def _state(model, opts) -> dict[str, torch.Tensor]:
    out = {f"{n}.{k}": v for n, net in model.nets.items() for k, v in net.state_dict().items()}
    for name, opt in opts.items():
        for i, st in opt.state_dict()["state"].items():
            out.update({f"opt.{name}.{i}.{k}": v for k, v in st.items() if torch.is_tensor(v)})
    return {k: v.clone() for k, v in out.items()}


@pytest.mark.parametrize("host_decision", [False, True])
def test_forced_branches_in_train_step(images, host_decision):
    """T2 = -inf and T1 = -inf: the critic is always 'ahead' and never trains after warm-up; T2 = +inf: always."""
    inf = float("inf")
    for t2, expect_update in ((-inf, 0.0), (inf, 1.0)):
        model = model_for(t1=-inf, t2=t2, host_decision=host_decision)
        opts = model.make_optimizers()
        out0 = model.train_step(trainer_context(images, 0, 8), opts)  # warm-up: 3 critic updates
        assert float(out0["critic_updates"]) == 3.0
        d_before = [p.detach().clone() for p in model.nets["D"].parameters()]
        g_before = [p.detach().clone() for p in model.nets["G"].parameters()]
        for step in (1, 2):
            out = model.train_step(trainer_context(images, step, 8), opts)
            assert float(out["critic_updates"]) == expect_update
            assert all(v.dim() == 0 and torch.isfinite(v) and not v.requires_grad for v in out.values())
        d_same = all(torch.equal(a, b) for a, b in zip(d_before, model.nets["D"].parameters()))
        assert d_same == (expect_update == 0.0)
        assert not all(torch.equal(a, b) for a, b in zip(g_before, model.nets["G"].parameters()))


def test_rollback_equals_skipping_bitwise(images):
    """The sync-free masked update and the host-side branch give the same bytes, with mixed decisions."""
    results, decisions = [], []
    for host in (False, True):
        # thresholds this tiny critic's gap crosses within a few steps (it reaches ~0.2 by step 8 with T2 = inf)
        model = model_for(clip=0.1, lr=2e-4, t1=-1.0, t2=0.15, host_decision=host)
        opts = model.make_optimizers()
        flags = [float(model.train_step(trainer_context(images, s, 8), opts)["critic_updates"]) for s in range(16)]
        results.append(_state(model, opts))
        decisions.append(flags[1:])
    assert decisions[0] == decisions[1]
    assert 0.0 in decisions[0] and 1.0 in decisions[0], decisions[0]  # both branches taken
    a, b = results
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_critic_weights_stay_clipped(images):
    model = model_for(clip=0.02)
    opts = model.make_optimizers()
    for step in range(4):
        model.train_step(trainer_context(images, step, 8), opts)
    params = torch.cat([p.detach().flatten() for p in model.nets["D"].parameters()])
    assert params.abs().max() <= 0.02 and (params.abs() == 0.02).any()


@pytest.mark.parametrize("resolution", [64, 128])
def test_shapes_and_ranges(resolution):
    model = model_for(resolution)
    x = model.sample(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 1, resolution, resolution) and x.min() >= -1 and x.max() <= 1 and x.std() > 0
    assert model.nets["D"](x).shape == (5,)


def test_configs():
    names = set(config_names("medgan"))
    assert {f"E{i}" for i in range(1, 9)} <= names and "smoke" in names
    pairs = set()
    for i in range(1, 9):
        run = load_config("medgan", f"E{i}")
        assert run.train.resolution == 128 and 500 <= run.train.kimg <= 3000
        pairs.add((run.model.t1, run.model.t2))
    assert len(pairs) == 8 and (0.3, 0.5) in pairs  # eight distinct threshold settings incl. the defaults


# -- through the trainer ----------------------------------------------------------
def _ckpt_state(run) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt.list_checkpoints(run / "checkpoints")[-1], weights_only=True)
    flat = {f"nets.{n}.{k}": v for n, sd in state["nets"].items() for k, v in sd.items()}
    for name, opt in state["optimizers"].items():
        for pid, st in opt["state"].items():
            flat.update({f"opt.{name}.{pid}.{k}": v for k, v in st.items() if torch.is_tensor(v)})
    return flat


def test_exact_resume_is_bitwise(frames, tmp_path):
    def smoke(kimg):
        return load_config("medgan", "smoke", {"train": {"kimg": kimg}})

    full = train(smoke(0.16), frames, tmp_path / "full", device="cpu", progress=False)
    part = train(smoke(0.08), frames, tmp_path / "part", device="cpu", progress=False)
    part = train(smoke(0.16), frames, part, device="cpu", progress=False)
    a, b = _ckpt_state(full), _ckpt_state(part)
    assert a.keys() == b.keys() and len(a) > 10
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert (full / "log.csv").read_text().count("\n") == (part / "log.csv").read_text().count("\n")


def test_checkpoint_round_trip(frames, tmp_path):
    trainer = Trainer(load_config("medgan", "smoke", {"train": {"kimg": 0.08}}), frames, tmp_path / "run",
                      device="cpu", progress=False)
    out = trainer.fit()
    loaded, _ = load_model(out, device="cpu")
    a = trainer.model.eval().sample(6, torch.Generator().manual_seed(3))
    b = loaded.sample(6, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and math.isfinite(float(a.sum()))


def test_study_logs_show_the_t2_thermostat():
    """The study's MedGAN logs: summary rows dropped; M2 (best, default thresholds) parks -loss_D near T2 = 0.5."""
    from conftest import STUDY_LOGS, need

    from echolib.report.study_logs import read_log as read_study_log

    folder = need(STUDY_LOGS / "medgan")
    m2 = read_study_log(folder / "metrics_medganM2.csv")
    assert m2["epoch"].is_monotonic_increasing and m2["epoch"].iloc[0] == 1
    assert m2["fid"].min() == pytest.approx(63.47, abs=0.01)  # the README's best MedGAN, not a summary row
    assert abs(-m2["loss_D"].median() - 0.5) < 0.1 and m2["loss_G"].median() > 0.3
