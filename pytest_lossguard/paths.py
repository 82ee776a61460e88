"""Call paths: does a finding bite in a direct call, in compile(loss=...), in compile(metrics=...)?

Measured, not tabled: the target runs through the installed Keras's own loss and metric
containers (the objects `compile()` builds) on the probe's layout and on the reference
layout, and the two values are compared. Keras 3 aligns plain loss functions but not Loss
subclasses that override `call`, nor metric functions; tf_keras aligns more.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from pytest_lossguard import align
from pytest_lossguard.findings import Paths, PathStatus, Verdict
from pytest_lossguard.options import Options
from pytest_lossguard.probes import Case, Inputs
from pytest_lossguard.tolerance import close

DIRECT = "direct call"
LOSS = "compile(loss=...)"
METRICS = "compile(metrics=...)"
FIT = "fit()"
EVALUATE = "evaluate()"
Runner = Callable[[Any, Inputs], float]


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


_CONTAINERS = {"keras": _keras3, "tf_keras": _tf_keras}


@functools.cache
def _runners() -> tuple[Runner, Runner] | None:
    """The loss and metric runners of the Keras that the reference alignment comes from."""
    loader = _CONTAINERS.get(align.reference().flavour)
    return loader() if loader is not None else None


class Instances(Protocol):
    """A target as Keras's containers take it: a fresh object for every container run."""

    def instance(self) -> Any:
        """The object to hand to a container."""


class PathMeter:
    """The call paths of one target's check. Most probes share the canonical layout, so each
    path's canonical value is measured once per check."""

    def __init__(self, target: Instances, options: Options,
                 containers: tuple[str, ...] = (LOSS, METRICS)) -> None:
        self.target = target
        self.options = options
        self.containers = containers
        self.canonical: dict[Hashable, float | None] = {}

    def _reference(self, path: str, run: Runner, case: Case) -> float | None:
        key = (path, case.canonical.key)
        if key not in self.canonical:
            try:
                self.canonical[key] = run(self.target.instance(), case.canonical)
            except Exception:  # Keras does not take this target on this path
                self.canonical[key] = None
        return self.canonical[key]

    def _measure(self, path: str, run: Runner, case: Case) -> PathStatus:
        reference = self._reference(path, run, case)
        if reference is None:
            return PathStatus.NA
        try:
            value = run(self.target.instance(), case.inputs)
        except Exception:
            return PathStatus.RAISES
        close_enough = close(value, reference, 4, self.options)
        return PathStatus.PROTECTED if close_enough else PathStatus.AFFECTED

    def __call__(self, case: Case, verdict: Verdict) -> Paths:
        """(path, status) for the direct call and both compile() paths; a path not in
        `containers` does not take this kind of target and reads n/a. A target outside Keras
        (no containers at all) has the direct call only, and Keras is not imported for it."""
        paths = [(DIRECT, PathStatus.of(verdict))]
        runners = _runners() if self.containers else None
        if runners is None:
            return tuple(paths)
        for path, run in zip((LOSS, METRICS), runners, strict=True):
            status = self._measure(path, run, case) if path in self.containers else PathStatus.NA
            paths.append((path, status))
        return tuple(paths)
