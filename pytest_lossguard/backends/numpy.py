"""NumPy arrays: copies (so an in-place loss cannot corrupt the shared draw), and location by
recording every ufunc and array function on an ndarray subclass.

`np.asarray` and `np.array` are not array functions: given a subclass they return a plain
ndarray, and a loss that starts with `y_true = np.asarray(y_true)` would drop out of the
recording. While a trace runs they are wrapped so that a recorded array stays recorded (code
that bound them earlier, `from numpy import asarray`, is not reached).
"""

from __future__ import annotations

import contextlib
import functools
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from pytest_lossguard.backends import ArrayBackend
from pytest_lossguard.trace import Growth, grown


def _plain(value: Any) -> Any:
    """Unwrap recorded arrays (one level into lists and tuples) back to plain ndarrays."""
    if isinstance(value, np.ndarray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _plain_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in kwargs.items()}


# Converters that drop an ndarray subclass and that __array_function__ does not see.
_CONVERTERS = ("asarray", "array", "ascontiguousarray", "asfortranarray")


@contextlib.contextmanager
def _converters_keep(recording: type[np.ndarray]) -> Iterator[None]:
    """np.asarray(x), np.array(x), ... of a `recording` array give a `recording` array."""
    originals = {name: getattr(np, name) for name in _CONVERTERS if hasattr(np, name)}

    def keeping(convert: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(convert)
        def converted(value: Any, *args: Any, **kwargs: Any) -> Any:
            result = convert(value, *args, **kwargs)
            if isinstance(value, recording) and type(result) is np.ndarray:
                return result.view(recording)
            return result

        return converted

    for name, convert in originals.items():
        setattr(np, name, keeping(convert))
    try:
        yield
    finally:
        for name, convert in originals.items():
            setattr(np, name, convert)


class NumPy(ArrayBackend):
    """The backend for plain NumPy code (and anything that accepts arrays)."""

    name = "numpy"
    feeds = "numpy arrays"
    namespace = "np"

    def to_tensor(self, array: np.ndarray) -> Any:
        return np.array(array)

    def growth(self, call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
        """Every growing ufunc or array function of `call(*arrays)`, run on recording arrays."""
        found: list[Growth] = []

        def record(op: str, args: Sequence[Any], result: Any) -> Any:
            floats = [tuple(a.shape) for a in args
                      if isinstance(a, np.ndarray) and a.dtype.kind in "fcb"]
            first = result[0] if isinstance(result, tuple) else result
            if isinstance(first, np.ndarray):
                frames = ((f.filename, f.lineno or 0, f.name) for f in traceback.extract_stack())
                growth = grown(op, floats, tuple(first.shape), frames)
                if growth is not None:
                    found.append(growth)
            return result.view(Recording) if isinstance(result, np.ndarray) else result

        class Recording(np.ndarray):
            def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any,
                                **kwargs: Any) -> Any:
                name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
                plain = _plain(inputs)
                return record(name, plain, getattr(ufunc, method)(*plain, **_plain_kwargs(kwargs)))

            def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
                plain = _plain(args)
                flat = [a for arg in plain
                        for a in (arg if isinstance(arg, (list, tuple)) else [arg])]
                return record(func.__name__, flat, func(*plain, **_plain_kwargs(kwargs)))

        recorded = [np.asarray(a).view(Recording) for a in arrays]
        with _converters_keep(Recording):
            call(*recorded)
        return found


BACKEND = NumPy()
