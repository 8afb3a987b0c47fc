"""The data chapter's figures and tables, on phantom clips and a tiny EchoNet-layout folder made from them."""

from __future__ import annotations

import csv
import dataclasses

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from echolib.data.echonet import (
    bright_counts,
    finish_frame,
    heuristic_on_clips,
    heuristic_on_echonet,
    masked_clip,
    read_video,
    study_mask,
    to_study_gray,
    tracing_from_mask,
)
from echolib.data.frames import FrameDataset
from echolib.data.phantom_sim import render_clip
from echolib.metrics.pixel import intensity_histogram, sector_mask
from echolib.report.data_figures import (
    bright_count_curve,
    by_video,
    clip_picks,
    contrast_histograms,
    cycle_positions,
    echonet_picks,
    frame_panels,
    heuristic_table,
    image_row,
    intensity_histograms,
    intensity_summary,
    kept_frames,
    pick_contrast,
    preprocessing_steps,
    sector_histogram,
    split_summary,
    video_grid,
)


@pytest.fixture(scope="module")
def clips():
    return [render_clip(40, seed=s, size=112, smooth=False, fps=40, heart_rate=80) for s in range(3)]


@pytest.fixture(scope="module")
def echonet(tmp_path_factory, clips):
    """Three traced phantom videos in EchoNet's layout, plus a traced video whose file is missing."""
    root = tmp_path_factory.mktemp("EchoNet-Dynamic")
    (root / "Videos").mkdir()
    with open(root / "VolumeTracings.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["FileName", "X1", "Y1", "X2", "Y2", "Frame"])
        for i, clip in enumerate([clips[0], clips[0], clips[1], clips[2]]):
            vid = f"0XVIDEO{i}"
            if i != 1:  # 0XVIDEO1 is traced but its video is missing
                writer = cv2.VideoWriter(str(root / "Videos" / f"{vid}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 40,
                                         (112, 112), True)
                for f in clip.frames:
                    writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
                writer.release()
            for frame in (clip.es_frames[0], clip.ed_frames[0]):
                for row in tracing_from_mask(clip.lv_masks[frame]):
                    w.writerow([f"{vid}.avi", *np.round(row, 2), frame])
    return root


def test_preprocessing_steps_compose_to_the_recipe(clips):
    frame = clips[0].frames[5]
    steps = preprocessing_steps(frame)
    names = list(steps)
    mask, masked = steps["sector mask"], steps["masked"]
    assert steps[names[0]].shape == mask.shape == masked.shape == (112, 112)
    assert np.array_equal(mask, study_mask())
    assert np.array_equal(masked, to_study_gray(frame))  # what the study counts on
    assert not masked[mask == 0].any() and np.array_equal(masked[mask == 1], frame[mask == 1])
    assert steps[names[3]].shape == (128, 128)
    assert np.array_equal(steps[names[4]], finish_frame(masked))  # the two shown operations are the recipe's
    assert int(steps[names[5]].sum()) == int(bright_counts(masked[None])[0])
    # a BGR frame of another size goes through the same path
    big = cv2.cvtColor(cv2.resize(frame, (224, 224), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
    assert np.array_equal(preprocessing_steps(big)["masked"], to_study_gray(big))


def test_raw_video_masked_is_what_preprocessing_reads(echonet):
    path = echonet / "Videos" / "0XVIDEO0.avi"
    raw = read_video(path, masked=False)
    assert raw.shape[1:] == (112, 112) and raw.dtype == np.uint8
    assert np.array_equal(raw * study_mask(), read_video(path))
    assert raw[:, study_mask() == 0].any()  # the phantom's fan reaches past the study's mask: masking matters


def test_clip_table_matches_echonet_scoring_and_swaps(clips):
    picks = clip_picks(clips)
    assert list(picks["n_frames"]) == [40, 40, 40]
    mask = study_mask()
    for (_, row), clip in zip(picks.iterrows(), clips):
        counts = ((clip.frames * mask) > 30).sum(axis=(1, 2))  # the study's count, written out
        assert row["systole"] == np.argmax(counts) and row["diastole"] == np.argmin(counts)
    table = heuristic_table(picks, ks=(1, 3))
    masked = [dataclasses.replace(c, frames=masked_clip(c.frames)) for c in clips]
    assert all(np.array_equal(m.frames, c.frames * mask) for m, c in zip(masked, clips))
    reference = heuristic_on_clips(masked, ks=(1, 3))
    for (pick, target), name in ((("most bright pixels", "ES"), "ES"), (("fewest bright pixels", "ED"), "ED")):
        assert table.loc[(pick, target), "exact"] == pytest.approx(reference[name].exact)
        assert table.loc[(pick, target), "within_3"] == pytest.approx(reference[name].within[3])
        assert table.loc[(pick, target), "mean_distance"] == pytest.approx(reference[name].mean_distance)
    scores = table[["exact", "within_1", "within_3"]].to_numpy()
    assert ((0 <= scores) & (scores <= 1)).all() and (np.diff(scores, axis=1) >= 0).all()
    # the swapped rows score the other truth
    hand = pd.DataFrame({"video": ["a"], "n_frames": [10], "systole": [2], "diastole": [7], "es": [(7,)], "ed": [(2,)]})
    hand_table = heuristic_table(hand, ks=(1,))
    assert hand_table.loc[("most bright pixels", "ED"), "exact"] == 1.0
    assert hand_table.loc[("most bright pixels", "ES"), "mean_distance"] == 5.0


def test_chance_row_is_the_expected_score_of_a_uniform_frame():
    picks = pd.DataFrame({"video": ["a", "b"], "n_frames": [10, 4], "systole": [0, 0], "diastole": [0, 0],
                          "es": [(0,), (1, 3)], "ed": [(9,), (0,)]})
    row = heuristic_table(picks, ks=(1,)).loc[("random frame (expected)", "ES")]
    # a: 10 frames, event at 0: exact 1/10, within 1: 2/10, mean distance 4.5
    # b: 4 frames, events at 1 and 3: distances 1,0,1,0: exact 1/2, within 1: 1, mean 0.5
    assert row["exact"] == pytest.approx((0.1 + 0.5) / 2)
    assert row["within_1"] == pytest.approx((0.2 + 1.0) / 2)
    assert row["mean_distance"] == pytest.approx((4.5 + 0.5) / 2)


def test_echonet_picks_agree_with_the_preprocessing_score(echonet, clips):
    picks = echonet_picks(echonet)
    assert list(picks["video"]) == ["0XVIDEO0", "0XVIDEO2", "0XVIDEO3"]  # the missing video is skipped
    truth = [clips[0], clips[1], clips[2]]
    assert [p[0] for p in picks["es"]] == [c.es_frames[0] for c in truth]  # smaller traced LV is ES
    assert [p[0] for p in picks["ed"]] == [c.ed_frames[0] for c in truth]
    table = heuristic_table(picks)
    reference = heuristic_on_echonet(echonet)
    assert table.loc[("most bright pixels", "ES"), "within_2"] == pytest.approx(reference["ES"].within[2])
    assert table.loc[("fewest bright pixels", "ED"), "exact"] == pytest.approx(reference["ED"].exact)
    assert len(echonet_picks(echonet, limit=2)) == 2


def test_bright_count_curve_marks_the_extremes_and_the_truth():
    counts = np.array([5, 9, 12, 12, 3, 4, 3])
    fig = bright_count_curve(counts, es=[2], ed=[0, 6], lv_area=np.arange(7.0), fps=50)
    ax = fig.axes[0]
    marks = {line.get_marker(): line.get_xdata() for line in ax.lines}
    assert list(marks["^"]) == [2] and list(marks["v"]) == [4]  # first maximum, first minimum
    vertical = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() in ("--", ":"))
    assert vertical == [0, 2, 6]
    assert len(fig.axes) == 2
    plt.close(fig)


def test_frame_panels_and_image_row_layout():
    rng = np.random.default_rng(0)
    groups = {"a": rng.integers(0, 256, (2, 3, 16, 16), dtype=np.uint8),
              "b": rng.integers(0, 256, (1, 4, 16, 16), dtype=np.uint8)}
    fig = frame_panels(groups, col_labels={"a": ["x", "y", "z"]}, row_labels={"b": ["r"]})
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 2 * 3 + 1 * 4
    assert [ax.get_title() for ax in shown[:3]] == ["x", "y", "z"]
    plt.close(fig)
    with pytest.raises(ValueError, match="rows, cols"):
        frame_panels({"a": groups["a"][0]})
    fig = image_row({"m": np.eye(8, dtype=bool), "g": np.full((8, 8), 200, np.uint8)})
    assert [ax.images[0].get_clim() for ax in fig.axes] == [(0, 1), (0, 255)]
    plt.close(fig)


def test_intensity_summary_on_known_frames():
    frames = np.zeros((10, 32, 32), np.uint8)
    frames[:, 8:24, 8:24] = 100  # sector: a quarter of the image, all at level 100 ...
    frames[:5, 8:24, 8:16] = 20  # ... except half of it in half of the frames
    table = intensity_summary({"toy": frames})
    row = table.loc["toy"]
    assert row["sector share"] == pytest.approx(0.25)
    assert row["mean"] == pytest.approx(0.75 * 100 + 0.25 * 20)
    assert row["median"] == 100 and row["p10"] == 20 and row["zero share in sector"] == 0
    assert row["share > 30"] == pytest.approx(0.75)
    fig = intensity_histograms({"toy": frames, "toy again": frames[:, None]})
    assert len(fig.axes[1].lines) == 3  # two cumulative curves and the threshold
    plt.close(fig)


def test_split_summary_matches_the_dataset_split(noise_frames):
    ds = FrameDataset(noise_frames)
    table = split_summary(ds.video_ids, (0.5, 0.25, 0.25), seed=3)
    parts = ds.split((0.5, 0.25, 0.25), seed=3)
    for name, part in parts.items():
        assert table.loc[name, "frames"] == len(part)
        assert table.loc[name, "videos"] == len(set(part.video_ids))
    assert table.loc["all", "frames"] == 64 and table.loc["all", "videos"] == 16
    assert table.loc[["train", "val", "test"], "frames"].sum() == 64


def test_cycle_positions_places_picks_in_the_beat(clips):
    picks = clip_picks(clips)
    fig = cycle_positions(clips, picks)
    ax = fig.axes[0]
    counts = [sum(p.get_height() for p in container) for container in ax.containers]
    assert counts == [len(clips), len(clips)]  # one systole and one diastole pick per clip
    plt.close(fig)


def test_video_grid_keeps_frames_of_one_video_together():
    names = [f"V{v}_f{k}.png" for v in range(5) for k in range(4) if (v, k) != (2, 3)] + ["odd.png"]
    images = np.stack([np.full((4, 4), i, np.uint8) for i in range(len(names))])
    grid, chosen = video_grid(images, names, 3, seed=1)
    assert grid.shape == (3, 4, 4, 4) and "V2" not in chosen and len(set(chosen)) == 3
    for row, vid in zip(grid, chosen):
        assert [names[int(img[0, 0])] for img in row] == [f"{vid}_f{k}.png" for k in range(4)]
    with pytest.raises(ValueError, match="5 videos"):
        video_grid(images, names, 5)


def test_by_video_positions():
    names = ["B_f1.png", "A_f0.png", "B_f0.png", "A_f1.png", "C_f0.png", "x_fz.png"]
    positions, videos = by_video(names, frames=(0, 1))
    assert videos == ["A", "B"] and positions.tolist() == [[1, 3], [2, 0]]
    assert by_video(["lonely.png"])[0].shape == (0, 4)


def test_kept_frames_are_the_recipes_four(clips):
    masked = masked_clip(clips[0].frames)
    kept = kept_frames(masked, 7, 3)
    assert kept.shape == (4, 128, 128) and kept.dtype == np.uint8
    for got, i in zip(kept, (0, 7, 3, len(masked) - 1)):
        assert np.array_equal(got, finish_frame(masked[i]))


def test_pick_contrast_ratios():
    grid = np.zeros((2, 4, 10, 10), np.uint8)
    for k, n in enumerate((40, 60, 20, 40)):  # video 0: ends 40 bright pixels, "systole" 60, "diastole" 20
        grid[0, k].flat[:n] = 200
    grid[0, 2].flat[50:] = 30  # exactly 30 is not bright
    grid[1] = 31  # video 1: everything just above the threshold
    table = pick_contrast(grid, ["v0", "v1"])
    assert table.loc["v0"].tolist() == [1.5, 0.5] and table.loc["v1"].tolist() == [1.0, 1.0]
    fig = contrast_histograms({"toy": table, "again": table})
    assert len(fig.axes) == 2 and all(len(ax.patches) == 2 for ax in fig.axes)
    plt.close(fig)


def test_sector_histogram_in_chunks_equals_the_metric_histogram():
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (300, 1, 8, 8), dtype=np.uint8))
    frames[:, :, :2] = 0  # a dark band outside the "sector"
    fan = sector_mask(frames)
    assert not fan[:2].any() and fan[2:].all()
    assert np.array_equal(sector_histogram(frames), intensity_histogram(frames, fan))
    assert sector_histogram(frames[:, 0].numpy()).sum() == 300 * 6 * 8
