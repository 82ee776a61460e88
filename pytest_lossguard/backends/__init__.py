"""How to hand a target its inputs and read its result, per array library."""

from __future__ import annotations

import dataclasses
import importlib
import types
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

# Module roots that mean "this code wants tensors of that library"; first match wins.
_ROOTS = (("tensorflow", "tensorflow"), ("tf_keras", "tensorflow"), ("keras", "keras"))


@dataclasses.dataclass(frozen=True)
class Backend:
    """A name plus the two conversions the oracle needs."""

    name: str
    to_tensor: Callable[[np.ndarray], Any]
    to_numpy: Callable[[Any], np.ndarray] = np.asarray


def load(name: str) -> Backend:
    """Import a backend module on first use, so nothing heavy loads before a probe."""
    module = importlib.import_module(f"pytest_lossguard.backends.{name}")
    backend: Backend = module.BACKEND
    return backend


def infer(namespaces: Iterable[dict[str, Any]], owner_module: str = "") -> str:
    """Pick the backend from what the target's code refers to: its globals and its class."""
    roots = {owner_module.partition(".")[0]}
    for namespace in namespaces:
        for value in namespace.values():
            name = value.__name__ if isinstance(value, types.ModuleType) else getattr(
                value, "__module__", None
            )
            if isinstance(name, str):
                roots.add(name.partition(".")[0])
    for root, backend in _ROOTS:
        if root in roots:
            return backend
    return "numpy"
