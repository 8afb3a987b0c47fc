"""Frame datasets: sources, conversions, errors, and splits that never leak a video."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from echolib.data.frames import FrameDataset, video_id_of
from echolib.errors import DataError


def write_frames(folder, n_videos=6, frames=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for v in range(n_videos):
        for k in range(frames):
            arr = rng.integers(0, 256, (size, size), dtype=np.uint8)
            Image.fromarray(arr, "L").save(folder / f"0XVID{v:03d}_f{k}.png")
    return folder


def test_video_id_of():
    assert video_id_of("0X100009310A3BD7FC_f2.png") == "0X100009310A3BD7FC"
    assert video_id_of("img_00012.png") == "img_00012"


def test_folder_loads_uint8_and_items_in_range(tmp_path):
    ds = FrameDataset(write_frames(tmp_path / "f"))
    assert len(ds) == 24 and ds.images.dtype == torch.uint8 and ds.images.shape == (24, 1, 32, 32)
    x = ds[0]
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert len(set(ds.video_ids)) == 6


def test_zip_and_manifest_give_the_same_pixels(tmp_path):
    folder = write_frames(tmp_path / "f")
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"frames/{p.name}")
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "video_id", "role"])
        for p in sorted(folder.iterdir()):
            w.writerow([f"f/{p.name}", "V" + p.name[:8], "x"])
    a, b, c = FrameDataset(folder), FrameDataset(tmp_path / "f.zip"), FrameDataset(tmp_path / "manifest.csv")
    assert torch.equal(a.images, b.images) and torch.equal(a.images, c.images)
    assert c.infos[0].get("role") == "x" and c.video_ids[0].startswith("V0XVID")


def test_resize(tmp_path):
    ds = FrameDataset(write_frames(tmp_path / "f", n_videos=1), resolution=16)
    assert ds.images.shape == (4, 1, 16, 16)


def test_errors_name_the_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNG/JPEG images"):
        FrameDataset(tmp_path / "empty")
    folder = write_frames(tmp_path / "f", n_videos=1)
    (folder / "0XBAD_f0.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="0XBAD_f0.png"):
        FrameDataset(folder)
    mixed = write_frames(tmp_path / "m", n_videos=1)
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(mixed / "z_f0.png")
    with pytest.raises(DataError, match="mixed image sizes.*z_f0.png is 20x20"):
        FrameDataset(mixed)
    assert FrameDataset(mixed, resolution=32).images.shape[0] == 5
    with pytest.raises(DataError, match="no such file"):
        FrameDataset(tmp_path / "nope")


def test_splits_never_share_a_video(tmp_path):
    ds = FrameDataset(write_frames(tmp_path / "f", n_videos=40, frames=4, size=8))
    parts = ds.split((0.6, 0.2, 0.2), seed=3)
    assert sum(len(p) for p in parts.values()) == len(ds)
    vids = [set(p.video_ids) for p in parts.values()]
    assert not (vids[0] & vids[1]) and not (vids[0] & vids[2]) and not (vids[1] & vids[2])
    assert all(len(p) % 4 == 0 for p in parts.values())  # whole videos only
    again = ds.split((0.6, 0.2, 0.2), seed=3)
    assert again["test"].names == parts["test"].names
    # a video keeps its split when other videos are removed
    sub = ds.subset(range(80)).split((0.6, 0.2, 0.2), seed=3)
    assert set(sub["test"].video_ids) <= set(parts["test"].video_ids)


@pytest.mark.realdata
def test_real_frames_load(real_frames):
    ds = FrameDataset(real_frames, limit=400)
    assert ds.images.shape == (400, 1, 128, 128)
    assert len(set(ds.video_ids)) == 100  # four frames per video
    splits = ds.split()
    assert not set(splits["train"].video_ids) & set(splits["test"].video_ids)
