"""Every chapter executes on real frames, as ``make book DATA=<frames>`` runs it.

The default build runs on the phantom. Real frames differ in what the chapters
must handle: a bare folder with the study's file names (no manifest, so no phase
labels and no LV masks), and the same frames also serve as the chapters' real
reference. Two chapters once failed only there (the data chapter compared the
real frames with themselves; the diffusion chapter trained its phase-conditioned
model on frames without phases). A subset of whole videos keeps this to minutes.
"""

from __future__ import annotations

import pytest
from conftest import REAL_FRAMES, need

from echolib.data.subset import copy_subset
from echolib.pipeline.book import chapters
from echolib.pipeline.notebooks import NOTEBOOKS, execute, parameters


@pytest.fixture(scope="module")
def real_book(tmp_path_factory):
    """(a 400-frame folder of whole real videos, one runs folder shared by the chapters, the output folder)"""
    frames = tmp_path_factory.mktemp("real") / "frames"
    copy_subset(need(REAL_FRAMES), frames, n=400)
    return frames, tmp_path_factory.mktemp("real-runs"), tmp_path_factory.mktemp("real-book")


@pytest.mark.slow
@pytest.mark.book
@pytest.mark.realdata
@pytest.mark.parametrize("chapter", chapters())
def test_chapter_executes_on_real_frames(chapter, real_book):
    frames, runs, out = real_book
    src = NOTEBOOKS / f"{chapter}.py"
    given = {"data": str(frames), "runs": str(runs), "device": "cpu"}
    params = {k: v for k, v in given.items() if k in parameters(src)}
    execute(src, out / f"{chapter}.ipynb", params, progress=False, timeout=1200,
            env={"ECHOLIB_RUNS": str(runs), "TQDM_DISABLE": "1"})
    assert (out / f"{chapter}.ipynb").stat().st_size > 10_000
