"""The one manifest schema: round trip, old manifests, and the fields FrameDataset hands on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import REAL_FRAMES, need
from PIL import Image

from echolib.data.echonet import write_study_manifest
from echolib.data.frames import FrameDataset
from echolib.data.manifest import (
    COLUMNS,
    MANIFEST,
    PHASE_SOURCES,
    FrameRecord,
    read_manifest,
    write_manifest,
)
from echolib.data.phantom import generate
from echolib.data.subset import copy_subset
from echolib.errors import DataError


def write_pngs(folder, names, size=16):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((size, size), i, np.uint8), "L").save(folder / name)
    return folder


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("ph") / "p", 10, size=32, seed=5, workers=1, progress=False)


def test_round_trip_keeps_every_field(tmp_path):
    records = [
        FrameRecord(file="V1_f1.png", video_id="V1", k=1, frame=27, role="ES", phase_label="ES",
                    phase_source="expert", ef=55.5, split="TRAIN", mask="masks/V1_f1.png"),
        FrameRecord(file="sub/PH0H000001_f2.png", video_id="PH0H000001", k=2, role="ED", phase=0.0123,
                    phase_label="ED", phase_source="phantom", lv_area=412),
        FrameRecord(file="odd.png", video_id="odd", extra=(("condition", "ED"),)),
    ]
    path = write_manifest(tmp_path / MANIFEST, records)
    assert path.read_text().splitlines()[0] == ",".join((*COLUMNS, "condition"))
    assert read_manifest(path) == records
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed
    back = read_manifest(path)
    assert back[0].get("ef") == "55.5" and back[0].get("lv_area") is None and back[2].get("condition") == "ED"
    assert back[1].name == "PH0H000001_f2.png" and back[1].frame is None


def test_every_phase_source_written_is_documented(phantom):
    assert {r.phase_source for r in read_manifest(phantom / MANIFEST)} <= set(PHASE_SOURCES)


def test_old_phantom_manifest_reads_frame_as_k(tmp_path):
    """The phantom's first schema had no k column and used frame for the kept position."""
    write_pngs(tmp_path, ["PH0H000000_f0.png", "PH0H000000_f1.png"])
    (tmp_path / MANIFEST).write_text(
        "file,video_id,frame,phase,phase_label,lv_area,mask\n"
        "PH0H000000_f0.png,PH0H000000,0,0.4210,other,500,masks/PH0H000000_f0.png\n"
        "PH0H000000_f1.png,PH0H000000,1,1.0000,ES,321,masks/PH0H000000_f1.png\n"
    )
    a, b = read_manifest(tmp_path / MANIFEST)
    assert (a.k, a.frame, a.phase, a.lv_area, a.phase_label) == (0, None, 0.421, 500, "other")
    assert (b.k, b.frame, b.phase_label, b.mask) == (1, None, "ES", "masks/PH0H000000_f1.png")
    assert a.phase_source == b.phase_source == "phantom"  # only the phantom wrote that schema
    ds = FrameDataset(tmp_path)
    assert ds.phase_labels == ["other", "ES"] and ds.video_ids == ["PH0H000000"] * 2


def test_old_echonet_manifest_reads_unchanged(tmp_path):
    """EchoNet preprocessing already wrote k and frame with today's meaning, without phase and lv_area columns."""
    write_pngs(tmp_path, ["0XA_f0.png", "0XA_f2.png"])
    (tmp_path / MANIFEST).write_text(
        "file,video_id,k,frame,role,phase_label,phase_source,ef,split,mask\n"
        "0XA_f0.png,0XA,0,0,first,other,position,61.2,VAL,\n"
        "0XA_f2.png,0XA,2,40,ED,ED,expert,61.2,VAL,masks/0XA_f2.png\n"
    )
    ds = FrameDataset(tmp_path / MANIFEST)
    first, ed = ds.records
    assert (first.k, first.frame, first.mask, ed.k, ed.frame) == (0, 0, None, 2, 40)
    assert ds.phase_sources == ["position", "expert"] and ds.splits == ["VAL", "VAL"]
    assert np.array_equal(ds.ef, [61.2, 61.2])


