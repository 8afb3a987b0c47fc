"""Blinded, randomised questionnaires for a visual Turing test.

A build writes two things to two places. The **questionnaire folder** is what
raters get: ``images/<random>.png`` and ``questions.json`` (question ids,
formats, image names, nothing else). The **key** (``key.json``, outside that
folder) holds the positions of the real images and the source of every image;
only the analysis reads it.

Blinding details that matter:

* every image is decoded and re-encoded as an 8-bit grayscale PNG with a
  random name, so file names, PNG metadata, colour mode (the study's samples
  are RGB with equal channels, real frames are grayscale) and file sizes
  tied to a source cannot give the answer away;
* real frames come from distinct videos as long as there are enough videos:
  two frames of one heart side by side would mark both as real;
* the positions of the real images are balanced within each format (as many
  left as right answers for one-of-two), so a rater's side bias cannot pass
  for discrimination, and the synthetic images of one question come from one
  model, so fooling rates can be compared per model.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from echolib.errors import ConfigError, DataError
from echolib.io import atomic_write_bytes, atomic_write_text
from echolib.turing.analysis import Item
from echolib.turing.formats import FORMATS, check_picks, get_format

STUDY_COUNTS: dict[str, int] = {"one_of_two": 10, "two_of_four": 5, "one_of_four": 3}
QUESTIONS_FILE = "questions.json"
KEY_FILE = "key.json"
IMAGES_DIR = "images"
VERSION = 1
# Fields that would tell a rater the answer; questions.json must never hold them.
_SECRET_FIELDS = frozenset({"answer", "key", "kind", "model", "models", "source", "sources", "seed", "file"})


@dataclass(frozen=True)
class RaterQuestion:
    """A question as a rater sees it: no answer, no sources."""

    id: str
    format: str
    images: tuple[str, ...]  # file names under images/, left to right (row by row for four)


@dataclass(frozen=True)
class Questionnaire:
    """The rater-facing side of a build (``questions.json`` plus images)."""

    folder: Path
    id: str
    title: str
    questions: tuple[RaterQuestion, ...]

    def image_bytes(self, name: str) -> bytes:
        return (self.folder / IMAGES_DIR / name).read_bytes()


@dataclass(frozen=True)
class KeyImage:
    name: str  # the blinded file name shown to raters
    kind: str  # "real" or "generated"
    model: str  # "real" for real frames, else the generated folder's name
    source: str  # folder, zip or manifest the image came from
    file: str  # the image's name inside that source


@dataclass(frozen=True)
class KeyQuestion:
    id: str
    format: str
    answer: tuple[int, ...]  # positions of the real images
    images: tuple[KeyImage, ...]


@dataclass(frozen=True)
class Key:
    """The answer key: only the analysis reads it."""

    path: Path
    questionnaire: str  # id of the questionnaire it belongs to
    seed: int
    questions: tuple[KeyQuestion, ...]

    def items(self) -> tuple[Item, ...]:
        return tuple(Item(q.id, q.format, q.answer, tuple(i.model for i in q.images)) for q in self.questions)


def default_key_path(out: str | Path) -> Path:
    """``<out>.key.json`` next to the questionnaire folder, never inside it."""
    out = Path(out)
    return out.parent / f"{out.name}.key.json"


def build_questionnaire(
    real: str | Path,
    generated: Mapping[str, str | Path] | Sequence[str | Path],
    out: str | Path,
    key: str | Path | None = None,
    *,
    counts: Mapping[str, int] = STUDY_COUNTS,
    seed: int | None = None,
    size: int | None = None,
    title: str = "Visual Turing test: echocardiograms",
) -> tuple[Questionnaire, Key]:
    """Write a blinded questionnaire to ``out`` and its key to ``key``; same seed, same bytes.

    Without ``seed`` a fresh one is drawn from the operating system and
    recorded in the key: the positions of the real images follow from the seed
    alone, so a default seed anyone can type would give every rater the answers.

    ``real`` and each generated source are folders (or zips/manifests) of
    frames; ``generated`` maps model names to sources (a plain list uses the
    folder names). ``counts`` gives the number of questions per format, in
    the order they are asked (the study's 10 + 5 + 3 by default); the
    ``per_image`` format shows one image, real in half the questions. Images
    must share one size unless ``size`` resizes them all.
    """
    # lazy: these import torch, which stays out of the rater app (it imports this module)
    from echolib.data.frames import resize_gray
    from echolib.images import png_bytes

    out = Path(out)
    key_path = Path(key) if key is not None else default_key_path(out)
    _check_destinations(out, key_path)
    models = _model_sources(generated)
    counts = {get_format(f).name: int(n) for f, n in counts.items() if int(n) > 0}
    if not counts:
        raise ConfigError(f"counts: no questions requested ({dict(counts)}); give at least one format a count > 0")

    seed = secrets.randbits(63) if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    plan = _plan(counts, list(models), rng)
    n_real = sum(p["n_real"] for p in plan)
    n_gen: dict[str, int] = {m: 0 for m in models}
    for p in plan:
        if p["model"] is not None:
            n_gen[p["model"]] += p["n_images"] - p["n_real"]

    real_pool = _draw_real(Path(real), n_real, rng)
    gen_pools = {m: _draw(Path(src), n_gen[m], rng, m) for m, src in models.items()}

    names = _random_names(sum(p["n_images"] for p in plan), rng)
    images_dir = out / IMAGES_DIR
    rater_questions: list[RaterQuestion] = []
    key_questions: list[KeyQuestion] = []
    shape: tuple[int, int] | None = None
    for p in plan:
        sources = [("real", "real", real_pool.pop()) for _ in range(p["n_real"])]
        sources += [("generated", p["model"], gen_pools[p["model"]].pop()) for _ in range(p["n_images"] - p["n_real"])]
        order = _arrange(p["answer"], p["n_images"])  # position -> index into sources
        shown = []
        for pos in range(p["n_images"]):
            kind, model, (src, file, load) = sources[order[pos]]
            arr = load()
            if size is not None and arr.shape != (size, size):
                arr = resize_gray(arr, size)
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise DataError(
                    f"{src}: {file} is {arr.shape[1]}x{arr.shape[0]} but other images are {shape[1]}x{shape[0]}; "
                    "a size difference gives the answer away: pass size=N (--size N) to resize all images"
                )
            name = names.pop()
            atomic_write_bytes(images_dir / name, png_bytes(arr))
            shown.append(KeyImage(name=name, kind=kind, model=model, source=str(src), file=file))
        qid = f"q{len(rater_questions) + 1:03d}"
        rater_questions.append(RaterQuestion(qid, p["format"], tuple(i.name for i in shown)))
        key_questions.append(KeyQuestion(qid, p["format"], p["answer"], tuple(shown)))

    qid_hash = _questionnaire_id(rater_questions)
    questionnaire = Questionnaire(out, qid_hash, title, tuple(rater_questions))
    atomic_write_text(out / QUESTIONS_FILE, json.dumps(_questions_json(questionnaire), indent=1) + "\n")
    key_obj = Key(key_path, qid_hash, int(seed), tuple(key_questions))
    atomic_write_text(key_path, json.dumps(_key_json(key_obj), indent=1) + "\n")
    return questionnaire, key_obj


# -- build helpers -------------------------------------------------------------
def _check_destinations(out: Path, key_path: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out}: questionnaire folder exists and is not empty; choose a new folder")
    out_abs, key_abs = out.resolve(), key_path.resolve()
    if key_abs == out_abs or out_abs in key_abs.parents:
        raise ConfigError(f"key {key_path} lies inside the questionnaire folder {out}: raters would see it")
    if key_path.exists():
        raise ConfigError(f"{key_path}: a key already exists there; refusing to overwrite another test's key")


def _model_sources(generated: Mapping[str, str | Path] | Sequence[str | Path]) -> dict[str, Path]:
    if isinstance(generated, (str, Path)):
        generated = [generated]
    if isinstance(generated, Mapping):
        models = {str(k): Path(v) for k, v in generated.items()}
    else:
        models = {}
        for src in generated:
            name = Path(src).stem or "generated"
            base, i = name, 2
            while name in models:
                name, i = f"{base}-{i}", i + 1
            models[name] = Path(src)
    if not models:
        raise ConfigError("generated: give at least one folder of generated frames")
    if "real" in models:
        raise ConfigError("generated: 'real' is reserved for the real frames; rename that model")
    return models


def _plan(counts: Mapping[str, int], models: list[str], rng: np.random.Generator) -> list[dict]:
    """Per question: format, positions of its real images (balanced) and the model of its synthetic ones."""
    plan = []
    for fmt, n in counts.items():
        f = FORMATS[fmt]
        if f.n_real is None:
            real_flags = np.array([True] * (n // 2) + [False] * (n - n // 2))
            if n % 2:
                real_flags[-1] = bool(rng.integers(2))
            rng.shuffle(real_flags)
            answers: list[tuple[int, ...]] = [(0,) if flag else () for flag in real_flags]
        else:
            combos = list(itertools.combinations(range(f.n_images), f.n_real))
            combos = [combos[i] for i in rng.permutation(len(combos))]  # a remainder must not favour early ones
            answers = [combos[i % len(combos)] for i in range(n)]
            answers = [answers[i] for i in rng.permutation(n)]
        with_synthetic = [a for a in answers if len(a) < f.n_images]
        model_cycle = [models[i % len(models)] for i in rng.permutation(len(with_synthetic))]
        for a in answers:
            model = model_cycle.pop() if len(a) < f.n_images else None
            plan.append({"format": fmt, "answer": tuple(a), "n_images": f.n_images, "n_real": len(a), "model": model})
    return plan


def _arrange(answer: tuple[int, ...], n_images: int) -> list[int]:
    """Map positions to source indices: real sources (first ``len(answer)``) go to the answer's positions."""
    real_iter = iter(range(len(answer)))
    fake_iter = iter(range(len(answer), n_images))
    return [next(real_iter) if pos in answer else next(fake_iter) for pos in range(n_images)]


def _list(source: Path, what: str):
    from echolib.data.frames import frame_loaders  # lazy: imports torch, kept out of the rater app

    if not source.exists():
        raise DataError(f"{source}: no such folder of {what} frames")
    return frame_loaders(source)


def _draw_real(source: Path, n: int, rng: np.random.Generator) -> list:
    """``n`` distinct real frames, one per video until every video has given one."""
    if n == 0:
        return []
    loaders, infos = _list(source, "real")
    if len(loaders) < n:
        raise DataError(f"{source}: {len(loaders)} real frames, the questionnaire needs {n}")
    by_video: dict[str, list[int]] = {}
    for i, info in enumerate(infos):
        by_video.setdefault(info.video_id, []).append(i)
    videos = [by_video[v] for v in sorted(by_video)]
    for frames in videos:
        rng.shuffle(frames)
    order = rng.permutation(len(videos))
    chosen: list[int] = []
    for depth in itertools.count():
        for v in order:
            if depth < len(videos[v]) and len(chosen) < n:
                chosen.append(videos[v][depth])
        if len(chosen) == n:
            break
    picked = [(source, infos[i].name, loaders[i]) for i in chosen]
    return [picked[i] for i in rng.permutation(n)]


def _draw(source: Path, n: int, rng: np.random.Generator, model: str) -> list:
    if n == 0:
        return []
    loaders, infos = _list(source, f"generated ({model})")
    if len(loaders) < n:
        raise DataError(f"{source}: {len(loaders)} generated frames for model {model!r}, the questionnaire needs {n}")
    return [(source, infos[i].name, loaders[i]) for i in rng.choice(len(loaders), size=n, replace=False)]


def _random_names(n: int, rng: np.random.Generator) -> list[str]:
    names: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        name = rng.bytes(8).hex() + ".png"
        if name not in names:
            names.add(name)
            out.append(name)
    return out


def _questionnaire_id(questions: Sequence[RaterQuestion]) -> str:
    text = json.dumps([[q.id, q.format, list(q.images)] for q in questions], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _questions_json(q: Questionnaire) -> dict:
    return {
        "version": VERSION,
        "questionnaire": q.id,
        "title": q.title,
        "questions": [{"id": x.id, "format": x.format, "images": list(x.images)} for x in q.questions],
    }


def _key_json(k: Key) -> dict:
    return {
        "version": VERSION,
        "questionnaire": k.questionnaire,
        "seed": k.seed,
        "questions": [
            {
                "id": q.id,
                "format": q.format,
                "answer": list(q.answer),
                "images": [vars(i) for i in q.images],
            }
            for q in k.questions
        ],
    }


# -- loading ---------------------------------------------------------------------
def load_questionnaire(folder: str | Path) -> Questionnaire:
    """Read the rater side of a build, refusing a folder that holds any part of the key."""
    folder = Path(folder)
    path = folder / QUESTIONS_FILE
    if not path.is_file():
        raise ConfigError(f"{folder}: not a questionnaire folder (no {QUESTIONS_FILE})")
    if (folder / KEY_FILE).exists() or any(folder.glob("*.key.json")):
        raise ConfigError(f"{folder}: the answer key is inside the questionnaire folder; move it before raters start")
    data = _read_json(path)
    secret = _SECRET_FIELDS & (set(data) | {k for q in data.get("questions", []) for k in q})
    if secret:
        raise ConfigError(f"{path}: holds answer-key fields {sorted(secret)}; raters must never see them")
    try:
        questions = tuple(
            RaterQuestion(str(q["id"]), get_format(q["format"]).name, tuple(str(n) for n in q["images"]))
            for q in data["questions"]
        )
        qid, title = str(data["questionnaire"]), str(data.get("title", ""))
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: malformed questions file ({type(exc).__name__}: {exc})") from None
    for q in questions:
        if any(Path(name).name != name or name.startswith(".") for name in q.images):
            raise ConfigError(f"{path}: question {q.id}: image names must be plain file names, got {list(q.images)}")
        if len(q.images) != FORMATS[q.format].n_images:
            raise ConfigError(f"{path}: question {q.id} ({q.format}) lists {len(q.images)} images")
        for name in q.images:
            if not (folder / IMAGES_DIR / name).is_file():
                raise ConfigError(f"{path}: question {q.id}: image {IMAGES_DIR}/{name} is missing")
    if len({q.id for q in questions}) != len(questions):
        raise ConfigError(f"{path}: duplicate question ids")
    return Questionnaire(folder, qid, title, questions)


def load_key(path: str | Path) -> Key:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such key file (written by build_questionnaire next to the questionnaire)")
    data = _read_json(path)
    if "kind" in data:  # another kind of key, e.g. a two-set questionnaire's (echolib.turing.set_pairs)
        raise ConfigError(f"{path}: a {data['kind']} key, not a real-vs-synthetic one; the metric validation suite "
                          "reads two-set keys (python -m echolib metrics validate --human KEY --answers DIR)")
    try:
        questions = tuple(
            KeyQuestion(
                str(q["id"]),
                get_format(q["format"]).name,
                check_picks(q["format"], tuple(q["answer"]), f"{path}: question {q['id']}"),
                tuple(KeyImage(**i) for i in q["images"]),
            )
            for q in data["questions"]
        )
        return Key(path, str(data["questionnaire"]), int(data.get("seed", 0)), questions)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: malformed key file ({type(exc).__name__}: {exc})") from None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data
