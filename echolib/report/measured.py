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
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from echolib.errors import ConfigError
from echolib.io import atomic_write_text, read_jsonl
from echolib.report.plots import loss_curves, metric_curves
from echolib.train.run_folder import RunFolder, videos_fingerprint


@dataclass
class KeptSession:
    """What :func:`keep_session` wrote: one folder per run and the session-level files."""

    label_dir: Path
    runs: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def keep_run(run: str | Path, dest: str | Path, name: str) -> Path:
    """Copy a run's record into ``dest``, naming it ``name`` in every metric record.

    ``log.csv`` and ``config.yaml`` are required (a folder without them is not a
    run); ``metrics.jsonl`` is optional (a run cut off before its first
    evaluation has none). Records keep their values; ``run`` becomes ``name``,
    because the trainer wrote the path of a folder on the machine that trained it.
    """
    source, kept = RunFolder(run), RunFolder(dest)
    missing = [f.name for f in (source.log_file, source.config_file) if not f.is_file()]
    if missing:
        raise ConfigError(f"{source.path}: not a training run (no {' or '.join(missing)})")
    for src, dst in ((source.log_file, kept.log_file), (source.config_file, kept.config_file)):
        atomic_write_text(dst, src.read_text())
    if source.metrics_file.is_file():
        _write_lines(kept.metrics_file, [_public_record(r, name) for r in source.records()])
    if source.meta_file.is_file():
        atomic_write_text(kept.meta_file, json.dumps(public_meta(source.meta()), indent=2) + "\n")
    return kept.path


def keep_session(session: str | Path, root: str | Path, label: str, *, overwrite: bool = False) -> KeptSession:
    """Keep every run of a ``bench/gpu_session.sh`` work folder (or its ``session.tgz``) under ``root/label``.

    Runs land in ``root/label/<arch>-<config>``. The session's
    ``evaluate_runs.out`` becomes ``evaluate_runs.jsonl``, the diffusion run's
    ``diffusion_steps.out`` that run's ``steps.jsonl``, with run names rewritten
    to ``label/<arch>-<config>`` the same way; ``machine.txt`` and
    ``stages.jsonl`` are kept as they are. A synthetic dataset
    (``synthesize/<name>/``) keeps its ``datasheet.json`` only, in
    ``synthesize-<name>``, and the utility test's ``utility.out`` becomes
    ``utility.jsonl``, both naming the set by its kept folder. Nothing else
    (images, grids, checkpoints, stderr with paths) is copied.
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
    runs = sorted(p.parent for p in session.glob(f"runs/*/*/{RunFolder.LOG}"))
    if not runs:
        raise ConfigError(f"{session}: no runs (expected runs/<arch>/<config>/log.csv, as bench/gpu_session.sh writes)")
    kept = KeptSession(label_dir)
    # "<arch>/<config>", as `evaluate --runs` names them, to the kept folder's name
    names = {f"{run.parent.name}/{run.name}": f"{run.parent.name}-{run.name}" for run in runs}
    for key, folder in names.items():
        kept.runs.append(keep_run(session / "runs" / key, label_dir / folder, f"{label}/{folder}"))
    evaluated = session / "evaluate_runs.out"
    if evaluated.is_file() and (lines := read_jsonl(evaluated)):
        renamed = [{**r, "run": f"{label}/{names.get(r.get('run', ''), r.get('run'))}"} for r in lines]
        kept.files.append(_write_lines(label_dir / "evaluate_runs.jsonl", renamed))
    steps = session / "diffusion_steps.out"
    if steps.is_file() and (lines := read_jsonl(steps)):
        diffusion = [n for k, n in names.items() if k.startswith("diffusion/")]
        target = label_dir / (diffusion[0] if len(diffusion) == 1 else "diffusion")
        kept.files.append(_write_lines(target / "steps.jsonl", [{**r, "run": f"{label}/{target.name}"} for r in lines]))
    kept.files += _keep_synthetic(session, label_dir, {k: f"{label}/{n}" for k, n in names.items()})
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
    runs = sorted(p.parent for p in root.glob(f"*/{arch}-*/{RunFolder.LOG}") if p.parent.name.split("-")[0] == arch)
    if resolution is None:
        return runs
    return [r for r in runs if (yaml.safe_load(RunFolder(r).config_file.read_text()) or {}).get("train", {}).get(
        "resolution") == resolution]


def plot_measured(runs: list[Path], losses: list[str], metrics: tuple[str, ...] = ("fid", "kid")) -> list:
    """Loss curves and the trainer's metric curves of each kept run, titled with its label; the figures."""
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


