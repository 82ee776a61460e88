"""Findings, the per-target Report, and how both read: the failure block and JSON."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import re
import textwrap
from typing import Any

from pytest_lossguard.options import Shape

VERDICTS = ("safe", "broadcast", "mismatch", "raises", "error")
PATH_STATUSES = ("affected", "raises", "protected", "n/a")
# Lines of a failure block stay within this many columns where they can.
_WIDTH = 100
_HEADLINES = {
    "broadcast": "broadcasts labels against predictions",
    "mismatch": "gives a different value when label and prediction ranks differ",
    "error": "cannot be evaluated on canonical input",
    "raises": "raises on shapes that Keras's loss container aligns (strict)",
}
# TensorFlow's device preamble and trailing "name:" in op errors, which bury the message.
_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*name:\s*$", re.MULTILINE)
_NAMESPACES = {"tensorflow": "tf", "tf_keras": "tf", "keras": "keras.ops", "numpy": "np"}


@dataclasses.dataclass(frozen=True)
class Finding:
    """The verdict of one probe, with everything needed to explain it."""

    probe: str
    verdict: str
    y_true: Shape
    y_pred: Shape
    sample_weight: Shape | None = None
    result_shape: Shape | None = None
    value: float | None = None
    reference: str | None = None
    reference_shape: Shape | None = None
    reference_value: float | None = None
    message: str = ""
    edits: tuple[str, ...] = ()
    location: str = ""
    source: str = ""
    operation: str = ""
    chain: tuple[str, ...] = ()
    paths: tuple[tuple[str, str], ...] = ()
    method: str = ""
    update_difference: float | None = None
    update_size: float | None = None
    exception: BaseException | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def failed(self) -> bool:
        """Broadcast, mismatch and error always fail; raises fails only under strict."""
        return self.verdict in ("broadcast", "mismatch", "error")

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (the exception object stays behind)."""
        data = dataclasses.asdict(self)
        del data["exception"]
        data["paths"] = dict(self.paths)
        return data


@dataclasses.dataclass(frozen=True)
class Report:
    """Every finding for one target; `ok` is the pass/fail answer."""

    target: str
    kind: str
    source: str
    backend: str
    alignment: str
    true_shape: Shape
    pred_shape: Shape
    strict: bool
    findings: tuple[Finding, ...]
    seconds: float
    restored: tuple[str, ...] = ()
    seed: int = 0

    @property
    def failures(self) -> tuple[Finding, ...]:
        """The findings that make this report fail."""
        return tuple(f for f in self.findings
                     if f.failed or (self.strict and f.verdict == "raises"))

    @property
    def ok(self) -> bool:
        """True when no probe failed."""
        return not self.failures

    @property
    def error(self) -> Finding | None:
        """The error finding, when the target could not be evaluated at all."""
        return next((f for f in self.findings if f.verdict == "error"), None)

    def counts(self) -> dict[str, int]:
        """Number of findings per verdict, every verdict present."""
        return {v: sum(f.verdict == v for f in self.findings) for v in VERDICTS}

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view of the whole report."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["findings"] = [{**f.as_dict(), "fix": fix_hint(self, f) if f in self.failures
                             else None} for f in self.findings]
        data["ok"] = self.ok
        data["counts"] = self.counts()
        return data

    def __str__(self) -> str:
        return render(self)


SCHEMA = 1
# Distributions whose versions a JSON report records, read without importing them.
_DISTRIBUTIONS = ("pytest-lossguard", "pytest", "numpy", "keras", "tensorflow", "tf-keras")


def entry(name: str, report: Report | None, error: str = "") -> dict[str, Any]:
    """One target's line in the summary table and the JSON report (xdist-safe: plain data)."""
    counts = report.counts() if report else {v: int(v == "error") for v in VERDICTS}
    return {"nodeid": name, "ok": bool(report and report.ok), "message": error,
            "seconds": report.seconds if report else 0.0, **counts,
            "report": report.as_dict() if report else None}


