"""One append-only answer file per rater, and the responses they add up to.

Each answer is one JSON line appended to ``<answers>/<rater>.jsonl`` through
:func:`echolib.io.append_jsonl` (flushed and fsync'ed before the app moves on),
so a closed browser, a restarted kernel or a killed process loses at most the
answer being written, and a torn last line is skipped on reading. The file is
never rewritten: changing an answer appends a new record, and **the latest
record for a question wins**. The file therefore doubles as an audit trail of
every change a rater made.

A record: ``{"rater", "questionnaire", "question", "format", "picks",
"confidence", "seconds", "time"}``; ``picks`` are the positions the rater
selected as real (``[]`` is the per-image verdict "synthetic").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from echolib.errors import ConfigError, DataError
from echolib.io import append_jsonl, read_jsonl
from echolib.turing.analysis import Responses
from echolib.turing.formats import CONFIDENCE_LEVELS, FORMATS, check_picks
from echolib.turing.questionnaire import Key, load_key

_RATER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_rater_id(rater: str) -> str:
    """A rater id doubles as a file name: letters, digits, ``_.-``, at most 64 characters."""
    rater = str(rater).strip()
    if not _RATER_ID.match(rater):
        raise ConfigError(
            f"rater id {rater!r}: use 1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit)"
        )
    return rater


def answers_file(answers_dir: str | Path, rater: str) -> Path:
    return Path(answers_dir) / f"{check_rater_id(rater)}.jsonl"


@dataclass(frozen=True)
class Answer:
    question: str
    picks: tuple[int, ...]
    confidence: int | None = None  # 1..5, per-image mode
    seconds: float | None = None  # time from showing the question to answering it
    time: str = ""  # UTC ISO time the answer was recorded


class AnswerLog:
    """A rater's answer file: append answers, read back the latest answer per question.

    ``formats`` (question id -> format) validates every record, written or
    read; ``questionnaire`` ties the file to one questionnaire, so answers to
    another build in the same folder are refused rather than mixed in.
    """

    def __init__(self, answers_dir: str | Path, rater: str, questionnaire: str, formats: dict[str, str]) -> None:
        self.rater = check_rater_id(rater)
        self.path = answers_file(answers_dir, self.rater)
        self.questionnaire = questionnaire
        self.formats = dict(formats)

    def append(
        self, question: str, picks: tuple[int, ...], confidence: int | None = None, seconds: float | None = None
    ) -> Answer:
        answer = self._check(question, picks, confidence, seconds, where=f"{self.path}: new answer")
        append_jsonl(
            self.path,
            {
                "rater": self.rater,
                "questionnaire": self.questionnaire,
                "question": answer.question,
                "format": self.formats[question],
                "picks": list(answer.picks),
                "confidence": answer.confidence,
                "seconds": None if seconds is None else round(float(seconds), 3),
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            },
        )
        return answer

    def records(self) -> list[Answer]:
        """Every complete record in file order (a torn last line is skipped)."""
        out = []
        for i, rec in enumerate(read_jsonl(self.path), start=1):
            where = f"{self.path}: record {i}"
            if rec.get("questionnaire") != self.questionnaire:
                raise DataError(
                    f"{where} answers questionnaire {rec.get('questionnaire')!r}, not {self.questionnaire!r}; "
                    "use one answers folder per questionnaire"
                )
            if rec.get("rater") != self.rater:
                raise DataError(f"{where} belongs to rater {rec.get('rater')!r}, not {self.rater!r}")
            try:
                answer = self._check(rec["question"], tuple(rec["picks"]), rec.get("confidence"), rec.get("seconds"),
                                     where, time=str(rec.get("time", "")))
            except (KeyError, TypeError) as exc:
                raise DataError(f"{where}: malformed answer record ({exc})") from None
            out.append(answer)
        return out

    def latest(self) -> dict[str, Answer]:
        """The answer that counts for each question: its last record."""
        latest: dict[str, Answer] = {}
        for a in self.records():
            latest[a.question] = a
        return latest

    def _check(self, question, picks, confidence, seconds, where: str, time: str = "") -> Answer:
        if question not in self.formats:
            raise DataError(f"{where}: unknown question {question!r}")
        fmt = self.formats[question]
        picks = check_picks(fmt, tuple(picks), f"{where}, question {question}")
        if FORMATS[fmt].n_real is None:
            if confidence not in CONFIDENCE_LEVELS:
                raise DataError(f"{where}, question {question}: confidence must be one of {CONFIDENCE_LEVELS}")
        elif confidence is not None:
            raise DataError(f"{where}, question {question}: only per-image questions take a confidence")
        return Answer(question, picks, confidence, None if seconds is None else float(seconds), time)


def collect_responses(key: Key | str | Path, answers_dir: str | Path) -> Responses:
    """All answer files of a folder (raters sorted by id) against the key, as :class:`Responses`."""
    key = key if isinstance(key, Key) else load_key(key)
    answers_dir = Path(answers_dir)
    if not answers_dir.is_dir():
        raise DataError(f"{answers_dir}: no such answers folder")
    files = sorted(answers_dir.glob("*.jsonl"))
    if not files:
        raise DataError(f"{answers_dir}: no answer files (<rater>.jsonl)")
    formats = {q.id: q.format for q in key.questions}
    items = key.items()
    raters, picks, conf, secs = [], [], [], []
    for f in files:
        log = AnswerLog(answers_dir, f.stem, key.questionnaire, formats)
        latest = log.latest()
        raters.append(log.rater)
        picks.append(tuple(latest[q.id].picks if q.id in latest else None for q in items))
        conf.append(tuple(latest[q.id].confidence if q.id in latest else None for q in items))
        secs.append(tuple(latest[q.id].seconds if q.id in latest else None for q in items))
    return Responses(
        items=items,
        raters=tuple(raters),
        picks=tuple(picks),
        confidence=tuple(conf),
        seconds=tuple(secs),
        source=str(answers_dir),
        meta={"key": str(key.path), "questionnaire": key.questionnaire},
    )
