"""Progress bars that a caller can switch off and the environment can too.

tqdm reads ``TQDM_DISABLE=1`` only for arguments the call leaves out, and its
notebook flavour (what ``tqdm.auto`` picks inside a Jupyter kernel) does not
read it at all: ``tqdm.notebook.tqdm`` turns a missing ``disable`` into
``False`` before the environment is consulted. A bar in a notebook the book
executes would therefore land in a page, frozen at 0 %, as the widget's text
fallback. So this module reads ``TQDM_DISABLE`` itself, and every echolib bar
goes through it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import tqdm.auto


def bars_disabled_by_environment() -> bool:
    """Whether ``TQDM_DISABLE`` asks for no bars (any value but empty, ``0`` or ``false``)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any):
    """``tqdm.auto.tqdm(iterable, **kwargs)``, off when not ``enabled`` or when ``TQDM_DISABLE`` is set."""
    if not enabled or bars_disabled_by_environment():
        kwargs["disable"] = True
    return tqdm.auto.tqdm(iterable, **kwargs)
