"""Writing a frame folder: PNG encoding, the worker pool, and folders that appear only when complete.

Both producers of frame folders (the phantom, :mod:`echolib.data.phantom`, and
EchoNet-Dynamic preprocessing, :mod:`echolib.data.echonet`) write through
this module, so a frame is encoded the same way wherever it comes from and a
killed run never leaves something that looks finished:

* :func:`staged_folder` builds a new folder under a temporary sibling name and
  renames it into place only when the block ends without an error (the
  phantom: all or nothing). Temporary folders of dead runs are removed.
* :func:`write_png` writes one file through a temporary file and a rename (EchoNet
  preprocessing: resumable video by video, every file whole or absent).
* :func:`run_jobs` maps a function over jobs in spawned worker processes.

Nothing here imports torch: spawned workers import the modules of the
functions they run, and torch costs seconds per worker.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from echolib.errors import DataError
from echolib.io import atomic_write_bytes, fsync_dir
from echolib.progress import progress_bar

J = TypeVar("J")
R = TypeVar("R")

PNG_COMPRESSION = 6


def png_bytes(image: np.ndarray) -> bytes:
    """PNG bytes of a ``[H, W]`` uint8 image.

    OpenCV rather than :func:`echolib.images.png_bytes` keeps the worker
    processes free of torch; pixels read back identical. The compression level
    is fixed, so the same pixels give the same bytes.
    """
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def mask_png(mask: np.ndarray) -> bytes:
    """PNG bytes of a boolean mask as 0/255, the form every mask of a frame folder takes."""
    return png_bytes(np.asarray(mask).astype(np.uint8) * 255)


def write_png(path: Path, image: np.ndarray, *, atomic: bool = True) -> None:
    """Write ``image`` as PNG. ``atomic=False`` inside a :func:`staged_folder`, which is atomic as a whole."""
    data = png_bytes(image)
    if atomic:
        atomic_write_bytes(path, data)
    else:
        Path(path).write_bytes(data)


def write_mask(path: Path, mask: np.ndarray, *, atomic: bool = True) -> None:
    """Write a boolean mask as a 0/255 PNG (see :func:`write_png`)."""
    data = mask_png(mask)
    if atomic:
        atomic_write_bytes(path, data)
    else:
        Path(path).write_bytes(data)


# -- a folder that appears whole --------------------------------------------------------------
@contextmanager
def staged_folder(out: Path, what: str = "output") -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to fill; rename it to ``out`` when the block succeeds.

    ``out`` must be absent or an empty folder. On any error (or a kill, by the
    next run's clean-up) the temporary folder goes, so an interrupted run never
    leaves a partial dataset that a later run would mistake for a finished one.
    ``what`` names the producer in errors.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{what}: output {out} exists and is not an empty folder; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out.parent, out.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            out.rmdir()  # empty (checked above); fails if another run filled it meanwhile
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if out.is_dir() and any(out.iterdir()):
            raise DataError(f"{what}: output {out} was filled by another run while this one was writing") from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temps(folder: Path, name: str | None = None) -> None:
    """Delete temporary output folders (``.<name>.<pid>.<random>.tmp``) in ``folder`` whose writer is dead.

    ``name`` restricts the clean-up to one output; without it every dead run's leftovers go.
    """
    for tmp in Path(folder).glob(".*.tmp"):
        m = _TEMP.match(tmp.name)
        if m and (name is None or m["name"] == name) and not _alive(int(m["pid"])):
            shutil.rmtree(tmp, ignore_errors=True)


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the worker pool ---------------------------------------------------------------------------
def run_jobs(fn: Callable[[J], R], jobs: Sequence[J], *, workers: int, progress: bool = True, desc: str = "",
             unit: str = "it", size: Callable[[J], int] | None = None, ordered: bool = True) -> Iterator[R]:
    """``fn`` over ``jobs``, in ``workers`` spawned processes when ``workers > 1`` and there are several jobs.

    ``fn`` must be a module-level function (it is pickled by name). Results come
    in job order, or as they finish with ``ordered=False`` (a result then does
    not say its job, so the progress bar counts results rather than ``size``).
    The progress bar advances by ``size(job)`` (default 1) as each result arrives.
    """
    if size is not None and not ordered:
        raise ValueError("run_jobs: size needs ordered=True")
    weight = size or (lambda job: 1)
    with progress_bar(total=sum(weight(j) for j in jobs), enabled=progress, unit=unit, desc=desc) as bar:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                result = fn(job)
                bar.update(weight(job))
                yield result
            return
        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            if ordered:
                for job, result in zip(jobs, pool.imap(fn, jobs)):
                    bar.update(weight(job))
                    yield result
            else:
                for result in pool.imap_unordered(fn, jobs, chunksize=4):
                    bar.update(1)
                    yield result
