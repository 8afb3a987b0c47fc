"""The *Utility and privacy* chapter: its tables and figure read a real synthesized folder, and the chapter executes.

A phase-conditioned smoke run on a small phantom, a filtered set of 8 samples
drawn from it, and the phase utility test on it: the report functions are
checked against what the folder's own files say, and the chapter is executed on
the phantom as the book runs it.
"""

from __future__ import annotations

import csv
import json
import math
import shutil

import matplotlib.pyplot as plt
import pytest

from echolib.data.phantom import generate
from echolib.metrics import utility
from echolib.pipeline import synthesize as syn
from echolib.pipeline.utility import run_utility
from echolib.report import privacy


@pytest.fixture(autouse=True)
def feature_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ECHOLIB_FEATURE_CACHE", str(tmp_path_factory.getbasetemp() / "features"))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(frames, run, a filtered set of 8 ES/ED samples) on 240 phantom frames at 64 px, a quarter held out."""
    from echolib.train.runs import ensure_run

    root = tmp_path_factory.mktemp("privacy")
    data = generate(root / "frames", 240, size=64, seed=5, workers=1, progress=False)
    run = ensure_run("diffusion", "smoke_cond", str(data), root / "runs", kimg=0.04, device="cpu", progress=False,
                     overrides={"train": {"holdout": 0.25}})
    out = root / "runs" / "synthetic" / "set"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECHOLIB_FEATURE_CACHE", str(tmp_path_factory.getbasetemp() / "features"))
        syn.synthesize(run, 8, out, privacy_filter=True, conditions=["ES", "ED"], batch=4, device="cpu", n_eval=8,
                       progress=False)
    return data, run, out


@pytest.fixture(scope="module")
def utility_records(made):
    data, run, out = made
    records, _ = run_utility(str(data), out, run=run, recipe=utility.Recipe(steps=30))
    return records


