"""Frame datasets: folders, zips or manifests of PNGs as one uint8 tensor.

A 128x128 frame is 16 KiB, so even the study's 40k frames (0.66 GB) fit in host
or GPU memory. Holding the whole dataset as one ``uint8 [N, 1, H, W]`` tensor
lets the trainer sample batches with an index gather on the device instead of a
DataLoader, and keeps a single conversion point to floats (:mod:`echolib.images`).

Splits are by video: the four frames of one EchoNet clip are near-duplicates, so
a frame-level split would leak the test set into training.

Each frame also carries its manifest fields (:class:`~echolib.data.manifest.FrameRecord`:
video, phase label and where it comes from, EF, split, mask), read from the
manifest the dataset was opened from or, for a folder, the ``manifest.csv``
beside its PNGs. Models and reports take them from the dataset
(:attr:`FrameDataset.records`, :attr:`FrameDataset.phase_labels`,
:meth:`FrameDataset.field`, ...) and never read a manifest themselves.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from echolib.data.manifest import (
    IMAGE_SUFFIXES,
    FrameRecord,
    k_of,
    manifest_beside,
    read_manifest,
    record_from_row,
    video_id_of,
)
from echolib.errors import DataError
from echolib.images import read_gray, to_float

__all__ = ["IMAGE_SUFFIXES", "FrameDataset", "FrameInfo", "FrameRecord", "frame_loaders", "video_id_of"]


@dataclass(frozen=True)
class FrameInfo:
    """Where a frame came from: its name, its video and the cells of the manifest row it was opened from.

    ``meta`` is empty for frames opened as a folder or zip; their manifest
    fields, wherever kept, are in :attr:`FrameDataset.records`.
    """

    name: str
    video_id: str
    meta: tuple[tuple[str, str], ...] = ()

    def get(self, key: str, default: str | None = None) -> str | None:
        return dict(self.meta).get(key, default)


class FrameDataset(torch.utils.data.Dataset):
    """All frames of a source as ``uint8 [N, 1, H, W]``; items are floats in ``[-1, 1]``.

    ``source`` is a folder of PNGs, a ``.zip`` of PNGs, or a ``manifest.csv``
    (:mod:`echolib.data.manifest`; column ``file`` relative to the manifest).
    ``resolution`` resizes every frame to a square of that size; without it all
    frames must share one size.
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
        records: Sequence[FrameRecord] | None = None,
    ) -> None:
        self._records = list(records) if records is not None else None
        if images is not None:
            if infos is None or len(infos) != len(images):
                raise DataError("FrameDataset(images=...) needs one FrameInfo per image")
            if self._records is not None and len(self._records) != len(infos):
                raise DataError("FrameDataset(records=...) needs one FrameRecord per image")
            self.images = images
            self.infos = list(infos)
            self.source = Path(source) if source is not None else None
            return
        if source is None:
            raise DataError("FrameDataset needs a source folder, zip or manifest")
        if resolution is not None and resolution <= 0:
            raise DataError(f"resolution must be a positive integer, got {resolution}")
        self.source = Path(source)
        loaders, infos, listed = _list_frames(self.source)
        if limit is not None:
            if limit < 1:
                raise DataError(f"{source}: limit must be a positive number of frames, got {limit}")
            loaders, infos = loaders[:limit], infos[:limit]
            listed = listed[:limit] if listed is not None else None
        self._records = listed
        arrays = _load_all(loaders, infos, resolution, workers)
        _check_sizes(arrays, infos, self.source)
        stacked = torch.from_numpy(np.stack(arrays))[:, None]
        self.images = stacked.to(device) if device is not None else stacked
        self.infos = infos

    @classmethod
    def of_images(cls, images: torch.Tensor, frames_per_video: int = 4) -> FrameDataset:
        """Frames held in memory, without files: ``frames_per_video`` consecutive frames make a video.

        For what needs a dataset but not its content (step benchmarks, tests
        of a training step): the frames are named ``v<k>_f<i>.png`` and have no
        manifest fields.
        """
        infos = [FrameInfo(f"v{i // frames_per_video}_f{i % frames_per_video}.png", f"v{i // frames_per_video}")
                 for i in range(len(images))]  # fmt: skip
        return cls(images=images, infos=infos)

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

    # -- each frame's manifest fields -------------------------------------
    @property
    def records(self) -> list[FrameRecord]:
        """Each frame's manifest row: the one it was opened from, else the ``manifest.csv`` beside its folder.

        A frame no manifest lists gets what its name says (video, ``k``). Read
        on first use, so opening a folder never depends on the manifest beside it.
        """
        if self._records is None:
            self._records = _records_of(self.infos, self.source)
        return self._records

    def field(self, column: str) -> list[str | None]:
        """Each frame's cell of manifest ``column`` as text (schema or other column); None where it has none."""
        return [r.get(column) for r in self.records]

    @property
    def phase_labels(self) -> list[str | None]:
        """``ED``, ``ES`` or ``other`` per frame, as its manifest says; None without one (see :attr:`phase_sources`)."""
        return [r.phase_label for r in self.records]

    @property
    def phase_sources(self) -> list[str | None]:
        """Where each phase label comes from (:data:`~echolib.data.manifest.PHASE_SOURCES`)."""
        return [r.phase_source for r in self.records]

    @property
    def ef(self) -> np.ndarray:
        """Ejection fraction per frame in per cent, ``float64 [N]``; NaN where the manifest gives none."""
        return np.array([np.nan if r.ef is None else r.ef for r in self.records], dtype=np.float64)

    @property
    def splits(self) -> list[str | None]:
        """The source dataset's split of each frame's video (EchoNet's TRAIN/VAL/TEST); None where not given."""
        return [r.split for r in self.records]

    def to(self, device: str | torch.device) -> FrameDataset:
        return FrameDataset(self.source, images=self.images.to(device), infos=self.infos, records=self._records)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> FrameDataset:
        idx = torch.as_tensor(list(indices) if not isinstance(indices, torch.Tensor) else indices, dtype=torch.long)
        records = self._records
        return FrameDataset(
            self.source,
            images=self.images[idx.to(self.images.device)],
            infos=[self.infos[int(i)] for i in idx],
            records=[records[int(i)] for i in idx] if records is not None else None,
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
Listing = tuple[list[Callable[[], np.ndarray]], list[FrameInfo], list[FrameRecord] | None]


def frame_loaders(source: Path) -> tuple[list[Callable[[], np.ndarray]], list[FrameInfo]]:
    """Loaders and infos of every frame of ``source``, without loading a pixel (the Turing questionnaire draws from them)."""
    loaders, infos, _ = _list_frames(source)
    return loaders, infos


def _list_frames(source: Path) -> Listing:
    """Loaders and infos of every frame, and their records when the source is a manifest (else None: read lazily)."""
    if not source.exists():
        raise DataError(f"{source}: no such file or folder (expected a folder of PNGs, a .zip or a manifest.csv)")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            others = sum(1 for p in source.iterdir() if p.is_file())
            hint = f" ({others} other files ignored)" if others else ""
            raise DataError(f"{source}: no PNG/JPEG images found{hint}")
        return [partial(read_gray, p) for p in files], [FrameInfo(p.name, video_id_of(p.name)) for p in files], None
    if source.suffix.lower() == ".zip":
        return _list_zip(source)
    if source.suffix.lower() == ".csv":
        return _list_manifest(source)
    raise DataError(f"{source}: expected a folder of PNGs, a .zip or a manifest .csv")


def _list_zip(source: Path) -> Listing:
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

    return [partial(load, n) for n in members], [FrameInfo(Path(n).name, video_id_of(n)) for n in members], None


def _list_manifest(source: Path) -> Listing:
    root = source.parent
    records = read_manifest(source)
    loaders: list[Callable[[], np.ndarray]] = []
    infos: list[FrameInfo] = []
    for line, record in enumerate(records, start=2):
        path = root / record.file
        if not path.exists():
            raise DataError(f"{source}: line {line}: file {record.file!r} does not exist")
        meta = tuple((k, v) for k, v in record.cells().items() if k not in ("file", "video_id") and v)
        loaders.append(partial(read_gray, path))
        infos.append(FrameInfo(record.name, record.video_id, meta))
    return loaders, infos, records


def _records_of(infos: Sequence[FrameInfo], source: Path | None) -> list[FrameRecord]:
    """Records of frames listed without a manifest: their own cells, the manifest beside the folder, or their name."""
    beside = manifest_beside(source) if source is not None and source.is_dir() else {}
    out = []
    for info in infos:
        if info.meta:
            out.append(record_from_row({"file": info.name, "video_id": info.video_id, **dict(info.meta)}, info.name))
        elif info.name in beside:
            out.append(beside[info.name])
        else:
            out.append(FrameRecord(file=info.name, video_id=info.video_id, k=k_of(info.name)))
    return out


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
