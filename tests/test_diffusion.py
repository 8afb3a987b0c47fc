"""EDM diffusion and rectified flow: preconditioning, losses, ODE samplers, conditioning, checkpoints."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import trainer_context

from echolib.data.frames import FrameDataset
from echolib.errors import ConfigError
from echolib.images import to_float
from echolib.models.diffusion import (
    Diffusion,
    DiffusionConfig,
    edm_loss_weight,
    edm_precond,
    edm_sigmas,
    flow_times,
    network_evaluations,
    solve_dpmpp_2m,
)
from echolib.models.registry import config_names
from echolib.train.loop import Trainer, train
from echolib.train.run_config import build_model, load_config
from echolib.train.sampling import load_model

PHASES = ["ED", "ES", "other"]


def tiny(**over) -> DiffusionConfig:
    """A U-Net small enough for many CPU calls per test (3 levels, one block each)."""
    base = {"channels": 8, "channel_mult": (1, 2, 2), "num_blocks": 1, "attn_resolutions": (16,), "head_channels": 16,
                "dropout": 0.0, "lr": 2e-3, "lr_rampup_kimg": 0.0}
    return DiffusionConfig(**(base | over))


def randomize_output(model: Diffusion) -> Diffusion:
    """Zero-initialised layers make an untrained network output exactly 0 and ignore its conditioning;
    perturb every weight (the EMA copy identically) so tests see a network whose output depends on everything."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p, q in zip(model.nets["net"].parameters(), model.ema["net"].parameters()):
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
            q.copy_(p)
    return model


@pytest.fixture(scope="module")
def phantom64(tmp_path_factory):
    """128 phantom frames at 64x64 with a manifest (phase_label ED/ES/other)."""
    from echolib.data import phantom

    return phantom.generate(tmp_path_factory.mktemp("ph") / "phantom64", 128, size=64, seed=0, workers=1,
                            progress=False) / "manifest.csv"


def count_calls(net: torch.nn.Module) -> list[int]:
    calls = [0]
    net.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


# -- network and preconditioning ------------------------------------------------------------
@pytest.mark.parametrize("resolution,mult", [(64, (1, 2, 2)), (128, (1, 1, 2, 2))])
@pytest.mark.parametrize("formulation", ["edm", "flow"])
def test_shapes_and_ranges(resolution, mult, formulation):
    model = randomize_output(Diffusion(tiny(channel_mult=mult, formulation=formulation), resolution))
    x = torch.randn(3, 1, resolution, resolution)
    out = model.nets["net"](x, torch.randn(3))
    assert out.shape == x.shape and torch.isfinite(out).all()
    images = model.sample(5, torch.Generator().manual_seed(0), steps=2)
    assert images.shape == (5, 1, resolution, resolution) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0.05


def test_zero_initialised_network_outputs_zero():
    """ADM's zero-initialised last layers: at step 0 the denoiser is exactly c_skip * x."""
    model = Diffusion(tiny(), 64)
    x = torch.randn(4, 1, 64, 64)
    assert torch.equal(model.nets["net"](x, torch.zeros(4)), torch.zeros_like(x))


