"""The manifest of a frame folder: one schema for every producer, its reader and its writer.

A frame folder (the phantom's, ``echolib preprocess``'s, a manifest pointing at
the study's shared frames) keeps one ``manifest.csv`` beside its PNGs, one row
per frame. Every producer writes the columns of :class:`FrameRecord` in the
order of :data:`COLUMNS`; an empty cell means "not known for this frame".
:class:`~echolib.data.frames.FrameDataset` reads it and hands each frame's
fields to models and reports, so nothing else parses a manifest.

Two indices name a frame within its video, and they differ:

* ``k`` is its position among the frames kept of the video, the ``<k>`` of the
  file name ``<video>_f<k>.png`` (the study keeps four: 0 first, 1 its
  "systole", 2 its "diastole", 3 last);
* ``frame`` is its index in the source recording (the AVI frame of an
  EchoNet-Dynamic video, the numbering of ``VolumeTracings.csv``). It is empty
  where no recording exists to index (the phantom draws each frame alone) or
  where it was not kept (the study's shared frames).

Manifests written before ``k`` was a column (the phantom's first schema:
``file, video_id, frame, phase, phase_label, lv_area, mask``) used ``frame`` for
the kept position; :func:`read_manifest` reads such a ``frame`` as ``k`` and
their labels as the phantom's (``phase_source`` ``phantom``).
Columns outside the schema (a synthetic set's ``condition``, ``draw``, ...)
are kept as text in :attr:`FrameRecord.extra`. A manifest may also list draws
that a filter rejected (``echolib synthesize`` records every draw, so that its
privacy filter's decisions can be audited): a row whose :data:`PASSED` cell is
``false`` names no frame of the folder, and :func:`read_manifest` skips it.

Nothing here imports torch: the dataset writer's worker processes import this
module, and torch costs seconds per spawned worker.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from echolib.errors import DataError
from echolib.io import atomic_write_text

MANIFEST = "manifest.csv"
#: the column of a draw's filter decision, ``true`` or ``false``; a rejected draw is not a frame of the folder
PASSED = "passed"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_FRAME_NAME = re.compile(r"^(?P<video>.+)_f(?P<frame>\d+)$")

#: where a frame's phase label comes from (``phase_source``)
PHASE_SOURCES = {
    "phantom": "the phantom's true phase (it drew the frame at that point of the cycle)",
    "expert": "EchoNet-Dynamic's traced ED/ES frames (the larger traced LV is ED)",
    "heuristic": "the study's rule: most pixels above 30 is systole (ES), fewest is diastole (ED)",
    "position": "first or last frame of the clip, at no chosen phase ('other')",
    "study name rule": "the study's file names: _f1 is its systole (ES), _f2 its diastole (ED)",
}


@dataclass(frozen=True)
class FrameRecord:
    """One frame's row of a manifest; ``None`` where the manifest does not know the value."""

    #: the PNG, relative to the manifest's folder (may lead outside it, e.g. to the shared frames)
    file: str
    #: the recording the frame belongs to; splits keep a video's frames together, since they are near-duplicates
    video_id: str
    #: position among the video's kept frames: the ``<k>`` of ``<video>_f<k>.png``
    k: int | None = None
    #: index of the frame in its source recording (an EchoNet AVI frame); None without one
    frame: int | None = None
    #: why the frame was kept: ``first``, ``last``, ``systole``/``diastole`` (the study's rule), ``ES``/``ED``
    role: str | None = None
    #: the phantom's true cardiac phase, 0 at end-diastole to 1 at end-systole
    phase: float | None = None
    #: ``ED``, ``ES`` or ``other``: what a phase-conditioned model and the phase utility test learn
    phase_label: str | None = None
    #: where ``phase_label`` comes from, a key of :data:`PHASE_SOURCES`; heuristic labels are not the truth
    phase_source: str | None = None
    #: left-ventricle cavity area in pixels at the frame's size (the phantom's, known exactly)
    lv_area: int | None = None
    #: ejection fraction of the video in per cent (EchoNet's FileList.csv)
    ef: float | None = None
    #: the source dataset's own split of the video (EchoNet's TRAIN/VAL/TEST); the trainer splits by video itself
    split: str | None = None
    #: the LV mask PNG, relative to the manifest's folder
    mask: str | None = None
    #: other columns, as text: ``((column, value), ...)``
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return Path(self.file).name

    def get(self, column: str) -> str | None:
        """The cell of ``column`` as the manifest writes it (schema or extra column); None when empty or absent."""
        if column in _TYPES:
            return _cell(getattr(self, column)) or None
        return dict(self.extra).get(column) or None

    def cells(self) -> dict[str, str]:
        """The row as CSV cells: schema columns in order, then the extra ones."""
        return {**{c: _cell(getattr(self, c)) for c in COLUMNS}, **dict(self.extra)}

    @classmethod
    def from_name(cls, name: str) -> FrameRecord:
        """What a file name alone says: the video and ``k`` of ``<video>_f<k>.png`` (other names are their own video)."""
        return cls(file=name, video_id=video_id_of(name), k=k_of(name))


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(FrameRecord) if f.name != "extra")
_TYPES: dict[str, type] = {"k": int, "frame": int, "phase": float, "lv_area": int, "ef": float,
                           **{c: str for c in ("file", "video_id", "role", "phase_label", "phase_source", "split",
                                               "mask")}}


