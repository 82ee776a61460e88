"""Frameworks as backends: the one protocol that the judge, the kinds and the tracers talk to.

Adding a backend is one module in this package plus its registration (step 5); nothing in
the judge changes:

1. Write `backends/<name>.py` with a class implementing `Backend` and a module-level
   `BACKEND = YourBackend()`. Import the framework at module level: the module is loaded only
   when a target needs it, never at plugin load.
2. `to_tensor` / `to_numpy` convert between NumPy and the framework. `to_numpy` must detach
   from autograd and give a NumPy array for every float dtype, bfloat16 included.
3. `growth` traces `call(*tensors)` on the arrays' shapes and returns every op that grew,
   each made by `trace.grown` (which finds the user's frames). Raise if the call cannot be
   traced; `locate` treats that as "not located".
4. `forward`, `step`, `read` and `write` call a model on inputs, run its train / test step,
   and read or set its variables; `held` gives a value in the form `write` takes fastest (a
   tensor, for Keras's variables); `seeded` starts the framework's global randomness, if it
   has any, from a seed for the length of a step.
5. Add the name to `_MODULES` and to `options.BACKENDS`, and roots that identify its code to
   `_ROOTS` so `infer` picks it for targets written against it.

Backend modules import only leaf modules (`text`, `findings`, `trace`, `errors`, `state`,
`quiet`), never the judge, the kinds or the plugin.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from pytest_lossguard.errors import LossguardError
from pytest_lossguard.quiet import framework_import
from pytest_lossguard.trace import Growth

# Module roots that mean "this code wants tensors of that library"; first match wins.
_ROOTS = (("tensorflow", "tensorflow"), ("tf_keras", "tensorflow"), ("keras", "keras"),
          ("jax", "jax"), ("torch", "torch"), ("numpy", "numpy"))
_MODULES = {
    "numpy": "pytest_lossguard.backends.numpy",
    "tensorflow": "pytest_lossguard.backends.tensorflow",
    "keras": "pytest_lossguard.backends.keras",
    "jax": "pytest_lossguard.backends.jax",
    "torch": "pytest_lossguard.backends.torch",
}


class Backend(Protocol):
    """How lossguard feeds one framework, reads its results, traces it and steps its models."""

    name: str
    # The module prefix that fix hints write, e.g. "tf" in tf.reshape(...).
    namespace: str
    # What the report's target line calls the values a target is fed: "torch tensors",
    # "numpy arrays".
    feeds: str
    # Whether code on this backend lives in Keras's world: judged against the installed Keras's
    # alignment and its compile() containers. Otherwise (torch, JAX, NumPy) against the NumPy
    # port of Keras's rule, and Keras is never imported for it.
    keras: bool

    def reshape(self, value: str, shape: str) -> str:
        """Code that reshapes `value` to `shape` (both code), in this library's idiom."""

    def shape(self, value: str) -> str:
        """Code for the shape of `value`."""

    def to_tensor(self, array: np.ndarray) -> Any:
        """The framework's tensor holding `array`'s values."""

    def to_numpy(self, value: Any) -> np.ndarray:
        """A result as NumPy, detached from autograd (bfloat16 stays bfloat16)."""

    def growth(self, call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
        """Every op of `call(*tensors)` that grew, traced on the arrays' shapes and dtypes."""

    def forward(self, model: Any, x: Any) -> Any:
        """The model's predictions on `x` in inference mode; its first call builds it."""

    def step(self, model: Any, method: str, data: Any) -> Any:
        """Run `model.<method>(data)` (train_step or test_step) once; return its logs."""

    def read(self, variable: Any) -> np.ndarray:
        """A variable's current value, as a fresh NumPy array."""

    def held(self, value: np.ndarray) -> Any:
        """`value` in the form `write` takes fastest, for a value written again and again (a
        model's snapshot, put back before every step)."""

    def write(self, variable: Any, value: Any) -> None:
        """Set a variable's value, from a NumPy array or from what `held` made of one."""

    def seeded(self, seed: int) -> AbstractContextManager[None]:
        """A block whose draws from the framework's global random state (what a step draws
        with no seed of its own: Dropout on Keras's torch backend, or in tf_keras) start from
        `seed`, that state put back afterwards, so that every run of a step draws alike."""


def load(name: str) -> Backend:
    """Import a backend module on first use, so nothing heavy loads before a probe; once
    loaded, it is looked up (every check asks, and the quiet import costs a file)."""
    module = sys.modules.get(_MODULES[name])
    if module is None:
        with framework_import():
            module = importlib.import_module(_MODULES[name])
    backend: Backend = module.BACKEND
    return backend


def infer(namespaces: Iterable[dict[str, Any]], owner_module: str = "") -> str:
    """Pick the backend from what the target's code refers to: its globals and its class."""
    return match(namespaces, owner_module) or "numpy"


def match(namespaces: Iterable[dict[str, Any]], owner_module: str = "") -> str | None:
    """The backend whose library the namespaces (or the owner module) refer to, if any."""
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
    return None


def numeric(array: np.ndarray) -> tuple[np.ndarray, int] | None:
    """A result as a real-valued array and its float width in bytes; None if not numeric.

    bfloat16 (an ml_dtypes type NumPy does not count as floating) reads as float32 with
    bfloat16's width, so that its tolerance is bfloat16's.
    """
    if array.dtype.name == "bfloat16":
        return array.astype(np.float32), 2
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        return None
    return array, array.dtype.itemsize if np.issubdtype(array.dtype, np.floating) else 8


class ArrayBackend:
    """Defaults for a backend whose results NumPy reads directly and that has no models."""

    namespace: str
    keras = False
    to_tensor: Callable[[np.ndarray], Any]  # each backend's own

    def reshape(self, value: str, shape: str) -> str:
        return f"{self.namespace}.reshape({value}, {shape})"

    def shape(self, value: str) -> str:
        return f"{self.namespace}.shape({value})"

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value)

    def _no_models(self, *args: Any) -> Any:
        raise LossguardError(f"{type(self).__name__} has no model steps; models run on Keras")

    forward = step = read = write = _no_models

    def held(self, value: np.ndarray) -> Any:
        return value

    def seeded(self, seed: int) -> AbstractContextManager[None]:
        """Nothing to seed: NumPy code is not stepped, and JAX has no global random state."""
        return contextlib.nullcontext()


class KerasModels(ArrayBackend):
    """Model steps shared by every backend whose Keras steps are plain eager calls."""

    keras = True

    def forward(self, model: Any, x: Any) -> Any:
        return model(x, training=False)

    def step(self, model: Any, method: str, data: Any) -> Any:
        return getattr(model, method)(data)

    def read(self, variable: Any) -> np.ndarray:
        return np.array(variable.numpy())

    def held(self, value: np.ndarray) -> Any:
        """A tensor: assigning one costs half of assigning the array it came from."""
        return self.to_tensor(value)

    def write(self, variable: Any, value: Any) -> None:
        variable.assign(value)
