"""Call paths: does a finding bite in a direct call, in compile(loss=...), in compile(metrics=...)?

Measured, not tabled: the target runs through the installed Keras's own loss and metric
containers (the objects `compile()` builds) on the probe's layout and on the reference
layout, and the two values are compared. Keras 3 aligns plain loss functions but not Loss
subclasses that override `call`, nor metric functions; tf_keras aligns more.
"""

from __future__ import annotations

import dataclasses
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


@dataclasses.dataclass(frozen=True)
class Container:
    """One compile() path: how Keras's container for a target is built, and how one run of it
    (reset first, so that runs never accumulate) measures a layout."""

    build: Callable[[Any, bool], Any]
    run: Callable[[Any, Inputs], float]


def _keras3() -> tuple[Container, Container]:
    from keras.src.trainers.compile_utils import CompileLoss, CompileMetrics

    def loss(container: Any, inputs: Inputs) -> float:
        if not container.built:
            container.build(inputs.y_true, inputs.y_pred)
        return float(container(inputs.y_true, inputs.y_pred, inputs.sample_weight))

    def metric(container: Any, inputs: Inputs) -> float:
        if container.built:
            container.reset_state()
        else:
            container.build(inputs.y_true, inputs.y_pred)
        container.update_state(inputs.y_true, inputs.y_pred, inputs.sample_weight)
        return float(next(iter(container.result().values())))

    return (Container(lambda obj, weighted: CompileLoss(obj), loss),
            Container(lambda obj, weighted: CompileMetrics(*_metric_lists(obj, weighted)),
                      metric))


def _tf_keras() -> tuple[Container, Container]:
    import tensorflow as tf
    from tf_keras.src.engine.compile_utils import LossesContainer, MetricsContainer

    def tensors(inputs: Inputs) -> list[Any]:
        return [None if a is None else tf.constant(a) for a in
                (inputs.y_true, inputs.y_pred, inputs.sample_weight)]

    def loss(container: Any, inputs: Inputs) -> float:
        y_true, y_pred, weight = tensors(inputs)
        return float(container(y_true, y_pred, sample_weight=weight))

    def metric(container: Any, inputs: Inputs) -> float:
        y_true, y_pred, weight = tensors(inputs)
        container.reset_state()
        container.update_state(y_true, y_pred, sample_weight=weight)
        return float(container.metrics[0].result())

    return (Container(lambda obj, weighted: LossesContainer(obj), loss),
            Container(lambda obj, weighted: MetricsContainer(*_metric_lists(obj, weighted)),
                      metric))


def _metric_lists(obj: Any, weighted: bool) -> tuple[list[Any] | None, list[Any] | None]:
    """compile()'s `metrics` and `weighted_metrics` holding the target: weighted runs take it
    as a weighted metric."""
    return (None, [obj]) if weighted else ([obj], None)


_CONTAINERS = {"keras": _keras3, "tf_keras": _tf_keras}


@functools.cache
def _containers() -> tuple[Container, Container] | None:
    """The loss and metric containers of the Keras that the reference alignment comes from."""
    loader = _CONTAINERS.get(align.reference().flavour)
    return loader() if loader is not None else None


class Instances(Protocol):
    """A target as Keras's containers take it: the same object, or a fresh one for every
    container run."""

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
        # (path, weighted) -> (the object handed over, the container built around it)
        self.built: dict[tuple[str, bool], tuple[Any, Any]] = {}

    def _run(self, path: str, container: Container, inputs: Inputs) -> float:
        """One container run; a container is built once per object handed over and reused."""
        obj = self.target.instance()
        weighted = inputs.sample_weight is not None
        held = self.built.get((path, weighted))
        if held is None or held[0] is not obj:
            held = self.built[path, weighted] = obj, container.build(obj, weighted)
        return container.run(held[1], inputs)

    def _reference(self, path: str, container: Container, case: Case) -> float | None:
        key = (path, case.canonical.key)
        if key not in self.canonical:
            try:
                self.canonical[key] = self._run(path, container, case.canonical)
            except Exception:  # Keras does not take this target on this path
                self.canonical[key] = None
        return self.canonical[key]

    def _measure(self, path: str, container: Container, case: Case) -> PathStatus:
        reference = self._reference(path, container, case)
        if reference is None:
            return PathStatus.NA
        try:
            value = self._run(path, container, case.inputs)
        except Exception:
            return PathStatus.RAISES
        close_enough = close(value, reference, 4, self.options)
        return PathStatus.PROTECTED if close_enough else PathStatus.AFFECTED

    def __call__(self, case: Case, verdict: Verdict) -> Paths:
        """(path, status) for the direct call and both compile() paths; a path not in
        `containers` does not take this kind of target and reads n/a. A target outside Keras
        (no containers at all) has the direct call only, and Keras is not imported for it."""
        paths = [(DIRECT, PathStatus.of(verdict))]
        containers = _containers() if self.containers else None
        if containers is None:
            return tuple(paths)
        for path, container in zip((LOSS, METRICS), containers, strict=True):
            status = (self._measure(path, container, case) if path in self.containers
                      else PathStatus.NA)
            paths.append((path, status))
        return tuple(paths)
