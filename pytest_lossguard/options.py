"""Options of one check: marker kwargs, ini defaults and API keywords share this record."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from pytest_lossguard.errors import LossguardError

DOMAINS = ("real", "probability", "binary", "one-hot", "sparse")
BACKENDS = ("auto", "numpy", "tensorflow", "keras", "jax", "torch")
# Argument orders of a loss: taken from its signature, or set.
ORDERS = ("auto", "labels-first", "prediction-first")
# Primes, so that an outer broadcast of the batch against a per-sample axis always shows.
BATCH_CANDIDATES = (7, 11, 13, 17, 19, 23, 29, 31)
# Refuse canonical shapes whose probe arrays would be absurdly large.
MAX_ELEMENTS = 1_000_000
# The longest time limit the SIGALRM timer takes everywhere (about a year).
MAX_TIMEOUT = 3e7

Shape = tuple[int, ...]
# A model's inputs: one shape, several (a list), or named ones (a dict).
InputShape = Shape | tuple[Shape, ...] | Mapping[str, Shape]
# An output of a model, as a per-output option names it: its name, or its index.
OutputKey = str | int
# The options a model may be given per output, keyed by output name or index.
PER_OUTPUT = ("output_shape", "y_true_shape", "domain")


def _shape(name: str, value: Any) -> Shape:
    """A tuple or list of positive ints (a lone int is one axis); anything else is refused,
    not coerced: "13" is not (1, 3), nor (2.9,) a (2,)."""
    if _is_int(value):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(_is_int(v) for v in value):
        raise LossguardError(
            f"{name}={value!r} is not a shape: give a tuple of positive ints, e.g. {name}=(1,)"
        )
    shape = tuple(int(v) for v in value)
    if any(v < 1 for v in shape):
        raise LossguardError(f"{name}={value!r} has an axis < 1: every axis must be positive")
    return shape


def _input_shape(value: Any) -> InputShape:
    """One shape, a list of shapes (several inputs) or a dict of them (named inputs)."""
    if isinstance(value, Mapping):
        return {str(key): _shape(f"input_shape[{key!r}]", shape) for key, shape in value.items()}
    if isinstance(value, (tuple, list)) and any(isinstance(v, (tuple, list)) for v in value):
        return tuple(_shape(f"input_shape[{i}]", shape) for i, shape in enumerate(value))
    return _shape("input_shape", value)


def _per_output(name: str, table: Mapping[Any, Any]) -> dict[OutputKey, Any]:
    """A per-output option's {output name or index: value}, each value checked alone."""
    checked: dict[OutputKey, Any] = {}
    for key, value in table.items():
        if not isinstance(key, str) and not _is_int(key):
            raise LossguardError(
                f"{name}={dict(table)!r} keys {key!r}, which names no output: key it by output "
                f"name or index, e.g. {name}={{'reg': ..., 1: ...}}")
        where = f"{name}[{key!r}]"
        if name == "domain" and value not in DOMAINS:
            raise LossguardError(f"{where}={value!r} is not known; use one of {', '.join(DOMAINS)}")
        if name != "domain" and not (name == "y_true_shape" and value is None):
            value = _shape(where, value)
        checked[key if isinstance(key, str) else int(key)] = value
    return checked


def _is_int(value: Any) -> bool:
    """An int, or an integer NumPy scalar (both have __index__); never a bool, float or str."""
    return not isinstance(value, bool) and hasattr(type(value), "__index__") \
        and not isinstance(value, (str, bytes))