def _manifest(out):
    with open(out / syn.MANIFEST, newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_datasheet_table_shows_its_key_fields_and_no_path_of_this_machine(made, tmp_path_factory):
    _, _, out = made
    sheet = privacy.read_datasheet(out)
    table = privacy.datasheet_table(sheet)
    fields = dict(zip(table["field"], table["value"]))
    assert fields["run"] == "diffusion/smoke_cond" and fields["privacy filter"] == "applied"
    assert fields["checkpoint sha256"] == sheet["model"]["checkpoint_sha256"][:16] + "…"
    assert fields["percentile"].startswith("5 %") and fields["kept per label"] == "ED 4, ES 4"
    c = sheet["counts"]
    assert fields["drawn / flagged / rejected / kept"] == f"{c['drawn']} / {c['flagged']} / {c['rejected']} / 8"
    assert f"{sheet['privacy_filter']['spaces']['pixel']['threshold']:.4g}" in fields["thresholds"]
    assert fields["evaluated"] == f"{len(syn.EVAL_METRICS)} records on 8 kept samples"
    shown = " ".join(map(str, table["value"]))
    assert str(tmp_path_factory.getbasetemp()) not in shown and "/tmp/" not in shown
    assert set(privacy.evaluation_table(sheet)["metric"]) == set(syn.EVAL_METRICS)


def test_the_memorisation_table_carries_the_calibration_and_every_rate(made):
    _, _, out = made
    sheet, rows = privacy.read_datasheet(out), _manifest(out)
    table = privacy.memorization_table(sheet, rows).set_index("space")
    assert list(table.index) == ["features", "pixel"]
    for space, column in privacy.DISTANCE_COLUMNS.items():
        cal = sheet["privacy_filter"]["spaces"][space]
        row = table.loc[space]
        assert row["threshold"] == f"{cal['threshold']:.4g}" and row["percentile"] == "5 %"
        assert row["held-out flagged"].startswith(f"{100 * cal['heldout_flag_rate']:.1f} % [")
        flagged = sum(float(r[column]) <= cal["threshold"] for r in rows)
        assert row["draws flagged"].startswith(f"{100 * flagged / len(rows):.1f} % [")
        assert row["kept flagged"].startswith("0.0 % [")  # the filter let no flagged draw through
        assert row["same video flagged"] == f"{100 * cal['same_video_flag_rate']:.1f} %"
        record = next(r for r in sheet["evaluation"] if privacy.MEMORIZATION_METRICS.get(r["metric"]) == space)
        assert row["median distance, held-out / kept"] == \
            f"{cal['heldout_median_nn_distance']:.3g} / {record['median_nn_distance']:.3g}"
    without = privacy.memorization_table(sheet)  # a kept datasheet travels without its manifest
    assert list(without["draws flagged"]) == ["–", "–"] and list(without["threshold"]) == list(table["threshold"])


def test_inspect_calibrates_as_synthesize_did_and_pairs_the_closest_samples(made):
    _, _, out = made
    sheet, rows = privacy.read_datasheet(out), _manifest(out)
    view = syn.inspect(out, k=3, device="cpu")
    kept = [r for r in rows if r["passed"] == "true"]
    for space, column in privacy.DISTANCE_COLUMNS.items():
        cal = sheet["privacy_filter"]["spaces"][space]
        assert math.isclose(view.thresholds[space], cal["threshold"], rel_tol=1e-6)
        assert len(view.heldout[space]) == cal["n_calibration"] + cal["n_check"]
        assert len(view.draws[space]) == len(rows) == len(view.passed)
        pairs = view.pairs[space]
        assert len(pairs) == 3 and [p["distance"] for p in pairs] == sorted(p["distance"] for p in pairs)
        for p in pairs:  # the distance found again is the manifest's, to its 6 digits
            assert math.isclose(p["distance"], float(kept[p["fake_index"]][column]), rel_tol=1e-4)
            assert p["fake"].shape == p["train"].shape == (64, 64) and not p["flagged"]
    fig = privacy.distance_figure(view.heldout, view.draws, view.thresholds, view.passed)
    assert len(fig.axes) == 2
    for ax, space in zip(fig.axes, ("features", "pixel")):
        assert any(list(line.get_xdata()) == [view.thresholds[space]] * 2 for line in ax.get_lines())
    plt.close(fig)


def test_the_utility_table_is_made_from_the_records(utility_records):
    table = privacy.utility_table(utility_records)
    assert list(table["trained on"]) == ["real", "synthetic", "both"]
    by = {r["train_set"]: r for r in utility_records if r["metric"] == "phase_auc"}
    for _, row in table.iterrows():
        r = by[row["trained on"]]
        assert row["AUC"] == f"{r['value']:.3g} [{r['interval'][0]:.3g}, {r['interval'][1]:.3g}]"
        assert row["training frames"] == r["n_train"] and row["of them synthetic"] == r["n_fake"]
    assert table.loc[1, "of them synthetic"] == 8 and table.loc[0, "of them synthetic"] == 0
    context = privacy.utility_context(utility_records)
    assert "held-out videos of run diffusion/smoke_cond" in context and "manifest condition" in context
    verdict = privacy.utility_verdict(utility_records)
    assert verdict.startswith("trained on synthetic frames, phase_auc ") and "real alone" in verdict


def test_the_verdict_reads_the_intervals(utility_records):
    def records(syn_interval, real_interval=(0.9, 0.99)):
        out = []
        for name, interval in (("real", real_interval), ("synthetic", syn_interval)):
            out.append({"metric": "phase_auc", "train_set": name, "value": sum(interval) / 2, "interval": interval})
        return out

    assert "chance (0.5) lies in its interval" in privacy.utility_verdict(records((0.4, 0.6)))
    assert "below real frames'" in privacy.utility_verdict(records((0.6, 0.8)))
    assert "no different from real frames'" in privacy.utility_verdict(records((0.85, 0.95)))
    assert privacy.utility_verdict([]).startswith("no phase_auc records")


def test_the_copying_verdict_compares_the_draws_with_unseen_patients_by_their_intervals():
    def sheet(draws, held):
        return {"counts": {"flag_rate": sum(draws) / 2, "flag_rate_interval": draws, "rejected": 7},
                "privacy_filter": {"heldout_rejection_rate": sum(held) / 2, "heldout_rejection_interval": held}}

    assert "reproduces training frames" in privacy.copying_verdict(sheet((0.2, 0.3), (0.05, 0.15)))
    assert "removed the 7 flagged draws" in privacy.copying_verdict(sheet((0.2, 0.3), (0.05, 0.15)))
    assert "fewer than unseen patients" in privacy.copying_verdict(sheet((0.04, 0.06), (0.07, 0.14)))
    assert "no different within the intervals" in privacy.copying_verdict(sheet((0.04, 0.09), (0.07, 0.14)))
    assert privacy.copying_verdict({"counts": {}, "privacy_filter": {}}).startswith("the datasheet has no")


def test_kept_records_are_read_from_book_measured(made, utility_records, tmp_path):
    _, _, out = made
    assert privacy.DATASHEET == syn.DATASHEET  # one name, spelled in two layers
    assert privacy.kept_utility(tmp_path) == {} and privacy.kept_datasheets(tmp_path) == {}
    label = tmp_path / "cpu-2026-12-06"
    (label / "synthesize-cpu64").mkdir(parents=True)
    shutil.copy(out / syn.DATASHEET, label / "synthesize-cpu64" / syn.DATASHEET)
    (label / "utility-cpu64.jsonl").write_text("".join(json.dumps(r) + "\n" for r in utility_records))
    (label / "other.jsonl").write_text("{}\n")
    kept = privacy.kept_utility(tmp_path)
    assert list(kept) == ["cpu-2026-12-06/utility-cpu64.jsonl"] and len(kept["cpu-2026-12-06/utility-cpu64.jsonl"]) == 6
    sheets = privacy.kept_datasheets(tmp_path)
    assert list(sheets) == ["cpu-2026-12-06/synthesize-cpu64"]
    assert sheets["cpu-2026-12-06/synthesize-cpu64"]["n"] == 8


def test_unlabelled_frames_say_when_a_conditional_model_cannot_train(made, tmp_path):
    data, _, _ = made
    assert privacy.unlabelled_frames(str(data), "diffusion", "smoke_cond") == (0, 240, "phase_label")
    assert privacy.unlabelled_frames(str(data), "diffusion", "smoke") == (0, 240, None)
    bare = tmp_path / "bare"
    bare.mkdir()
    for png in sorted(data.glob("*.png"))[:12]:
        shutil.copy(png, bare / png.name)
    assert privacy.unlabelled_frames(str(bare), "diffusion", "smoke_cond") == (12, 12, "phase_label")
