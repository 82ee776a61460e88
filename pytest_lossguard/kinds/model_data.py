"""What a model is fed: its heads (each output with the options its labels are drawn with),
seeded inputs of its input shapes, and the data its steps receive, `(x, y)`,
`(x, y, sample_weight)`, or whatever the user's `batch=` builds from them.

Everything here is NumPy: the harness (model.py) turns the arrays of a step's data into the
backend's tensors, and a trace feeds the same arrays positionally.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pytest_lossguard.errors import LossguardError, OptionNeeded
from pytest_lossguard.introspect import (
    KERAS_ROOTS,
    binds,
    describe,
    requires_weights,
    signature,
    unpacks_weights,
    user_defines,
)
from pytest_lossguard.options import PER_OUTPUT, InputShape, Options, OutputKey, Shape
from pytest_lossguard.text import one_line


def leaves(structure: Any) -> list[tuple[str, Any]]:
    """(name, leaf) pairs of a model's outputs or inputs: one tensor, a list or a dict."""
    if isinstance(structure, Mapping):
        return [(str(key), value) for key, value in structure.items()]
    if isinstance(structure, (list, tuple)):
        return [(str(index), value) for index, value in enumerate(structure)]
    return [("", structure)]


def pack(structure: Any, values: list[Any]) -> Any:
    """`values` laid out as `structure` is, the inverse of `leaves`."""
    if isinstance(structure, Mapping):
        return dict(zip(structure, values, strict=True))
    if isinstance(structure, (list, tuple)):
        return list(values)
    return values[0]


@dataclasses.dataclass(frozen=True)
class Head:
    """One output of a model: its name, its per-sample prediction shape, and the options its
    labels are drawn with (the per-output ones over the rest)."""

    name: str
    shape: Shape
    options: Options


@dataclasses.dataclass(frozen=True)
class Outputs:
    """A model's heads as a step's code picks them out of its labels and predictions: by key
    (dict outputs) or by index (a list or tuple), which the fix of one head's finding
    subscripts them with."""

    heads: tuple[Head, ...]
    keyed: bool

    def head(self, name: str) -> tuple[str | int | None, Head]:
        """The key or index of the output a finding names, and its head; None and the first
        head for a finding on no one output (a model of one, a weighting probe)."""
        index = next((i for i, head in enumerate(self.heads)
                      if name and head.name == name), None)
        if index is None:
            return None, self.heads[0]
        return (name if self.keyed else index), self.heads[index]


def _names(model: Any, outputs: Any) -> list[str]:
    """The outputs' names: a dict's keys, else the model's output names (a functional
    model's layer names), else their indices."""
    keys = [key for key, _ in leaves(outputs)]
    if isinstance(outputs, Mapping):
        return keys
    try:
        names = list(getattr(model, "output_names", None) or [])
    except (AttributeError, ValueError):
        names = []
    if len(names) == len(keys) and all(isinstance(n, str) for n in names):
        return names
    return [key or "0" for key in keys]


def _index(key: OutputKey, names: list[str], option: str, target: str) -> int:
    """The output a per-output key names: by name, or by index (an int, or digits, which is
    how a TOML table writes one)."""
    if isinstance(key, str) and key in names:
        return names.index(key)
    index = int(key) if isinstance(key, int) or key.isdigit() else -1
    if 0 <= index < len(names):
        return index
    listing = ", ".join(f"{name!r} ({i})" for i, name in enumerate(names))
    raise LossguardError(f"{option} names output {key!r}, but the outputs of {target} are "
                         f"{listing}; key it by one of those names or indices")


