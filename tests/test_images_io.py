"""The single conversion point and the crash-safe writers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from echolib.images import make_grid, read_gray, save_batch, to_float, to_uint8
from echolib.io import append_jsonl, append_line, atomic_torch_save, check_writable, read_jsonl


def test_uint8_float_round_trip_is_exact():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    f = to_float(x)
    assert f.min() == -1.0 and f.max() == 1.0
    assert torch.equal(to_uint8(f), x)


def test_to_uint8_clamps_out_of_range():
    y = to_uint8(torch.tensor([-3.0, 0.0, 5.0]))
    assert y.tolist() == [0, 128, 255]


def test_conversions_refuse_wrong_dtypes():
    with pytest.raises(TypeError):
        to_float(torch.zeros(2))
    with pytest.raises(TypeError):
        to_uint8(torch.zeros(2, dtype=torch.uint8))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "I;16", "P"])
def test_read_gray_accepts_gray_encodings(tmp_path, mode):
    base = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    if mode == "I;16":
        img = Image.fromarray(base.astype(np.uint16) * 257)
    elif mode == "P":
        img = Image.fromarray(base, "L").convert("P")
    else:
        img = Image.fromarray(base, "L").convert(mode)
    path = tmp_path / f"x_{mode.replace(';', '')}.png"
    img.save(path)
    out = read_gray(path)
    assert out.dtype == np.uint8 and out.shape == (64, 64)
    assert np.abs(out.astype(int) - base).max() <= 1


def test_read_gray_refuses_colour_and_garbage(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match="colour.png.*RGB channels differ"):
        read_gray(tmp_path / "colour.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="bad.png: not a readable image"):
        read_gray(tmp_path / "bad.png")


def test_save_batch_and_grid(tmp_path):
    imgs = torch.linspace(-1, 1, 5 * 16 * 16).reshape(5, 1, 16, 16)
    paths = save_batch(imgs, tmp_path)
    assert [p.name for p in paths] == [f"img_{i:05d}.png" for i in range(5)]
    assert np.array_equal(read_gray(paths[4]), to_uint8(imgs[4, 0]).numpy())
    grid = make_grid(imgs, nrow=3, pad=2)
    assert grid.shape == (2 * 18 + 2, 3 * 18 + 2)


def test_append_survives_torn_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as fh:
        fh.write('{"a": 2, "torn')  # a crash mid-write
    append_jsonl(path, {"a": 3})
    assert [r["a"] for r in read_jsonl(path)] == [1, 3]
    with pytest.raises(ValueError):
        append_line(path, "two\nlines")
    with open(path, "a") as fh:
        fh.write("an edit gone wrong\n")  # not a torn record: said, not swallowed
    append_jsonl(path, {"a": 4})
    with pytest.warns(UserWarning, match=r"m.jsonl: skipped unreadable line\(s\) \[4\]"):
        assert [r["a"] for r in read_jsonl(path)] == [1, 3, 4]


def test_atomic_torch_save_leaves_no_temp_and_loads_weights_only(tmp_path):
    path = tmp_path / "ck.pt"
    atomic_torch_save({"w": torch.ones(3), "kimg": 1.5}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    data = torch.load(path, weights_only=True)
    assert data["kimg"] == 1.5 and torch.equal(data["w"], torch.ones(3))


def test_check_writable_names_the_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if __import__("os").access(ro, __import__("os").W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(PermissionError, match=str(ro)):
            check_writable(ro)
    finally:
        ro.chmod(0o700)
