"""Model probing: one train_step and one test_step per label probe, from identical state.

A custom train_step that computes its loss by hand gets no alignment from Keras, so labels
(B,) against a (B, 1) prediction broadcast inside it. Each probe runs the step with the probe
labels and with the labels Keras would align them to, from the same weights, optimizer and
metric state, and compares the reported loss, every compiled metric and the weight update.
The steps run eagerly, as `fit()` would call them, and the model is put back afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from pytest_lossguard import align, backends, judge, probes
from pytest_lossguard.advice import advised, fix_code, step_labels, weights_hint
from pytest_lossguard.backends import Backend
from pytest_lossguard.conventions import STEPS
from pytest_lossguard.deadline import shielded
from pytest_lossguard.errors import LossguardError, NotProbed, stage
from pytest_lossguard.findings import Finding, Fix, Method, PathStatus, Report, Verdict
from pytest_lossguard.introspect import KERAS_ROOTS, keras_base, source, user_defines
from pytest_lossguard.kinds import BuiltKind
from pytest_lossguard.kinds.model_data import (
    Batch,
    Feed,
    Outputs,
    describe_inputs,
    draw_inputs,
    flatten,
    heads,
    input_shapes,
    leaves,
    pack,
)
from pytest_lossguard.locate import Locator
from pytest_lossguard.options import Options
from pytest_lossguard.paths import EVALUATE, FIT
from pytest_lossguard.probes import Case
from pytest_lossguard.state import PYTHON_RANDOM, notes_of, preserved, warnings_recorded
from pytest_lossguard.text import one_line, stable_repr
from pytest_lossguard.tolerance import close, tolerances
from pytest_lossguard.trace import users

# What an uncompiled model is compiled with when the `compile` option is not given.
DEFAULT_COMPILE: Mapping[str, Any] = {"optimizer": "sgd", "loss": "mean_squared_error"}
# The backend whose tensors each Keras flavour's steps expect.
_BACKENDS = {"keras": "keras", "tf_keras": "tensorflow"}
MODEL_ERROR = ("make the model's steps work on labels shaped like its output, or set "
               "input_shape= / compile= / init= / domain= to what the model expects")
# Scale of the seeded noise that makes constant predictions vary (see Harness.prepare).
NUDGE = 0.5
# What Keras's steps call with the phase (`training=`): a user's override of one may treat
# labels differently when evaluating, so the test phase then runs its own probes.
PHASE_AWARE = ("compute_loss", "_compute_loss", "stateless_compute_loss")


@dataclasses.dataclass(frozen=True)
class Step:
    """What one train_step / test_step reported, and how it moved the trainable weights."""

    logs: dict[str, float] = dataclasses.field(default_factory=dict)
    update: tuple[np.ndarray, ...] = ()
    itemsize: int = 4
    error: BaseException | None = None
    # What the step warned (torch's size warning among them), as a finding's notes.
    notes: tuple[str, ...] = ()

    def logs_only(self) -> Step:
        """This step as a phase that moves no weight would report it."""
        return dataclasses.replace(self, update=())


class Unsnapshotted(NotProbed):
    """A step made weights after the snapshot every probe starts from (`Harness.created`)."""


def _variables(owner: Any) -> list[Any]:
    found = getattr(owner, "variables", [])
    return list(found() if inspect.ismethod(found) else found)


class Harness:
    """A compiled, built model whose state is snapshotted, so that every step starts alike.

    The judging below asks a harness only for its steps and their names, its heads and its
    feed, so a Lightning module's harness (kinds/lightning.py) subclasses this one and reuses it.
    """

    # Each phase: the method that runs it, and the call path it stands for.
    methods: Mapping[str, str] = {"train": "train_step", "test": "test_step"}
    paths: Mapping[str, str] = {"train": FIT, "test": EVALUATE}
    seeding: ClassVar[str] = "keras.random.SeedGenerator"
    # The alignment rule of the reference labels: None for the installed Keras's own.
    rule: ClassVar[align.Reference | None] = None
    # Class ids as int64 (probes.draw), as code outside Keras takes them; Keras's own steps
    # get them as floats, as its loss container does.
    ids: ClassVar[bool] = False

    def __init__(self, model: Any, name: str, backend: Backend, options: Options) -> None:
        self.model = model
        self.name = name
        self.backend = backend
        self.to_tensor = backend.to_tensor
        self.options = options
        self.uncompile = _compile(model, options, name)
        with _undone_on_error(lambda: self.uncompile()):  # every failure, the time limit too
            self.input_shapes = input_shapes(model, options, name)
            x = self.inputs(options.probe_batch)
            outputs = self.forward(x)
            self.judged(outputs, name)
            labels = pack(outputs, self.canonical(options.probe_batch).y)
            optimizer = getattr(model, "optimizer", None)
            held = _held(optimizer) if optimizer is not None else None
            try:
                _build_training_state(model, x, labels)
            except Exception as exc:
                if _user_raised(exc):  # a JAX trainer's symbolic pass runs the user's loss
                    raise LossguardError(
                        f"{name}'s own code raised while Keras built its training state (a "
                        f"symbolic pass through its loss): {one_line(exc)}; make it run as "
                        "fit() runs it") from exc
                raise LossguardError(
                    f"cannot build the compiled loss, metrics or optimizer of {name}: "
                    f"{one_line(exc)}; fix the compile= option"
                ) from exc
            finally:
                if held is not None:
                    self.uncompile = _both(self._unbuilt(optimizer, *held), self.uncompile)

    def _unbuilt(self, optimizer: Any, before: dict[str, Any],
                 contents: dict[str, list[Any]]) -> Callable[[], None]:
        """What gives the optimizer back as it was before `_build_training_state` built it,
        when a step has since made weights it was not built with (a layer only train_step
        calls): fit() builds it in that step, with them, and built without them it refuses
        them ('Unknown variable'). Else it stays built, as fit() would build it."""
        known = {id(v) for v in self.model.trainable_variables}
        undo = _compiled_since(optimizer, before, contents)

        def unbuilt() -> None:
            if any(id(v) not in known for v in self.model.trainable_variables):
                undo()

        return unbuilt

    def judged(self, outputs: Any, name: str, library: tuple[str, ...] = KERAS_ROOTS) -> None:
        """What the step judging needs once the model has run on its inputs: its heads, its
        feed (steps the user wrote are told from `library`'s, Keras's by default), the empty
        snapshots, the locator and the memo of runs. Every harness's constructor ends here."""
        self.heads = heads(self.model, outputs, self.options, name)
        self.outputs = Outputs(tuple(self.heads), isinstance(outputs, Mapping))
        self.feed = Feed(self.model, outputs, self.options, name, self.methods, library)
        self.original: list[tuple[Any, np.ndarray]] = []
        self.state: list[tuple[Any, Any]] = []
        self.start: dict[int, np.ndarray] = {}
        self.locate = Locator(self.backend)
        self.memo: judge.Memo[tuple[str, Batch], Step] = judge.Memo(
            lambda run: self.run(*run), lambda run: (run[0], run[1].key))

    def forward(self, x: Any) -> Any:
        """The model's outputs on `x`; what its call raises is the user's error, with the fix."""
        try:
            return self.backend.forward(self.model, x)
        except Exception as exc:
            raise LossguardError(
                f"{self.name} raised on inputs of per-sample shape "
                f"{describe_inputs(self.input_shapes)}: "
                f"{one_line(exc)}; set input_shape= to what the model expects"
            ) from exc

    def inputs(self, batch: int) -> Any:
        """Seeded inputs of the given batch size, laid out as the model's inputs."""
        return draw_inputs(self.input_shapes, batch, self.options.seed)

    def canonical(self, batch: int) -> Batch:
        """Inputs and the labels each output was meant to get, at this batch size."""
        labels = [probes.draw(head.options, batch, self.ids).y_true for head in self.heads]
        return Batch(self.inputs(batch), labels)

    def variables(self) -> list[Any]:
        """Every variable a step may touch: weights, seeds, optimizer and metric state."""
        model: Any = self.model
        owners = [model, getattr(model, "optimizer", None), *model.metrics]
        found: dict[int, Any] = {}
        for owner in owners:
            found.update((id(v), v) for v in _variables(owner))
        return list(found.values())

    def snapshot(self) -> list[tuple[Any, np.ndarray]]:
        """The current value of every variable."""
        return [(v, self.backend.read(v)) for v in self.variables()]

    def prepare(self) -> None:
        """Fix the state every step starts from: seeded weights, and no constant predictions.

        Keras's initialisers are unseeded, so randomly initialised weights are redrawn from the
        seed: the same code then gives the same numbers on every run and every xdist worker. A
        model that predicts one value for every sample (a zero-initialised Dense) gives the
        same loss however labels broadcast against it, so its trainable weights are moved by
        seeded noise. An instance gets its own values back in `restore(original=True)`.
        """
        self.original = self.snapshot()
        redraw(self.backend, self.model.trainable_variables,
                np.random.default_rng([self.options.seed, 4]))
        # Dropout's SeedGenerator starts from an unseeded draw too: seed its state likewise.
        seeds = np.random.default_rng([self.options.seed, 5])
        for variable in self.variables():
            if str(getattr(variable, "path", getattr(variable, "name", ""))).endswith(
                    "seed_generator_state"):
                value = self.backend.read(variable)
                fresh = np.zeros_like(value)
                fresh.flat[0] = seeds.integers(1, 2**31 - 1)
                self.backend.write(variable, fresh)
        x = self.inputs(self.options.probe_batch)
        constant = all(np.ptp(self.backend.to_numpy(value), axis=0).max() == 0
                       for _, value in leaves(self.forward(x)))
        if constant:
            rng = np.random.default_rng([self.options.seed, 3])
            for variable in self.model.trainable_variables:
                value = self.backend.read(variable)
                noise = rng.normal(scale=NUDGE, size=value.shape).astype(value.dtype)
                self.backend.write(variable, value + noise)
        self.settle()

    def settle(self) -> None:
        """Take the snapshot that every step starts from, held as the backend writes it
        fastest: it is put back before every step, so its values are also what every step's
        weight update is measured from."""
        snapshot = self.snapshot()
        self.state = [(v, self.backend.held(value)) for v, value in snapshot]
        self.start = {id(v): value for v, value in snapshot}

    def restore(self, original: bool = False) -> None:
        """Put every variable back: to the probing start, or to the user's own values."""
        for variable, value in self.original if original else self.state:
            self.backend.write(variable, value)

    def step(self, phase: str, batch: Batch) -> Step:
        """`run`, once per phase and label layout."""
        return self.memo((phase, batch))

    def run(self, phase: str, batch: Batch) -> Step:
        """One train_step or test_step from the snapshot, as fit() / evaluate() would call it."""
        __tracebackhide__ = True
        model = self.model
        arrays, rebuild = flatten(self.feed.data(phase, batch))  # batch= errors are the user's
        self.restore()
        reset_metrics(model, self.name)
        try:
            data = rebuild([self.to_tensor(a) for a in arrays])
            with self.attached(phase) as (_, warned):
                values = step_logs(self.backend.step(model, self.methods[phase], data),
                                   self.backend)
        except Exception as exc:
            return Step(error=self.created(phase) or exc)
        created = self.created(phase)
        if created:
            return Step(error=created)
        update = tuple(self.backend.read(v) - self.start[id(v)]
                       for v in model.trainable_variables)
        itemsize = min((u.dtype.itemsize for u in update if u.dtype.kind == "f"), default=4)
        return Step(values, update, itemsize, notes=notes_of(warned))

    def created(self, phase: str) -> Unsnapshotted | None:
        """The error of a step that made weights the snapshot does not hold: layers its call()
        never built (a VAE's or a GAN's layers used only in train_step). fit() builds them in
        its first step, but every probe must start from one snapshot of every weight."""
        new = [str(getattr(v, "path", v.name)) for v in self.model.trainable_variables
               if id(v) not in self.start]
        if not new:
            return None
        method = self.methods[phase]
        return Unsnapshotted(
            f"{self.name}'s {method} builds weights that its call() does not "
            f"({', '.join(new)}), as fit() lets a first step do; lossguard starts every probe "
            "from one snapshot of every weight, taken before any step, so it cannot probe "
            f"{self.name} as it stands: build them in the model's build(), or call those "
            "layers in call()")

    def traced(self, phase: str, batch: Batch) -> tuple[Callable[..., Any], list[np.ndarray]]:
        """The step as a function of the positional tensors of its data, for tracing, and the
        arrays of the batch's data in that order."""
        arrays, rebuild = flatten(self.feed.data(phase, batch))

        def call(*tensors: Any) -> Any:
            with self.attached(phase):
                return self.backend.step(self.model, self.methods[phase],
                                         rebuild([self.retyped(t) for t in tensors]))

        return call, arrays

    def compiled_metrics(self) -> set[str]:
        """The log names of compile(metrics=...), which Keras's compute_metrics reports (once a
        step has built them): Keras 3's container names them by its result, tf_keras's by its
        metrics. A LightningModule has neither: every metric it logs is its own."""
        container = getattr(self.model, "_compile_metrics", None)
        if container is not None:
            return set(container.result()) if container.built else set()
        legacy = getattr(self.model, "compiled_metrics", None)
        return {metric.name for metric in getattr(legacy, "metrics", None) or ()}

    @contextlib.contextmanager
    def attached(self, phase: str) -> Iterator[tuple[dict[str, Any], list[Any]]]:
        """What a phase's step runs inside, yielding what it logs and what it warns: a Keras
        model's warnings (torch's size warning on Keras's torch backend) become notes, as a
        loss's do, in its runs and its traces, and what it draws from the framework's global
        random state is seeded; a Lightning module is also attached to what its Trainer would
        give it."""
        with warnings_recorded() as warned, self.backend.seeded(self.options.seed):
            yield {}, warned

    def retyped(self, tensor: Any) -> Any:
        """A traced tensor as the step takes it: as the tracer made it, for a Keras model."""
        return tensor


