"""Records of runs trained on another machine, kept in the book without their images or paths.

A lent GPU machine returns whole run folders: sample grids of licensed frames,
checkpoints, and the absolute paths of a machine that no longer exists. The book
needs only what its figures read (each run's ``log.csv``, ``metrics.jsonl`` and
``config.yaml``, plus the session's evaluation and sampler-steps lines), under a
label that says where and when they were measured (``h100-2026-11-27``). Keeping
the selection here, rather than in whoever unpacks the archive under time
pressure, makes it the same every session and keeps frames out of git.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from echolib.errors import ConfigError
from echolib.io import atomic_write_text, read_jsonl


@dataclass
class KeptSession:
    """What :func:`keep_session` wrote: one folder per run and the session-level files."""

    label_dir: Path
    runs: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def keep_run(run: str | Path, dest: str | Path, name: str, *, meta: bool = False) -> Path:
    """Copy a run's record into ``dest``, naming it ``name`` in every metric record.

    ``log.csv`` and ``config.yaml`` are required (a folder without them is not a
    run); ``metrics.jsonl`` is optional (a run cut off before its first
    evaluation has none). Records keep their values; ``run`` becomes ``name``,
    because the trainer wrote the path of a folder on the machine that trained it.
    ``meta``: keep ``run.json`` too (device, precision, threads, torch), less
    the held-out video names (licensed data: only their count stays) and with
    the data's path cut to its last two folders.
    """
    run, dest = Path(run), Path(dest)
    missing = [f for f in ("log.csv", "config.yaml") if not (run / f).is_file()]
    if missing:
        raise ConfigError(f"{run}: not a training run (no {' or '.join(missing)})")
    for fname in ("log.csv", "config.yaml"):
        atomic_write_text(dest / fname, (run / fname).read_text())
    if (run / "metrics.jsonl").is_file():
        _write_lines(dest / "metrics.jsonl", [{**r, "run": name} for r in read_jsonl(run / "metrics.jsonl")])
    if meta and (run / "run.json").is_file():
        facts = json.loads((run / "run.json").read_text())
        facts["heldout_videos"] = len(facts.get("heldout_videos", []))
        facts["data"] = "/".join(Path(str(facts.get("data", ""))).parts[-2:])
        atomic_write_text(dest / "run.json", json.dumps(facts, indent=2) + "\n")
    return dest


def keep_session(session: str | Path, root: str | Path, label: str, *, overwrite: bool = False) -> KeptSession:
    """Keep every run of a ``bench/gpu_session.sh`` work folder (or its ``session.tgz``) under ``root/label``.

    Runs land in ``root/label/<arch>-<config>``. The session's
    ``evaluate_runs.out`` becomes ``evaluate_runs.jsonl``, the diffusion run's
    ``diffusion_steps.out`` that run's ``steps.jsonl``, with run names rewritten
    to ``label/<arch>-<config>`` the same way; ``machine.txt`` and
    ``stages.jsonl`` are kept as they are. Nothing else (grids, checkpoints,
    stderr with paths) is copied.
    """
    session, root = Path(session), Path(root)
    if not label or "/" in label or label.startswith("."):
        raise ConfigError(f"label {label!r}: expected one folder name such as 'h100-2026-11-27'")
    label_dir = root / label
    if label_dir.exists() and not overwrite:
        raise ConfigError(f"{label_dir} exists: choose another label or pass overwrite=True (--overwrite)")
    if session.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with tarfile.open(session) as tar:
                    tar.extractall(tmp, filter="data")
            except tarfile.TarError as exc:
                raise ConfigError(f"{session}: not a readable session archive ({exc})") from exc
            return keep_session(tmp, root, label, overwrite=overwrite)
    if not session.is_dir():
        raise ConfigError(f"{session}: no such session folder or archive")
    runs = sorted(p.parent for p in session.glob("runs/*/*/log.csv"))
    if not runs:
        raise ConfigError(f"{session}: no runs (expected runs/<arch>/<config>/log.csv, as bench/gpu_session.sh writes)")
    kept = KeptSession(label_dir)
    # "<arch>/<config>", as `evaluate --runs` names them, to the kept folder's name
    names = {f"{run.parent.name}/{run.name}": f"{run.parent.name}-{run.name}" for run in runs}
    for key, folder in names.items():
        kept.runs.append(keep_run(session / "runs" / key, label_dir / folder, f"{label}/{folder}"))
    evaluated = session / "evaluate_runs.out"
    if evaluated.is_file() and (lines := read_jsonl(evaluated)):
        renamed = [{**r, "run": f"{label}/{names.get(r.get('run'), r.get('run'))}"} for r in lines]
        kept.files.append(_write_lines(label_dir / "evaluate_runs.jsonl", renamed))
    steps = session / "diffusion_steps.out"
    if steps.is_file() and (lines := read_jsonl(steps)):
        diffusion = [n for k, n in names.items() if k.startswith("diffusion/")]
        target = label_dir / (diffusion[0] if len(diffusion) == 1 else "diffusion")
        kept.files.append(_write_lines(target / "steps.jsonl", [{**r, "run": f"{label}/{target.name}"} for r in lines]))
    for fname in ("machine.txt", "stages.jsonl"):
        if (session / fname).is_file():
            atomic_write_text(label_dir / fname, (session / fname).read_text())
            kept.files.append(label_dir / fname)
    return kept


def measured_runs(root: str | Path, arch: str, *, resolution: int | None = None) -> list[Path]:
    """Kept runs of ``arch`` under ``root`` (``<label>/<arch>-<config>``), by label; of one ``resolution`` if given.

    The resolution is the one the run's ``config.yaml`` trained at: a chapter
    shows its 128 px runs apart from the 64 px ``cpu64`` ones.
    """
    root = Path(root)
    runs = sorted(p.parent for p in root.glob(f"*/{arch}-*/log.csv") if p.parent.name.split("-")[0] == arch)
    if resolution is None:
        return runs
    return [r for r in runs if (yaml.safe_load((r / "config.yaml").read_text()) or {}).get("train", {}).get(
        "resolution") == resolution]


def plot_measured(runs: list[Path], losses: list[str], metrics: tuple[str, ...] = ("fid", "kid")) -> list:
    """Loss curves and the trainer's metric curves of each kept run, titled with its label; the figures."""
    from echolib.report.plots import loss_curves, metric_curves

    figures = []
    for run in runs:
        for fig in (loss_curves(run, losses), metric_curves(run, list(metrics))):
            fig.suptitle(f"{run.parent.name}/{run.name}", fontsize=10)
            fig.tight_layout()  # again, now with room for the title
            figures.append(fig)
        for ax in figures[-1].axes:  # a collapse or a late start spans decades: a log axis keeps the rest readable
            values = np.concatenate([line.get_ydata() for line in ax.lines]) if ax.lines else np.array([])
            if len(values) and values.min() > 0 and values.max() / values.min() > 20:
                ax.set_yscale("log")
    return figures


def _write_lines(path: Path, records: list[dict[str, Any]]) -> Path:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
    return path
