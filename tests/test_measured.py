"""Keeping a GPU session's records in the book: only curves, metric records and configs, renamed, no images."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from echolib.errors import ConfigError
from echolib.io import read_jsonl
from echolib.report.cpu_speed import (
    config_speedups,
    latest_cpu_records,
    latest_stability_records,
    speed_table,
    stability_runs,
    stability_summary,
)
from echolib.report.measured import (
    HELD_OUT,
    keep_run,
    keep_session,
    measured_evaluations,
    measured_runs,
    measured_table,
    measured_training,
    plot_measured,
    public_data,
    styled_measured,
)
from echolib.train.loop import train
from echolib.train.run_config import load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def session(noise_frames, tmp_path_factory) -> Path:
    """A work folder as bench/gpu_session.sh leaves it: a real run with metric records, stage outputs, stderr."""
    work = tmp_path_factory.mktemp("gpu-session")
    cfg = load_config("wgan", "smoke", {"train": {"kimg": 0.08, "metrics_kimg": 0.04, "metrics": ["jsd"],
                                                  "metrics_n": 16, "tensorboard": False}})
    train(cfg, noise_frames, work / "runs" / "wgan" / "smoke", device="cpu", progress=False)
    evaluated = [{"metric": "fid", "value": 12.5, "run": "wgan/smoke", "extractor": "echo"},
                 {"metric": "kid", "value": 0.01, "run": "wgan/smoke", "extractor": "echo"}]
    (work / "evaluate_runs.out").write_text("".join(json.dumps(r) + "\n" for r in evaluated)
                                            + '{"metric": "fid", "val')  # cut off by the stage's time limit
    (work / "evaluate_runs.err").write_text(f"Traceback: {work}/runs/wgan/smoke\n")
    (work / "machine.txt").write_text("NVIDIA H100 80GB HBM3, 81559 MiB, 550.54\ntorch 2.11.0\n")
    (work / "stages.jsonl").write_text('{"stage": "train_wgan", "rc": 124, "seconds": 300}\n')
    return work


def test_a_session_keeps_each_runs_record_under_its_label_and_nothing_else(session, tmp_path):
    run = session / "runs" / "wgan" / "smoke"
    assert list((run / "samples").glob("*.png")) and list((run / "checkpoints").glob("*.pt"))
    trained = read_jsonl(run / "metrics.jsonl")
    assert [r["kimg"] for r in trained] == pytest.approx([0.04, 0.08], abs=0.01)
    assert all(str(run) in r["run"] for r in trained)  # the trainer names the folder of the machine it ran on

    kept = keep_session(session, tmp_path / "measured", "h100-2026-11-28")
    folder = tmp_path / "measured" / "h100-2026-11-28" / "wgan-smoke"
    assert kept.runs == [folder]
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "log.csv", "metrics.jsonl", "run.json"]
    meta = json.loads((folder / "run.json").read_text())  # the held-out videos by count and fingerprint, no names
    assert "heldout_videos" not in meta and meta["heldout_video_count"] > 0 and len(meta["heldout_fingerprint"]) == 16
    assert (folder / "log.csv").read_text() == (run / "log.csv").read_text()
    records = read_jsonl(folder / "metrics.jsonl")
    assert [r["value"] for r in records] == [r["value"] for r in trained]
    assert {r["run"] for r in records} == {"h100-2026-11-28/wgan-smoke"}
    label = folder.parent
    assert sorted(p.name for p in label.iterdir()) == ["evaluate_runs.jsonl", "machine.txt", "stages.jsonl",
                                                         "wgan-smoke"]
    evaluated = read_jsonl(label / "evaluate_runs.jsonl")
    assert [(r["metric"], r["value"], r["run"]) for r in evaluated] == [("fid", 12.5, "h100-2026-11-28/wgan-smoke"),
                                                                          ("kid", 0.01, "h100-2026-11-28/wgan-smoke")]
    # no path of the session's machine survives in what the book keeps
    assert not any(str(session) in p.read_text() for p in label.rglob("*") if p.is_file())
    assert measured_runs(tmp_path / "measured", "wgan") == [folder]
    assert measured_runs(tmp_path / "measured", "medgan") == []
    keep_session(session, tmp_path / "measured", "cpu-2026-11-28")
    assert measured_runs(tmp_path / "measured", "wgan") == [tmp_path / "measured" / "cpu-2026-11-28" / "wgan-smoke",
                                                            folder]
    assert measured_runs(tmp_path / "measured", "wgan", resolution=64) == measured_runs(tmp_path / "measured", "wgan")
    assert measured_runs(tmp_path / "measured", "wgan", resolution=128) == []  # the smoke run trained at 64 px
    # the chapters' figures: loss curves and the trainer's metric curves of each run, titled with its label
    figures = plot_measured([folder], ["loss_D", "loss_G"], metrics=("jsd",))
    assert [f.get_suptitle() for f in figures] == ["h100-2026-11-28/wgan-smoke"] * 2
    assert len(figures[0].axes[0].lines) == 1 and len(figures[1].axes[0].lines[0].get_xdata()) == 2


def test_the_archive_a_lent_machine_returns_is_kept_the_same_way(session, tmp_path):
    archive = tmp_path / "session.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(session, arcname=".", filter=lambda m: None if m.name.endswith(".pt") else m)
    script = ROOT / "bench" / "keep_session.py"
    done = subprocess.run([sys.executable, str(script), str(archive), "--label", "h100-x", "--root",
                           str(tmp_path / "measured")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {"run": str(tmp_path / "measured" / "h100-x" / "wgan-smoke"),
                        "files": ["config.yaml", "log.csv", "metrics.jsonl", "run.json"]}
    direct = keep_session(session, tmp_path / "direct", "h100-x")
    for name in ("log.csv", "metrics.jsonl", "config.yaml"):
        assert (tmp_path / "measured" / "h100-x" / "wgan-smoke" / name).read_bytes() == \
            (direct.runs[0] / name).read_bytes()
    again = subprocess.run([sys.executable, str(script), str(archive), "--label", "h100-x", "--root",
                            str(tmp_path / "measured")], capture_output=True, text=True, check=False)
    assert again.returncode == 2 and "h100-x exists" in again.stderr and "--overwrite" in again.stderr


def test_what_is_not_a_session_is_refused_by_name(session, tmp_path):
    with pytest.raises(ConfigError, match="label 'a/b'"):
        keep_session(session, tmp_path, "a/b")
    with pytest.raises(ConfigError, match="no runs"):
        keep_session(tmp_path, tmp_path / "measured", "x")
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"not a tar archive")
    with pytest.raises(ConfigError, match="broken.tgz: not a readable session archive"):
        keep_session(broken, tmp_path / "measured", "x")
    with pytest.raises(ConfigError, match="no such session"):
        keep_session(tmp_path / "absent", tmp_path / "measured", "x")


def test_the_book_keeps_only_records():
    """book/measured holds curves, records and configs, never frames or frame names."""
    root = ROOT / "book" / "measured"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert path.suffix in {".csv", ".json", ".jsonl", ".yaml", ".txt", ".md"}, path
        text = path.read_text()
        assert not re.search(r"0X[0-9A-F]{16}", text), f"{path}: an EchoNet video name"
        assert "_build/gpu-session" not in text and "/work/" not in text, f"{path}: a path of the machine"


def test_the_measured_tables_are_the_records():
    """The book's tables of kept runs are generated from the records, so no number of them is typed anywhere."""
    root = ROOT / "book" / "measured"
    evaluations = measured_evaluations(root)
    records = [r for r in read_jsonl(root / "h100-2026-11-27b" / "evaluate_runs.jsonl") if r["metric"] in HELD_OUT]
    assert len(records) == 5 * len(HELD_OUT)
    for r in records:
        assert evaluations.loc[r["run"], HELD_OUT[r["metric"]]] == r["value"], r
        assert evaluations.loc[r["run"], "kimg evaluated"] == round(r["kimg"], 1)
    assert evaluations.loc["h100-2026-11-27b/medgan-E4", "protocol"] == "1000 samples vs 468 held-out, echo"
    medgan_runs = measured_evaluations(root, "medgan").index
    assert "h100-2026-11-27b/medgan-E4" in medgan_runs and all("/medgan-" in run for run in medgan_runs)
    # trained, never scored against held-out videos
    assert "h100-2026-11-27/stylegan2_ada-E4" not in measured_evaluations(root, "stylegan2_ada").index
    page = styled_measured(measured_table(root, "medgan", resolution=128)).to_html()
    medgan = evaluations.loc["h100-2026-11-27b/medgan-E4"]
    assert 'class="dataframe"' in page and f">{medgan['echo-FID']:.4g}<" in page and f">{medgan['kimg evaluated']:.1f}<" in page
    at_64 = measured_table(root, "diffusion", resolution=64).index
    assert "cpu-2026-11-27/diffusion-cpu64" in at_64 and "h100-2026-11-27b/diffusion-E4" not in at_64

    training = measured_training(root)
    wgan = root / "h100-2026-11-27b" / "wgan-E4"
    log = pd.read_csv(wgan / "log.csv")
    fids = [r for r in read_jsonl(wgan / "metrics.jsonl") if r["metric"] == "fid"]
    best = min(fids, key=lambda r: r["value"])
    row = training.loc["h100-2026-11-27b/wgan-E4"]
    assert row["kimg trained"] == round(log["kimg"].iloc[-1], 1)
    assert row["sec/kimg (median tick)"] == round(log["sec_per_kimg"].median(), 3)
    assert (row["trainer's best echo-FID"], row["at kimg"]) == (round(best["value"], 1), round(best["kimg"], 1))
    assert row["device"] == "NVIDIA H100 80GB HBM3" and row["resolution"] == 128
    diffusion_runs = measured_training(root, "diffusion").index
    assert {"cpu-2026-11-27/diffusion-cpu64", "h100-2026-11-27b/diffusion-E4"} <= set(diffusion_runs)
    assert all("/diffusion-" in run for run in diffusion_runs)


