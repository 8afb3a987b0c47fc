"""Analysis of a visual Turing test: scores, fooling rates, agreement, tests, ROC.

Every loader (the study's CSV in :mod:`echolib.turing.study`, our answer files
in :mod:`echolib.turing.answers`) produces one :class:`Responses`: the
questions with their keys and, for each rater and question, the positions the
rater picked as real. Everything below is a pure function of it, so the
study's numbers and a new test's numbers come from the same code.

Definitions (the study's where it had one):

* **score** of an answer: share of its picks that are real images
  (:func:`echolib.turing.formats.score`); a two-of-four answer with one real
  image scores 0.5.
* **accuracy** of a rater: mean score over the questions they answered.
* **fooling rate** of a question: share of the raters' picks that are not real
  images, ``1 - mean score`` (the study counted each of the two picks of a
  two-of-four answer separately, which is the same number).
  ``fooling_rate_exact`` counts a rater as fooled whenever the answer is not
  exactly the key (a half-right pair counts as fooled).
* **confusion (image)**: every image shown is a trial; rows the truth (real,
  synthetic), columns the rater's verdict (picked as real, not picked).
* **confusion (position)**: the study's matrix, single-pick questions only;
  rows the position of the real image, columns the position picked. It shows
  side bias, not discrimination.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np

from echolib.errors import DataError
from echolib.turing.formats import FORMATS, chance_score, exact_chance, get_format, score

Picks = tuple[int, ...]


@dataclass(frozen=True)
class Item:
    """A question as the analysis sees it: its format and the positions of its real images."""

    id: str
    format: str
    key: Picks
    models: tuple[str, ...] = ()  # source of each image ("real" or a model name); empty when unknown


@dataclass(frozen=True)
class Responses:
    """All raters' answers to one questionnaire; ``None`` where a rater has not answered."""

    items: tuple[Item, ...]
    raters: tuple[str, ...]
    picks: tuple[tuple[Picks | None, ...], ...]  # [rater][question]
    confidence: tuple[tuple[int | None, ...], ...] = ()  # [rater][question], per-image mode only
    seconds: tuple[tuple[float | None, ...], ...] = ()  # [rater][question], time to answer
    source: str = ""  # where the answers came from, for reports
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.picks) != len(self.raters):
            raise DataError(f"{self.source}: {len(self.picks)} answer rows for {len(self.raters)} raters")
        for r, row in zip(self.raters, self.picks):
            if len(row) != len(self.items):
                raise DataError(f"{self.source}: rater {r} has {len(row)} answers for {len(self.items)} questions")

    @property
    def formats(self) -> list[str]:
        return [it.format for it in self.items]


# -- scores ------------------------------------------------------------------
def score_matrix(resp: Responses) -> np.ndarray:
    """``[raters, questions]`` scores in [0, 1]; NaN where unanswered."""
    out = np.full((len(resp.raters), len(resp.items)), np.nan)
    for r, row in enumerate(resp.picks):
        for q, (item, picks) in enumerate(zip(resp.items, row)):
            if picks is not None:
                out[r, q] = score(item.format, item.key, picks)
    return out


def accuracy(resp: Responses, formats: Sequence[str] | None = None) -> np.ndarray:
    """Per-rater mean score (the study's accuracy), optionally over some formats only."""
    s = score_matrix(resp)
    if formats is not None:
        s = s[:, [i for i, it in enumerate(resp.items) if it.format in formats]]
    return _nanmean(s, axis=1)


def fooling_rate(resp: Responses) -> np.ndarray:
    """Per-question share of picks that are not real images (the study's definition)."""
    return 1.0 - _nanmean(score_matrix(resp), axis=0)


def fooling_rate_exact(resp: Responses) -> np.ndarray:
    """Per-question share of raters whose answer is not exactly the key."""
    exact = np.full((len(resp.raters), len(resp.items)), np.nan)
    for r, row in enumerate(resp.picks):
        for q, (item, picks) in enumerate(zip(resp.items, row)):
            if picks is not None:
                exact[r, q] = float(tuple(picks) != tuple(item.key))
    return _nanmean(exact, axis=0)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    n = np.sum(~np.isnan(a), axis=axis)
    total = np.nansum(a, axis=axis)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


