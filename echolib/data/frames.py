"""Frame datasets: folders, zips or manifests of PNGs as one uint8 tensor.

A 128x128 frame is 16 KiB, so even the study's 40k frames (0.66 GB) fit in host
or GPU memory. Holding the whole dataset as one ``uint8 [N, 1, H, W]`` tensor
lets the trainer sample batches with an index gather on the device instead of a
DataLoader, and keeps a single conversion point to floats (:mod:`echolib.images`).

Splits are by video: the four frames of one EchoNet clip are near-duplicates, so
a frame-level split would leak the test set into training.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from echolib.errors import DataError
from echolib.images import read_gray, to_float

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_FRAME_NAME = re.compile(r"^(?P<video>.+)_f(?P<frame>\d+)$")


def video_id_of(name: str) -> str:
    """``0X100009310A3BD7FC_f2.png`` -> ``0X100009310A3BD7FC``; other names are their own video."""
    stem = Path(name).stem
    m = _FRAME_NAME.match(stem)
    return m.group("video") if m else stem


@dataclass(frozen=True)
class FrameInfo:
    """Where a frame came from: its name, its video and (when known) its manifest row."""

    name: str
    video_id: str
    meta: tuple[tuple[str, str], ...] = ()

    def get(self, key: str, default: str | None = None) -> str | None:
        return dict(self.meta).get(key, default)


class FrameDataset(torch.utils.data.Dataset):
    """All frames of a source as ``uint8 [N, 1, H, W]``; items are floats in ``[-1, 1]``.

    ``source`` is a folder of PNGs, a ``.zip`` of PNGs, or a ``manifest.csv``
    (column ``file`` relative to the manifest, optional ``video_id`` and any
    other columns, kept as metadata). ``resolution`` resizes every frame to a
    square of that size; without it all frames must share one size.
    """

    def __init__(
        self,
        source: str | Path | None = None,
        *,
        resolution: int | None = None,
        device: str | torch.device | None = None,
        limit: int | None = None,
        workers: int = 4,
        images: torch.Tensor | None = None,
        infos: Sequence[FrameInfo] | None = None,
    ) -> None:
        if images is not None:
            if infos is None or len(infos) != len(images):
                raise DataError("FrameDataset(images=...) needs one FrameInfo per image")
            self.images = images
            self.infos = list(infos)
            self.source = Path(source) if source is not None else None
            return
        if source is None:
            raise DataError("FrameDataset needs a source folder, zip or manifest")
        if resolution is not None and resolution <= 0:
            raise DataError(f"resolution must be a positive integer, got {resolution}")
        self.source = Path(source)
        loaders, infos = _list_source(self.source)
        if limit is not None:
            if limit < 1:
                raise DataError(f"{source}: limit must be a positive number of frames, got {limit}")
            loaders, infos = loaders[:limit], infos[:limit]
        arrays = _load_all(loaders, infos, resolution, workers)
        _check_sizes(arrays, infos, self.source)
        stacked = torch.from_numpy(np.stack(arrays))[:, None]
        self.images = stacked.to(device) if device is not None else stacked
        self.infos = infos

    # -- basic protocol -------------------------------------------------
    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_float(self.images[index])

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def video_ids(self) -> list[str]:
        return [i.video_id for i in self.infos]

    @property
    def names(self) -> list[str]:
        return [i.name for i in self.infos]

    def to(self, device: str | torch.device) -> FrameDataset:
        return FrameDataset(self.source, images=self.images.to(device), infos=self.infos)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> FrameDataset:
        idx = torch.as_tensor(list(indices) if not isinstance(indices, torch.Tensor) else indices, dtype=torch.long)
        return FrameDataset(
            self.source,
            images=self.images[idx.to(self.images.device)],
            infos=[self.infos[int(i)] for i in idx],
        )

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """uint8 batch gathered on the dataset's device (no host round trip)."""
        return self.images.index_select(0, indices.to(self.images.device))

    # -- splits ---------------------------------------------------------
    def split(
        self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, names: Sequence[str] = ("train", "val", "test")
    ) -> dict[str, FrameDataset]:
        """Split by video id with a seeded hash, so a video's frames stay together.

        Hashing (rather than shuffling) keeps a video in the same split when
        videos are added to or removed from the dataset.
        """
        if len(fractions) != len(names):
            raise DataError(f"split: {len(fractions)} fractions for {len(names)} names")
        if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
            raise DataError(f"split: fractions must be non-negative and sum to 1, got {list(fractions)}")
        edges = np.cumsum(fractions)
        buckets: dict[str, list[int]] = {n: [] for n in names}
        for i, vid in enumerate(self.video_ids):
            u = unit_hash(f"{seed}:{vid}")
            k = int(np.searchsorted(edges, u, side="right"))
            buckets[names[min(k, len(names) - 1)]].append(i)
        return {n: self.subset(ix) for n, ix in buckets.items()}


def split_by_video(video_ids: Sequence[str], fractions: Sequence[float], seed: int = 0) -> list[int]:
    """Split index (0..len(fractions)-1) per item, by seeded hash of its video id."""
    edges = np.cumsum(fractions)
    return [min(int(np.searchsorted(edges, unit_hash(f"{seed}:{v}"), side="right")), len(fractions) - 1) for v in video_ids]