def test_the_readme_types_no_results():
    """Results live in the book, generated from records; a README table of numbers goes stale unseen."""
    readme = (ROOT / "README.md").read_text()
    dated = [line for line in readme.splitlines() if re.search(r"20\d\d-\d\d-\d\d", line)]
    assert dated == []
    numeric_cells = [line for line in readme.splitlines()
                     if line.startswith("|") and re.search(r"\|\s*\**[-−]?\d+[.,]\d+", line)]
    assert numeric_cells == []


def test_kept_runs_plot_readably_a_missing_loss_and_a_collapse():
    """The H100 VQGAN run never reached its prior; the WGAN run's FID went from 80 to 3,769."""
    root = ROOT / "book" / "measured" / "h100-2026-11-27b"
    losses, _ = plot_measured([root / "vqgan-E4"], ["loss_rec", "loss_prior"])
    rec, prior = losses.axes
    assert rec.lines and not prior.lines and [t.get_text() for t in prior.texts] == ["not logged"]
    _, metrics = plot_measured([root / "wgan-E4"], ["loss_D"])
    assert [ax.get_yscale() for ax in metrics.axes] == ["log", "log"]
    _, metrics = plot_measured([root / "medgan-E4"], ["loss_D"])  # one FID record: nothing to rescale
    assert {ax.get_yscale() for ax in metrics.axes} == {"linear"}


