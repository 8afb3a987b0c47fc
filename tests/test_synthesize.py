"""The synthetic dataset as a product: exactly N filtered samples, a manifest and a datasheet; refusal and resuming."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
import torch

from echolib.cli import main
from echolib.data.frames import FrameDataset
from echolib.data.phantom import generate
from echolib.data.phantom_sim import render_hearts
from echolib.pipeline import synthesize as syn


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A phase-conditioned smoke diffusion run on 240 phantom frames (60 hearts, a quarter held out) at 64 px."""
    from echolib.train.runs import ensure_run

    root = tmp_path_factory.mktemp("synthesize")
    data = generate(root / "frames", 240, size=64, seed=5, workers=1, progress=False)
    run = ensure_run("diffusion", "smoke_cond", str(data), root / "runs", kimg=0.04, device="cpu", progress=False,
                     overrides={"train": {"holdout": 0.25}})  # about 15 unseen hearts: both halves of the filter

    return data, run


@pytest.fixture(autouse=True)
def feature_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ECHOLIB_FEATURE_CACHE", str(tmp_path_factory.getbasetemp() / "features"))


def _rows(folder):
    with open(folder / syn.MANIFEST, newline="") as fh:
        return list(csv.DictReader(fh))


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(f"{syn.PREFIX}*.png"))}


