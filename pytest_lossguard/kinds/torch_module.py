"""torch `nn.Module` losses: `nn.MSELoss`, `nn.HuberLoss`, ... and custom modules.

torch puts the prediction first, `forward(input, target)`: built-in losses (subclasses of
`torch.nn.modules.loss._Loss`) always do, a custom module as its parameter names say. A module
with a `reduction` is called through a twin with `reduction="none"`, so the raw per-element
shape shows, as Keras Loss objects are. Keras's containers do not take torch modules, so the
direct call is the one call path.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pytest_lossguard.conventions import PREDICTION_FIRST, pair
from pytest_lossguard.deadline import shielded
from pytest_lossguard.findings import Finding, Report
from pytest_lossguard.introspect import signature, source
from pytest_lossguard.kinds.called import Called, unreduced
from pytest_lossguard.options import Options


def _builtin_loss(cls: type) -> bool:
    return any(k.__name__ == "_Loss" and k.__module__ == "torch.nn.modules.loss"
               for k in cls.__mro__)


def _forward_parameters(cls: type) -> list[str]:
    """The parameter names of `cls.forward` after `self`."""
    sig = signature(getattr(cls, "forward", None))
    return list(sig.parameters)[1:] if sig is not None else []


class TorchModule(Called):
    """A torch.nn.Module called as a loss; a class is built by `Factory` first."""

    label: ClassVar[str] = "torch module"
    base = "Module"
    containers = ()
    judged_by_keras = False

    def __init__(self, module: Any, name: str) -> None:
        cls = type(module)
        super().__init__(module, name, source(cls), "torch")
        parameters = _forward_parameters(cls)
        self.takes_weights = "sample_weight" in parameters
        self.order(parameters, _builtin_loss(cls) or tuple(parameters[:2]) in PREDICTION_FIRST)

    def check(self, options: Options) -> Report:
        """Every probe; parameters and buffers the module's forward changes (running
        statistics) are put back, as a model's weights are."""
        import torch

        reduces = isinstance(getattr(self.obj, "reduction", None), str)
        self.callee = unreduced(self.obj) if reduces else self.obj
        state = [*self.obj.parameters(), *self.obj.buffers()]
        saved = [tensor.detach().clone() for tensor in state]
        try:
            return super().check(options)
        finally:
            with shielded(), torch.no_grad():  # the time limit waits
                for tensor, value in zip(state, saved, strict=True):
                    tensor.copy_(value)

    def hint(self, align: str, finding: Finding) -> str:
        return (f"align ranks before the loss, e.g. {align}: torch broadcasts the two silently "
                "(it warns for only four built-in losses)")

    def reason(self, name: str, metrics: set[str]) -> str | None:
        return self.class_reason(type(self.obj))

    @staticmethod
    def class_reason(cls: type) -> str | None:
        """Why discovery picks a torch module: a built-in loss or a subclass of one, or a
        module whose forward takes a prediction/target pair (a network's forward(x) does not)."""
        if _builtin_loss(cls):
            return "a torch loss module"
        found = pair(_forward_parameters(cls))
        return f"a torch module with forward({found[0]}, {found[1]})" if found else None
