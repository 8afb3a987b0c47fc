"""The rater app, driven through its widgets as a rater's clicks would (no browser)."""

from __future__ import annotations

import warnings
from collections import Counter

import ipywidgets
import pytest
from test_turing_questionnaire import make_sources

from echolib.turing.answers import AnswerLog
from echolib.turing.app import TuringApp
from echolib.turing.formats import FORMATS
from echolib.turing.questionnaire import build_questionnaire
from echolib.turing.simulate import select

COUNTS = {"one_of_two": 4, "two_of_four": 2, "one_of_four": 2, "per_image": 4}


@pytest.fixture
def built(tmp_path):
    real, gens = make_sources(tmp_path)
    q, key = build_questionnaire(real, gens, tmp_path / "quest", counts=COUNTS, seed=5)
    return q, key, tmp_path / "answers", (real, gens)


def choice(index: int, fmt: str, variant: int = 0) -> tuple[tuple[int, ...], int | None]:
    """A deterministic answer per question, different for each variant."""
    f = FORMATS[fmt]
    if f.n_real is None:
        return ((0,) if (index + variant) % 2 else ()), 1 + (index + variant) % 5
    return tuple(sorted((index + variant + j) % f.n_images for j in range(f.n_real))), None


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def answer(app: TuringApp, variant: int = 0) -> tuple[tuple[int, ...], int | None]:
    picks, conf = choice(app.index, app.current.format, variant)
    select(app, picks, conf)
    assert not app.next_button.disabled
    app.next_button.click()
    return picks, conf


def test_answer_restart_resume_go_back_nothing_lost_or_duplicated(built):
    q, _, answers, _ = built
    total = len(q.questions)
    clock = Clock()
    app = TuringApp(q.folder, answers, clock=clock)
    assert app.question_box.layout.display == "none" and app.current is not None
    app.rater_box.value = "dr-a"
    app.start_button.click()
    assert app.index == 0 and app.back_button.disabled and app.progress.max == total
    assert app.images[0].value == q.image_bytes(q.questions[0].images[0]) and int(app.images[0].width) >= 256
    expected = {}
    for i in range(5):
        clock.t += 2.5 + i
        qid = app.current.id  # (the right-hand side of d[k] = v runs first: read the id before answering)
        expected[qid] = answer(app)
    log = AnswerLog(answers, "dr-a", q.id, {x.id: x.format for x in q.questions})
    assert [r.seconds for r in log.records()] == [2.5, 3.5, 4.5, 5.5, 6.5]
    assert app.progress.value == 5 and "Question 6 of" in app.progress_label.value

    app.close()  # the kernel restarts: every widget and all app state are gone
    del app
    app = TuringApp(q.folder, answers, clock=clock)
    app.rater_box.value = "dr-a"
    app.start_button.click()
    assert app.index == 5 and "Welcome back" in app.message.value and app.progress.value == 5

    app.back_button.click()  # the previous answer is shown again
    assert app.index == 4
    prev_picks, prev_conf = expected[q.questions[4].id]
    if FORMATS[q.questions[4].format].n_real is None:
        assert (app.verdict.value == "real") == (prev_picks == (0,)) and app.confidence.value == prev_conf
    else:
        assert [b.value for b in app.pick_buttons[: len(q.questions[4].images)]] == [
            i in prev_picks for i in range(len(q.questions[4].images))
        ]
    expected[q.questions[4].id] = answer(app, variant=1)  # a changed answer: a new record, the latest wins
    assert app.index == 5
    while app.current is not None:
        qid = app.current.id
        expected[qid] = answer(app)
    assert app.progress.value == total and "All" in app.progress_label.value and app.next_button.disabled

    app.back_button.click()  # review the last answer and leave it unchanged: no new record
    assert app.index == total - 1
    app.next_button.click()
    assert app.current is None

    latest = log.latest()
    assert {k: (a.picks, a.confidence) for k, a in latest.items()} == expected
    counts = Counter(r.question for r in log.records())
    assert counts == Counter({x.id: 1 for x in q.questions}) + Counter({q.questions[4].id: 1})


