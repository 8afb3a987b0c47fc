"""The question formats of a visual Turing test, in one table.

Every format is "select the images you believe are real": a forced choice picks
exactly ``n_real`` of ``n_images`` images, and the per-image format picks its
single image (verdict "real") or nothing (verdict "synthetic") and adds a
confidence from 1 to 5. Writing all answers as the tuple of picked positions
lets one scoring rule, one fooling rate and one confusion matrix serve every
format, including the study's three.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

from echolib.errors import DataError


@dataclass(frozen=True)
class Format:
    name: str  # identifier used in questions.json, key.json and answer files
    n_images: int  # images shown side by side
    n_real: int | None  # images the rater must pick; None: free verdict (per-image mode)
    prompt: str  # what the rater reads
    label: str  # short name for tables and figures


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("one_of_two", 2, 1, "One of these two echocardiograms is real. Select the real one.", "1 of 2"),
        Format("two_of_four", 4, 2, "Two of these four echocardiograms are real. Select the two real ones.", "2 of 4"),
        Format("one_of_four", 4, 1, "One of these four echocardiograms is real. Select the real one.", "1 of 4"),
        Format("per_image", 1, None, "Is this echocardiogram real or synthetic, and how sure are you?", "per image"),
        # the metric validation suite's human judgments (echolib.turing.set_pairs): no image is "real" here,
        # the pick is the grid that looks more like real echoes
        Format("set_of_two", 2, 1, "Which of these two grids looks more like real echocardiograms? Select it.",
               "better of 2 grids"),
    )
}

CONFIDENCE_LEVELS = (1, 2, 3, 4, 5)


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise DataError(f"unknown question format {name!r}; expected one of {sorted(FORMATS)}") from None


def chance_score(fmt: str) -> float:
    """Expected score of a rater who picks uniformly at random.

    With partial credit (share of picks that are real) every forced choice has
    expectation ``n_real / n_images``: 1/2, 1/2 and 1/4 for the study's formats.
    A per-image verdict given independently of the image scores 1/2 on a
    questionnaire with as many real images as synthetic ones.
    """
    f = get_format(fmt)
    return 0.5 if f.n_real is None else f.n_real / f.n_images


def exact_chance(fmt: str) -> float:
    """Probability that a random forced choice equals the key exactly (1/2, 1/6, 1/4)."""
    f = get_format(fmt)
    return 0.5 if f.n_real is None else 1.0 / comb(f.n_images, f.n_real)


def check_picks(fmt: str, picks: tuple[int, ...], where: str) -> tuple[int, ...]:
    """Canonical (sorted, distinct, in range, right count) picks, or a DataError naming ``where``."""
    f = get_format(fmt)
    out = tuple(sorted(int(p) for p in picks))
    if len(set(out)) != len(out) or any(p < 0 or p >= f.n_images for p in out):
        raise DataError(f"{where}: picks {list(picks)} are not distinct positions in 0..{f.n_images - 1}")
    expected = f.n_real if f.n_real is not None else None
    if expected is not None and len(out) != expected:
        raise DataError(f"{where}: format {fmt} needs {expected} pick(s), got {list(picks)}")
    if expected is None and len(out) > 1:
        raise DataError(f"{where}: per-image answers pick at most one image, got {list(picks)}")
    return out


def score(fmt: str, key: tuple[int, ...], picks: tuple[int, ...]) -> float:
    """Share of the rater's decisions that are right; the study's partial credit.

    Forced choice: ``|picks ∩ key| / n_real`` (1 or 0 for single picks, 0.5 when
    one of two picks is real). Per image: 1 when the verdict matches the truth.
    """
    f = get_format(fmt)
    if f.n_real is None:
        return float(tuple(picks) == tuple(key))
    return len(set(picks) & set(key)) / f.n_real