def test_cpu_speed_tables_come_from_the_records_and_mark_what_the_config_trains_with(noise_frames, tmp_path):
    root = tmp_path / "measured"
    folder = root / "cpu-2026-12-05"
    folder.mkdir(parents=True)
    (root / "cpu-2026-11-01").mkdir()  # older, and without a speed benchmark: not the latest
    case = {"architecture": "wgan", "config": "smoke", "tick_kimg": 0.1, "peak_mem_gb": 1.0, "load_avg_before": 0.5,
            "load_avg_after": 0.7}  # fmt: skip
    lines = [
        {**case, "variant": "fp32-1thread", "precision": "fp32", "channels_last": False, "compile": False, "threads": 1,
         "sec_per_kimg": 8.0, "achieved_gflops": 10.0},
        {**case, "variant": "fp32", "precision": "fp32", "channels_last": False, "compile": False, "threads": 2,
         "sec_per_kimg": 5.0, "speedup": 1.6},
        {**case, "variant": "bf16", "precision": "bf16", "channels_last": False, "compile": False, "threads": 2,
         "sec_per_kimg": 4.0, "speedup": 2.0, "speedup_vs_fp32": 1.25},
        {"variant": "compiled", "architecture": "wgan", "config": "smoke", "error": "exit 1: no compiler"},
        # two rounds of one variant and their summary: the table shows the summary only
        *({**case, "architecture": "pix2pix", "variant": "fp32", "round": i, "precision": "fp32", "sec_per_kimg": t}
          for i, t in enumerate((3.0, 5.0))),
        {**case, "architecture": "pix2pix", "variant": "fp32", "summary": True, "rounds": 2, "precision": "fp32",
         "sec_per_kimg": 4.0},
    ]  # fmt: skip
    (folder / "train_speed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert latest_cpu_records(root) == folder
    table = speed_table(folder)
    assert list(table.index) == [("pix2pix", "fp32"), *(("wgan", v) for v in ("fp32-1thread", "fp32", "bf16", "compiled"))]
    assert table.loc[("pix2pix", "fp32"), "s/kimg"] == 4.0 and table.loc[("pix2pix", "fp32"), "rounds"] == 2
    assert table.loc[("wgan", "fp32-1thread"), "speed-up"] == 1.0 and table.loc[("wgan", "bf16"), "vs fp32"] == 1.25
    assert table.loc[("wgan", "compiled"), "error"] == "exit 1: no compiler"
    # wgan's smoke config trains as written in fp32, contiguous, eager, on every core: the "fp32" case
    assert list(table["cpu64 uses"]) == ["yes", "", "yes", "", ""]
    assert config_speedups(folder).loc["wgan", "s/kimg"] == 5.0

    for precision, seed, fid in (("fp32", 0, 20.0), ("fp32", 1, 24.0), ("bf16", 0, 22.0)):
        run = tmp_path / "runs" / f"{precision}-{seed}"
        train(load_config("wgan", "smoke", {"train": {"kimg": 0.02, "tick_kimg": 0.01, "precision": precision,
                                                      "seed": seed, "sample_kimg": 0}}),
              noise_frames, run, device="cpu", progress=False)  # fmt: skip
        scored = [{"metric": "fid", "value": fid, "n_fake": 64, "n_real": 32, "kimg": 0.02, "source": "compare",
                   "interval": [fid - 3, fid + 3], "data": f"held-out videos of {noise_frames}"},
                  {"metric": "kid", "value": fid / 1000, "std": 0.001, "kimg": 0.02, "source": "compare"}]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scored))
        kept = keep_run(run, folder / f"wgan-smoke-{precision}-s{seed}", f"x/{precision}")
        facts, trained = (json.loads((folder / "run.json").read_text()) for folder in (kept, run))
        assert "heldout_videos" not in facts  # a count and a fingerprint, no video names
        assert facts["heldout_video_count"] == len(trained["heldout_videos"]) >= 1
        assert facts["data"] == noise_frames.name
        assert facts["precision"] == precision
        assert read_jsonl(kept / "metrics.jsonl")[0]["data"] == f"held-out videos of {noise_frames.name}"
    later = root / "cpu-2099-01-01"  # a later benchmark kept without stability runs
    later.mkdir()
    (later / "train_speed.jsonl").write_text((folder / "train_speed.jsonl").read_text())
    assert latest_cpu_records(root) == later and latest_stability_records(root, "wgan") == folder
    assert latest_stability_records(root, "medgan") is None
    runs = stability_runs(folder, "wgan")
    assert list(runs["precision"]) == ["bf16", "fp32", "fp32"] and runs["losses finite"].all()
    assert list(runs["echo-FID"]) == [22.0, 20.0, 24.0] and runs.loc["wgan-smoke-bf16-s0", "n fake / real"] == "64 / 32"
    summary = stability_summary(runs)
    # FID's range spans the fp32 runs' intervals; KID's records have none: values widened by their std
    fid_range = summary.loc["echo-FID", ["fp32 low", "fp32 high"]].tolist()
    assert fid_range == [17.0, 27.0] and summary.loc["echo-FID", "bf16 inside"]
    assert runs.loc["wgan-smoke-fp32-s1", ["echo-FID low", "echo-FID high"]].tolist() == [21.0, 27.0]
    assert math.isnan(runs.loc["wgan-smoke-fp32-s1", "KID low"])
    kid_range = summary.loc["KID", ["fp32 low", "fp32 high"]].tolist()
    assert kid_range == pytest.approx([0.019, 0.025]) and summary.loc["KID", "bf16 inside"]


