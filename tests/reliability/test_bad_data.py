"""Broken inputs: each is handled (as documented) or refused with an error naming the file."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from echolib.data.frames import FrameDataset
from echolib.errors import ConfigError, DataError
from echolib.train.loop import train
from echolib.train.run_config import load_config

ROOT = Path(__file__).resolve().parents[2]


def frame(value: int = 100, size: int = 32) -> np.ndarray:
    return np.full((size, size), value, np.uint8)


def test_empty_folder_names_it(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path}: no PNG/JPEG images found"):
        FrameDataset(tmp_path)


def test_non_image_files_are_ignored_and_counted(tmp_path):
    Image.fromarray(frame()).save(tmp_path / "a_f0.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / "manifest.json").write_text("{}")
    ds = FrameDataset(tmp_path)
    assert len(ds) == 1  # documented: only .png/.jpg/.jpeg files are frames
    (tmp_path / "a_f0.png").unlink()
    with pytest.raises(DataError, match=r"no PNG/JPEG images found \(2 other files ignored\)"):
        FrameDataset(tmp_path)


def test_one_image_trains_nothing_and_says_why(tmp_path):
    Image.fromarray(frame(size=64)).save(tmp_path / "only_f0.png")
    with pytest.raises(ConfigError, match="batch 8 is larger than the training set"):
        train(load_config("wgan", "smoke"), tmp_path, tmp_path / "run", device="cpu", progress=False)


def test_corrupt_png_and_renamed_text_name_the_file(tmp_path):
    Image.fromarray(frame()).save(tmp_path / "good_f0.png")
    (tmp_path / "broken_f0.png").write_bytes(Image.fromarray(frame()).tobytes()[:50])
    with pytest.raises(ValueError, match="broken_f0.png: not a readable image"):
        FrameDataset(tmp_path)
    (tmp_path / "broken_f0.png").write_text("hello, I am text")
    with pytest.raises(ValueError, match="broken_f0.png: not a readable image"):
        FrameDataset(tmp_path)


def test_truncated_png_names_the_file(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "t_f0.png")
    data = (tmp_path / "t_f0.png").read_bytes()
    (tmp_path / "t_f0.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t_f0.png"):
        FrameDataset(tmp_path)


def test_mixed_sizes_need_a_resolution(tmp_path):
    Image.fromarray(frame(size=32)).save(tmp_path / "a_f0.png")
    Image.fromarray(frame(size=48)).save(tmp_path / "b_f0.png")
    with pytest.raises(DataError, match="mixed image sizes: a_f0.png is 32x32 but b_f0.png is 48x48"):
        FrameDataset(tmp_path)
    assert FrameDataset(tmp_path, resolution=32).images.shape == (2, 1, 32, 32)


def test_a_frame_that_is_not_square_is_refused_rather_than_stretched(tmp_path):
    Image.fromarray(np.zeros((32, 48), np.uint8)).save(tmp_path / "wide_f0.png")
    with pytest.raises(DataError, match="wide_f0.png is 48x32: resizing it to 32x32 would distort"):
        FrameDataset(tmp_path, resolution=32)


def test_sixteen_bit_and_rgba_pngs_become_8_bit_gray(tmp_path):
    ramp = np.tile(np.arange(0, 65536, 2048, dtype=np.uint16), (32, 1))
    Image.fromarray(ramp).save(tmp_path / "deep_f0.png")
    rgba = np.dstack([frame(77)] * 3 + [np.full((32, 32), 10, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha_f0.png")
    ds = FrameDataset(tmp_path)
    by_name = dict(zip(ds.names, ds.images))
    assert by_name["alpha_f0.png"].unique().tolist() == [77]  # alpha ignored, documented
    deep = by_name["deep_f0.png"][0, 0].tolist()
    assert deep[0] == 0 and deep[-1] == round(int(ramp[0, -1]) * 255 / 65535)  # scaled, not truncated
    assert ds.images.dtype == torch.uint8


def test_colour_images_are_refused(tmp_path):
    rgb = np.dstack([frame(10), frame(200), frame(10)])
    Image.fromarray(rgb, "RGB").save(tmp_path / "colour_f0.png")
    with pytest.raises(ValueError, match="colour_f0.png: colour image"):
        FrameDataset(tmp_path)


def test_manifest_pointing_at_missing_files(tmp_path):
    Image.fromarray(frame()).save(tmp_path / "here_f0.png")
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "video_id"])
        w.writerow(["here_f0.png", "here"])
        w.writerow(["gone_f0.png", "gone"])
    with pytest.raises(DataError, match="manifest.csv: line 3: file 'gone_f0.png' does not exist"):
        FrameDataset(tmp_path / "manifest.csv")
    (tmp_path / "bad.csv").write_text("path,video\nx.png,v\n")
    with pytest.raises(DataError, match="bad.csv: manifest needs a 'file' column"):
        FrameDataset(tmp_path / "bad.csv")


def test_an_empty_manifest_cell_and_a_zero_limit_are_named(tmp_path):
    Image.fromarray(frame()).save(tmp_path / "here_f0.png")
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "video_id"])
        w.writerow(["here_f0.png", "here"])
        w.writerow(["", "blank"])  # used to be read as the folder itself: "not a readable image"
    with pytest.raises(DataError, match="manifest.csv: line 3: the 'file' cell is empty"):
        FrameDataset(tmp_path / "manifest.csv")
    with pytest.raises(DataError, match="limit must be a positive number of frames, got 0"):
        FrameDataset(tmp_path, limit=0)


def _truncate(png: Path) -> None:
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])


def _shrink(png: Path) -> None:
    Image.open(png).resize((32, 32)).save(png)


def _shrink_all(png: Path) -> None:
    for other in png.parent.glob("*.png"):
        _shrink(other)


@pytest.mark.parametrize(
    "command, damage, message",
    [("evaluate --fake", _truncate, "0XNOISE001_f2.png: not a readable image (OSError: image file is truncated)"),
     ("evaluate --real", _truncate, "0XNOISE001_f2.png: not a readable image (OSError: image file is truncated)"),
     ("evaluate --fake", _shrink, "mixed image sizes: 0XNOISE000_f0.png is 64x64 but 0XNOISE001_f2.png is 32x32"),
     ("evaluate --fake", _shrink_all, "real images are (64, 64) but generated ones (32, 32)"),
     ("train", _truncate, "0XNOISE001_f2.png: not a readable image (OSError: image file is truncated)")],
    ids=["evaluate-truncated-fake", "evaluate-truncated-real", "evaluate-mixed-sizes", "evaluate-other-size",
         "train-truncated"],
)  # fmt: skip
def test_commands_report_a_broken_frame_in_one_line_with_status_2(noise_frames, tmp_path, command, damage, message):
    """The README's promise: an input the user can fix is one line on stderr and exit status 2, never a traceback."""
    real, fake = tmp_path / "real", tmp_path / "fake"
    shutil.copytree(noise_frames, real)
    shutil.copytree(noise_frames, fake)
    damage((real if command == "evaluate --real" else fake) / "0XNOISE001_f2.png")
    if command == "train":
        args = ["train", "wgan", "--config", "smoke", "--data", str(fake), "--out", str(tmp_path / "run"),
                "--device", "cpu", "--no-progress"]
    else:
        args = ["evaluate", "--real", str(real), "--fake", str(fake), "--metrics", "ssim", "--extractor", "echo",
                "--device", "cpu", "--no-cache", "--records", str(tmp_path / "metrics.jsonl")]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", ECHOLIB_RUNS=str(tmp_path / "runs"))
    r = subprocess.run([sys.executable, "-m", "echolib", *args], capture_output=True, text=True, env=env,
                       timeout=300, check=False)  # fmt: skip
    assert r.returncode == 2, r.stderr[-3000:]
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr[-3000:]
    assert message in r.stderr