# -- confusion matrices --------------------------------------------------------


def confusion_image(resp: Responses) -> np.ndarray:
    """``[raters, 2, 2]`` counts: rows truth (real, synthetic), columns verdict (picked as real, not)."""
    cm = np.zeros((len(resp.raters), 2, 2), dtype=int)
    for r, row in enumerate(resp.picks):
        for item, picks in zip(resp.items, row):
            if picks is None:
                continue
            for pos in range(get_format(item.format).n_images):
                cm[r, int(pos not in item.key), int(pos not in picks)] += 1
    return cm


def confusion_position(resp: Responses) -> tuple[list[int], np.ndarray]:
    """The study's matrix: single-pick questions, rows position of the real image, columns position picked."""
    single = [q for q, it in enumerate(resp.items) if FORMATS[it.format].n_real == 1]
    if not single:
        return [], np.zeros((len(resp.raters), 0, 0), dtype=int)
    size = max(FORMATS[resp.items[q].format].n_images for q in single)
    cm = np.zeros((len(resp.raters), size, size), dtype=int)
    for r, row in enumerate(resp.picks):
        for q in single:
            picked = row[q]
            if picked is not None:
                cm[r, resp.items[q].key[0], picked[0]] += 1
    return list(range(size)), cm


# -- agreement -----------------------------------------------------------------
def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of an ``[subjects, categories]`` table of rater counts (``statsmodels``).

    With ``n`` raters per subject, ``P_i = (sum_j n_ij^2 - n) / (n (n - 1))``
    is the agreement on subject ``i``, ``p_j`` the share of all ratings in
    category ``j``; ``kappa = (mean P_i - sum_j p_j^2) / (1 - sum_j p_j^2)``.
    NaN when undefined (no subjects, or every rating in one category); an error
    when subjects have different numbers of ratings or fewer than two.
    """
    # lazy: statsmodels would add seconds to the start of the rater app, which imports this module
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return math.nan
    n = counts.sum(axis=1)
    if not np.allclose(n, n[0]) or n[0] < 2:
        raise DataError("fleiss_kappa needs the same number (>= 2) of ratings for every subject")
    p_j = counts.sum(axis=0) / counts.sum()
    if float(np.sum(p_j**2)) >= 1.0 - 1e-12:  # statsmodels would divide by zero
        return math.nan
    return float(statsmodels_fleiss_kappa(counts, method="fleiss"))


def agreement(resp: Responses) -> dict[str, float]:
    """Fleiss' kappa over questions answered by every rater: per format, and per image over all formats.

    Per format, the subjects are the questions and the categories the possible
    answers, so two raters agree when they picked the same images. ``images``
    pools every format: each image shown is a subject rated "picked as real"
    or "not picked". Pooling answers of different formats as categories would
    inflate kappa (their categories never coincide, which shrinks the chance
    term), so the pooled value is taken per image instead.
    """
    answers = {q: [p for row in resp.picks if (p := row[q]) is not None] for q in range(len(resp.items))}
    full = {q: picks for q, picks in answers.items() if len(picks) == len(resp.picks)}  # answered by every rater
    out: dict[str, float] = {}
    if len(resp.raters) < 2:
        return {f: math.nan for f in [*dict.fromkeys(resp.formats), "images"]}
    for fmt in dict.fromkeys(resp.formats):
        qs = [q for q in full if resp.items[q].format == fmt]
        cats = sorted({picks for q in qs for picks in full[q]})
        table = np.array([[sum(picks == c for picks in full[q]) for c in cats] for q in qs], dtype=float)
        out[fmt] = fleiss_kappa(table) if qs else math.nan
    image_rows = [
        [sum(pos in picks for picks in full[q]), sum(pos not in picks for picks in full[q])]
        for q in full
        for pos in range(FORMATS[resp.items[q].format].n_images)
    ]
    out["images"] = fleiss_kappa(np.array(image_rows, dtype=float)) if image_rows else math.nan
    return out


# -- tests against chance ---------------------------------------------------------
def binomial_tests(resp: Responses, confidence_level: float = 0.95) -> list[dict[str, dict[str, float]]]:
    """Per rater and format: two-sided exact binomial test of the rater's decisions against chance.

    A decision is one pick: single-pick questions give one per question
    (chance 1/2 or 1/4), two-of-four questions two (chance 1/2, the expected
    partial-credit score; the two picks of one answer are negatively dependent,
    which makes the binomial test conservative), per-image verdicts one
    (chance 1/2). The interval is Clopper-Pearson's.
    """
    # lazy: scipy.stats would add seconds to the start of the rater app, which imports this module
    from scipy.stats import binomtest

    out = []
    for row in resp.picks:
        per: dict[str, dict[str, float]] = {}
        for fmt in dict.fromkeys(resp.formats):
            k = n = 0
            for item, picks in zip(resp.items, row):
                if item.format != fmt or picks is None:
                    continue
                f = FORMATS[fmt]
                w = f.n_real or 1
                k += round(score(fmt, item.key, picks) * w)
                n += w
            if n == 0:
                continue
            p0 = chance_score(fmt)
            t = binomtest(k, n, p0)
            ci = t.proportion_ci(confidence_level, method="exact")
            per[fmt] = {"k": k, "n": n, "accuracy": k / n, "chance": p0, "pvalue": float(t.pvalue),
                        "ci_low": float(ci.low), "ci_high": float(ci.high)}
        out.append(per)
    return out


def _null_pmf(fmt: str) -> dict[float, float]:
    """Distribution of one question's score under uniformly random picking."""
    f = FORMATS[fmt]
    if f.n_real is None:
        return {0.0: 0.5, 1.0: 0.5}
    total = math.comb(f.n_images, f.n_real)
    return {
        m / f.n_real: math.comb(f.n_real, m) * math.comb(f.n_images - f.n_real, f.n_real - m) / total
        for m in range(f.n_real + 1)
        if f.n_images - f.n_real >= f.n_real - m
    }


