"""The probe table (data, not branches) and the seeded arrays each probe is made of."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from typing import Literal

import numpy as np

from pytest_lossguard.caches import cached
from pytest_lossguard.errors import LossguardError
from pytest_lossguard.options import Options, Shape

Edit = Literal["keep", "drop-unit", "add-unit"]


@dataclasses.dataclass(frozen=True)
class Probe:
    """One row of design.md's probe table."""

    name: str
    origin: str
    y_true: Edit = "keep"
    y_pred: Edit = "keep"
    weights: bool = False
    label_dtype: bool = False
    coincident: bool = False
    default: bool = True


PROBES: tuple[Probe, ...] = (
    Probe(
        "labels-missing-unit-axis",
        "y = df['target'].values against a model ending in Dense(1)",
        y_true="drop-unit",
    ),
    Probe(
        "preds-missing-unit-axis",
        "model output squeezed or flattened, labels kept as (N, 1)",
        y_pred="drop-unit",
    ),
    Probe(
        "labels-extra-unit-axis",
        "masks (N, H, W, 1) against predictions (N, H, W)",
        y_true="add-unit",
    ),
    Probe(
        "preds-extra-unit-axis",
        "a Conv2D(1) output against masks (N, H, W)",
        y_pred="add-unit",
    ),
    Probe(
        "sample-weight-rank",
        "sample_weight given as (N,) and as (N, 1), which Keras treats alike",
        weights=True,
    ),
    Probe(
        "label-dtype",
        "integer or float64 labels straight from NumPy / pandas",
        label_dtype=True,
        default=False,
    ),
    Probe(
        "coincident-batch",
        "batch size equal to a per-sample axis, where a mismatch broadcasts instead of raising",
        coincident=True,
        default=False,
    ),
)
PROBE_NAMES = tuple(p.name for p in PROBES)
SHAPE_PROBES = tuple(p for p in PROBES if p.y_true != "keep" or p.y_pred != "keep")


def select(names: tuple[str, ...]) -> tuple[Probe, ...]:
    """The probes named, in table order; "default" stands for the default set."""
    unknown = sorted(set(names) - set(PROBE_NAMES) - {"default"})
    if unknown:
        raise LossguardError(
            f"unknown probe(s) {', '.join(unknown)}; choose from default, {', '.join(PROBE_NAMES)}"
        )
    wanted = set(names)
    return tuple(p for p in PROBES if p.name in wanted or (p.default and "default" in wanted))


def edit_shape(shape: Shape, edit: Edit) -> Shape | None:
    """A per-sample shape after a probe's edit; None when the edit is not defined."""
    if edit == "drop-unit":
        return shape[:-1] if shape[-1:] == (1,) else None
    if edit == "add-unit":
        return (*shape, 1)
    return shape