@pytest.mark.parametrize(("text", "kept"), [
    ("held-out videos of /home/someone/data/frames", "held-out videos of frames"),
    ("../shared/data/echonet-dynamic-128/frames", "frames"),
    ("phantom", "phantom"),
    ("/a/b/ and c/d", "b and d"),
])  # fmt: skip
def test_a_kept_data_source_names_no_folder_of_the_machine(text: str, kept: str) -> None:
    assert public_data(text) == kept


def test_the_kept_synthetic_sets_and_their_utility_records_agree_with_their_runs():
    """A kept datasheet counts what it drew, names a run kept beside it, and the utility table shows the records."""
    from echolib.report import privacy

    root = ROOT / "book" / "measured"
    sheets = privacy.kept_datasheets(root)
    utility = privacy.kept_utility(root)
    for name, sheet in sheets.items():
        label = name.split("/")[0]
        counts = sheet["counts"]
        assert sheet["status"] == "complete" and counts["kept"] == sheet["n"], name
        assert counts["drawn"] == counts["kept"] + counts["rejected"], name
        assert sum(counts["kept_by_condition"].values()) == counts["kept"], name
        assert (root / sheet["model"]["run"]).is_dir(), f"{name}: its run is not kept beside it"
        assert sheet["model"]["run"].startswith(f"{label}/"), name
        thresholds = {s: v["threshold"] for s, v in sheet["privacy_filter"]["spaces"].items()}
        assert set(thresholds) == {"features", "pixel"} and all(t > 0 for t in thresholds.values()), name
        assert {r["metric"] for r in sheet["evaluation"]} >= {"fid", "c2st_auc", "memorized_fraction"}, name
    for name, records in utility.items():
        label = name.split("/")[0]
        table = privacy.utility_table(records).set_index("trained on")
        assert {"real", "synthetic", "both"} <= set(table.index), name
        for r in records:
            lo, hi = r["interval"]
            assert lo <= r["value"] <= hi, r
            column = "accuracy" if r["metric"] == "phase_accuracy" else "AUC"
            assert table.loc[r["train_set"], column].startswith(f"{r['value']:.3g} ["), r
        # the synthetic set it trained on is a kept set of the same session, tested on that run's held-out videos
        (synthetic,) = {r["synthetic"] for r in records}
        assert synthetic.startswith(f"{label}/") and synthetic in sheets, f"{name}: {synthetic} is not kept"
        sheet = sheets[synthetic]
        assert {r["n_test_videos"] for r in records} == {sheet["data"]["heldout_videos"]}, name
        assert {r["n_fake"] for r in records if r["train_set"] != "real"} == {sheet["n"]}, name
