"""JAX arrays, and location from `jax.make_jaxpr`: each equation carries its source frames.

Implicit broadcasting shows in a jaxpr as `broadcast_in_dim` (a rank promotion) feeding an
elementwise op; the op is reported with its operands' shapes before the promotion, as the
user's code wrote them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pytest_lossguard.backends import ArrayBackend
from pytest_lossguard.trace import Frame, Growth, grown

_SELECTS = {"select_n"}


def _inner(params: dict[str, Any]) -> Iterator[Any]:
    """The jaxprs an equation calls (jit, custom derivatives, control flow)."""
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            jaxpr = getattr(item, "jaxpr", item)
            if hasattr(jaxpr, "eqns"):
                yield jaxpr


def _frames(eqn: Any, outer: tuple[Any, ...]) -> Iterator[Frame]:
    """The equation's stack, outermost first; read only when asked (by an op that grew).

    An equation inside a jit (jnp.where's, say) records only the frames below that jit, so
    the equations that called it (`outer`, outermost first) come first: their frames hold
    the user's line."""
    for caller in (*outer, eqn):
        traceback = caller.source_info.traceback
        frames = traceback.frames if traceback is not None else []
        for frame in reversed(frames):
            yield frame.file_name, frame.line_num, frame.function_name


def _walk(jaxpr: Any, found: list[Growth], outer: tuple[Any, ...] = ()) -> None:
    promoted: dict[int, tuple[int, ...]] = {}  # rank-promoted var -> its operand's shape
    expanded: dict[int, tuple[int, ...]] = {}  # var broadcast to more elements -> likewise
    for eqn in jaxpr.eqns:
        for inner in _inner(eqn.params):
            _walk(inner, found, (*outer, eqn))
        name = eqn.primitive.name
        avals = [v.aval for v in eqn.invars]
        if name == "broadcast_in_dim":
            operand = tuple(avals[0].shape)
            if math.prod(operand) == math.prod(eqn.outvars[0].aval.shape):
                promoted[id(eqn.outvars[0])] = operand
                continue
            expanded[id(eqn.outvars[0])] = operand
        # A select (jnp.where, jnp.select) gets its operands broadcast to its result first:
        # it is judged on the shapes the user's code handed it.
        widened = expanded if name in _SELECTS else {}
        floats = [promoted.get(id(v), widened.get(id(v), tuple(a.shape)))
                  for v, a in zip(eqn.invars, avals, strict=True)
                  if jnp.issubdtype(a.dtype, jnp.floating) or a.dtype == jnp.bool_]
        growth = grown(name, floats, tuple(eqn.outvars[0].aval.shape), _frames(eqn, outer))
        if growth is not None:
            found.append(growth)


def jaxpr_growth(call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
    """Every growing equation of `call(*arrays)` traced with `jax.make_jaxpr`."""
    specs = [jax.ShapeDtypeStruct(a.shape, jnp.dtype(a.dtype)) for a in arrays]
    found: list[Growth] = []
    _walk(jax.make_jaxpr(call)(*specs).jaxpr, found)
    return found


class Jax(ArrayBackend):
    """The backend for jax.numpy code (and Keras 3 on JAX, through backends.keras)."""

    name = "jax"
    feeds = "jax tensors"
    namespace = "jnp"

    to_tensor = staticmethod(jnp.asarray)

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(jax.device_get(value))

    growth = staticmethod(jaxpr_growth)


BACKEND = Jax()
