"""Keras 3 tensors of whichever backend KERAS_BACKEND selects, and Keras 3 model steps.

Location uses the tracer of the backend Keras runs on (TF op callbacks, jaxprs, torch function
modes), chosen once when this module loads. Traces run in a `keras.StatelessScope`, so a
metric or a step that assigns variables records the assignment instead of applying it (JAX
traces cannot assign; TF and torch run the step eagerly), and the user's variables are
untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np
from keras.src.backend.common import global_state
from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR, draw_seed

from pytest_lossguard.backends import KerasModels, load
from pytest_lossguard.trace import Growth


class _Scope(keras.StatelessScope):
    """A StatelessScope in which a variable the block has not assigned reads as its own
    value, as `Variable.value` reads it: some of Keras's code asks the scope itself for a
    variable's value (a weight regulariser's loss, read through `model.losses` in a step),
    and a plain scope answers None for every variable it was not given."""

    def get_current_value(self, variable: Any) -> Any:
        value = super().get_current_value(variable)
        return getattr(variable, "_value", None) if value is None else value


def _stateless(call: Callable[..., Any]) -> Callable[..., Any]:
    def traced(*tensors: Any) -> Any:
        with _Scope():
            return call(*tensors)

    return traced


def _groups(model: Any, method: str) -> tuple[list[Any], ...]:
    """The variable groups of a JAX trainer's state for `method`, in its order."""
    if method == "train_step":
        return (model.trainable_variables, model.non_trainable_variables,
                model.optimizer.variables, model.metrics_variables)
    return model.trainable_variables, model.non_trainable_variables, model.metrics_variables


class Keras(KerasModels):
    """The backend for keras.ops code and Keras 3 models, on Keras's own backend."""

    name = "keras"
    feeds = "keras tensors"
    namespace = "keras.ops"

    def __init__(self) -> None:
        self.native = load(keras.backend.backend())
        self.generator: Any = None  # the global SeedGenerator of seeded blocks, made once

    def to_tensor(self, array: np.ndarray) -> Any:
        return keras.ops.convert_to_tensor(array)

    def to_numpy(self, value: Any) -> np.ndarray:
        return self.native.to_numpy(value)

    def growth(self, call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
        return self.native.growth(_stateless(call), arrays)

    def forward(self, model: Any, x: Any) -> Any:
        """The predictions of Keras's first call on `x`, without the symbolic pass it starts
        with.

        Keras builds a subclassed model that has no build() of its own by first calling it on
        symbolic inputs (a scratch graph, `jax.eval_shape`), so that its layers make their
        weights, then calls it on `x`. The eager call alone makes the same weights, in the same
        order and from the same draws, so it runs first here; build() then records the input
        shape and locks the model's state as Keras's own first call does. The model ends up as
        Keras leaves it, at half the cost of that first call or less.
        """
        if model.built or not getattr(type(model).build, "_is_default", False):
            return model(x, training=False)
        model.built = True  # no symbolic pass: each layer still builds on its own first call
        try:
            outputs = model(x, training=False)
        finally:
            model.built = False
        model.build(keras.tree.map_structure(lambda array: tuple(array.shape), x))
        return outputs

    def step(self, model: Any, method: str, data: Any) -> Any:
        """A step as fit() runs it: JAX trainers' steps are stateless, `step(state, data)`
        returning `(logs, state)`, and their new state is written back to the variables."""
        if not hasattr(model, "jax_state_sync"):
            return getattr(model, method)(data)
        groups = _groups(model, method)
        logs, state = getattr(model, method)(tuple([v.value for v in g] for g in groups), data)
        for group, values in zip(groups, state, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)
        return logs

    def read(self, variable: Any) -> np.ndarray:
        return np.array(self.native.to_numpy(variable.value))

    @contextlib.contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        """Keras's own layers draw from SeedGenerator variables (seeded in the snapshot), but
        on torch an unseeded Dropout draws from torch's global state: the native backend's.
        keras.random's draws without a seed come from Keras's global SeedGenerator, which a
        block finds started from `seed` (made at a step's first run, outside the tracer's
        StatelessScope, where no variable can be made), the user's put back after."""
        if self.generator is None:
            self.generator = keras.random.SeedGenerator(seed)
        saved = global_state.get_global_attribute(GLOBAL_SEED_GENERATOR)
        self.generator.state.assign(draw_seed(seed))
        global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, self.generator)
        try:
            with self.native.seeded(seed):
                yield
        finally:
            global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, saved)


BACKEND = Keras()
