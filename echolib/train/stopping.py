"""Stopping on SIGINT/SIGTERM: finish the step, write a checkpoint, and stop every rank at the same step.

A cluster's kill timer or a Ctrl-C must not cost the work since the last
snapshot, nor leave a half-written checkpoint: the handler only raises a flag,
and the loop, at a point where the state is whole, writes a checkpoint and
raises :class:`Interrupted`. A second signal stops at once, the way it would
without the handler.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from echolib.train import distributed as dist

#: under DDP, steps between comparisons of the ranks' stop flags (each one waits for the device)
POLL_STEPS = 16


class Interrupted(Exception):
    """Training stopped by SIGINT/SIGTERM after writing a checkpoint."""

    def __init__(self, signum: int, path: Path) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}; checkpoint written to {path}")
        self.signum = signum
        self.path = path


class StopSignals:
    """The stop signal received, if any, while :meth:`handled` is in force."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @contextlib.contextmanager
    def handled(self) -> Iterator[None]:
        """SIGINT/SIGTERM set the flag instead of stopping the process (main thread only; restored afterwards)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.signum is not None:  # asked twice: stop now, the way the signal would without us
                for s, h in old.items():
                    signal.signal(s, h)
                signal.raise_signal(signum)
                return
            self.signum = signum

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def agreed(self, poll: bool, info: dist.DistInfo) -> int:
        """The signal to stop on now, 0 to go on.

        One process acts on its own signal at once. Under DDP every rank must
        stop at the same step (a rank that stops alone waits forever for the
        others' gradients), and the signal may reach them a step apart, so the
        ranks compare flags, a collective that waits for the device, only on
        polling steps.
        """
        if not info.enabled:
            return self.signum or 0
        return dist.all_max_int(self.signum or 0, info) if poll else 0
