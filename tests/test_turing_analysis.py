"""Turing-test analysis: the study's numbers from its CSV, and the statistics on known cases."""

from __future__ import annotations

import csv
import itertools
import json
import math

import numpy as np
import pytest
from conftest import EXPERT_CSV, need
from scipy.stats import binomtest

from echolib.cli import main
from echolib.errors import DataError
from echolib.turing.analysis import (
    Item,
    Responses,
    agreement,
    binomial_tests,
    confusion_image,
    confusion_position,
    fleiss_kappa,
    roc,
    score_test,
    summarize,
)
from echolib.turing.formats import chance_score, exact_chance, score
from echolib.turing.study import STUDY_FORMATS, load_study_csv


# -- the study ------------------------------------------------------------------------
def _study_by_hand(path):
    """The study's definitions written out directly on the raw cells (independent of echolib)."""
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if any(r)][1:]  # drop the legend
    key, experts = rows[0], rows[1:]
    acc, fool_picks, fool_total = [], [0] * 18, [0] * 18
    for row in experts:
        total = 0.0
        for q in range(18):
            truth, given = set(key[q].split("_")), row[q].split("_")
            wrong = sum(g not in truth for g in given)
            total += (len(given) - wrong) / len(given)
            fool_picks[q] += wrong
            fool_total[q] += len(given)
        acc.append(total / 18)
    return acc, [f / t for f, t in zip(fool_picks, fool_total)]


@pytest.mark.realdata
def test_study_csv_reproduces_the_study_numbers():
    path = need(EXPERT_CSV)
    resp = load_study_csv(path)
    s = summarize(resp)
    acc, fool = _study_by_hand(path)
    assert s["raters"] == ["S1", "S2", "S3", "S4", "S5"]
    np.testing.assert_allclose(s["accuracy"], acc, atol=1e-12)
    np.testing.assert_allclose(s["fooling_rate"], fool, atol=1e-12)
    # Specialist 1 by hand: 9/10 one-of-two, pairs 0.5+0.5+0.5+0+0, one-of-four 0/3 -> 10.5/18.
    assert s["accuracy"][0] == pytest.approx(10.5 / 18)
    assert s["accuracy_by_format"]["one_of_two"][0] == pytest.approx(0.9)
    assert s["accuracy_by_format"]["two_of_four"][0] == pytest.approx(0.3)
    # Exact fooling >= partial fooling, equal on single-pick questions.
    for fr, fe, fmt in zip(s["fooling_rate"], s["fooling_rate_exact"], STUDY_FORMATS):
        assert fe >= fr - 1e-12
        if fmt != "two_of_four":
            assert fe == pytest.approx(fr)
    # Every rater picks 23 images as real (10 + 2*5 + 3) out of 52 shown, 23 of which are real.
    cm = np.array(s["confusion_image"]["matrices"])
    assert cm.shape == (5, 2, 2)
    assert (cm[:, 0, :].sum(axis=1) == 23).all() and (cm[:, 1, :].sum(axis=1) == 29).all()
    assert (cm[:, :, 0].sum(axis=1) == 23).all()
    # The study's position matrix covers the 13 single-pick questions.
    pos = np.array(s["confusion_position"]["matrices"])
    assert s["confusion_position"]["labels"] == [0, 1, 2, 3] and (pos.sum(axis=(1, 2)) == 13).all()
    for k in s["kappa"].values():
        assert -1.0 <= k <= 1.0


