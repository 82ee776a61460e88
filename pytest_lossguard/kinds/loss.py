"""Keras Loss objects (Keras 3 and tf_keras), called unreduced so the per-sample shape shows."""

from __future__ import annotations

from typing import Any, ClassVar

from pytest_lossguard.findings import Finding, Report
from pytest_lossguard.introspect import class_backend, source, user_defines
from pytest_lossguard.kinds.called import Called, unreduced
from pytest_lossguard.options import Options


class LossObject(Called):
    """A keras.losses.Loss instance; a class is built by `Factory` first."""

    label: ClassVar[str] = "loss"
    base = "Loss"

    def __init__(self, loss: Any, name: str) -> None:
        cls = type(loss)
        super().__init__(loss, name, source(cls), class_backend(cls))
        # A Loss that overrides __call__ is called as it is, weights and all; any other gets
        # a shallow twin that skips the reduction, so the raw per-sample shape stays visible.
        self.takes_weights = user_defines(cls, "__call__")

    def check(self, options: Options) -> Report:
        self.callee = self.obj if self.takes_weights else unreduced(self.obj)
        return super().check(options)

    def hint(self, align: str, finding: Finding) -> str:
        return (f"align ranks inside call(), e.g. {align}: a Loss subclass that overrides call "
                "gets no alignment, even in compile(); or wrap a plain function in "
                "keras.losses.LossFunctionWrapper, which aligns")

    def reason(self, name: str, metrics: set[str]) -> str | None:
        return "a keras Loss instance"

    @staticmethod
    def class_reason(cls: type) -> str | None:
        """Why discovery picks a Loss subclass."""
        return "a keras Loss subclass"
