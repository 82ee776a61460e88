"""Keras Metric objects, used as documented: update_state, then result, on a fresh twin for
every call, so that no run accumulates into the user's instance or into another run."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

from pytest_lossguard.errors import LossguardError
from pytest_lossguard.findings import Finding, Report
from pytest_lossguard.introspect import class_backend, source, user_defines
from pytest_lossguard.kinds import BuiltKind
from pytest_lossguard.kinds.called import Called
from pytest_lossguard.options import Options
from pytest_lossguard.paths import METRICS


def _measure(metric: Any, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return metric.result()


class MetricObject(Called):
    """A keras.metrics.Metric instance (rebuilt from its config), or one a factory builds."""

    label: ClassVar[str] = "metric"
    base = "Metric"
    containers = (METRICS,)  # a Metric object is not a loss
    takes_weights = True

    def __init__(self, metric: Any, name: str, twin: Callable[[], Any] | None = None) -> None:
        cls = type(metric)
        super().__init__(metric, name, source(cls), class_backend(cls))
        self.twin = twin

    def check(self, options: Options) -> Report:
        if self.twin is None:
            self.twin = self._from_config()
        return super().check(options)

    def _from_config(self) -> Callable[[], Any]:
        try:
            twin = functools.partial(type(self.obj).from_config, self.obj.get_config())
            twin()
        except Exception as exc:
            raise LossguardError(
                f"cannot rebuild metric {self.name} from its get_config(): "
                f"{type(exc).__name__}: {exc}; return every constructor argument from "
                "get_config, or mark the class with init="
            ) from exc
        return twin

    def fresh(self) -> Any:
        assert self.twin is not None, "check() sets the twin before any call"
        return self.twin()

    def call(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        return _measure(self.fresh(), y_true, y_pred, sample_weight)

    def traceable(self) -> Callable[..., Any]:
        """The twin is built outside the trace: tf.function may create variables only on its
        first trace."""
        return functools.partial(_measure, self.fresh())

    def instance(self) -> Any:
        return self.fresh()

    def from_factory(self, build: Callable[[], Any]) -> BuiltKind:
        """Fresh twins as the user builds them, not from the config."""
        return MetricObject(self.obj, self.name, build)

    def hint(self, align: str, finding: Finding) -> str:
        return (f"align ranks in update_state before combining, e.g. {align}: "
                "compile(metrics=...) hands a Metric the labels unaligned")

    def reason(self, name: str, metrics: set[str]) -> str | None:
        return None

    @staticmethod
    def class_reason(cls: type) -> str | None:
        """Why discovery picks a Metric subclass: only one that overrides update_state."""
        return ("a keras Metric subclass overriding update_state"
                if user_defines(cls, "update_state") else None)
