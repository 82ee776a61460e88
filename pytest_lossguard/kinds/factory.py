"""Classes and zero-argument factories: built first (a class with `init=`), then checked as
the kind of what they return, under the factory's name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pytest_lossguard.errors import LossguardError
from pytest_lossguard.findings import Finding, Fix, Report
from pytest_lossguard.kinds import TargetKind
from pytest_lossguard.options import Options


class Factory:
    """A Loss, Metric or Model class (`product` is its kind), or a factory (`product` None)."""

    label: ClassVar[str] = "factory"

    def __init__(self, obj: Any, name: str, product: Any | None) -> None:
        self.obj = obj
        self.name = name
        self.source = ""
        self.product = product
        self.is_model: bool | None = None if product is None else product.is_model
        self.built: Any = None

    def _build(self, options: Options) -> Any:
        return self.obj(**options.init) if self.product is not None else self.obj()

    def check(self, options: Options) -> Report:
        from pytest_lossguard.kinds import classify

        def build() -> Any:
            return self._build(options)

        try:
            built = build()
        except Exception as exc:
            raise LossguardError(
                f"cannot build {self.name}: {type(exc).__name__}: {exc}; pass constructor "
                "arguments with init={...} or mark a zero-argument factory that builds it"
            ) from exc
        kind = classify(built)
        if isinstance(kind, Factory):
            raise LossguardError(f"factory {self.name} returned another factory; return the "
                                 "target itself")
        self.built = kind.from_factory(build)
        self.built.name = self.name
        return self.built.check(options)

    def advise(self, report: Report, finding: Finding) -> Fix:
        """The advice of the kind it built (its report is that kind's)."""
        return self.built.advise(report, finding)  # type: ignore[no-any-return]

    def reason(self, name: str, metrics: set[str]) -> str | None:
        return None if self.product is None else self.product.class_reason(self.obj)

    def from_factory(self, build: Callable[[], Any]) -> TargetKind:
        return self
