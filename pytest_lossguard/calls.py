"""Probing a target that is called as fn(y_true, y_pred[, sample_weight]): loss functions,
Loss objects and Metric objects. Each probe runs against its references, is reduced as the
container reduces, and is judged by the shared core (judge.py).
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from pytest_lossguard import align, judge, probes
from pytest_lossguard.advice import NOT_DETERMINISTIC
from pytest_lossguard.align import Reference
from pytest_lossguard.backends import Backend, numeric
from pytest_lossguard.errors import stage
from pytest_lossguard.findings import Finding, Fix, Paths, Report, Verdict
from pytest_lossguard.locate import Locator
from pytest_lossguard.options import Options, Shape
from pytest_lossguard.probes import Case, Inputs
from pytest_lossguard.state import notes_of, preserved, warnings_recorded
from pytest_lossguard.text import number, one_line
from pytest_lossguard.tolerance import close


class Callee(judge.Advisor, Protocol):
    """A built target of a callable kind, as the probe loop uses it."""

    backend: Backend
    reference: Reference
    takes_weights: bool
    # Whether it takes the prediction first (torch's order), as the report header says.
    swapped: bool

    def call(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """One unreduced call on the backend's tensors."""

    def traceable(self) -> Callable[..., Any]:
        """`call`, in a form a tracer may run (objects that need building built outside)."""

    def paths(self, case: Case, verdict: Verdict) -> Paths:
        """(path, status) of every call path this kind of target is used on."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One call of the target: its raw result's shape and reduced value, or what it raised."""

    shape: Shape | None = None
    value: float | None = None
    itemsize: int = 4
    error: BaseException | None = None
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return math.prod(self.shape or ())

    @property
    def failed(self) -> bool:
        """Raised, or gave NaN or inf: no reference can come of it."""
        return self.error is not None or not math.isfinite(self.value or 0.0)


def _call(target: Callee, inputs: Inputs, log: list[warnings.WarningMessage]) -> Outcome:
    """Call the target on one layout and reduce its result as the container does; what it
    warns (into `log`, see `state.warnings_recorded`) comes back as notes."""
    __tracebackhide__ = True
    start = len(log)
    outcome = _outcome(target, inputs)
    notes = notes_of(log[start:])
    return dataclasses.replace(outcome, notes=notes) if notes else outcome


def _outcome(target: Callee, inputs: Inputs) -> Outcome:
    __tracebackhide__ = True
    to_tensor = target.backend.to_tensor
    weight = None if inputs.sample_weight is None else to_tensor(inputs.sample_weight)
    try:
        args = to_tensor(inputs.y_true), to_tensor(inputs.y_pred)
        raw = target.call(*args, sample_weight=weight) if weight is not None else target.call(*args)
        if raw is None or isinstance(raw, (str, bytes)):
            raise TypeError(f"returned {raw!r:.40} ({type(raw).__name__}), not a number; a loss or "
                            "metric must return its value: a tensor, an array or a number "
                            "computed from its inputs")
        if isinstance(raw, (tuple, list, dict)):
            parts = raw.values() if isinstance(raw, dict) else raw
            kinds = ", ".join(type(part).__name__ for part in list(parts)[:4])
            raise TypeError(f"returned a {type(raw).__name__} of {len(raw)} ({kinds}); a loss or "
                            "metric must return one tensor: return its value alone, not "
                            "(loss, aux)")
        array = np.asarray(target.backend.to_numpy(raw))
        read = numeric(array)
        if read is None:
            raise TypeError(f"returned {type(raw).__name__} of dtype {array.dtype}; a loss or "
                            "metric must return a real-valued tensor or array")
    except Exception as exc:
        return Outcome(error=exc)
    result, itemsize = read
    value = float(np.mean(result, dtype=np.float64)) if result.size else math.nan
    return Outcome(tuple(result.shape), value, itemsize)


def _close(a: Outcome, b: Outcome, options: Options) -> bool:
    return close(a.value, b.value, min(a.itemsize, b.itemsize), options)  # type: ignore[arg-type]


def _aligned(case: Case, rule: Reference) -> Inputs | None:
    """The probe's arrays as Keras's container would hand them over, if that differs."""
    if case.probe.weights or case.probe.label_dtype:
        return None
    true, pred = align.aligned_shapes(case.inputs.y_true.shape, case.inputs.y_pred.shape, rule)
    if (true, pred) == (case.inputs.y_true.shape, case.inputs.y_pred.shape):
        return None
    return Inputs(case.inputs.y_true.reshape(true), case.inputs.y_pred.reshape(pred))


def _finding(case: Case, verdict: Verdict, **fields: Any) -> Finding:
    edits = tuple(side for side, edit in (("y_true", case.probe.y_true),
                                          ("y_pred", case.probe.y_pred)) if edit != "keep")
    weight = case.inputs.sample_weight
    return Finding(
        case.label, verdict, case.inputs.y_true.shape, case.inputs.y_pred.shape,
        None if weight is None else weight.shape, edits=edits, **fields,
    )


def _positional(call: Callable[..., Any]) -> Callable[..., Any]:
    """The loss as a function of positional tensors, sample_weight last, for tracing."""
    def traced(y_true: Any, y_pred: Any, *weight: Any) -> Any:
        return call(y_true, y_pred, **({"sample_weight": weight[0]} if weight else {}))

    return traced


