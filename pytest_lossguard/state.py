"""Snapshot and restore the global state a probe (or the user's loss) may touch."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pytest_lossguard.deadline import shielded

Getter = Callable[[], Any]
Setter = Callable[[Any], None]
Slot = tuple[str, Getter, Setter, Callable[[Any, Any], bool]]


def _environ(key: str) -> tuple[Getter, Setter]:
    def put(value: str | None) -> None:
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

    return (lambda: os.environ.get(key)), put


def _environment() -> tuple[Getter, Setter]:
    """Every environment variable but KERAS_BACKEND (a slot of its own): put back as it was,
    the ones the block added removed. Held with the number of modules loaded, since a module
    imported for the first time inside the block may set some at import (TensorFlow,
    scikit-learn and Lightning do), and those are the import's, not the target's: see
    `_environment_equal`."""
    def get() -> tuple[int, dict[str, str]]:
        return len(sys.modules), {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}

    def put(saved: tuple[int, dict[str, str]]) -> None:
        variables = saved[1]
        for key in get()[1].keys() - variables.keys():
            del os.environ[key]
        os.environ.update(variables)

    return get, put


def _environment_equal(now: tuple[int, dict[str, str]], saved: tuple[int, dict[str, str]],
                       ) -> bool:
    """Unchanged, or changed while new modules were imported: what an import sets up stays
    (undoing it could break the library just loaded), and the target is not blamed for it."""
    return now[0] > saved[0] or now[1] == saved[1]


def _numpy_equal(a: Any, b: Any) -> bool:
    return bool(a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:])


def tf_seed(context: Any) -> tuple[Getter, Setter]:
    """TensorFlow's global seed (`tf.random.set_seed`) with its op-seed generator: put back as
    they were, the same generator object in the same state."""
    def get() -> tuple[Any, Any, Any]:
        ctx = context.context()
        rng = getattr(ctx, "_rng", None)
        return ctx._seed, rng, rng.getstate() if rng is not None else None

    def put(value: tuple[Any, Any, Any]) -> None:
        ctx = context.context()
        ctx._seed, ctx._rng = value[0], value[1]
        if value[1] is not None:
            value[1].setstate(value[2])
        clear = getattr(ctx, "clear_kernel_cache", None)
        if clear is not None and getattr(ctx, "_context_handle", None) is not None:
            clear()  # kernels seeded by the target's seed go too

    return get, put


_SEED, _GENERATOR = "global_random_seed", "global_seed_generator"  # keras.utils.set_random_seed's


def _keras_seed(keras_global: Any) -> tuple[Getter, Setter]:
    """Keras's global seed and global SeedGenerator (what `keras.random` draws from when given
    no seed), with the generator's state."""
    def get() -> tuple[Any, Any, Any]:
        generator = keras_global.get_global_attribute(_GENERATOR)
        state = None if generator is None else np.array(generator.state.numpy()
                                                        if hasattr(generator.state, "numpy")
                                                        else generator.state.value)
        return keras_global.get_global_attribute(_SEED), generator, state

    def put(value: tuple[Any, Any, Any]) -> None:
        keras_global.set_global_attribute(_SEED, value[0])
        keras_global.set_global_attribute(_GENERATOR, value[1])
        if value[1] is not None:
            value[1].state.assign(value[2])

    return get, put


# Keras's unseeded initialisers draw their seeds from it whenever a layer is made.
PYTHON_RANDOM = "python random state"
TORCH_RANDOM = "torch random state"


def _seterr(value: Any) -> None:
    np.seterr(**value)


def _same(a: Any, b: Any) -> bool:
    return bool(a == b)


def _keras_equal(a: Any, b: Any) -> bool:
    return bool(a[0] == b[0] and a[1] is b[1]
                and (a[2] is None or b[2] is None or np.array_equal(a[2], b[2])))


