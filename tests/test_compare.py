"""The comparison: one protocol per table, rows read from the runs themselves, intervals, and the study's rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import STUDY_LOGS, need

from echolib.data.subset import copy_subset
from echolib.errors import ConfigError, DataError
from echolib.models.registry import available_architectures
from echolib.report import compare, scoring
from echolib.train.run_folder import RunFolder


def _records(arch: str, values: dict[str, list[float]], protocol: str = "p1") -> list[dict]:
    recs = [{"metric": m, "value": v, "kimg": float(k), "protocol": protocol,
             "extractor": "echo" if m in ("fid", "precision") else None}
            for m, vs in values.items() for k, v in enumerate(vs)]
    return scoring.label_records(recs, "ours", arch, "smoke")


def test_a_row_shows_its_latest_checkpoint_and_a_table_refuses_two_protocols():
    records = _records("wgan", {"fid": [30.0, 12.0, 20.0], "precision": [0.2, 0.6], "c2st_auc": [0.9, 0.55, 0.3],
                                "psnr": [11.0, 14.0]})
    row = compare.comparison_table(records).iloc[0]
    assert row["fid [echo]"] == 20.0  # the latest kimg, not the best of several checkpoints (selection bias)
    assert row["precision [echo]"] == 0.6 and row["c2st_auc"] == 0.3 and row["psnr"] == 14.0
    mixed = records + _records("medgan", {"fid": [25.0]}, protocol="p2")
    with pytest.raises(DataError, match="different protocols"):
        compare.comparison_table(mixed)


def test_a_memorisation_column_shows_the_held_out_rate_beside_the_sample_rate():
    records = _records("wgan", {"memorized_fraction": [0.12], "fid": [20.0]})
    records[0].update(interval=[0.08, 0.16], heldout_flag_rate=0.05, extractor="echo")
    table = compare.comparison_table(records, intervals=True)
    row = table.iloc[0]
    assert row["memorized_fraction [echo]"] == 0.12 and row["memorized_fraction [echo] held-out"] == 0.05
    assert "fid [echo] held-out" not in table  # only records that carry a held-out rate get one
    shown = list(compare.with_intervals(table).columns)
    assert shown.index("memorized_fraction [echo] held-out") == shown.index("memorized_fraction [echo]") + 1
    assert "memorized_fraction [echo] held-out" not in compare._ranked_columns(table)


def test_a_row_leads_only_where_its_interval_separates():
    def rec(row, value, lo, hi, metric="fid"):
        return {"metric": metric, "value": value, "interval": [lo, hi], "row": row, "kind": "ours", "protocol": "p"}

    apart = [rec("a", 5.0, 3.0, 7.0), rec("b", 12.0, 9.0, 15.0), rec("c", 20.0, 16.0, 24.0)]
    assert compare.leader(apart, "fid") == {"metric": "fid", "best": "a", "runner_up": "b", "separated": True,
                                            "order": ["a", "b", "c"]}
    close = [rec("a", 5.0, 3.0, 9.5), rec("b", 8.0, 6.0, 10.0)]
    assert compare.leader(close, "fid")["separated"] is False
    auc = [rec("a", 0.55, 0.50, 0.60, "c2st_auc"), rec("b", 0.30, 0.25, 0.35, "c2st_auc"),
           rec("c", 0.80, 0.75, 0.85, "c2st_auc")]
    assert compare.leader(auc, "c2st_auc")["order"] == ["a", "b", "c"]  # by distance from chance (0.05, 0.2, 0.3)
    assert compare.leader(auc, "c2st_auc")["separated"] is True
    with pytest.raises(ValueError, match="cannot rank"):
        compare.leader(apart, "ssim")


def test_a_lead_names_every_validated_metric_that_disagrees():
    def rec(row, value, lo, hi, metric):
        return {"metric": metric, "value": value, "interval": [lo, hi], "row": row, "kind": "ours", "protocol": "p"}

    records = [rec("a", 5.0, 3.0, 7.0, "fid"), rec("b", 12.0, 9.0, 15.0, "fid"),
               rec("a", 0.9, 0.88, 0.92, "c2st_auc"), rec("b", 0.6, 0.55, 0.65, "c2st_auc"),
               rec("a", 0.1, 0.08, 0.12, "kid"), rec("b", 0.2, 0.18, 0.22, "kid")]
    text = compare.judgement(records, "fid", ["fid", "kid", "c2st_auc", "recall"])
    assert text.startswith("a leads by fid")
    assert "Disagreeing: c2st_auc puts b first with separated intervals." in text
    assert "Agreeing on the best row: kid." in text and "recall" not in text  # no records, no claim
    assert compare.judgement(records[:2], "fid", ["kid"]) == compare.verdict(records[:2], "fid")


def test_study_reference_rows_pick_each_architectures_best_fid():
    reported = pd.DataFrame({
        "architecture": ["wgan", "wgan", "stylegan2_ada", "stylegan2_ada"],
        "configuration": ["W1", "W6", "E1", "E4"],
        "kind": "study (reported)",
        "fid [inception, study]": [75.8, 68.3, 24.7, 9.17],
        "kid [inception, study]": [0.02, 0.01, 0.014, 0.002],
        "ssim": [0.37, 0.38, 0.39, 0.385],
    })
    rows = compare.study_reference_rows(reported)
    assert list(rows["architecture"]) == ["stylegan2_ada", "wgan"]  # the book's order
    assert list(rows["configuration"]) == ["E4 (study's best)", "W6 (study's best)"]
    assert "ssim" not in rows  # the study's pixel statistics had other definitions
    ours = compare.comparison_table(_records("wgan", {"fid": [40.0]}))
    full = compare.with_references(ours, reported)
    assert len(full) == 3 and pd.isna(full.loc[0, "fid [inception, study]"]) and pd.isna(full.loc[1, "fid [echo]"])
    assert compare.with_references(ours, pd.DataFrame()).equals(ours)


def test_study_reference_rows_from_the_studys_logs():
    rows = compare.study_reference_rows(compare.study_rows(need(STUDY_LOGS)))
    best = dict(zip(rows["architecture"], rows["fid [inception, study]"], strict=True))
    assert best["stylegan2_ada"] == pytest.approx(9.17, abs=0.01)  # the paper's headline number
    assert best["stylegan2_ada"] == min(best.values())
    assert rows.loc[rows["architecture"] == "stylegan2_ada", "configuration"].item() == "E4 (study's best)"


@pytest.mark.realdata
def test_reference_rows_on_real_frames(real_frames, study_samples, tmp_path):
    """On real frames: a copier of unseen videos, the published model and the phantom, ordered as they should be."""
    copy_subset(real_frames, tmp_path / "frames", n=600)
    splits = scoring.evaluation_splits(tmp_path / "frames", resolution=64)
    protocol = scoring.make_protocol(splits, 48, metrics=("fid", "memorized_fraction"), replicates=0, device="cpu")
    records, images, left_out = scoring.reference_records(splits, protocol, study_samples)
    assert set(images) == {"training frames", "published model", "phantom"} and not left_out
    assert all(len(v) == 48 for v in images.values())
    value = {(r["architecture"], r["metric"]): r["value"] for r in records}
    assert all(np.isfinite(v) for v in value.values())
    assert value[("data", "fid")] < value[("stylegan2_ada (published)", "fid")] < value[("phantom", "fid")]
    # memorisation is read against the rate of unseen patients under the same threshold; here only 8 videos are
    # held out (3 set the threshold), so that rate is loose: the copier lies above its interval, the published
    # model within it (on 2,000 frames: 7 % against a held-out 8 %)
    memo = {r["architecture"]: r for r in records if r["metric"] == "memorized_fraction"}
    held_hi = memo["data"]["heldout_interval"][1]
    assert memo["data"]["value"] > held_hi  # the copier is caught
    assert memo["stylegan2_ada (published)"]["value"] <= held_hi
    assert {r["kind"] for r in records} == {"reference"}
    copier = [r for r in records if r["row"] == "reference:training frames"]
    assert {r["fake_extractor_overlap"] for r in copier} == {0.0}  # none of the extractor's own frames
    assert {r["extractor_overlap"] for r in records if r["extractor"] == "echo"} == {0.0}


@pytest.mark.realdata
def test_frames_the_extractor_trained_on_report_their_overlap(real_frames, tmp_path):
    from echolib.data.frames import FrameDataset, split_by_video
    from echolib.metrics import evaluate

    copy_subset(real_frames, tmp_path / "frames", n=400)
    frames = FrameDataset(tmp_path / "frames", resolution=64)
    seen = [i for i, p in enumerate(split_by_video(frames.video_ids, (0.8, 0.1, 0.1), 0)) if p == 0]
    unseen = [i for i in range(len(frames)) if i not in set(seen)]
    with pytest.warns(UserWarning, match="extractor trained on"):
        records = evaluate(frames.subset(seen), frames.subset(unseen), ["fid"], extractor="echo", device="cpu")
    assert records[0]["extractor_overlap"] == 1.0 and records[0]["fake_extractor_overlap"] == 0.0


def test_no_phantom_row_when_the_data_is_the_phantom():
    splits = scoring.evaluation_splits("phantom", resolution=64)
    protocol = scoring.make_protocol(splits, 32, metrics=("fid",), replicates=0, device="cpu")
    records, images, left_out = scoring.reference_records(splits, protocol, None)
    assert set(images) == {"training frames"} and not left_out
    assert [r["architecture"] for r in records] == ["data"]
    assert records[0]["n_fake"] == 32 and records[0]["protocol"] == protocol.id


def test_a_comparison_leaves_out_architectures_without_the_configuration(tmp_path):
    assert compare.architectures_with("smoke") == (available_architectures(), [])
    has, left_out = compare.architectures_with("smoke_cond")
    assert has == ["diffusion"] and "stylegan2_ada" in left_out
    assert compare.architectures_with("smoke_cond", ["diffusion", "wgan"]) == (["diffusion"], ["wgan"])
    yaml_file = tmp_path / "mine.yaml"
    yaml_file.write_text("model: {}\n")
    assert compare.architectures_with(str(yaml_file), ["wgan"]) == (["wgan"], [])
    with pytest.raises(ConfigError, match="architectures: unknown stylegan3; choose from stylegan2_ada"):
        compare.architectures_with("smoke", ["stylegan3"])


def test_radar_and_heatmap_rank_only_by_metrics_that_can_rank():
    import matplotlib

    matplotlib.use("Agg")
    records = _records("wgan", {"fid": [12.0], "precision": [0.6], "psnr": [14.0], "c2st_auc": [0.7]})
    records += _records("medgan", {"fid": [20.0], "precision": [0.4], "psnr": [11.0]})  # no C2ST value
    table = compare.comparison_table(records)
    fig = compare.radar(table)
    labels = [t.get_text().replace("\n", " ") for t in fig.axes[0].get_xticklabels()]
    assert labels == ["fid [echo]", "precision [echo]", "c2st_auc"]  # psnr stays in the table, not on an axis
    polygon = fig.axes[0].lines[1].get_ydata()
    assert np.isfinite(polygon).all() and polygon[2] == 0.0  # the missing AUC sits at the centre, not a gap
    assert [t.get_text() for t in compare.heatmap(table).axes[0].get_xticklabels()] == labels


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """A WGAN and a Pix2Pix smoke run on the phantom, and a WGAN that held out other videos (holdout_seed 1)."""
    from echolib.train.runs import ensure_run

    root = tmp_path_factory.mktemp("compare")
    runs = root / "runs"
    wgan = ensure_run("wgan", "smoke", "phantom", runs, device="cpu", progress=False)
    pix2pix = ensure_run("pix2pix", "smoke", "phantom", runs, device="cpu", progress=False)
    other = ensure_run("wgan", "smoke", "phantom", root / "other", device="cpu", progress=False,
                       overrides={"train": {"holdout_seed": 1}})
    return {"runs": runs, "wgan": RunFolder(wgan), "pix2pix": RunFolder(pix2pix), "other": RunFolder(other)}


def test_a_second_evaluation_of_a_run_reuses_its_records_and_other_data_is_left_out(smoke_runs, tmp_path):
    import shutil

    run = RunFolder(shutil.copytree(smoke_runs["wgan"].path, tmp_path / "runs" / "wgan" / "smoke"))
    frames = scoring.load_frames("phantom", 64)
    splits = frames.split(scoring.run_heldout_videos(run, frames))
    protocol = scoring.make_protocol(splits, 32, metrics=("fid", "kid"), replicates=0, device="cpu")
    images = scoring.run_images(run, 32, size=64, device="cpu")
    first = scoring.evaluate_run(run, images, protocol)
    again = scoring.evaluate_run(run, images, protocol)
    assert [r["value"] for r in again] == [r["value"] for r in first]
    compare_lines = [ln for ln in run.metrics_file.read_text().splitlines() if '"compare"' in ln]
    assert len(compare_lines) == 2  # one record per metric, not one per build
    groups, left_out = scoring.comparable_runs(tmp_path / "runs", frames)
    assert [g[1] for g in groups] == [[run]] and not left_out
    meta = run.meta()
    run.meta_file.write_text(json.dumps({**meta, "data": "elsewhere", "data_fingerprint": "0" * 16}))
    groups, left_out = scoring.comparable_runs(tmp_path / "runs", frames)
    assert groups == [] and "trained on other data" in left_out["wgan/smoke"]


def test_new_extractor_weights_invalidate_earlier_records(smoke_runs, tmp_path, monkeypatch):
    import shutil

    import torch

    from echolib.metrics import features

    run = RunFolder(shutil.copytree(smoke_runs["wgan"].path, tmp_path / "wgan" / "smoke"))
    frames = scoring.load_frames("phantom", 64)
    splits = frames.split(scoring.run_heldout_videos(run, frames))
    protocol = scoring.make_protocol(splits, 24, metrics=("fid",), replicates=0, device="cpu")
    scoring.evaluate_run(run, scoring.run_images(run, 24, size=64, device="cpu"), protocol)
    assert scoring.earlier_evaluation(run, protocol) is not None
    torch.manual_seed(3)
    other = tmp_path / "other.pt"
    torch.save(features.echo_checkpoint(features.EchoEncoder()), other)
    monkeypatch.setenv(features.ENV_ECHO_WEIGHTS, str(other))
    retrained = scoring.make_protocol(splits, 24, metrics=("fid",), replicates=0, device="cpu")
    assert retrained.extractor_sha256 != protocol.extractor_sha256
    assert scoring.earlier_evaluation(run, retrained) is None  # same name, other weights: not the same protocol


@pytest.mark.slow
def test_pix2pix_is_evaluated_on_the_contours_of_every_held_out_frame(smoke_runs):
    run = smoke_runs["pix2pix"]
    frames = scoring.load_frames("phantom", 128)  # the run trained at 64 px: conditions at its size
    splits = frames.split(scoring.run_heldout_videos(run, frames))
    held = len(splits.heldout)
    assert held > 16  # more unseen hearts than the 16 conditions its checkpoint stores
    images = scoring.run_images(run, held + 8, size=128, device="cpu", conditions_from=splits.heldout)
    x = images.images.float()
    # every held-out frame once, then from the first again: sample held+i translates frame i's contours
    same = (x[held:] - x[:8]).abs().mean(dim=(1, 2, 3))
    other = (x[held:] - x[1:9]).abs().mean(dim=(1, 2, 3))
    assert (same < other).all(), (same, other)
    # each sample carries its source video, so the classifier test keeps the pair in one fold
    assert images.video_ids[:held] == splits.heldout.video_ids and images.video_ids[held] == splits.heldout.video_ids[0]
    small = scoring.frames_at(splits.heldout, 64)
    assert small.resolution == 64 and small.names == splits.heldout.names
    assert scoring.is_image_conditioned(run) and not scoring.is_image_conditioned(smoke_runs["wgan"])
    protocol = scoring.make_protocol(splits, held + 8, metrics=("fid",), replicates=0, device="cpu")
    records = protocol.evaluate(images, run.label, conditions="held-out frames")
    assert records[0]["conditions"] == "held-out frames" and records[0]["n_fake"] == held + 8


def test_a_pix2pix_sample_shares_its_source_videos_fold_in_the_classifier_test():
    from echolib.metrics.c2st import classifier_folds

    videos = [f"v{i // 4}" for i in range(80)]  # real frames, four per video
    translations = [f"v{i // 4}" for i in range(80)]  # a Pix2Pix sample carries the video it translated
    _, groups, folds = classifier_folds(videos, translations, 5, 0)
    fold_of: dict[str, set[int]] = {}
    for k, (_, test) in enumerate(folds):
        for i in test:
            fold_of.setdefault(groups[i], set()).add(k)
    assert len(fold_of) == 20 and all(len(f) == 1 for f in fold_of.values())  # a video and its translations


def test_training_curves_keep_sources_and_extractors_apart(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from echolib.metrics.records import append_records, make_record
    from echolib.report.plots import metric_curves

    run = tmp_path / "run"
    run.mkdir()

    def rec(value, kimg, extractor, source):
        r = make_record("fid", value, n_real=10, n_fake=10, extractor=extractor, extractor_sha256=None,
                        kimg=kimg, run=str(run))
        return {**r, "source": source}

    append_records(run / "metrics.jsonl", [rec(50.0, 1, "echo", "train"), rec(300.0, 1, "inception-v3-compat",
                   "train"), rec(40.0, 2, "echo", "train"), rec(float("nan"), 3, "echo", "train"),
                   rec(35.0, 2, "echo", "compare")])  # fmt: skip
    ax = metric_curves(run, ["fid"]).axes[0]
    lines = {ln.get_label().split("/")[-1]: [float(y) for y in ln.get_ydata()] for ln in ax.lines}
    assert lines == {"run (echo)": [50.0, 40.0], "run (inception-v3-compat)": [300.0]}
    assert "1 non-finite left out" in ax.get_title()
    only = metric_curves(run, ["fid"], extractor="echo").axes[0]
    assert [[float(y) for y in ln.get_ydata()] for ln in only.lines] == [[50.0, 40.0]]
    assert "echo" in only.get_ylabel()
    empty = metric_curves(run, ["fid", "kid"]).axes  # a metric never recorded says so instead of plotting nothing
    assert [t.get_text().split("\n")[0] for t in empty[1].texts] == ["no kid records from train"]
    assert len(empty[0].texts) == 0 and len(empty[1].get_yticks()) == 0


def test_evaluate_runs_prints_every_run_and_reference_row_under_one_protocol(smoke_runs, tmp_path, capsys):
    import shutil

    from echolib.cli import main

    runs = tmp_path / "runs"
    for name in ("wgan", "pix2pix"):
        shutil.copytree(smoke_runs[name].path, runs / name / "smoke")
    argv = ["evaluate", "--real", "phantom", "--runs", str(runs), "--resolution", "64", "--extractor", "echo",
            "--metrics", "fid,kid,c2st_auc", "--n", "32", "--replicates", "8", "--device", "cpu", "--json"]
    assert main(argv) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    rows = list(dict.fromkeys(r["row"] for r in printed))
    from echolib.metrics.references import study_samples

    published = ["reference:published model"] if study_samples() is not None else []
    assert rows == ["wgan/smoke", "pix2pix/smoke", "reference:training frames", *published]
    keys = {"row", "metric", "value", "extractor", "extractor_sha256", "n_real", "n_fake", "real_fingerprint",
            "extractor_overlap"}
    assert all(keys <= set(r) for r in printed)
    # every row of the table: the same real set, the same sample sizes, the same weights
    for key in ("n_real", "n_fake", "real_fingerprint", "extractor_sha256", "protocol"):
        assert len({r[key] for r in printed}) == 1, key
    frames = scoring.load_frames("phantom", 64)
    splits = frames.split(scoring.run_heldout_videos(RunFolder(runs / "wgan" / "smoke"), frames))
    assert printed[0]["n_real"] == len(splits.heldout) and printed[0]["n_fake"] == 32
    assert printed[0]["real_fingerprint"] == scoring.make_protocol(splits, 32).real_fingerprint
    assert all(r["interval"][0] <= r["value"] <= r["interval"][1] for r in printed if r["metric"] != "kid"), \
        [(r["row"], r["metric"], r["value"], r["interval"]) for r in printed]
    stored = [json.loads(ln) for ln in (runs / "wgan" / "smoke" / "metrics.jsonl").read_text().splitlines()
              if '"compare"' in ln]
    assert [r["value"] for r in stored] == [r["value"] for r in printed if r["row"] == "wgan/smoke"]
    assert main(argv) == 0  # scored already under this protocol at this checkpoint: reused, not appended again
    capsys.readouterr()
    assert sum('"compare"' in ln for ln in (runs / "wgan" / "smoke" / "metrics.jsonl").read_text().splitlines()) == 3

    assert main([*argv, "--fake", str(tmp_path)]) == 2
    assert "leave out --fake" in capsys.readouterr().err
    assert main(["evaluate", "--real", "phantom", "--fake", str(tmp_path), "--resolution", "64"]) == 2
    assert "--resolution only applies with --runs" in capsys.readouterr().err
    for name in ("wgan", "pix2pix"):
        run = RunFolder(runs / name / "smoke")
        run.meta_file.write_text(json.dumps({**run.meta(), "data": "elsewhere", "data_fingerprint": "0" * 16}))
    assert main(argv) == 2  # a run of other data is never scored against these held-out videos
    err = capsys.readouterr().err
    assert "left out wgan/smoke: trained on other data" in err and "can be scored" in err


def test_a_run_is_scored_against_the_videos_it_held_out_never_its_training_frames(smoke_runs, capsys):
    """holdout_seed=1 holds out other videos than the default: its table is its own, against its own held-out set."""
    from echolib.cli import main

    other, default = smoke_runs["other"], smoke_runs["wgan"]
    frames = scoring.load_frames("phantom", 64)
    held_other = set(other.heldout_videos())
    assert held_other != set(default.heldout_videos())
    argv = ["evaluate", "--real", "phantom", "--runs", str(other.path.parent.parent), "--resolution", "64",
            "--metrics", "fid", "--n", "16", "--replicates", "0", "--device", "cpu", "--extractor", "echo", "--json"]
    assert main(argv) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    run_record = next(r for r in printed if r["row"] == "wgan/smoke")
    splits = frames.split(sorted(held_other))
    assert run_record["real_fingerprint"] == scoring.make_protocol(splits, 16).real_fingerprint
    assert run_record["n_real"] == len(splits.heldout)
    trained = set(frames.all.video_ids) - held_other
    assert not set(splits.heldout.video_ids) & trained  # none of the frames it was scored against was trained on
    no_holdout = dict(other.meta(), heldout_videos=[])
    other.meta_file.write_text(json.dumps(no_holdout))
    try:
        assert main(argv) == 2
        assert "trained on every video of its data" in capsys.readouterr().err
    finally:
        other.write_meta({k: v for k, v in no_holdout.items() if k != "heldout_fingerprint"} |
                         {"heldout_videos": sorted(held_other)})
