"""Where a broadcast happened: run the target on the probe's shapes and find the op that grew.

An op "grows" when it combines two or more float (or boolean) arrays and its output has more
elements than every input, or when those inputs (scalars aside) differ in rank. TensorFlow and Keras
code is traced as a graph, whose ops carry their own tracebacks; NumPy code runs on an
ndarray subclass that records every ufunc and array function. Growth that the canonical
layout also shows is intended (an outer product, a bias add) and is left out, so only the
probe's own growth is reported, at the user's line that created it.
"""

from __future__ import annotations

import dataclasses
import linecache
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from pytest_lossguard.report import display_path

_OWN = f"{os.sep}pytest_lossguard{os.sep}"
_LIBRARY_PARTS = (
    f"{os.sep}tensorflow{os.sep}", f"{os.sep}keras{os.sep}", f"{os.sep}tf_keras{os.sep}",
    f"{os.sep}numpy{os.sep}", f"{os.sep}_pytest{os.sep}", f"{os.sep}pluggy{os.sep}",
    f"{os.sep}contextlib.py", f"{os.sep}functools.py", "<__array_function__",
)
_CONTRACTIONS = {"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum",
                 "matmul", "dot", "einsum", "outer", "tensordot", "kron", "inner"}
# Ops that call a whole function: their shapes say nothing about one operation.
_CALLS = {"PartitionedCall", "StatefulPartitionedCall"}
Frame = tuple[str, int, str]
Tracer = Callable[[Callable[..., Any], Sequence[np.ndarray]], list["Growth"]]


@dataclasses.dataclass(frozen=True)
class Growth:
    """One op that grew: its type, shapes, and the user's line (and callers) that ran it."""

    op: str
    inputs: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    where: str
    source: str
    chain: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return self.op, self.where

    @property
    def grew(self) -> bool:
        """More elements out than any input in: a broadcast, not only a rank mix."""
        return math.prod(self.output) > max(math.prod(shape) for shape in self.inputs)

    def describe(self) -> str:
        """e.g. Sub (7,), (7, 1) -> (7, 7)."""
        shapes = ", ".join(str(s) for s in self.inputs)
        return f"{self.op} {shapes} -> {self.output}"


def _user_frames(frames: Iterable[Frame]) -> list[Frame]:
    """The user's frames of a stack (outermost first), from where lossguard called in."""
    found: list[Frame] = []
    inside = False  # past lossguard's own interceptor frames, into the target
    for frame in reversed(list(frames)):
        if _OWN in frame[0]:
            if inside:
                break  # back in lossguard: whatever is further out called lossguard
        else:
            inside = True
            if not any(part in frame[0] for part in _LIBRARY_PARTS):
                found.append(frame)
    return found[::-1]


def _growth(op: str, inputs: list[tuple[int, ...]], output: tuple[int, ...],
            frames: Iterable[Frame]) -> Growth | None:
    """A Growth when `op` combined float (or boolean mask) inputs into something larger or of
    mixed ranks."""
    if len(inputs) < 2 or op in _CONTRACTIONS or op in _CALLS:
        return None
    sizes = [math.prod(shape) for shape in inputs]
    ranks = {len(shape) for shape in inputs if shape}
    if math.prod(output) <= max(sizes) and len(ranks) < 2:
        return None
    user = _user_frames(frames)
    if not user:
        return Growth(op, tuple(inputs), output, "", "")
    filename, lineno, _ = user[-1]
    chain = tuple(f"{display_path(f)}:{n} in {name}" for f, n, name in user)
    return Growth(op, tuple(inputs), output, f"{display_path(filename)}:{lineno}",
                  linecache.getline(filename, lineno).strip(), chain)


def graph_growth(call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
    """Every growing op of `call(*tensors)` traced as a TF graph on the arrays' specs."""
    tf = sys.modules["tensorflow"]
    specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in arrays]
    # With functions "eager", a tf.function inside the target runs as Python within this one
    # trace, so its ops (and their lines) show up here rather than behind a call op.
    eager = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        graph = tf.function(call, autograph=False).get_concrete_function(*specs).graph
    finally:
        tf.config.run_functions_eagerly(eager)
    found = []
    for op in graph.get_operations():
        floats = [t.shape for t in op.inputs if t.dtype.is_floating or t.dtype.is_bool]
        if not op.outputs or not all(s.is_fully_defined() for s in [*floats, op.outputs[0].shape]):
            continue
        frames = ((f.filename, f.lineno, f.name) for f in op.traceback or ())
        found_one = _growth(op.type, [tuple(s.as_list()) for s in floats],
                            tuple(op.outputs[0].shape.as_list()), frames)
        if found_one is not None:
            found.append(found_one)
    return found


def _plain(value: Any) -> Any:
    """Unwrap recorded arrays (one level into lists and tuples) back to plain ndarrays."""
    if isinstance(value, np.ndarray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def numpy_growth(call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
    """Every growing ufunc or array function of `call(*arrays)`, run on recording arrays."""
    found: list[Growth] = []

    def record(op: str, args: Sequence[Any], result: Any) -> Any:
        floats = [tuple(a.shape) for a in args
                  if isinstance(a, np.ndarray) and a.dtype.kind in "fcb"]
        first = result[0] if isinstance(result, tuple) else result
        if isinstance(first, np.ndarray):
            frames = ((f.filename, f.lineno or 0, f.name) for f in traceback.extract_stack())
            grown = _growth(op, floats, tuple(first.shape), frames)
            if grown is not None:
                found.append(grown)
        return result.view(Recording) if isinstance(result, np.ndarray) else result

    class Recording(np.ndarray):
        def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
            name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
            plain = _plain(inputs)
            return record(name, plain, getattr(ufunc, method)(*plain, **_plain_kwargs(kwargs)))

        def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
            plain = _plain(args)
            flat = [a for arg in plain for a in (arg if isinstance(arg, (list, tuple)) else [arg])]
            return record(func.__name__, flat, func(*plain, **_plain_kwargs(kwargs)))

    call(*(np.asarray(a).view(Recording) for a in arrays))
    return found


def _plain_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in kwargs.items()}


def locate(
    call: Callable[..., Any], probe: Sequence[np.ndarray], reference: Sequence[np.ndarray],
    tracer: Tracer = graph_growth,
) -> Growth | None:
    """The first growth the probe shows and the reference does not; None if none or untraceable.

    `call` takes the arrays positionally, as tensors (graph_growth) or arrays (numpy_growth).
    """
    if tracer is graph_growth and "tensorflow" not in sys.modules:
        return None
    try:
        intended = {g.key for g in tracer(call, reference)}
        return next((g for g in tracer(call, probe) if g.key not in intended), None)
    except Exception:  # a target that cannot be traced simply has no location
        return None
