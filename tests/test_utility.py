"""The downstream utility test (train on synthetic, test on real): an ES/ED classifier from real, synthetic and both
frames, tested on the held-out real videos of the run that made the synthetic set; and where phase labels come from."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from echolib.cli import main
from echolib.data.phantom import generate
from echolib.data.phantom_sim import phase_label, render_hearts
from echolib.images import write_gray
from echolib.metrics import utility
from echolib.pipeline.utility import run_utility


@pytest.fixture(scope="module")
def phantom_run(tmp_path_factory):
    """400 phantom frames (100 hearts) at 64 px and a briefly trained phase-conditioned run that held 30 % out."""
    from echolib.train.runs import ensure_run

    root = tmp_path_factory.mktemp("utility")
    data = generate(root / "frames", 400, size=64, seed=5, workers=1, progress=False)
    run = ensure_run("diffusion", "smoke_cond", str(data), root / "runs", kimg=0.02, device="cpu", progress=False,
                     overrides={"train": {"holdout": 0.3}})
    return data, run


def _labelled_folder(folder, images, labels, column="condition"):
    """A synthetic set as synthesize writes one: PNGs and a manifest naming each one's label."""
    folder.mkdir()
    with open(folder / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", column])
        writer.writeheader()
        for i, (image, label) in enumerate(zip(images, labels)):
            write_gray(folder / f"syn_{i:05d}.png", image[0].numpy())
            writer.writerow({"file": f"syn_{i:05d}.png", column: label})
    return folder


@pytest.fixture(scope="module")
def ideal(tmp_path_factory):
    """What an ideal phase-conditioned generator would give: 80 fresh hearts, each frame labelled by its true phase."""
    hearts, _, phases = render_hearts(77, range(80), 64)
    labels = [phase_label(float(p)) for p in phases.ravel()]
    images = torch.from_numpy(hearts.frames.copy())[:, None]
    return _labelled_folder(tmp_path_factory.mktemp("ideal") / "set", images, labels)


def test_utility_trains_on_real_synthetic_and_both_and_tests_on_held_out_videos(phantom_run, ideal):
    data, run = phantom_run
    recipe = utility.Recipe(steps=200)
    records, sets = run_utility(str(data), ideal, run=run, recipe=recipe)
    assert sets.split == "held-out videos of run diffusion/smoke_cond" and sets.synthetic_labels == "manifest condition"
    assert sets.real_labels == "manifest phase_label"
    assert not set(sets.test.groups) & set(sets.real_train.groups) and len(set(sets.test.groups)) >= 20
    assert [(r["train_set"], r["metric"]) for r in records] == [
        (t, m) for t in ("real", "synthetic", "both") for m in ("phase_accuracy", "phase_auc")]
    by = {(r["train_set"], r["metric"]): r for r in records}
    for r in records:
        assert r["interval"][0] <= r["value"] <= r["interval"][1] and r["n_real"] == len(sets.test)
        assert r["n_test_videos"] == len(set(sets.test.groups)) and r["recipe"]["steps"] == 200
        assert r["task"] == "phase" and r["split"] == sets.split
    assert by["real", "phase_auc"]["n_fake"] == 0 and by["synthetic", "phase_auc"]["n_fake"] == len(sets.synthetic)
    assert by["both", "phase_auc"]["n_train"] == len(sets.real_train) + len(sets.synthetic)
    assert by["real", "phase_auc"]["interval"][0] > 0.5  # real frames teach the phase
    assert by["synthetic", "phase_auc"]["interval"][0] > 0.5  # and so do the frames of an ideal generator


def test_labels_that_mean_nothing_teach_nothing(phantom_run, ideal):
    from echolib.pipeline.utility import load_sets

    data, run = phantom_run
    sets = load_sets(str(data), ideal, run)
    rng = np.random.default_rng(0)
    shuffled = utility.Labelled(sets.synthetic.images, rng.permutation(sets.synthetic.labels), sets.synthetic.groups,
                                "shuffled labels", len(sets.synthetic))
    (noise,) = utility.phase_utility({"shuffled": shuffled}, sets.test, utility.Recipe(steps=200))
    assert noise.auc_interval[0] < 0.5 < noise.auc_interval[1]


def test_the_command_prints_records_and_refuses_what_it_cannot_use(phantom_run, ideal, tmp_path, capsys):
    data, run = phantom_run
    assert main(["utility", "--real", str(data), "--synthetic", str(ideal), "--run", str(run), "--json",
                 "--n-train", "40", "--seed", "1", "--steps", "30"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["train_set"], r["metric"]) for r in printed][::2] == [(t, "phase_accuracy")
                                                                    for t in ("real", "synthetic", "both")]
    assert {r["n_train"] for r in printed if r["train_set"] != "both"} == {40} and {r["seed"] for r in printed} == {1}
    assert {r["recipe"]["steps"] for r in printed} == {30}
    assert all(len(r["interval"]) == 2 for r in printed)
    # without --run and without a datasheet naming one: the trainer's default split, said so
    assert main(["utility", "--real", str(data), "--synthetic", str(ideal), "--n-train", "20", "--steps", "30"]) == 0
    out = capsys.readouterr().out
    assert "default split" in out and "real" in out and "synthetic" in out
    assert main(["utility", "--real", str(data), "--synthetic", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["utility", "--real", str(data), "--synthetic", str(ideal), "--task", "ef"]) == 2
    assert main(["utility", "--real", str(data), "--synthetic", str(ideal), "--steps", "0"]) == 2
    unlabelled = _labelled_folder(tmp_path / "unlabelled", torch.zeros(4, 1, 64, 64, dtype=torch.uint8),
                                  ["other"] * 4)
    assert main(["utility", "--real", str(data), "--synthetic", str(unlabelled), "--run", str(run)]) == 2
    assert "no frame is labelled ES or ED" in capsys.readouterr().err


def test_the_study_frames_are_labelled_by_their_names(tmp_path):
    """``_f1`` is the study's systole (ES), ``_f2`` its diastole (ED); the clip's ends are neither."""
    from echolib.data.echonet import write_study_manifest
    from echolib.data.frames import FrameDataset
    from echolib.data.labels import NAME_RULE, phase_labels

    frames = tmp_path / "frames"
    frames.mkdir()
    for video in ("0XAAA", "0XBBB"):
        for k in range(4):
            write_gray(frames / f"{video}_f{k}.png", np.full((16, 16), 10 * k, np.uint8))
    labels, source = phase_labels(FrameDataset(frames))
    assert source == NAME_RULE and labels == ["other", "ES", "ED", "other"] * 2
    manifest = write_study_manifest(frames, tmp_path / "m" / "manifest.csv")
    ds = FrameDataset(manifest)
    assert len(ds) == 8 and [ds.infos[i].get("phase_label") for i in range(4)] == ["other", "ES", "ED", "other"]
    assert phase_labels(ds)[1] == "manifest phase_label" and ds.video_ids[:4] == ["0XAAA"] * 4
    (frames / "notes_x.png").write_bytes((frames / "0XAAA_f0.png").read_bytes())
    with pytest.raises(utility.DataError, match="not a study frame name"):
        write_study_manifest(frames, tmp_path / "m2" / "manifest.csv")


def test_a_synthesized_set_is_tested_on_the_held_out_videos_of_its_run(phantom_run, tmp_path, capsys):
    """synthesize, then utility with no --run: the datasheet names the run, its held-out videos are the test."""
    data, run = phantom_run
    out = tmp_path / "set"
    assert main(["synthesize", str(run), "--n", "12", "--out", str(out), "--condition", "ES,ED", "--batch", "6",
                 "--eval-n", "0", "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["utility", "--real", str(data), "--synthetic", str(out), "--json", "--steps", "20"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["split"] for r in printed} == {"held-out videos of run diffusion/smoke_cond"}
    assert {r["synthetic_labels"] for r in printed} == {"manifest condition"}
    assert {r["n_train"] for r in printed if r["train_set"] == "synthetic"} == {12}


@pytest.mark.realdata
@pytest.mark.slow
def test_real_frames_teach_the_study_phase_by_their_names(real_frames):
    """On 150 shared videos: labels from the study's name rule; 30 % of the videos held out; the classifier learns."""
    from echolib.data.frames import FrameDataset, holdout_split
    from echolib.data.labels import NAME_RULE, phase_labels

    ds = FrameDataset(real_frames, limit=600, resolution=64)
    labels, source = phase_labels(ds)
    assert source == NAME_RULE
    _, held = holdout_split(ds.video_ids, 0.3, 0)
    train_idx = [i for i in range(len(ds)) if i not in set(held)]

    def part(index, name):
        return utility.labelled(ds.images[index], [labels[i] for i in index], [ds.video_ids[i] for i in index], name)

    train, test = part(train_idx, "real"), part(sorted(held), "real held-out")
    assert train.counts["ES"] == train.counts["ED"] and not set(train.groups) & set(test.groups)
    (result,) = utility.phase_utility({"real": train}, test, utility.Recipe())
    assert result.auc_interval[0] > 0.5  # measured: AUC 0.79 [0.64, 0.89], accuracy 0.76, on 39 held-out videos
