"""Pix2Pix and its condition maps: shapes, the 70x70 patch, L1 fitting, held-out conditions, sampling paths."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import trainer_context

from echolib.data import conditions
from echolib.data.frames import FrameDataset, holdout_split, split_holdout
from echolib.errors import ConfigError, DataError
from echolib.models.layers import PatchGAN, receptive_field
from echolib.models.pix2pix import Pix2PixGenerator
from echolib.models.registry import config_names
from echolib.report.reconstruction import reconstruction_scores
from echolib.train.conditions import condition_maps
from echolib.train.loop import Trainer
from echolib.train.run_config import build_model, load_config
from echolib.train.sampling import load_model

ROOT = Path(__file__).resolve().parent.parent
TINY = {"g_channels": 8, "d_channels": 8, "max_channels": 32}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    """64 phantom frames at 64x64 (16 hearts) with their LV masks and manifest."""
    from echolib.data.phantom import generate

    return generate(tmp_path_factory.mktemp("p2p") / "ph", n=64, size=64, seed=3, workers=1, progress=False)


def model_for(resolution: int = 64, **over):
    run = load_config("pix2pix", "smoke", {"model": {**TINY, **over}, "train": {"resolution": resolution}})
    torch.manual_seed(0)
    return build_model(run)


# -- condition maps ---------------------------------------------------------------
def test_canny_is_binary_and_sits_on_the_edges():
    img = np.zeros((64, 64), np.uint8)
    img[20:44, 16:40] = 200  # a bright rectangle: edges at rows 20/43 and columns 16/39
    frames = torch.from_numpy(np.stack([img, np.roll(img, 5, axis=1)]))[:, None]
    edges = conditions.canny(frames, 100, 200)
    assert edges.shape == frames.shape and edges.dtype == torch.uint8
    assert set(edges.unique().tolist()) == {0, 255}
    for k, shift in ((0, 0), (1, 5)):
        ys, xs = np.nonzero(edges[k, 0].numpy())
        on_border = ((np.abs(ys - 19.5) <= 1) | (np.abs(ys - 43.5) <= 1)) & (xs >= 15 + shift) & (xs <= 40 + shift)
        on_border |= ((np.abs(xs - 15.5 - shift) <= 1) | (np.abs(xs - 39.5 - shift) <= 1)) & (ys >= 19) & (ys <= 44)
        assert on_border.all()  # every edge pixel is within a pixel of the rectangle's outline...
        assert len(ys) >= 2 * (24 + 24) - 4  # ...and the outline is closed


def test_canny_maps_align_with_phantom_frames(phantom):
    ds = FrameDataset(phantom)
    maps = conditions.compute(ds, "canny", low=100, high=200)
    assert maps.shape == ds.images.shape and set(maps.unique().tolist()) <= {0, 255}
    # edges sit where the frame's gradient is large; a shifted map does not
    import cv2

    grads = [np.hypot(cv2.Sobel(f, cv2.CV_64F, 1, 0), cv2.Sobel(f, cv2.CV_64F, 0, 1)) for f in ds.images[:, 0].numpy()]
    on = np.mean([g[m > 0].mean() for g, m in zip(grads, maps[:, 0].numpy())])
    shifted = np.mean([g[np.roll(m, 4, axis=(0, 1)) > 0].mean() for g, m in zip(grads, maps[:, 0].numpy())])
    off = np.mean([g[m == 0].mean() for g, m in zip(grads, maps[:, 0].numpy())])
    assert on > 1.5 * shifted and on > 2 * off


def test_lv_masks_from_manifest_and_folder_agree_with_areas(phantom):
    by_manifest = FrameDataset(phantom / "manifest.csv")
    by_folder = FrameDataset(phantom)
    a, b = conditions.lv_masks(by_manifest), conditions.lv_masks(by_folder)
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0, 255}
    areas = [int(r["lv_area"]) for r in csv.DictReader((phantom / "manifest.csv").read_text().splitlines())]
    assert (a[:, 0] > 0).sum((1, 2)).tolist() == areas
    # at a lower resolution the mask follows the frame (area-resized, still binary, about a quarter the area)
    small = conditions.lv_masks(FrameDataset(phantom, resolution=32))
    assert small.shape[-1] == 32 and set(small.unique().tolist()) == {0, 255}
    ratio = (small > 0).sum().item() / sum(areas)
    assert 0.2 < ratio < 0.3


def test_missing_masks_are_a_data_error(phantom, tmp_path):
    ds = FrameDataset(phantom)
    lone = tmp_path / "lone"
    lone.mkdir()
    for name in ds.names[:4]:
        (lone / name).write_bytes((phantom / name).read_bytes())
    with pytest.raises(DataError, match="4 of 4 frames have no LV mask"):
        conditions.compute(FrameDataset(lone), "mask")


def test_holdout_split_keeps_videos_whole():
    vids = [f"V{i // 4}" for i in range(80)]
    train, held = holdout_split(vids, 0.25, seed=1)
    assert sorted(train + held) == list(range(80)) and held
    assert not {vids[i] for i in train} & {vids[i] for i in held}
    assert 1 <= len({vids[i] for i in held}) <= 10
    assert holdout_split(vids[:8], 0.01)[1]  # tiny data still holds one video out
    assert holdout_split(vids, 0.0) == (list(range(80)), [])
    for seed in range(60):  # two videos at half: the hash used to put both aside for some seeds
        train, held = holdout_split(["a", "a", "b", "b"], 0.5, seed=seed)
        assert len(train) == len(held) == 2, seed


# -- networks ---------------------------------------------------------------------
@pytest.mark.parametrize("resolution, patches", [(64, 6), (128, 14), (256, 30)])
def test_shapes_and_patch_grid(resolution, patches):
    g = Pix2PixGenerator(resolution, base=4, cap=16).eval()
    c = torch.rand(2, 1, resolution, resolution) * 2 - 1
    y = g(c)
    assert y.shape == (2, 1, resolution, resolution) and y.abs().max() <= 1
    d = PatchGAN(2, 4, max_channels=16)
    assert d(c, y).shape == (2, 1, patches, patches)


def test_patchgan_sees_70x70():
    assert receptive_field(3) == 70 and receptive_field(1) == 16 and receptive_field(5) == 286
    d = PatchGAN(2, 4, max_channels=16).eval()  # eval: batch norm is per-channel affine, no cross-pixel coupling
    x = torch.randn(1, 2, 256, 256, requires_grad=True)
    d.net(x)[0, 0, 15, 15].backward()
    rows = torch.nonzero(x.grad.abs().sum((0, 1, 3)))
    cols = torch.nonzero(x.grad.abs().sum((0, 1, 2)))
    assert int(rows.max() - rows.min() + 1) == 70 and int(cols.max() - cols.min() + 1) == 70


def test_dropout_is_the_noise():
    model = model_for()
    c = torch.randint(0, 2, (3, 1, 64, 64), dtype=torch.uint8) * 255
    a = model.translate(c, torch.Generator().manual_seed(1))
    b = model.translate(c, torch.Generator().manual_seed(1))
    other = model.translate(c, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, other)
    quiet = model_for(test_dropout=False)
    assert torch.equal(quiet.translate(c, torch.Generator().manual_seed(1)),
                       quiet.translate(c, torch.Generator().manual_seed(2)))


# -- training -----------------------------------------------------------------------
def test_l1_pulls_the_output_to_the_target(phantom):
    ds = FrameDataset(phantom)
    model = model_for(lr=2e-3)
    maps = condition_maps(model, ds)
    opts = model.make_optimizers()
    l1 = []
    for step in range(20):
        out = model.train_step(trainer_context(ds.images, step, 8, maps), opts)
        assert all(torch.isfinite(v) and v.dim() == 0 and not v.requires_grad for v in out.values())
        l1.append(float(out["loss_L1"]))
    assert np.mean(l1[-4:]) < 0.6 * np.mean(l1[:4]), l1
    _, held = split_holdout(ds, 0.1, 0)
    scores = reconstruction_scores(model, held)
    assert scores["n"] == len(held) > 0 and 5 < scores["psnr"] < 60 and -1 <= scores["ssim"] <= 1


def test_the_trainer_hands_the_maps_in_and_samples_from_held_out_hearts(phantom, tmp_path):
    """The model stores no conditions: the trainer gives each batch its frames' maps and samples held-out ones."""
    run = load_config("pix2pix", "smoke", {"train": {"kimg": 0.04, "holdout": 0.2}})
    trainer = Trainer(run, phantom, tmp_path / "run", device="cpu", progress=False)
    model = trainer.model
    assert torch.equal(trainer.conditions, condition_maps(model, trainer.dataset))
    held = condition_maps(model, trainer.heldout)
    assert len(held) == len(trainer.heldout) > 4 and torch.equal(trainer.sample_options["condition"], held)
    stored = [k for k, v in vars(model).items() if isinstance(v, torch.Tensor)]
    assert stored == [] and model.extra_state() == {}
    model.eval()
    with pytest.raises(ConfigError, match="condition="):
        model.sample(4, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    pick = torch.randperm(len(held), generator=g)[:4]  # the draw sample() makes: 4 distinct held-out conditions
    expected = model.translate(held[pick], g)
    assert torch.equal(model.sample(4, torch.Generator().manual_seed(0), condition=held), expected)


def test_round_trip_and_sampling_paths(phantom, tmp_path):
    run = load_config("pix2pix", "smoke", {"train": {"kimg": 0.08}})
    trainer = Trainer(run, phantom, tmp_path / "run", device="cpu", progress=False)
    out = trainer.fit()
    loaded, _ = load_model(out, device="cpu")
    # the same maps and draws give the same frames, from the trainer's object or from the checkpoint
    maps = trainer.sample_options["condition"]
    a = trainer.model.eval().sample(5, torch.Generator().manual_seed(3), condition=maps)
    b = loaded.sample(5, torch.Generator().manual_seed(3), condition=maps)
    assert torch.equal(a, b) and a.shape == (5, 1, 64, 64) and a.abs().max() <= 1
    # explicit conditions of length n are translated in order
    folder = tmp_path / "unseen"
    folder.mkdir()
    for name in FrameDataset(phantom).names[-3:]:
        (folder / name).write_bytes((phantom / name).read_bytes())
    maps = conditions.compute(FrameDataset(folder), "canny")
    x = loaded.sample(3, torch.Generator().manual_seed(4), condition=maps)
    z = loaded.translate(maps, torch.Generator().manual_seed(4))
    assert torch.equal(x, z)
    with pytest.raises(ConfigError, match="unknown option"):
        loaded.sample(2, torch.Generator(), condition=maps, truncation=0.5)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")

    def sample(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "echolib", "sample", str(out), "--n", "4", "--device", "cpu",
                               *extra], check=False, capture_output=True, text=True, env=env, timeout=300)

    r = sample("--out", str(tmp_path / "held"))  # the run's held-out frames, from the data its run.json names
    assert r.returncode == 0, r.stderr
    r = sample("--out", str(tmp_path / "folder"), "--conditions-from", str(folder))
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "held").glob("img_*.png"))) == len(list((tmp_path / "folder").glob("img_*.png"))) == 4
    r = sample("--out", str(tmp_path / "nowhere"), "--conditions-from", str(tmp_path / "missing"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "missing" in r.stderr


def test_a_run_saved_when_checkpoints_stored_conditions_still_loads(phantom, tmp_path):
    """Older configs carry ``n_fixed`` and older checkpoints ``fixed_conditions``: both are read and dropped."""
    run = load_config("pix2pix", "smoke", {"model": {"n_fixed": 16}, "train": {"kimg": 0.04}})
    out = Trainer(run, phantom, tmp_path / "run", device="cpu", progress=False).fit()
    path = max((out / "checkpoints").glob("ckpt-*.pt"))
    state = torch.load(path, map_location="cpu", weights_only=True)
    state["config"]["model"]["n_fixed"] = 16
    state["extra"] = {"fixed_conditions": torch.zeros(2, 1, 64, 64, dtype=torch.uint8)}
    torch.save(state, path)
    loaded, _ = load_model(path, device="cpu")
    assert [k for k, v in vars(loaded).items() if isinstance(v, torch.Tensor)] == []


def test_mask_conditioned_smoke_trains(phantom, tmp_path):
    run = load_config("pix2pix", "smoke", {"model": {"condition": "mask"}, "train": {"kimg": 0.04}})
    trainer = Trainer(run, phantom, tmp_path / "run", device="cpu", progress=False)
    trainer.fit()
    assert set(trainer.sample_options["condition"].unique().tolist()) == {0, 255}


def test_configs():
    names = set(config_names("pix2pix"))
    assert {f"E{i}" for i in range(1, 9)} <= names and "smoke" in names
    runs = [load_config("pix2pix", f"E{i}") for i in range(1, 9)]
    assert all(r.train.resolution == 128 and 500 <= r.train.kimg <= 3000 for r in runs)
    assert {r.model.condition for r in runs} == {"canny", "mask"}
    assert len({tuple(sorted(vars(r.model).items())) for r in runs}) == 8
