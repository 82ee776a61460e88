"""The one judging core that losses and models share: the verdict rule, the canonical-error
finding, the memo of runs, and building the Report (with each failure's fix).

The judge never imports the kinds: a kind hands itself in as an `Advisor`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Hashable
from typing import ClassVar, Generic, Protocol, TypeVar

from pytest_lossguard.findings import Finding, Fix, Location, Report, Shape, Verdict
from pytest_lossguard.options import Options

K = TypeVar("K")
V = TypeVar("V")


class Advisor(Protocol):
    """A kind of target, as far as the judge needs it: the name, and the fix to advise."""

    name: str
    label: ClassVar[str]
    source: str

    def advise(self, report: Report, finding: Finding) -> Fix:
        """What to change so that `finding` (a failing one) passes."""


class Memo(Generic[K, V]):
    """Runs of the target, each computed once per distinct layout (its key)."""

    def __init__(self, compute: Callable[[K], V], key: Callable[[K], Hashable]) -> None:
        self.compute = compute
        self.key = key
        self.cache: dict[Hashable, V] = {}

    def __call__(self, item: K) -> V:
        key = self.key(item)
        if key not in self.cache:
            self.cache[key] = self.compute(item)
        return self.cache[key]


def verdict(matched: bool, larger: bool, where: Location | None) -> Verdict:
    """Safe when a reference matched; otherwise a broadcast when the result is larger than the
    reference or the trace found an op that grew, else a mismatch."""
    if matched:
        return Verdict.SAFE
    return Verdict.BROADCAST if larger or (where is not None and where.grew) else Verdict.MISMATCH


def canonical_error(y_true: Shape, y_pred: Shape, message: str, *,
                    sample_weight: Shape | None = None,
                    exception: BaseException | None = None, fix: Fix | None = None) -> Finding:
    """The finding that ends a check: the target fails on its own canonical input. A `fix`
    given here stands; otherwise the kind advises one."""
    return Finding("canonical", Verdict.ERROR, y_true, y_pred, sample_weight=sample_weight,
                   message=message, exception=exception, fix=fix)


@dataclasses.dataclass(frozen=True)
class Header:
    """What a report says about the target besides its findings."""

    backend: str
    feeds: str
    alignment: str
    true_shape: Shape
    pred_shape: Shape


def report(kind: Advisor, header: Header, findings: list[Finding], options: Options,
           started: float, restored: list[str]) -> Report:
    """The Report of one check, each failing finding carrying its fix: the kind's, unless the
    finding came with its own."""
    built = Report(
        kind.name, kind.label, kind.source, header.backend, header.alignment, header.true_shape,
        header.pred_shape, options.strict, tuple(findings), time.perf_counter() - started,
        tuple(restored), options.seed, header.feeds,
    )
    advised = tuple(dataclasses.replace(f, fix=kind.advise(built, f))
                    if built.fails(f) and f.fix is None else f for f in findings)
    return dataclasses.replace(built, findings=advised)
