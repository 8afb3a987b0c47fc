"""The built-in phantom: geometry, physics of the speckle, phases, determinism, files and cache."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from echolib.cli import main
from echolib.data.frames import FrameDataset
from echolib.data.manifest import COLUMNS
from echolib.data.phantom import generate
from echolib.data.phantom_sim import (
    draw_noise,
    fan_mask,
    heart_rng,
    render_clip,
    render_hearts,
    sample_heart,
    speckle,
)
from echolib.data.sources import phantom_cache, resolve_data
from echolib.errors import DataError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hearts():
    """Six hearts x four frames (f0 first, f1 ES, f2 ED, f3 last), with the geometry that made them."""
    out, _, phases = render_hearts(5, range(6), 128)
    models = [sample_heart(heart_rng(5, h)) for h in range(6)]
    return out, phases, models


def test_frames_are_128_uint8_grayscale_with_masks(hearts):
    out, phases, _ = hearts
    assert out.frames.shape == (24, 128, 128) and out.frames.dtype == np.uint8
    assert out.lv_masks.shape == (24, 128, 128) and out.lv_masks.dtype == bool
    assert phases.shape == (6, 4) and phases.min() >= 0 and phases.max() <= 1
    assert np.all(phases[:, 1] == 1.0) and np.all(phases[:, 2] == 0.0)  # f1 is ES, f2 is ED
    assert out.frames.std() > 20  # an image, not a constant


def test_black_outside_the_fan_and_textured_inside(hearts):
    out, _, models = hearts
    for i, frame in enumerate(out.frames):
        fan = fan_mask(128, models[i // 4])
        assert not frame[~fan].any(), f"frame {i}: non-zero pixels outside the fan"
        assert (frame[fan] > 0).mean() > 0.7
        assert (~fan).mean() > 0.25  # black corners as in the real frames
        assert not out.lv_masks[i][~fan].any()
    top = out.frames[:, :4, :].astype(int)
    assert top[:, :, :40].sum() == 0 and top[:, :, -40:].sum() == 0  # the fan's apex is at the top centre


def test_lv_is_smaller_at_end_systole(hearts):
    out, _, _ = hearts
    area = out.lv_masks.reshape(6, 4, -1).sum(-1)
    es, ed = area[:, 1], area[:, 2]
    assert np.all(ed > 600), "the LV should be a large chamber at end-diastole"
    assert np.all(es < 0.92 * ed), f"ES areas {es} not clearly below ED areas {ed}"


def test_lv_mask_lies_over_dark_blood(hearts):
    out, _, _ = hearts
    for frame, mask in zip(out.frames, out.lv_masks):
        inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~mask & (frame > 0)
        assert frame[inner].mean() < 0.6 * frame[ring].mean()  # cavity darker than the wall around it


def test_clip_phase_drives_lv_area():
    clip = render_clip(40, seed=3, fps=40, heart_rate=75)  # 1.25 beats
    assert clip.frames.shape == (40, 128, 128) and clip.frames.dtype == np.uint8
    area = clip.lv_masks.reshape(40, -1).sum(1)
    assert np.corrcoef(area, clip.phases)[0, 1] < -0.9
    assert clip.ed_frames and clip.es_frames
    assert all(clip.phases[i] < 0.05 for i in clip.ed_frames)
    assert all(clip.phases[i] > 0.95 for i in clip.es_frames)
    again = render_clip(40, seed=3, fps=40, heart_rate=75)
    assert np.array_equal(clip.frames, again.frames)


def test_speckle_envelope_is_rayleigh():
    amp = np.ones((4, 128, 128), np.float32)
    env = speckle(amp, draw_noise(np.random.default_rng(0), 4, 128), 0.7, 1.2).ravel().astype(np.float64)
    power = (env**2).mean()
    assert abs(power - 1.0) < 0.05  # unit-energy PSF keeps the reflectivity's power
    assert abs(env.mean() ** 2 / power - np.pi / 4) < 0.01  # Rayleigh: E[A]^2 / E[A^2] = pi/4
    assert abs(env.std() / env.mean() - 0.5227) < 0.02  # Rayleigh's speckle contrast
    from scipy import stats

    ks = stats.kstest(env[::7], "rayleigh", args=(0, np.sqrt(power / 2))).statistic
    assert ks < 0.02


def _neighbour_correlation(images: np.ndarray, axis: int) -> float:
    """Lag-1 correlation of the texture (image minus its smooth trend) where the tissue is bright."""
    imgs = images.astype(np.float32)
    trend = np.stack([cv2.GaussianBlur(im, (0, 0), 4) for im in imgs])
    res, keep = imgs - trend, trend > 40
    a = [slice(None)] * 3
    b = [slice(None)] * 3
    a[axis + 1], b[axis + 1] = slice(None, -1), slice(1, None)
    both = keep[tuple(a)] & keep[tuple(b)]
    return float(np.corrcoef(res[tuple(a)][both], res[tuple(b)][both])[0, 1])


def test_speckle_is_spatially_correlated(hearts):
    out, _, _ = hearts
    for axis in (0, 1):
        assert _neighbour_correlation(out.frames, axis) > 0.4
    # the measure can fail: independent pixel noise on the same images scores near zero
    rng = np.random.default_rng(0)
    noisy = np.clip(out.frames.astype(int) + rng.normal(0, 40, out.frames.shape), 0, 255).astype(np.uint8)
    noise_only = noisy.astype(np.float32) - out.frames
    assert abs(np.corrcoef(noise_only[:, :, :-1].ravel(), noise_only[:, :, 1:].ravel())[0, 1]) < 0.05


def test_rendering_does_not_depend_on_batching():
    alone, _, _ = render_hearts(11, [2])
    together, _, _ = render_hearts(11, [0, 1, 2])
    assert np.array_equal(alone.frames, together.frames[8:12])
    assert np.array_equal(alone.lv_masks, together.lv_masks[8:12])


def _read_manifest(folder: Path) -> list[dict]:
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_writes_frames_masks_and_manifest(tmp_path):
    out = tmp_path / "ph"
    assert main(["phantom", "--n", "10", "--seed", "1", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 10 and pngs[0] == "PH1H000000_f0.png" and "PH1H000002_f1.png" in pngs
    assert len(list((out / "masks").glob("*.png"))) == 10
    rows = _read_manifest(out)
    assert tuple(rows[0]) == COLUMNS  # the one manifest schema: k is the kept position, frame (no video here) empty
    assert [r["k"] for r in rows[:4]] == ["0", "1", "2", "3"] and {r["frame"] for r in rows} == {""}
    assert [r["phase_label"] for r in rows[:4]][1:3] == ["ES", "ED"]
    for r in rows:
        img = np.asarray(Image.open(out / r["file"]))
        mask = np.asarray(Image.open(out / r["mask"]))
        assert img.shape == (128, 128) and img.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255} and int((mask == 255).sum()) == int(r["lv_area"])
    ds = FrameDataset(out / "manifest.csv")
    assert len(ds) == 10 and len(set(ds.video_ids)) == 3  # 4 + 4 + 2 frames
    assert ds.infos[1].get("phase_label") == "ES"
    assert len(FrameDataset(out)) == 10  # the folder alone works too (masks/ is not mistaken for frames)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate(tmp_path / "a", 6, seed=2, workers=1, progress=False)
    b = generate(tmp_path / "b", 6, seed=2, workers=2, progress=False)
    c = generate(tmp_path / "c", 6, seed=3, workers=1, progress=False)
    for name in sorted(p.name for p in a.glob("*.png")):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "manifest.csv").read_text() == (b / "manifest.csv").read_text()
    assert (a / "PH2H000000_f0.png").read_bytes() != (c / "PH3H000000_f0.png").read_bytes()


def test_generate_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    assert main(["phantom", "--n", "4", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_resolve_data_caches_the_phantom(tmp_path):
    first = resolve_data("phantom", cache_dir=tmp_path, n=8, seed=4, workers=1, progress=False)
    assert first == phantom_cache(tmp_path, n=8, seed=4) and len(list(first.glob("*.png"))) == 8
    stamp = (first / "manifest.csv").stat().st_mtime_ns
    again = resolve_data("phantom", cache_dir=tmp_path, n=8, seed=4, workers=1, progress=False)
    assert again == first and (first / "manifest.csv").stat().st_mtime_ns == stamp  # not regenerated
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary folders left behind


def test_resolve_data_checks_paths(tmp_path):
    assert resolve_data(tmp_path) == tmp_path
    with pytest.raises(DataError, match="no-such-folder"):
        resolve_data(tmp_path / "no-such-folder")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="notes.txt"):
        resolve_data(tmp_path / "notes.txt")


def test_killed_generation_leaves_no_cache(tmp_path):
    cache = phantom_cache(tmp_path, n=4000, seed=0)
    code = (
        "from echolib.data.sources import resolve_data;"
        f"resolve_data('phantom', cache_dir={str(tmp_path)!r}, n=4000, workers=1, progress=False)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(f".{cache.name}.*.tmp/*.png")):
        assert proc.poll() is None and time.monotonic() < deadline, "generation did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not cache.exists()  # half-written frames sit only in the dead run's temp folder
    done = resolve_data("phantom", cache_dir=tmp_path, n=8, seed=0, workers=1, progress=False)
    assert (done / "manifest.csv").is_file()
    assert not list(tmp_path.glob(".*.tmp")), "the dead run's temporary folder was not cleaned up"


@pytest.mark.realdata
def test_phantom_intensities_resemble_real_frames(real_frames):
    files = sorted(real_frames.glob("*.png"))
    pick = np.random.default_rng(0).choice(len(files), size=min(300, len(files)), replace=False)
    real = np.stack([np.asarray(Image.open(files[i])) for i in pick])
    fake, _, _ = render_hearts(0, range(75))
    fake = fake.frames
    fan = (real > 0).mean(0) > 0.5

    def summary(x):
        return x[:, fan].mean(), (x == 0).mean(), np.percentile(x[:, fan], 90)

    (rm, rb, r90), (fm, fb, f90) = summary(real), summary(fake)
    assert 0.7 * rm < fm < 1.3 * rm, f"mean inside the fan: phantom {fm:.1f}, real {rm:.1f}"
    assert abs(fb - rb) < 0.06, f"black fraction: phantom {fb:.3f}, real {rb:.3f}"
    assert 0.7 * r90 < f90 < 1.3 * r90, f"90th percentile: phantom {f90:.0f}, real {r90:.0f}"
