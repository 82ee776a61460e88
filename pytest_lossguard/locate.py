"""Where a broadcast happened: trace the target as a TF graph and find the op that grew.

An op "grows" when it combines two or more float tensors and its output has more elements
than every input. Growth that the canonical layout also shows is intended (an outer
product, a pairwise distance) and is left out, so only the probe's own growth is reported.
"""

from __future__ import annotations

import dataclasses
import linecache
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pytest_lossguard.report import display_path

_LIBRARY_PARTS = (
    f"{os.sep}tensorflow{os.sep}", f"{os.sep}keras{os.sep}", f"{os.sep}tf_keras{os.sep}",
    f"{os.sep}numpy{os.sep}", f"{os.sep}pytest_lossguard{os.sep}", f"{os.sep}_pytest{os.sep}",
    f"{os.sep}pluggy{os.sep}", f"{os.sep}contextlib.py",
)
_CONTRACTIONS = {"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum"}


@dataclasses.dataclass(frozen=True)
class Growth:
    """One op that grew: its type, shapes and the user's line that created it."""

    op: str
    inputs: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    where: str
    source: str

    @property
    def key(self) -> tuple[str, str]:
        return self.op, self.where

    def describe(self) -> str:
        """e.g. Sub (7,) - (7, 1) -> (7, 7)."""
        shapes = ", ".join(str(s) for s in self.inputs)
        return f"{self.op} {shapes} -> {self.output}"


def _user_frame(traceback: Any) -> tuple[str, str]:
    for frame in reversed(list(traceback or ())):
        filename, lineno = frame.filename, frame.lineno
        if not any(part in filename for part in _LIBRARY_PARTS):
            line = linecache.getline(filename, lineno).strip()
            return f"{display_path(filename)}:{lineno}", line
    return "", ""


def growth(call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
    """Every growing op of `call(*tensors)` traced on the shapes and dtypes of `arrays`."""
    tf = sys.modules["tensorflow"]
    specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in arrays]
    graph = tf.function(call, autograph=False).get_concrete_function(*specs).graph
    found = []
    for op in graph.get_operations():
        floats = [t.shape for t in op.inputs if t.dtype.is_floating]
        if len(floats) < 2 or op.type in _CONTRACTIONS or not op.outputs:
            continue
        shapes = [*floats, op.outputs[0].shape]
        if not all(s.is_fully_defined() for s in shapes):
            continue
        sizes = [math.prod(s.as_list()) for s in shapes]
        if sizes[-1] > max(sizes[:-1]):
            where, source = _user_frame(op.traceback)
            found.append(Growth(op.type, tuple(tuple(s.as_list()) for s in floats),
                                tuple(shapes[-1].as_list()), where, source))
    return found


def locate(
    call: Callable[..., Any], probe: Sequence[np.ndarray], reference: Sequence[np.ndarray],
) -> Growth | None:
    """The first growth the probe shows and the reference does not; None if none or untraceable.

    `call` takes the arrays positionally, as tensors.
    """
    if "tensorflow" not in sys.modules:
        return None
    try:
        intended = {g.key for g in growth(call, reference)}
        return next((g for g in growth(call, probe) if g.key not in intended), None)
    except Exception:  # a target that cannot be traced simply has no location
        return None