def reset_metrics(model: Any, name: str) -> None:
    """Empty the model's metrics, as fit() does each epoch; a metric whose reset_state()
    raises is the user's error, named as such."""
    try:
        model.reset_metrics()
    except Exception as exc:
        raise LossguardError(
            f"{name}: a metric's reset_state() raised {one_line(exc)}; make reset_state() work "
            "on a metric at any time, as fit() and evaluate() call it before every epoch"
        ) from exc


@contextlib.contextmanager
def _undone_on_error(undo: Callable[[], None]) -> Iterator[None]:
    """Run `undo` (out of the time limit's reach) if the block raises anything at all, then
    re-raise."""
    try:
        yield
    except BaseException:
        with shielded():
            undo()
        raise


def _build_training_state(model: Any, x: Any, labels: Any) -> None:
    """Build what a step needs before the snapshot is taken: the optimizer's variables and,
    for a JAX trainer, the compiled loss and metrics.

    Keras 3's fit() builds those with a symbolic pass first, because a JAX step's state must
    hold every variable up front. Eager steps (TensorFlow, torch) build them on their first
    call, and the symbolic pass would cost about a step and a half. A slot made by the first
    step instead (tf_keras's legacy optimizers make them so) would be in no snapshot: every
    run would start from the last one's momentum, and it would stay in the user's optimizer.
    """
    if hasattr(model, "jax_state_sync"):
        model._symbolic_build(data_batch=(x, labels))
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return
    built = getattr(optimizer, "built", False) or getattr(optimizer, "_built", False)
    if hasattr(optimizer, "build") and not built:
        optimizer.build(model.trainable_variables)
    elif hasattr(optimizer, "_create_all_weights"):  # tf_keras's legacy OptimizerV2
        optimizer._create_all_weights(model.trainable_variables)


