"""Target kinds as classes: the one place where kinds are told apart.

`classify(obj)` looks at an object without building it and returns the kind that knows how to
check it. Every kind implements `TargetKind`; the rest of lossguard only calls it.

Adding a kind is one class in a module of this package, implementing `BuiltKind`:
- `check(options)` builds what needs building and runs every probe, returning a Report
  (callable kinds hand themselves to `calls.check`; models run their steps in `model.py`);
- `advise(report, finding)` words the fix for a failing finding of this kind;
- `reason(name, metrics)` says why discovery picks an unmarked object of this kind, or None;
- `from_factory(build)` is the kind as built by a factory or class (a Metric uses `build`
  for its fresh twins); `is_model` tells `check_model` from `check_loss`.
Then add it to the order in `classify` below.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from pytest_lossguard.errors import LossguardError
from pytest_lossguard.findings import Finding, Fix, Report
from pytest_lossguard.introspect import binds, describe, keras_base, signature, torch_base
from pytest_lossguard.options import Options

ACCEPTED = (
    "a loss or metric function fn(y_true, y_pred[, sample_weight]), a keras.losses.Loss, "
    "keras.metrics.Metric or keras.Model class or instance, a torch.nn.Module loss, a "
    "LightningModule, or a "
    "zero-argument factory returning one"
)


class TargetKind(Protocol):
    """What every kind of target does: check itself, and say why discovery picks it."""

    name: str

    @property
    def is_model(self) -> bool | None:
        """True for models, False for losses and metrics, None while a factory is unbuilt."""

    def check(self, options: Options) -> Report:
        """Build the target if needed and run every applicable probe."""

    def needs_keras(self, options: Options) -> bool:
        """Whether the target is judged against the installed Keras, which is then imported
        before the time limit starts; torch, JAX and NumPy targets never import it."""

    def reason(self, name: str, metrics: set[str]) -> str | None:
        """Why discovery picks this unmarked object (`metrics`: names compile() lists)."""


class BuiltKind(TargetKind, Protocol):
    """A kind whose object is built: it reports, advises fixes and can come from a factory."""

    label: ClassVar[str]
    source: str

    def advise(self, report: Report, finding: Finding) -> Fix:
        """What to change so that a failing finding passes."""

    def from_factory(self, build: Callable[[], Any]) -> BuiltKind:
        """This kind as built by `build`, a factory or class the user marked."""


def classify(obj: Any, name: str = "") -> TargetKind:
    """The kind of `obj`, without building anything; LossguardError if it has none. `name` is
    what reports call it (`describe(obj)` by default).

    Cheap enough for collection time.
    """
    __tracebackhide__ = True
    from pytest_lossguard.kinds.factory import Factory
    from pytest_lossguard.kinds.function import Function
    from pytest_lossguard.kinds.lightning import LIGHTNING_ROOTS, LightningModule
    from pytest_lossguard.kinds.loss import LossObject
    from pytest_lossguard.kinds.metric import MetricObject
    from pytest_lossguard.kinds.model import ModelObject
    from pytest_lossguard.kinds.torch_module import TorchModule

    objects = (LossObject, MetricObject, ModelObject)
    name = name or describe(obj)
    if isinstance(obj, type):
        for kind in objects:
            if keras_base(obj, kind.base):
                return Factory(obj, name, kind)
        if torch_base(obj, LightningModule.base, LIGHTNING_ROOTS):
            return Factory(obj, name, LightningModule)
        if torch_base(obj, TorchModule.base):
            return Factory(obj, name, TorchModule)
        raise LossguardError(
            f"class {name} is not a keras Loss, Metric or Model; lossguard accepts {ACCEPTED}"
        )
    for kind in objects:
        if keras_base(type(obj), kind.base):
            return kind(obj, name)
    if torch_base(type(obj), LightningModule.base, LIGHTNING_ROOTS):
        return LightningModule(obj, name)
    if torch_base(type(obj), TorchModule.base):
        return TorchModule(obj, name)
    if not callable(obj):
        plain = obj is None or isinstance(obj, (bool, int, float, complex, str, bytes))
        value = reprlib.repr(obj) if plain else name  # None, 42, 'mse'; no object's address
        raise LossguardError(
            f"{value} ({type(obj).__name__}) is not callable; lossguard accepts {ACCEPTED}"
        )
    sig = signature(obj)
    if sig is None:
        raise LossguardError(f"{name} has no inspectable signature; lossguard accepts {ACCEPTED}")
    if binds(sig, None, None):
        return Function(obj, name)
    if binds(sig):
        return Factory(obj, name, None)
    raise LossguardError(
        f"{name}{sig} cannot be called as fn(y_true, y_pred); lossguard accepts {ACCEPTED}"
    )
