"""The study's training logs: summary rows dropped, headline numbers recovered."""

from __future__ import annotations

import pytest

from echolib.report.study_logs import load_study_logs, read_log, study_best_per_arch


def test_summary_rows_are_dropped(tmp_path):
    p = tmp_path / "metrics_wganW1.csv"
    p.write_text(
        "epoch,loss_G,loss_D,FID,KID,JSD,SSIM,PSNR,LPIPS\n"
        "5,1.0,-1.0,200.0,0.2,0.5,0.3,13.0,0.4\n"
        "10,0.9,-0.9,150.0,0.1,0.5,0.3,13.1,0.4\n"
        ",,,45,45,510,1075,555,5\n"
        "PROMEDIO,,,135.6,0.1,0.5,0.3,12.7,0.4\n"
    )
    df = read_log(p)
    assert df["epoch"].tolist() == [5, 10]
    assert df["fid"].tolist() == [200.0, 150.0]


@pytest.mark.realdata
def test_headline_numbers_of_the_study(request):
    from conftest import STUDY_LOGS, need

    root = need(STUDY_LOGS)
    best = study_best_per_arch(root).set_index("arch")
    expected = {"stylegan2_ada": ("E4", 9.17), "medgan": ("M2", 63.47), "wgan": ("W6", 68.31), "vqgan": ("VQ6", 139.47)}
    for arch, (config, fid) in expected.items():
        assert best.loc[arch, "config"] == config
        assert best.loc[arch, "fid"] == pytest.approx(fid, abs=0.01)
    assert best.loc["stylegan2_ada", "best_kimg"] == pytest.approx(764, abs=1)
    logs = load_study_logs(root)
    assert set(logs["arch"]) == set(expected)
    assert logs.groupby("arch")["config"].nunique().to_dict() == {"medgan": 8, "stylegan2_ada": 8, "vqgan": 8, "wgan": 8}