class Probing:
    """One check's shared state: the target's calls (each layout once), the locator, and
    whether a repeated canonical call has shown the target deterministic."""

    def __init__(self, target: Callee, options: Options,
                 log: list[warnings.WarningMessage]) -> None:
        self.target = target
        self.options = options
        self.log = log
        self.evaluate: judge.Memo[Inputs, Outcome] = judge.Memo(
            lambda inputs: _call(target, inputs, log), lambda inputs: inputs.key)
        self.locate = Locator(target.backend)
        self.steady = False

    def unsteady(self, inputs: Inputs) -> Finding | None:
        """An error finding when a second call on the canonical `inputs` differs from the
        first: randomness or a call counter, not a layout, then explains any probe's
        difference. Asked once per check, and only once a probe differs, so a clean target
        pays no call for it."""
        if self.steady:
            return None
        self.steady = True
        first, again = self.evaluate(inputs), _call(self.target, inputs, self.log)
        if again.error is None and _close(again, first, self.options):
            return None
        second = one_line(again.error) if again.error else number(again.value)
        return judge.canonical_error(
            inputs.y_true.shape, inputs.y_pred.shape,
            f"{self.target.name} is not deterministic: called twice on the same canonical input "
            f"it gave {number(first.value)}, then {second}, so no probe can be compared with it",
            sample_weight=None if inputs.sample_weight is None else inputs.sample_weight.shape,
            fix=Fix(NOT_DETERMINISTIC, "not deterministic"))


def _swapped(case: Case) -> Case:
    """A weighting case told the other way round: its reference weighting as the probe."""
    return dataclasses.replace(case, inputs=case.canonical, canonical=case.inputs)


def _judge(run: Probing, case: Case) -> Finding | None:
    """The verdict of one probe; None when no reference applies to it."""
    __tracebackhide__ = True
    target, evaluate, options = run.target, run.evaluate, run.options
    canonical = evaluate(case.canonical)
    failed = canonical.failed
    weight = case.canonical.sample_weight
    if failed and weight is not None and not evaluate(
            dataclasses.replace(case.canonical, sample_weight=None)).failed:
        return None  # works unweighted, not with (B,) weights: the probe does not apply
    if failed:
        message = (one_line(canonical.error) if canonical.error else
                   f"returned {canonical.value} on well-formed input; check domain= and the "
                   "loss's arithmetic")
        return judge.canonical_error(
            case.canonical.y_true.shape, case.canonical.y_pred.shape, message,
            sample_weight=None if weight is None else weight.shape, exception=canonical.error)
    references = [("canonical", canonical)]
    aligned = _aligned(case, target.reference)
    if aligned is not None and (outcome := evaluate(aligned)).error is None:
        references.insert(0, ("Keras-aligned", outcome))
    probe = evaluate(case.inputs)
    if probe.error is not None:
        return _finding(case, Verdict.RAISES, message=one_line(probe.error),
                        paths=target.paths(case, Verdict.RAISES), notes=probe.notes)
    match = next((r for r in references if _close(probe, r[1], options)), None)
    if match is not None:
        return _finding(case, Verdict.SAFE, result_shape=probe.shape, value=probe.value,
                        reference=match[0], reference_shape=match[1].shape,
                        reference_value=match[1].value, notes=probe.notes)
    unsteady = run.unsteady(case.canonical)
    if unsteady is not None:
        return unsteady
    name, reference = references[0]
    shown = case
    if case.symmetric and reference.size > probe.size:
        shown, probe, reference = _swapped(case), reference, probe
    call = _positional(target.traceable())
    where = run.locate(call, shown.inputs.arrays, shown.canonical.arrays)
    if where is None and not case.probe.label_dtype:
        # The probe shows no growth of its own: does the reference mix ranks where it does not?
        grew = run.locate(call, shown.canonical.arrays, shown.inputs.arrays, mixed=True)
        if grew is not None and case.symmetric:
            shown, probe, reference, where = _swapped(shown), reference, probe, grew
        elif grew is not None:
            where = dataclasses.replace(grew, layout="canonical")
    if case.symmetric and shown.canonical.sample_weight is not None:
        name = f"sample_weight {shown.canonical.sample_weight.shape}"  # neither is canonical
    verdict = judge.verdict(False, probe.size > reference.size, where)
    return _finding(
        shown, verdict, result_shape=probe.shape, value=probe.value, reference=name,
        reference_shape=reference.shape, reference_value=reference.value, location=where,
        paths=target.paths(case, verdict), notes=probe.notes,
    )


def check(target: Callee, options: Options) -> Report:
    """Every applicable probe of `target`; never raises for a verdict."""
    __tracebackhide__ = True
    started = time.perf_counter()
    findings: list[Finding] = []
    with warnings_recorded() as log, preserved() as restored:
        run = Probing(target, options, log)
        # Keras's container hands class ids over as floats; other frameworks' code takes ints.
        for case in probes.cases(options, target.takes_weights, ids=not target.backend.keras):
            with stage(f"probing {case.label}"):
                finding = _judge(run, case)
            if finding is not None and finding.verdict is Verdict.ERROR:
                findings = [finding]
                break
            if finding is not None:
                findings.append(finding)
    # Keras's API always takes labels first; elsewhere the order was read off the signature.
    order = "" if target.backend.keras else (", prediction first" if target.swapped
                                             else ", labels first")
    header = judge.Header(target.backend.name, f"{target.backend.feeds}{order}",
                          target.reference.name, options.true_shape, options.pred_shape)
    with stage("writing the report"):
        return judge.report(target, header, findings, options, started, restored)
