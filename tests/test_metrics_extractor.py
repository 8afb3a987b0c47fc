"""The ``echo`` extractor: shipped weights identified by sha256, registered with torch-fidelity, deterministic
training, and a sensible metric on held-out real videos."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json

import pytest
import torch

from echolib.errors import ConfigError
from echolib.metrics import extractor_sha256, features, fidelity
from echolib.metrics.corruptions import STRENGTHS, corrupt
from echolib.metrics.references import phantom_image_set


def test_shipped_weights_are_small_identified_and_load_weights_only():
    path = features.ASSET_WEIGHTS
    card = json.loads(path.with_suffix(".json").read_text())
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.stat().st_size <= 5 * 1024 * 1024
    assert card["sha256"] == sha
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == {"arch", "state_dict", "meta"}
    model = features.load_echo_encoder(path)
    assert sum(p.numel() for p in model.parameters()) == card["parameters"]
    assert card["sanity"]["corruptions_monotone"] is True


def test_registered_with_torch_fidelity_and_batch_independent(monkeypatch):
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
    from torch_fidelity.utils import create_feature_extractor

    monkeypatch.delenv(features.ENV_ECHO_WEIGHTS, raising=False)
    assert FEATURE_EXTRACTORS_REGISTRY["echo"] is features.FeatureExtractorEcho
    assert extractor_sha256("echo") == hashlib.sha256(features.ASSET_WEIGHTS.read_bytes()).hexdigest()
    net = create_feature_extractor("echo", [features.FEATURE], cuda=False, verbose=False)
    x = phantom_image_set(3, seed=1).images.expand(-1, 3, -1, -1)
    together = net(x)[0]
    alone = torch.cat([net(x[i : i + 1])[0] for i in range(len(x))])
    assert together.shape == (12, 592)  # means and spreads of 24 + 48 + 96 channels, 256 head means
    assert torch.allclose(together, alone, atol=1e-4)  # GroupNorm: a frame's features ignore its batch
    # other sizes are resampled to 128x128; gray given as one channel equals three equal channels
    assert net(torch.nn.functional.interpolate(x.float(), size=64).round().to(torch.uint8))[0].shape == (12, 592)
    assert torch.allclose(features.prepare_uint8(x), features.prepare_uint8(x[:, :1]))


def test_the_first_extractor_stays_selectable_by_name(monkeypatch):
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    monkeypatch.setenv(features.ENV_ECHO_WEIGHTS, "/nonexistent.pt")  # the override replaces "echo" only
    v1 = features.ECHO_ASSETS[features.ECHO_V1]
    assert extractor_sha256("echo-v1") == hashlib.sha256(v1.read_bytes()).hexdigest()
    assert extractor_sha256("echo-v1") != hashlib.sha256(features.ASSET_WEIGHTS.read_bytes()).hexdigest()
    old = features.load_echo_encoder(v1)
    assert old.readout == "pooled" and old.feature_dim == 424  # weights without a readout read as they always did
    assert FEATURE_EXTRACTORS_REGISTRY["echo-v1"] is features.FeatureExtractorEcho
    card = json.loads(features.card_path(v1).read_text())
    assert card["sha256"] == hashlib.sha256(v1.read_bytes()).hexdigest() and card["file"] == v1.name
    assert len(card["data"]["train_video_digests"]) == card["data"]["train_videos"]


def test_weights_override_changes_the_identity(tmp_path, monkeypatch):
    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    torch.save(features.echo_checkpoint(features.EchoEncoder()), other)
    monkeypatch.setenv(features.ENV_ECHO_WEIGHTS, str(other))
    assert extractor_sha256("echo") == hashlib.sha256(other.read_bytes()).hexdigest()
    monkeypatch.setenv(features.ENV_ECHO_WEIGHTS, str(tmp_path / "missing.pt"))
    with pytest.raises(ConfigError, match="missing.pt"):
        extractor_sha256("echo")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="not an echo extractor weights file"):
        features.load_echo_encoder(tmp_path / "bad.pt")


def test_training_is_deterministic(tmp_path):
    """Same seed, same recipe: byte-identical weights (a tiny recipe on phantom frames)."""
    from echolib.data.frames import FrameDataset, FrameInfo
    from echolib.io import atomic_torch_save
    from echolib.metrics import train_extractor as te

    ph = phantom_image_set(6, seed=3)
    ds = FrameDataset(images=ph.images, infos=[FrameInfo(f"{v}_f{i % 4}.png", v) for i, v in enumerate(ph.video_ids)])
    recipe = dataclasses.replace(te.Recipe(), steps=2, batch=4, warmup=1, widths=(8, 16), dim=32, proj_dim=8)
    digests = []
    for run in range(2):
        torch.use_deterministic_algorithms(True)
        try:
            model, history = te.train(ds, recipe, log_every=1)
        finally:
            torch.use_deterministic_algorithms(False)
        te.standardise(model, ds.images)
        atomic_torch_save(features.echo_checkpoint(model), tmp_path / f"w{run}.pt")
        digests.append(hashlib.sha256((tmp_path / f"w{run}.pt").read_bytes()).hexdigest())
        assert len(history) == 2 and all(h["loss"] > 0 for h in history)
    assert digests[0] == digests[1]
    f = te.embed_all(model, ds.images)
    assert f.shape == (24, 2 * 8 + 32) and torch.allclose(  # the stem's means and spreads, the head's means
        f.mean(0), torch.zeros(48), atol=1e-4
    )  # standardised on the training frames


def test_augmentations_shift_whole_pixels_and_keep_the_background():
    """The shipped recipe never resamples: a view is the frame shifted by whole pixels, up to gain and gamma."""
    from echolib.metrics import train_extractor as te

    x = phantom_image_set(2, seed=4).images.float().mul(2 / 255).sub(1)
    g = torch.Generator().manual_seed(0)
    y = te.augment(x, te.Recipe(), g)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert (y[:, :, :4, :4] == -1).all()  # the black corner stays black
    shifted_only = te.augment(x, dataclasses.replace(te.Recipe(), gain=0, gamma=0), g)
    for view, frame in zip(shifted_only, x):
        padded = torch.nn.functional.pad(frame, (3, 3, 3, 3), value=-1.0)
        errors = [
            (torch.roll(padded, (dy, dx), (1, 2))[:, 3:-3, 3:-3] - view).abs().max().item()
            for dy, dx in itertools.product(range(-3, 4), repeat=2)
        ]
        assert min(errors) < 1e-5
    none = dataclasses.replace(te.Recipe(), shift_px=0, gain=0, gamma=0)
    assert torch.allclose(te.augment(x, none, g), x, atol=1e-5)


@pytest.mark.slow
@pytest.mark.realdata
def test_a_sensible_metric_on_held_out_real_videos(real_frames):
    """Near 0 for disjoint real video sets; grows monotonically with every corruption; large for the phantom."""
    from echolib.data.frames import FrameDataset
    from echolib.metrics.train_extractor import Recipe, embed_all

    r = Recipe()
    parts = FrameDataset(real_frames).split(r.split, seed=r.split_seed)  # val/test videos: unseen in training
    val, test = parts["val"].images, parts["test"].images
    net = features.load_echo_encoder()
    f_val, f_test = embed_all(net, val), embed_all(net, test)
    base = fidelity.fid(f_test, f_val)
    phantom = fidelity.fid(embed_all(net, phantom_image_set(100, seed=9).images), f_val)
    assert base < 0.05 * phantom
    for kind, strengths in STRENGTHS.items():
        fids = [base] + [fidelity.fid(embed_all(net, corrupt(test, kind, s, seed=1)), f_val) for s in strengths]
        assert all(a < b for a, b in itertools.pairwise(fids)), (kind, fids)
        assert fids[-1] > 2 * base, (kind, fids)


def test_extractor_table_names_the_weights_here_and_the_records_they_did_not_make(tmp_path, monkeypatch):
    from echolib.metrics.records import append_records, make_record
    from echolib.paths import shown_path
    from echolib.report.extractors import extractor_table

    monkeypatch.delenv(features.ENV_ECHO_WEIGHTS, raising=False)
    monkeypatch.delenv(fidelity.ENV_INCEPTION_WEIGHTS, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))  # no cached Inception file
    monkeypatch.setattr(fidelity, "_download", lambda *a, **k: pytest.fail("a report must not download weights"))
    echo_sha = hashlib.sha256(features.ASSET_WEIGHTS.read_bytes()).hexdigest()
    run = tmp_path / "runs" / "wgan" / "E1"
    run.mkdir(parents=True)

    def rec(metric, extractor, sha):
        return make_record(metric, 1.0, n_real=4, n_fake=4, extractor=extractor, extractor_sha256=sha, run=str(run))

    append_records(run / "metrics.jsonl", [rec("fid", "echo", echo_sha), rec("kid", "echo", echo_sha),
                                           rec("fid", "echo", "0" * 64), rec("jsd", "pixel", None),
                                           rec("fid", fidelity.INCEPTION, "1" * 64)])
    table = extractor_table(tmp_path / "runs")
    assert table.loc["echo", "sha256"] == echo_sha[:16]
    assert table.loc["echo", ["records", "records, other weights"]].tolist() == [3, 1]
    assert table.loc[fidelity.INCEPTION, ["weights", "sha256"]].tolist() == ["not found", "-"]
    assert table.loc[fidelity.INCEPTION, ["records", "records, other weights"]].tolist() == [1, 1]
    assert table.loc["pixel", ["records", "records, other weights"]].tolist() == [1, 0]

    inception = tmp_path / "pt_inception.pth"  # any weights file named by the variable is the one in use
    torch.save({"w": torch.zeros(2)}, inception)
    monkeypatch.setenv(fidelity.ENV_INCEPTION_WEIGHTS, str(inception))
    assert extractor_table().loc[fidelity.INCEPTION, "weights"] == shown_path(inception)  # no build-machine path
    assert extractor_table().loc["echo", "weights"] == "echolib/assets/echo_extractor.pt"
    assert "records" not in extractor_table().columns  # no runs folder, no record counts
