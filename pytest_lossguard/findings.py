"""The findings data model: verdicts, call-path statuses, locations, Finding and Report.

Plain data, with no rendering: `str(report)` reaches the text renderer through a late import,
so the data model never needs the renderer to exist.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

Shape = tuple[int, ...]


class Word(str, enum.Enum):
    """An enum whose members read (and compare, and serialise) as their word."""

    def __str__(self) -> str:
        return str(self.value)


class Verdict(Word):
    """The verdict of one probe (design.md section 1)."""

    SAFE = "safe"
    BROADCAST = "broadcast"
    MISMATCH = "mismatch"
    RAISES = "raises"
    ERROR = "error"

    @property
    def failed(self) -> bool:
        """Broadcast, mismatch and error always fail; raises fails only under strict."""
        return self in (Verdict.BROADCAST, Verdict.MISMATCH, Verdict.ERROR)


VERDICTS = tuple(v.value for v in Verdict)


class PathStatus(Word):
    """How a finding bites on one call path."""

    AFFECTED = "affected"
    RAISES = "raises"
    PROTECTED = "protected"
    NA = "n/a"

    @classmethod
    def of(cls, verdict: Verdict) -> PathStatus:
        """The status of the path a probe with this verdict ran on."""
        if verdict in (Verdict.BROADCAST, Verdict.MISMATCH):
            return cls.AFFECTED
        return cls.RAISES if verdict is Verdict.RAISES else cls.PROTECTED


Paths = tuple[tuple[str, PathStatus], ...]


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a broadcast happened: the user's file:line and source, the op, and its callers.

    `internals` is the library function the op ran inside (`optax/losses/_regression.py:99
    in huber_loss`), empty when the user's line wrote the op itself; `where` is empty when no
    user frame led there (a library function marked as the target). `op`, `inputs` and
    `output` are the op's name and shapes, which advice reads operands by. `layout` names the
    reference layout the op grew in when the probe's own layout did not grow ("canonical":
    the intended shapes are the broken ones); empty for the probe's growth.
    """

    where: str
    source: str
    operation: str
    chain: tuple[str, ...] = ()
    grew: bool = True
    internals: str = ""
    op: str = ""
    inputs: tuple[Shape, ...] = ()
    output: Shape = ()
    layout: str = ""


@dataclasses.dataclass(frozen=True)
class Method:
    """The model code a finding comes from: a step, compute_loss, the compiled loss, a metric.

    `step` is, for a metric the user's own code computes (a log of its train_step, a
    LightningModule's `self.log`), the method that computes it; empty for a metric of
    compile(metrics=...), which Keras's compute_metrics computes.
    """

    name: str
    metric: bool = False
    step: str = ""

    def __str__(self) -> str:
        return f"metric '{self.name}'" if self.metric else self.name

    @property
    def quantity(self) -> str:
        """What the step reported that differs: the metric's name, else the loss."""
        return self.name if self.metric else "loss"


@dataclasses.dataclass(frozen=True)
class Fix:
    """What to change for a failing finding: the advice, and the change it makes (the
    statement and where it goes), so findings that need the same change show one fix."""

    text: str
    change: str


@dataclasses.dataclass(frozen=True)
class Finding:
    """The verdict of one probe, with everything needed to explain it."""

    probe: str
    verdict: Verdict
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
    location: Location | None = None
    paths: Paths = ()
    method: Method | None = None
    update_difference: float | None = None
    update_size: float | None = None
    # The model output the probe's labels were fed to, named when a model has several.
    output: str = ""
    fix: Fix | None = None
    # What the target warned on this probe (torch's "Using a target size ..."): shown, never
    # part of the verdict.
    notes: tuple[str, ...] = ()
    exception: BaseException | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def failed(self) -> bool:
        """Broadcast, mismatch and error always fail; raises fails only under strict."""
        return self.verdict.failed

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (the exception object stays behind)."""
        where = self.location or Location("", "", "")
        return {
            "probe": self.probe, "verdict": self.verdict.value, "y_true": self.y_true,
            "y_pred": self.y_pred, "sample_weight": self.sample_weight,
            "result_shape": self.result_shape, "value": self.value, "reference": self.reference,
            "reference_shape": self.reference_shape, "reference_value": self.reference_value,
            "message": self.message, "edits": self.edits, "location": where.where,
            "source": where.source, "operation": where.operation, "chain": where.chain,
            "internals": where.internals, "layout": where.layout,
            "paths": {path: status.value for path, status in self.paths},
            "method": str(self.method or ""), "update_difference": self.update_difference,
            "update_size": self.update_size, "output": self.output,
            "fix": self.fix.text if self.fix else None, "notes": self.notes,
        }


@dataclasses.dataclass(frozen=True)
class Report:
    """Every finding for one target; `ok` is the pass/fail answer.

    `feeds` says what the target was fed, for the header line; it is not part of the JSON.
    """

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
    feeds: str = dataclasses.field(default="", compare=False)

    def fails(self, finding: Finding) -> bool:
        """Whether `finding` makes this report fail."""
        return finding.failed or (self.strict and finding.verdict is Verdict.RAISES)

    @property
    def failures(self) -> tuple[Finding, ...]:
        """The findings that make this report fail."""
        return tuple(f for f in self.findings if self.fails(f))

    @property
    def notes(self) -> tuple[Finding, ...]:
        """Probes that raised without failing the report: loud, not silent."""
        return tuple(f for f in self.findings
                     if f.verdict is Verdict.RAISES and not self.fails(f))

    @property
    def ok(self) -> bool:
        """True when no probe failed."""
        return not self.failures

    @property
    def error(self) -> Finding | None:
        """The error finding, when the target could not be evaluated at all."""
        return next((f for f in self.findings if f.verdict is Verdict.ERROR), None)

    def counts(self) -> dict[str, int]:
        """Number of findings per verdict, every verdict present."""
        return {v.value: sum(f.verdict is v for f in self.findings) for v in Verdict}

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view of the whole report."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "feeds"}
        data["findings"] = [f.as_dict() for f in self.findings]
        data["ok"] = self.ok
        data["counts"] = self.counts()
        return data

    def __str__(self) -> str:
        from pytest_lossguard.render import render

        return render(self)
