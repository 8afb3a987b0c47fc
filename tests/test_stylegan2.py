"""StyleGAN2-ADA: network shapes, demodulation, truncation, style mixing, the training step's schedule of
lazy regularisers, exact checkpoint round trips, the configurations and the official auto rule."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from conftest import dispatched_ops

from echolib.config import ConfigError
from echolib.models.base import RealBatch, StepContext
from echolib.models.layers import modulated_conv2d
from echolib.models.registry import config_names
from echolib.models.stylegan2 import StyleGAN2ADA, StyleGAN2Config, auto_config
from echolib.resampling import blur, downsample2d, upsample2d
from echolib.train.run_config import build_model, load_config

TINY = StyleGAN2Config(z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16, sample_batch=4)


def model(resolution: int = 64, **over) -> StyleGAN2ADA:
    torch.manual_seed(0)
    return StyleGAN2ADA(replace(TINY, **over), resolution=resolution)


def phantom_batch(n: int = 8, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Bright elliptical 'chambers' in a dark sector, like a crude apical four-chamber view, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    out = []
    for _ in range(n):
        cx, cy, r = (torch.rand(3, generator=g) * 0.3 + torch.tensor([-0.15, -0.15, 0.3])).tolist()
        sector = (yy > -0.9) & (xx.abs() < (yy + 1) * 0.6)
        wall = (((xx - cx) / r) ** 2 + ((yy - cy) / (1.4 * r)) ** 2 - 1).abs() < 0.25
        img = torch.where(sector, -0.6 + 1.4 * wall.float(), torch.full_like(xx, -1.0))
        out.append(img + 0.1 * torch.randn(size, size, generator=g))
    return torch.stack(out)[:, None].clamp(-1, 1)


def context(step: int, real: torch.Tensor, seed: int = 0) -> StepContext:
    return StepContext(
        step=step, nimg=step * real.shape[0], batch=real.shape[0], device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(1000 * seed + step),
        next_real=lambda: RealBatch(real, torch.arange(real.shape[0])),
    )  # fmt: skip


# -- networks -------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_shapes_and_ranges_at_every_resolution(resolution):
    m = model(resolution)
    G, D = m.nets["G"], m.nets["D"]
    assert G.num_ws == 2 * int(math.log2(resolution)) - 2
    img = G(torch.randn(4, 16))
    assert img.shape == (4, 1, resolution, resolution) and img.dtype == torch.float32 and torch.isfinite(img).all()
    logits = D(img)
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    samples = m.sample(6, torch.Generator().manual_seed(0))
    assert samples.shape == (6, 1, resolution, resolution) and samples.min() >= -1 and samples.max() <= 1


def test_unsupported_resolution_and_bad_config_are_config_errors():
    with pytest.raises(ConfigError, match="resolution"):
        StyleGAN2ADA(TINY, resolution=32)
    with pytest.raises(ConfigError, match="augpipe"):
        StyleGAN2ADA(replace(TINY, augpipe="bgch"), resolution=64)
    with pytest.raises(ConfigError, match="mbstd"):
        model().nets["D"](torch.zeros(6, 1, 64, 64))  # 6 images, groups of 4


def test_gradients_reach_every_parameter_of_g_and_d():
    m = model()
    G, D = m.nets["G"], m.nets["D"]
    z = torch.randn(4, 16)
    noise = [torch.randn(4, 1, r, r) for r in G.noise_resolutions]
    D(G(z, torch.randn(4, 16), torch.tensor([1, 3, 5, 9]), noise)).sum().backward()
    for net in (G, D):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0 or "noise_strength" in name, name  # noise strength starts at 0


def test_demodulation_keeps_unit_scale_whatever_the_style_magnitude():
    torch.manual_seed(0)
    x = torch.randn(8, 64, 16, 16)
    w = torch.randn(32, 64, 3, 3)
    styles = torch.randn(8, 64) + 1
    y = modulated_conv2d(x, w, styles)
    assert 0.8 < y.std() < 1.2  # unit-variance in, unit-variance out
    assert torch.allclose(modulated_conv2d(x, w, styles * 100.0), y, atol=1e-4)  # scale-free per sample
    undemod = modulated_conv2d(x, w, styles * 100.0, demodulate=False)
    assert undemod.std() > 100 * y.std()


def test_fused_and_unfused_modulated_convolutions_agree():
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 8, 16, 16), torch.randn(5, 8, 3, 3), torch.randn(3, 8)
    for up in (1, 2):
        a = modulated_conv2d(x, w, s, up=up)
        b = modulated_conv2d(x, w, s, up=up, fused=True)
        assert a.shape == (3, 5, 16 * up, 16 * up) and torch.allclose(a, b, atol=1e-4)


def test_fir_resampling_equals_the_depthwise_convolution_it_replaces():
    """upfirdn2d with [1,3,3,1]: zero insertion + blur (x4) for up, blur + decimation for down."""
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    k = (f[:, None] * f[None, :] / 64).expand(3, 1, 4, 4)
    up = torch.zeros(2, 3, 32, 32, dtype=torch.float64)
    up[:, :, ::2, ::2] = x
    assert torch.allclose(upsample2d(x), F.conv2d(F.pad(up, [2, 1, 2, 1]), 4 * k, groups=3))
    assert torch.allclose(downsample2d(x), F.conv2d(x, k, stride=2, padding=1, groups=3))
    assert torch.allclose(blur(x, pad=2), F.conv2d(x, k, padding=2, groups=3))
    assert torch.allclose(upsample2d(torch.ones(1, 1, 8, 8))[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))
    six = torch.tensor([1.0, 5.0, 10.0, 10.0, 5.0, 1.0], dtype=torch.float64)  # any even filter resamples
    k6 = (six[:, None] * six[None, :] / 1024).expand(3, 1, 6, 6)
    assert torch.allclose(downsample2d(x, taps=tuple(six / 32)), F.conv2d(x, k6, stride=2, padding=2, groups=3))
    with pytest.raises(ValueError, match="even number of taps, got 3"):
        downsample2d(x, taps=(0.25, 0.5, 0.25))
    with pytest.raises(ValueError, match="even size, got 15 along dim 3"):
        downsample2d(x[..., :15])


def _depthwise_references(channels: int):
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    k = (f[:, None] * f[None, :] / 64).expand(channels, 1, 4, 4)

    def up(x):
        z = torch.zeros(*x.shape[:2], 2 * x.shape[2], 2 * x.shape[3], dtype=x.dtype)
        z[:, :, ::2, ::2] = x
        return F.conv2d(F.pad(z, [2, 1, 2, 1]), 4 * k, groups=channels)

    return {
        "up": (upsample2d, up),
        "down": (downsample2d, lambda x: F.conv2d(x, k, stride=2, padding=1, groups=channels)),
        "blur1": (lambda x: blur(x, pad=1, gain=4.0), lambda x: F.conv2d(x, 4 * k, padding=1, groups=channels)),
        "blur2": (lambda x: blur(x, pad=2), lambda x: F.conv2d(x, k, padding=2, groups=channels)),
    }


@pytest.mark.parametrize("op", ["up", "down", "blur1", "blur2"])
def test_fir_first_and_second_derivatives_equal_the_depthwise_convolution(op):
    """The hand-written transposes (slices, no slice_backward) give the same gradients, and gradients of
    gradients, as autograd through the convolution: what R1 and path-length regularisation differentiate."""
    ours, ref = _depthwise_references(2)[op]
    x = torch.randn(2, 2, 8, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(ours, (x,))
    probe = torch.randn_like(ref(x)).requires_grad_(True)
    weight = torch.linspace(-1, 1, x.numel(), dtype=x.dtype).reshape(x.shape)
    grads = []
    for fn in (ours, ref):
        (g,) = torch.autograd.grad((fn(x) * probe).sum(), x, create_graph=True)  # A^T probe
        (gg,) = torch.autograd.grad((weight * g.square()).sum(), probe)  # 2 A (weight * g): the transpose's gradient
        grads.append((g, gg))
    assert torch.allclose(grads[0][0], grads[1][0]) and torch.allclose(grads[0][1], grads[1][1])


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("op", ["up", "down", "blur1", "blur2"])
def test_fir_is_matmuls_on_views_in_either_memory_format(op, memory_format):
    """Forward, gradient and gradient of gradient are (batched) matmuls on permuted views: no copy, pad or
    elementwise pass over the activations (a strided elementwise pass per tap was half of a GPU step), and
    the output keeps the input's memory format so the next convolution needs no layout conversion."""
    ours, _ = _depthwise_references(2)[op]
    x = torch.randn(2, 2, 8, 12).to(memory_format=memory_format).requires_grad_(True)
    ours(x)  # the filter matrices are built once per size, device and dtype
    with dispatched_ops() as seen:
        y = ours(x)
        (g,) = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)
    assert y.is_contiguous(memory_format=memory_format) and g.is_contiguous(memory_format=memory_format)
    assert "aten.bmm" in seen
    heavy = seen - {"aten.bmm", "aten.mm", "aten.permute", "aten.view", "aten._unsafe_view", "aten.expand",
                    "aten.t", "aten.transpose", "aten.detach", "aten.ones_like"}
    assert not heavy, heavy


