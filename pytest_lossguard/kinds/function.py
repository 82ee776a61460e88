"""Loss and metric functions: fn(y_true, y_pred[, sample_weight]), plain or wrapped."""

from __future__ import annotations

from typing import Any, ClassVar

from pytest_lossguard.conventions import PREDICTION_FIRST, pair
from pytest_lossguard.findings import Finding, PathStatus
from pytest_lossguard.introspect import function_backend, signature, source
from pytest_lossguard.kinds.called import Called
from pytest_lossguard.paths import LOSS, METRICS


class Function(Called):
    """A plain function, tf.function, partial or callable object."""

    label: ClassVar[str] = "function"

    def __init__(self, fn: Any, name: str) -> None:
        super().__init__(fn, name, source(fn), function_backend(fn))
        sig = signature(fn)
        self.takes_weights = sig is not None and "sample_weight" in sig.parameters
        parameters = list(sig.parameters) if sig is not None else []
        self.callee = fn
        # Names such as (input, target) put the prediction first, as torch does.
        self.order(parameters, tuple(parameters[:2]) in PREDICTION_FIRST)

    def hint(self, align: str, finding: Finding) -> str:
        inside = finding.location is not None and not finding.location.where
        before = "calling it (it broadcasts inside the library)" if inside else "combining"
        hint = f"align ranks before {before}, e.g. {align}"
        paths = dict(finding.paths)
        if paths.get(LOSS) is PathStatus.PROTECTED:
            hint += (", or let Keras align them: compile(loss=fn), and self.compute_loss(...) in "
                     "a custom train_step")
        if paths.get(METRICS) is PathStatus.AFFECTED:
            hint += ("; used in compile(metrics=...) it gets no alignment, so "
                     + ("wrap it in a function that aligns first" if inside else "align inside it"))
        return hint

    def reason(self, name: str, metrics: set[str]) -> str | None:
        found = pair(self.parameters)
        if found:
            return f"parameters ({found[0]}, {found[1]})"
        return "used in compile(metrics=...)" if name in metrics else None
