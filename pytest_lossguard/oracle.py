"""Run each probe against its references, reduce as the container does, and judge."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_lossguard import align, backends, models, probes
from pytest_lossguard.deadline import deadline
from pytest_lossguard.locate import graph_growth, locate, numpy_growth
from pytest_lossguard.options import Options, Shape
from pytest_lossguard.paths import call_paths
from pytest_lossguard.probes import Case, Inputs
from pytest_lossguard.report import Finding, Report, one_line
from pytest_lossguard.state import preserved
from pytest_lossguard.targets import Target, describe, resolve
from pytest_lossguard.tolerance import close


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One call of the target: its raw result's shape and reduced value, or what it raised."""

    shape: Shape | None = None
    value: float | None = None
    itemsize: int = 4
    error: BaseException | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape or ())


class Evaluator:
    """Calls the target once per distinct input layout and remembers the outcome."""

    def __init__(self, target: Target, backend: backends.Backend) -> None:
        self.target = target
        self.backend = backend
        self.cache: dict[tuple[object, ...], Outcome] = {}

    def __call__(self, inputs: Inputs) -> Outcome:
        if inputs.key not in self.cache:
            self.cache[inputs.key] = self._call(inputs)
        return self.cache[inputs.key]

    def _call(self, inputs: Inputs) -> Outcome:
        __tracebackhide__ = True
        to_tensor = self.backend.to_tensor
        kwargs = {}
        if inputs.sample_weight is not None:
            kwargs["sample_weight"] = to_tensor(inputs.sample_weight)
        try:
            raw = self.target.call(to_tensor(inputs.y_true), to_tensor(inputs.y_pred), **kwargs)
            if raw is None or type(raw) in (int, float, bool, str, bytes):
                raise TypeError(f"returned a Python {type(raw).__name__} ({raw!r:.40}); a loss "
                                "must return a tensor or array computed from its inputs")
            result = np.asarray(self.backend.to_numpy(raw))
            if not np.issubdtype(result.dtype, np.number) or np.iscomplexobj(result):
                raise TypeError(f"returned {type(raw).__name__} of dtype {result.dtype}; a loss "
                                "must return a real-valued tensor or array")
        except Exception as exc:
            return Outcome(error=exc)
        itemsize = result.dtype.itemsize if np.issubdtype(result.dtype, np.floating) else 8
        value = float(np.mean(result, dtype=np.float64)) if result.size else math.nan
        return Outcome(tuple(result.shape), value, itemsize)


def _close(a: Outcome, b: Outcome, options: Options) -> bool:
    return close(a.value, b.value, min(a.itemsize, b.itemsize), options)  # type: ignore[arg-type]


def _aligned(case: Case) -> Inputs | None:
    """The probe's arrays as Keras's container would hand them over, if that differs."""
    if case.probe.weights or case.probe.label_dtype:
        return None
    true, pred = align.aligned_shapes(case.inputs.y_true.shape, case.inputs.y_pred.shape)
    if (true, pred) == (case.inputs.y_true.shape, case.inputs.y_pred.shape):
        return None
    return Inputs(case.inputs.y_true.reshape(true), case.inputs.y_pred.reshape(pred))


def _finding(case: Case, verdict: str, **fields: Any) -> Finding:
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


def judge(case: Case, evaluate: Evaluator, options: Options) -> Finding | None:
    """The verdict of one probe; None when no reference applies to it."""
    __tracebackhide__ = True
    canonical = evaluate(case.canonical)
    failed = canonical.error is not None or not math.isfinite(canonical.value or 0.0)
    if failed and case.canonical.sample_weight is not None and evaluate(
            dataclasses.replace(case.canonical, sample_weight=None)).error is None:
        return None  # works unweighted, not with (B,) weights: the probe does not apply
    if failed:
        message = (one_line(canonical.error) if canonical.error else
                   f"returned {canonical.value} on well-formed input; check domain= and the "
                   "loss's arithmetic")
        return Finding("canonical", "error", case.canonical.y_true.shape,
                       case.canonical.y_pred.shape, sample_weight=None if case.canonical
                       .sample_weight is None else case.canonical.sample_weight.shape,
                       message=message, exception=canonical.error)
    references = [("canonical", canonical)]
    aligned = _aligned(case)
    if aligned is not None and (outcome := evaluate(aligned)).error is None:
        references.insert(0, ("Keras-aligned", outcome))
    probe = evaluate(case.inputs)
    if probe.error is not None:
        return _finding(case, "raises", message=one_line(probe.error),
                        paths=call_paths(evaluate.target, case, "raises", options))
    match = next((r for r in references if _close(probe, r[1], options)), None)
    name, reference = match or references[0]
    if match is None and case.symmetric and reference.size > probe.size:
        probe, reference = reference, probe
    verdict = "safe" if match else ("broadcast" if probe.size > reference.size else "mismatch")
    where = None
    if verdict != "safe":
        tracer = numpy_growth if evaluate.backend.name == "numpy" else graph_growth
        where = locate(_positional(evaluate.target.traceable()), case.inputs.arrays,
                       case.canonical.arrays, tracer)
        verdict = "broadcast" if where is not None and where.grew else verdict
    return _finding(
        case, verdict, result_shape=probe.shape, value=probe.value, reference=name,
        reference_shape=reference.shape, reference_value=reference.value,
        location=where.where if where else "", source=where.source if where else "",
        operation=where.describe() if where else "", chain=where.chain if where else (),
        paths=call_paths(evaluate.target, case, verdict, options) if match is None else (),
    )


def run(target: Target, options: Options) -> Report:
    """Every applicable probe of `target`; never raises for a verdict."""
    __tracebackhide__ = True
    name = options.backend if options.backend != "auto" else target.backend
    evaluate = Evaluator(target, backends.load(name))
    alignment = align.reference()[0]
    started = time.perf_counter()
    findings: list[Finding] = []
    with preserved() as restored:
        for case in probes.cases(options, target.takes_weights):
            finding = judge(case, evaluate, options)
            if finding is not None and finding.verdict == "error":
                findings = [finding]
                break
            if finding is not None:
                findings.append(finding)
    return Report(
        target.name, target.kind, target.source, name, alignment, options.true_shape,
        options.pred_shape, options.strict, tuple(findings), time.perf_counter() - started,
        tuple(restored), options.seed,
    )


def probe(obj: Any, options: Options) -> Report:
    """Resolve a marked object and run it; LossguardError only if it cannot be checked."""
    __tracebackhide__ = True
    # Importing Keras takes seconds and reseeds Python's random module: do it before the time
    # limit and the state snapshot start, so neither is charged to the first target.
    align.reference()
    with deadline(options.timeout, describe(obj)):  # building a class can hang too
        target = resolve(obj, options)
        return models.run(target, options) if target.kind == "model" else run(target, options)
