"""Simulated raters that click through the real app: for demos and tests.

A simulated rater answers through :class:`echolib.turing.app.TuringApp`'s
widgets, so its answers travel the same path (selection logic, validation,
fsync'ed append) as a cardiologist's. Two kinds:

* :func:`skilled_chooser` knows the key and a skill level: tests use it to
  check that the analysis recovers a known accuracy;
* :func:`sharpness_chooser` sees only what a rater sees (the images) and
  calls the sharpest images real: a crude observer that a blurry generator
  cannot fool and a faithful one can, which is what the chapter's demo shows.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from echolib.images import read_gray
from echolib.turing.formats import CONFIDENCE_LEVELS, FORMATS
from echolib.turing.questionnaire import Key, Questionnaire, RaterQuestion

Chooser = Callable[[RaterQuestion], tuple[tuple[int, ...], int | None]]


def skilled_chooser(key: Key, skill: float, seed: int = 0) -> Chooser:
    """A rater who recognises the real images with probability ``skill`` and guesses otherwise.

    Guesses are uniform over the valid answers; per-image verdicts come with a
    confidence of 4-5 when recognised and 1-3 when guessed, which is what makes
    the confidence ratings informative (AUC above the accuracy's 0.5 + skill/2).
    """
    if not 0.0 <= skill <= 1.0:
        raise ValueError(f"skill must lie in [0, 1], got {skill}")
    answers = {q.id: q.answer for q in key.questions}
    rng = np.random.default_rng(seed)

    def choose(q: RaterQuestion) -> tuple[tuple[int, ...], int | None]:
        fmt = FORMATS[q.format]
        knows = rng.random() < skill
        if fmt.n_real is None:
            verdict = answers[q.id] if knows else ((0,) if rng.random() < 0.5 else ())
            confidence = int(rng.integers(4, 6)) if knows else int(rng.integers(1, 4))
            return tuple(verdict), confidence
        if knows:
            return tuple(answers[q.id]), None
        return tuple(sorted(int(i) for i in rng.choice(fmt.n_images, fmt.n_real, replace=False))), None

    return choose


def sharpness(image: np.ndarray) -> float:
    """Mean absolute Laplacian: high for crisp speckle, low for blurred images."""
    x = image.astype(np.float64)
    lap = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    return float(np.mean(np.abs(lap)))


def sharpness_chooser(questionnaire: Questionnaire, noise: float = 0.05, seed: int = 0) -> Chooser:
    """An observer who calls the sharpest images real, with multiplicative perception noise.

    Per-image verdicts compare the (noisy) sharpness with the median over the
    whole questionnaire; the confidence grows with the distance from it, in
    quintiles of that distance.
    """
    rng = np.random.default_rng(seed)
    names = sorted({n for q in questionnaire.questions for n in q.images})
    value = {n: sharpness(read_gray(io.BytesIO(questionnaire.image_bytes(n)), name=n)) for n in names}
    logs = np.log(np.array(list(value.values())) + 1e-9)
    centre = float(np.median(logs))
    edges = np.quantile(np.abs(logs - centre), [0.2, 0.4, 0.6, 0.8])

    def choose(q: RaterQuestion) -> tuple[tuple[int, ...], int | None]:
        seen = np.log(np.array([value[n] for n in q.images]) + 1e-9) + rng.normal(0, noise, len(q.images))
        fmt = FORMATS[q.format]
        if fmt.n_real is None:
            confidence = int(np.searchsorted(edges, abs(seen[0] - centre))) + 1
            return ((0,) if seen[0] > centre else ()), confidence
        return tuple(sorted(int(i) for i in np.argsort(-seen)[: fmt.n_real])), None

    return choose


def answer_with_app(app, choose: Chooser, limit: int | None = None) -> int:
    """Click through ``app`` from its current question, ``limit`` answers at most; returns how many were given."""
    given = 0
    while app.current is not None and (limit is None or given < limit):
        picks, confidence = choose(app.current)
        select(app, picks, confidence)
        before = app.index
        app.next_button.click()
        if app.index == before:
            raise RuntimeError(f"the app did not accept answer {picks} to {app.current.id}: {app.message.value}")
        given += 1
    return given


def select(app, picks: tuple[int, ...], confidence: int | None = None) -> None:
    """Set the app's controls the way a rater's clicks would."""
    q = app.current
    if FORMATS[q.format].n_real is None:
        app.verdict.value = "real" if tuple(picks) == (0,) else "synthetic"
        app.confidence.value = confidence if confidence in CONFIDENCE_LEVELS else None
        return
    for i, b in enumerate(app.pick_buttons):
        if b.value and i not in picks:
            b.value = False
    for i in picks:
        app.pick_buttons[i].value = True
