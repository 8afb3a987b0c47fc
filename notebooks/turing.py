# ---
# jupyter:
#   jupytext:
#     text_representation: {extension: .py, format_name: percent}
#   kernelspec: {display_name: Python 3, language: python, name: python3}
# ---

# %% [markdown]
# # The visual Turing test
#
# Distribution metrics such as FID say how far the generated images lie from the
# real ones in some feature space; they do not say whether a cardiologist would
# accept a synthetic echocardiogram as real. The reference study therefore ran a
# *visual Turing test*: five cardiology specialists answered 18 questions, each
# showing real and synthetic apical four-chamber frames side by side, and had to
# point at the real ones. This chapter
#
# 1. defines the scores, the statistics and the figures used to analyse such a test;
# 2. regenerates the study's results from its answer sheet, and adds what its
#    scripts did not compute (tests against chance, agreement between raters);
# 3. shows how to run a new test on one's own models with `echolib.turing`: a
#    blinded questionnaire, a rater app for JupyterLab, and the same analysis;
# 4. runs a small demonstration end to end with simulated observers.

# %% tags=["remove-cell"]
# Setup for a fresh kernel (Colab, a Python without echolib): installs echolib from the checkout this
# notebook sits in, or from ECHOLIB_SOURCE, a checkout's path or a pip URL of this repository.
ECHOLIB_SOURCE = ""
import importlib.util, os, subprocess, sys
from pathlib import Path

if importlib.util.find_spec("echolib") is None:
    here = [Path.cwd(), *Path.cwd().parents]
    checkout = next((p for p in here if (p / "echolib").is_dir() and (p / "pyproject.toml").is_file()), None)
    src = ECHOLIB_SOURCE or os.environ.get("ECHOLIB_SOURCE") or (str(checkout) if checkout else "")
    if not src:
        print("echolib is not installed: set ECHOLIB_SOURCE in this cell to a checkout or pip URL of this repository.")
    elif Path(src).expanduser().is_dir():
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-e", src])
        sys.path.insert(0, str(Path(src).expanduser().resolve()))  # a running kernel does not read the new .pth
    else:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", src])
        importlib.invalidate_caches()

# %% tags=["parameters"]
study_csv = None  # expert-evaluation CSV of the study; None: look in $ECHOLIB_SHARED_DATA, then ../shared/data
seed = 0  # seed of the demonstration questionnaire and of the simulated observers
out = None  # folder for the demonstration (sources, questionnaire, answers); None: a temporary folder

# %% tags=["hide-input"]
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from echolib.paths import shown_path
from echolib.turing import plots
from echolib.turing.analysis import roc, summarize
from echolib.turing.answers import collect_responses
from echolib.turing.app import TuringApp
from echolib.turing.demo import demo_sources
from echolib.turing.formats import FORMATS
from echolib.turing.questionnaire import build_questionnaire, default_key_path, load_key, load_questionnaire
from echolib.turing.simulate import answer_with_app, sharpness_chooser
from echolib.turing.study import find_study_csv, load_study_csv

pd.set_option("display.precision", 3)