@dataclasses.dataclass(frozen=True)
class Inputs:
    """The arrays of one call: what the target receives, before backend conversion."""

    y_true: np.ndarray
    y_pred: np.ndarray
    sample_weight: np.ndarray | None = None

    @functools.cached_property
    def key(self) -> tuple[object, ...]:
        """Identity of a call: values derive from one seeded draw, so shapes and dtypes suffice."""
        weight = None if self.sample_weight is None else self.sample_weight.shape
        return (self.y_true.shape, self.y_true.dtype.char, self.y_pred.shape, weight)

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays in call order, sample_weight last when there is one."""
        weight = () if self.sample_weight is None else (self.sample_weight,)
        return (self.y_true, self.y_pred, *weight)


@dataclasses.dataclass(frozen=True)
class Case:
    """A concrete probe: the probe call, and the canonical call it must agree with."""

    probe: Probe
    inputs: Inputs
    canonical: Inputs
    label: str

    @property
    def symmetric(self) -> bool:
        """Neither side is the intended layout: whichever grows is the broadcast."""
        return self.probe.weights


def draw(options: Options, batch: int, ids: bool = False) -> Inputs:
    """Seeded canonical labels and predictions drawn near each other inside the domain. Class
    ids are float, as Keras's loss container hands them over, unless `ids` asks for int64 ones,
    as torch, JAX and NumPy code takes them (torch's CrossEntropyLoss refuses float ids)."""
    drawn = _draw(options.seed, batch, options.true_shape, options.pred_shape, options.domain)
    if not ids or options.domain != "sparse":
        return drawn
    labels = drawn.y_true.astype(np.int64)
    labels.setflags(write=False)
    return dataclasses.replace(drawn, y_true=labels)


@cached(maxsize=256)
def _draw(seed: int, batch: int, true_sample: Shape, pred_sample: Shape, domain: str) -> Inputs:
    """The draw, cached: every target with the same options gets the same (read-only) arrays."""
    rng = np.random.default_rng([seed, batch])
    true_shape = (batch, *true_sample)
    pred_shape = (batch, *pred_sample)
    if domain in ("one-hot", "sparse"):
        classes = pred_shape[-1]
        ids = rng.integers(0, classes, size=pred_shape[:-1])
        one_hot = np.eye(classes)[ids]
        noise = rng.uniform(size=pred_shape)
        y_pred = 0.7 * one_hot + 0.3 * noise / noise.sum(axis=-1, keepdims=True)
        y_true = ids.reshape(true_shape) if domain == "sparse" else one_hot
        return _inputs(y_true, y_pred)
    if domain == "real":
        y_true = rng.normal(size=true_shape)
        y_pred = _base(y_true, pred_shape, rng) + 0.1 * rng.normal(size=pred_shape)
    elif domain == "probability":
        y_true = rng.uniform(0.1, 0.9, size=true_shape)
        y_pred = _base(y_true, pred_shape, rng) + 0.05 * rng.normal(size=pred_shape)
    else:
        y_true = rng.integers(0, 2, size=true_shape).astype(float)
        y_pred = np.abs(_base(y_true, pred_shape, rng) - rng.uniform(0.05, 0.35, size=pred_shape))
    if domain != "real":
        y_pred = np.clip(y_pred, 0.01, 0.99)
    return _inputs(y_true, y_pred)


def _base(y_true: np.ndarray, pred_shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """The labels laid out as predictions, or an independent draw when they cannot line up."""
    try:
        return np.broadcast_to(y_true, pred_shape)
    except ValueError:
        return rng.uniform(size=pred_shape)


def _inputs(y_true: np.ndarray, y_pred: np.ndarray) -> Inputs:
    # The loss container hands a loss float labels in the prediction dtype.
    arrays = y_true.astype(np.float32), y_pred.astype(np.float32)
    for array in arrays:
        array.setflags(write=False)  # shared by the cache
    return Inputs(*arrays)


def cases(options: Options, takes_weights: bool, ids: bool = False) -> Iterator[Case]:
    """Every applicable probe of the selected set, built from the canonical draw (class ids
    as int64 with `ids`, see `draw`)."""
    selected = select(options.probes)
    batch = options.probe_batch
    canonical = draw(options, batch, ids)
    for probe in selected:
        if probe.weights:
            if takes_weights:
                yield _weights_case(probe, canonical, options)
        elif probe.label_dtype:
            yield _dtype_case(probe, canonical, options)
        elif probe.coincident:
            yield from _coincident_cases(probe, options, ids)
        else:
            case = _shape_case(probe, probe, canonical, options)
            if case is not None:
                yield case


def _shape_case(row: Probe, probe: Probe, canonical: Inputs, options: Options) -> Case | None:
    true_shape = edit_shape(options.true_shape, probe.y_true)
    pred_shape = edit_shape(options.pred_shape, probe.y_pred)
    if true_shape is None or pred_shape is None:
        return None
    batch = canonical.y_true.shape[0]
    inputs = Inputs(
        canonical.y_true.reshape((batch, *true_shape)),
        canonical.y_pred.reshape((batch, *pred_shape)),
    )
    label = row.name if row is probe else f"{row.name} ({probe.name}, B={batch})"
    # A coincident-batch case keeps its row's name and flags but the shape probe's edits,
    # which say which side a fix must reshape.
    edited = dataclasses.replace(row, y_true=probe.y_true, y_pred=probe.y_pred)
    return Case(edited, inputs, canonical, label)


def _weights_case(probe: Probe, canonical: Inputs, options: Options) -> Case:
    rng = np.random.default_rng([options.seed, canonical.y_true.shape[0], 1])
    weights = np.asarray(rng.uniform(0.5, 1.5, size=canonical.y_true.shape[0]), np.float32)
    column = dataclasses.replace(canonical, sample_weight=weights[:, None])
    flat = dataclasses.replace(canonical, sample_weight=weights)
    return Case(probe, column, flat, probe.name)


def _dtype_case(probe: Probe, canonical: Inputs, options: Options) -> Case:
    integral = options.domain in ("binary", "one-hot", "sparse")
    dtype = np.int64 if integral else np.float64
    inputs = dataclasses.replace(canonical, y_true=canonical.y_true.astype(dtype))
    return Case(probe, inputs, canonical, f"{probe.name} (y_true {np.dtype(dtype).name})")


def _coincident_cases(row: Probe, options: Options, ids: bool) -> Iterator[Case]:
    batch = max(options.axes)
    if batch < 2:
        return
    canonical = draw(options, batch, ids)
    for probe in SHAPE_PROBES:
        case = _shape_case(row, probe, canonical, options)
        if case is not None:
            yield case