def redraw(backend: Backend, variables: list[Any], rng: np.random.Generator) -> None:
    """Glorot-uniform values from `rng` for every variable that was randomly initialised;
    constant initialisations (zeros, ones) are deterministic already and stay."""
    for variable in variables:
        value = backend.read(variable)
        if value.size < 2 or np.ptp(value) == 0:
            continue
        fan_in = math.prod(value.shape[:-1]) if value.ndim > 1 else value.shape[0]
        limit = math.sqrt(6.0 / (fan_in + value.shape[-1]))
        backend.write(variable, rng.uniform(-limit, limit, size=value.shape).astype(value.dtype))


def _compile(model: Any, options: Options, name: str) -> Callable[[], None]:
    """Compile the model if it needs it; returns what undoes that compile afterwards."""
    compiled = getattr(model, "compiled", None) or getattr(model, "_is_compiled", False)
    if compiled and options.compile is None:
        return lambda: None
    kwargs = dict(DEFAULT_COMPILE if options.compile is None else options.compile)
    before, contents = _held(model)
    try:
        model.compile(**kwargs)
    except BaseException as exc:
        with shielded():  # a compile that raised (or ran out of time) part way is undone too
            _compiled_since(model, before, contents)()
        if not isinstance(exc, Exception):
            raise
        raise LossguardError(
            f"cannot compile {name} with compile={stable_repr(kwargs)}: {one_line(exc)}; fix the "
            "compile= option"
        ) from exc
    return _compiled_since(model, before, contents)