def test_synthesize_writes_n_samples_a_manifest_and_a_datasheet_and_resumes(small, tmp_path, capsys):
    _, run = small
    out = tmp_path / "set"
    args = ["synthesize", str(run), "--out", str(out), "--privacy-filter", "--condition", "ES,ED", "--batch", "4",
            "--seed", "3", "--no-progress", "--device", "cpu"]
    assert main([*args, "--n", "6", "--eval-n", "0"]) == 0
    assert sorted(_digests(out)) == [f"syn_{i:05d}.png" for i in range(6)]
    first = _digests(out)
    assert main([*args, "--n", "10", "--eval-n", "10"]) == 0  # a rerun continues to the new n
    after = _digests(out)
    assert len(after) == 10 and {k: after[k] for k in first} == first
    rows = _rows(out)
    kept = [r for r in rows if r["passed"] == "true"]
    assert [r["file"] for r in kept] == sorted(after) and all(r["file"] == "" for r in rows if r not in kept)
    assert [r["condition"] for r in kept] == ["ES", "ED"] * 5  # drawn in turn
    assert all(float(r["nn_distance"]) > 0 and float(r["nn_distance_pixel"]) > 0 for r in rows)
    assert all(r["flagged"] == "false" for r in kept)  # the filter let no flagged draw through

    sheet = json.loads((out / syn.DATASHEET).read_text())
    checkpoint = max((run / "checkpoints").glob("ckpt-*.pt"))
    assert sheet["status"] == "complete" and sheet["n"] == 10 and sheet["counts"]["kept"] == 10
    assert sheet["model"]["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert sheet["counts"]["drawn"] == len(rows) and sheet["counts"]["kept_by_condition"] == {"ED": 5, "ES": 5}
    pf = sheet["privacy_filter"]
    assert pf["applied"] and pf["percentile"] == 0.05 and pf["spaces"]["pixel"]["threshold"] > 0
    assert 0 <= pf["heldout_rejection_rate"] <= 1
    evaluation = {r["metric"]: r for r in sheet["evaluation"]}
    assert set(evaluation) == set(syn.EVAL_METRICS) and {r["n_fake"] for r in evaluation.values()} == {10}
    assert len({r["protocol"] for r in evaluation.values()}) == 1
    for r in evaluation.values():
        assert r["interval"] is not None and r["run"] == "diffusion/smoke_cond"
    assert evaluation["memorized_fraction_pixel"]["value"] == 0.0  # what passed the filter is not flagged
    assert evaluation["memorized_fraction"]["heldout_flag_rate"] == pf["spaces"]["features"]["heldout_flag_rate"]
    readme = (out / syn.README).read_text()
    for words in ("## Privacy filter", "## Licence and terms", "## Must not be used for", sheet["model"]["kimg"] and
                  sheet["model"]["checkpoint_sha256"], "no patient"):  # trained on the phantom: its own terms
        assert str(words) in readme
    # one batch at a time, or all at once: the same images (the seeds belong to batches, not to runs)
    whole = tmp_path / "whole"
    assert main(["synthesize", str(run), "--out", str(whole), "--privacy-filter", "--condition", "ES,ED", "--batch",
                 "4", "--seed", "3", "--no-progress", "--device", "cpu", "--n", "10", "--eval-n", "0"]) == 0
    assert _digests(whole) == after and _rows(whole) == rows

    capsys.readouterr()
    assert main([*args, "--n", "10", "--seed", "4"]) == 2  # other settings: refused, one line
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not empty" in err and "--overwrite" in err
    (whole / "notes.txt").write_text("mine")
    assert main(["synthesize", str(run), "--out", str(whole), "--n", "2", "--overwrite", "--no-progress"]) == 2
    assert "did not write" in capsys.readouterr().err and (whole / "notes.txt").exists()
    assert main([*args, "--n", "4", "--seed", "4", "--overwrite", "--eval-n", "0"]) == 0
    assert len(_digests(out)) == 4 and json.loads((out / syn.DATASHEET).read_text())["settings"]["seed"] == 4


def test_the_privacy_filter_rejects_copies_of_training_frames(small, tmp_path):
    """A generator that returns its training frames half of the time: exactly those draws are rejected."""
    from echolib.report import scoring

    data, run = small
    frames = scoring.load_frames(str(data), 64)
    splits = frames.split(scoring.run_heldout_videos(syn.RunFolder(run), frames))
    gate = syn.make_filter(splits, "echo", 0.05, "cpu")
    fresh, _, _ = render_hearts(99, range(8), 64)  # hearts nobody trained on
    fresh = torch.from_numpy(fresh.frames.copy())[:, None]
    training = splits.train.images

    def draw(b: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        copies = training[torch.randint(len(training), (2,), generator=g)]
        return torch.cat([copies, fresh[torch.randint(len(fresh), (2,), generator=g)]]), None

    out = tmp_path / "filtered"
    out.mkdir()
    rows = syn.fill(out, 5, draw, gate, [], batch=4, seed=0, privacy_filter=True, progress=False)
    copies = [r for r in rows if int(r["position"]) < 2]
    assert copies and all(r["flagged"] == "true" and r["passed"] == "false" for r in copies)
    assert sum(r["passed"] == "true" for r in rows) == 5 == len(list(out.glob("syn_*.png")))
    # the folder is a frame folder of the passed samples: the rejected draws' rows (no file) are not frames
    kept = FrameDataset(out, resolution=64)
    passed = sorted((r["file"], r["draw"]) for r in rows if r["passed"] == "true")
    assert sorted((rec.file, rec.get("draw")) for rec in kept.records) == passed
    assert sorted(FrameDataset(out / syn.MANIFEST, resolution=64).names) == [f for f, _ in passed]
    with pytest.raises(syn.DataError, match="only 0 of 3 samples passed"):
        syn.fill(tmp_path, 3, lambda b, s: (training[:4], None), gate, [], batch=4, seed=0, privacy_filter=True,
                 max_draws=12, progress=False)


def test_an_interrupted_synthesize_continues_to_the_same_set(small, tmp_path, capsys):
    """Stopped part-way (here by --max-draws, with a stray half-written batch left behind), a rerun ends where an
    uninterrupted one does: the same files, bytes and manifest."""
    _, run = small
    common = ["synthesize", str(run), "--n", "7", "--batch", "3", "--seed", "5", "--no-progress", "--device", "cpu",
              "--eval-n", "0"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main([*common, "--out", str(whole)]) == 0
    assert main([*common, "--out", str(cut), "--max-draws", "4"]) == 2
    assert "stopped after 6 draws with 6 of 7" in capsys.readouterr().err  # between batches of 3
    assert json.loads((cut / syn.DATASHEET).read_text())["status"] == "drawing" and len(_digests(cut)) == 6
    (cut / "syn_00006.png").write_bytes(b"a batch killed before its manifest row")
    assert main([*common, "--out", str(cut)]) == 0
    assert _digests(cut) == _digests(whole) and len(_digests(whole)) == 7
    assert _rows(cut) == _rows(whole)
    assert json.loads((cut / syn.DATASHEET).read_text())["status"] == "complete"