def public_data(text: str) -> str:
    """``text`` with every path in it cut to its last name: the folders belong to the machine that trained.

    One rule for the data source a run's meta names and for the metric records' (``held-out
    videos of /home/x/frames`` -> ``held-out videos of frames``), relative or absolute.
    """
    return re.sub(r"(?<!\S)(?:[^\s/]*/)+([^\s/]+)/?", r"\1", text)


def _public_record(record: dict[str, Any], name: str) -> dict[str, Any]:
    """A metric record as the book keeps it: named ``name``, its data source without the machine's folders."""
    out = {**record, "run": name}
    if isinstance(out.get("data"), str):
        out["data"] = public_data(out["data"])
    return out


def public_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """A run's ``run.json`` as the book may keep it: no video names and no paths of the training machine.

    The held-out videos become their count and fingerprint (what a reader needs
    to tell two held-out sets apart); the data source keeps only its last name.
    """
    out = dict(meta)
    if "heldout_videos" in out:
        videos = out.pop("heldout_videos")
        out["heldout_video_count"] = len(videos)
        out.setdefault("heldout_fingerprint", videos_fingerprint(videos))
    if isinstance(out.get("data"), str):
        out["data"] = public_data(out["data"])
    return out


def _keep_synthetic(session: Path, label_dir: Path, kept_runs: dict[str, str]) -> list[Path]:
    """Each synthetic set's datasheet and the utility records, naming runs and sets by their kept names.

    ``kept_runs`` maps a run's ``<arch>/<config>`` to its kept name (``label/<arch>-<config>``).
    """
    written, sets = [], {}
    for sheet in sorted(session.glob("synthesize/*/datasheet.json")):
        folder = f"synthesize-{sheet.parent.name}"
        sets[sheet.parent.name] = f"{label_dir.name}/{folder}"
        data = json.loads(sheet.read_text())
        run = str(data.get("model", {}).get("run"))
        atomic_write_text(label_dir / folder / "datasheet.json",
                          json.dumps(public_datasheet(data, kept_runs.get(run, public_data(run))), indent=2) + "\n")
        written.append(label_dir / folder / "datasheet.json")
    utility = session / "utility.out"
    if utility.is_file() and (lines := read_jsonl(utility)):
        written.append(_write_lines(label_dir / "utility.jsonl", [
            {**r, "data": public_data(str(r.get("data", ""))),
             "synthetic": sets.get(Path(str(r.get("synthetic", ""))).name, r.get("synthetic"))} for r in lines]))
    return written


def public_datasheet(sheet: dict[str, Any], name: str) -> dict[str, Any]:
    """A synthetic set's ``datasheet.json`` as the book may keep it: its run named ``name``, not by its path."""
    out = dict(sheet)
    out["settings"] = {**sheet.get("settings", {}), "run": name}
    out["model"] = {**sheet.get("model", {}), "run": name}
    if isinstance(sheet.get("settings", {}).get("data"), str):
        out["settings"]["data"] = public_data(sheet["settings"]["data"])
    if isinstance(sheet.get("data", {}).get("source"), str):
        out["data"] = {**sheet["data"], "source": public_data(sheet["data"]["source"])}
    return out


# held-out metrics in the order the comparison reads them, and their column names
HELD_OUT = {"fid": "echo-FID", "kid": "KID", "precision": "precision", "recall": "recall",
            "memorized_fraction": "memorised", "c2st_auc": "C2ST AUC"}


def _kept_name(run: Path) -> str:
    return f"{run.parent.name}/{run.name}"


def _arch_of(name: str) -> str:
    return name.split("/")[-1].split("-")[0]