def _held(owner: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """An object's attributes, and the contents of those that are lists, as
    `_compiled_since` puts them back."""
    before = dict(vars(owner))
    return before, {key: list(value) for key, value in before.items() if isinstance(value, list)}


def _both(first: Callable[[], None], then: Callable[[], None]) -> Callable[[], None]:
    """One undo that runs `first`, then `then` however `first` ended."""
    def undo() -> None:
        try:
            first()
        finally:
            then()

    return undo


def _compiled_since(model: Any, before: dict[str, Any],
                    contents: dict[str, list[Any]]) -> Callable[[], None]:
    """What puts back the attributes set since `before` (and the lists grown since
    `contents`), bypassing Keras's attribute tracking."""
    changed = [key for key, value in vars(model).items()
               if key not in before or value is not before[key]]
    grown = [key for key, items in contents.items() if before[key] != items]

    def undo() -> None:
        state = vars(model)
        for key in changed:
            if key in before:
                state[key] = before[key]
            else:
                state.pop(key, None)
        for key in grown:
            before[key][:] = contents[key]

    return undo


def step_logs(logs: Any, backend: Backend) -> dict[str, float]:
    """Scalar entries of the logs a step returned; a bare scalar counts as the loss."""
    if logs is None:
        raise LossguardError("returned None; return a dict of logs such as {'loss': loss}, "
                             "as Keras's own steps do")
    if not isinstance(logs, Mapping):
        logs = {"loss": logs}
    values = {}
    for key, value in logs.items():
        array = backend.to_numpy(value)
        if array.size == 1 and np.issubdtype(array.dtype, np.number):
            values[str(key)] = float(array.reshape(()))
    return values


def _is_loss(key: str) -> bool:
    return key == "loss" or key.endswith("_loss")


def _largest(arrays: Iterator[np.ndarray]) -> float:
    return max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)


def _differences(got: Step, ref: Step, options: Options) -> tuple[list[str], float, float]:
    """Which reported quantities differ, and the update's largest difference and size."""
    itemsize = min(got.itemsize, ref.itemsize)
    differ = [key for key, value in ref.logs.items()
              if key not in got.logs or not close(got.logs[key], value, itemsize, options)]
    difference = _largest(g - r for g, r in zip(got.update, ref.update, strict=True))
    size = _largest(iter(ref.update))
    rtol, atol = tolerances(itemsize, options)
    if difference > atol + rtol * size:
        differ.append("weight update")
    return differ, difference, size


def _differ(differ: list[str], reference: str) -> str:
    if not differ:
        return ""
    if len(differ) == 1:
        return f"{differ[0]} differs from the {reference} run"
    return f"{', '.join(differ[:-1])} and {differ[-1]} differ from the {reference} run"


