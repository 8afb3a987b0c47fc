"""EchoNet-Dynamic videos -> 128x128 frames, as the study made them, or with the experts' ED/ES frames.

The official layout: ``Videos/<FileName>.avi`` (112x112), ``FileList.csv``
(FileName, EF, ESV, EDV, FrameHeight, FrameWidth, FPS, NumberOfFrames, Split) and
``VolumeTracings.csv`` (FileName, X1, Y1, X2, Y2, Frame): for two frames per video,
end-diastole and end-systole, an expert traced the LV as a long axis followed by
chords across it.

The study's recipe, reproduced exactly by ``recipe="study"``: every frame read at
112x112 (``cv2.INTER_AREA``), grayscale, multiplied by a fixed sector mask
(triangle + half-ellipse, :func:`study_mask`); four frames kept per video: the
first (k=0), the one with the most pixels above 30 inside the mask (k=1, the
study's "systole"), the one with the fewest (k=2, "diastole") and the last (k=3);
each upscaled to 128x128 with Lanczos-4 and smoothed with a bilateral filter
(d=5, sigmaColor=15, sigmaSpace=15). Masking happens at 112 before the upscaling:
the Lanczos ringing then spreads a pixel or two past the mask edge, as it does in
the study's frames.

``recipe="default"`` keeps the same pixels but takes k=1 (ES) and k=2 (ED) from
the expert tracings where a video has them (the larger traced area is ED) and
falls back to the heuristic otherwise; the manifest records which
(``phase_source``), and LV masks rasterised from the tracings go to ``masks/``.
How often the heuristic finds the expert frames is measured here, once: the
picks of every video or phantom clip beside its true frames (:func:`video_picks`,
:func:`clip_picks`) and their score (:func:`heuristic_agreement`); the data
chapter draws its tables from the same two steps.

Runs are resumable and robust: videos go to worker processes; each finished video
is appended (fsync'ed) to ``progress.jsonl`` after its frames were written
atomically (:mod:`echolib.data.writer`), so a rerun skips it; the manifest
follows the one schema of :mod:`echolib.data.manifest` (``k`` the kept position,
``frame`` the video frame it came from); a missing, empty or unreadable video is listed in
``errors.csv`` and the run goes on; a malformed CSV stops the run with its file,
line and column.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from echolib.data.manifest import (
    COLUMNS,
    IMAGE_SUFFIXES,
    FrameRecord,
    k_of,
    record_from_row,
    video_id_of,
    write_manifest,
)
from echolib.data.writer import run_jobs, write_mask, write_png
from echolib.errors import DataError
from echolib.io import append_jsonl, atomic_write_text, read_jsonl

STUDY_SIZE = 112  # EchoNet-Dynamic's frame size; the study read every frame at this size
OUT_SIZE = 128
BRIGHT = 30  # the study's threshold for "bright" pixels
RECIPES = ("study", "default")
MANIFEST_COLUMNS = COLUMNS  # what manifest.csv holds: the one schema of echolib.data.manifest
FILELIST_COLUMNS = {"FileName": str, "EF": float, "ESV": float, "EDV": float, "FrameHeight": int,
                    "FrameWidth": int, "FPS": float, "NumberOfFrames": int, "Split": str}
TRACING_COLUMNS = {"FileName": str, "X1": float, "Y1": float, "X2": float, "Y2": float, "Frame": int}


# -- the study's pixels ------------------------------------------------------------------
def study_mask(size: int = STUDY_SIZE) -> np.ndarray:
    """The study's fixed sector mask (uint8 0/1) on its 112x112 canvas, or resized (nearest) to ``size``.

    Filled triangle (60,5), (-15,80), (127,80) OR'ed with a filled half-ellipse,
    centre (55,78), axes (70,40), angles 0-180 (the lower half), both drawn with OpenCV.
    """
    mask: np.ndarray = np.zeros((STUDY_SIZE, STUDY_SIZE), np.uint8)
    cv2.fillPoly(mask, [np.array([[60, 5], [-15, 80], [127, 80]], np.int32)], 1)
    cv2.ellipse(mask, (55, 78), (70, 40), 0, 0, 180, 1, -1)
    if size != STUDY_SIZE:
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
    return mask


def to_study_gray(frame: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """One video frame (BGR or gray, any size) -> the study's masked 112x112 grayscale frame."""
    if frame.shape[:2] != (STUDY_SIZE, STUDY_SIZE):
        frame = cv2.resize(frame, (STUDY_SIZE, STUDY_SIZE), interpolation=cv2.INTER_AREA)
    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return frame * (study_mask() if mask is None else mask)


