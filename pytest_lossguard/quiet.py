"""TensorFlow's C++ logs, kept out of lossguard's output when lossguard is the one importing it.

TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` once, when it loads, and writes the `I0000` /
`W0000` / `E0000` lines (with the "before absl::InitializeLog()" preamble) to file descriptor 2
as it loads, before any setting is read. So `framework_import` sets the variable only around
the import (a user's own value wins, and the environment is put back afterwards), and filters
those lines out of what the import writes to stderr; anything else it wrote is passed on.
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
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)
# Lines that start Python's own output again after a log line's continuation lines.
_PYTHON = re.compile(r"^(?:Traceback |\s*File \"|\S+:\d+: \w+(?:Warning|Error)\b)")


def framework_logs(text: str) -> str:
    """`text` without TensorFlow's C++ log lines and their continuation lines."""
    kept: list[str] = []
    in_log = False
    for line in text.splitlines(keepends=True):
        if _LOG.match(line):
            in_log = True
        elif in_log and line.strip() and not _PYTHON.match(line):
            continue  # e.g. cpu_feature_guard's "To enable the following instructions: ..."
        else:
            in_log = False
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
            rest = framework_logs(sink.read().decode(errors="replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


@contextlib.contextmanager
def framework_import() -> Iterator[None]:
    """Around an import lossguard makes that may load TensorFlow: no C++ logs in the output.

    Does nothing once TensorFlow is loaded (its level is fixed then) or when the user set
    `TF_CPP_MIN_LOG_LEVEL` themselves (their value wins, logs included).
    """
    if "tensorflow" in sys.modules or LEVEL in os.environ:
        yield
        return
    os.environ[LEVEL] = "3"
    try:
        with _filtered_stderr():
            yield
    finally:
        os.environ.pop(LEVEL, None)
