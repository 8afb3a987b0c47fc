"""evaluate(): inputs of every kind, complete records, and the command line."""

from __future__ import annotations

import json
import math

import pytest
import torch

from echolib.cli import main
from echolib.data.frames import FrameDataset
from echolib.images import to_float, write_gray
from echolib.metrics import DEFAULT_METRICS, METRICS, evaluate, read_records
from echolib.metrics.records import RECORD_KEYS
from echolib.metrics.references import phantom_image_set


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two folders of phantom frames named like EchoNet frames (``<video>_f<k>.png``), different hearts."""
    root = tmp_path_factory.mktemp("sets")
    out = []
    for name, first in (("real", 0), ("fake", 30)):
        s = phantom_image_set(30, seed=7, first=first)
        folder = root / name
        folder.mkdir()
        for i, (image, video) in enumerate(zip(s.images, s.video_ids)):
            write_gray(folder / f"{video}_f{i % 4}.png", image[0].numpy())
        out.append(folder)
    return out


def test_every_default_metric_with_complete_records(folders, monkeypatch, tmp_path):
    monkeypatch.setenv("ECHOLIB_FEATURE_CACHE", str(tmp_path / "cache"))
    real, fake = folders
    recs = evaluate(real, fake, extractor="echo", device="cpu", kimg=12.5, run="runs/x")
    assert [r["metric"] for r in recs] == list(DEFAULT_METRICS)
    for r in recs:
        assert set(RECORD_KEYS) <= set(r) and r["metric"] in METRICS
        assert r["n_real"] == 120 and r["n_fake"] == 120 and r["kimg"] == 12.5 and r["run"] == "runs/x"
        assert r["value"] is not None and math.isfinite(r["value"])
        assert (r["extractor"] == "pixel") == (r["extractor_sha256"] is None)
    by = {r["metric"]: r for r in recs}
    assert 0 <= by["jsd"]["value"] <= math.sqrt(math.log(2)) and 0 <= by["jsd_sector"]["value"] <= math.sqrt(
        math.log(2)
    )
    assert by["ssim"]["pairing"] == "random" and "nearest" in by["ssim_nn"]["pairing"]
    assert by["ssim_nn"]["value"] > by["ssim"]["value"]  # the nearest real image is more alike than a random one
    assert 0 <= by["precision"]["value"] <= 1 and 0 <= by["c2st_auc"]["value"] <= 1
    assert by["c2st_auc"]["interval"][0] <= by["c2st_auc"]["value"] <= by["c2st_auc"]["interval"][1]
    mem = by["memorized_fraction"]  # calibrated by leaving whole videos of the real set out (no training set given)
    assert mem["definition"] == "calibrated/1" and mem["calibration"].startswith("leave-one-video-out")
    assert mem["value"] < 0.2 and mem["interval"][0] <= mem["heldout_interval"][1]  # other hearts: chance, no more
    assert 0 < by["ms_ssim"]["value"] < 1 and 0 < by["ms_ssim"]["real_value"] < 1 and by["ms_ssim"]["scales"] == 5
    assert list((tmp_path / "cache").glob("echo-*.pt"))  # features were cached
    # a second call reads the cache and returns the same numbers
    again = {r["metric"]: r["value"] for r in evaluate(real, fake, metrics=["fid", "c2st_auc"], extractor="echo", device="cpu")}
    assert again["fid"] == by["fid"]["value"] and again["c2st_auc"] == by["c2st_auc"]["value"]


def test_a_64_px_comparison_scores_diversity_on_four_scales():
    real, fake = (phantom_image_set(8, seed=3, first=f).images for f in (0, 8))
    small = [torch.nn.functional.avg_pool2d(x.float(), 2).round().to(torch.uint8) for x in (real, fake)]
    (rec,) = evaluate(*small, metrics=["ms_ssim"], device="cpu")
    assert rec["scales"] == 4 and 0 < rec["value"] < 1 and 0 < rec["real_value"] < 1


def test_inputs_of_every_kind_give_the_same_numbers(folders, tmp_path):
    real, fake = folders
    ds_real, ds_fake = FrameDataset(real), FrameDataset(fake)
    metrics = ["fid", "jsd", "ssim"]
    from_paths = evaluate(real, fake, metrics=metrics, extractor="echo", device="cpu", cache=False)
    from_datasets = evaluate(ds_real, ds_fake, metrics=metrics, extractor="echo", device="cpu", cache=False)
    from_tensors = evaluate(ds_real.images, ds_fake.images, metrics=metrics, extractor="echo", device="cpu", cache=False)
    floats = to_float(ds_fake.images)

    def sampler(n: int, g: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(floats), (n,), generator=g)
        return floats[idx]

    from_sampler = evaluate(ds_real, sampler, metrics=metrics, n=50, extractor="echo", device="cpu", cache=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 1  # the real subset is cached, the sampler's draws are not
    for a, b, c in zip(from_paths, from_datasets, from_tensors):
        assert a["value"] == b["value"] == c["value"]
    assert [r["n_fake"] for r in from_sampler] == [50] * 3 and [r["n_real"] for r in from_sampler] == [50] * 3
    again = evaluate(ds_real, sampler, metrics=metrics, n=50, extractor="echo", device="cpu", cache=False)
    assert [r["value"] for r in again] == [r["value"] for r in from_sampler]  # seeded draws


def test_unknown_metric_and_size_mismatch_are_user_errors(folders):
    from echolib.errors import ConfigError, DataError

    real, _ = folders
    with pytest.raises(ConfigError, match="unknown metrics"):
        evaluate(real, real, metrics=["FID"])
    small = torch.zeros(10, 1, 64, 64, dtype=torch.uint8)
    with pytest.raises(DataError, match="need one size"):
        evaluate(real, small, metrics=["ssim"], cache=False)
    with pytest.raises(DataError, match="sampler needs n"):
        from echolib.metrics.inputs import as_image_set

        as_image_set(lambda n, g: torch.zeros(n, 1, 8, 8))


def test_cli_json_lines_and_append_only_records(folders, tmp_path, capsys):
    real, fake = folders
    records = tmp_path / "metrics.jsonl"
    argv = [
        "evaluate",
        "--extractor",
        "echo",
        "--real",
        str(real),
        "--fake",
        str(fake),
        "--metrics",
        "fid,kid,jsd,psnr",
        "--records",
        str(records),
        "--json",
        "--device",
        "cpu",
        "--no-cache",
    ]
    assert main(argv) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["metric"] for x in lines] == ["fid", "kid", "jsd", "psnr"]
    for x in lines:
        assert {"metric", "value", "extractor", "n_real", "n_fake"} <= set(x)
    assert main(argv) == 0
    capsys.readouterr()
    assert len(read_records(records)) == 8  # appended, not overwritten
    assert (
        main(
            [
                "evaluate",
                "--extractor",
                "echo",
                "--real",
                str(real),
                "--fake",
                str(fake),
                "--metrics",
                "fid,ssim",
                "--records",
                str(records),
                "--device",
                "cpu",
                "--no-cache",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "fid" in table and "ssim" in table and str(fake) in table
    gallery = tmp_path / "gallery.png"
    assert (
        main(
            [
                "evaluate",
                "--extractor",
                "echo",
                "--real",
                str(real),
                "--fake",
                str(fake),
                "--metrics",
                "fid",
                "--records",
                str(records),
                "--device",
                "cpu",
                "--no-cache",
                "--gallery",
                str(gallery),
            ]
        )
        == 0
    )
    assert gallery.stat().st_size > 1000
    capsys.readouterr()
    assert main(["evaluate", "--real", str(real), "--fake", str(fake), "--metrics", "nope"]) == 2
    assert "unknown metrics" in capsys.readouterr().err


def test_cli_default_extractor_is_inception_and_fails_at_once_offline(folders, tmp_path, capsys, monkeypatch):
    import torch

    from echolib.metrics import fidelity

    real, fake = folders
    monkeypatch.delenv(fidelity.ENV_INCEPTION_WEIGHTS, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    argv = ["evaluate", "--real", str(real), "--fake", str(fake), "--metrics", "fid", "--device", "cpu", "--no-cache",
            "--records", str(tmp_path / "m.jsonl")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Inception-v3 weights" in err and str(tmp_path / "hub") in err and "ECHOLIB_INCEPTION_WEIGHTS" in err


@pytest.mark.slow
@pytest.mark.realdata
def test_cli_on_shared_real_frames_vs_the_study(real_frames, study_samples, tmp_path, capsys):
    """The issue's command on the real data, with the study and the phantom as reference rows."""
    records = tmp_path / "m.jsonl"
    assert (
        main(
            [
                "evaluate",
                "--extractor",
                "echo",
                "--real",
                str(real_frames),
                "--fake",
                str(study_samples),
                "--n",
                "2000",
                "--json",
                "--records",
                str(records),
                "--device",
                "cpu",
                "--references",
            ]
        )
        == 0
    )
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    by_run: dict[str, dict[str, float]] = {}
    for r in recs:
        by_run.setdefault(r["run"], {})[r["metric"]] = r["value"]
    study = by_run[str(study_samples)]
    phantom = by_run["reference:phantom"]
    assert set(DEFAULT_METRICS) <= set(study)
    assert study["fid"] < phantom["fid"] and study["c2st_auc"] < phantom["c2st_auc"]
    assert phantom["c2st_auc"] > 0.97
    assert study["jsd"] == pytest.approx(0.0195, abs=0.003)