def test_truncation_zero_gives_the_mean_w_image_for_every_z():
    m = model()
    G = m.ema["G"]
    G.mapping.w_avg.copy_(torch.randn(16))
    imgs = m.sample(6, torch.Generator().manual_seed(0), truncation=0.0, noise_mode="const")
    assert torch.allclose(imgs, imgs[:1].expand_as(imgs), atol=1e-6)
    ws = G.mapping.w_avg.expand(1, G.num_ws, 16)
    assert torch.allclose(imgs[0], G.synthesize(ws, noise_mode="const")[0].clamp(-1, 1), atol=1e-5)
    free = m.sample(6, torch.Generator().manual_seed(0), truncation=1.0, noise_mode="const")
    assert (free - free[:1]).abs().amax() > 1e-3


def test_style_mixing_takes_layers_from_the_second_latent_after_the_cutoff():
    m = model()
    G = m.nets["G"]
    z1, z2 = torch.randn(3, 16), torch.randn(3, 16)
    cut = torch.tensor([0, 4, G.num_ws])
    ws = G.map(z1, z2, cut)
    w1, w2 = G.mapping(z1), G.mapping(z2)
    same = lambda a, b: torch.allclose(a, b.expand_as(a), atol=1e-5)
    assert same(ws[0], w2[0])  # cutoff 0: every layer from z2
    assert same(ws[1, :4], w1[1]) and same(ws[1, 4:], w2[1])
    assert same(ws[2], w1[2])  # cutoff num_ws: no mixing
    mixed = G.synthesize(ws[1:2], noise_mode="const")
    for pure in (G(z1[1:2], noise_mode="const"), G(z2[1:2], noise_mode="const")):
        assert (mixed - pure).abs().amax() > 1e-4


