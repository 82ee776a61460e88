"""The engine's memo caches, registered in one place so that they can be cleared together.

Per-function caches (source lines, signatures, seeded draws, the reference alignment) make a
session fast, but a test that runs pytest in-process must start from a clean engine, and a
long-lived process may want the memory back: `clear()` empties every one of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_REGISTERED: list[Any] = []


def cached(maxsize: int | None = 1024) -> Callable[[F], F]:
    """`functools.lru_cache(maxsize)`, registered for `clear()`."""
    def decorate(fn: F) -> F:
        wrapper = functools.lru_cache(maxsize=maxsize)(fn)
        _REGISTERED.append(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def memo(fn: Any, key: Any) -> Any:
    """`fn(key)` from its cache, or computed afresh when `key` is unhashable."""
    try:
        return fn(key)
    except TypeError:
        return fn.__wrapped__(key)


def clear() -> None:
    """Empty every registered cache."""
    for wrapper in _REGISTERED:
        wrapper.cache_clear()
