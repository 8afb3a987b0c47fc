"""What a run folder records on disk, and the rules that keep it one run.

The trainer writes through these functions: the resolved ``config.yaml`` and
``run.json`` (what the run was trained on and where) when fitting starts,
``done.json`` when it reaches its length, and a note for each checkpoint a
resume had to pass over. They also decide what an existing folder may be
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
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from echolib.config import dump_yaml, read_yaml
from echolib.devices import cpu_model
from echolib.errors import ConfigError, DataError
from echolib.io import append_csv_row, atomic_write_text, read_jsonl
from echolib.train.checkpoint import SkippedCheckpoint
from echolib.train.config import RUNTIME_SETTINGS
from echolib.train.run_config import RunConfig, from_plain
from echolib.train.run_folder import RunFolder

if TYPE_CHECKING:
    from echolib.train.splits import DataSplit


def run_meta(
    run: RunConfig,
    data: DataSplit,
    *,
    device: torch.device,
    world_size: int,
    bf16: bool,
    channels_last: bool,
    threads: int,
    model_facts: Mapping[str, Any],
    skipped_checkpoints: list[dict[str, Any]],
) -> dict[str, Any]:
    """``run.json``: the data (and its held-out videos) a run was trained on, where, and how.

    Evaluation reads the held-out videos from here rather than recomputing the
    split; ``precision`` says what ``train.precision`` meant on this device;
    ``model`` holds what the model decided at run time that its configuration
    leaves open.
    """
    meta: dict[str, Any] = {
        "arch": run.arch,
        "config": run.name,
        "data": data.source,
        "frames": data.frames,
        "train_frames": len(data.train),
        "heldout_videos": data.heldout_videos(),
        "data_fingerprint": data.fingerprint,
        "device": device_name(device),
        "world_size": world_size,
        "precision": "bf16" if bf16 else "fp32",
        "channels_last": channels_last,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
    }
    if device.type == "cpu":
        meta["threads"] = threads
    if model_facts:
        meta["model"] = dict(model_facts)
    meta[RunFolder.SKIPPED_CHECKPOINTS] = skipped_checkpoints  # appended to earlier resumes' notes
    return meta


def write_run_files(out: Path, run: RunConfig, meta: Mapping[str, Any]) -> None:
    """The resolved ``config.yaml`` and ``run.json``, written when fitting starts (again at every resume)."""
    folder = RunFolder(out)
    atomic_write_text(folder.config_file, dump_yaml(run.to_dict()))
    folder.write_meta(meta)


def write_done(out: Path, *, nimg: int, target_nimg: int, steps: int, elapsed: float) -> None:
    """``done.json``: the run reached its length (readers skip finished runs by it)."""
    atomic_write_text(
        RunFolder(out).done_file,
        json.dumps({"kimg": nimg / 1000.0, "target_kimg": target_nimg / 1000.0, "steps": steps,
                    "time_s": round(elapsed, 3)}, indent=2),
    )  # fmt: skip


def set_aside_skipped(out: Path, skipped: SkippedCheckpoint, resumed_from: Path) -> dict[str, Any]:
    """Set aside a newer checkpoint that did not load, warn, and return ``run.json``'s note of it.

    Left in place it would be the newest checkpoint again at the next resume;
    the note keeps why it was passed over with the run, not only in a log.
    """
    folder = RunFolder(out)
    set_aside = folder.set_aside(skipped.path) if skipped.path.exists() else None
    kept = f"; it is kept as {set_aside.name}" if set_aside is not None else ""
    print(f"warning: resuming from {resumed_from.name}, not the newer {skipped.path.name}: {skipped.reason}{kept}",
          file=sys.stderr)  # fmt: skip
    return {
        "file": skipped.path.name,
        "reason": skipped.reason,
        "resumed_from": resumed_from.name,
        "set_aside_as": set_aside.name if set_aside is not None else None,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and core count, as ``run.json`` records the device."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {os.cpu_count()} cores)"


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