def finish_frame(gray112: np.ndarray) -> np.ndarray:
    """Masked 112x112 gray frame -> the 128x128 frame the study trained on (Lanczos-4, bilateral filter)."""
    up = cv2.resize(gray112, (OUT_SIZE, OUT_SIZE), interpolation=cv2.INTER_LANCZOS4)
    return cv2.bilateralFilter(up, 5, 15, 15)


def masked_clip(frames: np.ndarray) -> np.ndarray:
    """Frames as the study's counting sees them: masked 112x112 gray ``uint8 [T, 112, 112]``."""
    mask = study_mask()
    return np.stack([to_study_gray(f, mask) for f in frames])


def bright_counts(frames: np.ndarray) -> np.ndarray:
    """Pixels above :data:`BRIGHT` per frame; frames of another size are first brought to the study's 112 and masked."""
    frames = np.asarray(frames)
    if frames.shape[-2:] != (STUDY_SIZE, STUDY_SIZE):
        frames = masked_clip(frames)
    return (frames > BRIGHT).reshape(len(frames), -1).sum(1)


def study_picks(frames: np.ndarray) -> tuple[int, int]:
    """The study's (systole, diastole) frame indices: most and fewest bright pixels (first on ties)."""
    counts = bright_counts(frames)
    return int(np.argmax(counts)), int(np.argmin(counts))


# -- expert tracings -------------------------------------------------------------------
def tracing_polygon(rows: np.ndarray, *, skip_axis: bool = True) -> np.ndarray:
    """``[n, 4]`` rows (X1, Y1, X2, Y2) -> polygon ``[m, 2]``: X1,Y1 in order, then X2,Y2 reversed.

    EchoNet's first row per frame is the long axis (apex to mitral midpoint), not
    a chord; its reference code drops it, and so do we unless ``skip_axis=False``.
    """
    rows = np.asarray(rows, np.float64).reshape(-1, 4)
    if skip_axis and len(rows) > 1:
        rows = rows[1:]
    return np.concatenate([rows[:, 0:2], rows[::-1, 2:4]])


def tracing_mask(rows: np.ndarray, size: int = OUT_SIZE, source_size: int = STUDY_SIZE,
                 *, skip_axis: bool = True) -> np.ndarray:
    """Rasterise one frame's tracing (video pixel coordinates at ``source_size``) into a bool LV mask."""
    poly = tracing_polygon(rows, skip_axis=skip_axis)
    scale = size / source_size
    pts = np.rint(((poly + 0.5) * scale - 0.5) * 16).astype(np.int32)  # pixel centres map to pixel centres
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [pts], 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def tracing_from_mask(mask: np.ndarray, chords: int = 20) -> np.ndarray:
    """An EchoNet-style tracing of a mask: the long axis, then ``chords`` perpendicular chords.

    Lets the phantom's LV masks stand in for expert tracings (tests, the data chapter).
    """
    ys, xs = np.nonzero(mask)
    if len(xs) < 3:
        raise ValueError("tracing_from_mask: the mask is (nearly) empty")
    pts = np.stack([xs, ys], 1).astype(np.float64)
    centre = pts.mean(0)
    _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
    axis, across = vt[0], vt[1]
    t, s = (pts - centre) @ axis, (pts - centre) @ across
    lo, hi = t.min(), t.max()
    rows = [np.concatenate([centre + lo * axis, centre + hi * axis])]
    for tk in np.linspace(lo, hi, chords + 2)[1:-1]:
        near = np.abs(t - tk) <= 0.75
        if not near.any():
            continue
        rows.append(np.concatenate([centre + tk * axis + s[near].min() * across, centre + tk * axis + s[near].max() * across]))
    return np.asarray(rows)


