"""Memorisation: is a generated image a copy of a training frame? A test calibrated on patients the generator never saw.

**The statistic.** For every image we find its nearest training frame, in two
spaces: the feature space of the extractor, and pixel space (intensities
area-averaged to 64x64, :data:`PIXEL_SIZE`, the distance minimised over
translations of up to :data:`PIXEL_SHIFT` px there, i.e. up to 4 px at 128: a
copy moved by a few pixels is still a copy). A small nearest-training distance
alone proves nothing: some real patients simply look like others.

**The calibration** (definition ``calibrated/1``, :data:`DEFINITION`) answers
"how small is suspicious?" with real frames whose answer is known: frames of
held-out videos, patients the generator never saw. Their nearest-training
distances are what an image of a *new* patient scores. The held-out videos are
split in two halves by a seeded hash of the video id; the threshold is the
``percentile`` quantile (default 5 %, :data:`DEFAULT_PERCENTILE`) of the
distances of the first half, and the share of the second half at or below it is
the **held-out flag rate**, measured on frames that set no threshold: near the
chosen percentile, within the sampling error its interval states. A generated
image is flagged when its distance is at or below the threshold;
``memorized_fraction`` is the share flagged. A generator that draws new
patients sits at the held-out rate, not at 0; one that copies sits above it.
EchoNet-Synthetic (Reynaud et al., MICCAI 2024) calibrates its privacy filter
the same way, at the 95th percentile of held-out-to-training similarity.

Without held-out frames (``evaluate --real X`` with no ``--train``) the
calibration leaves whole videos out of the training frames instead: each
calibration frame is searched among the frames of *other* training videos
(``leave-one-video-out``), an unseen patient against nearly the same bank.

**The same-patient leak** is reported separately: for each training frame, the
distance to the nearest other frame of its *own* video, against the threshold.
``same_video_flag_rate`` is how often the test would flag a sample that showed a
training patient in another phase of the cycle: a leak that is not a pixel
copy. A low rate says the test is blind to such leaks, not that there are none.

**What it catches** (the tests, and on the shared frames, 944 held-out frames
against 9,056 training frames at 128 px): exact copies, copies with noise of 2
and 4 grey levels, shifted by 1 to 3 px, with the gain changed by 5 % and with
the speckle re-drawn are flagged by the filter (either space) in >= 95 % of
cases; see ``tests/test_metrics_memorization.py``.

**Before ``calibrated/1``** the threshold was the 10th percentile of the
same-video distances among training frames, records carried ``quantile`` and no
``definition``: that threshold flagged only near-exact copies (of 500 training
frames shifted by 1 px with 5 % gain and 2 grey levels of noise, 8 %). A record
without ``definition`` is of that older test and is not comparable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from echolib.data.frames import unit_hash
from echolib.errors import DataError
from echolib.metrics.intervals import proportion_interval, proportion_variance

DEFINITION = "calibrated/1"
DEFAULT_PERCENTILE = 0.05
PIXEL_SIZE = 64  # pixel-space search at this size (area means): speckle that differs between copies averages out
PIXEL_SHIFT = 2  # translations of up to this many px at PIXEL_SIZE (4 px at 128) are searched
PIXEL_CANDIDATES = 32  # ... among this many training frames nearest before translating
PIXEL_SPACE = f"pixel ({PIXEL_SIZE}x{PIXEL_SIZE} area means, min over translations <= {PIXEL_SHIFT} px)"
HELDOUT = "held-out videos"
LEAVE_ONE_VIDEO_OUT = "leave-one-video-out on the training frames"
MAX_LOVO_FRAMES = 1000  # calibration frames searched when leaving videos out (whole videos, seeded)
_CHUNK = 512


# -- nearest neighbours ------------------------------------------------------------------------------
def pixel_maps(images: torch.Tensor, size: int = PIXEL_SIZE) -> torch.Tensor:
    """float ``[N, 1, size, size]`` intensities in [0, 1], area-averaged: what the pixel-space search compares."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise TypeError(f"expected uint8 [N, 1, H, W] images, got {images.dtype} {tuple(images.shape)}")
    out = []
    for start in range(0, len(images), _CHUNK):
        x = images[start : start + _CHUNK].float().div_(255.0)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="area")
        out.append(x)
    return torch.cat(out) if out else torch.zeros(0, 1, size, size)