# %% [markdown]
# ## Method
#
# **Formats.** Every question shows $n$ images of which $k$ are real and asks the
# rater to select the real ones. The study used three forced-choice formats:
# *one of two* ($n=2, k=1$), *two of four* ($n=4, k=2$) and *one of four*
# ($n=4, k=1$). `echolib` adds a *per-image* format: one image, a verdict (real or
# synthetic) and a confidence from 1 (a guess) to 5 (certain).
#
# **Score.** With $K$ the positions of the real images and $P$ the positions
# picked, a forced-choice answer scores
#
# $$ s = \frac{|P \cap K|}{k}, $$
#
# which is the study's rule: a two-of-four answer with one real image among its
# two picks scores 0.5. A per-image verdict scores 1 when right. A rater's
# **accuracy** is the mean score over the questions they answered. Under uniformly
# random picking the expected score is $k/n$: 1/2, 1/2 and 1/4 for the three
# formats, so the study's questionnaire (10 + 5 + 3 questions) has a chance level
# of $(10 \cdot \tfrac12 + 5 \cdot \tfrac12 + 3 \cdot \tfrac14)/18 = 45.8\%$, not 50%.
#
# **Fooling rate.** For a question answered by $R$ raters,
#
# $$ \mathrm{FR} = 1 - \frac{1}{R} \sum_{r} s_r, $$
#
# the share of all picks that are not real images; the study's script counted
# each pick of a two-of-four answer separately, which is the same number. We also
# report the *exact* fooling rate, the share of raters whose answer is not exactly
# the key (a half-right pair counts as fooled).
#
# **Confusion matrices.** The study's matrix, per specialist, uses the
# single-pick questions only: rows the position of the real image, columns the
# position picked. It reveals side bias rather than discrimination. Ours treats
# every image shown as a trial: rows the truth (real, synthetic), columns the
# verdict (picked as real or not), which is defined for every format.
#
# **Tests against chance.** Per rater and format, an exact two-sided binomial test
# of the number of correct picks (two per two-of-four question; those two picks are
# negatively dependent, which makes the test conservative), with Clopper-Pearson
# intervals. Because the study's formats have few questions each, we also test each
# rater's total score $S = \sum_q s_q$ exactly: under random picking its
# distribution is the convolution of the per-question score distributions (for two
# of four: 0, ½, 1 with probabilities 1/6, 4/6, 1/6), and the two-sided p-value
# sums the probabilities of totals no more likely than the observed one.
#
# **Agreement.** Fleiss' kappa with $N$ subjects, $n$ raters each, $n_{ij}$
# raters putting subject $i$ in category $j$:
#
# $$ P_i = \frac{\sum_j n_{ij}^2 - n}{n(n-1)}, \qquad p_j = \frac{\sum_i n_{ij}}{Nn},
#    \qquad \kappa = \frac{\bar P - \sum_j p_j^2}{1 - \sum_j p_j^2}. $$
#
# Per format, the subjects are the questions and the categories the possible
# answers; over all formats the subjects are the images shown and the categories
# "picked as real" and "not picked". $\kappa = 0$ is the agreement of independent
# guessers; Landis and Koch call 0.0-0.2 slight and 0.2-0.4 fair agreement.
#
# **ROC.** In the per-image format a rater's belief that an image is real is
# $+c$ for the verdict "real" with confidence $c$ and $-c$ for "synthetic"; the
# ROC curve of these beliefs against the truth, and its AUC, show whether the
# confidence carries information beyond the verdict (AUC 0.5: none).

# %% [markdown]
# ## The study's test, regenerated
#
# The answer sheet is `seed-reference/expert-evaluation/Ecocardiogramas_Evaluation_Limpio.csv`
# (research data, not part of the repository). Its first line is a legend
# ("DERECHA = 1", right; "IZQUIERDA = 0", left), the second the key, then one line per
# specialist. The same numbers come from the command line:
#
# ```bash
# python -m echolib turing analyze ../shared/data/seed-reference/expert-evaluation/Ecocardiogramas_Evaluation_Limpio.csv --format study --json
# ```

# %%
csv_path = Path(study_csv) if study_csv else find_study_csv()
have_study = csv_path is not None and csv_path.is_file()
if have_study:
    study_responses = load_study_csv(csv_path)
    study = summarize(study_responses)
    print(f"study answer sheet: {shown_path(csv_path)}")
else:
    study = None
    print("The study's answer sheet is not available here (set ECHOLIB_SHARED_DATA or pass study_csv=...); "
          "the study's section is skipped, the demonstration below still runs.")

# %%
if have_study:
    # What the study's own scripts print from this file: scores 10.5, 9, 9.5, 11, 10.5 out of 18 ...
    assert np.allclose(study["accuracy"], np.array([10.5, 9, 9.5, 11, 10.5]) / 18)
    # ... and these fooling rates (share of picks that are not real images), question by question.
    assert np.allclose(study["fooling_rate"], [.4, .2, .6, .2, .4, 0, .2, 0, .2, .2, .6, .5, .5, .3, .8, 1, 1, .8])
    per_rater = pd.DataFrame({
        "accuracy": study["accuracy"],
        **{f"acc. {FORMATS[f].label}": v for f, v in study["accuracy_by_format"].items()},
        "score": [t["score"] for t in study["score_test"]],
        "expected by chance": [t["expected"] for t in study["score_test"]],
        "p (exact, vs chance)": [t["pvalue"] for t in study["score_test"]],
    }, index=study["raters"])
    assert all(t["pvalue"] > 0.1 for t in study["score_test"])
    display(per_rater)  # noqa: F821 (IPython)

# %%
if have_study:
    fig, axes = plt.subplots(1, 2, figsize=(15, 4), gridspec_kw={"width_ratios": [1, 2.4]})
    plots.plot_accuracy(study, ax=axes[0], chance=float(np.mean([t["expected"] for t in study["score_test"]]) / 18))
    plots.plot_fooling_rate(study, ax=axes[1])
    fig.tight_layout()