def heads(model: Any, outputs: Any, options: Options, target: str) -> list[Head]:
    """Every output of the model with its own label options: its shape comes from the model,
    `y_true_shape` and `domain` from the per-output value for it, else the plain one."""
    names = _names(model, outputs)
    given: list[dict[str, Any]] = [{} for _ in names]
    for option in PER_OUTPUT:
        for key, value in options.per_output.get(option, {}).items():
            given[_index(key, names, option, target)][option] = value
    found = []
    plain = dataclasses.replace(options, per_output={})
    for name, (_, tensor), own in zip(names, leaves(outputs), given, strict=True):
        what = f"output {name!r} of {target}" if len(names) > 1 else target
        if not hasattr(tensor, "shape"):
            raise LossguardError(
                f"{what} is {type(tensor).__name__}, not a tensor: lossguard probes models "
                "whose outputs are tensors (one, a list or a dict); return only tensors from "
                "the forward pass")
        shape = tuple(tensor.shape)[1:]
        if own.get("output_shape", shape) != shape:
            raise LossguardError(
                f"{what} predicts per-sample shape {shape}, not output_shape "
                f"{own['output_shape']}: a model's outputs give their own shapes; drop that "
                "entry or fix it")
        try:
            head = Options.build(plain, output_shape=shape, y_pred_shape=None,
                                 y_true_shape=own.get("y_true_shape", options.y_true_shape),
                                 domain=own.get("domain", options.domain)).classes()
        except LossguardError as exc:
            raise LossguardError(f"{what}: {exc}") from None
        found.append(Head(name, shape, head))
    return found


def input_shapes(model: Any, options: Options, target: str) -> InputShape:
    """Per-sample input shapes: the option, else the model's own symbolic inputs (keyed as a
    functional model of dict inputs takes them), else the shapes it was built on."""
    if options.input_shape is not None:
        return options.input_shape
    try:
        inputs = list(model.inputs or [])
        structure = model.input if inputs else None
    except (AttributeError, ValueError):
        inputs, structure = [], None
    if isinstance(structure, Mapping):
        keyed = {str(key): tuple(tensor.shape)[1:] for key, tensor in structure.items()}
        if all(None not in shape for shape in keyed.values()):
            return keyed
    shapes = tuple(tuple(tensor.shape)[1:] for tensor in inputs) or _built_with(model)
    if shapes and all(None not in shape for shape in shapes):
        return shapes[0] if len(shapes) == 1 else shapes
    raise OptionNeeded(f"cannot tell the input shape of model {target}", "input_shape")


def _built_with(model: Any) -> tuple[Shape, ...]:
    """Per-sample shapes a subclassed model was built on (`model.build((None, 4))` or a first
    call), as its build config records them: Keras's own serialisation reads them there."""
    try:
        config = model.get_build_config() or {}
    except Exception:  # a build config Keras cannot write: no shapes to read
        return ()
    shape = config.get("input_shape")
    if not isinstance(shape, (list, tuple)) or not shape:
        return ()
    batched = shape if isinstance(shape[0], (list, tuple)) else [shape]
    if not all(isinstance(s, (list, tuple)) and s and all(
            d is None or isinstance(d, int) for d in s) for s in batched):
        return ()
    return tuple(tuple(s)[1:] for s in batched)


def _shape_list(shapes: InputShape) -> list[Shape]:
    if isinstance(shapes, Mapping):
        return list(shapes.values())
    return list(shapes) if shapes and isinstance(shapes[0], tuple) else [shapes]  # type: ignore[list-item]


def describe_inputs(shapes: InputShape) -> str:
    """The input shapes as a message names them."""
    if isinstance(shapes, Mapping):
        return ", ".join(f"{key!r}: {shape}" for key, shape in shapes.items())
    return ", ".join(map(str, _shape_list(shapes)))


def draw_inputs(shapes: InputShape, batch: int, seed: int) -> Any:
    """Seeded inputs of the given batch size, laid out as the model's inputs are."""
    rng = np.random.default_rng([seed, batch, 2])
    arrays = [rng.normal(size=(batch, *shape)).astype(np.float32)
              for shape in _shape_list(shapes)]
    if isinstance(shapes, Mapping):
        return dict(zip(shapes, arrays, strict=True))
    return arrays if shapes and isinstance(shapes[0], tuple) else arrays[0]


@dataclasses.dataclass(frozen=True)
class Batch:
    """One step's inputs, labels (one array per head) and sample weights, if any."""

    x: Any
    y: list[np.ndarray]
    weights: np.ndarray | None = None

    @property
    def key(self) -> tuple[object, ...]:
        """Values come from one seeded draw per batch size, so shapes and dtypes identify it."""
        weights = None if self.weights is None else self.weights.shape
        return (*((a.shape, str(a.dtype)) for a in self.y), weights)


