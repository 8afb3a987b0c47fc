"""The comparison table: best values per row, and the study's reference rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import STUDY_LOGS, need

from echolib.data.subset import copy_subset
from echolib.errors import ConfigError
from echolib.models.registry import available_architectures
from echolib.report import compare


def _records(arch: str, values: dict[str, list[float]]) -> list[dict]:
    recs = [{"metric": m, "value": v, "extractor": "echo" if m in ("fid", "precision") else None}
            for m, vs in values.items() for v in vs]
    return compare.label_records(recs, "ours", arch, "smoke")


def test_best_value_follows_each_metric_direction():
    records = _records("wgan", {"fid": [30.0, 12.0, 20.0], "precision": [0.2, 0.6], "c2st_auc": [0.9, 0.55, 0.3],
                                "psnr": [11.0, 14.0]})
    table = compare.comparison_table(records)
    row = table.iloc[0]
    assert row["fid [echo]"] == 12.0  # lower is better
    assert row["precision [echo]"] == 0.6  # higher is better
    assert row["c2st_auc"] == 0.55  # closest to chance
    assert row["psnr"] == 14.0


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
    """On real frames: a copier, the published model and the phantom, ordered as they should be."""
    copy_subset(real_frames, tmp_path / "frames", n=400)
    splits = compare.evaluation_splits(tmp_path / "frames", resolution=64)
    records, images = compare.reference_records(splits, study_samples, ("fid", "memorized_fraction"), n=96)
    assert set(images) == {"training frames", "published model", "phantom"}
    assert all(len(v) == 96 for k, v in images.items() if k != "training frames")
    value = {(r["architecture"], r["metric"]): r["value"] for r in records}
    assert all(np.isfinite(v) for v in value.values())
    assert value[("data", "fid")] < value[("stylegan2_ada (published)", "fid")] < value[("phantom", "fid")]
    assert value[("data", "memorized_fraction")] > 0.5  # the copier is caught
    assert value[("stylegan2_ada (published)", "memorized_fraction")] < 0.1
    assert {r["kind"] for r in records} == {"reference"}


def test_no_phantom_row_when_the_data_is_the_phantom():
    splits = compare.evaluation_splits("phantom", resolution=64)
    records, images = compare.reference_records(splits, None, ("fid",), n=32)
    assert set(images) == {"training frames"}
    assert [r["architecture"] for r in records] == ["data"]


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


def test_a_second_evaluation_of_a_run_reuses_its_records_and_other_data_is_left_out(tmp_path):
    import json

    from echolib.train.runs import ensure_run

    run = ensure_run("wgan", "smoke", "phantom", tmp_path / "runs", device="cpu", progress=False)
    splits = compare.evaluation_splits("phantom", resolution=64)
    images = compare.run_samples(run, 32, size=64, device="cpu")
    first = compare.evaluate_run(run, images, splits, ("fid", "kid"), device="cpu")
    again = compare.evaluate_run(run, images, splits, ("fid", "kid"), device="cpu")
    assert [r["value"] for r in again] == [r["value"] for r in first]
    compare_lines = [ln for ln in (run / "metrics.jsonl").read_text().splitlines() if '"compare"' in ln]
    assert len(compare_lines) == 2  # one record per metric, not one per build
    assert compare.find_runs(tmp_path / "runs", splits) == [run]
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "data": "elsewhere", "data_fingerprint": "0" * 16}))
    assert compare.find_runs(tmp_path / "runs", splits) == [] and compare.find_runs(tmp_path / "runs") == [run]


@pytest.mark.slow
def test_pix2pix_is_evaluated_on_the_contours_of_every_held_out_frame(tmp_path):
    from echolib.train.runs import ensure_run

    run = ensure_run("pix2pix", "smoke", "phantom", tmp_path / "runs", device="cpu", progress=False)
    splits = compare.evaluation_splits("phantom", resolution=128)  # the run trained at 64 px: conditions at its size
    held = len(splits.heldout)
    assert held > 16  # more unseen hearts than the 16 conditions its checkpoint stores
    images = compare.run_samples(run, held + 8, size=128, device="cpu", conditions_from=splits.heldout).float()
    # every held-out frame once, then from the first again: sample held+i translates frame i's contours
    same = (images[held:] - images[:8]).abs().mean(dim=(1, 2, 3))
    other = (images[held:] - images[1:9]).abs().mean(dim=(1, 2, 3))
    assert (same < other).all(), (same, other)
    small = compare.frames_at(splits.heldout, 64)
    assert small.resolution == 64 and small.names == splits.heldout.names
    assert compare.is_image_conditioned(run) and not compare.is_image_conditioned(
        ensure_run("wgan", "smoke", "phantom", tmp_path / "runs", device="cpu", progress=False))
    records = compare.evaluate_run(run, images, splits, ("fid",), device="cpu")
    assert records[0]["conditions"] == "held-out frames" and records[0]["n_fake"] == held + 8


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


def test_evaluate_runs_scores_each_run_against_its_held_out_videos(tmp_path, capsys):
    import json

    from echolib.cli import main
    from echolib.train.runs import ensure_run

    runs = tmp_path / "runs"
    run = ensure_run("wgan", "smoke", "phantom", runs, device="cpu", progress=False)
    argv = ["evaluate", "--real", "phantom", "--runs", str(runs), "--resolution", "64", "--extractor", "echo",
            "--metrics", "fid,kid", "--n", "32", "--device", "cpu", "--json"]
    assert main(argv) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["run"], r["metric"]) for r in printed] == [("wgan/smoke", "fid"), ("wgan/smoke", "kid")]
    splits = compare.evaluation_splits("phantom", resolution=64)
    assert all(r["n_real"] == len(splits.heldout) < len(splits.train) and r["n_fake"] == 32 for r in printed)
    stored = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if '"compare"' in ln]
    assert [r["value"] for r in stored] == [r["value"] for r in printed]
    assert main(argv) == 0  # evaluated already at this checkpoint: the records are reused, not appended again
    capsys.readouterr()
    assert sum('"compare"' in ln for ln in (run / "metrics.jsonl").read_text().splitlines()) == 2

    assert main([*argv, "--fake", str(tmp_path)]) == 2
    assert "leave out --fake" in capsys.readouterr().err
    assert main(["evaluate", "--real", "phantom", "--fake", str(tmp_path), "--resolution", "64"]) == 2
    assert "--resolution only applies with --runs" in capsys.readouterr().err
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "data": "elsewhere", "data_fingerprint": "0" * 16}))
    assert main(argv) == 2  # a run of other data is never scored against these held-out videos
    assert "no run folder" in capsys.readouterr().err