def holdout_split(video_ids: Sequence[str], fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Positions ``(train, held_out)``: a seeded hash of the video id puts whole videos aside.

    The trainer trains on ``train`` only, so evaluation (held-out FID, memorisation
    calibration, the classifier two-sample test) can use hearts no model has seen.
    At least one video is held out when ``fraction > 0`` and there are two or more
    videos, so a tiny smoke dataset still has unseen hearts, and at least one is
    kept for training.
    """
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"holdout fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return list(range(len(video_ids))), []
    part = split_by_video(video_ids, (1.0 - fraction, fraction), seed)
    held = [i for i, p in enumerate(part) if p == 1]
    videos = sorted(set(video_ids))
    if not held and len(videos) > 1:
        first = min(videos, key=lambda v: unit_hash(f"{seed}:{v}"))
        held = [i for i, v in enumerate(video_ids) if v == first]
    if len(held) == len(video_ids) and len(videos) > 1:  # every video fell aside: hold out one, train on the rest
        last = max(videos, key=lambda v: unit_hash(f"{seed}:{v}"))
        held = [i for i, v in enumerate(video_ids) if v == last]
    held_set = set(held)
    return [i for i in range(len(video_ids)) if i not in held_set], held


def split_holdout(dataset: FrameDataset, fraction: float, seed: int = 0) -> tuple[FrameDataset, FrameDataset | None]:
    """``(train, held_out)`` datasets, exactly as the trainer splits them (``train.holdout``)."""
    train, held = holdout_split(dataset.video_ids, fraction, seed)
    return (dataset.subset(train), dataset.subset(held)) if held else (dataset, None)


def unit_hash(text: str) -> float:
    """A number in [0, 1) fixed by ``text`` alone: seeded, platform-independent choices of videos.

    ``hash()`` is salted per process and ``random`` depends on call order; a
    digest of ``"seed:video"`` gives every video the same draw on every
    machine, so splits and subsets never change when files are added or listed
    in another order.
    """
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


# -- reading sources -------------------------------------------------------
def _list_source(source: Path):
    if not source.exists():
        raise DataError(f"{source}: no such file or folder (expected a folder of PNGs, a .zip or a manifest.csv)")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            others = sum(1 for p in source.iterdir() if p.is_file())
            hint = f" ({others} other files ignored)" if others else ""
            raise DataError(f"{source}: no PNG/JPEG images found{hint}")
        return [lambda p=p: read_gray(p) for p in files], [FrameInfo(p.name, video_id_of(p.name)) for p in files]
    if source.suffix.lower() == ".zip":
        return _list_zip(source)
    if source.suffix.lower() == ".csv":
        return _list_manifest(source)
    raise DataError(f"{source}: expected a folder of PNGs, a .zip or a manifest .csv")


def _list_zip(source: Path):
    try:
        zf = zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{source}: not a valid zip file ({exc})") from exc
    members = sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES and not n.endswith("/"))
    if not members:
        raise DataError(f"{source}: the zip holds no PNG/JPEG images")
    data = {n: zf.read(n) for n in members}
    zf.close()

    def load(name: str) -> np.ndarray:
        return read_gray(io.BytesIO(data[name]), name=f"{source}!{name}")

    return [lambda n=n: load(n) for n in members], [FrameInfo(Path(n).name, video_id_of(n)) for n in members]


def _list_manifest(source: Path):
    root = source.parent
    with open(source, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "file" not in reader.fieldnames:
            raise DataError(f"{source}: manifest needs a 'file' column (has: {reader.fieldnames})")
        rows = list(reader)
    if not rows:
        raise DataError(f"{source}: manifest lists no frames")
    loaders, infos = [], []
    for line, row in enumerate(rows, start=2):
        if not (row["file"] or "").strip():
            raise DataError(f"{source}: line {line}: the 'file' cell is empty")
        path = root / row["file"]
        if not path.exists():
            raise DataError(f"{source}: line {line}: file {row['file']!r} does not exist")
        vid = row.get("video_id") or video_id_of(row["file"])
        meta = tuple((k, v) for k, v in row.items() if k not in ("file", "video_id") and v is not None)
        loaders.append(lambda p=path: read_gray(p))
        infos.append(FrameInfo(Path(row["file"]).name, vid, meta))
    return loaders, infos


def _load_all(loaders, infos, resolution: int | None, workers: int) -> list[np.ndarray]:
    def one(i: int) -> np.ndarray:
        arr = loaders[i]()
        if resolution is not None and arr.shape != (resolution, resolution):
            if arr.shape[0] != arr.shape[1]:
                raise DataError(
                    f"{infos[i].name} is {arr.shape[1]}x{arr.shape[0]}: resizing it to {resolution}x{resolution} "
                    "would distort the heart; crop or pad frames to a square first"
                )
            arr = resize_gray(arr, resolution)
        return arr

    if workers <= 1 or len(loaders) < 64:
        return [one(i) for i in range(len(loaders))]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(len(loaders))))


def resize_gray(arr: np.ndarray, size: int) -> np.ndarray:
    """Area-average when shrinking (no aliasing), Lanczos when enlarging a square frame to ``size`` x ``size``."""
    img = Image.fromarray(arr, mode="L")
    method = Image.Resampling.BOX if size < min(arr.shape) else Image.Resampling.LANCZOS
    return np.asarray(img.resize((size, size), method))


def _check_sizes(arrays: list[np.ndarray], infos: list[FrameInfo], source: Path) -> None:
    first = arrays[0].shape
    for arr, info in zip(arrays, infos):
        if arr.shape != first:
            raise DataError(
                f"{source}: mixed image sizes: {infos[0].name} is {first[1]}x{first[0]} but "
                f"{info.name} is {arr.shape[1]}x{arr.shape[0]}; pass resolution=N to resize"
            )
