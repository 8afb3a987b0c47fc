"""One home for each concept: run-folder file names, metric directions and the evaluation protocol are defined once."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from echolib.metrics import intervals, registry
from echolib.train.run_folder import RunFolder, videos_fingerprint

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for folder in ("echolib", "bench", "notebooks") for p in (ROOT / folder).rglob("*.py")]


def test_no_run_folder_file_name_is_spelled_outside_the_run_folder_module():
    names = [RunFolder.CONFIG, RunFolder.META, RunFolder.LOG, RunFolder.METRICS, RunFolder.DONE, RunFolder.BEST]
    pattern = re.compile("(" + "|".join(re.escape(n) for n in names) + r")[\"']|/ [\"'](checkpoints|samples)[\"']")
    home = ROOT / "echolib" / "train" / "run_folder.py"
    offenders = []
    for path in SOURCES:
        if path == home:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and "torch.hub" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_metric_directions_live_in_the_registry_alone():
    home = ROOT / "echolib" / "metrics" / "registry.py"
    pattern = re.compile(r"^\s*(DIRECTION|RANKED|RANKING|DEFAULT_METRICS)\s*[:=]", re.MULTILINE)
    assert [p.relative_to(ROOT) for p in SOURCES if p != home and pattern.search(p.read_text())] == []
    assert registry.DEFAULT_METRICS == tuple(s.name for s in registry.REGISTRY.values() if s.default)
    assert set(registry.ranking_metrics()) == {"fid", "kid", "precision", "recall", "jsd", "jsd_sector", "c2st_auc",
                                               "c2st_pixel_auc"}
    assert registry.best_of("fid", [3.0, 1.0]) == 1.0 and registry.best_of("recall", [0.2, 0.7]) == 0.7
    assert registry.best_of("c2st_auc", [0.9, 0.45, 0.6]) == 0.45


def test_a_run_folder_reads_what_the_trainer_wrote(tmp_path):
    run = RunFolder(tmp_path / "wgan" / "E1")
    assert run.label == "wgan/E1" and run.meta() == {} and run.heldout_videos() is None
    assert run.latest_kimg() is None and not run.has_checkpoints() and not run.is_complete(1.0)
    run.path.mkdir(parents=True)
    run.write_meta({"arch": "wgan", "heldout_videos": ["b", "a"]})
    assert run.meta()["heldout_fingerprint"] == videos_fingerprint(["a", "b", "a"])
    assert run.heldout_videos() == ["b", "a"] and run.arch == "wgan"
    run.checkpoints_dir.mkdir()
    for nimg in (4000, 12000):
        run.checkpoint_file(nimg).write_bytes(b"")
    run.best_checkpoint.write_bytes(b"")
    assert run.checkpoints() == [run.checkpoint_file(4000), run.checkpoint_file(12000)] and run.latest_kimg() == 12.0
    run.done_file.write_text('{"kimg": 12.0}')
    assert run.is_complete(12.0) and not run.is_complete(12.5)
    run.samples_dir.mkdir()
    run.sample_file("grid", 4000).write_bytes(b"")
    run.sample_file("recon", 4000).write_bytes(b"")
    assert run.sample_grids() == [(4.0, run.sample_file("grid", 4000))]


def test_fid_from_data_equals_torch_fidelity():
    from echolib.metrics.fidelity import fid

    rng = np.random.default_rng(0)
    for n_real, n_fake, d in ((300, 200, 20), (30, 40, 50)):  # d below both sizes, and above
        real, fake = rng.normal(size=(n_real, d)), rng.normal(size=(n_fake, d)) * 1.2 + 0.3
        expected = fid(torch.from_numpy(fake).float(), torch.from_numpy(real).float())
        assert intervals.frechet_from_data(real, fake) == pytest.approx(expected, rel=1e-4)


def test_half_sample_intervals_contain_the_estimate_and_narrow_with_more_videos():
    from echolib.metrics.fidelity import fid

    rng = np.random.default_rng(1)
    widths = []
    for videos in (50, 400):
        real = np.repeat(rng.normal(size=(videos, 8)), 4, axis=0) + 0.3 * rng.normal(size=(4 * videos, 8))
        fake = rng.normal(size=(4 * videos, 8)) * 1.1 + 0.2
        groups_real = [f"v{i // 4}" for i in range(4 * videos)]
        groups_fake = [f"s{i}" for i in range(4 * videos)]
        value = fid(torch.from_numpy(fake).float(), torch.from_numpy(real).float())
        lo, hi = intervals.subsample_interval(intervals.fid_statistic(real, fake), value, groups_real, groups_fake,
                                              30, lower_bound=0.0)
        assert 0 <= lo < value < hi
        widths.append(hi - lo)
    assert widths[1] < 0.6 * widths[0]  # eight times the videos: about a third of the width


def test_an_auc_interval_keeps_a_width_at_perfect_separation():
    from echolib.metrics.c2st import c2st

    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(120, 4, generator=g), torch.randn(120, 4, generator=g) + 8.0
    result = c2st(real, fake, [f"v{i // 4}" for i in range(120)])
    assert result.auc == 1.0 and result.ci_high == 1.0
    assert 0.9 < result.ci_low < 0.99  # a Wald interval would read [1, 1]
    lo, hi = intervals.auc_score_interval(0.0, 0.0, 100)
    assert lo == 0.0 and 0.0 < hi < 0.1
