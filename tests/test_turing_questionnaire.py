"""Questionnaire builder: blinding, randomisation with a seed, balance, and a key that is right."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from echolib.errors import ConfigError, DataError
from echolib.images import read_gray, write_gray
from echolib.turing.questionnaire import (
    build_questionnaire,
    default_key_path,
    load_key,
    load_questionnaire,
)

COUNTS = {"one_of_two": 6, "two_of_four": 3, "one_of_four": 2, "per_image": 4}


def make_sources(root, n_videos=12, frames=4, n_gen=20, size=32):
    """Real frames named like EchoNet's (<video>_f<k>.png) and two generated folders, all distinct images."""
    rng = np.random.default_rng(123)
    real = root / "real_frames"
    for v in range(n_videos):
        for k in range(frames):
            write_gray(real / f"VID{v:03d}_f{k}.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
    gens = {}
    for name in ("modelzeta", "modelomega"):
        folder = root / f"{name}_samples"
        for i in range(n_gen):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            arr[..., 1] = arr[..., 2] = arr[..., 0]  # RGB with equal channels, like the study's samples
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr, "RGB").save(folder / f"img_{i:05d}.png")
        gens[name] = folder
    return real, gens


def _source_array(img):
    return read_gray(f"{img.source}/{img.file}")


def test_build_is_blinded_and_the_key_is_right(tmp_path):
    real, gens = make_sources(tmp_path)
    q, key = build_questionnaire(real, gens, tmp_path / "quest", counts=COUNTS, seed=3)
    assert key.path == default_key_path(tmp_path / "quest") and key.path.parent == tmp_path
    assert sorted(p.name for p in (tmp_path / "quest").iterdir()) == ["images", "questions.json"]
    text = (tmp_path / "quest" / "questions.json").read_text()
    for secret in ("modelzeta", "modelomega", "real_frames", "VID0", "img_0", "answer", "source", "seed"):
        assert secret not in text
    loaded = load_questionnaire(tmp_path / "quest")
    assert loaded == q and len(q.questions) == sum(COUNTS.values())
    assert [x.format for x in q.questions] == [f for f, n in COUNTS.items() for _ in range(n)]

    names = [n for x in q.questions for n in x.images]
    assert len(set(names)) == len(names) == len(list((tmp_path / "quest" / "images").iterdir()))
    for kq, rq in zip(load_key(key.path).questions, q.questions):
        assert kq.id == rq.id and tuple(i.name for i in kq.images) == rq.images
        for pos, img in enumerate(kq.images):
            shown = tmp_path / "quest" / "images" / img.name
            with Image.open(shown) as im:
                assert im.mode == "L" and not im.info.get("exif")  # re-encoded: no colour mode gives it away
            np.testing.assert_array_equal(read_gray(shown), _source_array(img))  # key names the true source
            assert (pos in kq.answer) == (img.kind == "real") == (img.model == "real")
        models = {i.model for i in kq.images} - {"real"}
        assert len(models) <= 1  # one model per question


def test_same_seed_same_bytes_other_seed_other_questionnaire(tmp_path):
    real, gens = make_sources(tmp_path)
    a, ka = build_questionnaire(real, gens, tmp_path / "a", counts=COUNTS, seed=7)
    b, kb = build_questionnaire(real, gens, tmp_path / "b", counts=COUNTS, seed=7)
    c, _ = build_questionnaire(real, gens, tmp_path / "c", counts=COUNTS, seed=8)
    assert (tmp_path / "a" / "questions.json").read_bytes() == (tmp_path / "b" / "questions.json").read_bytes()
    assert ka.path.read_bytes() == kb.path.read_bytes()
    for name in a.questions[0].images:
        assert (tmp_path / "a" / "images" / name).read_bytes() == (tmp_path / "b" / "images" / name).read_bytes()
    assert a.id == b.id != c.id