# %% [markdown]
# The two figures reproduce the study's: accuracy per specialist between 50% and
# 61%, and the fooling rate per question. The dotted line is the chance level of
# this questionnaire (45.8%), which the study's figure did not show. No
# specialist's total score differs significantly from random picking (exact test,
# all p > 0.1). The formats tell different stories: on one-of-two questions two
# specialists reach 90%, on one-of-four questions the five specialists found the real
# image once in fifteen answers (chance would give about four), and the two-of-four
# questions sit near chance.

# %%
if have_study:
    fooling = pd.DataFrame({
        "format": [FORMATS[f].label for f in study["formats"]],
        "key": ["_".join(map(str, it.key)) for it in study_responses.items],
        "fooling rate": study["fooling_rate"],
        "fooling rate (exact)": study["fooling_rate_exact"],
    }, index=study["questions"])
    display(fooling.T)  # noqa: F821

# %% [markdown]
# ### Side bias: what the study's confusion matrix shows
#
# The study's confusion matrices (rows: position of the real image, columns:
# position picked, single-pick questions) are drawn below. Most of their mass sits
# in the top-left cell, and the key explains why: in eight of the ten one-of-two
# questions the real image was on the **left**. A rater who always picked the left
# image would score 80% on these questions without looking at them; specialist S1
# picked left nine times out of ten. With a key this unbalanced, one-of-two
# accuracy mixes discrimination with side preference. `echolib`'s builder balances
# the positions of the real images within each format for this reason.

# %%
if have_study:
    two = [i for i, it in enumerate(study_responses.items) if it.format == "one_of_two"]
    always_left = np.mean([study_responses.items[i].key == (0,) for i in two])
    picked_left = [np.mean([row[i] == (0,) for i in two]) for row in study_responses.picks]
    print(f"real image on the left in {always_left:.0%} of the one-of-two questions; "
          f"share of left picks per specialist: {', '.join(f'{p:.0%}' for p in picked_left)}")
    assert always_left == 0.8
    plots.plot_position_confusions(study)

# %% [markdown]
# Our confusion matrix counts every image shown (52 per specialist: 23 real, 29
# synthetic). Every specialist picked 23 images as real, by construction of the
# formats, so the matrix is symmetric off the diagonal; its diagonal share is the
# per-image accuracy.

# %%
if have_study:
    plots.plot_image_confusions(study)

# %% [markdown]
# ### Beyond the study: uncertainty and agreement
#
# With 10, 5 and 3 questions per format, the 95% intervals of the per-format
# accuracies are wide and all but the 90% one-of-two scores include chance.
# The raters also barely agree with each other: Fleiss' kappa is at most slight
# (below 0.2) in every format and over all images, which is what independent
# guessing looks like.

# %%
if have_study:
    fig, axes = plt.subplots(1, 2, figsize=(14, 4), gridspec_kw={"width_ratios": [2, 1]})
    plots.plot_accuracy_ci(study, ax=axes[0])
    plots.plot_kappa(study, ax=axes[1])
    fig.tight_layout()
    kappa = pd.Series(study["kappa"], name="Fleiss' kappa")
    assert all(-1 <= v < 0.2 for v in kappa)
    excludes_chance = [(r, f) for r, per in zip(study["raters"], study["binomial"]) for f, e in per.items()
                       if not e["ci_low"] <= e["chance"] <= e["ci_high"]]
    assert excludes_chance == [("S1", "one_of_two"), ("S5", "one_of_two")], excludes_chance
    display(kappa.to_frame().T)  # noqa: F821

