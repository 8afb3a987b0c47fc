"""Each frame's cardiac phase label, from wherever a frame set keeps it.

Frame sets of this project name phases in three ways, tried in this order:

* a manifest's ``phase_label`` column (the phantom's true phase, ``preprocess
  echonet``'s expert or heuristic labels, :func:`echolib.data.echonet.write_study_manifest`),
  as the dataset's frames carry it (:meth:`~echolib.data.frames.FrameDataset.field`);
* a synthetic set's ``condition`` column (``python -m echolib synthesize`` of a
  phase-conditioned model), the same way;
* the study's file-name rule for its shared frames, ``<video>_f<k>.png``
  (:func:`echolib.data.echonet.study_role`: ``_f1`` ES, ``_f2`` ED).
"""

from __future__ import annotations

from typing import Any

from echolib.data.echonet import study_role

COLUMNS = ("phase_label", "condition")
NAME_RULE = "study name rule (_f1 systole = ES, _f2 diastole = ED)"


def phase_labels(dataset: Any) -> tuple[list[str | None], str]:
    """Each frame's phase label (ES, ED, other; None where unknown) and where the labels came from.

    ``dataset`` is a :class:`~echolib.data.frames.FrameDataset`; its frames'
    manifest fields (their own manifest or the one beside their folder) come first.
    """
    for key in COLUMNS:
        labels = dataset.field(key)
        if any(labels):
            return labels, f"manifest {key}"
    roles = [study_role(name) for name in dataset.names]
    return [None if r is None else r[2] for r in roles], NAME_RULE
