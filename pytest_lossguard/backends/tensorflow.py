"""TensorFlow eager tensors, for tf.* code and tf_keras models; location by an eager op callback."""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context
from tensorflow.python.framework import op_callbacks

from pytest_lossguard.backends import KerasModels
from pytest_lossguard.state import tf_seed
from pytest_lossguard.trace import Growth, grown, live_frames


class _Recording:
    """An op callback that records every op that grew, with tf.functions run as Python so that
    their ops show up too. Set up in `__enter__` and taken down in `__exit__`, where the time
    limit never lands (deadline.py): a tick there would leave the callback on every later op."""

    def __init__(self) -> None:
        self.found: list[Growth] = []
        self.eager = False

    def record(self, op_type: str, inputs: Sequence[Any], attrs: Any, outputs: Sequence[Any],
               op_name: str | None = None, graph: Any = None) -> None:
        if graph is not None or not outputs or len(inputs) < 2:
            return  # built into a graph (a py_function's, say), or nothing to combine
        floats = [tuple(t.shape) for t in inputs if t.dtype.is_floating or t.dtype.is_bool]
        growth = grown(op_type, floats, tuple(outputs[0].shape), live_frames(sys._getframe(1)))
        if growth is not None:
            self.found.append(growth)

    def __enter__(self) -> _Recording:
        self.eager = tf.config.functions_run_eagerly()
        tf.config.run_functions_eagerly(True)
        op_callbacks.add_op_callback(self.record)
        return self

    def __exit__(self, *exc: object) -> None:
        op_callbacks.remove_op_callback(self.record)
        tf.config.run_functions_eagerly(self.eager)


def eager_growth(call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
    """Every growing op of `call(*tensors)`, run eagerly under a TF op callback.

    TensorFlow hands an op callback each eager op's type and its input and output tensors
    while the Python stack still names the user's line (as torch's function mode does). This
    costs about a tenth of building the same ops into a graph (`tf.function`'s trace): 0.15
    against 1.8 ms for a three-op loss. A step that assigns variables does assign them: the
    model harness restores its snapshot before every run.
    """
    tensors = [tf.convert_to_tensor(a) for a in arrays]
    with _Recording() as recording:
        call(*tensors)
    return recording.found


class TensorFlow(KerasModels):
    """The backend for tf.* code and tf_keras (Keras 2) models."""

    name = "tensorflow"
    feeds = "tensorflow tensors"
    namespace = "tf"

    def to_tensor(self, array: np.ndarray) -> Any:
        return tf.convert_to_tensor(array)

    def to_numpy(self, value: Any) -> np.ndarray:
        # .numpy(), not np.asarray: a bfloat16 scalar tensor's __array__ returns no array.
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value)

    growth = staticmethod(eager_growth)

    @contextlib.contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        """TensorFlow's global seed, which the seeds of unseeded ops follow (tf_keras's Dropout
        draws so), set for the block and put back after. tf.random.set_seed would also empty
        the kernel cache, which costs each step as much time again: the cache is emptied
        (with the seed put back) only after a block that drew a seed, since its random
        kernels would otherwise go on where they stopped in the next block."""
        get, put = tf_seed(context)
        saved = get()
        ctx = context.context()
        ctx._seed, ctx._rng = seed, random.Random(seed)
        start = ctx._rng.getstate()
        try:
            yield
        finally:
            if ctx._rng.getstate() == start:
                ctx._seed, ctx._rng = saved[0], saved[1]
            else:
                put(saved)


BACKEND = TensorFlow()