# %% [markdown]
# ## Running a new test
#
# **1. Build a blinded questionnaire** from a folder of real frames and one or
# more folders of generated frames (names are optional, `NAME=FOLDER`):
#
# ```bash
# python -m echolib turing build --real ../shared/data/echonet-dynamic-128/frames \
#     --generated stylegan2=runs/stylegan2_ada/E4/samples ddpm=runs/ddpm/base/samples \
#     --out turing/q1 --seed 1 --one-of-two 10 --two-of-four 5 --one-of-four 3 --per-image 20
# ```
#
# The folder `turing/q1` holds `questions.json` and `images/` with random file
# names; every image is re-encoded as an 8-bit grayscale PNG, so neither a name,
# a colour mode nor metadata betrays its source. Real frames come from distinct
# videos, the positions of the real images are balanced, and the synthetic images
# of one question come from one model. The key, with the source of every image,
# is written to `turing/q1.key.json`, outside the folder: send the folder to the
# raters and keep the key.
#
# **2. Let each rater answer** in JupyterLab:
#
# ```python
# from echolib.turing.app import TuringApp
# TuringApp("turing/q1", "turing/answers")
# ```
#
# The app asks for a rater id, shows one question at a time (images at 320 px by
# default, `image_px=` to change), records the selection and the time taken, lets
# the rater go back, and shows progress. Each answer is appended to
# `turing/answers/<rater>.jsonl` and fsync'ed before the next question appears; a
# closed tab or a restarted kernel loses nothing, and entering the same id resumes
# at the first unanswered question. A changed answer is appended too, and the
# latest record of a question is the one analysed (the file keeps every change). The
# app reads only the questionnaire folder and refuses one that contains a key.
#
# **3. Analyse**, with figures:
#
# ```bash
# python -m echolib turing analyze turing/answers --key turing/q1.key.json --figures turing/figures
# ```

# %% [markdown]
# ## A demonstration
#
# A questionnaire with all four formats, built from stand-in data: "real" frames
# are phantom hearts, and two "models" produce other phantom hearts
# (indistinguishable from the real ones by construction) and blurred phantom
# hearts (easy to spot). Three simulated observers answer through the app's own
# widgets; each calls the sharpest images real, with more or less perception
# noise. They should almost never be fooled by the blurred model and be fooled
# about as often as chance allows by the faithful one.

# %%
demo = Path(out) if out else Path(tempfile.mkdtemp(prefix="turing-demo-"))
real, generated = demo_sources(demo / "sources", n=32, size=64, seed=seed)
qdir, answers = demo / "questionnaire", demo / "answers"
if not qdir.exists():
    build_questionnaire(real, generated, qdir, counts={"one_of_two": 8, "two_of_four": 4, "one_of_four": 4,
                                                       "per_image": 12}, seed=seed)
questionnaire, key = load_questionnaire(qdir), load_key(default_key_path(qdir))
print(f"{len(questionnaire.questions)} questions in {shown_path(qdir)}; key in {shown_path(key.path)}")
assert key.path.parent != qdir and "source" not in (qdir / "questions.json").read_text()
plots.plot_question(questionnaire, questionnaire.questions[8].id);

# %% [markdown]
# **Try it.** In JupyterLab the next cell opens the rater app on this
# questionnaire, as a rater sees it: enter any rater id, pick the real images and
# press *Next*. Your answers go to `your-answers/<rater id>.jsonl` in the
# demonstration folder, apart from the simulated observers' below. (The HTML book
# shows nothing here: the app needs a running kernel.)

# %% tags=["remove-output"]
TuringApp(questionnaire, demo / "your-answers")

# %%
for k, noise in enumerate([0.05, 0.2, 0.5]):
    app = TuringApp(questionnaire, answers, rater=f"observer-{k + 1}")  # resumes if answered before
    answer_with_app(app, sharpness_chooser(questionnaire, noise=noise, seed=seed + k))
    assert app.current is None and app.progress.value == len(questionnaire.questions)
    app.close()
responses = collect_responses(key, answers)
demo_summary = summarize(responses)
pd.DataFrame({"accuracy": demo_summary["accuracy"], "p (exact)": [t["pvalue"] for t in demo_summary["score_test"]],
              "AUC (per image)": [a["auc"] for a in demo_summary["auc"][:-1]]}, index=demo_summary["raters"])

# %%
by_model = pd.Series(demo_summary["fooling_by_model"], name="mean fooling rate")
assert by_model["blurred"] < 0.15 < by_model["phantom"], by_model
by_model.to_frame()

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
plots.plot_accuracy(demo_summary, ax=axes[0], chance=float(np.mean([t["expected"] / t["n"]
                                                                    for t in demo_summary["score_test"]])))
plots.plot_roc(roc(responses), ax=axes[1])
fig.tight_layout()
plots.plot_fooling_rate(demo_summary).figure.set_size_inches(14, 4.5)

# %% [markdown]
# The fooling rate per question, coloured by the model whose images the question
# shows ("real": a per-image question showing a real frame), separates the two
# models at a glance: questions with blurred images are almost never failed, those
# with faithful phantom hearts are failed at about the chance rate of their format. The ROC curves
# of the per-image questions show that the observers' confidence carries
# information: sharper-than-usual images get confident "real" verdicts. With real
# raters, the same tables and figures come from
# `python -m echolib turing analyze ANSWERS --key KEY --figures FOLDER`.
