"""Each frame's cardiac phase label, from wherever a frame set keeps it.

Frame sets of this project name phases in three ways, tried in this order:

* a manifest's ``phase_label`` column (the phantom's true phase, ``preprocess
  echonet``'s expert or heuristic labels, :func:`echolib.data.echonet.write_study_manifest`),
  read from the frame's own manifest row or from a ``manifest.csv`` beside a folder;
* a synthetic set's ``condition`` column (``python -m echolib synthesize`` of a
  phase-conditioned model), the same two ways;
* the study's file-name rule for its shared frames, ``<video>_f<k>.png``
  (:func:`echolib.data.echonet.study_role`: ``_f1`` ES, ``_f2`` ED).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

MANIFEST = "manifest.csv"
COLUMNS = ("phase_label", "condition")
NAME_RULE = "study name rule (_f1 systole = ES, _f2 diastole = ED)"


def manifest_beside(source: Any, key: str) -> dict[str, str]:
    """``file name -> value`` of column ``key`` in the ``manifest.csv`` inside a folder source, else empty.

    A folder of frames is read as bare PNGs, so its frames carry no manifest
    fields; the manifest written beside them (the phantom's, a synthetic set's)
    still names each frame's label.
    """
    if source is None or not Path(source).is_dir() or not (Path(source) / MANIFEST).is_file():
        return {}
    with open(Path(source) / MANIFEST, newline="", encoding="utf-8") as fh:
        return {Path(row["file"]).name: row[key] for row in csv.DictReader(fh) if row.get("file") and row.get(key)}


def phase_labels(dataset: Any) -> tuple[list[str | None], str]:
    """Each frame's phase label (ES, ED, other; None where unknown) and where the labels came from."""
    from echolib.data.echonet import study_role

    for key in COLUMNS:
        beside = manifest_beside(getattr(dataset, "source", None), key)
        labels = [info.get(key) or beside.get(info.name) or None for info in dataset.infos]
        if any(labels):
            return labels, f"manifest {key}"
    roles = [study_role(info.name) for info in dataset.infos]
    return [None if r is None else r[2] for r in roles], NAME_RULE
