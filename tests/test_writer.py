"""The dataset writer both producers share: PNG bytes, staged folders, the worker pool."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from echolib.data.writer import png_bytes, run_jobs, staged_folder, write_mask, write_png
from echolib.errors import DataError


def _square(n: int) -> int:
    return n * n


def test_png_round_trip_and_masks(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (8, 12), dtype=np.uint8)
    assert png_bytes(image) == png_bytes(image.copy())  # fixed settings: same pixels, same bytes
    write_png(tmp_path / "a.png", image)
    write_mask(tmp_path / "m.png", image > 127, atomic=False)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), image)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m.png")), np.where(image > 127, 255, 0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "m.png"]  # no temporary files left


def test_staged_folder_appears_only_when_complete(tmp_path):
    out = tmp_path / "set"
    with pytest.raises(RuntimeError, match="half way"), staged_folder(out) as tmp:
        (tmp / "x.png").write_bytes(b"x")
        raise RuntimeError("half way")
    assert not out.exists() and list(tmp_path.iterdir()) == []  # the temporary folder went too
    with staged_folder(out) as tmp:
        (tmp / "x.png").write_bytes(b"x")
        assert not out.exists()
    assert [p.name for p in out.iterdir()] == ["x.png"] and list(tmp_path.iterdir()) == [out]
    with pytest.raises(DataError, match="not an empty folder"), staged_folder(out, "test"):
        pass


@pytest.mark.parametrize("workers", [1, 2])
def test_run_jobs_keeps_job_order(workers):
    assert list(run_jobs(_square, list(range(6)), workers=workers, progress=False)) == [0, 1, 4, 9, 16, 25]
    done = sorted(run_jobs(_square, list(range(6)), workers=workers, progress=False, ordered=False))
    assert done == [0, 1, 4, 9, 16, 25]