@dataclasses.dataclass(frozen=True)
class Options:
    """What to probe and how; every field is a marker kwarg of the same name."""

    output_shape: Shape = (1,)
    y_true_shape: Shape | None = None
    y_pred_shape: Shape | None = None
    domain: str = "real"
    batch_size: int | None = None
    probes: tuple[str, ...] = ("default",)
    rtol: float | None = None
    atol: float | None = None
    strict: bool = False
    seed: int = 0
    backend: str = "auto"
    order: str = "auto"
    init: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    input_shape: InputShape | None = None
    compile: Mapping[str, Any] | None = None
    timeout: float | None = 60.0
    batch: Callable[..., Any] | None = None
    # Per-output values of PER_OUTPUT options, {option: {output name or index: value}}: given
    # as a dict in place of the option's value, over the plain value as every other output's.
    per_output: Mapping[str, Mapping[OutputKey, Any]] = dataclasses.field(default_factory=dict)

    @classmethod
    def names(cls) -> frozenset[str]:
        """The options a user may give (per_output is how per-output values are kept)."""
        return frozenset(f.name for f in dataclasses.fields(cls)) - {"per_output"}

    @classmethod
    def build(cls, base: Options | None = None, **kwargs: Any) -> Options:
        """Validate kwargs on top of `base`; unknown or malformed keys raise LossguardError."""
        known = cls.names()
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise LossguardError(
                f"unknown lossguard option(s) {', '.join(unknown)}; "
                f"known options are {', '.join(sorted(known))}"
            )
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)} if base else {}
        per_output = dict(fields.get("per_output", {}))
        for key in PER_OUTPUT:
            if isinstance(kwargs.get(key), Mapping):  # the plain value beneath stays
                per_output[key] = _per_output(key, kwargs.pop(key))
            elif key in kwargs:  # a plain value replaces an earlier layer's per-output one
                per_output.pop(key, None)
        fields.update(kwargs, per_output=per_output)
        for key in ("output_shape", "y_true_shape", "y_pred_shape"):
            if fields.get(key) is not None:
                fields[key] = _shape(key, fields[key])
        if fields.get("input_shape") is not None:
            fields["input_shape"] = _input_shape(fields["input_shape"])
        if isinstance(fields.get("probes"), str):
            fields["probes"] = (fields["probes"],)
        if "probes" in fields:
            fields["probes"] = tuple(fields["probes"])
        options = cls(**fields)
        options._validate()
        return options

    def classes(self) -> Options:
        """These options, once the domain is checked against the prediction's shape: by a
        loss's check, and by each output of a model, whose shapes come from the model (a plain
        domain='sparse' on a classifier is not checked against the default output_shape)."""
        if self.domain in ("one-hot", "sparse") and self.pred_shape[-1:] in ((), (1,)):
            raise LossguardError(
                f"domain={self.domain!r} needs a class axis: set output_shape=(C,) with C >= 2"
            )
        # Class ids as Keras's sparse losses take them: one per sample, or as a column.
        ids = self.pred_shape[:-1]
        if self.domain == "sparse" and self.true_shape not in (ids, (*ids, 1)):
            raise LossguardError(
                f"domain='sparse' needs y_true_shape == y_pred_shape[:-1] (class ids) or "
                f"y_pred_shape[:-1] + (1,) (ids as a column), got {self.true_shape} and "
                f"{self.pred_shape}"
            )
        return self

    def _validate(self) -> None:
        if not isinstance(self.strict, bool):
            raise LossguardError(f"strict={self.strict!r} must be True or False")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise LossguardError(f"seed={self.seed!r} must be an int >= 0")
        if not self.probes:
            raise LossguardError("probes=[] names no probe, so nothing would be checked; leave "
                                 "probes out for the default set, or name some, e.g. "
                                 "probes=['default', 'label-dtype']")
        if not all(isinstance(name, str) for name in self.probes):
            raise LossguardError(f"probes={self.probes!r} must be probe names, e.g. "
                                 "probes=['default', 'label-dtype']")
        if self.domain not in DOMAINS:
            raise LossguardError(
                f"domain={self.domain!r} is not known; use one of {', '.join(DOMAINS)}"
            )
        if self.backend not in BACKENDS:
            raise LossguardError(
                f"backend={self.backend!r} is not known; use one of {', '.join(BACKENDS)}"
            )
        if self.order not in ORDERS:
            raise LossguardError(
                f"order={self.order!r} is not known; use one of {', '.join(ORDERS)}"
            )
        if self.batch_size is not None:
            if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
                raise LossguardError(f"batch_size={self.batch_size!r} must be an int")
            if self.batch_size < 2 or self.batch_size in self.axes:
                raise LossguardError(
                    f"batch_size={self.batch_size} must be > 1 and differ from every axis of "
                    f"{self.true_shape} and {self.pred_shape}, or an outer broadcast can hide; "
                    "a prime such as 7 or 11 works"
                )
        size = self.probe_batch * max(math.prod(self.true_shape), math.prod(self.pred_shape))
        if size > MAX_ELEMENTS:
            raise LossguardError(
                f"canonical shapes {self.true_shape} / {self.pred_shape} at batch "
                f"{self.probe_batch} need {size} elements, over the limit of {MAX_ELEMENTS}; "
                "probe a smaller output_shape: broadcasting does not depend on size"
            )
        examples = {"init": "init={'units': 4}",
                    "compile": "compile={'optimizer': 'sgd', 'loss': 'mse'}"}
        for name, example in examples.items():
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise LossguardError(
                    f"{name}={value!r} must be a dict of keyword arguments, e.g. {example}"
                )
        if self.batch is not None and (isinstance(self.batch, type) or not callable(self.batch)):
            raise LossguardError(
                f"batch={self.batch!r} must be a function batch(x, y) -> data that builds a "
                "model step's data from lossguard's inputs and labels, e.g. "
                "batch=lambda x, y: {'obs': x, 'target': y}")
        for name in ("rtol", "atol", "timeout"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise LossguardError(f"{name}={value!r} must be a number >= 0")
        if self.timeout is not None and not self.timeout < MAX_TIMEOUT:
            raise LossguardError(f"timeout={self.timeout!r} must be a finite number of seconds "
                                 f"under {MAX_TIMEOUT:g}; timeout=0 turns the limit off")

    @property
    def pred_shape(self) -> Shape:
        """Per-sample prediction shape."""
        return self.y_pred_shape if self.y_pred_shape is not None else self.output_shape

    @property
    def true_shape(self) -> Shape:
        """Per-sample label shape: sparse labels drop the class axis."""
        if self.y_true_shape is not None:
            return self.y_true_shape
        return self.pred_shape[:-1] if self.domain == "sparse" else self.pred_shape

    @property
    def axes(self) -> set[int]:
        """Every per-sample axis length, which the batch size must avoid."""
        return set(self.true_shape) | set(self.pred_shape)

    @property
    def probe_batch(self) -> int:
        """The batch size in use: given, or the first prime that no axis equals."""
        if self.batch_size is not None:
            return self.batch_size
        return next(b for b in BATCH_CANDIDATES if b not in self.axes)

