"""Keras 3 tensors of whichever backend KERAS_BACKEND selects, and Keras 3 model steps.

Location traces TensorFlow graphs when Keras runs on TensorFlow; on other Keras backends a
finding is judged but not located until their tracers are added.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from pytest_lossguard.backends import KerasModels
from pytest_lossguard.trace import Growth


class Keras(KerasModels):
    """The backend for keras.ops code and Keras 3 models."""

    name = "keras"
    namespace = "keras.ops"

    def to_tensor(self, array: np.ndarray) -> Any:
        return keras.ops.convert_to_tensor(array)

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(value))

    def growth(self, call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError(f"no tracer for Keras on {keras.backend.backend()}")
        from pytest_lossguard.backends.tensorflow import graph_growth

        return graph_growth(call, arrays)


BACKEND = Keras()