def document(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON report: environment, every target's entry, and totals."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _DISTRIBUTIONS:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    rows = sorted(entries, key=lambda e: e["nodeid"])
    totals = {key: sum(e[key] for e in rows) for key in (*VERDICTS, "seconds")}
    return {"schema": SCHEMA, "versions": versions, "targets": rows,
            "totals": {"targets": len(rows), "failed": sum(not e["ok"] for e in rows), **totals}}


def summary_table(entries: list[dict[str, Any]], verbose: bool) -> list[str]:
    """The summary table: one row per target (failing ones only unless verbose), then totals.

    The counts come first and the target last, so a long node id never pushes the numbers
    off a narrow terminal.
    """
    shown = [e for e in entries if verbose or not e["ok"] or e["raises"]]
    lines = ["probes  " + "  ".join(VERDICTS) + "  seconds  target"]
    totals = {key: 0.0 for key in (*VERDICTS, "seconds")}
    for row in sorted(entries, key=lambda e: e["nodeid"]):
        for key in totals:
            totals[key] += row[key]
        if row in shown:
            lines.append(_table_row(row["nodeid"], row))
    lines.append(_table_row(f"{len(entries)} target(s)", totals))
    if len(shown) < len(entries):
        lines.append(f"({len(entries) - len(shown)} clean target(s) not shown; -v shows all)")
    return lines


def _table_row(label: str, row: dict[str, Any]) -> str:
    probes = int(sum(row[v] for v in VERDICTS))
    counts = "  ".join(f"{int(row[v]):>{len(v)}}" for v in VERDICTS)
    return f"{probes:>6}  {counts}  {row['seconds']:>7.2f}  {label}"


def display_path(path: str) -> str:
    """A path relative to the working directory where that is possible, as tracebacks show it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def number(value: float | None) -> str:
    """Values rounded for reading: 4 significant digits."""
    if value is None:
        return "-"
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"


def one_line(exc: BaseException) -> str:
    """The exception's first line, without TensorFlow's device preamble, at most 160 chars."""
    text = _TF_NOISE.sub("", str(exc)).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _shape(shape: Shape | None) -> str:
    return "?" if shape is None else str(tuple(shape))


def _shapes_line(finding: Finding) -> str:
    text = f"y_true {_shape(finding.y_true)}  y_pred {_shape(finding.y_pred)}"
    if finding.sample_weight is not None:
        text += f"  sample_weight {_shape(finding.sample_weight)}"
    return text


def _block(finding: Finding) -> list[str]:
    lines = [f"  probe       {finding.probe:<26} {_shapes_line(finding)}"]
    if finding.verdict in ("raises", "error"):
        lines.extend(textwrap.wrap(f"  raised      {finding.message}", _WIDTH,
                                   subsequent_indent=" " * 14, break_long_words=False))
        return lines
    if finding.method:
        lines.extend(_step_lines(finding))
    else:
        result = f"{_shape(finding.result_shape)} -> {number(finding.value)}"
        reference = (f"reference ({finding.reference}) {_shape(finding.reference_shape)}"
                     f" -> {number(finding.reference_value)}")
        lines.append(f"  result      {result:<27}{reference}")
    label = "broadcast" if finding.verdict == "broadcast" else "rank mix "
    if finding.operation and not finding.location:
        lines.append(f"  {label}   not in your code: {finding.operation}, in a library it calls")
    elif finding.operation:
        where = f"  {label}   {finding.location}   {finding.source}".rstrip()
        if len(where) > _WIDTH:
            where = f"  {label}   {finding.location}\n              {finding.source}"
        lines.extend([where, f"              {finding.operation}"])
        if len(finding.chain) > 1:
            links = [os.path.basename(link) for link in finding.chain]
            lines.append(f"  via         {' -> '.join(links)}")
    elif finding.failed:
        lines.append("  broadcast   not located: no single op grew or mixed ranks")
    if finding.paths:
        lines.append(f"  paths       {describe_paths(finding.paths)}")
    return lines


def describe_paths(paths: tuple[tuple[str, str], ...]) -> str:
    """e.g. affected: direct call, compile(metrics=...); protected: compile(loss=...)."""
    groups = [(status, [path for path, s in paths if s == status]) for status in PATH_STATUSES]
    return "; ".join(f"{status}: {', '.join(names)}" for status, names in groups if names)


def _step_lines(finding: Finding) -> list[str]:
    """A model probe: the method, what it reported against the reference, the weight update."""
    quantity = finding.method[len("metric "):] if finding.method.startswith("metric") else "loss"
    lines = [f"  method      {finding.method}: {finding.message}"]
    result = f"{quantity} {number(finding.value)}"
    lines.append(f"  result      {result:<27}reference ({finding.reference}) {quantity} "
                 f"{number(finding.reference_value)}")
    if finding.update_difference is not None:
        lines.append(f"  update      largest weight-update difference "
                     f"{number(finding.update_difference)} (largest update "
                     f"{number(finding.update_size)}) after one step")
    return lines


def fix_code(report: Report, finding: Finding) -> str:
    """The statement that aligns the probe's odd side, to put first in the loss's body.

    With equal canonical shapes, labels reshaped to the prediction's shape fix every probe
    (Keras's own idiom); otherwise the side the probe edited goes back to its own shape.
    """
    ns = _NAMESPACES.get(report.backend, "keras.ops")
    if report.true_shape == report.pred_shape:
        return f"y_true = {ns}.reshape(y_true, {ns}.shape(y_pred))"
    side = "y_pred" if finding.edits == ("y_pred",) else "y_true"
    own = report.pred_shape if side == "y_pred" else report.true_shape
    return f"{side} = {ns}.reshape({side}, {(-1, *own)})"


def fix_hint(report: Report, finding: Finding) -> str:
    """What to change, specific to the kind of target, its library and the probe."""
    if finding.verdict == "error" and report.kind == "model":
        return ("make the model's steps work on labels shaped like its output, or set "
                "input_shape= / compile= / init= / domain= to what the model expects")
    if finding.verdict == "error":
        return ("make the target work on canonical input, or describe its intended shapes with "
                "output_shape / y_true_shape / y_pred_shape and its values with domain=")
    ns = _NAMESPACES.get(report.backend, "keras.ops")
    if finding.sample_weight is not None:
        return (f"reshape sample_weight to the per-sample loss before weighting, e.g. "
                f"sample_weight = {ns}.reshape(sample_weight, {ns}.shape(values))")
    align = fix_code(report, finding)
    if report.kind == "model":
        return _model_hint(finding, align, ns)
    if report.kind == "loss":
        return (f"align ranks inside call(), e.g. {align}: a Loss subclass that overrides call "
                "gets no alignment, even in compile(); or wrap a plain function in "
                "keras.losses.LossFunctionWrapper, which aligns")
    if report.kind == "metric":
        return (f"align ranks in update_state before combining, e.g. {align}: "
                "compile(metrics=...) hands a Metric the labels unaligned")
    hint = f"align ranks before combining, e.g. {align}"
    paths = dict(finding.paths)
    if paths.get("compile(loss=...)") == "protected":
        hint += (", or let Keras align them: compile(loss=fn), and self.compute_loss(...) in a "
                 "custom train_step")
    if paths.get("compile(metrics=...)") == "affected":
        hint += "; used in compile(metrics=...) it gets no alignment, so align inside it"
    return hint


def _model_hint(finding: Finding, align: str, ns: str) -> str:
    if finding.method.startswith("metric"):
        return (f"align ranks inside the {finding.method}, e.g. {align}: compile(metrics=...) "
                "does not align custom metric functions in Keras 3")
    if finding.method == "compiled loss":
        return (f"align ranks inside the compiled Loss's call(), e.g. {align}: a Loss subclass "
                "that overrides call gets no alignment, even in compile()")
    return (f"in {finding.method}, let Keras align the labels: "
            "loss = self.compute_loss(x=x, y=y, y_pred=y_pred), or align them to the prediction "
            f"before the loss, e.g. y = {ns}.reshape(y, {ns}.shape(y_pred))")


def render(report: Report) -> str:
    """The failure block of design.md section 6, or a one-line pass summary."""
    failures = report.failures
    raises = [f for f in report.findings if f.verdict == "raises" and f not in failures]
    if not failures:
        line = f"lossguard: {report.target} is safe under {len(report.findings)} probe(s)"
        notes = [line for f in raises for line in _note(f)]
        return "\n".join([line, *notes, *_restored(report)])
    worst = next((v for v in VERDICTS[1:] if any(f.verdict == v for f in failures)), "error")
    lines = [f"lossguard: {report.target} {_HEADLINES[worst]}"]
    where = report.source or "?"
    feeds = report.backend if report.kind == "model" else f"{report.backend} tensors"
    lines.append(f"  target      {where}  ({report.kind}, {feeds}, reference: {report.alignment})")
    for finding in failures:
        lines.extend(_block(finding))
    lines.extend(line for f in raises for line in _note(f))
    lines.extend(_restored(report))
    # One fix per distinct change to make (the statement, where it goes): probes that edit
    # different sides, or the weights, need different ones; the first finding words each.
    changes: dict[tuple[str, bool, str], Finding] = {}
    for finding in failures:
        changes.setdefault((finding.method, finding.sample_weight is None,
                            fix_code(report, finding)), finding)
    for finding in changes.values():
        fix = textwrap.wrap(fix_hint(report, finding), _WIDTH - 14)
        lines.append(f"  fix         {fix[0]}")
        lines.extend(f"              {rest}" for rest in fix[1:])
    return "\n".join(lines)


def _note(finding: Finding) -> list[str]:
    text = f"  note        {finding.probe} raises (loud, not silent): {finding.message}"
    return textwrap.wrap(text, _WIDTH, subsequent_indent=" " * 14, break_long_words=False)


def _restored(report: Report) -> list[str]:
    if not report.restored:
        return []
    return [f"  restored    the target changed {', '.join(report.restored)}; lossguard put it back"]