def measured_training(root: str | Path, arch: str | None = None) -> pd.DataFrame:
    """One row per kept run: where it trained, how far, how fast, and the trainer's best echo-FID.

    Read from each run's ``log.csv`` (kimg reached, the median tick's sec/kimg),
    ``metrics.jsonl`` (the trainer's own FID records: samples against training
    frames) and ``config.yaml`` (resolution), and the session's ``machine.txt``:
    the prose of a chapter can then say what happened without retyping a number.
    """
    root = Path(root)
    rows = []
    for run in sorted(p.parent for p in root.glob(f"*/*/{RunFolder.LOG}")):
        if arch is not None and _arch_of(run.name) != arch:
            continue
        folder = RunFolder(run)
        log = pd.read_csv(folder.log_file)
        cfg = yaml.safe_load(folder.config_file.read_text()) or {}
        machine = run.parent / "machine.txt"
        fids = [r for r in folder.records() if r.get("metric") == "fid" and r.get("source", "train") == "train"]
        best = min(fids, key=lambda r: r["value"]) if fids else None
        rows.append({
            "run": _kept_name(run),
            "device": machine.read_text().split(",")[0].strip() if machine.is_file() else "",
            "resolution": cfg.get("train", {}).get("resolution"),
            "kimg trained": round(float(log["kimg"].iloc[-1]), 1) if len(log) else 0.0,
            "sec/kimg (median tick)": round(float(log["sec_per_kimg"].median()), 3) if len(log) else np.nan,
            "trainer's best echo-FID": round(best["value"], 1) if best else np.nan,
            "at kimg": round(best["kimg"], 1) if best else np.nan,
            "FID n (samples vs frames)": f"{best['n_fake']} vs {best['n_real']}" if best else "",
        })
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def measured_evaluations(root: str | Path, arch: str | None = None) -> pd.DataFrame:
    """One row per run a kept session scored against its held-out videos (``<label>/evaluate_runs.jsonl``).

    The columns are the metrics that rank models, with the protocol each row was
    scored under (samples, held-out frames, extractor): rows of two protocols
    are different numbers, and the table says which is which.
    """
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(root).glob("*/evaluate_runs.jsonl")):
        for rec in read_jsonl(path):
            name = rec.get("run", "")
            if rec.get("metric") not in HELD_OUT or (arch is not None and _arch_of(name) != arch):
                continue
            row = rows.setdefault(name, {"run": name, "kimg evaluated": round(float(rec.get("kimg") or 0), 1)})
            row[HELD_OUT[rec["metric"]]] = rec["value"]
            if rec["metric"] == "fid":
                row["protocol"] = (f"{rec.get('n_fake')} samples vs {rec.get('n_real')} held-out, {rec.get('extractor')}"
                                   + (f"; conditions: {rec['conditions']}" if rec.get("conditions") else ""))
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(list(rows.values())).set_index("run").sort_index()
    return table[[c for c in ["kimg evaluated", *HELD_OUT.values(), "protocol"] if c in table.columns]]


def measured_comparisons(root: str | Path, resolution: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """The comparisons kept sessions scored under one protocol, reference rows included, by session label.

    ``<label>/evaluate_runs.jsonl`` as ``python -m echolib evaluate --runs ... --json`` printed it. Only
    records stamped with a protocol take part (older sessions scored runs and references differently);
    a session whose runs held out different videos keeps its largest protocol. ``resolution`` keeps the
    comparisons made at that size.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(Path(root).glob("*/evaluate_runs.jsonl")):
        records = [r for r in read_jsonl(path) if r.get("protocol") and "kind" in r]
        if not records:
            continue
        by_protocol: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            by_protocol.setdefault(r["protocol"], []).append(r)
        largest = max(by_protocol.values(), key=lambda rs: len({r["row"] for r in rs}))
        if resolution is None or largest[0].get("resolution", resolution) == resolution:
            out[path.parent.name] = largest
    return out


def measured_table(root: str | Path, arch: str, *, resolution: int | None = None) -> pd.DataFrame:
    """A chapter's view of its kept runs (of one ``resolution`` if given): how far each trained
    (:func:`measured_training`) beside its held-out scores (:func:`measured_evaluations`), one row per run;
    blank where a run was not scored."""
    training, evaluations = measured_training(root, arch), measured_evaluations(root, arch)
    if training.empty:
        return evaluations
    if resolution is not None:
        training = training[training["resolution"] == resolution]
    columns = ["kimg trained", "sec/kimg (median tick)", "trainer's best echo-FID", "at kimg"]
    return training[columns].join(evaluations, how="left")


def styled_measured(table: pd.DataFrame):
    """The tables above as a page shows them: kimg to 0.1, scores to four significant digits, blanks as dashes."""
    kimg = [c for c in table.columns if "kimg" in c and "sec/" not in c]
    numbers = [c for c in table.columns if c not in kimg and pd.api.types.is_numeric_dtype(table[c])]
    return (table.style.format("{:.1f}", subset=kimg, na_rep="–").format("{:.4g}", subset=numbers, na_rep="–")
            .set_table_attributes('class="dataframe"'))  # the book's compact style for wide tables


def _write_lines(path: Path, records: list[dict[str, Any]]) -> Path:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
    return path
