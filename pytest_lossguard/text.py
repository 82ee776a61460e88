"""Leaf helpers for words and numbers that every stage shows: paths, values, exceptions.

This module imports only `caches`, so any stage may use it. `prefixed` is the one place that
puts `lossguard: ` in front of what users read; `library` is the one rule of what is library
code (the tracers' `trace.role` builds on it), and `display_path` shows a file by it.
"""

from __future__ import annotations

import math
import os
import re
import site
import sys
import sysconfig

from pytest_lossguard.caches import cached

PREFIX = "lossguard: "
# Lines of a failure block stay within this many columns where they can.
WIDTH = 100
# TensorFlow's device preamble and trailing "name:" in op errors, which bury the message.
_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*name:\s*$", re.MULTILINE)
# Keras wraps what a layer's call raised: this line, a blank one, then the original message
# (in bold, Keras 3), then the call's arguments.
_KERAS_CALL = re.compile(r"Exception encountered when calling (.+)\.")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# TensorFlow's autograph wraps what a tf.function's code raised: "in user code:", the frames
# (a File line, then its code), a blank line, then the original "Type: message".
_AUTOGRAPH = "in user code:"
_FRAME = re.compile(r'\s*File "[^"]*", line \d+, in (\S+)')


def prefixed(text: str) -> str:
    """`text` as lossguard says it: with the `lossguard: ` prefix, once."""
    return text if text.startswith(PREFIX) else PREFIX + text


# Frameworks whose directories are library code wherever they are installed (an editable
# install of Keras or JAX is still not the user's code).
_FRAMEWORKS = ("tensorflow", "keras", "tf_keras", "numpy", "jax", "jaxlib", "torch", "optax",
               "flax", "lightning", "pytorch_lightning", "sklearn", "scipy", "_pytest", "pluggy")
_PACKAGE_DIRS = ("site-packages", "dist-packages")
STDLIB, INSTALLED = "stdlib", "installed"


def _roots(keys: tuple[str, ...]) -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {paths[key] for key in keys if key in paths}
    if "purelib" in keys:
        found.update(site.getsitepackages() if hasattr(site, "getsitepackages") else ())
        found.add(site.getusersitepackages())
    return tuple(os.path.join(os.path.realpath(root), "") for root in found)


_STDLIB = _roots(("stdlib", "platstdlib"))
_INSTALLED = _roots(("purelib", "platlib"))


@cached(maxsize=4096)
def library(filename: str) -> str:
    """Whether a file is library code: INSTALLED (site-packages, dist-packages, the install
    roots, or a framework lossguard knows, wherever it lies), STDLIB, or "" for the user's own
    code. Cached: every traced frame asks."""
    path = os.path.realpath(filename)
    if any(part in _PACKAGE_DIRS for part in path.split(os.sep)) \
            or path.startswith(_INSTALLED) or any(
                path.startswith(os.path.join(os.path.realpath(folder), ""))
                for name in _FRAMEWORKS
                for folder in getattr(sys.modules.get(name), "__path__", None) or ()):
        return INSTALLED
    return STDLIB if path.startswith(_STDLIB) else ""


@cached(maxsize=4096)
def _import_path(filename: str) -> str:
    """A library file from its package down (`torch/nn/modules/loss.py`): relative to the
    deepest import root that holds it (a sys.path entry, an install root, or the
    site-packages folder it lies in), "" for the user's own code. Cached: resolving sys.path
    costs a stat per entry."""
    if not library(filename):
        return ""
    path = os.path.realpath(filename)
    parts = path.split(os.sep)
    marks = [index for index, part in enumerate(parts) if part in _PACKAGE_DIRS]
    folders = [os.path.join(os.path.realpath(entry), "") for entry in sys.path if entry]
    if marks:
        folders.append(os.path.join(os.sep.join(parts[:marks[-1] + 1]), ""))
    inside = [folder for folder in (*folders, *_INSTALLED, *_STDLIB) if path.startswith(folder)]
    return os.path.relpath(path, max(inside, key=len)) if inside else ""


def display_path(path: str) -> str:
    """How every report shows a file: library code from its package down, the same from any
    working directory; the user's own files relative to the working directory where that is
    possible, as tracebacks show them."""
    shown = _import_path(path)
    if shown:
        return shown
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


def _unwrapped(text: list[str], kind: str) -> str:
    """The first line of an error's own message, and where it was raised, when Keras or
    autograph wrapped it; else the first line."""
    first = text[0]
    keras = _KERAS_CALL.fullmatch(first)
    if keras:
        inner = next((line.strip() for line in text[1:] if line.strip()), "")
        return f"{inner} (in {keras.group(1)})" if inner else first
    frames = [index for index, line in enumerate(text) if _FRAME.match(line)]
    if first.strip() != _AUTOGRAPH or not frames:
        return first
    innermost = _FRAME.match(text[frames[-1]])
    assert innermost is not None
    after = text[frames[-1] + 1:]
    blank = next((index for index, line in enumerate(after) if not line.strip()), len(after))
    inner = next((line.strip() for line in after[blank:] if line.strip()), "")
    return f"{inner.removeprefix(kind + ': ')} (in {innermost.group(1)})" if inner else first


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def stable_repr(value: object) -> str:
    """`repr(value)` without the memory addresses of the objects in it (`<function mse>`), so
    that a message reads the same on every run."""
    return _ADDRESS.sub("", repr(value))


def one_line(exc: BaseException) -> str:
    """The exception's first line, without TensorFlow's device preamble or memory addresses
    (or, for an error a Keras layer's call or a tf.function wrapped, the first line of its own
    message), at most 160 chars."""
    text = _TF_NOISE.sub("", _ANSI.sub("", _ADDRESS.sub("", str(exc)))).strip().splitlines()
    first = _unwrapped(text, type(exc).__name__) if text else ""
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
