"""TensorFlow eager tensors, for tf.* code and tf_keras models; location by graph tracing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from pytest_lossguard.backends import KerasModels
from pytest_lossguard.trace import Growth, grown


def graph_growth(call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
    """Every growing op of `call(*tensors)` traced as a TF graph on the arrays' specs."""
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
        growth = grown(op.type, [tuple(s.as_list()) for s in floats],
                       tuple(op.outputs[0].shape.as_list()), frames)
        if growth is not None:
            found.append(growth)
    return found


class TensorFlow(KerasModels):
    """The backend for tf.* code and tf_keras (Keras 2) models."""

    name = "tensorflow"
    namespace = "tf"

    def to_tensor(self, array: np.ndarray) -> Any:
        return tf.convert_to_tensor(array)

    def to_numpy(self, value: Any) -> np.ndarray:
        # .numpy(), not np.asarray: a bfloat16 scalar tensor's __array__ returns no array.
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value)

    growth = staticmethod(graph_growth)


BACKEND = TensorFlow()