def _method(harness: Harness, phase: str, differ: list[str]) -> Method:
    """The user's code the difference comes from: a step, compute_loss, or a metric (of
    compile(metrics=...), or one that the user's step or compute_loss computes itself)."""
    cls = type(harness.model)
    own = next((method for method in (harness.methods[phase], "compute_loss")
                if user_defines(cls, method)), "")
    metrics = [key for key in differ if key != "weight update" and not _is_loss(key)]
    if metrics and len(metrics) == len(differ):
        compiled = metrics[0] in harness.compiled_metrics()
        return Method(metrics[0], metric=True, step="" if compiled else own)
    return Method(own or "compiled loss")


def _error(
    message: str, batch: Batch, harness: Harness, exception: BaseException | None = None,
) -> Finding:
    return judge.canonical_error(batch.y[0].shape,
                                 (batch.y[0].shape[0], *harness.heads[0].shape), message,
                                 exception=exception)


def _check_canonical(harness: Harness, batch: Batch) -> Finding | None:
    """An error finding when the model cannot be probed from its own canonical labels."""
    for phase, method in harness.methods.items():
        first = harness.step(phase, batch)
        if isinstance(first.error, NotProbed):
            raise first.error
        if isinstance(first.error, LossguardError):
            return _error(f"{method} {first.error}", batch, harness)
        if first.error is not None:
            _unlabelled(harness, phase, first.error)
            return _error(f"{method} raised on canonical labels: {one_line(first.error)}"
                          f"{_labelled_outputs(harness)}", batch, harness, first.error)
        bad = _nonfinite(first)
        if bad:
            return _error(f"{method} reported {bad} on canonical labels; check domain= and the "
                          "model's loss", batch, harness)
        if phase == "train" and not any(map(_is_loss, first.logs)) and not _largest(
                iter(first.update)):
            return _error(f"{method} reported no loss and moved no weight, so there is nothing "
                          "to compare; return {'loss': loss} and apply the gradients", batch,
                          harness)
    return None


def _unlabelled(harness: Harness, phase: str, error: BaseException) -> None:
    """For a step of the user's that raised on (x, y): raise NotProbed when it runs on its
    inputs alone, as fit(x) hands an autoencoder's or a GAN's steps their data (no labels
    meet its predictions, so there is nothing to probe, and the step is not at fault), or
    when run so it builds weights (`Harness.created`)."""
    method = harness.methods[phase]
    if harness.options.batch is not None or not user_defines(type(harness.model), method,
                                                             harness.feed.library):
        return
    alone = harness.run(phase, Batch(harness.inputs(harness.options.probe_batch), []))
    if isinstance(alone.error, NotProbed):
        raise alone.error
    if alone.error is None:
        raise NotProbed(
            f"{harness.name}'s {method} takes its data as inputs alone, as fit(x) gives it "
            f"(it raised on inputs and labels: {one_line(error)}), so no labels meet its "
            "predictions and there is nothing to probe; check the loss functions it calls "
            "instead, or if it does take labels, give its data with batch=")


def _labelled_outputs(harness: Harness) -> str:
    """For a step that raised while given labels for several outputs: a forward pass that also
    returns what takes no labels (features, attention) gets a label for each output unless
    `batch=` says which outputs the labels belong to."""
    heads = harness.heads
    if len(heads) < 2 or harness.options.batch is not None:
        return ""
    first = repr(heads[0].name) if harness.outputs.keyed else 0
    return (f"; it was given labels for each of its {len(heads)} outputs "
            f"({', '.join(head.name for head in heads)}): if only some take labels, pass "
            "those alone with the batch= option of the mark or check(), e.g. "
            f"batch=lambda x, y: (x, y[{first}])")


def _nonfinite(step: Step) -> dict[str, float]:
    return {key: value for key, value in step.logs.items() if not math.isfinite(value)}


def _nondeterministic(harness: Harness, batch: Batch,
                      mirrors: Mapping[str, str]) -> Finding | None:
    """An error finding when a step gives two results from identical state. Asked only once a
    probe differs, since only then could randomness pass for a broadcast; a mirrored phase
    has no runs of its own to repeat."""
    for phase, method in harness.methods.items():
        if mirrors[phase] != phase:
            continue
        first = harness.step(phase, batch)
        again = harness.run(phase, batch)
        if again.error is not None or _differences(again, first, harness.options)[0]:
            return _error(f"{method} is not deterministic: two runs from identical weights "
                          f"and optimizer state differ; seed its randomness ({harness.seeding}) "
                          "or probe a model without it", batch, harness)
    return None


def _logs_reproduced(harness: Harness, index: int, case: Case,
                     mirrors: Mapping[str, str]) -> bool:
    """Whether a probe's difference is in logs already shown reproducible, so that no repeat
    run is needed to rule out randomness: a mirrored phase reported the lead phase's logs from
    a different step and identical state, and the lead phase's logs on this probe differ from
    its reference's. A difference in the weight update alone still needs the repeat run."""
    if all(source == phase for phase, source in mirrors.items()):
        return False
    lead = next(iter(harness.methods))
    probe, reference, _ = _batches(harness, index, case)
    got, ref = harness.step(lead, probe), harness.step(lead, reference)
    return got.error is None and ref.error is None and bool(
        _differences(got.logs_only(), ref.logs_only(), harness.options)[0])


