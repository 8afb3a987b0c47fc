"""The metric validation suite: graded corruptions, the pixel classifier test, and human two-set judgments."""

from __future__ import annotations

import json

import pytest
import torch

from echolib.metrics import validation
from echolib.metrics.corruptions import SUITE_STRENGTHS, corrupt, duplicates
from echolib.metrics.inputs import ImageSet
from echolib.metrics.references import phantom_image_set


@pytest.fixture(scope="module")
def phantom():
    """64 px phantom frames of 60 hearts: 30 as the reference, 30 to corrupt."""
    images = phantom_image_set(60, seed=11)
    small = torch.nn.functional.interpolate(images.images.float(), size=64, mode="area").round().to(torch.uint8)
    images = ImageSet(small, images.video_ids, "phantom")
    return images.subset(torch.arange(120)), images.subset(torch.arange(120, 240))


def test_every_corruption_is_graded_and_the_identity_at_zero(phantom):
    _, base = phantom
    for kind, levels in SUITE_STRENGTHS.items():
        assert torch.equal(corrupt(base.images, kind, 0.0), base.images), kind
        previous = 0.0
        for s in levels:
            change = (corrupt(base.images, kind, s, seed=1).float() - base.images.float()).abs().mean().item()
            assert change > previous, (kind, s, change)  # a stronger corruption changes the frames more
            previous = change
    copies, source = duplicates(base.images, 0.5, seed=0)
    assert (source != torch.arange(len(base))).sum() == 60 and len(set(source.tolist())) <= 60 + 8
    assert torch.equal(copies, base.images[source])


def test_corruption_pairs_order_clean_then_weak_then_strong(phantom):
    _, base = phantom
    sets, pairs = validation.corruption_sets(base, {"blur": (1.0, 2.0), "duplicates": (0.5,)})
    assert list(sets) == [validation.CLEAN, "blur 1", "blur 2", "duplicates 0.5"]
    assert [(p.better, p.worse) for p in pairs] == [(validation.CLEAN, "blur 1"), ("blur 1", "blur 2"),
                                                    (validation.CLEAN, "duplicates 0.5")]
    dup = sets["duplicates 0.5"]
    groups: dict[bytes, set[str]] = {}
    for img, vid in zip(dup.images, dup.video_ids):
        groups.setdefault(img.numpy().tobytes(), set()).add(vid)
    assert all(len(v) == 1 for v in groups.values())  # a copy keeps its original's video: one fold in C2ST


def test_agreement_counts_what_each_metric_orders_right():
    scores = {"a": {"fid [echo]": 1.0, "recall [echo]": 0.9, "c2st_auc [echo]": 0.52, "ssim": 0.4},
              "b": {"fid [echo]": 5.0, "recall [echo]": 0.95, "c2st_auc [echo]": 0.8, "ssim": 0.4}}
    pairs = [validation.Pair("a", "b", "corruption")]
    rows = {r["column"]: r for r in validation.agreement(scores, pairs)}
    assert rows["fid [echo]"]["share"] == 1.0 and rows["c2st_auc [echo]"]["share"] == 1.0
    assert rows["recall [echo]"]["share"] == 0.0 and rows["recall [echo]"]["wrong"] == ["a vs b"]
    assert "ssim" in rows  # a metric with a direction is judged even if it may not rank
    assert validation.agreement({"a": {"ms_ssim": 0.3}, "b": {"ms_ssim": 0.4}}, pairs) == []  # no direction


def test_the_pixel_classifier_sees_blur_and_not_other_hearts(phantom):
    from echolib.metrics.c2st_pixels import c2st_pixels

    ref, base = phantom
    same = c2st_pixels(ref.images, base.images, ref.video_ids, base.video_ids, seed=0)
    blurred = c2st_pixels(ref.images, corrupt(base.images, "blur", 4.0), ref.video_ids, base.video_ids, seed=0)
    assert same.ci_low < 0.5 + 0.25 and same.auc < 0.75
    assert blurred.auc > 0.9 and blurred.ci_low > same.auc
    again = c2st_pixels(ref.images, base.images, ref.video_ids, base.video_ids, seed=0)
    assert again.auc == same.auc  # seeded: the same AUC every time


@pytest.mark.slow
def test_metrics_validate_on_the_phantom(tmp_path, capsys):
    from echolib.cli import main

    argv = ["metrics", "validate", "--real", "phantom", "--resolution", "64", "--n", "64", "--device", "cpu",
            "--corruptions", "blur,gain", "--json"]
    assert main(argv) == 0
    out = capsys.readouterr()
    records = [json.loads(line) for line in out.out.splitlines()]
    assert "no human judgments" in out.err
    scores = {(r["set"], r["column"]): r["value"] for r in records if r["record"] == "score"}
    agreement = {r["column"]: r for r in records if r["record"] == "agreement"}
    assert set(agreement) >= {"fid [echo]", "kid [echo]", "c2st_auc [echo]", "c2st_pixel_auc", "jsd"}
    pairs = [validation.Pair(r["better"], r["worse"], r["source"]) for r in records if r["record"] == "pair"]
    assert len(pairs) == 6 and {p.source for p in pairs} == {"corruption"}
    for column, row in agreement.items():  # the table is what the scores say, pair by pair
        wrong = [f"{p.better} vs {p.worse}" for p in pairs
                 if not validation.agreement({p.better: {column: scores[(p.better, column)]},
                                              p.worse: {column: scores[(p.worse, column)]}}, [p])[0]["share"]]
        assert row["wrong"] == wrong and row["agreed"] == row["pairs"] - len(wrong), column
    for kind in ("blur", "gain"):  # the strongest level is always far worse than clean frames
        assert scores[(f"{kind} {SUITE_STRENGTHS[kind][-1]:g}", "fid [echo]")] > \
            2 * scores[(validation.CLEAN, "fid [echo]")]
    # the comparison leads with the ranking metric that orders the most pairs right, read from these records
    from echolib.metrics.registry import ranking_metrics, spec
    from echolib.report.metric_validation import agreement_table, leading_metric, validated_metrics

    table = agreement_table(records)
    names = table["metric"].str.split(" [", regex=False).str[0]
    features = names.map(lambda m: m in ranking_metrics() and spec(m).space == "features")
    lead = leading_metric(records)
    assert lead in ranking_metrics() and spec(lead).space == "features"  # histograms validate, never lead
    assert table.loc[names == lead, "all pairs"].max() == table.loc[features, "all pairs"].max()
    assert lead in validated_metrics(records, share=0.0) and set(validated_metrics(records, 1.01)) == set()
    assert main([*argv[:-1], "--expect", "nonsense>blur 1"]) == 2
    assert "expected BETTER>WORSE" in capsys.readouterr().err


