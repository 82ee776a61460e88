"""What the callable kinds (loss functions, Loss and Metric objects, torch loss modules) share:
choosing the backend and the reference, the argument order, the call paths measured through
Keras's containers, and the shape of their advice."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

from pytest_lossguard import align, backends, calls
from pytest_lossguard.advice import (
    CANONICAL_ERROR,
    advised,
    canonical_growth,
    canonical_hint,
    fix_code,
    weights_hint,
)
from pytest_lossguard.align import Reference
from pytest_lossguard.backends import Backend
from pytest_lossguard.errors import LossguardError
from pytest_lossguard.findings import Finding, Fix, Paths, Report, Verdict
from pytest_lossguard.kinds import BuiltKind
from pytest_lossguard.options import Options
from pytest_lossguard.paths import LOSS, METRICS, PathMeter
from pytest_lossguard.probes import Case


def unreduced(obj: Any) -> Any:
    """A shallow twin of a loss object with `reduction="none"`, so that the raw per-sample
    shape of its result shows (Keras Loss objects and torch loss modules alike)."""
    twin = object.__new__(type(obj))  # not copy.copy: Keras objects copy through their config
    twin.__dict__.update(vars(obj))
    twin.reduction = "none"
    return twin


class Called(abc.ABC):
    """A target called as fn(y_true, y_pred[, sample_weight]); subclasses say how."""

    label: ClassVar[str]
    is_model: ClassVar[bool | None] = False
    judged_by_keras: ClassVar[bool] = True
    # The compile() paths that take this kind of target; the others read n/a.
    containers: ClassVar[tuple[str, ...]] = (LOSS, METRICS)
    takes_weights: bool
    backend: Backend
    reference: Reference
    meter: PathMeter
    # What the target calls its labels and predictions, as its fix hint writes them.
    names: tuple[str, str] = ("y_true", "y_pred")

    def __init__(self, obj: Any, name: str, source: str, backend: str) -> None:
        self.obj = obj
        self.name = name
        self.source = source
        self.inferred = backend
        self.parameters: list[str] = []

    # What `call` calls, and whether it takes the prediction first (torch's order).
    callee: Callable[..., Any]
    swapped: bool = False

    def call(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """One unreduced call on the backend's tensors, in the target's argument order."""
        args = (y_pred, y_true) if self.swapped else (y_true, y_pred)
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        return self.callee(*args, **kwargs)

    def order(self, parameters: list[str], swapped: bool) -> None:
        """Take the argument order, and the names fix hints write, from the parameters."""
        self.parameters = parameters
        self.swapped = swapped
        if len(parameters) >= 2:
            first, second = parameters[:2]
            self.names = (second, first) if swapped else (first, second)

    def _backend(self, options: Options) -> Backend:
        return backends.load(self.inferred if options.backend == "auto" else options.backend)

    def needs_keras(self, options: Options) -> bool:
        return self._backend(options).keras

    def check(self, options: Options) -> Report:
        model_only = [f"{key}= per output" for key in options.per_output]
        model_only += ["batch="] if options.batch is not None else []
        if model_only:
            raise LossguardError(
                f"{' and '.join(model_only)} apply to models only, and {self.name} is a "
                f"{self.label}; give it one value of each option and no batch=")
        options = options.classes()
        if options.order != "auto":
            self.order(self.parameters, options.order == "prediction-first")
        self.backend = self._backend(options)
        self.reference = align.reference() if self.backend.keras else align.PORT
        self.meter = PathMeter(self, options, self.containers if self.backend.keras else ())
        return calls.check(self, options)

    def traceable(self) -> Callable[..., Any]:
        return self.call

    def instance(self) -> Any:
        """The object to hand to Keras's containers."""
        return self.obj

    def paths(self, case: Case, verdict: Verdict) -> Paths:
        return self.meter(case, verdict)

    def from_factory(self, build: Callable[[], Any]) -> BuiltKind:
        return self

    def advise(self, report: Report, finding: Finding) -> Fix:
        code = fix_code(finding, report.true_shape, report.pred_shape, self.backend, self.names)
        if finding.verdict is Verdict.ERROR:
            return advised(finding, code, CANONICAL_ERROR)
        if finding.sample_weight is not None:
            return advised(finding, code, weights_hint(self.backend, finding.location,
                                                       finding.sample_weight))
        grown = canonical_growth(report)
        if grown is not None:  # aligning to the canonical layout would keep the bug
            return advised(finding, *canonical_hint(report, *grown, self.backend))
        return advised(finding, code, self.hint(code, finding))

    @abc.abstractmethod
    def hint(self, align: str, finding: Finding) -> str:
        """The kind's own advice, around the statement `align` that fixes the probe."""

    @abc.abstractmethod
    def reason(self, name: str, metrics: set[str]) -> str | None:
        """Why discovery picks this unmarked object, or None."""
