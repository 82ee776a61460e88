"""A per-target time limit, so that a loss that hangs becomes an error and the suite goes on.

The limit is a SIGALRM timer, which interrupts Python code on the main thread (where pytest,
its xdist workers and the CLI run targets). Elsewhere, or without SIGALRM, there is no limit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from pytest_lossguard.errors import LossguardError


class _Expired(BaseException):
    """Raised into the target when time is up; a BaseException, so `except Exception` in the
    user's code (or lossguard's own) cannot swallow it."""


@contextlib.contextmanager
def deadline(seconds: float | None, name: str) -> Iterator[None]:
    """Run the block, raising LossguardError if it takes longer than `seconds`."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not seconds or not usable:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Expired:
        raise LossguardError(
            f"{name} did not finish within timeout={seconds:g} s; fix the hang, or raise "
            "the limit with timeout= (ini lossguard_timeout; 0 turns it off)"
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
