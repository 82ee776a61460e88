"""PyTorch Lightning modules: `training_step` / `validation_step`, probed like a Keras model.

A `training_step` that computes its loss by hand, `torch.mean((y - self(x)) ** 2)`, broadcasts
labels (B,) against a (B, 1) prediction as silently as a Keras `train_step` does. Each probe
runs the step, as the Trainer would call it, with the probe labels and with the labels Keras's
rule aligns them to, from identical weights, and compares the returned loss, every value the
step logs and the gradients of the loss, shown as the weight update of one plain SGD step
(learning rate 1), so that the module's own optimizer does not matter. No Trainer is
attached: `self.log` is recorded, not sent. Keras is never imported: the reference is the
NumPy port of its rule.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from pytest_lossguard import align, backends, judge
from pytest_lossguard.advice import advised, fix_code, step_labels, weights_hint
from pytest_lossguard.conventions import LIGHTNING_STEPS
from pytest_lossguard.deadline import shielded
from pytest_lossguard.errors import LossguardError, OptionNeeded, stage
from pytest_lossguard.findings import Finding, Fix, Method, Report, Verdict
from pytest_lossguard.introspect import source, user_defines
from pytest_lossguard.kinds import BuiltKind
from pytest_lossguard.kinds.model import Harness, Step, judge_steps, redraw, step_logs
from pytest_lossguard.kinds.model_data import (
    Batch,
    Outputs,
    describe_inputs,
    flatten,
    leaves,
    pack,
)
from pytest_lossguard.options import InputShape, Options
from pytest_lossguard.state import notes_of, preserved, warnings_recorded
from pytest_lossguard.text import one_line

LIGHTNING_ROOTS = ("lightning", "pytorch_lightning")
LIGHTNING_ERROR = ("make the module's steps work on labels shaped like its output, or set "
                   "input_shape= / domain= / batch= to what the module expects")
# The call path each step stands for.
_PATHS = {"training_step": "trainer.fit()", "validation_step": "trainer.validate()"}


def _input_shapes(module: Any, options: Options, name: str) -> InputShape:
    """Per-sample input shapes: the option, else the module's `example_input_array`."""
    if options.input_shape is not None:
        return options.input_shape
    example: Any = getattr(module, "example_input_array", None)
    if hasattr(example, "shape") and len(example.shape) > 0:
        return tuple(example.shape)[1:]
    if isinstance(example, Mapping) and all(len(getattr(a, "shape", ())) > 0
                                            for a in example.values()):
        return {key: tuple(a.shape)[1:] for key, a in example.items()}
    arrays: list[Any] = list(example or ())
    if arrays and all(len(getattr(a, "shape", ())) > 0 for a in arrays):
        return tuple(tuple(a.shape)[1:] for a in arrays)
    raise OptionNeeded(f"cannot tell the input shape of LightningModule {name} (it sets no "
                       "example_input_array)", "input_shape")


def _returned_loss(result: Any, method: str) -> Any:
    """The loss a step returned: a tensor, or a dict's "loss" (Lightning's two forms), or None
    (a step that skips the batch); anything else is the user's error, said as Lightning
    would take it."""
    loss = result.get("loss") if isinstance(result, Mapping) else result
    if loss is not None and not hasattr(loss, "requires_grad"):
        raise TypeError(f"{method} returned {type(loss).__name__} {loss!r:.40}; return the loss "
                        "tensor, a dict holding it under 'loss', or None")
    return loss


def _reset(layer: Any, name: str) -> None:
    """A layer's own initialisation; what the user's `reset_parameters` raises is theirs."""
    try:
        layer.reset_parameters()
    except Exception as exc:
        raise LossguardError(
            f"{name}: {type(layer).__name__}.reset_parameters() raised {one_line(exc)}; make it "
            "work (lossguard draws seeded weights through it, so that verdicts are the same on "
            "every run), or remove it from a layer that has nothing to reset"
        ) from exc


