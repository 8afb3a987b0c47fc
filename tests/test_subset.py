"""Frame subsets for small machines: whole videos, deterministic, resumable, clear refusals."""

from __future__ import annotations

import pytest
from test_frames import write_frames  # tests/ is on sys.path (rootdir-relative imports)

from echolib.data.frames import FrameDataset, video_id_of
from echolib.data.subset import copy_subset, main
from echolib.errors import DataError


def test_subset_keeps_whole_videos_and_is_deterministic(tmp_path):
    src = write_frames(tmp_path / "all", n_videos=10, frames=3)
    a = copy_subset(src, tmp_path / "a", n=7)
    b = copy_subset(src, tmp_path / "b", n=7, seed=0)
    c = copy_subset(src, tmp_path / "c", n=7, seed=1)
    assert [p.name for p in a] == [p.name for p in b]
    assert {p.name for p in a} != {p.name for p in c}  # another seed, other videos (10 choose 3)
    assert len(a) == 9  # 3 whole videos: the first count >= 7
    videos = {video_id_of(p.name) for p in a}
    for v in videos:
        assert sorted(p.name for p in a if video_id_of(p.name) == v) == [f"{v}_f{k}.png" for k in range(3)]
    assert (tmp_path / "a" / a[0].name).read_bytes() == (src / a[0].name).read_bytes()
    assert len(FrameDataset(tmp_path / "a")) == 9


def test_subset_reruns_and_larger_requests(tmp_path, capsys):
    src = write_frames(tmp_path / "all", n_videos=4, frames=2)
    copy_subset(src, tmp_path / "s", n=3)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "s").iterdir()}
    main([str(src), str(tmp_path / "s"), "--n", "3"])
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "s").iterdir()} == mtimes  # nothing rewritten
    assert "4 frames of 2 videos" in capsys.readouterr().out
    assert len(copy_subset(src, tmp_path / "all-of-it", n=100)) == 8


def test_subset_refusals(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        copy_subset(tmp_path / "missing", tmp_path / "out", n=5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        copy_subset(tmp_path / "empty", tmp_path / "out", n=5)
    src = write_frames(tmp_path / "all", n_videos=2, frames=2)
    with pytest.raises(DataError, match="--n must be positive"):
        copy_subset(src, tmp_path / "out", n=0)
