"""Snapshot and restore the global state a probe (or the user's loss) may touch."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

Getter = Callable[[], Any]
Setter = Callable[[Any], None]
Slot = tuple[str, Getter, Setter, Callable[[Any, Any], bool]]


def _environ(key: str) -> tuple[Getter, Setter]:
    def put(value: str | None) -> None:
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

    return (lambda: os.environ.get(key)), put


def _numpy_equal(a: Any, b: Any) -> bool:
    return bool(a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:])


def _slots() -> list[Slot]:
    """Every restorable piece of state, for the frameworks that are already imported."""
    same: Callable[[Any, Any], bool] = lambda a, b: bool(a == b)  # noqa: E731
    slots: list[Slot] = [
        ("python random state", random.getstate, random.setstate, same),
        ("numpy random state", np.random.get_state, np.random.set_state, _numpy_equal),
        ("KERAS_BACKEND", *_environ("KERAS_BACKEND"), same),
    ]
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        slots.append(("tf.config.run_functions_eagerly", tf.config.functions_run_eagerly,
                      tf.config.run_functions_eagerly, same))
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "config"):
        slots.append(("keras dtype policy", lambda: keras.config.dtype_policy().name,
                      keras.config.set_dtype_policy, same))
    tf_keras = sys.modules.get("tf_keras")
    if tf_keras is not None:
        policy = tf_keras.mixed_precision
        slots.append(("tf_keras dtype policy", lambda: policy.global_policy().name,
                      policy.set_global_policy, same))
    return slots


@contextlib.contextmanager
def preserved() -> Iterator[list[str]]:
    """Run a block and put every slot back; the yielded list names what had changed."""
    slots = _slots()
    saved = [getter() for _, getter, _, _ in slots]
    changed: list[str] = []
    with warnings.catch_warnings():  # puts the filters back on leaving, whatever happened
        filters = list(warnings.filters)
        try:
            yield changed
        finally:
            if warnings.filters != filters:
                changed.append("warnings filters")
            for (name, getter, setter, equal), value in zip(slots, saved, strict=True):
                if not equal(getter(), value):
                    changed.append(name)
                    setter(value)
