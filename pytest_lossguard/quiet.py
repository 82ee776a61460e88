"""TensorFlow's C++ logs, kept out of lossguard's output when lossguard is the one importing it.

TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` once, when it loads, and writes the `I0000` /
`W0000` / `E0000` lines (with the "before absl::InitializeLog()" preamble) to file descriptor 2
as it loads, whatever the level. So `framework_import` sets the variable only around the
import (a user's own value wins, and the environment is put back afterwards), and filters the
lines below that level out of what the import writes to stderr; anything else is passed on.
When the user's code imported TensorFlow first, nothing here applies (see
docs/discovery-and-cli.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# absl's format (I0000 00:00:1795765358.497633   26173 port.cc:153] ...), TensorFlow's older
# one (2025-09-17 14:44:05.157831: I external/.../cudart_stub.cc:32] ...), and the preamble.
_LOG = re.compile(
    r"^(?:(?P<absl>[IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: (?P<tf>[IWEF]) \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)
# Lines that start Python's own output again after a log line's continuation lines.
_PYTHON = re.compile(r"^(?:Traceback |\s*File \"|\S+:\d+: \w+(?:Warning|Error)\b)")
_SEVERITY = "IWEF"


def _level() -> int:
    """The level in force, as TensorFlow reads it (0: everything is shown)."""
    try:
        return int(os.environ.get(LEVEL, "0"))
    except ValueError:
        return 0


def framework_logs(text: str, level: int = 3) -> str:
    """`text` without TensorFlow's C++ log lines (and their continuation lines) below `level`,
    which TensorFlow itself does not hold back while it loads."""
    kept: list[str] = []
    dropping = False
    for line in text.splitlines(keepends=True):
        match = _LOG.match(line)
        if match:
            letter = match.group("absl") or match.group("tf")
            dropping = level > (_SEVERITY.index(letter) if letter else 0)
        elif not (dropping and line.strip() and not _PYTHON.match(line)):
            dropping = False  # else a continuation, e.g. "To enable the following instructions"
        if not dropping:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no file descriptor 2 to redirect
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            rest = framework_logs(sink.read().decode(errors="replace"), _level())
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


@contextlib.contextmanager
def framework_import() -> Iterator[None]:
    """Around an import lossguard makes that may load TensorFlow: no C++ logs in the output.

    Does nothing once TensorFlow is loaded (its level is fixed then). A level the user set
    wins: 0 shows everything, and 1 or 2 let warnings or errors through.
    """
    if "tensorflow" in sys.modules:
        yield
        return
    given = LEVEL in os.environ
    os.environ.setdefault(LEVEL, "3")
    try:
        if _level() > 0:
            with _filtered_stderr():
                yield
        else:
            yield
    finally:
        if not given:
            os.environ.pop(LEVEL, None)
