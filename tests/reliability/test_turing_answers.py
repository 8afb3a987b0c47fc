"""Turing-test answers survive concurrency, torn writes and SIGKILL: none lost, none duplicated.

"Lost or duplicated" is judged on what the analysis uses: the latest record per
question (see :mod:`echolib.turing.answers`) must equal exactly the answers the
rater gave, and a rater who never changed an answer has exactly one record per
question.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from echolib.io import read_jsonl
from echolib.turing.answers import AnswerLog, answers_file, collect_responses
from echolib.turing.app import TuringApp
from echolib.turing.formats import FORMATS
from echolib.turing.questionnaire import build_questionnaire
from echolib.turing.simulate import select

ROOT = Path(__file__).resolve().parents[2]
COUNTS = {"one_of_two": 6, "two_of_four": 3, "one_of_four": 3, "per_image": 6}



def choice(index: int, fmt: str, variant: int = 0) -> tuple[tuple[int, ...], int | None]:
    """One deterministic answer per question (the child processes import this very function)."""
    f = FORMATS[fmt]
    if f.n_real is None:
        return ((0,) if (index + variant) % 2 else ()), 1 + (index + variant) % 5
    return tuple(sorted((index + variant + j) % f.n_images for j in range(f.n_real))), None


CHILD_SRC = textwrap.dedent(
    f"""
    import sys, time
    sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
    from test_turing_answers import choice
    from echolib.turing.app import TuringApp
    from echolib.turing.simulate import select

    app = TuringApp(sys.argv[1], sys.argv[2], rater=sys.argv[3])
    delay = float(sys.argv[4])
    print("ready", app.index, flush=True)
    while app.current is not None:
        qid, index = app.current.id, app.index
        picks, conf = choice(index, app.current.format)
        select(app, picks, conf)
        app.next_button.click()
        assert app.index != index, app.message.value
        print("ack", qid, flush=True)  # printed only after the fsync'ed append returned
        time.sleep(delay)
    print("done", flush=True)
    """
)


@pytest.fixture(scope="module")
def quest(tmp_path_factory):
    from echolib.images import write_gray

    root = tmp_path_factory.mktemp("turing")
    rng = np.random.default_rng(0)
    for v in range(30):
        write_gray(root / "real" / f"V{v:03d}_f0.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    for i in range(40):
        write_gray(root / "gen" / f"g{i:03d}.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    q, key = build_questionnaire(root / "real", {"gen": root / "gen"}, root / "q", counts=COUNTS, seed=1)
    return q, key


def expected_answers(q) -> dict[str, tuple]:
    return {x.id: choice(i, x.format) for i, x in enumerate(q.questions)}


def resolved(q, answers: Path, rater: str) -> dict[str, tuple]:
    log = AnswerLog(answers, rater, q.id, {x.id: x.format for x in q.questions})
    return {k: (a.picks, a.confidence) for k, a in log.latest().items()}


def record_counts(answers: Path, rater: str) -> Counter:
    return Counter(r["question"] for r in read_jsonl(answers_file(answers, rater)))


def answer_all(app: TuringApp) -> None:
    while app.current is not None:
        picks, conf = choice(app.index, app.current.format)
        select(app, picks, conf)
        app.next_button.click()


def child(q, answers: Path, rater: str, delay: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_SRC, str(q.folder), str(answers), rater, str(delay)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )


def test_concurrent_raters_in_threads(quest, tmp_path):
    q, key = quest
    formats = {x.id: x.format for x in q.questions}
    raters = [f"t{i}" for i in range(6)]
    start = threading.Barrier(len(raters))

    def work(k: int, rater: str) -> dict[str, tuple]:
        log = AnswerLog(tmp_path, rater, q.id, formats)
        mine = {}
        start.wait()
        for variant in (0, k + 1):  # answer everything, then change every answer once
            for i, x in enumerate(q.questions):
                picks, conf = choice(i, x.format, variant)
                log.append(x.id, picks, conf, seconds=0.1)
                mine[x.id] = (picks, conf)
        return mine

    with ThreadPoolExecutor(len(raters)) as pool:
        futures = {r: pool.submit(work, k, r) for k, r in enumerate(raters)}
        final = {r: f.result() for r, f in futures.items()}  # re-raises a worker's exception here
    resp = collect_responses(key, tmp_path)
    assert resp.raters == tuple(sorted(raters))
    for r, row in zip(resp.raters, resp.picks):
        assert dict(zip([x.id for x in q.questions], row)) == {k: v[0] for k, v in final[r].items()}
        assert record_counts(tmp_path, r) == Counter({x.id: 2 for x in q.questions})


def test_concurrent_raters_in_processes_through_the_app(quest, tmp_path):
    q, key = quest
    raters = ["p0", "p1", "p2"]
    procs = [child(q, tmp_path, r, 0.0) for r in raters]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.count("ack") == len(q.questions) and "done" in out
    expected = expected_answers(q)
    for r in raters:
        assert resolved(q, tmp_path, r) == expected
        assert record_counts(tmp_path, r) == Counter({x.id: 1 for x in q.questions})
    assert collect_responses(key, tmp_path).raters == tuple(raters)


@pytest.mark.parametrize("tear", ["partial-new-record", "truncated-last-record"])
def test_torn_last_line_then_resume(quest, tmp_path, tear):
    q, _ = quest
    app = TuringApp(q.folder, tmp_path, rater="torn")
    for _ in range(5):
        picks, conf = choice(app.index, app.current.format)
        select(app, picks, conf)
        app.next_button.click()
    app.close()
    path = answers_file(tmp_path, "torn")
    raw = path.read_bytes()
    if tear == "partial-new-record":  # the crash hit while the 6th answer was being written
        path.write_bytes(raw + b'{"rater": "torn", "questionnaire": "' + q.id.encode()[:5])
        kept = 5
    else:  # the crash tore the 5th answer itself (as if its write never completed)
        last = raw.rstrip(b"\n").rfind(b"\n") + 1
        path.write_bytes(raw[: last + (len(raw) - last) // 2])
        kept = 4
    app = TuringApp(q.folder, tmp_path, rater="torn")  # restart: resumes after the last complete answer
    assert app.index == kept and app.progress.value == kept
    answer_all(app)
    assert resolved(q, tmp_path, "torn") == expected_answers(q)
    assert record_counts(tmp_path, "torn") == Counter({x.id: 1 for x in q.questions})
    lines = path.read_text().splitlines()
    assert len(lines) == len(q.questions) + 1  # the torn fragment stays, on its own line, and is ignored


def test_sigkill_while_answering_then_resume(quest, tmp_path):
    q, _ = quest
    proc = child(q, tmp_path, "killed", 0.05)
    acked: list[str] = []
    try:
        assert proc.stdout.readline().startswith("ready")
        while len(acked) < 4:
            line = proc.stdout.readline()
            assert line.startswith("ack"), line + proc.stderr.read()
            acked.append(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    expected = expected_answers(q)
    got = resolved(q, tmp_path, "killed")
    assert set(acked) <= set(got)  # every acknowledged answer survived the kill
    assert got == {k: expected[k] for k in got}  # and nothing else was written wrongly
    assert record_counts(tmp_path, "killed") == Counter(dict.fromkeys(got, 1))
    app = TuringApp(q.folder, tmp_path, rater="killed")
    assert app.index == len(got) < len(q.questions)
    answer_all(app)
    assert resolved(q, tmp_path, "killed") == expected
    assert record_counts(tmp_path, "killed") == Counter({x.id: 1 for x in q.questions})