def _model_cases(harness: Harness) -> Iterator[tuple[int, Case]]:
    """The label probes of every head, and the weighting probe once for the model when its
    steps take sample weights: the model makes the predictions, so only labels vary."""
    weighted = any(map(harness.feed.takes_weights, harness.methods))
    for index, head in enumerate(harness.heads):
        for case in probes.cases(head.options, takes_weights=weighted and index == 0,
                                 ids=harness.ids):
            if case.inputs.y_pred.shape == case.canonical.y_pred.shape:
                yield index, case


def _batches(harness: Harness, index: int, case: Case) -> tuple[Batch, Batch, str]:
    """The probe's batch, its reference batch, and the reference's name."""
    labels = case.inputs.y_true
    size = labels.shape[0]
    canonical = harness.canonical(size)
    if case.probe.weights:  # (B, 1) weights against (B,): Keras treats the two alike
        weights, flat = case.inputs.sample_weight, case.canonical.sample_weight
        assert weights is not None and flat is not None
        return (dataclasses.replace(canonical, weights=weights),
                dataclasses.replace(canonical, weights=flat), f"sample_weight {flat.shape}")
    output = (size, *harness.heads[index].shape)
    true_shape, _ = align.aligned_shapes(labels.shape, output, harness.rule)
    if true_shape != labels.shape:
        reference, name = labels.reshape(true_shape), "Keras-aligned"
    else:
        reference, name = case.canonical.y_true, "canonical"
    swap = canonical.y.copy()
    swap[index] = labels
    probe = Batch(canonical.x, swap)
    swap = canonical.y.copy()
    swap[index] = reference
    return probe, Batch(canonical.x, swap), name


def _mirrors(harness: Harness, batch: Batch) -> dict[str, str]:
    """The phase whose runs stand for each phase's: its own, or the first phase's when the
    library wrote every step and the loss computation (PHASE_AWARE), and both steps report
    the same logs on the canonical labels.

    Keras's own train_step and test_step hand the labels to the same compute_loss and
    compute_metrics, so with the same predictions (logs equal on the canonical batch: no
    dropout or batch statistics in between) the test phase gives the train phase's verdicts
    on every probe, without its own runs."""
    first, *others = harness.methods
    mirrors = {phase: phase for phase in harness.methods}
    if any(user_defines(type(harness.model), method, harness.feed.library)
           for method in (*harness.methods.values(), *PHASE_AWARE)):
        return mirrors
    lead = harness.step(first, batch).logs_only()
    for phase in others:
        own = harness.step(phase, batch).logs_only()
        if own.logs.keys() == lead.logs.keys() and not _differences(own, lead,
                                                                    harness.options)[0]:
            mirrors[phase] = first
    return mirrors


def _judge(harness: Harness, index: int, case: Case, phase: str,
           mirrors: Mapping[str, str]) -> Finding | None:
    """One phase's verdict on one probe; None when the phase does not take the probe (a step
    that takes no sample weights, or fails on the (B,) weights alone)."""
    probe, reference, name = _batches(harness, index, case)
    if case.probe.weights and not harness.feed.takes_weights(phase):
        return None
    source = mirrors[phase]

    def step(batch: Batch) -> Step:
        ran = harness.step(source, batch)
        return ran if source == phase else ran.logs_only()

    ref = step(reference)
    if case.probe.weights and (ref.error is not None or _nonfinite(ref)):
        return None
    got = step(probe)
    head = harness.heads[index]
    output = head.name if len(harness.heads) > 1 and not case.probe.weights else ""
    label = f"{case.label} [{output}]" if output else case.label
    batch = probe.y[index].shape[0]
    y_true, y_pred = probe.y[index].shape, (batch, *head.shape)
    weights = None if probe.weights is None else probe.weights.shape
    if got.error is not None:
        return Finding(label, Verdict.RAISES, y_true, y_pred, weights,
                       method=_method(harness, phase, []), message=one_line(got.error),
                       output=output, notes=got.notes)
    differ, difference, size = _differences(got, ref, harness.options)
    method = _method(harness, phase, differ)
    shown = next((k for k in differ if k != "weight update"), "loss")
    return Finding(
        label, judge.verdict(not differ, False, None), y_true, y_pred, weights,
        value=got.logs.get(shown), reference=name, reference_value=ref.logs.get(shown),
        message=_differ(differ, name), method=method,
        update_difference=difference if phase == "train" else None,
        update_size=size if phase == "train" else None, output=output, notes=got.notes,
    )


