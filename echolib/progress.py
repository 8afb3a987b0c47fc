"""Progress bars that a caller can switch off and the environment can too.

tqdm reads ``TQDM_DISABLE=1`` only for arguments the call leaves out: a bar
made with ``disable=False`` (``disable=not progress`` with progress on) shows
anyway. The book sets ``TQDM_DISABLE`` so that no bar lands in a page; every
echolib bar therefore passes ``disable`` only to switch itself off.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any):
    """``tqdm.auto.tqdm(iterable, **kwargs)``, off when not ``enabled``, else as the environment says."""
    from tqdm.auto import tqdm

    if not enabled:
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)