# -- training -----------------------------------------------------------------------------


def test_train_steps_give_finite_losses_and_follow_the_lazy_schedules():
    m = model()
    opts = m.make_optimizers()
    real = phantom_batch()
    before = {k: v.clone() for k, v in m.nets["D"].state_dict().items()}
    steps = [1, 2, 4, 16, 17]
    seen = {s: m.train_step(context(s, real), opts) for s in steps}
    for s, stats in seen.items():
        assert {"loss_G", "loss_D", "D_real", "D_fake"} <= stats.keys()
        assert all(v.dim() == 0 and not v.requires_grad and torch.isfinite(v) for v in stats.values())
        assert ("loss_r1" in stats) == (s % 16 == 0), s  # R1 only every 16 steps
        assert ("loss_pl" in stats) == (s % 4 == 0), s  # path length only every 4 steps
    # each lazy regulariser takes its own optimizer step
    assert opts["D"].state[next(iter(m.nets["D"].parameters()))]["step"].item() == len(steps) + 1
    assert opts["G"].state[next(iter(m.nets["G"].parameters()))]["step"].item() == len(steps) + 2
    assert any(not torch.equal(before[k], v) for k, v in m.nets["D"].state_dict().items())
    assert m.pl_mean.item() > 0  # the running path length was tracked
    assert m.nets["G"].mapping.w_avg.abs().sum() > 0  # and so was the mean w