def _secrets(key, sources) -> list[str]:
    real, gens = sources
    out = {str(key.path), key.path.name, str(real), real.name, *gens, *(str(p) for p in gens.values())}
    for kq in key.questions:
        for img in kq.images:
            out |= {img.source, img.file, img.kind}
    out.discard("real")  # also a button label; the real frames' folder name is checked instead
    return sorted(s for s in out if s)


def _leaks(widgets, secrets) -> list[str]:
    found = []
    for wdg in widgets:
        for name, value in wdg.get_state().items():
            blob = value if isinstance(value, (bytes, bytearray, memoryview)) else repr(value).encode()
            blob = bytes(blob)
            found += [f"{type(wdg).__name__}.{name}: {s}" for s in secrets if s.encode() in blob]
    return found


def _live_widgets() -> list[ipywidgets.Widget]:
    """Every widget alive in this process (what a kernel could ever send to a browser)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return list(ipywidgets.Widget.widgets.values())


def test_widget_state_never_holds_the_key_or_the_sources(built):
    q, key, answers, sources = built
    secrets = _secrets(key, sources)
    assert "generated" in secrets and any("VID" in s for s in secrets)
    probe = ipywidgets.HTML(f"<i>{secrets[0]}</i>")  # the detector itself must catch a leak
    assert _leaks([probe], secrets) and _leaks(_live_widgets(), secrets)
    probe.close()
    app = TuringApp(q.folder, answers, rater="dr-b")
    seen = 0
    while app.current is not None:
        assert _leaks(app.all_widgets(), secrets) == []
        assert _leaks(_live_widgets(), secrets) == []
        answer(app)
        seen += 1
        if seen == 3:  # going back re-renders stored answers: still nothing of the key
            app.back_button.click()
            assert _leaks(app.all_widgets(), secrets) == []
            answer(app)
    assert _leaks(_live_widgets(), secrets) == []
    assert str(key.path) not in repr(vars(app)) and "Key(" not in repr(vars(app))


def test_selection_rules_and_next_gating(built):
    q, _, answers, _ = built
    app = TuringApp(q.folder, answers, rater="dr-c")
    assert app.current.format == "one_of_two" and app.next_button.disabled
    app.pick_buttons[0].value = True
    app.pick_buttons[1].value = True  # one pick only: the first is released
    assert [b.value for b in app.pick_buttons[:2]] == [False, True] and not app.next_button.disabled
    app.pick_buttons[1].value = False
    assert app.next_button.disabled
    app.submit()  # an invalid selection is never recorded
    assert app.index == 0 and not (answers / "dr-c.jsonl").exists()
    while app.current.format != "two_of_four":
        answer(app)
    for i in (0, 1, 2):
        app.pick_buttons[i].value = True  # a third pick replaces the oldest
    assert [b.value for b in app.pick_buttons] == [False, True, True, False] and not app.next_button.disabled
    while app.current.format != "per_image":
        answer(app)
    assert not app.verdict_box.layout.display and all(b.layout.display == "none" for b in app.pick_buttons)
    app.verdict.value = "synthetic"
    assert app.next_button.disabled  # a confidence is required too
    app.confidence.value = 2
    assert not app.next_button.disabled


def test_bad_rater_id_and_foreign_answer_files_are_refused(built, tmp_path):
    q, _, answers, _ = built
    app = TuringApp(q.folder, answers)
    app.rater_box.value = "../../etc/passwd"
    app.start_button.click()
    assert app.log is None and "rater id" in app.message.value and app.question_box.layout.display == "none"
    other = AnswerLog(answers, "dr-d", "another-questionnaire", {x.id: x.format for x in q.questions})
    other.append(q.questions[0].id, (0,))
    app.rater_box.value = "dr-d"
    app.start_button.click()
    assert app.log is None and "another-questionnaire" in app.message.value
