"""What a run folder records on disk, and the rules that keep it one run.

The trainer writes; these functions decide what an existing folder may be
resumed with (the same configuration, up to the runtime settings, and the same
data), what a resume must forget (log rows and training-time metric records
past the checkpoint it resumes from, which will be recomputed identically),
and how a tick's row joins ``log.csv``. The folder's files are named by
:class:`~echolib.train.run_folder.RunFolder`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from echolib.config import read_yaml
from echolib.errors import ConfigError, DataError
from echolib.io import append_csv_row, atomic_write_text, read_jsonl
from echolib.train.config import RUNTIME_SETTINGS
from echolib.train.run_config import RunConfig, from_plain
from echolib.train.run_folder import RunFolder


def check_run_folder(out: Path, run: RunConfig, data_fingerprint: str) -> None:
    """Refuse to mix runs: an existing folder must hold the same config and data.

    Settings in ``RUNTIME_SETTINGS`` (length, compilation, where the data
    lives, cuDNN autotuning, TensorBoard) may change on resume. Keys an older
    echolib did not write count as their defaults, so adding a setting does
    not orphan existing run folders.
    """
    folder = RunFolder(out)
    cfg_path = folder.config_file
    if cfg_path.exists():
        raw = read_yaml(cfg_path)
        diff: list[str] = []
        if raw.get("arch") == run.arch:
            stored = from_plain(run.arch, raw.get("name", ""), raw, str(cfg_path)).to_dict()
            mine = run.to_dict()
            for block, free in (("model", frozenset()), ("train", RUNTIME_SETTINGS)):
                a, b = stored[block], mine[block]
                diff += sorted(f"{block}.{k}" for k in set(a) | set(b) if k not in free and a.get(k) != b.get(k))
        if raw.get("arch") != run.arch or diff:
            raise ConfigError(
                f"{out} already holds a run with a different configuration "
                f"({raw.get('arch')}/{raw.get('name')}, differs in: {', '.join(diff) or 'arch'}); "
                f"choose another output folder"
            )
    if folder.meta_file.exists():
        stored = folder.meta()
        if stored.get("data_fingerprint") != data_fingerprint:
            raise ConfigError(
                f"{out} was trained on other data ({stored.get('data')}, "
                f"{stored.get('frames')} frames); choose another output folder"
            )


def truncate_records(out: Path, kimg: float) -> None:
    """Drop log rows and training-time metric records beyond the resumed checkpoint."""
    folder = RunFolder(out)
    log = folder.log_file
    if log.exists():
        lines = log.read_text().splitlines()
        if lines:
            header = lines[0].split(",")
            k = header.index("kimg") if "kimg" in header else None
            keep = [lines[0]]
            for line in lines[1:]:
                cells = line.split(",")
                try:
                    if k is not None and float(cells[k]) <= kimg + 1e-9:
                        keep.append(line)
                except (ValueError, IndexError):
                    continue  # a torn line from a kill
            atomic_write_text(log, "\n".join(keep) + "\n")
    metrics = folder.metrics_file
    if metrics.exists():
        records = read_jsonl(metrics)
        keep_r = [r for r in records if r.get("source") != "train" or (r.get("kimg") or 0) <= kimg + 1e-9]
        if len(keep_r) != len(records):
            atomic_write_text(metrics, "".join(json.dumps(r) + "\n" for r in keep_r))


def append_log_row(out: Path, row: dict[str, Any]) -> None:
    """One tick's row of ``log.csv``; a loss first seen now widens the header (the file rewritten atomically)."""
    path = RunFolder(out).log_file
    header = None
    if path.exists() and path.stat().st_size:
        with open(path) as fh:
            header = fh.readline().strip().split(",")
    fields = list(header) if header else list(row)
    new = [k for k in row if k not in fields]
    if new and header:
        fields = fields + new
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(path, buf.getvalue())
    append_csv_row(path, row, fields)


def fingerprint(ds) -> str:
    """Identity of a dataset: frame names and tensor shape (cheap; content changes rename files in practice)."""
    h = hashlib.sha256()
    for name in ds.names:
        h.update(name.encode() + b"\0")
    h.update(str(tuple(ds.images.shape)).encode())
    return h.hexdigest()[:16]


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The configuration a run folder was trained with (its ``config.yaml``)."""
    path = RunFolder(run_dir).config_file
    if not path.exists():
        raise DataError(f"{run_dir} is not a run folder (no config.yaml)")
    data = read_yaml(path)
    arch = data.get("arch")
    if not arch:
        raise ConfigError(f"{path}: missing 'arch'")
    return from_plain(arch, data.get("name", Path(run_dir).name), data, str(path))