def test_lazy_regularisation_rescales_learning_rate_and_betas():
    m = model(lr=0.002)
    opts = m.make_optimizers()
    for name, k in (("G", 4), ("D", 16)):
        group = opts[name].param_groups[0]
        assert group["lr"] == pytest.approx(0.002 * k / (k + 1))
        assert group["betas"][1] == pytest.approx(0.99 ** (k / (k + 1))) and group["betas"][0] == 0.0
    eager = model(r1_interval=0, pl_interval=0).make_optimizers()
    assert eager["D"].param_groups[0]["lr"] == pytest.approx(0.002)


def test_ada_updates_p_every_interval_from_the_real_signs():
    m = model(ada_kimg=0.1)
    opts = m.make_optimizers()
    real = phantom_batch()
    for s in range(3):
        m.train_step(context(s, real), opts)
        # step 0 has a lazy R1 pass: its logits on a fresh augmentation of the reals count too (as officially)
        assert m.ada.p.item() == 0.0 and m.ada.signs[1].item() == 8 * (s + 1) + 8
    m.train_step(context(3, real), opts)
    assert m.ada.signs.abs().sum() == 0  # consumed
    expected = 8 * 4 / 100.0 if m.ada.rt.item() > 0.6 else 0.0
    assert m.ada.p.item() == pytest.approx(expected)
    stats = m.tick_stats()
    assert set(stats) == {"augment_p", "ada_rt"} and all(isinstance(v, torch.Tensor) for v in stats.values())
    assert model(augment="noaug").tick_stats() == {}


