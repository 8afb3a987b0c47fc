"""EchoNet-Dynamic preprocessing, on a tiny dataset in the official layout built from phantom clips."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from echolib.cli import main
from echolib.data.echonet import (
    MANIFEST_COLUMNS,
    finish_frame,
    heuristic_agreement,
    heuristic_on_clips,
    preprocess,
    read_tracings,
    study_mask,
    tracing_from_mask,
    tracing_mask,
    tracing_polygon,
)
from echolib.data.frames import FrameDataset
from echolib.data.phantom_sim import render_clip
from echolib.errors import DataError

TRACED = ["0XTRACED0", "0XTRACED1", "0XTRACED2"]
UNTRACED = "0XUNTRACED"
CORRUPT, MISSING, EMPTY = "0XCORRUPT", "0XMISSING", "0XEMPTY"
FILELIST_HEADER = ["FileName", "EF", "ESV", "EDV", "FrameHeight", "FrameWidth", "FPS", "NumberOfFrames", "Split"]


def write_avi(path: Path, frames: np.ndarray, fps: float = 50.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (112, 112), True)
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    writer.release()


def read_avi_gray(path: Path) -> list[np.ndarray]:
    """The test's own reading of a video, following the study's words (112 area resize, grayscale)."""
    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        f = cv2.resize(f, (112, 112), interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))
    cap.release()
    return frames


@pytest.fixture(scope="module")
def echonet(tmp_path_factory):
    """Four phantom clips as EchoNet videos (three traced), plus corrupt, empty and missing videos."""
    root = tmp_path_factory.mktemp("EchoNet-Dynamic")
    (root / "Videos").mkdir()
    clips = {}
    for i, vid in enumerate([*TRACED, UNTRACED]):
        clip = render_clip(36, seed=i, size=112, fps=40, heart_rate=80)  # 1.2 beats: an ED and an ES
        write_avi(root / "Videos" / f"{vid}.avi", clip.frames)
        clips[vid] = clip
    (root / "Videos" / f"{CORRUPT}.avi").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "Videos" / f"{EMPTY}.avi").write_bytes(b"")
    with open(root / "FileList.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(FILELIST_HEADER)
        for i, vid in enumerate([*TRACED, UNTRACED, CORRUPT, MISSING, EMPTY]):
            w.writerow([vid, 55.0 + i, 40.0, 90.0, 112, 112, 40, 36, ["TRAIN", "VAL", "TEST"][i % 3]])
    with open(root / "VolumeTracings.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["FileName", "X1", "Y1", "X2", "Y2", "Frame"])
        for vid in TRACED:
            clip = clips[vid]
            for frame in (clip.es_frames[0], clip.ed_frames[0]):  # ES listed first: the area decides, not the order
                for x1, y1, x2, y2 in tracing_from_mask(clip.lv_masks[frame]):
                    w.writerow([f"{vid}.avi", f"{x1:.3f}", f"{y1:.3f}", f"{x2:.3f}", f"{y2:.3f}", frame])
    return root, clips


@pytest.fixture(scope="module")
def default_run(echonet, tmp_path_factory):
    root, clips = echonet
    out = tmp_path_factory.mktemp("frames-default")
    result = preprocess(root, out, recipe="default", workers=2, progress=False)
    return out, result, clips


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_study_mask_is_triangle_plus_lower_half_ellipse():
    m = study_mask()
    assert m.shape == (112, 112) and set(np.unique(m)) == {0, 1}
    assert m[5, 60] == 1 and m[4, 60] == 0 and not m[:4].any()  # apex of the triangle at (60, 5)
    assert m[79, 0] == 1 and m[79, 111] == 1  # the triangle's base spans the width at y = 80
    assert m[111, 55] == 1 and m[111, 5] == 0 and m[111, 105] == 0  # the ellipse rounds the bottom corners
    assert m[30, 5] == 0 and m[30, 110] == 0  # black beside the sector
    assert 0.6 < m.mean() < 0.75


def test_default_recipe_outputs_and_errors(default_run):
    out, result, _ = default_run
    assert (result.processed, result.skipped, result.errors, result.frames) == (4, 0, 3, 16)
    rows = read_csv(out / "manifest.csv")
    assert tuple(rows[0]) == MANIFEST_COLUMNS and len(rows) == 16
    for r in rows:
        img = np.asarray(Image.open(out / r["file"]))
        assert img.shape == (128, 128) and img.dtype == np.uint8
        assert r["file"] == f"{r['video_id']}_f{r['k']}.png"
    errors = {r["video"]: r["reason"] for r in read_csv(out / "errors.csv")}
    assert set(errors) == {CORRUPT, MISSING, EMPTY}
    assert errors[MISSING] == "missing" and "empty" in errors[EMPTY] and "unreadable" in errors[CORRUPT]
    assert {r["split"] for r in rows} == {"TRAIN", "VAL", "TEST"}
    assert float(next(r for r in rows if r["video_id"] == TRACED[1])["ef"]) == 56.0
    ds = FrameDataset(out / "manifest.csv")
    assert len(ds) == 16 and len(set(ds.video_ids)) == 4


def test_expert_frames_are_used_where_traced(default_run):
    out, _, clips = default_run
    rows = read_csv(out / "manifest.csv")
    for vid in TRACED:
        by_k = {int(r["k"]): r for r in rows if r["video_id"] == vid}
        clip = clips[vid]
        assert int(by_k[1]["frame"]) == clip.es_frames[0] and by_k[1]["phase_label"] == "ES"
        assert int(by_k[2]["frame"]) == clip.ed_frames[0] and by_k[2]["phase_label"] == "ED"
        assert by_k[1]["phase_source"] == by_k[2]["phase_source"] == "expert"
        assert int(by_k[0]["frame"]) == 0 and int(by_k[3]["frame"]) == 35
        for k in (1, 2):  # the rasterised tracing covers the phantom's true LV
            mask = np.asarray(Image.open(out / by_k[k]["mask"])) > 0
            truth = cv2.resize(clip.lv_masks[int(by_k[k]["frame"])].astype(np.uint8), (128, 128),
                               interpolation=cv2.INTER_NEAREST) > 0
            assert (mask & truth).sum() / (mask | truth).sum() > 0.8
    untraced = [r for r in rows if r["video_id"] == UNTRACED]
    assert [r["phase_source"] for r in untraced] == ["position", "heuristic", "heuristic", "position"]
    assert all(r["mask"] == "" for r in untraced)


def test_rerun_does_no_work(default_run, echonet):
    out, _, _ = default_run
    root, _ = echonet
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    manifest = (out / "manifest.csv").read_text()
    again = preprocess(root, out, recipe="default", workers=1, progress=False)
    assert (again.processed, again.skipped, again.errors) == (0, 4, 3)  # failed videos are retried, and fail again
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == stamps
    assert (out / "manifest.csv").read_text() == manifest
    with pytest.raises(DataError, match="other settings"):
        preprocess(root, out, recipe="study", workers=1, progress=False)


def test_interrupted_run_resumes(echonet, tmp_path):
    root, _ = echonet
    first = preprocess(root, tmp_path, recipe="study", workers=1, limit=2, progress=False)
    assert (first.processed, first.frames) == (2, 8)
    (tmp_path / "progress.jsonl").open("a").write('{"video": "0XTORN", "ro')  # a record torn by a crash
    rest = preprocess(root, tmp_path, recipe="study", workers=1, progress=False)
    assert (rest.processed, rest.skipped, rest.frames) == (2, 2, 16)


def test_study_recipe_reproduces_the_study(echonet, tmp_path):
    root, _ = echonet
    assert main(["preprocess", "echonet", "--root", str(root), "--out", str(tmp_path), "--recipe", "study",
                 "--workers", "1", "--quiet"]) == 0
    rows = read_csv(tmp_path / "manifest.csv")
    mask = np.zeros((112, 112), np.uint8)  # the study's mask, drawn here from its description
    cv2.fillPoly(mask, [np.array([[60, 5], [-15, 80], [127, 80]], np.int32)], 1)
    cv2.ellipse(mask, (55, 78), (70, 40), 0, 0, 180, 1, -1)
    for vid in [*TRACED, UNTRACED]:
        frames = [f * mask for f in read_avi_gray(root / "Videos" / f"{vid}.avi")]
        bright = [int((f > 30).sum()) for f in frames]
        expected = [0, int(np.argmax(bright)), int(np.argmin(bright)), len(frames) - 1]
        mine = sorted((r for r in rows if r["video_id"] == vid), key=lambda r: int(r["k"]))
        assert [int(r["frame"]) for r in mine] == expected
        assert [r["role"] for r in mine] == ["first", "systole", "diastole", "last"]
        assert all(r["phase_source"] in ("heuristic", "position") for r in mine)
        for r, index in zip(mine, expected):
            up = cv2.resize(frames[index], (128, 128), interpolation=cv2.INTER_LANCZOS4)
            want = cv2.bilateralFilter(up, 5, 15, 15)
            assert np.array_equal(np.asarray(Image.open(tmp_path / r["file"])), want), r["file"]


def test_malformed_csv_names_file_line_and_column(echonet, tmp_path):
    root, _ = echonet
    bad = tmp_path / "bad"
    (bad / "Videos").mkdir(parents=True)
    (bad / "VolumeTracings.csv").write_text((root / "VolumeTracings.csv").read_text())
    lines = (root / "FileList.csv").read_text().splitlines()
    lines[2] = lines[2].replace(",56.0,", ",fifty,")
    (bad / "FileList.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"FileList\.csv: line 3: column EF: expected a finite number, got 'fifty'"):
        preprocess(bad, tmp_path / "out", progress=False)
    (bad / "FileList.csv").write_text("FileName,EF\nX,1\n")
    with pytest.raises(DataError, match=r"FileList\.csv: line 1: missing column"):
        preprocess(bad, tmp_path / "out", progress=False)
    (bad / "FileList.csv").write_text((root / "FileList.csv").read_text())
    tracings = (root / "VolumeTracings.csv").read_text().splitlines()
    tracings[4] = tracings[4].rsplit(",", 1)[0] + ",7.5"
    (bad / "VolumeTracings.csv").write_text("\n".join(tracings) + "\n")
    with pytest.raises(DataError, match=r"VolumeTracings\.csv: line 5: column Frame: expected an integer"):
        preprocess(bad, tmp_path / "out", progress=False)


def test_tracings_rank_ed_by_area(echonet):
    root, clips = echonet
    tracings = read_tracings(root / "VolumeTracings.csv")
    assert set(tracings) == set(TRACED)
    for vid in TRACED:
        assert tracings[vid].ed == clips[vid].ed_frames[0] and tracings[vid].es == clips[vid].es_frames[0]


def test_tracing_polygon_order_and_rasterisation():
    rows = np.array([[5, 0, 5, 10], [2, 2, 8, 2], [1, 5, 9, 5], [2, 8, 8, 8]], float)  # axis, then 3 chords
    poly = tracing_polygon(rows)
    assert poly.tolist() == [[2, 2], [1, 5], [2, 8], [8, 8], [9, 5], [8, 2]]
    assert len(tracing_polygon(rows, skip_axis=False)) == 8
    yy, xx = np.mgrid[:112, :112]
    blob = ((xx - 60) / 14.0) ** 2 + ((yy - 50) / 30.0) ** 2 < 1  # an LV-like ellipse
    mask = tracing_mask(tracing_from_mask(blob), size=112)
    assert (mask & blob).sum() / (mask | blob).sum() > 0.9
    big = tracing_mask(tracing_from_mask(blob), size=128)
    assert abs(big.sum() / mask.sum() - (128 / 112) ** 2) < 0.08  # coordinates scale with the frame


def test_heuristic_agreement_counts_hits():
    a = heuristic_agreement([3, 10, 7], [[3], [12, 40], [0]], ks=(1, 2))
    assert a.n == 3 and a.exact == pytest.approx(1 / 3) and a.within == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}
    assert a.mean_distance == pytest.approx(3.0)


def test_heuristic_on_phantom_clips():
    clips = [render_clip(45, seed=s, fps=50, heart_rate=75) for s in range(3)]
    scores = heuristic_on_clips(clips, ks=(1, 3, 10))
    for a in scores.values():
        assert a.n == 3 and 0 <= a.exact <= a.within[1] <= a.within[3] <= a.within[10] <= 1
    # the phantom's contraction makes ES brighter inside the sector: the heuristic lands near ES
    assert scores["ES"].within[10] >= 2 / 3


@pytest.mark.realdata
def test_mask_and_order_match_the_real_frames(real_frames):
    files = sorted(real_frames.glob("*.png"))
    pick = np.random.default_rng(0).choice(len(files), size=min(150, len(files)), replace=False)
    real = [np.asarray(Image.open(files[i])) for i in pick]
    mask = study_mask()
    edge = cv2.resize(mask, (128, 128), interpolation=cv2.INTER_NEAREST)
    band = (cv2.dilate(edge, np.ones((9, 9), np.uint8)) - cv2.erode(edge, np.ones((9, 9), np.uint8))) > 0

    def agreement(m, mask_first=True):
        """How well re-running the recipe on a real frame reproduces its black border."""
        scores = []
        for r in real:
            small = cv2.resize(r, (112, 112), interpolation=cv2.INTER_AREA)
            if mask_first:
                sim = finish_frame(small * m)
            else:
                up = cv2.resize(small, (128, 128), interpolation=cv2.INTER_LANCZOS4)
                sim = cv2.bilateralFilter(up * cv2.resize(m, (128, 128), interpolation=cv2.INTER_NEAREST), 5, 15, 15)
            scores.append(((sim == 0) == (r == 0))[band].mean())
        return float(np.mean(scores))

    ours = agreement(mask)
    assert ours > 0.92
    assert ours > agreement(mask, mask_first=False) + 0.02  # masked at 112, then upscaled
    assert ours > agreement(np.roll(mask, 2, axis=0)) + 0.01  # the mask's position matters
    nonzero = np.mean([r > 0 for r in real], axis=0)
    assert not (cv2.resize(mask, (128, 128), interpolation=cv2.INTER_NEAREST).astype(bool) & (nonzero == 0)).any()
