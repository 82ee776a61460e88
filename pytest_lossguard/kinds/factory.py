"""Classes and zero-argument factories: built first (a class with `init=`), then checked as
the kind of what they return, under the factory's name."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from pytest_lossguard.errors import LossguardError
from pytest_lossguard.findings import Report
from pytest_lossguard.introspect import from_keras, source
from pytest_lossguard.kinds import BuiltKind
from pytest_lossguard.options import Options
from pytest_lossguard.state import PYTHON_RANDOM, TORCH_RANDOM, preserved


class Product(Protocol):
    """A kind as a class: what a marked Loss, Metric, Model or torch Module class will be."""

    is_model: bool | None
    judged_by_keras: bool

    @staticmethod
    def class_reason(cls: type) -> str | None:
        """Why discovery picks such a class."""


class Factory:
    """A class whose kind is `product`, or a zero-argument factory (`product` None)."""

    def __init__(self, obj: Any, name: str, product: Product | None) -> None:
        self.obj = obj
        self.name = name
        self.product = product
        self.is_model: bool | None = None if product is None else product.is_model

    def check(self, options: Options) -> Report:
        """Build, then check what was built; state the constructor changed is put back and
        reported like the target's own."""
        from pytest_lossguard.kinds import classify

        def build() -> Any:
            return self.obj(**options.init) if self.product is not None else self.obj()

        with preserved() as changed:
            try:
                built = build()
            except Exception as exc:
                raise LossguardError(
                    f"cannot build {self.name}: {type(exc).__name__}: {exc}; pass constructor "
                    "arguments with init={...} or mark a zero-argument factory that builds it"
                ) from exc
        try:
            kind = classify(built)
        except LossguardError as exc:
            raise LossguardError(f"factory {self.name} returned what lossguard cannot check: "
                                 f"{exc}") from None
        if isinstance(kind, Factory):
            raise LossguardError(f"factory {self.name} returned another factory; return the "
                                 "target itself")
        target: BuiltKind = kind  # type: ignore[assignment]  # every kind but Factory is built
        target = target.from_factory(build)
        target.name = self.name
        if from_keras(type(built)):  # a functional model, a built-in loss: the factory is theirs
            target.source = source(self.obj)
        if target.is_model:  # its layers' initialisers drew seeds: put back, not blamed
            changed[:] = [name for name in changed if name != PYTHON_RANDOM]
        report = target.check(options)
        # torch modules draw their initial weights from torch's global generator: put back,
        # but not blamed on the constructor.
        changed[:] = [name for name in changed if name != TORCH_RANDOM]
        restored = tuple(dict.fromkeys([*changed, *report.restored]))
        return dataclasses.replace(report, restored=restored) if changed else report

    def needs_keras(self, options: Options) -> bool:
        """A class says; what a plain factory returns is known only once it is built."""
        return True if self.product is None else self.product.judged_by_keras

    def reason(self, name: str, metrics: set[str]) -> str | None:
        return None if self.product is None else self.product.class_reason(self.obj)