def score_test(resp: Responses) -> list[dict[str, float]]:
    """Exact two-sided test of each rater's total score against random picking, all formats at once.

    The null distribution of the total is the convolution of the questions'
    score distributions (:func:`_null_pmf`); the p-value sums the
    probabilities of totals no more likely than the observed one (as
    ``scipy.stats.binomtest`` does), so mixed questionnaires like the study's
    get one test per rater instead of three tiny ones.
    """
    s = score_matrix(resp)
    out = []
    for r in range(len(resp.raters)):
        answered = [q for q in range(len(resp.items)) if not np.isnan(s[r, q])]
        pmfs = [_null_pmf(resp.items[q].format) for q in answered]
        dist = reduce(_convolve, pmfs, {0.0: 1.0})
        total = float(np.sum(s[r, answered]))
        p_obs = dist.get(round(total, 9), 0.0)
        pvalue = sum(p for v, p in dist.items() if p <= p_obs * (1 + 1e-7))
        expected = sum(v * p for v, p in dist.items())
        out.append({"score": total, "n": len(answered), "expected": expected, "pvalue": min(1.0, pvalue)})
    return out


def _convolve(a: dict[float, float], b: dict[float, float]) -> dict[float, float]:
    out: defaultdict[float, float] = defaultdict(float)
    for va, pa in a.items():
        for vb, pb in b.items():
            out[round(va + vb, 9)] += pa * pb
    return dict(out)