def test_training_is_deterministic_given_the_step_context():
    runs = []
    for _ in range(2):
        m = model()
        opts = m.make_optimizers()
        real = phantom_batch()
        for s in range(2):
            m.train_step(context(s, real), opts)
        runs.append(m.nets["G"].state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_checkpoint_round_trip_reproduces_samples_exactly():
    m = model(ada_kimg=0.05)
    opts = m.make_optimizers()
    real = phantom_batch()
    for s in range(4):
        m.train_step(context(s, real), opts)
    m.ema["G"].load_state_dict(m.nets["G"].state_dict())  # as the trainer's EMA would move it
    state = {
        "nets": {k: v.state_dict() for k, v in m.nets.items()},
        "ema": {k: v.state_dict() for k, v in m.ema.items()},
        "optimizers": {k: o.state_dict() for k, o in opts.items()},
        "extra": m.extra_state(),
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    m2 = model(ada_kimg=0.05)
    for k, net in m2.nets.items():
        net.load_state_dict(loaded["nets"][k])
    for k, net in m2.ema.items():
        net.load_state_dict(loaded["ema"][k])
    opts2 = m2.make_optimizers()
    for k, o in opts2.items():
        o.load_state_dict(loaded["optimizers"][k])
    m2.load_extra_state(loaded["extra"])
    assert m2.ada.p.item() == m.ada.p.item() and m2.pl_mean.item() == m.pl_mean.item()
    for kw in ({}, {"use_ema": False}, {"truncation": 0.5, "noise_mode": "const"}):
        a = m.sample(5, torch.Generator().manual_seed(3), **kw)
        b = m2.sample(5, torch.Generator().manual_seed(3), **kw)
        assert torch.equal(a, b), kw
    # and training continues identically
    ra, rb = m.train_step(context(5, real), opts), m2.train_step(context(5, real), opts2)
    assert all(torch.equal(ra[k], rb[k]) for k in ra)


def test_sampling_depends_only_on_the_generator_and_chunks_consistently():
    m = model()
    a = m.sample(10, torch.Generator().manual_seed(1))
    b = m.sample(10, torch.Generator().manual_seed(1))
    c = m.sample(10, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) psi; it takes truncation, noise_mode"):
        m.sample(2, torch.Generator(), psi=0.5)


# -- configurations -------------------------------------------------------------------------


def test_every_config_loads_and_builds():
    names = config_names("stylegan2_ada")
    assert {"smoke", "auto", "E1", "E4", "E9"} <= set(names)
    for name in names:
        run = load_config("stylegan2_ada", name)
        assert run.train.batch % run.model.mbstd_group == 0, name
        if name not in ("smoke", "cpu64"):
            assert run.train.resolution == 128, name
    e4 = load_config("stylegan2_ada", "E4")
    assert (e4.train.batch, e4.model.r1_gamma, e4.model.ada_target, e4.model.augment) == (32, 8.0, 0.6, "ada")
    assert load_config("stylegan2_ada", "E9").model.augment == "noaug"
    m = build_model(load_config("stylegan2_ada", "smoke"))
    assert sum(p.numel() for p in m.parameters()) < 300_000


@pytest.mark.realdata
def test_study_run_names_match_the_configs():
    """The study's log folders name gamma, batch and target: our E-configs must agree with them."""
    from conftest import STUDY_LOGS, need

    folder = need(STUDY_LOGS / "stylegan2_ada")
    for path in sorted(folder.glob("Metrics_StyleE*.csv")):
        name = path.stem.split("_Style")[1]
        with open(path, newline="") as fh:
            run_name = next(csv.DictReader(fh))["carpeta"]
        run = load_config("stylegan2_ada", name)
        assert f"gamma{run.model.r1_gamma:g}-batch{run.train.batch}" in run_name, (name, run_name)
        if "noaug" in run_name:
            assert run.model.augment == "noaug"
        else:
            assert run_name.split("target")[1].startswith(f"{run.model.ada_target:g}"), (name, run_name)


def test_auto_rule_matches_the_official_formula():
    # stylegan2-ada-pytorch --cfg auto, e.g. 128 px on 1 GPU: batch 32, gamma 0.1024, EMA 10 kimg
    a = auto_config(128)
    assert a["train"]["batch"] == 32 and a["model"]["r1_gamma"] == pytest.approx(0.1024)
    assert a["train"]["ema_kimg"] == 10.0 and a["model"]["channel_base"] == 16384 and a["model"]["lr"] == 0.0025
    b = auto_config(256, gpus=2)  # min(4096 // 256, 32) = 16 per GPU
    assert b["train"]["batch"] == 32 and b["model"]["r1_gamma"] == pytest.approx(0.0002 * 256**2 / 32)
    c = auto_config(1024, gpus=8)
    assert c["train"]["batch"] == 32 and c["model"]["channel_base"] == 32768 and c["model"]["lr"] == 0.002
    assert auto_config(64, gpus=8)["train"]["batch"] == 64 and auto_config(64, gpus=8)["model"]["mbstd_group"] == 4
    assert auto_config(128, batch=16)["model"]["r1_gamma"] == pytest.approx(0.1024)  # --batch changes only the batch


def test_auto_yaml_is_auto_config_at_128():
    run = load_config("stylegan2_ada", "auto")
    rule = auto_config(128)
    for key, value in rule["model"].items():
        assert getattr(run.model, key) == pytest.approx(value), key
    for key, value in rule["train"].items():
        assert getattr(run.train, key) == pytest.approx(value), key
    assert load_config("stylegan2_ada", "auto", auto_config(256)).train.resolution == 256


# -- end to end ------------------------------------------------------------------------------


def test_smoke_config_trains_through_the_trainer_and_reloads(noise_frames, tmp_path):
    from echolib.train.loop import train
    from echolib.train.sampling import load_model

    run = load_config("stylegan2_ada", "smoke", {"train": {"kimg": 0.08, "snapshot_kimg": 0.08}})
    out = train(run, noise_frames, tmp_path / "run", device="cpu", progress=False)
    with open(out / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and all(math.isfinite(float(r["loss_G"])) for r in rows)
    assert rows[0]["loss_r1"] != "" and float(rows[-1]["augment_p"]) >= 0.0  # R1 ran at step 0; p logged
    model_, _ = load_model(out, device="cpu")
    a = model_.sample(4, torch.Generator().manual_seed(0))
    b = model_.sample(4, torch.Generator().manual_seed(0))
    assert a.shape == (4, 1, 64, 64) and torch.equal(a, b)


def test_judging_fakes_and_reals_in_one_call_equals_two_calls():
    """The D update stacks fakes and reals into one batch (``parts=2``); minibatch-stddev groups each part on
    its own, so the logits are those of two separate calls, and a group never mixes fakes with reals."""
    D = model(64, mbstd_group=4).nets["D"].double()
    fakes, reals = torch.randn(8, 1, 64, 64, dtype=torch.float64), phantom_batch(8).double()
    together = D(torch.cat([fakes, reals]), parts=2)
    assert torch.allclose(together, torch.cat([D(fakes), D(reals)]), rtol=1e-10, atol=1e-12)
    assert not torch.allclose(together, D(torch.cat([fakes, reals])))  # one group of 16 would mix them
    with pytest.raises(ValueError, match="batch of 15 does not split into 2 equal parts"):
        D(torch.cat([fakes, reals])[:15], parts=2)


def test_in_channels_last_every_convolution_reads_channels_last():
    """A one-channel image is both layouts at once, so the discriminator's first 1x1 conv returns NCHW; without
    care the first block ran NCHW at full resolution and each of its convolutions converted the layout. (At 4x4,
    the constant input and the minibatch-stddev concatenation stay NCHW: 16 pixels, nothing to gain.)"""
    m = model(64)
    m.to(memory_format=torch.channels_last)
    inputs = []

    def record(module, args):
        if args[0].shape[-1] > 4:
            inputs.append((type(module).__name__, args[0].shape, args[0].is_contiguous(memory_format=torch.channels_last)))

    for net in (m.nets["D"], m.nets["G"]):
        for mod in net.modules():
            if type(mod).__name__ in ("EqualConv2d", "SynthesisLayer") and mod is not getattr(net.blocks[0], "from_img", 0):
                mod.register_forward_pre_hook(record)
    m.nets["D"](phantom_batch(4).contiguous(memory_format=torch.channels_last))
    m.nets["G"](torch.randn(4, m.nets["G"].z_dim))
    assert len(inputs) >= 10 and all(ok for *_, ok in inputs), [i for i in inputs if not i[2]]


def test_path_length_mean_carries_the_batch_means_gradient_like_the_official_loss():
    from echolib.models.stylegan2 import path_length_penalty

    g = torch.Generator().manual_seed(0)
    lengths = (torch.rand(6, generator=g) + 0.5).requires_grad_(True)
    running = torch.tensor(0.8)
    penalty, new_mean = path_length_penalty(lengths, running, 0.01)
    (grad,) = torch.autograd.grad(penalty, lengths)
    # the official loss, written out: pl_mean = pl_mean.lerp(lengths.mean(), decay); penalty uses it undetached
    x = lengths.detach().clone().requires_grad_(True)
    official = (x - running.lerp(x.mean(), 0.01)).square().mean()
    (want,) = torch.autograd.grad(official, x)
    assert torch.allclose(grad, want, atol=1e-7) and torch.allclose(penalty, official)
    detached = (x - running.lerp(x.mean().detach(), 0.01)).square().mean()
    assert not torch.allclose(torch.autograd.grad(detached, x)[0], want, atol=1e-7)  # the test can tell them apart
    assert not new_mean.requires_grad and new_mean.item() == pytest.approx(0.99 * 0.8 + 0.01 * x.mean().item())
    # under DDP the all-reduced mean sets the value; the gradient still flows through the local lengths
    penalty_ddp, mean_ddp = path_length_penalty(lengths, running, 0.01, lengths.mean().detach())
    assert torch.allclose(torch.autograd.grad(penalty_ddp, lengths)[0], want, atol=1e-7)
    assert mean_ddp.item() == pytest.approx(new_mean.item())
