"""How a path is shown to a reader: relative to the project, never the build machine's absolute path.

The book is built on one machine and read on others. An absolute path in a
page (``/home/alice/echo-gen/runs/wgan/smoke``, a ``/tmp/`` folder that no
longer exists) tells the reader nothing they can use and leaks the build
machine's layout, so every path a notebook or a report table prints goes
through :func:`shown_path`. Paths keep working as paths; only their display
changes.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]  # the checkout (or site-packages, for an installed echolib)


def shown_path(path: str | Path, base: str | Path | None = None) -> str:
    """``path`` as a reader should see it.

    * inside ``base`` (e.g. the runs folder), relative to it: ``wgan/smoke``;
    * inside the project or beside it, relative to the project: ``runs/wgan/smoke``,
      ``../shared/data/frames`` (the layout the README describes);
    * under the home folder: ``~/.cache/torch/...``;
    * anywhere else (a temporary folder): its last two parts, ``…/turing-demo-x1/answers``.
    """
    given = Path(path).expanduser()
    # as written and with links resolved: a ``../shared`` that is a link still reads as ``../shared``
    forms = list(dict.fromkeys((Path(os.path.abspath(given)), given.resolve())))
    project = PROJECT.parent
    for p in forms:
        if base is not None and p.is_relative_to(Path(base).resolve()):
            return p.relative_to(Path(base).resolve()).as_posix() or "."
    for p in forms:
        if project != Path("/") and p.is_relative_to(project):
            return Path(os.path.relpath(p, PROJECT)).as_posix()
    home = Path.home().resolve()
    for p in forms:
        if home != Path("/") and p.is_relative_to(home):
            return "~/" + p.relative_to(home).as_posix()
    p = forms[-1]
    return "…/" + "/".join(p.parts[-2:])
