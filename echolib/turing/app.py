"""The rater app: one question at a time, in JupyterLab, with ipywidgets.

The app reads only the rater side of a build (:func:`load_questionnaire`,
which refuses a folder holding the key), so neither the key nor any image's
source ever reaches a widget. Each answer is appended to the rater's file
(:class:`echolib.turing.answers.AnswerLog`, fsync'ed) before the next question
appears; starting the app again with the same rater id, after a closed tab or
a restarted kernel, resumes at the first unanswered question.

Usage in a notebook cell::

    from echolib.turing.app import TuringApp
    TuringApp("questionnaire/", "answers/")

Every control is an attribute (``rater_box``, ``start_button``,
``pick_buttons``, ``verdict``, ``confidence``, ``back_button``,
``next_button``), so tests drive the app exactly as a rater's clicks would.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path

import ipywidgets as w

from echolib.errors import EchoError
from echolib.turing.answers import Answer, AnswerLog, check_rater_id
from echolib.turing.formats import CONFIDENCE_LEVELS, FORMATS
from echolib.turing.questionnaire import Questionnaire, RaterQuestion, load_questionnaire

MAX_IMAGES = max(f.n_images for f in FORMATS.values())
_HIDDEN, _SHOWN = "none", ""


class TuringApp:
    """A blinded questionnaire for one rater; display it in a notebook cell."""

    def __init__(
        self,
        questionnaire: str | Path | Questionnaire,
        answers_dir: str | Path,
        *,
        rater: str | None = None,
        image_px: int = 320,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.questionnaire = (
            questionnaire if isinstance(questionnaire, Questionnaire) else load_questionnaire(questionnaire)
        )
        self.answers_dir = Path(answers_dir)
        self.image_px = int(image_px)
        self._clock = clock
        self._formats = {q.id: q.format for q in self.questionnaire.questions}
        self.log: AnswerLog | None = None
        self.index = 0  # current question; len(questions) means "finished"
        self._latest: dict[str, Answer] = {}
        self._shown_at = 0.0
        self._pick_order: list[int] = []
        self._syncing = False
        self._build_widgets()
        if rater is not None:
            self.rater_box.value = rater
            self.start()

    # -- widgets ----------------------------------------------------------------
    def _build_widgets(self) -> None:
        px = self.image_px
        title = html.escape(self.questionnaire.title or "Visual Turing test")
        self.title = w.HTML(f"<h3>{title}</h3>")
        self.rater_box = w.Text(placeholder="your rater id, e.g. cardio-03", description="Rater id")
        self.start_button = w.Button(description="Start / resume", button_style="primary")
        self.start_button.on_click(lambda _: self.start())
        self.message = w.HTML("Enter the rater id you were given. The same id resumes where you stopped.")
        self.progress = w.IntProgress(value=0, min=0, max=len(self.questionnaire.questions), description="Answered")
        self.progress_label = w.HTML()
        self.prompt = w.HTML()
        self.images = [w.Image(value=b"", format="png", width=str(px), height=str(px)) for _ in range(MAX_IMAGES)]
        self.pick_buttons = [
            w.ToggleButton(description="Real", icon="check", layout=w.Layout(width=f"{px}px"))
            for _ in range(MAX_IMAGES)
        ]
        for i, b in enumerate(self.pick_buttons):
            b.observe(lambda change, i=i: self._on_pick(i, change["new"]), names="value")
        self.tiles = [w.VBox([im, b]) for im, b in zip(self.images, self.pick_buttons)]
        self.grid = w.GridBox(self.tiles, layout=w.Layout(grid_gap="12px"))
        self.verdict = w.ToggleButtons(options=[("Real", "real"), ("Synthetic", "synthetic")], value=None,
                                       description="Verdict")
        self.confidence = w.ToggleButtons(options=[(str(c), c) for c in CONFIDENCE_LEVELS], value=None,
                                          description="Confidence", tooltips=["guess", "", "", "", "certain"])
        for c in (self.verdict, self.confidence):
            c.observe(lambda _: self._refresh_next(), names="value")
        self.verdict_box = w.VBox([self.verdict, self.confidence,
                                   w.HTML("<small>Confidence: 1 = a guess, 5 = certain.</small>")])
        self.back_button = w.Button(description="Back", icon="arrow-left")
        self.next_button = w.Button(description="Next", icon="arrow-right", button_style="success")
        self.back_button.on_click(lambda _: self.back())
        self.next_button.on_click(lambda _: self.submit())
        self.question_box = w.VBox(
            [self.progress_label, self.progress, self.prompt, self.grid, self.verdict_box,
             w.HBox([self.back_button, self.next_button])],
            layout=w.Layout(display=_HIDDEN),
        )
        self.widget = w.VBox([self.title, w.HBox([self.rater_box, self.start_button]), self.message,
                              self.question_box])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def all_widgets(self) -> list[w.Widget]:
        """Every widget of the app, walked from the root (what a browser could ever receive)."""
        out, stack = [], [self.widget]
        while stack:
            x = stack.pop()
            out.append(x)
            stack.extend(c for c in getattr(x, "children", ()) if isinstance(c, w.Widget))
            layout = getattr(x, "layout", None)
            if isinstance(layout, w.Widget):
                out.append(layout)
        return out

    def close(self) -> None:
        for x in self.all_widgets():
            x.close()

    # -- flow ----------------------------------------------------------------------
    def start(self) -> None:
        """Open the rater's answer file and jump to the first unanswered question."""
        try:
            rater = check_rater_id(self.rater_box.value)
            self.log = AnswerLog(self.answers_dir, rater, self.questionnaire.id, self._formats)
            self._latest = self.log.latest()
        except EchoError as exc:
            self.log = None
            self.message.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
            return
        self.rater_box.disabled = self.start_button.disabled = True
        done = len(self._latest)
        total = len(self.questionnaire.questions)
        self.message.value = (
            f"Welcome back, {html.escape(rater)}: {done} of {total} answered, resuming."
            if done
            else f"Welcome, {html.escape(rater)}. Pick the real echocardiograms; you can go back at any time."
        )
        self.question_box.layout.display = _SHOWN
        self._go(self._first_unanswered())

    def _first_unanswered(self) -> int:
        for i, q in enumerate(self.questionnaire.questions):
            if q.id not in self._latest:
                return i
        return len(self.questionnaire.questions)

    @property
    def current(self) -> RaterQuestion | None:
        qs = self.questionnaire.questions
        return qs[self.index] if self.index < len(qs) else None

    def back(self) -> None:
        if self.log is not None and self.index > 0:
            self._go(self.index - 1)

    def submit(self) -> None:
        """Record the current selection (unless unchanged) and move on."""
        q = self.current
        if self.log is None or q is None or not self._valid():
            return
        picks, confidence = self._selection()
        previous = self._latest.get(q.id)
        if previous is None or (previous.picks, previous.confidence) != (picks, confidence):
            try:
                self._latest[q.id] = self.log.append(q.id, picks, confidence, self._clock() - self._shown_at)
            except (OSError, EchoError) as exc:  # answer NOT recorded: stay on the question
                self.message.value = f"<span style='color:#b00'>Could not save the answer: {html.escape(str(exc))}</span>"
                return
        self._go(self.index + 1 if self.index + 1 < len(self.questionnaire.questions) else self._first_unanswered())

    # -- rendering ------------------------------------------------------------------
    def _go(self, index: int) -> None:
        self.index = index
        total = len(self.questionnaire.questions)
        self.progress.value = len(self._latest)
        q = self.current
        self.back_button.disabled = index == 0
        if q is None:
            self.progress_label.value = f"<b>All {total} questions answered.</b>"
            self.prompt.value = "Thank you! Your answers are saved. Use <i>Back</i> to review or change them."
            self.grid.layout.display = self.verdict_box.layout.display = _HIDDEN
            self.next_button.disabled = True
            for im in self.images:
                im.value = b""
            return
        fmt = FORMATS[q.format]
        self.progress_label.value = f"<b>Question {index + 1} of {total}</b> &middot; {len(self._latest)} answered"
        self.prompt.value = f"<p style='font-size:1.1em'>{html.escape(fmt.prompt)}</p>"
        cols = 1 if fmt.n_images == 1 else 2
        self.grid.layout.grid_template_columns = f"repeat({cols}, {self.image_px + 8}px)"
        self.grid.layout.display = _SHOWN
        self._syncing = True
        previous = self._latest.get(q.id)
        for i, (tile, im, b) in enumerate(zip(self.tiles, self.images, self.pick_buttons)):
            shown = i < fmt.n_images
            tile.layout.display = _SHOWN if shown else _HIDDEN
            im.value = self.questionnaire.image_bytes(q.images[i]) if shown else b""
            b.layout.display = _SHOWN if fmt.n_real is not None else _HIDDEN
            b.value = bool(previous and fmt.n_real is not None and i in previous.picks)
        self._pick_order = list(previous.picks) if previous and fmt.n_real is not None else []
        self.verdict_box.layout.display = _HIDDEN if fmt.n_real is not None else _SHOWN
        if fmt.n_real is None and previous is not None:
            self.verdict.value = "real" if previous.picks == (0,) else "synthetic"
            self.confidence.value = previous.confidence
        else:
            self.verdict.value = self.confidence.value = None
        self._syncing = False
        self.next_button.description = "Finish" if index + 1 == total else "Next"
        self._refresh_next()
        self._shown_at = self._clock()

    def _on_pick(self, i: int, selected: bool) -> None:
        """Radio behaviour for one pick; for two picks a third replaces the oldest."""
        if self._syncing:
            return
        q = self.current
        if q is None:
            return
        n_real = FORMATS[q.format].n_real or 0
        if selected:
            self._pick_order.append(i)
            while len(self._pick_order) > n_real:
                old = self._pick_order.pop(0)
                self._syncing = True
                self.pick_buttons[old].value = False
                self._syncing = False
        elif i in self._pick_order:
            self._pick_order.remove(i)
        self._refresh_next()

    def _selection(self) -> tuple[tuple[int, ...], int | None]:
        q = self.current
        if q is not None and FORMATS[q.format].n_real is None:
            return ((0,) if self.verdict.value == "real" else ()), self.confidence.value
        return tuple(sorted(self._pick_order)), None

    def _valid(self) -> bool:
        q = self.current
        if q is None:
            return False
        fmt = FORMATS[q.format]
        if fmt.n_real is None:
            return self.verdict.value is not None and self.confidence.value is not None
        return len(self._pick_order) == fmt.n_real

    def _refresh_next(self) -> None:
        self.next_button.disabled = not self._valid()