@pytest.mark.parametrize("sigma", [0.01, 0.2, 0.5, 2.0, 80.0])
def test_edm_preconditioning_gives_unit_variance_input_and_target(sigma):
    """The point of c_in/c_skip/c_out: for data of std sigma_data, F's input and target have unit variance."""
    sd = 0.5
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(400_000, generator=gen, dtype=torch.float64) * sd
    x = x0 + sigma * torch.randn(400_000, generator=gen, dtype=torch.float64)
    s = torch.tensor(sigma, dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = edm_precond(s, sd)
    assert (c_in * x).var().item() == pytest.approx(1.0, rel=0.01)
    assert ((x0 - c_skip * x) / c_out).var().item() == pytest.approx(1.0, rel=0.01)
    # the loss weight undoes c_out, so every noise level contributes with unit weight
    assert (edm_loss_weight(s, sd) * c_out**2).item() == pytest.approx(1.0, rel=1e-12)
    assert c_noise.item() == pytest.approx(math.log(sigma) / 4)


def test_denoiser_returns_its_input_as_sigma_goes_to_zero():
    model = randomize_output(Diffusion(tiny(), 64))
    net = model.nets["net"]
    x = torch.rand(4, 1, 64, 64) * 2 - 1
    assert (model.denoise(net, x, torch.full((4,), 0.5)) - x).abs().max() > 0.1  # the network does act
    assert torch.allclose(model.denoise(net, x, torch.full((4,), 1e-6)), x, atol=1e-4)
    assert torch.allclose(model.predict_clean(x, torch.full((4,), 1e-6), use_ema=False), x, atol=1e-4)
    flow = randomize_output(Diffusion(tiny(formulation="flow"), 64))
    assert torch.allclose(flow.predict_clean(x, torch.zeros(4)), x)  # t = 0 is the data itself
    assert (flow.predict_clean(x, torch.full((4,), 0.5)) - x).abs().max() > 0.1
    # and at huge noise the input is ignored: D -> sigma_data * F(c_in x), bounded however large x is
    big = model.denoise(net, 1000 * x, torch.full((4,), 1000.0))
    assert big.abs().max() < 10


def test_edm_sigma_schedule():
    grid = edm_sigmas(18, 0.002, 80.0, 7.0)
    assert len(grid) == 19 and grid[-1] == 0.0
    assert grid[0] == pytest.approx(80.0) and grid[-2] == pytest.approx(0.002)
    assert all(a > b for a, b in itertools.pairwise(grid))
    # steps shrink towards low noise, where detail forms; more so than with rho = 1 (uniform in sigma)
    steps = [a - b for a, b in itertools.pairwise(grid)]
    assert all(a > b for a, b in itertools.pairwise(steps))
    assert sum(s < 1 for s in grid[:-1]) > sum(s < 1 for s in edm_sigmas(18, 0.002, 80.0, 1.0)[:-1]) + 4


# -- training ---------------------------------------------------------------------------------
@pytest.mark.parametrize("formulation", ["edm", "flow"])
def test_losses_finite_and_weights_move(phantom64, formulation):
    ds = FrameDataset(phantom64)
    model = Diffusion(tiny(formulation=formulation), 64)
    opts = model.make_optimizers()
    before = [p.detach().clone() for p in model.nets["net"].parameters()]
    losses = [model.train_step(trainer_context(ds.images, s, 8), opts)["loss"] for s in range(3)]
    assert all(loss.dim() == 0 and torch.isfinite(loss) and not loss.requires_grad for loss in losses)
    moved = sum(not torch.equal(a, b) for a, b in zip(before, model.nets["net"].parameters()))
    assert moved > len(before) // 2


def test_initial_edm_loss_matches_its_closed_form(phantom64):
    """With F == 0 (zero-initialised output) the weighted loss at noise level sigma is, in expectation,
    ``(m2 sigma^2 / sd^2 + sd^2) / (sigma^2 + sd^2)`` where ``m2 = E[x0^2]``: 1 for zero-mean data of std sd.
    """
    ds = FrameDataset(phantom64)
    x0 = to_float(ds.images).double()
    sd, m2 = 0.5, x0.square().mean().item()
    model = Diffusion(tiny(sigma_data=sd), 64)
    loss = model.train_step(trainer_context(ds.images, 0, 128), model.make_optimizers())["loss"].item()
    sigma = (torch.randn(1_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.2 - 1.2).exp()
    expected = ((m2 * sigma**2 / sd**2 + sd**2) / (sigma**2 + sd**2)).mean().item()
    assert expected > 1.5  # the dark background makes m2 > sd^2: the check is not the trivial "loss == 1"
    assert loss == pytest.approx(expected, rel=0.2)


def test_lr_warms_up_linearly(phantom64):
    ds = FrameDataset(phantom64)
    model = Diffusion(tiny(lr=1e-3, lr_rampup_kimg=0.08), 64)
    opts = model.make_optimizers()
    model.train_step(trainer_context(ds.images, 0, 8), opts)
    assert opts["net"].param_groups[0]["lr"] == pytest.approx(1e-3 * 8 / 80)
    model.train_step(trainer_context(ds.images, 20, 8), opts)
    assert opts["net"].param_groups[0]["lr"] == pytest.approx(1e-3)


# -- sampling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("formulation", ["edm", "flow"])
@pytest.mark.parametrize("sampler,steps,nfe", [("heun", 1, 1), ("heun", 4, 7), ("heun", 18, 35), ("euler", 5, 5),
                                               ("dpm2m", 1, 1), ("dpm2m", 6, 6)])
def test_number_of_network_evaluations(formulation, sampler, steps, nfe):
    model = Diffusion(tiny(formulation=formulation), 64)
    calls = count_calls(model.ema["net"])
    x = model.sample(2, torch.Generator().manual_seed(0), steps=steps, sampler=sampler)
    assert calls[0] == nfe == network_evaluations(sampler, steps)
    assert x.shape == (2, 1, 64, 64) and torch.isfinite(x).all()


def test_default_sampler_stays_within_50_evaluations():
    for name in config_names("diffusion"):
        m = load_config("diffusion", name).model
        assert network_evaluations(m.sampler, m.steps) <= 50, name


@pytest.mark.parametrize("formulation", ["edm", "flow"])
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_dpm_solver_follows_the_exact_path_when_the_data_is_one_frame(formulation, steps):
    """Data of a single frame ``x0`` make the ideal denoiser return ``x0`` at every level; the ODE's solution is then
    ``alpha_t x0 + sigma_t n`` for the starting noise ``n``, which DPM-Solver++ must reproduce at every grid point."""
    if formulation == "edm":
        grid, scales = edm_sigmas(steps, 0.002, 80.0, 7.0), lambda s: (1.0, s)
    else:
        grid, scales = flow_times(steps), lambda t: (1.0 - t, t)
    gen = torch.Generator().manual_seed(steps)
    x0, n = torch.randn(3, 1, 8, 8, generator=gen), torch.randn(3, 1, 8, 8, generator=gen)
    a, s = scales(grid[0])
    for end in range(1, len(grid)):
        out = solve_dpmpp_2m(lambda x, t: x0, a * x0 + s * n, grid[: end + 1], scales)
        a_end, s_end = scales(grid[end])
        torch.testing.assert_close(out, a_end * x0 + s_end * n, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("formulation", ["edm", "flow"])
def test_few_steps_give_valid_images_and_sampling_is_deterministic(formulation):
    model = randomize_output(Diffusion(tiny(formulation=formulation), 64))
    a = model.sample(6, torch.Generator().manual_seed(3), steps=4)
    b = model.sample(6, torch.Generator().manual_seed(3), steps=4)
    c = model.sample(6, torch.Generator().manual_seed(4), steps=4)
    assert torch.isfinite(a).all() and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_solvers_converge_with_their_order_to_the_exact_ode_solution():
    """With F == 0 the denoiser is c_skip x and the probability-flow ODE has the closed-form solution
    ``x(sigma) = x(sigma_max) sqrt(sigma^2 + sd^2) / sqrt(sigma_max^2 + sd^2)``: halving the step size must cut
    Heun's error by about 4 (second order) and Euler's by about 2 (first order)."""
    model = Diffusion(tiny(), 64)
    g = lambda: torch.Generator().manual_seed(0)
    start = torch.randn(4, 1, 64, 64, generator=g()) * 80.0
    exact = (start * 0.5 / math.sqrt(80.0**2 + 0.25)).clamp(-1, 1)

    def error(steps, sampler):
        return (model.sample(4, g(), steps=steps, sampler=sampler) - exact).abs().mean().item()

    heun = error(4, "heun") / error(8, "heun")
    euler = error(8, "euler") / error(16, "euler")
    assert heun > 3.0 and 1.5 < euler < 2.5, (heun, euler)
    # DPM-Solver++(2M) is second order once its steps are small (its first and last steps are first order) ...
    dpm = [error(steps, "dpm2m") for steps in (16, 32, 64)]
    assert dpm[0] / dpm[1] > 3.0 and dpm[1] / dpm[2] > 3.0, dpm
    # ... and for the same 8 network evaluations closer to the solution than Euler or Heun
    assert error(8, "dpm2m") < min(error(8, "euler"), error(4, "heun")) / 2


def test_unknown_sampling_options_are_errors():
    model = Diffusion(tiny(), 64)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ConfigError, match="sampler"):
        model.sample(2, g, sampler="rk4")
    with pytest.raises(ConfigError, match="steps"):
        model.sample(2, g, steps=0)
    with pytest.raises(ConfigError, match="unknown option"):
        model.sample(2, g, temperature=0.5)
    with pytest.raises(ConfigError, match="unconditional"):
        model.sample(2, g, label="ED")


# -- conditioning on cardiac phase -------------------------------------------------------------
def test_labels_are_read_from_the_manifest_and_gathered_by_index(phantom64):
    ds = FrameDataset(phantom64)
    model = Diffusion(tiny(labels=PHASES, label_dropout=0.0), 64)
    model.setup(ds)
    expected = torch.tensor([PHASES.index(info.get("phase_label")) for info in ds.infos])
    assert torch.equal(model.train_labels, expected) and len(set(expected.tolist())) == 3
    assert torch.allclose(model.class_freq, torch.bincount(expected).float() / len(expected))
    seen = []
    model.nets["net"].register_forward_pre_hook(lambda mod, args: seen.append(args[2]))
    ctx = trainer_context(ds.images, 0, 16)
    drawn = []
    inner = ctx.next_real
    ctx.next_real = lambda: drawn.append(inner()) or drawn[-1]
    model.train_step(ctx, model.make_optimizers())
    assert torch.equal(seen[0].argmax(1), expected[drawn[0].index]) and torch.equal(seen[0].sum(1), torch.ones(16))


def test_labels_are_found_in_the_manifest_beside_a_folder_of_frames(phantom64):
    """data="phantom" resolves to a folder: its frames have no metadata, but its manifest.csv names the phases."""
    by_manifest = Diffusion(tiny(labels=PHASES), 64)
    by_manifest.setup(FrameDataset(phantom64))
    folder = FrameDataset(phantom64.parent)
    assert folder.infos[0].get("phase_label") is None
    by_folder = Diffusion(tiny(labels=PHASES), 64)
    by_folder.setup(folder)
    names = FrameDataset(phantom64).names
    order = [names.index(n) for n in folder.names]
    assert torch.equal(by_folder.train_labels, by_manifest.train_labels[order])


def test_label_dropout_zeroes_labels(phantom64):
    ds = FrameDataset(phantom64)
    model = Diffusion(tiny(labels=PHASES, label_dropout=0.5), 64)
    model.setup(ds)
    seen = []
    model.nets["net"].register_forward_pre_hook(lambda mod, args: seen.append(args[2]))
    model.train_step(trainer_context(ds.images, 0, 64), model.make_optimizers())
    dropped = (seen[0].sum(1) == 0).float().mean().item()
    assert 0.25 < dropped < 0.75


def test_conditional_model_without_labels_in_the_data_is_a_clear_error(noise_frames, phantom64):
    bare = FrameDataset(noise_frames)
    assert set(bare.field("phase_label")) == {None}  # what the diffusion chapter checks before training a conditional model
    assert set(FrameDataset(phantom64.parent).field("phase_label")) == set(PHASES)  # the manifest beside the folder
    model = Diffusion(tiny(labels=PHASES), 64)
    with pytest.raises(ConfigError, match="phase_label"):
        model.setup(bare)


def test_sampling_with_a_label_and_guidance(phantom64):
    ds = FrameDataset(phantom64)
    model = randomize_output(Diffusion(tiny(labels=PHASES), 64))
    model.setup(ds)
    g = lambda: torch.Generator().manual_seed(0)
    ed = model.sample(4, g(), steps=3, label="ED")
    es = model.sample(4, g(), steps=3, label=1)
    mixed = model.sample(4, g(), steps=3, label=["ED", "ES", "ED", "ES"])
    assert ed.shape == (4, 1, 64, 64) and not torch.equal(ed, es)
    assert torch.equal(mixed[0], ed[0]) and torch.equal(mixed[1], es[1])
    calls = count_calls(model.ema["net"])
    guided = model.sample(4, g(), steps=3, label="ED", guidance=3.0)
    assert calls[0] == 5 and torch.isfinite(guided).all() and not torch.equal(guided, ed)
    unlabelled = model.sample(4, g(), steps=3)  # labels drawn with the training frequencies
    assert torch.isfinite(unlabelled).all()
    with pytest.raises(ConfigError, match="unknown label"):
        model.sample(2, g(), label="diastole")
    strict = Diffusion(tiny(labels=PHASES, label_dropout=0.0), 64)
    with pytest.raises(ConfigError, match="label_dropout"):
        strict.sample(2, g(), label="ED", guidance=2.0)


# -- configs, end-to-end training, checkpoints ---------------------------------------------------
def test_invalid_configs_fail_at_construction():
    with pytest.raises(ConfigError, match="fourier"):
        Diffusion(tiny(formulation="flow", embedding="fourier"), 64)
    with pytest.raises(ConfigError, match="channel_mult"):
        Diffusion(tiny(channel_mult=(1, 1, 1, 1, 1, 1)), 64)
    with pytest.raises(ConfigError, match="duplicates"):
        Diffusion(tiny(labels=["ED", "ED"]), 64)
    with pytest.raises(ConfigError, match="model.sampler must be one of heun, euler, dpm2m"):
        Diffusion(tiny(sampler="rk4"), 64)


def test_all_configs_build():
    names = config_names("diffusion")
    assert {"smoke", *(f"E{i}" for i in range(1, 9))} <= set(names)
    for name in names:
        run = load_config("diffusion", name)
        with torch.device("meta"):
            model = build_model(run)
        params = sum(p.numel() for p in model.nets["net"].parameters())
        assert params > 1e5, name
        if name.startswith("E"):  # the study-scale configurations
            assert run.train.resolution == 128 and run.train.kimg >= 500, name


def _pixel_gap(images: torch.Tensor, data: torch.Tensor) -> float:
    return abs(images.mean().item() - data.mean().item()) + abs(images.std().item() - data.std().item())


@pytest.mark.slow
def test_short_training_moves_samples_toward_the_data(phantom64, tmp_path):
    """The smoke config on the phantom: after 0.4 kimg the samples' pixel statistics approach the data's."""
    data = to_float(FrameDataset(phantom64).images)
    run = load_config("diffusion", "smoke", {"train": {"kimg": 0.4}})
    untrained = build_model(run)
    trainer = Trainer(run, phantom64, tmp_path / "run", device="cpu", progress=False)
    trainer.fit()
    gen = lambda: torch.Generator().manual_seed(0)
    before = _pixel_gap(untrained.sample(32, gen()), data)
    after = _pixel_gap(trainer.model.sample(32, gen()), data)
    assert after < 0.5 * before, (before, after)
    # and the denoising loss fell at every noise level that matters for the image's layout
    x0 = data[:32]
    levels = [0.1, 0.5, 2.0, 10.0]
    trained_losses = trainer.model.level_losses(x0, levels, gen())
    untrained_losses = untrained.level_losses(x0, levels, gen())
    assert (trained_losses < untrained_losses).all(), (trained_losses, untrained_losses)


def test_checkpoint_round_trip_of_a_conditional_model(phantom64, tmp_path):
    run = load_config("diffusion", "smoke_cond", {"train": {"kimg": 0.08}})
    trainer = Trainer(run, phantom64, tmp_path / "run", device="cpu", progress=False)
    out = trainer.fit()
    loaded, _path = load_model(out, device="cpu")
    assert torch.equal(loaded.class_freq, trainer.model.class_freq)
    for kwargs in ({}, {"label": "ES", "guidance": 2.0, "steps": 3}):
        a = trainer.model.sample(4, torch.Generator().manual_seed(5), **kwargs)
        b = loaded.sample(4, torch.Generator().manual_seed(5), **kwargs)
        assert torch.equal(a, b)


@pytest.mark.slow
def test_flow_matching_smoke_run_trains_end_to_end(phantom64, tmp_path):
    run = load_config("diffusion", "smoke", {"model": {"formulation": "flow"}, "train": {"kimg": 0.04,
                                                                                          "tick_kimg": 0.02}})
    out = train(run, phantom64, tmp_path / "run", device="cpu", progress=False)
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and "loss" in rows[0]
    assert list((out / "samples").glob("grid-*.png"))
    # the steps benchmark on the run: DPM-Solver++(2M) on the straight-line parameterisation, against held-out videos
    script = Path(__file__).resolve().parents[1] / "bench" / "sampler_steps.py"
    done = subprocess.run([sys.executable, str(script), str(out), "--samplers", "dpm2m,euler", "--steps", "1,3",
                           "--n", "8", "--metrics", "jsd", "--device", "cpu"], capture_output=True, text=True,
                          check=False, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["sampler"], r["steps"], r["nfe"]) for r in lines] == [("dpm2m", 1, 1), ("dpm2m", 3, 3),
                                                                        ("euler", 1, 1), ("euler", 3, 3)]
    assert all(r["run"] == "run" and r["n"] == 8 and 0 < r["n_real"] < 128 and 0 <= r["jsd"] <= 1 for r in lines)
    assert lines[0]["jsd"] == pytest.approx(lines[2]["jsd"], abs=1e-3)  # one step of either is the same step
    refused = subprocess.run([sys.executable, str(script), str(out), "--steps", "0"], capture_output=True,
                             text=True, check=False)
    assert refused.returncode == 2 and "--steps expects positive integers" in refused.stderr


@pytest.mark.slow
def test_compare_steps_scores_every_solver_and_step_count_from_the_same_noise(phantom64):
    """The untrained denoiser is ``c_skip x``, whose ODE ends at ``x(sigma_max) sigma_d / sigma_max``: standard
    deviation ``sigma_d`` = 0.5. One step returns the denoiser's mean guess (almost 0); enough steps of either solver
    reach the solution, and the table must show it row by row, with FID in the echo feature space."""
    from echolib.report.sampler_steps import compare_steps, steps_figure

    model = Diffusion(tiny(), 64)
    real = FrameDataset(phantom64).images[:48]
    streamed: list[dict] = []
    result = compare_steps(model, real, ["heun", "dpm2m"], [1, 16], n=24, metrics=["fid", "jsd"], batch=16,
                           on_row=streamed.append)
    assert streamed == result.rows  # each row handed over as soon as it is scored, in order
    rows = {(r["sampler"], r["steps"]): r for r in result.rows}
    assert list(rows) == [("heun", 1), ("heun", 16), ("dpm2m", 1), ("dpm2m", 16)]
    assert [r["nfe"] for r in rows.values()] == [1, 31, 1, 16]
    for (solver, steps), r in rows.items():
        assert r["extractor"] == "echo" and math.isfinite(r["fid"]) and r["fid"] >= 0 and 0 <= r["jsd"] <= 1
        assert r["images_per_s"] > 0
        if steps == 1:
            assert r["std"] < 0.05, (solver, r["std"])
        else:
            assert r["std"] == pytest.approx(0.5, abs=0.05), (solver, r["std"])
    assert [tuple(p.shape) for p in result.previews] == [(8, 1, 64, 64)] * 4
    # one noise for every row: one step of either solver is the same DDIM step
    torch.testing.assert_close(result.previews[0], result.previews[2], atol=1e-4, rtol=0)
    with pytest.raises(ConfigError, match="n >= 2"):
        compare_steps(model, real, ["heun"], [], n=24)
    # the figure: one line per solver against NFE in each panel, the reference dashed where given
    fig = steps_figure(result.rows, ["fid", "std"], reference={"std": 0.5})
    fid_ax, std_ax = fig.axes
    assert [list(line.get_xdata()) for line in fid_ax.lines] == [[1, 31], [1, 16]]
    assert len(std_ax.lines) == 3 and list(std_ax.lines[2].get_ydata()) == [0.5, 0.5]
    with pytest.raises(ConfigError, match="no kid"):
        steps_figure(result.rows, ["kid"])