# -- reading the CSVs ------------------------------------------------------------------
def _read_csv(path: Path, columns: dict[str, type]) -> list[dict]:
    """Typed rows; a missing column or a value of the wrong type stops with file, line and column."""
    if not path.is_file():
        raise DataError(f"{path}: not found (expected EchoNet-Dynamic's {path.name})")
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: line 1: missing column(s) {', '.join(missing)} (has: {reader.fieldnames})")
        for row in reader:
            out = {}
            if None in row or any(v is None for v in row.values()):
                raise DataError(f"{path}: line {reader.line_num}: expected {len(reader.fieldnames or [])} fields")
            for col, kind in columns.items():
                raw = row[col].strip()
                value = _parse(kind, raw)
                if value is None:
                    raise DataError(
                        f"{path}: line {reader.line_num}: column {col}: expected {_KIND[kind]}, got {raw!r}"
                    )
                out[col] = value
            rows.append(out)
    return rows


_KIND = {int: "an integer", float: "a finite number", str: "text"}


def _parse(kind: type, raw: str):
    """``raw`` as ``kind``, or None when it is not one (integers may be written ``12.0``, not ``12.5``)."""
    if kind is str:
        return raw if raw else None
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    if kind is int:
        return int(value) if value.is_integer() else None
    return value


def video_id(file_name: str) -> str:
    """FileList names lack the extension that VolumeTracings names carry; both map to the bare id."""
    name = Path(file_name.strip()).name
    return name[:-4] if name.lower().endswith(".avi") else name


@dataclass(frozen=True)
class Tracing:
    """The expert's two traced frames of a video: ED is the larger LV, ES the smaller."""

    ed: int
    es: int
    rows: dict[int, np.ndarray] = field(default_factory=dict, compare=False)  # frame -> [n, 4]


def read_tracings(path: Path) -> dict[str, Tracing]:
    """VolumeTracings.csv -> per video id, its ED/ES frames (by traced area) and their rows."""
    per: dict[str, dict[int, list]] = {}
    for r in _read_csv(path, TRACING_COLUMNS):
        per.setdefault(video_id(r["FileName"]), {}).setdefault(r["Frame"], []).append(
            (r["X1"], r["Y1"], r["X2"], r["Y2"])
        )
    out = {}
    for vid, frames in per.items():
        if len(frames) < 2:
            continue
        rows = {f: np.asarray(v) for f, v in frames.items()}
        area = {f: _polygon_area(tracing_polygon(v)) for f, v in rows.items()}
        ranked = sorted(area, key=lambda f: area[f])
        out[vid] = Tracing(ed=ranked[-1], es=ranked[0], rows=rows)
    return out


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


# -- processing one video ---------------------------------------------------------------
class VideoError(Exception):
    """A video that cannot be used (missing, empty, unreadable); recorded in errors.csv, never fatal."""