def _slots() -> list[Slot]:
    """Every restorable piece of state, for the frameworks that are already imported."""
    slots: list[Slot] = [
        (PYTHON_RANDOM, random.getstate, random.setstate, _same),
        ("numpy random state", np.random.get_state, np.random.set_state, _numpy_equal),
        ("numpy error handling", np.geterr, _seterr, _same),
        ("KERAS_BACKEND", *_environ("KERAS_BACKEND"), _same),
        ("environment variables", *_environment(), _environment_equal),
    ]
    context = sys.modules.get("tensorflow.python.eager.context")
    if context is not None:
        slots.append(("tf global seed", *tf_seed(context), lambda a, b: bool(a[0] == b[0])))
    keras_global = sys.modules.get("keras.src.backend.common.global_state")
    if keras_global is not None and "keras.src.random.seed_generator" in sys.modules:
        slots.append(("keras global seed generator", *_keras_seed(keras_global), _keras_equal))
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "random"):
        slots.append((TORCH_RANDOM, torch.random.get_rng_state,
                      torch.random.set_rng_state, lambda a, b: bool(torch.equal(a, b))))
        slots.append(("torch default dtype", torch.get_default_dtype, torch.set_default_dtype,
                      _same))
        slots.append(("torch grad mode", torch.is_grad_enabled, torch.set_grad_enabled, _same))
        slots.append(("torch threads", torch.get_num_threads, torch.set_num_threads, _same))
        slots.append(("torch deterministic algorithms",
                      lambda: (torch.are_deterministic_algorithms_enabled(),
                               torch.is_deterministic_algorithms_warn_only_enabled()),
                      lambda value: torch.use_deterministic_algorithms(value[0],
                                                                       warn_only=value[1]),
                      _same))
    jax = sys.modules.get("jax")
    if jax is not None and hasattr(jax, "config"):
        # JAX's default dtypes (32 or 64 bits), and the precision of its float32 matmuls.
        for label, option in (("jax x64", "jax_enable_x64"),
                              ("jax matmul precision", "jax_default_matmul_precision")):
            slots.append((label, functools.partial(getattr, jax.config, option),
                          functools.partial(jax.config.update, option), _same))
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        slots.append(("tf.config.run_functions_eagerly", tf.config.functions_run_eagerly,
                      tf.config.run_functions_eagerly, _same))
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "config"):
        slots.append(("keras dtype policy", lambda: keras.config.dtype_policy().name,
                      keras.config.set_dtype_policy, _same))
        slots.extend(_keras_config("keras", keras.config))
    tf_keras = sys.modules.get("tf_keras")
    if tf_keras is not None:
        policy = tf_keras.mixed_precision
        slots.append(("tf_keras dtype policy", lambda: policy.global_policy().name,
                      policy.set_global_policy, _same))
        slots.extend(_keras_config("tf_keras", tf_keras.backend))
    return slots


def _keras_config(flavour: str, config: Any) -> list[Slot]:
    """A Keras flavour's global settings that layers and losses read when they are made:
    floatx, the fuzz factor (epsilon) and the image data format."""
    return [(f"{flavour} {setting.replace('_', ' ')}", getattr(config, setting),
             getattr(config, f"set_{setting}"), _same)
            for setting in ("floatx", "epsilon", "image_data_format")]


@contextlib.contextmanager
def preserved() -> Iterator[list[str]]:
    """Run a block and put every slot back; the yielded list names what had changed."""
    slots = _slots()
    saved = [getter() for _, getter, _, _ in slots]
    changed: list[str] = []
    with warnings.catch_warnings():  # puts the filters back on leaving, whatever happened
        filters = list(warnings.filters)
        try:
            yield changed
        finally:
            with shielded():  # the time limit cannot cut the restore short
                if warnings.filters != filters:
                    changed.append("warnings filters")
                for (name, getter, setter, equal), value in zip(slots, saved, strict=True):
                    if not equal(getter(), value):
                        changed.append(name)
                        setter(value)


@contextlib.contextmanager
def warnings_recorded() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning a block raises instead of showing it, or raising it under
    `-W error`: what a target warns on lossguard's probe shapes (torch's "Using a target size
    ..." among them) is a note on that probe's finding, never its verdict, and never a line in
    pytest's warnings summary. Enter it outside `preserved()`, which then still sees a target
    that changes the filters."""
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        yield log


def notes_of(log: list[warnings.WarningMessage]) -> tuple[str, ...]:
    """Recorded warnings as a finding's notes, each once."""
    def note(warning: warnings.WarningMessage) -> str:
        lines = str(warning.message).strip().splitlines()
        return f"the target warned: {warning.category.__name__}: {lines[0] if lines else ''}"

    return tuple(dict.fromkeys(map(note, log)))
