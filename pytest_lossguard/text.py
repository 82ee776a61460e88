"""Leaf helpers for words and numbers that every stage shows: paths, values, exceptions.

This module imports nothing of lossguard's, so any stage may use it. `prefixed` is the one
place that puts `lossguard: ` in front of what users read.
"""

from __future__ import annotations

import math
import os
import re

PREFIX = "lossguard: "
# Lines of a failure block stay within this many columns where they can.
WIDTH = 100
# TensorFlow's device preamble and trailing "name:" in op errors, which bury the message.
_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*name:\s*$", re.MULTILINE)


def prefixed(text: str) -> str:
    """`text` as lossguard says it: with the `lossguard: ` prefix, once."""
    return text if text.startswith(PREFIX) else PREFIX + text


def display_path(path: str) -> str:
    """A path relative to the working directory where that is possible, as tracebacks show it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def number(value: float | None) -> str:
    """Values rounded for reading: 4 significant digits."""
    if value is None:
        return "-"
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"


def one_line(exc: BaseException) -> str:
    """The exception's first line, without TensorFlow's device preamble, at most 160 chars."""
    text = _TF_NOISE.sub("", str(exc)).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
