"""A per-target time limit, so that a loss that hangs becomes an error and the suite goes on.

The limit is a SIGALRM timer, which interrupts Python code on the main thread (where pytest,
its xdist workers and the CLI run targets). Elsewhere, or without SIGALRM, there is no limit.

A target that catches the interruption (`except BaseException:`, a bare `except:`) is
interrupted again every `REARM` seconds until it returns; one that goes on catching it
`STRIKES` times in a row cannot be stopped from Python, and the process ends with a message
saying so (`GIVE_UP` writes it where the user sees it: the pytest plugin replaces it so that
the message passes output capturing). A tick never lands inside a context manager's
`__enter__` or `__exit__`, so that whatever it holds is released as the interruption unwinds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pytest_lossguard.errors import LossguardError
from pytest_lossguard.text import prefixed

REARM = 0.5
STRIKES = 10
EXIT_CODE = 3


def _write(message: str) -> None:
    os.write(2, (message + "\n").encode())


GIVE_UP: list[Callable[[str], None]] = [_write]  # the last one writes the message


_SHIELDS = [0]  # > 0 while lossguard puts the user's state back: no tick lands there


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Run a block (putting state back on the way out) that the time limit does not interrupt;
    a tick that falls inside is dropped, and the next one, `REARM` s later, lands after it."""
    _SHIELDS[0] += 1
    try:
        yield
    finally:
        _SHIELDS[0] -= 1


_OWN = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _own(frame: Any) -> bool:
    """True in lossguard's own code and contextlib's (where the limit is being handled)."""
    filename = frame.f_code.co_filename if frame is not None else ""
    return filename.startswith(_OWN) or filename == contextlib.__file__


# Frames the limit never lands in: a context manager half entered or half exited keeps its
# resource (a TensorFlow GradientTape left on the tape stack breaks every later fit()).
_CLEANUP = frozenset({"__enter__", "__exit__", "__aenter__", "__aexit__"})


def _cleaning_up(frame: Any) -> bool:
    """True while any frame on the stack is a context manager's enter or exit."""
    while frame is not None:
        if frame.f_code.co_name in _CLEANUP:
            return True
        frame = frame.f_back
    return False


class _Expired(BaseException):
    """Raised into the target when time is up; a BaseException, so `except Exception` in the
    user's code (or lossguard's own) cannot swallow it."""


# Where the limit is raised, as the message names it: pytest's way unless the caller (the CLI,
# whose options live in pyproject.toml) says otherwise.
SETTING = "timeout= (ini lossguard_timeout; 0 turns it off)"


def _message(name: str, seconds: float, setting: str) -> str:
    return (f"{name} did not finish within timeout={seconds:g} s; fix the hang, or raise "
            f"the limit with {setting}")


@contextlib.contextmanager
def deadline(seconds: float | None, name: str, setting: str = SETTING) -> Iterator[None]:
    """Run the block, raising LossguardError if it takes longer than `seconds`; the message
    says to raise the limit with `setting`."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not seconds or not usable:
        yield
        return
    strikes = 0

    def expire(signum: int, frame: Any) -> None:
        nonlocal strikes
        if _SHIELDS[0] or _own(frame) or _cleaning_up(frame):
            return  # putting state back, or already leaving: the next tick will do
        strikes += 1
        if strikes > STRIKES:
            signal.setitimer(signal.ITIMER_REAL, 0)
            GIVE_UP[-1](prefixed(
                f"{_message(name, seconds, setting)}. It caught the time limit {STRIKES} times (an "
                "`except BaseException:` or a bare `except:` swallows it), so it cannot be "
                "stopped: lossguard ends the run here"))
            os._exit(EXIT_CODE)
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, REARM)  # then again every REARM s
    timed_out = False
    try:
        yield
    except BaseException:
        if not strikes:
            raise
        timed_out = True  # _Expired, or whatever the target raised after catching it
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if timed_out or strikes:  # strikes: the target caught the limit, then returned
        raise LossguardError(_message(name, seconds, setting))
