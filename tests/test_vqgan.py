"""VQGAN + transformer prior: shapes, the codebook, the adaptive GAN weight, the prior, two stages, checkpoints."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from echolib.data.frames import FrameDataset
from echolib.errors import ConfigError
from echolib.images import to_float, to_uint8
from echolib.metrics.perceptual import PERCEPTUAL_LOSSES, EchoPerceptual, resolve_perceptual
from echolib.models.base import RealBatch, StepContext
from echolib.models.registry import config_names
from echolib.models.vqgan import (
    CodePrior,
    VectorQuantizer,
    VQAutoencoder,
    adaptive_weight,
    code_statistics,
    generate_codes,
    sample_logits,
)
from echolib.report.reconstruction import reconstruction_metrics
from echolib.train import checkpoint as ckpt
from echolib.train.loop import Trainer
from echolib.train.run_config import build_model, load_config
from echolib.train.sampling import load_model


@pytest.fixture(scope="module")
def phantom64(tmp_path_factory) -> Path:
    from echolib.data.sources import resolve_data

    return resolve_data("phantom", cache_dir=tmp_path_factory.mktemp("cache"), n=48, size=64, workers=1,
                        progress=False)


@pytest.fixture(scope="module")
def smoke_run(phantom64, tmp_path_factory):
    """One smoke training run (stage 1 to 0.2 kimg, prior to 0.32 kimg), shared by several tests."""
    torch.set_num_threads(1)
    trainer = Trainer(load_config("vqgan", "smoke"), phantom64, tmp_path_factory.mktemp("run") / "vqgan",
                      device="cpu", progress=False)
    trainer.fit()
    return trainer


def smoke_model(resolution: int = 64, **model):
    """A smoke VQGAN as the trainer builds it: with the perceptual distances handed in (``auto`` resolved)."""
    run = load_config("vqgan", "smoke", {"model": model, "train": {"resolution": resolution}})
    torch.manual_seed(0)
    built = build_model(run)
    built.use_perceptual(PERCEPTUAL_LOSSES)
    return built


def real_batch(folder: Path, n: int = 8) -> torch.Tensor:
    return to_float(FrameDataset(folder).images[:n])


def step_context(model, images: torch.Tensor, nimg: int, seed: int = 0) -> StepContext:
    g = torch.Generator().manual_seed(seed)
    return StepContext(step=0, nimg=nimg, batch=len(images), device=torch.device("cpu"), generator=g,
                       next_real=lambda: RealBatch(images=images, index=torch.arange(len(images))))


def read_log(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv") as fh:
        return list(csv.DictReader(fh))


# -- shapes and ranges ---------------------------------------------------------
@pytest.mark.parametrize("resolution", [64, 128])
def test_shapes_and_ranges(resolution):
    model = smoke_model(resolution).eval()
    f = model.down_factor
    assert f == 8 and model.code_size == resolution // f
    x = torch.rand(2, 1, resolution, resolution) * 2 - 1
    codes = model.encode_codes(x)
    assert codes.shape == (2, resolution // f, resolution // f) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < model.cfg.codebook_size
    recon = model.reconstruct(x)
    assert recon.shape == x.shape and recon.dtype == torch.float32
    assert float(recon.min()) >= -1 and float(recon.max()) <= 1
    g = torch.Generator().manual_seed(0)
    samples = model.sample(3, g)
    assert samples.shape == (3, 1, resolution, resolution) and torch.isfinite(samples).all()
    assert float(samples.min()) >= -1 and float(samples.max()) <= 1
    assert model.nets["prior"].length == (resolution // f) ** 2


def test_down_factor_follows_channel_mult_and_too_deep_is_refused():
    assert smoke_model(64, channel_mult=[1, 2, 2]).encode_codes(torch.zeros(1, 1, 64, 64)).shape == (1, 16, 16)
    with pytest.raises(ConfigError, match="channel_mult.*down factor of 128"):
        smoke_model(64, channel_mult=[1] * 8)


def test_study_configs_load_and_build_at_128():
    names = config_names("vqgan")
    assert {f"E{i}" for i in range(1, 9)} <= set(names)
    sizes = {}
    for name in [f"E{i}" for i in range(1, 9)]:
        run = load_config("vqgan", name)
        assert run.train.resolution == 128 and run.model.prior_start_kimg < run.train.kimg
        sizes[name] = (run.model.codebook_size, 128 // 2 ** (len(run.model.channel_mult) - 1))
    assert {k for k, _ in sizes.values()} == {256, 512, 1024}
    assert {s for _, s in sizes.values()} == {8, 16}
    model = build_model(load_config("vqgan", "E1"))
    assert model.code_size == 8 and model.nets["prior"].length == 64


# -- codebook ------------------------------------------------------------------
def test_code_statistics():
    uniform = code_statistics(torch.full((16,), 5.0))
    assert math.isclose(float(uniform["codebook_perplexity"]), 16.0, rel_tol=1e-9)
    assert float(uniform["codebook_usage"]) == 1.0
    one = code_statistics(torch.tensor([0.0, 7.0, 0.0, 0.0]))
    assert math.isclose(float(one["codebook_perplexity"]), 1.0) and float(one["codebook_usage"]) == 0.25


def test_quantizer_picks_the_nearest_code_and_st_losses():
    q = VectorQuantizer(4, 2, beta=0.25, mode="st", decay=0.99, eps=1e-5)
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    z = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.1, -0.1]]).t().reshape(1, 2, 1, 3)
    out = q(z)
    assert out.codes.flatten().tolist() == [1, 2, 0]
    mse = (z - q.codebook[out.codes.flatten()].t().reshape(1, 2, 1, 3)).square().mean()
    assert torch.allclose(out.loss, 1.25 * mse)  # codebook term + beta * commitment, equal in value
    assert torch.allclose(out.z_q, q.codebook[out.codes.flatten()].t().reshape(1, 2, 1, 3))


def test_straight_through_gradient_reaches_the_encoder(phantom64):
    torch.manual_seed(0)
    cfg = load_config("vqgan", "smoke").model
    ae = VQAutoencoder(cfg, 64, 1)
    x = real_batch(phantom64, 4)
    recon, q = ae(x)
    (recon - x).abs().mean().backward(retain_graph=True)  # no VQ loss: only the straight-through path reaches the encoder
    grad = ae.encoder.conv_in.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    assert ae.quantizer.codebook.grad is None  # the argmin passes nothing to the codebook...
    ae.zero_grad()
    q.loss.backward()  # ...the codebook loss does
    assert float(ae.quantizer.codebook.grad.abs().sum()) > 0


def test_ema_codebook_moves_to_cluster_means_without_gradients():
    torch.manual_seed(0)
    q = VectorQuantizer(8, 4, beta=0.25, mode="ema", decay=0.9, eps=1e-5)
    assert "codebook" not in dict(q.named_parameters()) and not q.codebook.requires_grad
    z = torch.randn(2, 4, 8, 8) * 0.5 + 2.0  # a cloud away from the N(0, 1) initial codes
    before = q.codebook.clone()
    used = torch.zeros(8, dtype=torch.bool)
    for _ in range(60):
        out = q(z)
        assert not out.loss.requires_grad  # nothing in the quantizer asks for a gradient
        used[out.codes.flatten()] = True
        q.update(out, torch.zeros(8, dtype=torch.long), threshold=0.0)
    out = q(z)
    flat, codes = out.z_flat, out.codes.flatten()
    assert used.any() and not torch.equal(q.codebook, before)
    for k in codes.unique():  # each assigned code sits at the mean of its cluster
        assert torch.allclose(q.codebook[k], flat[codes == k].mean(0), atol=0.05), k
    assert torch.allclose(q.codebook[~used], before[~used], rtol=0.02, atol=1e-3)  # unassigned codes stay put


def test_dead_codes_restart_on_encoder_outputs():
    torch.manual_seed(0)
    q = VectorQuantizer(16, 4, beta=0.25, mode="ema", decay=0.99, eps=1e-5)
    z = torch.randn(1, 4, 4, 4) + 5.0
    out = q(z)
    pick = torch.randperm(16)
    q.update(out, pick, threshold=1.0)  # usage after one step is at most 0.01 * count < 1: every code restarts
    assert torch.equal(q.codebook, out.z_flat[pick])
    assert len(q(z).codes.unique()) > len(out.codes.unique())


def test_codebook_is_used_during_training(smoke_run):
    rows = read_log(smoke_run.out)
    stage1 = [r for r in rows if r["loss_rec"]]
    assert stage1 and all(float(r["codebook_perplexity"]) > 1.0 for r in stage1)
    assert all(0 < float(r["codebook_usage"]) <= 1 for r in rows)
    for r in rows:
        for k, v in r.items():
            if k.startswith("loss") and v:
                assert math.isfinite(float(v)), (k, v)


# -- GAN terms -------------------------------------------------------------------
def test_adaptive_weight_is_the_gradient_norm_ratio():
    w = torch.randn(3, 4, requires_grad=True)
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    lam = adaptive_weight((w * a).sum(), (w * b).sum(), w)
    assert torch.allclose(lam, a.norm() / (b.norm() + 1e-4))
    assert float(adaptive_weight((w * a).sum(), (w * b).sum() * 0, w, max_weight=50.0)) == 50.0


def test_adaptive_weight_finite_and_positive_once_the_discriminator_is_on(phantom64):
    model = smoke_model(64)
    opts = model.make_optimizers()
    x = real_batch(phantom64)
    d_start = round(model.cfg.disc_start_kimg * 1000)
    before = model.train_step(step_context(model, x, nimg=0), opts)
    assert "adaptive_weight" not in before and "loss_D" not in before
    d0 = [p.clone() for p in model.nets["D"].parameters()]
    after = model.train_step(step_context(model, x, nimg=d_start), opts)
    lam = after["adaptive_weight"]
    assert torch.isfinite(lam) and float(lam) > 0
    assert torch.isfinite(after["loss_D"]) and torch.isfinite(after["loss_G"])
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.nets["D"].parameters()))


def test_discriminator_warmup_trains_d_before_its_loss_reaches_the_autoencoder(phantom64):
    model = smoke_model(64, disc_start_kimg=0.1, disc_warmup_kimg=0.05)
    opts = model.make_optimizers()
    x = real_batch(phantom64)
    early = model.train_step(step_context(model, x, nimg=40), opts)
    assert "loss_D" not in early  # before the warm-up begins nothing adversarial happens
    d0 = [p.clone() for p in model.nets["D"].parameters()]
    warm = model.train_step(step_context(model, x, nimg=50), opts)
    assert {"loss_D", "logits_real", "logits_fake"} <= set(warm)
    assert "loss_G" not in warm and "adaptive_weight" not in warm  # the autoencoder does not see D yet
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.nets["D"].parameters()))
    on = model.train_step(step_context(model, x, nimg=100), opts)
    assert {"loss_G", "adaptive_weight", "loss_D"} <= set(on)
    with pytest.raises(ConfigError, match="disc_warmup_kimg"):
        smoke_model(64, disc_start_kimg=0.1, disc_warmup_kimg=0.2)


def test_hinge_loss_of_one_is_what_a_discriminator_that_separates_nothing_scores():
    from echolib.models.vqgan import hinge_d_loss

    same = torch.full((4, 1, 6, 6), 0.3)
    assert math.isclose(float(hinge_d_loss(same, same)), 1.0, rel_tol=1e-6)
    assert float(hinge_d_loss(same + 1.0, same - 1.0)) < 0.5  # separated logits score lower


@pytest.mark.parametrize("norm", ["batch", "spectral", "none"])
def test_patch_discriminator_normalisations(norm):
    from echolib.models.vqgan import VQGANConfig, patch_discriminator

    torch.manual_seed(0)
    D = patch_discriminator(VQGANConfig(disc_channels=8, disc_layers=3, disc_norm=norm), 1)
    kinds = {type(m).__name__ for m in D.modules()}
    assert ("BatchNorm2d" in kinds) == (norm == "batch") and "Identity" not in kinds  # taming's layout
    x = torch.randn(2, 1, 64, 64, requires_grad=True)
    out = D(x)
    assert out.shape == (2, 1, 6, 6) and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    if norm == "spectral":  # each conv's weight is divided by its largest singular value
        conv = D.net[2]
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert math.isclose(float(sigma), 1.0, rel_tol=0.1)
    with pytest.raises(ConfigError, match="disc_norm"):
        patch_discriminator(VQGANConfig(disc_norm="layer"), 1)  # type: ignore[arg-type]


# -- prior -----------------------------------------------------------------------
def test_sample_logits_respects_top_k_and_range():
    torch.manual_seed(0)
    logits = torch.randn(64, 50)
    g = torch.Generator().manual_seed(1)
    top = logits.topk(5, dim=-1).indices
    for _ in range(20):
        idx = sample_logits(logits, g, temperature=1.0, top_k=5)
        assert (idx[:, None] == top).any(1).all()
    free = torch.cat([sample_logits(logits, g, temperature=2.0) for _ in range(20)])
    assert 0 <= int(free.min()) and int(free.max()) < 50
    assert len(free.unique()) > 5  # without top-k, other indices do occur
    sharp = sample_logits(logits, g, temperature=1e-4)
    assert torch.equal(sharp, logits.argmax(-1))  # T -> 0 is greedy


def test_prior_is_causal_and_cached_decoding_matches_teacher_forcing():
    torch.manual_seed(0)
    prior = CodePrior(vocab=16, length=12, dim=32, layers=2, heads=4, dropout=0.0).eval()
    codes = torch.randint(16, (3, 12))
    logits = prior(codes)
    assert logits.shape == (3, 12, 16)
    j = 6
    changed = codes.clone()
    changed[:, j] = (changed[:, j] + 1) % 16
    logits2 = prior(changed)
    assert torch.equal(logits[:, : j + 1], logits2[:, : j + 1])  # s_j only conditions positions > j
    assert not torch.allclose(logits[:, j + 1], logits2[:, j + 1])
    cache = prior.new_cache(3, torch.device("cpu"), torch.float32)
    token = torch.full((3,), prior.start)
    for i in range(12):
        step = prior.step(token, i, cache)
        assert torch.allclose(step, logits[:, i], atol=1e-5), i
        token = codes[:, i]
    g = torch.Generator().manual_seed(0)
    sampled = generate_codes(prior, 5, g, temperature=1.0, top_k=4)
    assert sampled.shape == (5, 12) and 0 <= int(sampled.min()) and int(sampled.max()) < 16


def test_sampling_options_and_determinism():
    model = smoke_model(64).eval()
    a = model.sample(2, torch.Generator().manual_seed(3), temperature=0.7, top_k=5)
    b = model.sample(2, torch.Generator().manual_seed(3), temperature=0.7, top_k=5)
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) truncation; it takes temperature, top_k"):
        model.sample(2, torch.Generator(), truncation=0.5)
    with pytest.raises(ConfigError, match="temperature"):
        model.sample(2, torch.Generator(), temperature=0.0)


def test_trainer_keeps_held_out_videos_out_of_training(smoke_run):
    """The trainer, not the model, holds videos out: VQGAN trains on the training split only."""
    full = FrameDataset(smoke_run.data_source)
    held = smoke_run.heldout
    assert held is not None and len(held) > 0
    assert not set(held.video_ids) & set(smoke_run.dataset.video_ids)
    assert len(held) + len(smoke_run.dataset) == len(full)


# -- two stages, records, checkpoints ------------------------------------------------
def test_two_stage_switch_happens_at_prior_start_kimg(smoke_run):
    cfg = smoke_run.run.model
    rows = read_log(smoke_run.out)
    for r in rows:
        kimg = float(r["kimg"])
        # a tick ending at kimg covers (kimg - tick, kimg]; a step at nimg is stage 2 iff nimg >= prior_start
        assert bool(r["loss_rec"]) == (kimg - 0.04 < cfg.prior_start_kimg - 1e-9), r
        assert bool(r["loss_prior"]) == (kimg > cfg.prior_start_kimg + 1e-9), r
        assert float(r["stage"]) == (2.0 if kimg > cfg.prior_start_kimg + 1e-9 else 1.0)
    disc = [float(r["kimg"]) for r in rows if r.get("loss_D")]
    assert disc and min(disc) > cfg.disc_start_kimg
    prior_loss = [float(r["loss_prior"]) for r in rows if r["loss_prior"]]
    assert prior_loss[-1] < math.log(cfg.codebook_size)  # better than a uniform prior over codes
    # weights: the autoencoder stops changing at the switch, the prior starts
    found = {int(p.stem.split("-")[1]): p for p in ckpt.list_checkpoints(smoke_run.out / "checkpoints")}
    s1, s2, s3 = (torch.load(found[n], weights_only=True) for n in (160, 240, 320))

    def same(a, b, net):
        return all(torch.equal(a["nets"][net][k], b["nets"][net][k]) for k in a["nets"][net])

    assert not same(s1, s2, "autoencoder") and same(s2, s3, "autoencoder") and same(s2, s3, "D")
    assert not same(s2, s3, "prior") and not same(s1, s2, "prior")
    assert all(torch.equal(s1["nets"]["prior"][k], s1["ema"]["prior"][k]) for k in s1["ema"]["prior"])


def test_stage_one_writes_reconstructions_of_held_out_frames_beside_its_grids(smoke_run):
    """Before the prior trains, sample grids decode random codes; the recon grids show the autoencoder instead."""
    from echolib.images import read_gray

    samples = smoke_run.out / "samples"
    assert sorted(p.name for p in samples.glob("grid-*.png")) == ["grid-000000160.png", "grid-000000320.png"]
    assert [p.name for p in samples.glob("recon-*.png")] == ["recon-000000160.png"]  # stage 2 (0.32 kimg) adds none
    grid = read_gray(samples / "recon-000000160.png").astype(float)
    held = smoke_run.heldout.images[:16, 0].numpy().astype(float)
    size, pad = 64, 2
    assert grid.shape == (math.ceil(2 * len(held) / 8) * (size + pad) + pad, min(8, 2 * len(held)) * (size + pad) + pad)
    model, _ = load_model(smoke_run.out, kimg=0.16, device="cpu")  # the autoencoder as it was at that grid
    expected = to_uint8(model.reconstruct(smoke_run.heldout.images[:4]))[:, 0].numpy().astype(float)
    for i in range(min(len(held), 4)):  # the first row: frame, reconstruction, frame, reconstruction, ...
        x = pad + 2 * i * (size + pad)
        frame, recon = grid[pad:pad + size, x:x + size], grid[pad:pad + size, x + size + pad:x + 2 * size + pad]
        assert (frame == held[i]).all()
        assert abs(recon - expected[i]).max() <= 1 and abs(recon - held[i]).mean() > 0
    from echolib.report.plots import sample_timeline

    (panel,) = sample_timeline(smoke_run.out, kind="recon").axes
    assert panel.get_title() == "0.16 kimg" and panel.images[0].get_array().shape == grid.shape


def test_checkpoint_round_trip(smoke_run):
    model, path = load_model(smoke_run.out, device="cpu")
    assert path.name == "ckpt-000000320.pt"
    assert model.perceptual == smoke_run.model.perceptual
    live = smoke_run.model.eval()
    for kw in ({}, {"temperature": 0.5, "top_k": 8}, {"use_ema": False}):
        a = model.sample(4, torch.Generator().manual_seed(7), **kw)
        b = live.sample(4, torch.Generator().manual_seed(7), **kw)
        assert torch.equal(a, b), kw
    x = FrameDataset(smoke_run.data_source).images[:4]
    assert torch.equal(model.reconstruct(x), live.reconstruct(x))


def test_reconstruction_metrics_on_held_out_frames(smoke_run):
    held = smoke_run.heldout.to("cpu")
    m = reconstruction_metrics(smoke_run.model, held)
    assert m["n"] == len(held) > 0 and 0 < m["psnr"] < 100 and -1 <= m["ssim"] <= 1
    # the trained autoencoder reconstructs unseen hearts better than an untrained one
    untrained = reconstruction_metrics(smoke_model(64), held)
    assert m["psnr"] > untrained["psnr"] and m["ssim"] > untrained["ssim"]


def test_perceptual_choice_is_resolved_and_recorded():
    assert resolve_perceptual("none") == "none"
    assert resolve_perceptual("auto") in ("lpips", "echo", "none")
    model = smoke_model(64, perceptual="none")
    assert model.perceptual == "none" and model.extra_state()["perceptual"] == 0
    model.load_extra_state({"perceptual": 1})  # a resumed run keeps the loss it was trained with
    assert model.perceptual == "echo"


@pytest.fixture
def echo_weights(tmp_path, monkeypatch):
    """A randomly initialised echo extractor as weights file: the real loader and network, untrained."""
    features = pytest.importorskip("echolib.metrics.features")
    torch.manual_seed(0)
    path = tmp_path / "echo.pt"
    torch.save(features.echo_checkpoint(features.EchoEncoder()), path)
    monkeypatch.setenv("ECHOLIB_ECHO_WEIGHTS", str(path))
    return features


def test_echo_perceptual_distance(echo_weights):
    net = EchoPerceptual(echo_weights.load_echo_encoder())
    torch.manual_seed(1)
    x = torch.rand(3, 1, 64, 64) * 2 - 1
    y = (x + 0.3 * torch.randn_like(x)).requires_grad_(True)
    assert torch.allclose(net(x, x), torch.zeros(3), atol=1e-6)
    d = net(x, y)
    assert d.shape == (3,) and (d > 0).all()
    assert float(net(x, x + 0.3 * (y.detach() - x)).mean()) < float(d.detach().mean())  # closer: smaller distance
    d.sum().backward()
    assert float(y.grad.abs().sum()) > 0 and all(p.grad is None for p in net.parameters())


def test_echo_perceptual_loss_in_training(echo_weights, no_lpips_weights, phantom64):
    model = smoke_model(64)  # perceptual: auto, and no LPIPS files: the echo extractor
    assert model.perceptual == "echo" and model.extra_state()["perceptual"] == 1
    opts = model.make_optimizers()
    out = model.train_step(step_context(model, real_batch(phantom64), nimg=0), opts)
    assert torch.isfinite(out["loss_perceptual"]) and float(out["loss_perceptual"]) > 0
    assert torch.allclose(out["loss_AE"], out["loss_rec"] + out["loss_perceptual"] + out["loss_q"])


def test_lpips_perceptual_loss_in_training_when_its_weights_are_present(lpips_weights, phantom64, monkeypatch):
    from echolib.metrics.lpips import ENV_VGG16_WEIGHTS, LPIPSLoss

    model = smoke_model(64)  # perceptual: auto, both LPIPS files present
    assert model.perceptual == "lpips" and model.extra_state()["perceptual"] == 2
    out = model.train_step(step_context(model, real_batch(phantom64), nimg=0), model.make_optimizers())
    assert isinstance(model._perceptual(model.device), LPIPSLoss)
    assert torch.isfinite(out["loss_perceptual"]) and float(out["loss_perceptual"]) > 0
    assert torch.allclose(out["loss_AE"], out["loss_rec"] + out["loss_perceptual"] + out["loss_q"])
    monkeypatch.setenv(ENV_VGG16_WEIGHTS, str(lpips_weights[0].with_name("missing.pth")))
    assert resolve_perceptual("auto") == "echo"  # the linear layers alone are not LPIPS
    with pytest.raises(ConfigError, match="ECHOLIB_VGG16_WEIGHTS points to .*missing.pth"):
        smoke_model(64, perceptual="lpips")._perceptual(torch.device("cpu"))


def test_the_run_record_names_the_perceptual_loss_and_its_weights(echo_weights, no_lpips_weights, phantom64,
                                                                   tmp_path):
    import hashlib

    from echolib.report.records import read_run_meta

    cfg = load_config("vqgan", "smoke", {"train": {"kimg": 0.016}})
    Trainer(cfg, phantom64, tmp_path / "run", device="cpu", progress=False).fit()
    facts = read_run_meta(tmp_path / "run")["model"]
    sha = hashlib.sha256(echo_weights.echo_weights_path().read_bytes()).hexdigest()
    assert facts == {"perceptual": "echo", "perceptual_config": "auto", "perceptual_weights_sha256": sha}


@pytest.mark.slow
def test_exact_resume_across_the_stage_switch(phantom64, tmp_path):
    def run(kimg, out):
        Trainer(load_config("vqgan", "smoke", {"train": {"kimg": kimg}}), phantom64, out, device="cpu",
                progress=False).fit()

    run(0.32, tmp_path / "full")
    run(0.16, tmp_path / "part")
    run(0.32, tmp_path / "part")
    a = torch.load(tmp_path / "full" / "checkpoints" / "ckpt-000000320.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "checkpoints" / "ckpt-000000320.pt", weights_only=True)
    for group in ("nets", "ema"):
        for net in a[group]:
            for k in a[group][net]:
                assert torch.equal(a[group][net][k], b[group][net][k]), (group, net, k)
    timing = ("time_s", "sec_per_kimg", "kimg_per_s", "mem_gb")

    def records(run_dir):
        return [{k: v for k, v in r.items() if k not in timing} for r in read_log(run_dir)]

    assert records(tmp_path / "full") == records(tmp_path / "part")


def test_stage_two_step_trains_only_the_prior(phantom64):
    model = smoke_model(64)
    opts = model.make_optimizers()
    ae0 = {k: v.clone() for k, v in model.nets["autoencoder"].state_dict().items()}
    prior0 = [p.clone() for p in model.nets["prior"].parameters()]
    out = model.train_step(step_context(model, real_batch(phantom64), nimg=200), opts)
    assert set(out) == {"loss_prior", "prior_bits_per_code"} and torch.isfinite(out["loss_prior"])
    assert math.isclose(float(out["prior_bits_per_code"]), float(out["loss_prior"]) / math.log(2), rel_tol=1e-6)
    assert all(torch.equal(v, model.nets["autoencoder"].state_dict()[k]) for k, v in ae0.items())
    assert all(not torch.equal(a, b) for a, b in zip(prior0, model.nets["prior"].parameters()))


@pytest.mark.slow
def test_discriminator_probe_continues_a_stage_one_checkpoint(phantom64, tmp_path):
    import json
    import subprocess
    import sys

    run = tmp_path / "vq"
    short = load_config("vqgan", "smoke", {"train": {"kimg": 0.04, "snapshot_kimg": 0.04, "sample_kimg": 1.0}})
    Trainer(short, phantom64, run, device="cpu", progress=False).fit()
    before = sorted(p.name for p in run.rglob("*"))
    script = Path(__file__).resolve().parents[1] / "bench" / "vqgan_disc_probe.py"
    out = subprocess.run([sys.executable, str(script), str(run), "--data", str(phantom64), "--steps", "4",
                          "--every", "2", "--threads", "1", "--set", "model.disc_warmup_kimg=0.008"],
                         capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert all(math.isfinite(r[k]) for r in rows for k in ("loss_D", "logits_real", "logits_fake", "sep", "spread"))
    assert "loss_G" in rows[1]  # the GAN term reached the autoencoder after the one-step warm-up
    assert sorted(p.name for p in run.rglob("*")) == before  # nothing written to the run


def test_sampling_a_training_model_uses_eval_mode_and_restores_it():
    """A prior with dropout sampled between training steps: the same draw twice, and its modes restored."""
    run = load_config("vqgan", "smoke", {"model": {"prior_dropout": 0.5}})
    torch.manual_seed(0)
    model = build_model(run)
    model.train()
    model.nets["prior"].blocks[0].eval()  # one submodule in another mode: restored as it was, not as the parent
    a = model.sample(3, torch.Generator().manual_seed(4), use_ema=False)
    b = model.sample(3, torch.Generator().manual_seed(4), use_ema=False)
    assert torch.equal(a, b)
    assert model.nets["prior"].training and not model.nets["prior"].blocks[0].training