def _located(harness: Harness, index: int, case: Case, phase: str, finding: Finding) -> Finding:
    """A differing finding with where its probe grew, and the verdict that follows. Traced
    only for a finding that is reported: a broadcast and a mismatch give a path the same
    status, so a finding left out needs no location."""
    if finding.verdict is not Verdict.MISMATCH:
        return finding
    probe, reference, _ = _batches(harness, index, case)
    call, arrays = harness.traced(phase, probe)
    _, references = harness.traced(phase, reference)
    where = harness.locate(call, arrays, references, tag=phase)
    if where is None and case.symmetric:
        # Neither weighting is the intended one: the one whose step grew is the broadcast.
        where = harness.locate(call, references, arrays, tag=phase)
        if where is not None:
            finding = _swapped(finding, probe, reference)
    elif where is None and not case.probe.label_dtype:
        # The probe shows no growth of its own: does the reference mix ranks where it does not
        # (a step that squeezes its prediction to fit (B,) labels)?
        grew = harness.locate(call, references, arrays, tag=phase, mixed=True)
        where = grew and dataclasses.replace(grew, layout="canonical")
    return dataclasses.replace(finding, verdict=judge.verdict(False, False, where),
                               location=where)


def _swapped(finding: Finding, probe: Batch, reference: Batch) -> Finding:
    """A weighting finding told from the reference's side, when that is the weighting that
    grew: its weights and value shown, the probe's as the reference."""
    assert probe.weights is not None and reference.weights is not None
    return dataclasses.replace(
        finding, sample_weight=reference.weights.shape, value=finding.reference_value,
        reference=f"sample_weight {probe.weights.shape}", reference_value=finding.value,
        message=finding.message.replace(str(finding.reference),
                                        f"sample_weight {probe.weights.shape}"))


def _status(finding: Finding | None) -> PathStatus:
    """A phase's call-path status; n/a when its step does not take the probe, or reported no
    loss and moved no weight."""
    if finding is None:
        return PathStatus.NA
    if finding.verdict is Verdict.SAFE and finding.reference_value is None:
        return PathStatus.NA if finding.update_difference is None else PathStatus.PROTECTED
    return PathStatus.of(finding.verdict)


def _unrunnable(harness: Harness, batch: Batch) -> tuple[str, ...]:
    """Leave out each phase whose step Keras wrote and that raises, in Keras's code alone, on
    the canonical labels the first phase runs on: evaluate() of a model compiled with no loss,
    whose own train_step computes one, as Keras's guide to custom steps writes it. That call
    path fails as the model is compiled, so it has nothing to probe, but fit() is judged. An
    error raised in the user's code (call(), compute_loss) stays the check's error. The notes
    that say what was left out."""
    lead, *others = harness.methods
    if harness.step(lead, batch).error is not None:
        return ()
    notes = {}
    for phase in others:
        method, error = harness.methods[phase], harness.step(phase, batch).error
        if error is None or isinstance(error, LossguardError) or user_defines(
                type(harness.model), method, harness.feed.library) or _user_raised(error):
            continue
        path = harness.paths[phase]
        notes[phase] = (f"{path} not probed: Keras's own {method} raises on the canonical labels "
                        f"({one_line(error)}), so {path} fails on this model as compiled; "
                        f"{harness.paths[lead]} is judged alone")
    harness.methods = {key: m for key, m in harness.methods.items() if key not in notes}
    harness.paths = {key: p for key, p in harness.paths.items() if key not in notes}
    return tuple(notes.values())


def _user_raised(error: BaseException) -> bool:
    """Whether a frame of the user's own code is in the exception's traceback."""
    return any(users(frame.filename) for frame in traceback.extract_tb(error.__traceback__))


def judge_steps(harness: Harness) -> list[Finding]:
    canonical = harness.canonical(harness.options.probe_batch)
    notes = _unrunnable(harness, canonical)
    error = _check_canonical(harness, canonical)
    if error is not None:
        return [error]
    findings = _probed(harness, canonical)
    if notes and findings:
        findings[0] = dataclasses.replace(findings[0], notes=(*findings[0].notes, *notes))
    return findings


def _probed(harness: Harness, canonical: Batch) -> list[Finding]:
    """The findings of every probe of a model that runs on its canonical labels."""
    mirrors = _mirrors(harness, canonical)
    findings: list[Finding] = []
    deterministic = False
    for index, case in _model_cases(harness):
        judged = [_judge(harness, index, case, phase, mirrors) for phase in harness.methods]
        present = [(phase, f) for phase, f in zip(harness.methods, judged, strict=True)
                   if f is not None]
        if (not deterministic and any(f.verdict is not Verdict.SAFE for _, f in present)
                and not _logs_reproduced(harness, index, case, mirrors)):
            error = _nondeterministic(harness, canonical, mirrors)
            if error is not None:
                return [error]
            deterministic = True
        paths = tuple((harness.paths[phase], _status(f))
                      for phase, f in zip(harness.methods, judged, strict=True))
        seen: set[Method | None] = set()
        for number, (_, finding) in enumerate(present):
            if finding.verdict is Verdict.SAFE:
                findings.extend([finding] if number == 0 else [])
            elif finding.method not in seen:
                seen.add(finding.method)
                located = _located(harness, index, case, _traced_phase(present, finding),
                                   finding)
                findings.append(dataclasses.replace(located, paths=paths))
    return findings


def _traced_phase(present: list[tuple[str, Finding]], finding: Finding) -> str:
    """The phase whose step is traced to locate `finding`: the last one (test_step) where the
    same code differs too, since it computes no gradients and applies no optimizer update."""
    return next(phase for phase, other in reversed(present)
                if other.method == finding.method and other.verdict is finding.verdict)