# -- per-image mode: ROC --------------------------------------------------------------
def belief_scores(resp: Responses, rater: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image questions of one rater: truth (1 real) and belief ``+c`` (real, confidence c) or ``-c``."""
    y, b = [], []
    for q, item in enumerate(resp.items):
        picks = resp.picks[rater][q]
        if item.format != "per_image" or picks is None:
            continue
        conf = resp.confidence[rater][q] if resp.confidence else None
        c = conf if conf is not None else 1
        y.append(int(item.key == (0,)))
        b.append(c if picks == (0,) else -c)
    return np.asarray(y, dtype=int), np.asarray(b, dtype=float)


def roc(resp: Responses) -> list[dict[str, Any]]:
    """Per rater and pooled (last entry, rater ``"all"``): ROC curve and AUC from the confidence ratings.

    An AUC of 0.5 means the rater's beliefs do not separate real from
    synthetic images; 1.0 that every real image got a higher belief than every
    synthetic one. Undefined (NaN) when a rater saw only one class.
    """
    curves = [(name, *belief_scores(resp, r)) for r, name in enumerate(resp.raters)]
    if curves:
        curves.append(("all", np.concatenate([c[1] for c in curves]), np.concatenate([c[2] for c in curves])))
    return [_roc_entry(name, y, b) for name, y, b in curves]


def _roc_entry(name: str, y: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    # lazy: sklearn would add seconds to the start of the rater app, which imports this module
    from sklearn.metrics import roc_auc_score, roc_curve

    if len(set(y.tolist())) < 2:
        return {"rater": name, "n": len(y), "auc": math.nan, "fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(y, b)
    return {"rater": name, "n": len(y), "auc": float(roc_auc_score(y, b)), "fpr": fpr.tolist(), "tpr": tpr.tolist()}


# -- per model -------------------------------------------------------------------------
def question_model(item: Item) -> str | None:
    """The model whose synthetic images a question shows; ``"real"`` if it shows none; None when unknown."""
    synthetic = {m for m in item.models if m != "real"}
    if len(synthetic) == 1:
        return synthetic.pop()
    return "real" if item.models and not synthetic else None


def fooling_by_model(resp: Responses) -> dict[str, float]:
    """Mean fooling rate of the questions whose synthetic images come from each model."""
    fr = fooling_rate(resp)
    groups: dict[str, list[float]] = {}
    for q, item in enumerate(resp.items):
        model = question_model(item)
        if model not in (None, "real") and not np.isnan(fr[q]):
            groups.setdefault(model, []).append(float(fr[q]))
    return {m: float(np.mean(v)) for m, v in sorted(groups.items())}


# -- everything, as JSON ------------------------------------------------------------------
def summarize(resp: Responses) -> dict[str, Any]:
    """Every number of the analysis as one JSON-ready dict (NaN becomes ``None``)."""
    labels, pos = confusion_position(resp)
    present = list(dict.fromkeys(resp.formats))
    out: dict[str, Any] = {
        "source": resp.source,
        "raters": list(resp.raters),
        "questions": [it.id for it in resp.items],
        "formats": resp.formats,
        "accuracy": accuracy(resp).tolist(),
        "accuracy_by_format": {f: accuracy(resp, [f]).tolist() for f in present},
        "chance": {f: chance_score(f) for f in present},
        "exact_chance": {f: exact_chance(f) for f in present},
        "fooling_rate": fooling_rate(resp).tolist(),
        "fooling_rate_exact": fooling_rate_exact(resp).tolist(),
        "mean_fooling_rate": float(np.nanmean(fooling_rate(resp))) if resp.items else None,
        "kappa": agreement(resp),
        "binomial": binomial_tests(resp),
        "score_test": score_test(resp),
        "confusion_image": {"rows": "truth (real, synthetic)", "columns": "verdict (picked as real, not picked)",
                            "matrices": confusion_image(resp).tolist()},
        "confusion_position": {"labels": labels, "rows": "position of the real image",
                               "columns": "position picked", "matrices": pos.tolist()},
        "answered": [sum(p is not None for p in row) for row in resp.picks],
    }
    if "per_image" in present:
        out["auc"] = [{"rater": e["rater"], "n": e["n"], "auc": e["auc"]} for e in roc(resp)]
    if any(it.models for it in resp.items):
        out["fooling_by_model"] = fooling_by_model(resp)
        out["question_models"] = [question_model(it) for it in resp.items]
    if any(any(s is not None for s in row) for row in resp.seconds):
        out["median_seconds"] = [float(np.median([s for s in row if s is not None])) if any(
            s is not None for s in row) else None for row in resp.seconds]
    return _jsonable(out)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x