def read_video(path: str | Path, *, masked: bool = True) -> np.ndarray:
    """All frames of a video as the study's 112x112 grayscale frames ``uint8 [T, 112, 112]``.

    ``masked=False`` leaves out the sector mask, to show what it removes.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoError("missing")
    if path.stat().st_size == 0:
        raise VideoError("empty file")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoError("unreadable (OpenCV cannot open it)")
        mask = study_mask() if masked else np.ones((STUDY_SIZE, STUDY_SIZE), np.uint8)
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(to_study_gray(frame, mask))
    finally:
        cap.release()
    if not frames:
        raise VideoError("no decodable frames")
    return np.stack(frames)


@dataclass(frozen=True)
class VideoJob:
    video: str
    path: Path
    out: Path
    recipe: str
    ef: float
    split: str
    tracing: Tracing | None


def process_video(job: VideoJob) -> tuple[str, list[FrameRecord] | None, str | None]:
    """Write one video's four frames (and expert masks); return ``(video, manifest records, error)``."""
    cv2.setNumThreads(1)
    try:
        frames = read_video(job.path)
    except VideoError as exc:
        return job.video, None, str(exc)
    except cv2.error as exc:  # decoder failures surface as cv2.error on some builds
        return job.video, None, f"unreadable ({exc})"
    systole, diastole = study_picks(frames)
    last = len(frames) - 1
    picks = [(0, "first", "other", "position"), (last, "last", "other", "position")]
    t = job.tracing
    if job.recipe == "default" and t is not None and max(t.ed, t.es) <= last and min(t.ed, t.es) >= 0:
        picks[1:1] = [(t.es, "ES", "ES", "expert"), (t.ed, "ED", "ED", "expert")]
    else:
        picks[1:1] = [(systole, "systole", "ES", "heuristic"), (diastole, "diastole", "ED", "heuristic")]
    records = []
    for k, (index, role, label, source) in enumerate(picks):
        name = f"{job.video}_f{k}.png"
        write_png(job.out / name, finish_frame(frames[index]))
        mask_name = None
        if source == "expert":
            assert t is not None
            mask_name = f"masks/{name}"
            write_mask(job.out / mask_name, tracing_mask(t.rows[index]))
        records.append(FrameRecord(file=name, video_id=job.video, k=k, frame=index, role=role, phase_label=label,
                                   phase_source=source, ef=job.ef, split=job.split, mask=mask_name))
    return job.video, records, None


# -- the whole dataset ---------------------------------------------------------------------
@dataclass(frozen=True)
class PreprocessResult:
    out: Path
    processed: int  # videos done by this run
    skipped: int  # videos already done by an earlier run
    errors: int  # videos listed in errors.csv
    frames: int  # frames in manifest.csv


def preprocess(root: str | Path, out: str | Path, *, recipe: str = "default", workers: int = 2,
               limit: int | None = None, progress: bool = True) -> PreprocessResult:
    """Turn an EchoNet-Dynamic folder into frames + ``manifest.csv`` (+ ``errors.csv``) in ``out``.

    Resumable: videos already in ``out/progress.jsonl`` are skipped; the manifest
    is rewritten (atomically) from the progress records at the end of every run.
    """
    root, out = Path(root), Path(out)
    if recipe not in RECIPES:
        raise DataError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    if not (root / "Videos").is_dir():
        raise DataError(f"{root}: no Videos/ folder (expected EchoNet-Dynamic's layout: Videos/, FileList.csv, "
                        "VolumeTracings.csv)")
    filelist = _read_csv(root / "FileList.csv", FILELIST_COLUMNS)
    tracings = read_tracings(root / "VolumeTracings.csv") if (root / "VolumeTracings.csv").exists() else {}
    if recipe == "default" and not (root / "VolumeTracings.csv").exists():
        raise DataError(f"{root}: recipe 'default' needs VolumeTracings.csv (or use --recipe study)")
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, {"recipe": recipe, "root": str(root.resolve()), "size": OUT_SIZE})

    videos = []
    for r in filelist[:limit] if limit is not None else filelist:
        vid = video_id(r["FileName"])
        videos.append(VideoJob(vid, root / "Videos" / f"{vid}.avi", out, recipe, r["EF"], r["Split"], tracings.get(vid)))
    done = {rec["video"]: [record_from_row(row, f"{out / 'progress.jsonl'}: video {rec['video']}")
                           for row in rec["rows"]]
            for rec in read_jsonl(out / "progress.jsonl") if "video" in rec}
    todo = [v for v in videos if v.video not in done]
    errors: dict[str, str] = {}
    for vid, records, error in run_jobs(process_video, todo, workers=workers, progress=progress, desc="echonet",
                                        unit="video", ordered=False):
        if error is not None or records is None:
            errors[vid] = error or "no frames"
        else:
            append_jsonl(out / "progress.jsonl", {"video": vid, "rows": [r.cells() for r in records]})
            done[vid] = records

    manifest = [record for v in videos if v.video in done for record in done[v.video]]
    write_manifest(out / "manifest.csv", manifest)
    _write_csv(out / "errors.csv", ("video", "reason"), [{"video": k, "reason": v} for k, v in errors.items()])
    return PreprocessResult(out, len(todo) - len(errors), len(videos) - len(todo), len(errors), len(manifest))


