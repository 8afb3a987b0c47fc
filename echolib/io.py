"""Writes that never leave a half-written file and appends that never lose a line.

Training runs get killed (pre-emption, SIGKILL, full disks). Every artefact of a
run is therefore written to a temporary file in the same folder, flushed,
fsync'ed and renamed over the target, so a reader sees the old file or the new
one, never a torn mix. Append-only records go through :func:`append_line`,
which fsyncs each line.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from echolib.errors import OutputError


def fsync_dir(path: Path) -> None:
    """Persist a rename: on POSIX the directory entry itself must be synced."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temp file + rename (the checkpoint is whole or absent)."""
    # lazy: torch stays out of the rater app (echolib.turing.app), which imports this module
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def append_line(path: Path, line: str) -> None:
    """Append one line and fsync it: a crash loses at most the line being written.

    A torn final line (no trailing newline) left by an earlier crash is
    terminated first so the new record starts on its own line; readers skip
    lines that do not parse.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "\n" in line:
        raise ValueError("append_line writes exactly one line")
    with open(path, "ab+") as fh:
        fh.seek(0, os.SEEK_END)
        prefix = b""
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                prefix = b"\n"
        fh.write(prefix + line.encode("utf-8") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    append_line(path, json.dumps(dict(record), sort_keys=False, default=_json_default))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read JSON lines, skipping a torn line left by a crash; any other unreadable line is skipped with a warning.

    A crash while appending tears at most the line being written, which the
    next append closes with a newline, so a torn line may sit anywhere; a line
    that is not a torn tail of a record (such as a hand edit gone wrong) is
    named rather than dropped in silence.
    """
    path = Path(path)
    if not path.exists():
        return []
    records, bad = [], []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        raw = raw.strip()
        if not raw:
            continue
        try:
            records.append(json.loads(raw))
        except json.JSONDecodeError:
            if not raw.startswith("{") or raw.endswith("}"):  # a torn record starts well and stops short
                bad.append(number)
    if bad:
        warnings.warn(f"{path}: skipped unreadable line(s) {bad[:10]}", stacklevel=2)
    return records


def append_csv_row(path: Path, row: Mapping[str, Any], fieldnames: Iterable[str]) -> None:
    """Append a CSV row, writing the header when the file is new."""
    path = Path(path)
    fieldnames = list(fieldnames)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, extrasaction="raise", lineterminator="\n")
    if not path.exists() or path.stat().st_size == 0:
        writer.writeheader()
    writer.writerow({k: _csv_value(row.get(k)) for k in fieldnames})
    text = buf.getvalue().rstrip("\n")
    for line in text.split("\n"):
        append_line(path, line)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def check_writable(folder: Path) -> None:
    """Fail now, with the folder named, rather than after hours of work."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"output folder {folder} is not writable ({exc.strerror or exc})") from exc