def video_id_of(name: str) -> str:
    """``0X100009310A3BD7FC_f2.png`` -> ``0X100009310A3BD7FC``; other names are their own video."""
    stem = Path(name).stem
    m = _FRAME_NAME.match(stem)
    return m.group("video") if m else stem


def k_of(name: str) -> int | None:
    """``<video>_f<k>.png`` -> ``k``; None for other names."""
    m = _FRAME_NAME.match(Path(name).stem)
    return int(m.group("frame")) if m else None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _parse(column: str, cell: object, where: str) -> Any:
    """A cell as its column's type; empty -> None; a malformed number names the file, line and column."""
    raw = "" if cell is None else str(cell).strip()
    kind = _TYPES[column]
    if not raw or kind is str:
        return raw or None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (kind is int and not value.is_integer()):
        what = "an integer" if kind is int else "a finite number"
        raise DataError(f"{where}: column {column}: expected {what} or an empty cell, got {raw!r}")
    return int(value) if kind is int else value


def record_from_row(row: Mapping[str, object], where: str = "manifest", *, legacy: bool = False) -> FrameRecord:
    """One manifest row (CSV cells, or the same values typed) -> a record.

    ``legacy``: the row comes from a manifest without a ``k`` column, whose ``frame`` is the kept position.
    """
    file = _parse("file", row.get("file"), where)
    if not file:
        raise DataError(f"{where}: the 'file' cell is empty")
    values: dict[str, Any] = {c: _parse(c, row.get(c), where) for c in COLUMNS if c != "file"}
    values["video_id"] = values["video_id"] or video_id_of(file)
    if legacy:  # only the phantom wrote that schema, and its labels are the true phases
        values["k"], values["frame"] = values["frame"], None
        if values["phase_label"] and not values["phase_source"]:
            values["phase_source"] = "phantom"
    if values["k"] is None:
        values["k"] = k_of(file)
    extra = tuple((c, str(v)) for c, v in row.items() if c is not None and c not in _TYPES and v not in (None, ""))
    return FrameRecord(file=file, extra=extra, **values)


def passed(row: Mapping[str, object]) -> bool:
    """Whether a manifest row is a draw its filter kept (``passed`` is ``true``)."""
    return str(row.get(PASSED) or "").strip().lower() == "true"


def rejected(row: Mapping[str, object]) -> bool:
    """Whether a manifest row is a draw its filter rejected (``passed`` is ``false``): not a frame of the folder."""
    return str(row.get(PASSED) or "").strip().lower() == "false"


def read_manifest(path: str | Path) -> list[FrameRecord]:
    """Every row of ``path`` as a :class:`FrameRecord`; old-schema manifests (no ``k`` column) included."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if "file" not in header:
            raise DataError(f"{path}: manifest needs a 'file' column (has: {reader.fieldnames})")
        legacy = "k" not in header and "frame" in header
        records = [record_from_row(row, f"{path}: line {reader.line_num}", legacy=legacy) for row in reader
                   if not rejected(row)]
    if not records:
        raise DataError(f"{path}: manifest lists no frames" + (" that passed its filter" if PASSED in header else ""))
    return records


def manifest_text(records: Iterable[FrameRecord]) -> str:
    """The CSV text of ``records``: :data:`COLUMNS`, then any extra columns in order of first appearance."""
    rows = [r.cells() for r in records]
    header: dict[str, None] = dict.fromkeys(COLUMNS)
    for row in rows:
        header.update(dict.fromkeys(row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(header), lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_manifest(path: str | Path, records: Sequence[FrameRecord]) -> Path:
    """Write ``records`` to ``path`` atomically (a reader never sees half a manifest)."""
    path = Path(path)
    atomic_write_text(path, manifest_text(records))
    return path


def manifest_beside(folder: str | Path | None) -> dict[str, FrameRecord]:
    """``file name -> record`` of the ``manifest.csv`` inside ``folder``; empty when there is none.

    A folder of frames is read as PNGs; the manifest its producer wrote beside
    them still names each frame's fields.
    """
    if folder is None or not Path(folder).is_dir() or not (Path(folder) / MANIFEST).is_file():
        return {}
    return {r.name: r for r in read_manifest(Path(folder) / MANIFEST)}
