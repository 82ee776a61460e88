"""What lossguard reads off Python objects without building or calling them: names, source
lines, signatures and Keras base classes. Cached where the object allows, since a session
asks the same questions of every target many times."""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Any

from pytest_lossguard.backends import infer
from pytest_lossguard.caches import cached, memo
from pytest_lossguard.text import display_path

KERAS_ROOTS = ("keras", "tf_keras")


def keras_base(cls: type, base: str) -> str | None:
    """The Keras flavour whose `base` class `cls` derives from, found without importing Keras."""
    for klass in cls.__mro__:
        root = klass.__module__.partition(".")[0]
        if klass.__name__ == base and root in KERAS_ROOTS:
            return root
    return None


def user_defines(cls: type, attribute: str) -> bool:
    """True when `attribute` comes from a class outside Keras (the user's override)."""
    for klass in cls.__mro__:
        if attribute in vars(klass):
            return klass.__module__.partition(".")[0] not in KERAS_ROOTS
    return False


def unwrap(obj: Any) -> Any:
    """The plain Python function behind partials, tf.functions, bound methods and callables."""
    for _ in range(10):
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif hasattr(obj, "python_function"):
            obj = obj.python_function
        elif inspect.ismethod(obj):
            obj = obj.__func__
        elif not inspect.isfunction(obj) and callable(obj) and not isinstance(obj, type):
            obj = type(obj).__call__
        else:
            break
    return obj


def describe(obj: Any) -> str:
    """A short, stable name for reports and node ids."""
    if isinstance(obj, type) or inspect.isfunction(obj) or inspect.ismethod(obj):
        return str(obj.__qualname__)
    if isinstance(obj, functools.partial) or hasattr(obj, "python_function"):
        return str(getattr(unwrap(obj), "__qualname__", type(obj).__name__))
    return type(obj).__name__


def source(obj: Any) -> str:
    """`path:line` of the code behind `obj`, or "" when it has no source."""
    path, line = memo(_defined_at, unwrap(obj))
    return f"{display_path(path)}:{line}" if line else ""


@cached()
def _defined_at(inner: Any) -> tuple[str, int]:
    """Cached: reading the source file costs more than a clean loss's whole check."""
    try:
        return inspect.getsourcefile(inner) or "", inspect.getsourcelines(inner)[1]
    except (TypeError, OSError):
        return "", 0


def signature(fn: Any) -> inspect.Signature | None:
    """The call signature, cached where `fn` is hashable: classify and resolve both ask."""
    return memo(_cached_signature, fn)


@cached()
def _cached_signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(getattr(fn, "python_function", fn))
    except (TypeError, ValueError):
        return None


def binds(sig: inspect.Signature, *args: Any) -> bool:
    """Whether `sig` accepts these positional arguments."""
    try:
        sig.bind(*args)
    except TypeError:
        return False
    return True


def class_backend(cls: type) -> str:
    """The backend a Loss or Metric subclass's own module refers to."""
    module = sys.modules.get(cls.__module__)
    return infer([vars(module)] if module else [], cls.__module__)


def function_backend(fn: Any) -> str:
    """The backend a function's own globals and module refer to."""
    inner = unwrap(fn)
    return infer([getattr(inner, "__globals__", {})], getattr(inner, "__module__", "") or "")