def test_positions_are_balanced_and_real_frames_come_from_distinct_videos(tmp_path):
    real, gens = make_sources(tmp_path, n_videos=40)
    counts = {"one_of_two": 10, "two_of_four": 6, "one_of_four": 4, "per_image": 10}
    _, key = build_questionnaire(real, gens, tmp_path / "q", counts=counts, seed=0)
    answers = {f: [q.answer for q in key.questions if q.format == f] for f in counts}
    assert sorted(answers["one_of_two"]) == [(0,)] * 5 + [(1,)] * 5
    assert sorted(answers["two_of_four"]) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert sorted(answers["one_of_four"]) == [(0,), (1,), (2,), (3,)]
    assert sum(a == (0,) for a in answers["per_image"]) == 5
    videos = [i.file.split("_f")[0] for q in key.questions for i in q.images if i.kind == "real"]
    assert len(videos) == 10 + 12 + 4 + 5 and len(set(videos)) == len(videos)
    per_model = [i.model for q in key.questions for i in q.images if i.kind == "generated"]
    assert abs(per_model.count("modelzeta") - per_model.count("modelomega")) <= 8


def test_refusals_name_the_problem(tmp_path):
    real, gens = make_sources(tmp_path, n_videos=3, frames=1)
    with pytest.raises(DataError, match="real_frames.*3 real frames"):
        build_questionnaire(real, gens, tmp_path / "q1", counts={"one_of_two": 4})
    with pytest.raises(ConfigError, match="inside the questionnaire"):
        build_questionnaire(real, gens, tmp_path / "q2", tmp_path / "q2" / "key.json", counts={"one_of_two": 1})
    big = tmp_path / "big"
    write_gray(big / "x_f0.png", np.zeros((40, 40), np.uint8))
    write_gray(big / "y_f0.png", np.zeros((40, 40), np.uint8))
    with pytest.raises(DataError, match="size"):
        build_questionnaire(real, {"big": big}, tmp_path / "q3", counts={"one_of_two": 2}, seed=0)
    q, _ = build_questionnaire(real, {"big": big}, tmp_path / "q4", counts={"one_of_two": 2}, seed=0, size=32)
    assert all(read_gray(tmp_path / "q4" / "images" / n).shape == (32, 32) for n in q.questions[0].images)
    with pytest.raises(ConfigError, match="not empty"):
        build_questionnaire(real, gens, tmp_path / "q4", counts={"one_of_two": 1})


def test_rater_side_refuses_anything_of_the_key(tmp_path):
    real, gens = make_sources(tmp_path)
    _, key = build_questionnaire(real, gens, tmp_path / "q", counts={"one_of_two": 2}, seed=0)
    (tmp_path / "q" / "key.json").write_bytes(key.path.read_bytes())
    with pytest.raises(ConfigError, match="key is inside"):
        load_questionnaire(tmp_path / "q")
    (tmp_path / "q" / "key.json").unlink()
    data = json.loads((tmp_path / "q" / "questions.json").read_text())
    data["questions"][0]["source"] = "somewhere"
    (tmp_path / "q" / "questions.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="answer-key fields"):
        load_questionnaire(tmp_path / "q")
    del data["questions"][0]["source"]
    data["questions"][0]["images"][0] = "../q.key.json"  # a path out of images/ is refused too
    (tmp_path / "q" / "questions.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="plain file names"):
        load_questionnaire(tmp_path / "q")


def test_positions_stay_balanced_when_a_count_is_not_a_multiple_of_the_arrangements():
    """Three one-of-four questions: over many seeds the real image is at every position equally often."""
    from echolib.turing.questionnaire import _plan

    seen = {"one_of_four": [0] * 4, "two_of_four": {}}
    for seed in range(400):
        plan = _plan({"one_of_four": 3, "two_of_four": 5}, ["m"], np.random.default_rng(seed))
        for q in plan:
            if q["format"] == "one_of_four":
                seen["one_of_four"][q["answer"][0]] += 1
            else:
                seen["two_of_four"][q["answer"]] = seen["two_of_four"].get(q["answer"], 0) + 1
    assert min(seen["one_of_four"]) > 0.8 * 300 and max(seen["one_of_four"]) < 1.2 * 300, seen
    assert len(seen["two_of_four"]) == 6 and min(seen["two_of_four"].values()) > 0.8 * 2000 / 6, seen


def test_without_a_seed_each_questionnaire_gets_its_own_and_the_key_keeps_it(tmp_path):
    real, gens = make_sources(tmp_path, n_videos=40)
    _, ka = build_questionnaire(real, gens, tmp_path / "a", counts=COUNTS)
    _, kb = build_questionnaire(real, gens, tmp_path / "b", counts=COUNTS)
    assert ka.seed != kb.seed
    _, kc = build_questionnaire(real, gens, tmp_path / "c", counts=COUNTS, seed=ka.seed)
    assert [q.answer for q in kc.questions] == [q.answer for q in ka.questions]
