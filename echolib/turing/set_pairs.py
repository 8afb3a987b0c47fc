"""Which of two image sets looks more like real echoes? Human judgments for the metric validation suite.

A metric is trusted to rank generators only if it ranks them as people do. The
two-set mode shows a rater two grids side by side, each a random draw of
``grid`` images from one set, and asks which looks more like real
echocardiograms. Its questionnaire folder has the same layout as the Turing
test's (``questions.json``, ``images/``; format ``set_of_two``), so the rater
app (:class:`echolib.turing.app.TuringApp`) serves it unchanged and each answer
is appended to the rater's file. The key, written outside that folder, says
which set is on which side and where every set's images come from.

:func:`judged_pairs` turns the answers into pairs for
:mod:`echolib.metrics.validation`: a pair of sets is decided when more than
half of all picks for it (over raters and repeated draws) go to one set. Where
there are no answers there are no pairs: judgments are never invented.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from echolib.data.frames import FrameDataset
from echolib.errors import ConfigError, DataError
from echolib.images import make_grid, png_bytes
from echolib.io import atomic_write_bytes, atomic_write_text, read_jsonl
from echolib.metrics.inputs import as_image_set
from echolib.metrics.validation import Pair
from echolib.turing.answers import AnswerLog
from echolib.turing.formats import get_format
from echolib.turing.questionnaire import (
    IMAGES_DIR,
    QUESTIONS_FILE,
    Questionnaire,
    RaterQuestion,
    _check_destinations,
    _questionnaire_id,
    _questions_json,
    _random_names,
    default_key_path,
)

FORMAT = "set_of_two"
KIND = "echolib.turing.set_pairs/1"  # the key's "kind": refused by the real-vs-synthetic analysis, read here


def build_set_questionnaire(
    sets: Mapping[str, str | Path],
    out: str | Path,
    key: str | Path | None = None,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    repeats: int = 3,
    grid: int = 16,
    size: int = 64,
    seed: int | None = None,
    title: str = "Which looks more like real echocardiograms?",
) -> tuple[Questionnaire, Path]:
    """Write a two-set questionnaire to ``out`` and its key to ``key``; same seed, same bytes.

    ``sets`` maps a set's name to its folder (zip or manifest); ``pairs``
    (default: every pair) are asked ``repeats`` times each with fresh draws of
    ``grid`` images at ``size`` px, the sides balanced and the order shuffled.
    """
    if len(sets) < 2:
        raise ConfigError(f"a two-set questionnaire needs at least two sets, got {list(sets)}")
    side = round(grid**0.5)
    if side * side != grid or grid < 1:
        raise ConfigError(f"grid must be a square number of images (4, 9, 16, ...), got {grid}")
    asked: list[tuple[str, ...]] = list(itertools.combinations(sets, 2)) if pairs is None else [tuple(p) for p in pairs]
    unknown = sorted({n for p in asked for n in p} - set(sets))
    if unknown:
        raise ConfigError(f"pairs name sets that are not given: {unknown}")
    out = Path(out)
    key_path = Path(key) if key is not None else default_key_path(out)
    _check_destinations(out, key_path)
    seed = secrets.randbits(63) if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    images = {name: FrameDataset(src, resolution=size).images for name, src in sets.items()}
    for name, imgs in images.items():
        if len(imgs) < grid:
            raise DataError(f"set {name!r} ({sets[name]}): {len(imgs)} images, a grid needs {grid}")
    plan = [(a, b, r) for a, b in asked for r in range(repeats)]
    order = rng.permutation(len(plan))
    names = _random_names(2 * len(plan), rng)
    questions, key_questions = [], []
    for i, j in enumerate(order):
        a, b, r = plan[j]
        left, right = (a, b) if (i + r) % 2 == 0 else (b, a)  # sides balanced over repeats
        shown = []
        for set_name in (left, right):
            pick = np.sort(rng.choice(len(images[set_name]), grid, replace=False))
            png = png_bytes(make_grid(images[set_name][torch.from_numpy(pick)], nrow=side, pad=2))
            file = names.pop()
            atomic_write_bytes(out / IMAGES_DIR / file, png)
            shown.append({"name": file, "set": set_name, "indices": pick.tolist()})
        qid = f"q{i + 1:03d}"
        questions.append(RaterQuestion(qid, FORMAT, tuple(s["name"] for s in shown)))
        key_questions.append({"id": qid, "sets": [s["set"] for s in shown], "images": shown})
    questionnaire = Questionnaire(out, _questionnaire_id(questions), title, tuple(questions))
    atomic_write_text(out / QUESTIONS_FILE, json.dumps(_questions_json(questionnaire), indent=1) + "\n")
    atomic_write_text(key_path, json.dumps({
        "kind": KIND, "questionnaire": questionnaire.id, "seed": seed, "grid": grid, "size": size,
        "sets": {name: str(src) for name, src in sets.items()}, "questions": key_questions}, indent=1) + "\n")
    return questionnaire, key_path


def load_set_key(path: str | Path) -> dict:
    """A two-set key, checked; a ConfigError naming the file when it is another kind of key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such key file (written by build_set_questionnaire)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ConfigError(f"{path}: not a two-set questionnaire key (expected kind {KIND!r})")
    return data


def votes(key: str | Path, answers_dir: str | Path) -> dict[tuple[str, str], dict[str, int]]:
    """Picks per set for each pair of sets (sorted names), over every rater's latest answer to each question."""
    data = load_set_key(key)
    answers_dir = Path(answers_dir)
    formats = {q["id"]: get_format(FORMAT).name for q in data["questions"]}
    sides = {q["id"]: q["sets"] for q in data["questions"]}
    tally: dict[tuple[str, str], dict[str, int]] = {}
    for file in sorted(answers_dir.glob("*.jsonl")) if answers_dir.is_dir() else []:
        if not read_jsonl(file):
            continue
        log = AnswerLog(answers_dir, file.stem, data["questionnaire"], formats)
        for qid, answer in log.latest().items():
            shown = sides[qid]
            pair = tuple(sorted(shown))
            counts = tally.setdefault(pair, {name: 0 for name in pair})
            counts[shown[answer.picks[0]]] += 1
    return tally


def judged_pairs(key: str | Path, answers_dir: str | Path):
    """The pairs people decided, the preferred set first, for the validation suite (empty without answers)."""
    out = []
    for (a, b), counts in votes(key, answers_dir).items():
        total = counts[a] + counts[b]
        if counts[a] == counts[b]:
            continue
        better, worse = (a, b) if counts[a] > counts[b] else (b, a)
        out.append(Pair(better, worse, "human", f"{counts[better]} of {total} picks"))
    return out


def set_images(key: str | Path, resolution: int) -> dict:
    """Every set of the questionnaire, all of its images, as image sets at ``resolution`` (for scoring)."""
    data = load_set_key(key)
    return {name: as_image_set(FrameDataset(src, resolution=resolution), label=name)
            for name, src in data["sets"].items()}