def test_malformed_cells_name_file_line_and_column(tmp_path):
    (tmp_path / MANIFEST).write_text("file,video_id,k\na_f0.png,a,0\nb_f1.png,b,one\n")
    with pytest.raises(DataError, match=r"line 3: column k: expected an integer"):
        read_manifest(tmp_path / MANIFEST)
    (tmp_path / MANIFEST).write_text("file,video_id\n,a\n")
    with pytest.raises(DataError, match="line 2: the 'file' cell is empty"):
        read_manifest(tmp_path / MANIFEST)
    (tmp_path / MANIFEST).write_text("name,video_id\na.png,a\n")
    with pytest.raises(DataError, match="needs a 'file' column"):
        read_manifest(tmp_path / MANIFEST)


def test_phantom_dataset_fields(phantom):
    by_manifest, by_folder = FrameDataset(phantom / MANIFEST), FrameDataset(phantom)
    assert by_manifest.names == by_folder.names and by_manifest.records == by_folder.records
    assert by_manifest.video_ids == [r.video_id for r in by_manifest.records]
    assert [r.k for r in by_manifest.records] == [0, 1, 2, 3] * 2 + [0, 1]
    assert by_manifest.phase_labels[1:3] == ["ES", "ED"] and set(by_manifest.phase_sources) == {"phantom"}
    assert np.isnan(by_manifest.ef).all() and by_manifest.ef.dtype == np.float64
    assert by_manifest.splits == [None] * 10
    assert by_manifest.field("phase_label") == by_manifest.phase_labels and by_manifest.field("nope") == [None] * 10
    assert all(r.phase is not None and 0 <= r.phase <= 1 for r in by_manifest.records)
    # subsets and device moves keep each frame's fields with its pixels
    part = by_folder.subset([9, 0, 5])
    assert part.records == [by_folder.records[i] for i in (9, 0, 5)]
    assert part.to("cpu").phase_labels == [by_folder.phase_labels[i] for i in (9, 0, 5)]
    train, held = by_folder.split((0.5, 0.5), seed=1, names=("a", "b")).values()
    assert sorted(train.names + held.names) == sorted(by_folder.names)
    assert {n: r for n, r in zip(train.names, train.records)} == {
        n: r for n, r in zip(by_folder.names, by_folder.records) if n in train.names}


def test_frames_without_a_manifest_carry_what_their_names_say(tmp_path):
    ds = FrameDataset(write_pngs(tmp_path / "f", ["0XB_f3.png", "img_7.png"]))
    assert [(r.video_id, r.k) for r in ds.records] == [("0XB", 3), ("img_7", None)]
    assert ds.phase_labels == [None, None] and ds.phase_sources == [None, None]
    assert all(math.isnan(v) for v in ds.ef)
    built = FrameDataset(images=ds.images, infos=ds.infos)
    assert built.records == ds.records


@pytest.mark.realdata
def test_shared_real_frames_fields(tmp_path):
    """The shared study frames come without a manifest: names give video and k; a study manifest adds the labels."""
    frames = copy_subset(need(REAL_FRAMES), tmp_path / "frames", n=40)
    bare = FrameDataset(tmp_path / "frames")
    assert len(bare) == len(frames) and len(set(bare.video_ids)) == len(bare) // 4
    assert [r.k for r in bare.records[:4]] == [0, 1, 2, 3]
    assert set(bare.phase_labels) == {None} and np.isnan(bare.ef).all() and set(bare.splits) == {None}
    labelled = FrameDataset(write_study_manifest(tmp_path / "frames", tmp_path / "m" / MANIFEST))
    assert labelled.names == bare.names and labelled.video_ids == bare.video_ids
    assert labelled.phase_labels[:4] == ["other", "ES", "ED", "other"]
    assert set(labelled.phase_sources) == {"study name rule"}
    assert [r.frame for r in labelled.records] == [None] * len(labelled)  # the source video frame was not kept
    assert torch.equal(labelled.images, bare.images)