class ModelObject:
    """A keras.Model instance: its train_step and test_step, probed from one snapshot that is
    restored at the end; a class is built by `Factory` first."""

    label: ClassVar[str] = "model"
    base = "Model"
    is_model: ClassVar[bool | None] = True
    judged_by_keras: ClassVar[bool] = True

    def __init__(self, model: Any, name: str) -> None:
        self.obj = model
        self.name = name
        self.source = source(type(model))
        self.flavour = keras_base(type(model), "Model") or "keras"
        self.backend = backends.load(_BACKENDS[self.flavour])
        self.outputs: Outputs | None = None  # set by check, read by advise
        # Whether the model was probed compiled with a loss (its own, compile= or the
        # default), so that the fix may send a step's labels to Keras's compute_loss.
        self.compiled_loss = True

    def check(self, options: Options) -> Report:
        """Every label probe of the model; its state is put back on the way out."""
        __tracebackhide__ = True
        started = time.perf_counter()
        with preserved() as restored:
            with stage("building and compiling the model"), preserved() as built:
                harness = Harness(self.obj, self.name, self.backend, options)
                self.outputs = harness.outputs
                self.compiled_loss = bool(getattr(self.obj, "loss", None))
            # Keras's unseeded initialisers draw seeds from Python's random state while
            # lossguard builds the model: put back, but not blamed on the target.
            restored.extend(name for name in built if name != PYTHON_RANDOM)
            try:  # every exit puts the user's weights, metrics and compile state back
                with stage("preparing the model's weights"):
                    harness.prepare()
                with stage("stepping the model"):
                    findings = judge_steps(harness)
            finally:
                with stage("restoring the model"), shielded():  # the time limit waits
                    try:  # metrics first built while probing start empty
                        reset_metrics(harness.model, self.name)
                    finally:  # the user's values come back even when a reset raised
                        harness.restore(original=True)
                        harness.uncompile()
        restored[:] = dict.fromkeys(restored)  # each named once
        first = harness.heads[0].options
        header = judge.Header(self.flavour, self.flavour, align.reference().name,
                              first.true_shape, first.pred_shape)
        with stage("writing the report"):
            return judge.report(self, header, findings, options, started, restored)

    def advise(self, report: Report, finding: Finding) -> Fix:
        assert self.outputs is not None  # a report's advice follows its check
        key, head = self.outputs.head(finding.output)
        shapes = head.options.true_shape, head.options.pred_shape
        code = fix_code(finding, *shapes, self.backend)
        step = step_labels(finding, key, *shapes, self.backend, ("y", "y_pred"),
                           type(self.obj))
        return advised(finding, code, self._hint(finding, code, step))

    def _hint(self, finding: Finding, align_code: str, step: tuple[str, str]) -> str:
        """`align_code` goes in a loss or metric function; `step` (statement, the located line
        it goes before) in the user's step, whose labels may be a dict or list of outputs."""
        if finding.verdict is Verdict.ERROR:
            return MODEL_ERROR
        if finding.sample_weight is not None:
            return weights_hint(self.backend, finding.location, finding.sample_weight)
        method = finding.method or Method("compiled loss")
        labels, line = step
        if method.metric and method.step:
            return (f"in {method.step}, align the labels to the prediction before computing the "
                    f"{method}{f' at {line}' if line else ''}, e.g. {labels}: Keras aligns "
                    "nothing that your own code computes")
        if method.metric:
            return (f"align ranks inside the {method}, e.g. {align_code}: compile(metrics=...) "
                    "does not align custom metric functions in Keras 3")
        if method.name == "compiled loss":
            return (f"align ranks inside the compiled Loss's call(), e.g. {align_code}: a Loss "
                    "subclass that overrides call gets no alignment, even in compile()")
        # Inside compute_loss itself, self.compute_loss would call the override again.
        keras_own = ("return super().compute_loss(x=x, y=y, y_pred=y_pred, "
                     "sample_weight=sample_weight), with the loss given to compile()"
                     if method.name == "compute_loss"
                     else "loss = self.compute_loss(x=x, y=y, y_pred=y_pred)")
        place = f"before {line}: " if line else "before the loss, e.g. "
        if not self.compiled_loss:  # Keras has no loss to align for it
            return f"in {method}, align the labels to the prediction {place}{labels}"
        return (f"in {method}, let Keras align the labels: {keras_own}, or align them to the "
                f"prediction {place}{labels}")

    def needs_keras(self, options: Options) -> bool:
        return True

    def reason(self, name: str, metrics: set[str]) -> str | None:
        return self.class_reason(type(self.obj))

    @staticmethod
    def class_reason(cls: type) -> str | None:
        """Why discovery picks a Model: it overrides a step or compute_loss."""
        overrides = [step for step in STEPS if user_defines(cls, step)]
        return f"a keras Model overriding {', '.join(overrides)}" if overrides else None

    def from_factory(self, build: Callable[[], Any]) -> BuiltKind:
        return self
