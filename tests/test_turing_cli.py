"""End to end through the command line: build, answer in the app, analyse our answer files."""

from __future__ import annotations

import json

import pytest
from test_turing_questionnaire import make_sources

from echolib.cli import main
from echolib.turing.app import TuringApp
from echolib.turing.questionnaire import load_key
from echolib.turing.simulate import answer_with_app, skilled_chooser


def test_build_answer_analyze(tmp_path, capsys):
    real, gens = make_sources(tmp_path, n_videos=30)
    gen_args = [f"{name}={folder}" for name, folder in gens.items()]
    assert main(["turing", "build", "--real", str(real), "--generated", *gen_args, "--out", str(tmp_path / "q"),
                 "--seed", "2", "--per-image", "10"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["questions"] == 10 + 5 + 3 + 10
    key = load_key(built["key"])
    # An oracle, a rater who never recognises anything, and a rater who stops halfway.
    for rater, skill, limit in (("oracle", 1.0, None), ("guesser", 0.0, None), ("halfway", 1.0, 9)):
        app = TuringApp(tmp_path / "q", tmp_path / "answers", rater=rater)
        answer_with_app(app, skilled_chooser(key, skill, seed=4), limit=limit)
        app.close()
    assert main(["turing", "analyze", str(tmp_path / "answers"), "--key", built["key"], "--json",
                 "--figures", str(tmp_path / "fig")]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["raters"] == ["guesser", "halfway", "oracle"]
    assert s["answered"] == [28, 9, 28]
    assert s["accuracy"][2] == 1.0 and s["accuracy"][1] == 1.0
    assert s["accuracy"][0] < 0.8  # 28 questions guessed: far from perfect
    assert s["score_test"][2]["pvalue"] < 1e-6
    assert s["auc"][2]["auc"] == 1.0
    assert set(s["fooling_by_model"]) == set(gens)
    assert len(s["fooling_rate"]) == 28 and all(0.0 <= f <= 1.0 for f in s["fooling_rate"])
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == sorted(
        f"{n}.png" for n in ("accuracy", "fooling_rate", "accuracy_ci", "kappa", "confusion_image",
                             "confusion_position"))


def test_build_refuses_unnamed_duplicates(tmp_path, capsys):
    real, gens = make_sources(tmp_path)
    folder = str(next(iter(gens.values())))
    assert main(["turing", "build", "--real", str(real), "--generated", f"a={folder}", f"a={folder}",
                 "--out", str(tmp_path / "q")]) == 2
    assert "distinct" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--one-of-two", "--per-image"])
def test_build_refuses_negative_counts(tmp_path, capsys, flag):
    real, gens = make_sources(tmp_path, n_videos=2, frames=1, n_gen=1)
    assert main(["turing", "build", "--real", str(real), "--generated", *map(str, gens.values()),
                 "--out", str(tmp_path / "q"), flag, "-1"]) == 2
    assert ">= 0" in capsys.readouterr().err