def test_two_set_questionnaire_answers_become_human_pairs(phantom, tmp_path):
    from echolib.images import write_gray
    from echolib.turing.app import TuringApp
    from echolib.turing.set_pairs import build_set_questionnaire, judged_pairs, set_images, votes
    from echolib.turing.simulate import select

    _, base = phantom
    folders = {}
    for name, images in (("clean", base.images[:40]), ("blurred", corrupt(base.images[:40], "blur", 4.0))):
        folders[name] = tmp_path / name
        for i, img in enumerate(images):
            write_gray(folders[name] / f"h{i // 4}_f{i % 4}.png", img[0].numpy())
    q, key = build_set_questionnaire(folders, tmp_path / "quest", repeats=3, grid=9, size=64, seed=3)
    assert len(q.questions) == 3 and all(x.format == "set_of_two" for x in q.questions)
    assert "clean" not in (tmp_path / "quest" / "questions.json").read_text()  # blinded: no set names for raters
    answers = tmp_path / "answers"
    assert judged_pairs(key, answers) == []  # no answers, no judgments
    sides = {x["id"]: x["sets"] for x in json.loads(key.read_text())["questions"]}
    for rater, prefer in (("dr-a", "clean"), ("dr-b", "clean"), ("dr-c", "blurred")):
        app = TuringApp(q.folder, answers)
        app.rater_box.value = rater
        app.start_button.click()
        while app.current is not None:
            select(app, (sides[app.current.id].index(prefer),), None)
            app.next_button.click()
    assert votes(key, answers) == {("blurred", "clean"): {"blurred": 3, "clean": 6}}
    [pair] = judged_pairs(key, answers)
    assert (pair.better, pair.worse, pair.source, pair.note) == ("clean", "blurred", "human", "6 of 9 picks")
    assert set(set_images(key, 64)) == {"clean", "blurred"}
    from echolib.errors import ConfigError
    from echolib.turing.questionnaire import load_key

    with pytest.raises(ConfigError, match="two-set questionnaire|a echolib.turing.set_pairs/1 key"):
        load_key(key)


@pytest.mark.slow
@pytest.mark.realdata
def test_metrics_validate_on_the_shared_frames(real_frames, study_samples, capsys):
    """On real frames the shipped extractor orders clean < weak < strong for blur, darkening and duplicates."""
    from echolib.cli import main

    argv = ["metrics", "validate", "--real", str(real_frames), "--resolution", "64", "--n", "128", "--device", "cpu",
            "--corruptions", "blur,gain,duplicates", "--published", "--json"]
    assert main(argv) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    agreement = {r["column"]: r for r in records if r["record"] == "agreement"}
    assert agreement["fid [echo]"]["pairs"] == 9
    assert agreement["fid [echo]"]["share"] == 1.0, agreement["fid [echo]"]["wrong"]
    scores = {(r["set"], r["column"]): r["value"] for r in records if r["record"] == "score"}
    assert scores[("published model", "fid [echo]")] > scores[(validation.CLEAN, "fid [echo]")]
    assert {r["n_real"] for r in records if r["record"] == "score"} == {944}  # the held-out videos of the study


def test_each_table_is_led_by_the_newest_suite_of_its_size_and_extractor(tmp_path) -> None:
    """Suites are read once (``kept_suites``) and each table asks for its own: newest label wins, no mismatch."""
    from echolib.report.metric_validation import kept_suites, suite_context, suite_for

    def suite(resolution: int, extractor: str, marker: str) -> list[dict]:
        return [{"record": "score", "resolution": resolution, "extractor": extractor, "real": marker}]

    for label, resolution, marker in (("a-2026-01-01", 64, "old"), ("b-2026-02-01", 64, "new"),
                                      ("b-2026-02-01", 128, "big")):
        folder = tmp_path / label
        folder.mkdir(exist_ok=True)
        lines = suite(resolution, "echo", marker)
        (folder / f"metric_validation-echo-{resolution}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    suites = kept_suites(tmp_path)
    assert len(suites) == 3
    assert suite_context(suite_for(suites, 64, "echo"))["real"] == "new"
    assert suite_context(suite_for(suites, 128, "echo"))["real"] == "big"
    assert suite_for(suites, 64, "inception") is None and suite_for(suites, 256, "echo") is None