def flatten(data: Any) -> tuple[list[np.ndarray], Callable[[Sequence[Any]], Any]]:
    """The arrays in a step's data, and what puts tensors back in their places: dicts, lists
    and tuples (named ones too) keep their type, and values that are not arrays stay as
    they are. The arrays are what a step is fed as tensors, and what a trace feeds."""
    arrays: list[np.ndarray] = []

    def walk(node: Any) -> Callable[[Iterator[Any]], Any]:
        if isinstance(node, Mapping):
            parts = {key: walk(value) for key, value in node.items()}
            return lambda tensors: {key: part(tensors) for key, part in parts.items()}
        if isinstance(node, (list, tuple)):
            items = [walk(value) for value in node]
            kind = type(node)
            if hasattr(node, "_fields"):
                return lambda tensors: kind(*(item(tensors) for item in items))
            return lambda tensors: kind(item(tensors) for item in items)
        if isinstance(node, np.ndarray) or hasattr(node, "__array__"):
            arrays.append(np.asarray(node))
            return next
        return lambda tensors: node

    build = walk(data)
    return arrays, lambda tensors: build(iter(tensors))


class Feed:
    """What a model's steps are handed: `(x, y)` or `(x, y, sample_weight)` as fit() hands
    them, or what `batch(x, y)` builds from them for the steps the user wrote."""

    def __init__(self, model: Any, outputs: Any, options: Options, target: str,
                 methods: Mapping[str, str], library: tuple[str, ...] = KERAS_ROOTS) -> None:
        self.cls = type(model)
        self.outputs = outputs
        self.target = target
        self.methods = methods
        self.library = library
        self.batch = options.batch
        self.weighted = False
        if self.batch is not None:
            sig = signature(self.batch)
            if sig is not None and not binds(sig, None, None):
                raise LossguardError(f"batch={describe(self.batch)} of {target} cannot be "
                                     f"called as batch(x, y): its signature is {sig}")
            self.weighted = sig is not None and any(
                p.name == "sample_weight" or p.kind is inspect.Parameter.VAR_KEYWORD
                for p in sig.parameters.values())

    def _built(self, phase: str) -> bool:
        """Whether `batch=` builds this phase's data: the step is the user's."""
        return self.batch is not None and user_defines(self.cls, self.methods[phase],
                                                       self.library)

    def _requires_weights(self, phase: str) -> bool:
        method = self.methods[phase]
        return user_defines(self.cls, method, self.library) and requires_weights(
            getattr(self.cls, method))

    def takes_weights(self, phase: str) -> bool:
        """Whether a phase's step takes sample weights: Keras's own steps do; a step of the
        user's does when `batch=` takes a `sample_weight` parameter, or without `batch=`, when
        its code unpacks them (introspect.unpacks_weights)."""
        method = self.methods[phase]
        if not user_defines(self.cls, method, self.library):
            return True
        return self.weighted if self.batch is not None else unpacks_weights(
            getattr(self.cls, method))

    def data(self, phase: str, batch: Batch) -> Any:
        """A phase's step data for one batch, as NumPy arrays. A step of the user's that
        cannot run without sample weights (`x, y, w = data`) gets weights of one where the
        batch has none: they leave a mean-reduced loss as it was unweighted. A batch without
        labels is its inputs alone, as fit(x) hands them over."""
        if not batch.y:
            return batch.x
        y = pack(self.outputs, batch.y)
        if self.batch is None or not self._built(phase):
            given = batch.weights
            if given is None and self._requires_weights(phase):
                given = np.ones(len(batch.y[0]), np.float32)
            return (batch.x, y) if given is None else (batch.x, y, given)
        weights = {} if batch.weights is None else {"sample_weight": batch.weights}
        try:
            return self.batch(batch.x, y, **weights)
        except Exception as exc:
            shapes = ", ".join(str(a.shape) for a in batch.y)
            raise LossguardError(
                f"batch={describe(self.batch)}, given for {self.target}, raised on labels "
                f"{shapes}: "
                f"{one_line(exc)}; fix the batch= option: it gets the model's inputs x and "
                "labels y (and sample_weight, if it takes it) as NumPy arrays, and returns the "
                "data a step unpacks"
            ) from exc