def _check_settings(out: Path, settings: dict) -> None:
    """A rerun must use the settings of the run it resumes, or the frames would mix two recipes."""
    path = out / "preprocess.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != settings:
            diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
            raise DataError(f"{out} was made with other settings {diff} (was, now); use a new --out")
    else:
        atomic_write_text(path, json.dumps(settings, indent=2) + "\n")


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


# -- how good is the study's heuristic? ------------------------------------------------------
@dataclass(frozen=True)
class Picks:
    """The study's two picks in one video or clip beside the true event frames (every beat's, where known)."""

    video: str
    n_frames: int
    systole: int  # most pixels above BRIGHT: the study's "systole"
    diastole: int  # fewest: its "diastole"
    es: tuple[int, ...]  # true end-systole frames
    ed: tuple[int, ...]  # true end-diastole frames


def clip_picks(clips: Sequence, names: Sequence[str] | None = None) -> list[Picks]:
    """The study's picks on phantom clips (:func:`echolib.data.phantom_sim.render_clip`), whose true ES/ED are known.

    Frames are first brought to the study's masked 112x112 (:func:`masked_clip`),
    as a video read by the preprocessing would be, so pixels of the phantom's fan
    outside the study's mask do not count.
    """
    out = []
    for i, clip in enumerate(clips):
        systole, diastole = study_picks(masked_clip(clip.frames))
        out.append(Picks(names[i] if names else f"clip {i}", len(clip.frames), systole, diastole,
                         tuple(clip.es_frames), tuple(clip.ed_frames)))
    return out


def video_picks(root: str | Path, limit: int | None = None) -> list[Picks]:
    """The study's picks on real EchoNet-Dynamic videos beside the experts' traced ES/ED frames.

    Videos in ``VolumeTracings.csv`` order, the first ``limit`` that can be read
    (missing or broken videos are skipped, as in preprocessing). An expert traced
    one beat per video, so a pick of another beat's ED counts as a miss.
    """
    root = Path(root)
    out: list[Picks] = []
    for vid, tracing in read_tracings(root / "VolumeTracings.csv").items():
        if limit is not None and len(out) >= limit:
            break
        try:
            frames = read_video(root / "Videos" / f"{vid}.avi")
        except VideoError:
            continue
        systole, diastole = study_picks(frames)
        out.append(Picks(vid, len(frames), systole, diastole, (tracing.es,), (tracing.ed,)))
    return out


@dataclass(frozen=True)
class Agreement:
    """How often a predicted frame hits a true event frame: exactly, or within +-k frames."""

    n: int
    exact: float
    within: dict[int, float]  # k -> fraction within +-k frames
    mean_distance: float  # frames to the nearest true event


def heuristic_agreement(predicted: Sequence[int], truth: Sequence[Sequence[int] | int],
                        ks: Sequence[int] = (1, 2, 3, 5)) -> Agreement:
    """Score predicted frame indices against the true event frame(s) of each video (nearest one counts)."""
    if len(predicted) != len(truth):
        raise ValueError("heuristic_agreement: one prediction per video")
    dist = []
    for p, t in zip(predicted, truth):
        events = np.atleast_1d(np.asarray(t))
        if events.size:
            dist.append(int(np.abs(events - int(p)).min()))
    d = np.asarray(dist)
    if not d.size:
        return Agreement(0, math.nan, {k: math.nan for k in ks}, math.nan)
    return Agreement(len(d), float((d == 0).mean()), {k: float((d <= k).mean()) for k in ks}, float(d.mean()))