@pytest.mark.realdata
def test_cli_analyze_study_json(capsys):
    path = need(EXPERT_CSV)
    assert main(["turing", "analyze", str(path), "--format", "study", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    acc, fool = _study_by_hand(path)
    np.testing.assert_allclose(data["accuracy"], acc, atol=1e-12)
    np.testing.assert_allclose(data["fooling_rate"], fool, atol=1e-12)
    assert len(data["fooling_rate"]) == 18


def test_cli_reports_bad_input_as_user_error(tmp_path, capsys):
    assert main(["turing", "analyze", str(tmp_path / "missing.csv"), "--json"]) == 2
    assert "missing.csv" in capsys.readouterr().err
    assert main(["turing", "analyze", str(tmp_path)]) == 2  # answers folder without --key
    assert "--key" in capsys.readouterr().err


def test_study_loader_rejects_bad_cells(tmp_path):
    good = ["0"] * 10 + ["0_1"] * 5 + ["2"] * 3
    bad = tmp_path / "bad.csv"
    repeated_pick = ["0"] * 10 + ["0_0"] + ["1_2"] * 4 + ["1"] * 3
    bad.write_text("DERECHA = 1,,IZQUIERDA = 0\n" + ",".join(good) + "\n" + ",".join(repeated_pick) + "\n")
    with pytest.raises(DataError, match=r"bad.csv.*question 10"):
        load_study_csv(bad)
    short = tmp_path / "short.csv"
    short.write_text(",".join(good) + "\n" + ",".join(good + ["1"]) + "\n")
    with pytest.raises(DataError, match="short.csv"):
        load_study_csv(short)
    fractional = tmp_path / "fractional.csv"
    fractional.write_text(",".join(good) + "\n" + ",".join(["1.5"] + good[1:]) + "\n")
    with pytest.raises(DataError, match=r"fractional.csv.*'1.5' is not a position"):  # was read as 1
        load_study_csv(fractional)
    ok = tmp_path / "ok.csv"
    ok.write_text(",".join(good) + "\n" + ",".join(good) + "\n")
    assert summarize(load_study_csv(ok))["accuracy"] == [1.0]


# -- statistics on known cases -----------------------------------------------------------
def test_fleiss_kappa_matches_fleiss_worked_example():
    # The worked example on Wikipedia's "Fleiss' kappa" page (14 raters, 10 subjects, 5 categories): 0.210.
    table = np.array([
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ])
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    with pytest.raises(DataError):
        fleiss_kappa(np.array([[2, 1], [1, 1]]))


def _fleiss_by_hand(counts):
    """Fleiss (1971), eqs. 2-5, written out: mean per-subject agreement against the chance agreement."""
    counts = np.asarray(counts, dtype=float)
    n = counts[0].sum()
    p_bar = np.mean([(np.sum(row**2) - n) / (n * (n - 1)) for row in counts])
    p_e = np.sum((counts.sum(axis=0) / counts.sum()) ** 2)
    return (p_bar - p_e) / (1 - p_e)


def test_fleiss_kappa_equals_the_formula_on_random_tables():
    """Random tables of 1-30 subjects, 2-7 raters and 2-5 categories: float64 sums in another order, so 1e-12."""
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        raters, k = int(rng.integers(2, 8)), int(rng.integers(2, 6))
        table = np.array([rng.multinomial(raters, rng.dirichlet(np.ones(k))) for _ in range(int(rng.integers(1, 31)))])
        if (table.sum(axis=0) == table.sum()).any():  # every rating in one category: undefined
            assert math.isnan(fleiss_kappa(table))
            continue
        assert fleiss_kappa(table) == pytest.approx(_fleiss_by_hand(table), abs=1e-12)
        checked += 1
    assert checked > 250


@pytest.mark.realdata
def test_agreement_on_the_study_keeps_its_values():
    """The kappas the Turing chapter prints for the study's five raters, to float64 rounding."""
    kappa = agreement(load_study_csv(need(EXPERT_CSV)))
    expected = {"one_of_two": 0.12683823529411722, "two_of_four": -0.05485232067510545,
                "one_of_four": 0.12337662337662345, "images": 0.16581709145427298}
    assert kappa.keys() == expected.keys()
    for name, value in expected.items():
        assert kappa[name] == pytest.approx(value, abs=1e-12), name


def _responses(items, picks, confidence=()):
    raters = tuple(f"r{i}" for i in range(len(picks)))
    return Responses(items=tuple(items), raters=raters, picks=tuple(tuple(p) for p in picks), confidence=confidence)


def test_chance_levels_by_enumeration():
    for fmt, n, k in (("one_of_two", 2, 1), ("two_of_four", 4, 2), ("one_of_four", 4, 1)):
        key = tuple(range(k))
        answers = list(itertools.combinations(range(n), k))
        mean = sum(score(fmt, key, a) for a in answers) / len(answers)
        assert chance_score(fmt) == pytest.approx(mean)
        assert exact_chance(fmt) == pytest.approx(1 / len(answers))


def test_score_test_equals_binomial_test_on_two_choice_questions():
    items = [Item(f"q{i}", "one_of_two", (i % 2,)) for i in range(10)]
    picks = [tuple((i % 2,) if i < 9 else (1 - i % 2,) for i in range(10))]  # 9 of 10 right
    resp = _responses(items, picks)
    assert score_test(resp)[0]["pvalue"] == pytest.approx(binomtest(9, 10, 0.5).pvalue)
    b = binomial_tests(resp)[0]["one_of_two"]
    assert (b["k"], b["n"]) == (9, 10) and b["ci_low"] < 0.9 < b["ci_high"]


def test_score_test_mixed_formats_by_monte_carlo():
    items = [Item("a", "one_of_two", (0,)), Item("b", "two_of_four", (0, 1)), Item("c", "one_of_four", (2,))] * 2
    resp = _responses(items, [[(0,), (0, 1), (2,), (0,), (0, 2), (1,)]])  # score 1+1+1+1+0.5+0 = 4.5
    assert score_test(resp)[0]["score"] == pytest.approx(4.5)
    rng = np.random.default_rng(0)
    n = 20000
    sims = np.zeros(n)
    for it in items:
        if it.format == "one_of_two":
            sims += rng.integers(0, 2, n) == 0
        elif it.format == "one_of_four":
            sims += rng.integers(0, 4, n) == 2
        else:
            pairs = list(itertools.combinations(range(4), 2))
            sims += np.array([len(set(pairs[j]) & {0, 1}) / 2 for j in rng.integers(0, 6, n)])
    assert score_test(resp)[0]["expected"] == pytest.approx(sims.mean(), abs=0.03)
    assert np.mean(sims >= 4.5) <= score_test(resp)[0]["pvalue"] + 0.01


def test_confusions_and_agreement_on_a_small_case():
    items = [Item("a", "one_of_two", (0,)), Item("b", "two_of_four", (1, 3)), Item("c", "one_of_four", (2,))]
    picks = [[(0,), (1, 3), (2,)], [(1,), (0, 3), (2,)], [(0,), (1, 3), None]]
    resp = _responses(items, picks)
    cm = confusion_image(resp)
    assert cm[0].tolist() == [[4, 0], [0, 6]]  # perfect rater: 4 real images, 6 synthetic
    assert cm[1].tolist() == [[2, 2], [2, 4]]
    assert cm[2].sum() == 6  # unanswered question skipped
    labels, pos = confusion_position(resp)
    assert labels == [0, 1, 2, 3] and pos[1, 0, 1] == 1 and pos[1, 2, 2] == 1
    kappa = agreement(resp)  # only questions answered by all three raters count
    assert set(kappa) == {"one_of_two", "two_of_four", "one_of_four", "images"}
    assert math.isnan(kappa["one_of_four"])  # no question answered by everyone
    s = summarize(resp)
    assert s["answered"] == [3, 3, 2]
    assert s["fooling_rate"][2] == 0.0 and s["fooling_rate"][0] == pytest.approx(1 / 3)
    assert s["fooling_rate"][1] == pytest.approx(1 / 6) and s["fooling_rate_exact"][1] == pytest.approx(1 / 3)


def test_confusion_figures_keep_their_counts_readable():
    import matplotlib

    matplotlib.use("Agg")
    from echolib.turing.plots import plot_image_confusions, plot_position_confusions

    items = [Item("a", "one_of_two", (0,)), Item("b", "one_of_four", (2,))]
    s = summarize(_responses(items, [[(0,), (2,)]] * 5))
    image, position = plot_image_confusions(s), plot_position_confusions(s)
    assert [len(image.axes), len(position.axes)] == [5, 6]  # 2x2 matrices in one row; 4x4 ones 3 + 2 (+1 blank)
    assert image.axes[0].get_gridspec().ncols == 5 and position.axes[0].get_gridspec().ncols == 3
    counts = [t.get_text() for t in position.axes[0].texts]
    assert len(counts) == 16 and counts[0].startswith("1\n")  # the real image at position 0, picked there


def test_roc_from_confidence():
    items = [Item(f"q{i}", "per_image", (0,) if i < 4 else ()) for i in range(8)]
    right = [(0,)] * 4 + [()] * 4
    conf_good = (5, 4, 2, 1, 1, 2, 4, 5)
    resp = _responses(items, [right, [(0,) if p == () else () for p in right]], confidence=(conf_good, conf_good))
    curves = roc(resp)
    assert curves[0]["auc"] == pytest.approx(1.0)
    assert curves[1]["auc"] == pytest.approx(0.0)
    assert curves[2]["rater"] == "all" and curves[2]["n"] == 16
    assert summarize(resp)["auc"][0]["auc"] == pytest.approx(1.0)