def _translations(maps: torch.Tensor, shift: int):
    """Each translation of ``maps`` by up to ``shift`` px (zeros shifted in) as ``[N, D]`` rows."""
    if shift <= 0:
        yield maps.reshape(len(maps), -1)
        return
    h, w = maps.shape[-2:]
    padded = F.pad(maps, (shift, shift, shift, shift))
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            yield padded[..., shift + dy : shift + dy + h, shift + dx : shift + dx + w].reshape(len(maps), -1)


def nearest(query: torch.Tensor, bank: torch.Tensor, *, shift: int = 0, query_groups: list[str] | None = None,
            bank_groups: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distance of each query to its nearest bank item, and that item's index.

    ``query`` and ``bank`` are ``[N, D]`` vectors, or ``[N, 1, h, w]`` maps when
    ``shift`` > 0: then each query is also translated by up to ``shift`` px and
    the smallest distance counts, searched among the :data:`PIXEL_CANDIDATES`
    items nearest before translating (on the shared frames a copy shifted by 3 px
    diagonally keeps its source within the 20 nearest of 9,056, and the search
    costs a 25th of an exhaustive one). With groups, a query never matches a bank
    item of its own group (leave-one-video-out). Distances are computed directly,
    not by the matmul expansion, so an exact copy has distance 0.
    """
    bank_rows = bank.reshape(len(bank), -1).float()
    if len(bank_rows) == 0:
        raise DataError("the nearest-neighbour search needs at least one training frame")
    rows = query.reshape(len(query), -1).float()
    same = None
    if query_groups is not None and bank_groups is not None:
        codes: dict[str, int] = {}
        same = (torch.tensor([codes.setdefault(g, len(codes)) for g in query_groups], dtype=torch.long),
                torch.tensor([codes.setdefault(g, len(codes)) for g in bank_groups], dtype=torch.long))
    k = 1 if shift <= 0 else min(PIXEL_CANDIDATES, len(bank_rows))
    candidates = _candidates(rows, bank_rows, k, same)  # [N, k], -1 where fewer than k items may match
    best_d = torch.full((len(query),), float("inf"))
    best_i = torch.zeros(len(query), dtype=torch.long)
    chunk = 32  # queries whose candidates are searched together: one matrix product per translation
    for start in range(0, len(query), chunk):
        cand = candidates[start : start + chunk]
        pool, own = torch.unique(cand.clamp_min(0), return_inverse=True)  # the chunk's candidates; each query's own
        pool_rows = bank_rows[pool]
        pool_sq = pool_rows.pow(2).sum(1)
        part = query[start : start + chunk].float()
        part = part if shift > 0 else part.reshape(len(part), -1)
        d2 = torch.full(cand.shape, float("inf"))
        for moved in _translations(part, shift):  # rank by the expansion, among each query's own candidates only
            full = moved.pow(2).sum(1, keepdim=True) + pool_sq[None] - 2.0 * moved @ pool_rows.T
            d2 = torch.minimum(d2, full.gather(1, own))
        d2[cand < 0] = float("inf")
        j = d2.argmin(1)
        winner = pool_rows[own.gather(1, j[:, None]).squeeze(1)]  # [c, D]: the distance again, exactly, to it
        exact = torch.stack([(moved - winner).norm(dim=1) for moved in _translations(part, shift)]).min(0).values
        ok = cand.gather(1, j[:, None]).squeeze(1) >= 0
        best_d[start : start + chunk] = torch.where(ok, exact, torch.full_like(exact, float("inf")))
        best_i[start : start + chunk] = cand.gather(1, j[:, None]).squeeze(1).clamp_min(0)
    return best_d, best_i


def _candidates(rows: torch.Tensor, bank_rows: torch.Tensor, k: int,
                same: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """Indices of the ``k`` bank rows nearest each row (matmul expansion; own group excluded), -1 past the allowed."""
    bank_sq = bank_rows.pow(2).sum(1)
    out = []
    for start in range(0, len(rows), _CHUNK):
        q = rows[start : start + _CHUNK]
        d2 = q.pow(2).sum(1, keepdim=True) + bank_sq[None] - 2.0 * q @ bank_rows.T
        if same is not None:
            d2[same[0][start : start + len(q), None] == same[1][None]] = float("inf")
        values, index = d2.topk(k, dim=1, largest=False)
        out.append(torch.where(torch.isfinite(values), index, torch.full_like(index, -1)))
    return torch.cat(out) if out else torch.zeros(0, k, dtype=torch.long)


def same_video_distances(vectors: torch.Tensor, video_ids: list[str], shift: int = 0) -> torch.Tensor | None:
    """For each frame that shares its video with others: distance to the nearest other frame of that video.

    None when no video has two frames (names without ``_f<k>`` and no manifest
    ``video_id``): the same-patient leak cannot be measured then.
    """
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(video_ids):
        groups.setdefault(v, []).append(i)
    by_size: dict[int, list[list[int]]] = {}
    for idx in groups.values():
        if len(idx) >= 2:
            by_size.setdefault(len(idx), []).append(idx)
    out = []
    for k, videos in by_size.items():  # videos of k frames at once: [V, k] frames, each against its k - 1 siblings
        index = torch.tensor(videos)
        items = vectors.float()[index.flatten()]
        siblings = items.reshape(len(videos), k, -1)
        best = torch.full((len(videos), k), float("inf"))
        for rows in _translations(items, shift):
            d = torch.cdist(rows.reshape(len(videos), k, -1), siblings)
            d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
            best = torch.minimum(best, d.min(2).values)
        out.append(best.flatten())
    return torch.cat(out) if out else None


# -- calibration ---------------------------------------------------------------------------------
def video_halves(video_ids: list[str], seed: int = 0) -> np.ndarray:
    """``bool`` per frame: True for the calibration half of the videos, False for the check half.

    A seeded hash of the video id (not a shuffle) decides, so a video stays in
    its half whatever else is in the set; when the hash leaves a half empty the
    videos are split by their hash order instead. Needs two or more videos.
    """
    videos = sorted(set(video_ids))
    if len(videos) < 2:
        raise DataError(f"the memorisation threshold needs frames of at least 2 unseen videos, got {len(videos)}")
    u = {v: unit_hash(f"memorization:{seed}:{v}") for v in videos}
    first = {v for v in videos if u[v] < 0.5}
    if not first or len(first) == len(videos):
        order = sorted(videos, key=lambda v: u[v])
        first = set(order[: len(order) // 2])
    return np.array([v in first for v in video_ids])


@dataclass
class Calibration:
    """The threshold of one space, set on unseen patients, and how often it flags them and same-video frames."""

    space: str
    percentile: float
    threshold: float
    method: str  # HELDOUT or LEAVE_ONE_VIDEO_OUT
    calibration_distances: torch.Tensor  # nearest-training distances of the calibration half
    check_distances: torch.Tensor  # ... of the check half (they set no threshold)
    check_videos: list[str]
    calibration_videos: list[str]
    same_video: torch.Tensor | None = None  # training frames: nearest other frame of their own video
    seed: int = 0

    @property
    def heldout_flags(self) -> np.ndarray:
        return (self.check_distances <= self.threshold).numpy()

    @property
    def heldout_flag_rate(self) -> float:
        return float(self.heldout_flags.mean())

    def heldout_interval(self) -> tuple[float, float]:
        """95 % interval of the held-out flag rate: where it lies for a test that flags unseen patients at ``percentile``.

        Two sources of error add up: the check half is a sample of unseen
        patients, and the threshold is a quantile of another sample (the
        calibration half), so the share it truly flags is itself off the
        percentile by about the calibration share's standard error. Both are
        cluster-robust (the frames of one video count as one unit).
        """
        cal_flags = (self.calibration_distances <= self.threshold).numpy()
        threshold_variance = proportion_variance(cal_flags, self.calibration_videos)
        return proportion_interval(self.heldout_flags, self.check_videos, extra_variance=threshold_variance)

    @property
    def same_video_flag_rate(self) -> float | None:
        if self.same_video is None:
            return None
        return float((self.same_video <= self.threshold).float().mean())

    @property
    def heldout_distances(self) -> torch.Tensor:
        """Every unseen frame's nearest-training distance (both halves): the figure's reference distribution."""
        return torch.cat([self.calibration_distances, self.check_distances])

    def fields(self) -> dict[str, Any]:
        """What a record says about the calibration, so that it reads alone."""
        lo, hi = self.heldout_interval()
        return {
            "definition": DEFINITION,
            "nn_space": self.space,
            "threshold": self.threshold,
            "percentile": self.percentile,
            "calibration": self.method,
            "heldout_flag_rate": self.heldout_flag_rate,
            "heldout_interval": [lo, hi],
            "same_video_flag_rate": self.same_video_flag_rate,
            "n_calibration": len(self.calibration_distances),
            "n_check": len(self.check_distances),
            "n_calibration_videos": len(set(self.calibration_videos)),
            "n_check_videos": len(set(self.check_videos)),
            "heldout_median_nn_distance": float(self.heldout_distances.median()),
            "calibration_seed": self.seed,
        }


_CALIBRATIONS: dict[str, Calibration] = {}  # by content: a table's rows share one (the held-out search is the cost)


def _digest(*tensors: torch.Tensor, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def calibrate(
    bank: torch.Tensor,
    bank_videos: list[str],
    heldout: torch.Tensor | None = None,
    heldout_videos: list[str] | None = None,
    *,
    percentile: float = DEFAULT_PERCENTILE,
    seed: int = 0,
    space: str = "features",
    shift: int = 0,
) -> Calibration:
    """The threshold at ``percentile`` of unseen frames' nearest-training distances, from half their videos.

    ``heldout`` are frames of videos not in ``bank`` (a run's held-out videos);
    without them, whole training videos are left out in turn (at most
    :data:`MAX_LOVO_FRAMES` calibration frames). Same inputs, same result
    (cached in the process: every row of a table uses one calibration).
    """
    if not 0 < percentile < 1:
        raise DataError(f"the memorisation percentile must be in (0, 1), got {percentile}")
    if len(bank_videos) != len(bank) or (heldout is not None and len(heldout_videos or []) != len(heldout)):
        raise DataError("memorisation: one video id per frame is needed for the training and held-out frames")
    key = _digest(bank, *(() if heldout is None else (heldout,)),
                  extra=f"{percentile}|{seed}|{space}|{shift}|{bank_videos}|{heldout_videos}")
    if key in _CALIBRATIONS:
        return _CALIBRATIONS[key]
    if heldout is not None and len(heldout):
        assert heldout_videos is not None  # the length check above refuses held-out frames without video ids
        overlap = set(heldout_videos) & set(bank_videos)
        if overlap:
            raise DataError(f"{len(overlap)} held-out videos are also among the training frames (first: "
                            f"{min(overlap)}); a threshold set on seen patients flags nothing")
        queries, query_videos, method = heldout, list(heldout_videos), HELDOUT
        dist, _ = nearest(queries, bank, shift=shift)
    else:
        if len(set(bank_videos)) < 3:
            raise DataError("memorisation needs held-out frames of unseen videos, or training frames of at least 3 "
                            "videos (names '<video>_f<k>.png' or a manifest video_id) to leave whole videos out")
        pick = _lovo_frames(bank_videos, seed)
        queries, query_videos, method = bank[pick], [bank_videos[i] for i in pick], LEAVE_ONE_VIDEO_OUT
        dist, _ = nearest(queries, bank, shift=shift, query_groups=query_videos, bank_groups=bank_videos)
    first = torch.from_numpy(video_halves(query_videos, seed))
    cal = dist[first]
    threshold = float(np.quantile(cal.double().numpy(), percentile, method="inverted_cdf"))
    check_videos = [v for v, f in zip(query_videos, first.tolist()) if not f]
    calibration_videos = [v for v, f in zip(query_videos, first.tolist()) if f]
    result = Calibration(space, percentile, threshold, method, cal, dist[~first], check_videos, calibration_videos,
                         same_video_distances(bank, bank_videos, shift), seed)
    _CALIBRATIONS[key] = result
    return result


def _lovo_frames(video_ids: list[str], seed: int) -> list[int]:
    """Frames of whole training videos, in a seeded hash order, until :data:`MAX_LOVO_FRAMES`."""
    by_video: dict[str, list[int]] = {}
    for i, v in enumerate(video_ids):
        by_video.setdefault(v, []).append(i)
    chosen: list[int] = []
    for v in sorted(by_video, key=lambda v: unit_hash(f"lovo:{seed}:{v}")):
        if chosen and len(chosen) + len(by_video[v]) > MAX_LOVO_FRAMES:
            break
        chosen += by_video[v]
    return sorted(chosen)


# -- the test --------------------------------------------------------------------------------------
@dataclass
class Memorization:
    """Result of one search: each generated image's nearest training frame, against the calibrated threshold."""

    fraction: float  # share of generated images at or below the threshold
    interval: tuple[float, float]  # 95 % interval of that share
    nn_distance: torch.Tensor  # [n_fake] distance to the nearest training frame
    nn_index: torch.Tensor  # [n_fake] index of that frame
    calibration: Calibration = field(repr=False)

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    @property
    def percentile(self) -> float:
        return self.calibration.percentile

    @property
    def space(self) -> str:
        return self.calibration.space

    @property
    def flagged(self) -> torch.Tensor:
        return self.nn_distance <= self.threshold

    def fields(self) -> dict[str, Any]:
        """The record's extra fields: the calibration's, the sample's interval and its median distance."""
        return {**self.calibration.fields(), "interval": list(self.interval),
                "interval_method": "score interval, clustered by video", "sample_flag_rate": self.fraction,
                "median_nn_distance": float(self.nn_distance.median())}


def memorization(
    fake: torch.Tensor,
    bank: torch.Tensor,
    bank_videos: list[str],
    heldout: torch.Tensor | None = None,
    heldout_videos: list[str] | None = None,
    *,
    percentile: float = DEFAULT_PERCENTILE,
    seed: int = 0,
    space: str = "features",
    shift: int = 0,
    fake_groups: list[str] | None = None,
) -> Memorization:
    """Nearest training frame of each generated item (vectors, or maps with ``shift``), flagged by the calibration.

    ``fake_groups`` (e.g. the source video of a Pix2Pix sample) cluster the
    interval of the flagged share; by default every image is its own unit.
    """
    fake, bank = fake.float().cpu(), bank.float().cpu()
    held = None if heldout is None else heldout.float().cpu()
    cal = calibrate(bank, list(bank_videos), held, heldout_videos, percentile=percentile, seed=seed, space=space,
                    shift=shift)
    dist, idx = nearest(fake, bank, shift=shift)
    flags = (dist <= cal.threshold).numpy()
    groups = fake_groups if fake_groups is not None else [str(i) for i in range(len(fake))]
    interval = proportion_interval(flags, groups) if len(flags) else (float("nan"), float("nan"))
    return Memorization(float(flags.mean()) if len(flags) else float("nan"), interval, dist, idx, cal)


def pixel_memorization(
    fake_images: torch.Tensor,
    bank_images: torch.Tensor,
    bank_videos: list[str],
    heldout_images: torch.Tensor | None = None,
    heldout_videos: list[str] | None = None,
    **kwargs: Any,
) -> Memorization:
    """:func:`memorization` in pixel space: 64x64 area means, translations of up to 2 px there searched."""
    held = None if heldout_images is None else pixel_maps(heldout_images)
    return memorization(pixel_maps(fake_images), pixel_maps(bank_images), bank_videos, held, heldout_videos,
                        space=PIXEL_SPACE, shift=PIXEL_SHIFT, **kwargs)


def closest_pairs(result: Memorization, fake_images: torch.Tensor, train_images: torch.Tensor,
                  k: int = 8) -> list[dict]:
    """The ``k`` generated images nearest to a training frame, closest first, as a gallery.

    Each entry: ``fake`` and ``train`` as uint8 ``[H, W]`` arrays, their indices,
    the distance, the threshold and whether the pair is flagged.
    """
    order = torch.argsort(result.nn_distance)[:k]
    gallery = []
    for i in order.tolist():
        j = int(result.nn_index[i])
        d = float(result.nn_distance[i])
        gallery.append({"fake": fake_images[i, 0].numpy(), "train": train_images[j, 0].numpy(), "fake_index": i,
                        "train_index": j, "distance": d, "threshold": result.threshold,
                        "flagged": d <= result.threshold, "space": result.space})
    return gallery