class LightningHarness(Harness):
    """A LightningModule whose parameters and buffers are snapshotted, so that every step
    starts alike; the judging of `model.py` runs on it unchanged."""

    seeding: ClassVar[str] = "a torch.Generator seeded in the module"
    rule: ClassVar[align.Reference | None] = align.PORT
    ids: ClassVar[bool] = True  # torch's cross_entropy takes int64 class ids only

    def __init__(self, module: Any, name: str, options: Options) -> None:
        import torch

        self.torch = torch
        self.model = module
        self.name = name
        self.backend = backends.load("torch")
        self.options = options
        # Inputs and labels take the module's float dtype, as a DataLoader of its data would.
        self.dtype = next((p.dtype for p in module.parameters() if p.dtype.is_floating_point),
                          torch.float32)
        # A manual-optimization training_step needs the Trainer's optimizers: not probed.
        manual = getattr(module, "automatic_optimization", True) is False
        self.methods = {phase: method for phase, method in zip(("train", "test"), LIGHTNING_STEPS,
                                                              strict=True)
                        if user_defines(type(module), method, LIGHTNING_ROOTS)
                        and not (manual and phase == "train")}
        self.paths = {phase: _PATHS[method] for phase, method in self.methods.items()}
        self.input_shapes = _input_shapes(module, options, name)
        try:
            x = self.tensors(self.inputs(options.probe_batch))
            with self.attached("test"):  # called as Lightning calls it on example_input_array
                outputs = (module(**x) if isinstance(x, Mapping) else
                           module(*x) if isinstance(x, list) else module(x))
        except Exception as exc:
            raise LossguardError(
                f"{name} raised on inputs of per-sample shape "
                f"{describe_inputs(self.input_shapes)}: {one_line(exc)}; set input_shape= "
                "(or example_input_array) to what the module expects"
            ) from exc
        self.judged(outputs, name, LIGHTNING_ROOTS)

    def to_tensor(self, array: np.ndarray) -> Any:
        """A torch tensor of `array`, in the module's float dtype when it holds floats."""
        return self.retyped(self.backend.to_tensor(array))

    def tensors(self, x: Any) -> Any:
        """Inputs as torch tensors, laid out as given."""
        return pack(x, [self.to_tensor(a) for _, a in leaves(x)])

    def variables(self) -> list[Any]:
        """Parameters and buffers (BatchNorm's running statistics move in training mode)."""
        return [*self.model.parameters(), *self.model.buffers()]

    def prepare(self) -> None:
        """Seeded weights, so that every run and every xdist worker gives the same numbers:
        each layer's own `reset_parameters` (torch's initialisation) drawn from the seed, and
        parameters no layer resets (an `nn.Parameter` of the module itself) redrawn as a Keras
        model's are."""
        self.original = self.snapshot()
        torch = self.torch
        reset: set[int] = set()
        with self.backend.seeded(self.options.seed), torch.no_grad():
            for submodule in self.model.modules():
                if callable(getattr(submodule, "reset_parameters", None)):
                    _reset(submodule, self.name)
                    reset.update(id(p) for p in submodule.parameters(recurse=False))
        rest = [p for p in self.model.parameters()
                if id(p) not in reset and p.dtype.is_floating_point]
        redraw(self.backend, rest, np.random.default_rng([self.options.seed, 4]))
        self.settle()

    @contextlib.contextmanager
    def attached(self, phase: str) -> Iterator[tuple[dict[str, Any], list[Any]]]:
        """The module as the Trainer runs a phase: training or eval mode, gradients on only
        to train, seeded torch randomness; yields what `self.log` records and what the step
        warns (torch's size warning becomes a note, as a loss's does)."""
        module, torch = self.model, self.torch
        modes = [(m, m.training) for m in module.modules()]
        logged: dict[str, Any] = {}

        def log(name: str, value: Any, *args: Any, **kwargs: Any) -> None:
            logged[name] = value

        def log_dict(values: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
            logged.update(values)

        module.train(phase == "train")
        vars(module).update(log=log, log_dict=log_dict)
        try:
            with self.backend.seeded(self.options.seed), \
                    torch.set_grad_enabled(phase == "train"), warnings_recorded() as warned:
                yield logged, warned
        finally:
            vars(module).pop("log", None)
            vars(module).pop("log_dict", None)
            for submodule, training in modes:
                submodule.training = training

    def run(self, phase: str, batch: Batch) -> Step:
        """One step from the snapshot: what it logs and returns, and the loss's gradients."""
        __tracebackhide__ = True
        arrays, rebuild = flatten(self.feed.data(phase, batch))  # batch= errors are the user's
        self.restore()
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        try:
            data = rebuild([self.to_tensor(a) for a in arrays])
            with self.attached(phase) as (logged, warned):
                method = self.methods[phase]
                loss = _returned_loss(self.backend.step(self.model, method, data), method)
                gradients: tuple[Any, ...] = ()
                if loss is not None and loss.requires_grad and parameters:
                    gradients = self.torch.autograd.grad(loss, parameters, allow_unused=True)
            values = step_logs({**logged, **({} if loss is None else {"loss": loss})},
                           self.backend)
        except Exception as exc:
            return Step(error=exc)
        update = tuple(np.zeros(tuple(p.shape), np.float32) if g is None
                       else -self.backend.to_numpy(g)
                       for p, g in zip(parameters, gradients, strict=False))
        itemsize = min((u.dtype.itemsize for u in update), default=4)
        return Step(values, update, itemsize, notes=notes_of(warned))

    def retyped(self, tensor: Any) -> Any:
        """A traced tensor in the module's float dtype, as `to_tensor` feeds its steps."""
        return tensor.to(self.dtype) if tensor.is_floating_point() else tensor


class LightningModule:
    """A LightningModule instance; a class is built by `Factory` first."""

    label: ClassVar[str] = "lightning module"
    base = "LightningModule"
    is_model: ClassVar[bool | None] = True
    judged_by_keras: ClassVar[bool] = False

    def __init__(self, module: Any, name: str) -> None:
        self.obj = module
        self.name = name
        self.source = source(type(module))
        self.backend = backends.load("torch")
        self.outputs: Outputs | None = None  # set by check, read by advise

    def check(self, options: Options) -> Report:
        """Every label probe of the module; its weights and modes are put back on the way out."""
        __tracebackhide__ = True
        foreign = [f"{key}=" for key, given in (
            ("compile", options.compile is not None), ("order", options.order != "auto"),
            ("backend", options.backend not in ("auto", "torch"))) if given]
        if foreign:
            raise LossguardError(
                f"{' and '.join(foreign)} do not apply to {self.name}, a LightningModule: "
                "nothing compiles it, its steps take (batch, batch_idx) and torch tensors; "
                "drop them")
        started = time.perf_counter()
        with preserved() as restored:
            with stage("preparing the module"):
                harness = LightningHarness(self.obj, self.name, options)
                self.outputs = harness.outputs
                if not harness.methods:
                    raise LossguardError(
                        f"{self.name} defines no training_step or validation_step that runs "
                        "without a Trainer (a manual-optimization training_step needs the "
                        "Trainer's optimizers); there is nothing to probe: define a "
                        "validation_step, or check the loss function it calls instead")
            try:
                with stage("preparing the module's weights"):
                    harness.prepare()
                with stage("stepping the module"):
                    findings = judge_steps(harness)
            finally:
                with stage("restoring the module"), shielded():  # the time limit waits
                    harness.restore(original=True)
        restored[:] = dict.fromkeys(restored)  # each named once
        first = harness.heads[0].options
        header = judge.Header("torch", "torch", align.PORT.name, first.true_shape,
                              first.pred_shape)
        with stage("writing the report"):
            return judge.report(self, header, findings, options, started, restored)

    def advise(self, report: Report, finding: Finding) -> Fix:
        assert self.outputs is not None  # a report's advice follows its check
        key, head = self.outputs.head(finding.output)
        shapes = head.options.true_shape, head.options.pred_shape
        code = fix_code(finding, *shapes, self.backend, ("y", "y_hat"))
        if finding.verdict is Verdict.ERROR:
            return advised(finding, code, LIGHTNING_ERROR)
        if finding.sample_weight is not None:
            return advised(finding, code, weights_hint(self.backend, finding.location,
                                                       finding.sample_weight))
        method = finding.method or Method("training_step")
        where = f"where {method} is computed" if method.metric else f"in {method}"
        labels, line = step_labels(finding, key, *shapes, self.backend, ("y", "y_hat"),
                                   type(self.obj))
        place = f"before {line}: " if line else "first, e.g. y_hat = self(x); "
        return advised(finding, code, f"{where}, align the labels to the prediction {place}"
                                      f"{labels}: torch broadcasts the two silently")

    def needs_keras(self, options: Options) -> bool:
        return False

    def reason(self, name: str, metrics: set[str]) -> str | None:
        return self.class_reason(type(self.obj))

    @staticmethod
    def class_reason(cls: type) -> str | None:
        """Why discovery picks a LightningModule: it defines a step."""
        steps = [step for step in LIGHTNING_STEPS if user_defines(cls, step, LIGHTNING_ROOTS)]
        return f"a LightningModule defining {', '.join(steps)}" if steps else None

    def from_factory(self, build: Callable[[], Any]) -> BuiltKind:
        return self