def chance_agreement(n_frames: Sequence[int], truth: Sequence[Sequence[int]],
                     ks: Sequence[int] = (1, 2, 3, 5)) -> Agreement:
    """The expected :func:`heuristic_agreement` of a frame drawn uniformly from each video (exact, not simulated)."""
    per = [np.abs(np.arange(n)[:, None] - np.asarray(e)[None, :]).min(1) for n, e in zip(n_frames, truth)]
    return Agreement(len(per), float(np.mean([(d == 0).mean() for d in per])),
                     {k: float(np.mean([(d <= k).mean() for d in per])) for k in ks},
                     float(np.mean([d.mean() for d in per])))


def score_picks(picks: Sequence[Picks], ks: Sequence[int] = (1, 2, 3, 5)) -> dict[str, Agreement]:
    """``{"ES": ..., "ED": ...}``: does "most bright pixels" find end-systole, does "fewest" find end-diastole?"""
    return {
        "ES": heuristic_agreement([p.systole for p in picks], [p.es for p in picks], ks),
        "ED": heuristic_agreement([p.diastole for p in picks], [p.ed for p in picks], ks),
    }


def heuristic_on_clips(clips: Sequence, ks: Sequence[int] = (1, 2, 3, 5)) -> dict[str, Agreement]:
    """:func:`score_picks` of :func:`clip_picks`: the heuristic on phantom clips, whose true ES/ED are known."""
    return score_picks(clip_picks(clips), ks)


def heuristic_on_echonet(root: str | Path, limit: int | None = None,
                         ks: Sequence[int] = (1, 2, 3, 5)) -> dict[str, Agreement]:
    """:func:`score_picks` of :func:`video_picks`: the heuristic on real videos against the experts' frames."""
    return score_picks(video_picks(root, limit), ks)


# -- a manifest for a folder of the study's frames -------------------------------------------
#: the study's frame roles by file index ``_f<k>``: what ``recipe="study"`` writes as k = 0..3
STUDY_ROLES = (("first", "other"), ("systole", "ES"), ("diastole", "ED"), ("last", "other"))


def study_role(name: str) -> tuple[int, str, str] | None:
    """``(k, role, phase_label)`` of a study frame name ``<video>_f<k>.png``; None for other names.

    The study kept four frames per video and named them by position: ``_f1`` is
    its "systole" (the frame with the most pixels above 30), ``_f2`` its
    "diastole" (the fewest), ``_f0`` and ``_f3`` the clip's ends. The ES/ED labels
    are that heuristic's, not an expert's: :func:`heuristic_agreement` measures
    how often it finds the traced frames.
    """
    k = k_of(name)
    if k is None or k >= len(STUDY_ROLES):
        return None
    role, label = STUDY_ROLES[k]
    return k, role, label


def write_study_manifest(frames: str | Path, out: str | Path) -> Path:
    """Write ``out`` (a manifest.csv) naming every frame of the study's folder ``frames`` with its phase label.

    Lets a phase-conditioned model or the phase utility test use a folder of the
    study's frames (``shared/data/echonet-dynamic-128/frames``) without copying a
    frame: the ``file`` column points at the frames, relative to the manifest's
    folder. Columns are the schema's (:mod:`echolib.data.manifest`) with ``phase_source``
    ``"study name rule"``; names that do not follow ``<video>_f<0..3>.png`` are
    refused, naming the first.
    """
    frames, out = Path(frames), Path(out)
    if not frames.is_dir():
        raise DataError(f"{frames}: not a folder of frames")
    files = sorted(p for p in frames.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{frames}: no PNG/JPEG frames")
    records = []
    for p in files:
        role = study_role(p.name)
        if role is None:
            raise DataError(f"{p}: not a study frame name (expected <video>_f<k>.png with k in 0..3)")
        k, name, label = role
        rel = os.path.relpath(p.resolve(), out.resolve().parent)
        records.append(FrameRecord(file=rel, video_id=video_id_of(p.name), k=k, role=name, phase_label=label,
                                   phase_source="study name rule"))
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_manifest(out, records)
