"""Call paths: does a finding bite in a direct call, in compile(loss=...), in compile(metrics=...)?

Measured, not tabled: the target runs through the installed Keras's own loss and metric
containers (the objects `compile()` builds) on the probe's layout and on the reference
layout, and the two values are compared. Keras 3 aligns plain loss functions but not Loss
subclasses that override `call`, nor metric functions; tf_keras aligns more.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pytest_lossguard import align
from pytest_lossguard.options import Options
from pytest_lossguard.probes import Case, Inputs
from pytest_lossguard.targets import Target
from pytest_lossguard.tolerance import close

DIRECT = "direct call"
LOSS = "compile(loss=...)"
METRICS = "compile(metrics=...)"
# A probe's verdict as the status of the call path it ran on.
STATUS = {"broadcast": "affected", "mismatch": "affected", "raises": "raises"}
Runner = Callable[[Any, Inputs], float]
Paths = tuple[tuple[str, str], ...]


def _keras3() -> tuple[Runner, Runner]:
    from keras.src.trainers.compile_utils import CompileLoss, CompileMetrics

    def loss(obj: Any, inputs: Inputs) -> float:
        container = CompileLoss(obj)
        container.build(inputs.y_true, inputs.y_pred)
        return float(container(inputs.y_true, inputs.y_pred, inputs.sample_weight))

    def metric(obj: Any, inputs: Inputs) -> float:
        weighted = inputs.sample_weight is not None
        container = CompileMetrics(None if weighted else [obj], [obj] if weighted else None)
        container.build(inputs.y_true, inputs.y_pred)
        container.update_state(inputs.y_true, inputs.y_pred, inputs.sample_weight)
        return float(next(iter(container.result().values())))

    return loss, metric


def _tf_keras() -> tuple[Runner, Runner]:
    import tensorflow as tf
    from tf_keras.src.engine.compile_utils import LossesContainer, MetricsContainer

    def tensors(inputs: Inputs) -> list[Any]:
        return [None if a is None else tf.constant(a) for a in
                (inputs.y_true, inputs.y_pred, inputs.sample_weight)]

    def loss(obj: Any, inputs: Inputs) -> float:
        y_true, y_pred, weight = tensors(inputs)
        return float(LossesContainer(obj)(y_true, y_pred, sample_weight=weight))

    def metric(obj: Any, inputs: Inputs) -> float:
        y_true, y_pred, weight = tensors(inputs)
        weighted = weight is not None
        container = MetricsContainer(None if weighted else [obj], [obj] if weighted else None)
        container.update_state(y_true, y_pred, sample_weight=weight)
        return float(container.metrics[0].result())

    return loss, metric


@functools.cache
def _runners() -> tuple[Runner, Runner] | None:
    """The loss and metric runners of the Keras that the reference alignment comes from."""
    flavour = align.reference()[0].partition(" ")[0]
    loaders = {"keras": _keras3, "tf_keras": _tf_keras}
    return loaders[flavour]() if flavour in loaders else None


def _measure(run: Runner, target: Target, case: Case, options: Options) -> str:
    try:
        reference = run(target.instance(), case.canonical)
    except Exception:  # Keras does not take this target on this path
        return "n/a"
    try:
        value = run(target.instance(), case.inputs)
    except Exception:
        return "raises"
    return "protected" if close(value, reference, 4, options) else "affected"


def call_paths(target: Target, case: Case, verdict: str, options: Options) -> Paths:
    """(path, status) for the direct call and both compile() paths of a loss or metric."""
    paths = [(DIRECT, STATUS.get(verdict, "protected"))]
    runners = _runners()
    if runners is None:
        return tuple(paths)
    for path, run in zip((LOSS, METRICS), runners, strict=True):
        if path == LOSS and target.kind == "metric":
            paths.append((path, "n/a"))  # a Metric object is not a loss
        else:
            paths.append((path, _measure(run, target, case, options)))
    return tuple(paths)
