"""The reference alignment: what Keras's loss container does to y_true / y_pred before a loss.

Alignment is a pure squeeze or expand of a trailing unit axis, so it is computed once per pair
of shapes by the installed Keras's own function and then applied to arrays as a reshape.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from collections.abc import Callable

import numpy as np

from pytest_lossguard.caches import cached
from pytest_lossguard.errors import LossguardError
from pytest_lossguard.options import Shape

ShapePair = tuple[Shape, Shape]


@dataclasses.dataclass(frozen=True)
class Reference:
    """The alignment in force: which Keras it comes from, and the rule on shapes.

    `flavour` is "keras", "tf_keras", or "" for the NumPy port (no Keras containers then);
    `note` says why a Keras that is installed could not be used.
    """

    flavour: str
    version: str
    align: Callable[[Shape, Shape], ShapePair]
    note: str = ""
    engine: str = "tensorflow"

    @property
    def name(self) -> str:
        """As reports show it, e.g. "keras 3.15.1 on jax"."""
        if not self.flavour:
            return "numpy port of keras 3"
        return f"{self.flavour} {self.version} on {self.engine}"


def _keras3() -> Callable[[Shape, Shape], ShapePair]:
    from keras.src.losses.loss import squeeze_or_expand_to_same_rank

    def align(true: Shape, pred: Shape) -> ShapePair:
        y_true, y_pred = squeeze_or_expand_to_same_rank(np.zeros(true), np.zeros(pred))
        return tuple(y_true.shape), tuple(y_pred.shape)

    return align


def _tf_keras() -> Callable[[Shape, Shape], ShapePair]:
    import tensorflow as tf
    from tf_keras.src.utils.losses_utils import squeeze_or_expand_dimensions

    def align(true: Shape, pred: Shape) -> ShapePair:
        y_pred, y_true = squeeze_or_expand_dimensions(tf.zeros(pred), tf.zeros(true))
        return tuple(y_true.shape), tuple(y_pred.shape)

    return align


def numpy_port(true: Shape, pred: Shape) -> ShapePair:
    """Keras 3's squeeze_or_expand_to_same_rank on shapes, for when no Keras is importable."""
    if len(true) == len(pred) + 1 and true[-1:] == (1,):
        return (true, (*pred, 1)) if len(pred) == 1 else (true[:-1], pred)
    if len(pred) == len(true) + 1 and pred[-1:] == (1,):
        return ((*true, 1), pred) if len(true) == 1 else (true, pred[:-1])
    return true, pred


def _legacy_requested() -> bool:
    return os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true", "yes")


def loaded() -> bool:
    """Whether the reference is known already, so that asking again imports nothing."""
    return reference.cache_info().currsize > 0  # type: ignore[attr-defined]


@cached(maxsize=None)
def reference() -> Reference:
    """The alignment in force for the user's Keras."""
    order = [("tf_keras", _tf_keras), ("keras", _keras3)]
    if not _legacy_requested():
        order.reverse()
    notes = []
    for name, loader in order:
        if importlib.util.find_spec(name) is None:
            continue
        try:
            align = loader()
        except Exception as exc:  # a broken install must not hide the NumPy port
            backend = os.environ.get("KERAS_BACKEND")
            if name == "keras" and backend:
                raise LossguardError(
                    f"keras cannot load with KERAS_BACKEND={backend!r} ({type(exc).__name__}: "
                    f"{exc}); install that backend or unset KERAS_BACKEND"
                ) from None
            notes.append(f"{name} failed to import ({type(exc).__name__}: {exc})")
            continue
        module = importlib.import_module(name)
        version = getattr(module, "__version__", "?")
        engine = module.backend.backend() if hasattr(module, "backend") else "tensorflow"
        return Reference(name, version, align, "; ".join(notes), engine)
    return Reference("", "", numpy_port, "; ".join(notes))


# The reference of targets outside Keras (torch, JAX, NumPy): Keras 3's rule, without Keras.
PORT = Reference("", "", numpy_port)


@cached(maxsize=None)
def aligned_shapes(true: Shape, pred: Shape, rule: Reference | None = None) -> ShapePair:
    """Batch-inclusive shapes after the container's alignment: by `rule`, else as the user's
    Keras computes it."""
    return (rule or reference()).align(true, pred)
