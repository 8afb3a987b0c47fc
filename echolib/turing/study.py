"""The reference study's answer sheet (``Ecocardiogramas_Evaluation_Limpio.csv``).

Layout: a legend line (``DERECHA = 1,,IZQUIERDA = 0``: 1 is the right image,
0 the left), the answer key, then one line per specialist. Each column is a
question: the first ten pick one of two images (0/1), the next five pick two
of four (``a_b``), the last three pick one of four (0-3). The file does not
say which column has which format, so the layout is a parameter whose default
is the study's, checked against every cell.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from echolib.errors import DataError
from echolib.turing.analysis import Item, Responses
from echolib.turing.formats import check_picks

STUDY_FORMATS: tuple[str, ...] = ("one_of_two",) * 10 + ("two_of_four",) * 5 + ("one_of_four",) * 3
STUDY_FILE = Path("seed-reference") / "expert-evaluation" / "Ecocardiogramas_Evaluation_Limpio.csv"


def load_study_csv(path: str | Path, formats: Sequence[str] = STUDY_FORMATS, rater_prefix: str = "S") -> Responses:
    """Read the study's CSV into :class:`Responses` (raters ``S1..Sn`` in file order)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected the study's expert-evaluation CSV)")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [[c.strip() for c in row] for row in csv.reader(fh)]
    rows = [row for row in rows if any(row)]
    if rows and any("=" in c for c in rows[0]):
        rows = rows[1:]  # the legend
    if len(rows) < 2:
        raise DataError(f"{path}: expected a key line and at least one specialist line, found {len(rows)} lines")
    n = len(formats)

    def parse(row: list[str], line: str) -> list[tuple[int, ...] | None]:
        cells = row[:n] + [""] * (n - len(row))
        if any(c for c in row[n:]):
            raise DataError(f"{path}: {line} has {len(row)} answers, the layout has {n} questions")
        out: list[tuple[int, ...] | None] = []
        for q, (cell, fmt) in enumerate(zip(cells, formats)):
            if cell == "":
                out.append(None)
                continue
            where = f"{path}: {line}, question {q} ({fmt})"
            try:
                numbers = [float(p) for p in cell.replace(" ", "").split("_")]
                if not all(x.is_integer() for x in numbers):
                    raise ValueError(cell)
                picks = tuple(int(x) for x in numbers)
            except ValueError:
                raise DataError(f"{where}: {cell!r} is not a position or a pair a_b") from None
            out.append(check_picks(fmt, picks, where))
        return out

    key = parse(rows[0], "key line")
    answered = [k for k in key if k is not None]
    if len(answered) < len(key):
        raise DataError(f"{path}: the key line leaves question {key.index(None)} empty")
    items = tuple(Item(id=f"Q{q}", format=fmt, key=k) for q, (fmt, k) in enumerate(zip(formats, answered)))
    picks = tuple(tuple(parse(row, f"specialist line {i + 1}")) for i, row in enumerate(rows[1:]))
    raters = tuple(f"{rater_prefix}{i + 1}" for i in range(len(picks)))
    return Responses(items=items, raters=raters, picks=picks, source=str(path))


def find_study_csv() -> Path | None:
    """The study's CSV under ``$ECHOLIB_SHARED_DATA`` or ``../shared/data`` (from here or the repo), if present.

    The file is licensed data that is never part of the repository, so
    callers (the book chapter, tests) must handle ``None``.
    """
    roots = []
    if os.environ.get("ECHOLIB_SHARED_DATA"):
        roots.append(Path(os.environ["ECHOLIB_SHARED_DATA"]))
    repo = Path(__file__).resolve().parents[2]
    roots += [Path.cwd().parent / "shared" / "data", repo.parent / "shared" / "data"]
    for root in roots:
        if (root / STUDY_FILE).is_file():
            return root / STUDY_FILE
    return None
