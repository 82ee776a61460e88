"""Property-based tests (issue 6): generated losses against an independent NumPy oracle.

Losses are built from a small grammar of element-wise ops (keras.ops, tf or NumPy) and a
reduction. Three families:

- aligned: labels are aligned to predictions first (a reshape, or Keras's own kind of
  squeeze / expand); never flagged, whatever the seed, domain, canonical shape or batch;
- unaligned: the same losses without alignment. The oracle below re-derives lossguard's probe
  table (docs/probes-and-verdicts.md), draws its own arrays of the probe shapes, evaluates loss in
  float64 NumPy, unaligned against the canonical layout. It predicts, per probe, `raises`
  (NumPy refuses the broadcast), `differs` (a broadcast that changes the reduced value) or
  `same` (it broadcasts, or not, without changing the value: a loss of y_pred alone, or
  mean(a(y_true) + b(y_pred)), whose mean a broadcast does not move); lossguard must agree;
- intended rank differences: sparse labels against class probabilities, and pairwise losses
  over aligned errors, whose growth the canonical layout shows too; never flagged.

The hypothesis profile (derandomized, no database) is registered in conftest.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import event, example, given, note
from hypothesis import strategies as st

from pytest_lossguard import check

# ---------------------------------------------------------------------------------------------
# The grammar. An expression is a nested tuple: (leaf,), (unary, e), ("scale", c, e),
# (binary, e1, e2). Each op has one implementation per library.

LIBS = ("numpy", "keras", "tf")
K, T = keras.ops, tf.math

LEAVES: dict[str, dict[str, Callable[[Any, Any], Any]]] = {
    "y_true": {lib: (lambda t, p: t) for lib in LIBS},
    "y_pred": {lib: (lambda t, p: p) for lib in LIBS},
    # Only where the domain keeps them finite: y_pred in [0.01, 0.99], y_true in [0, 1].
    "log(y_pred)": {"numpy": lambda t, p: np.log(p), "keras": lambda t, p: K.log(p),
                    "tf": lambda t, p: T.log(p)},
    "log(1-y_pred)": {"numpy": lambda t, p: np.log1p(-p), "keras": lambda t, p: K.log1p(-p),
                      "tf": lambda t, p: T.log1p(-p)},
    "1-y_true": {"numpy": lambda t, p: 1.0 - t, "keras": lambda t, p: K.subtract(1.0, t),
                 "tf": lambda t, p: tf.subtract(1.0, t)},
}
DOMAIN_LEAVES = {
    "real": ("y_true", "y_pred"),
    "probability": tuple(LEAVES),
    "binary": tuple(LEAVES),
    "one-hot": tuple(LEAVES),
}
UNARY: dict[str, dict[str, Callable[[Any], Any]]] = {
    "neg": {"numpy": np.negative, "keras": K.negative, "tf": tf.negative},
    "abs": {"numpy": np.abs, "keras": K.abs, "tf": tf.abs},
    "square": {"numpy": np.square, "keras": K.square, "tf": tf.square},
    "log1p_abs": {"numpy": lambda x: np.log1p(np.abs(x)), "keras": lambda x: K.log1p(K.abs(x)),
                  "tf": lambda x: T.log1p(tf.abs(x))},
    "exp_neg_abs": {"numpy": lambda x: np.exp(-np.abs(x)), "keras": lambda x: K.exp(-K.abs(x)),
                    "tf": lambda x: tf.exp(-tf.abs(x))},
    "max0": {"numpy": lambda x: np.maximum(x, 0.0), "keras": lambda x: K.maximum(x, 0.0),
             "tf": lambda x: tf.maximum(x, 0.0)},
    "min0": {"numpy": lambda x: np.minimum(x, 0.0), "keras": lambda x: K.minimum(x, 0.0),
             "tf": lambda x: tf.minimum(x, 0.0)},
}
BINARY: dict[str, dict[str, Callable[[Any, Any], Any]]] = {
    "add": {"numpy": np.add, "keras": K.add, "tf": tf.add},
    "sub": {"numpy": np.subtract, "keras": K.subtract, "tf": tf.subtract},
    "mul": {"numpy": np.multiply, "keras": K.multiply, "tf": tf.multiply},
}
CONSTANTS = (-1.5, -0.5, 0.5, 2.0)


def _size(lib: str, x: Any) -> Any:
    return {"numpy": lambda: x.size, "keras": lambda: K.cast(K.size(x), x.dtype),
            "tf": lambda: tf.cast(tf.size(x), x.dtype)}[lib]()


def _batch(lib: str, y_pred: Any, x: Any) -> Any:
    return {"numpy": lambda: np.shape(y_pred)[0], "keras": lambda: K.cast(K.shape(y_pred)[0],
            x.dtype), "tf": lambda: tf.cast(tf.shape(y_pred)[0], x.dtype)}[lib]()


def _mean(lib: str, x: Any, axis: int | None = None) -> Any:
    return {"numpy": np.mean, "keras": K.mean, "tf": tf.reduce_mean}[lib](x, axis=axis)


def _sum(lib: str, x: Any) -> Any:
    return {"numpy": np.sum, "keras": K.sum, "tf": tf.reduce_sum}[lib](x)


# What the loss returns; lossguard reduces any non-scalar result by its mean.
REDUCTIONS: dict[str, Callable[[str, Any, Any], Any]] = {
    "none": lambda lib, e, p: e,
    "mean_last": lambda lib, e, p: _mean(lib, e, -1),
    "mean_last_then_batch": lambda lib, e, p: _mean(lib, _mean(lib, e, -1)),
    "mean": lambda lib, e, p: _mean(lib, e),
    "sum_over_size": lambda lib, e, p: _sum(lib, e) / _size(lib, e),
    # sum / batch size: the one reduction under which a separable loss changes when it grows
    "sum_over_batch": lambda lib, e, p: _sum(lib, e) / _batch(lib, p, e),
}


def _keras_style(squeeze: Callable[..., Any], expand: Callable[..., Any]) -> Callable[..., Any]:
    """Keras 3's squeeze_or_expand_to_same_rank, written out on static shapes."""

    def align(t: Any, p: Any) -> tuple[Any, Any]:
        t_rank, p_rank = len(t.shape), len(p.shape)
        if t_rank == p_rank + 1 and t.shape[-1] == 1:
            return (t, expand(p, -1)) if p_rank == 1 else (squeeze(t, -1), p)
        if p_rank == t_rank + 1 and p.shape[-1] == 1:
            return (expand(t, -1), p) if t_rank == 1 else (t, squeeze(p, -1))
        return t, p

    return align


ALIGNMENTS: dict[str, Callable[[Any, Any], tuple[Any, Any]]] = {
    "keras.ops.reshape": lambda t, p: (K.reshape(t, K.shape(p)), p),
    "tf.reshape": lambda t, p: (tf.reshape(t, tf.shape(p)), p),
    "np.reshape": lambda t, p: (np.reshape(t, np.shape(p)), p),
    "keras.ops.squeeze/expand_dims": _keras_style(K.squeeze, K.expand_dims),
    "tf.squeeze/expand_dims": _keras_style(tf.squeeze, tf.expand_dims),
    "np.squeeze/expand_dims": _keras_style(np.squeeze, np.expand_dims),
}
LIB_ALIGNMENTS = {
    "numpy": ("np.reshape", "np.squeeze/expand_dims"),
    "keras": ("keras.ops.reshape", "tf.reshape", "keras.ops.squeeze/expand_dims"),
    "tf": ("tf.reshape", "keras.ops.reshape", "tf.squeeze/expand_dims"),
}
NUMPY_ALIGNMENT = {name: "np.squeeze/expand_dims" if "squeeze" in name else "np.reshape"
                   for name in ALIGNMENTS}


def evaluate(expr: tuple[Any, ...], lib: str, t: Any, p: Any) -> Any:
    head, *rest = expr
    if head in LEAVES:
        return LEAVES[head][lib](t, p)
    if head == "scale":
        return rest[0] * evaluate(rest[1], lib, t, p)
    if head in UNARY:
        return UNARY[head][lib](evaluate(rest[0], lib, t, p))
    return BINARY[head][lib](evaluate(rest[0], lib, t, p), evaluate(rest[1], lib, t, p))


def show(expr: tuple[Any, ...]) -> str:
    head, *rest = expr
    if head in LEAVES:
        return head
    if head == "scale":
        return f"{rest[0]} * {show(rest[1])}"
    return f"{head}({', '.join(show(e) for e in rest)})"


@dataclasses.dataclass(frozen=True)
class Spec:
    """One generated loss and the options it is checked with."""

    expr: tuple[Any, ...]
    reduction: str
    lib: str = "tf"
    alignment: str | None = None
    domain: str = "real"
    shape: tuple[int, ...] = (1,)
    batch: int | None = None
    seed: int = 0
    backend: str = "auto"

    def __repr__(self) -> str:
        return (f"Spec({self.reduction}({show(self.expr)}), lib={self.lib}, "
                f"alignment={self.alignment}, domain={self.domain}, shape={self.shape}, "
                f"batch={self.batch}, seed={self.seed}, backend={self.backend})")

    def loss(self, lib: str | None = None) -> Callable[[Any, Any], Any]:
        lib = lib or self.lib
        alignment = self.alignment
        if alignment is not None and lib == "numpy":
            alignment = NUMPY_ALIGNMENT[alignment]
        expr, reduce = self.expr, REDUCTIONS[self.reduction]

        def generated_loss(y_true: Any, y_pred: Any) -> Any:
            if alignment is not None:
                y_true, y_pred = ALIGNMENTS[alignment](y_true, y_pred)
            return reduce(lib, evaluate(expr, lib, y_true, y_pred), y_pred)

        return generated_loss

    def options(self) -> dict[str, Any]:
        options = {"output_shape": self.shape, "domain": self.domain, "seed": self.seed,
                   "backend": "numpy" if self.lib == "numpy" else self.backend}
        if self.batch is not None:
            options["batch_size"] = self.batch
        return options

    def check(self) -> Any:
        return check(self.loss(), **self.options())


# ---------------------------------------------------------------------------------------------
# The oracle: the probe table as docs/probes-and-verdicts.md states it, own draws, float64 NumPy.

DRAWS = 12  # independent draws per probe; a verdict must hold on every one of them


def probe_table(shape: tuple[int, ...], batch: int) -> list[tuple[str, tuple, tuple]]:
    """(probe, y_true shape, y_pred shape) per default shape probe, docs/probes-and-verdicts.md."""
    canonical = (batch, *shape)
    rows = []
    if shape[-1] == 1:
        rows.append(("labels-missing-unit-axis", canonical[:-1], canonical))
        rows.append(("preds-missing-unit-axis", canonical, canonical[:-1]))
    rows.append(("labels-extra-unit-axis", (*canonical, 1), canonical))
    rows.append(("preds-extra-unit-axis", canonical, (*canonical, 1)))
    return rows


def default_batch(shape: tuple[int, ...]) -> int:
    """docs/probes-and-verdicts.md: 7 unless an axis is 7 (then the next prime no axis equals)."""
    return next(b for b in (7, 11, 13, 17) if b not in shape)


def own_draw(domain: str, rng: np.random.Generator, shape: tuple) -> tuple[np.ndarray, ...]:
    """Labels and predictions near each other inside the domain (float64)."""
    if domain == "real":
        t = rng.normal(size=shape)
        return t, t + 0.1 * rng.normal(size=shape)
    if domain == "probability":
        t = rng.uniform(0.1, 0.9, size=shape)
        return t, np.clip(t + 0.05 * rng.normal(size=shape), 0.01, 0.99)
    if domain == "binary":
        t = rng.integers(0, 2, size=shape).astype(float)
        return t, np.clip(np.abs(t - rng.uniform(0.05, 0.35, size=shape)), 0.01, 0.99)
    assert domain == "one-hot"
    classes = shape[-1]
    t = np.eye(classes)[rng.integers(0, classes, size=shape[:-1])]
    noise = rng.uniform(size=shape)
    return t, 0.7 * t + 0.3 * noise / noise.sum(axis=-1, keepdims=True)


def compare(got: float, ref: float) -> str:
    """`differs` ten times beyond lossguard's float32 tolerance (rtol 1e-4, atol 1e-6), `same`
    to float64 rounding, `unclear` in between."""
    gap = abs(got - ref)
    if gap > max(1e-5, 1e-3 * max(abs(got), abs(ref))):
        return "differs"
    if gap <= 1e-9 * (1.0 + abs(ref)):
        return "same"
    return "unclear"


def oracle(spec: Spec) -> dict[str, str]:
    """Per probe: raises, differs, same, or unclear (its draws disagree: data-dependent).

    The reference is the canonical layout. lossguard also accepts the Keras-aligned call, but
    for these losses (element-wise, then a reduction linear in the elements) Keras's squeeze or
    expand of a unit axis gives the canonical value, so one reference serves for both.
    """
    loss = spec.loss("numpy")
    batch = spec.batch or default_batch(spec.shape)
    draws = [own_draw(spec.domain, np.random.default_rng([spec.seed, k]), (batch, *spec.shape))
             for k in range(DRAWS)]
    verdicts = {}
    with np.errstate(all="raise"):  # the grammar stays finite on its domains; prove it
        references = [float(np.mean(loss(t, p))) for t, p in draws]
        for name, true_shape, pred_shape in probe_table(spec.shape, batch):
            seen = set()
            for (t, p), reference in zip(draws, references, strict=True):
                try:
                    got = float(np.mean(loss(t.reshape(true_shape), p.reshape(pred_shape))))
                except ValueError:  # operands could not be broadcast together
                    seen.add("raises")
                else:
                    seen.add(compare(got, reference))
            verdicts[name] = seen.pop() if len(seen) == 1 else "unclear"
    return verdicts


def assert_agrees(report: Any, expected: dict[str, str]) -> None:
    """Every probe the docs' probe table runs was run, and each verdict is the predicted one."""
    assert [f.probe for f in report.findings] == list(expected), str(report)
    for finding in report.findings:
        want = expected[finding.probe]
        if want == "raises":
            assert finding.verdict == "raises", str(report)
        elif want == "differs":
            # Every difference here comes from an op that grows: a broadcast, located.
            assert finding.verdict == "broadcast", str(report)
        elif want == "same":
            assert finding.verdict == "safe", str(report)
    if "unclear" not in expected.values():
        assert report.ok == ("differs" not in expected.values()), str(report)


# ---------------------------------------------------------------------------------------------
# Strategies.

SHAPES = ((1,), (3,), (2, 1), (4, 3), (1, 3), (1, 1))
CLASS_SHAPES = ((3,), (4, 3), (1, 3))  # one-hot needs a class axis of at least 2


def _sides(expr: tuple[Any, ...]) -> set[str]:
    """Which inputs an expression reads: "true", "pred" or both."""
    if expr[0] in LEAVES:
        return {"true" if "true" in expr[0] else "pred"}
    return set().union(*(_sides(e) for e in expr[1:] if isinstance(e, tuple)))


def _combine(op: str, a: tuple[Any, ...], b: tuple[Any, ...], swap: bool) -> tuple[Any, ...]:
    return (op, b, a) if swap else (op, a, b)


def _extend(sub: st.SearchStrategy, other: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """One more op on top of `sub`: unary, scaled, or combined with `other` (default `sub`)."""
    return st.one_of(
        st.tuples(st.sampled_from(tuple(UNARY)), sub),
        st.tuples(st.just("scale"), st.sampled_from(CONSTANTS), sub),
        st.builds(_combine, st.sampled_from(tuple(BINARY)), sub, sub if other is None else other,
                  st.booleans()),
    )


def expressions(domain: str) -> st.SearchStrategy[tuple[Any, ...]]:
    """Any expression (often of one input only), or, mostly, one that mixes y_true with
    y_pred: a binary op on a labels-only and a predictions-only part, then more ops on top.
    Both kinds include separable sums, whose mean a broadcast leaves unchanged."""
    names = DOMAIN_LEAVES[domain]

    def leaves(which: str = "") -> st.SearchStrategy[tuple[Any, ...]]:
        return st.sampled_from([n for n in names if which in n]).map(lambda n: (n,))

    anything = st.recursive(leaves(), _extend, max_leaves=3)
    mixed = st.builds(_combine, st.sampled_from(("add", "sub", "mul", "mul")),
                      st.recursive(leaves("true"), _extend, max_leaves=3),
                      st.recursive(leaves("pred"), _extend, max_leaves=3), st.booleans())

    def on_top(sub: st.SearchStrategy) -> st.SearchStrategy:
        return _extend(sub, anything)

    wrapped = st.one_of(
        mixed,
        st.tuples(st.sampled_from(tuple(UNARY)), mixed),
        st.recursive(mixed, on_top, max_leaves=3),
    )
    return st.one_of(anything, wrapped, wrapped, wrapped)


@st.composite
def specs(draw: st.DrawFn, aligned: bool, *, libs: tuple[str, ...] = LIBS,
          domains: tuple[str, ...] = ("real", "probability", "binary", "one-hot")) -> Spec:
    domain = draw(st.sampled_from(domains))
    shapes = CLASS_SHAPES if domain == "one-hot" else SHAPES
    if not aligned:  # favour the shapes whose probes broadcast rather than raise
        shapes = (*shapes, *[s for s in shapes if s[0] == 1] * 2)
    shape = draw(st.sampled_from(shapes))
    if aligned:
        # Anything options accept: > 1 and no per-sample axis (probes add only unit axes).
        batches = [None, *(b for b in range(2, 14) if b not in shape)]
    else:
        # The oracle's draws are not lossguard's. With few discrete labels lossguard's draw
        # could be degenerate (every label equal: nothing for a broadcast to mix) where ours
        # are not, so discrete domains get batches where that is vanishingly rare.
        batches = [11, 13] if domain in ("binary", "one-hot") else [None, 5, 7, 11, 13]
    lib = draw(st.sampled_from(libs))
    return Spec(
        expr=draw(expressions(domain)),
        reduction=draw(st.sampled_from(tuple(REDUCTIONS))),
        lib=lib,
        alignment=draw(st.sampled_from(LIB_ALIGNMENTS[lib])) if aligned else None,
        domain=domain,
        shape=shape,
        batch=draw(st.sampled_from(batches)),
        seed=draw(st.integers(0, 2**16)),
        backend=draw(st.sampled_from(("auto", "tensorflow", "keras"))),
    )


NAIVE_MSE = ("square", ("sub", ("y_true",), ("y_pred",)))
SEPARABLE = ("add", ("abs", ("y_true",)), ("square", ("y_pred",)))


# ---------------------------------------------------------------------------------------------
# Properties.


@given(spec=specs(aligned=True))
@example(spec=Spec(NAIVE_MSE, "mean", alignment="tf.reshape"))
@example(spec=Spec(NAIVE_MSE, "none", lib="keras", alignment="keras.ops.squeeze/expand_dims",
                   shape=(2, 1), batch=3, backend="keras"))
def test_aligned_generated_losses_are_never_flagged(spec):
    expected = oracle(spec)
    # The oracle agrees that alignment makes every probe the canonical computation.
    assert set(expected.values()) == {"same"}, expected
    report = spec.check()
    note(str(report))
    assert report.ok, str(report)
    assert_agrees(report, expected)


@given(spec=specs(aligned=False))
@example(spec=Spec(NAIVE_MSE, "mean"))  # flagged on every probe
@example(spec=Spec(NAIVE_MSE, "mean", shape=(4, 3)))  # every probe raises: loud, passes
@example(spec=Spec(SEPARABLE, "mean_last", lib="keras"))  # grows, but the mean is unchanged
@example(spec=Spec(SEPARABLE, "sum_over_batch", lib="numpy"))  # grows, and the sum shows it
@example(spec=Spec(("abs", ("y_pred",)), "none", shape=(1, 3)))  # no y_true: nothing to mix
def test_unaligned_generated_losses_are_flagged_exactly_when_the_oracle_says(spec):
    expected = oracle(spec)
    event(f"unaligned: {'flag expected' if 'differs' in expected.values() else 'no flag'}")
    event(f"unaligned: reads {' and '.join(sorted(_sides(spec.expr)))}")
    if "unclear" in expected.values():
        event("unaligned: oracle unclear on a probe")
    report = spec.check()
    note(str(report))
    for finding in report.findings:
        event(f"{finding.probe}: oracle {expected.get(finding.probe)}, lossguard {finding.verdict}")
    assert_agrees(report, expected)


def pairwise(spec: Spec, flatten: bool, pair: str, reduce: bool) -> Callable[..., Any]:
    """d = x[:, None] - x[None, :] over the spec's element-wise errors (its alignment, if any)."""

    def per_sample(x):
        if flatten:
            return K.reshape(x, (-1,))
        return K.mean(K.reshape(x, (K.shape(x)[0], -1)), axis=1)

    def pairwise_loss(y_true, y_pred):
        if spec.alignment is not None:
            y_true, y_pred = ALIGNMENTS[spec.alignment](y_true, y_pred)
        if pair == "ranking":
            t, p = per_sample(y_true), per_sample(y_pred)
            order = K.sign(t[:, None] - t[None, :])
            d = K.maximum(-order * (p[:, None] - p[None, :]), 0.0)
        else:
            x = per_sample(evaluate(spec.expr, spec.lib, y_true, y_pred))
            d = UNARY[pair]["keras"](x[:, None] - x[None, :])
        return K.mean(d) if reduce else d

    return pairwise_loss


@given(
    spec=specs(aligned=True, libs=("keras", "tf"), domains=("real", "probability")),
    flatten=st.booleans(),
    pair=st.sampled_from(("abs", "square", "max0", "log1p_abs", "ranking")),
    reduce=st.booleans(),
)
def test_pairwise_losses_on_aligned_inputs_are_never_flagged(spec, flatten, pair, reduce):
    """Growth that the canonical layout shows too is the author's intent."""
    report = check(pairwise(spec, flatten, pair, reduce), **spec.options())
    note(str(report))
    assert report.ok, str(report)
    batch = spec.batch or default_batch(spec.shape)
    assert [f.probe for f in report.findings] == [r[0] for r in probe_table(spec.shape, batch)]
    assert {f.verdict for f in report.findings} == {"safe"}, str(report)


def _ids(lib: str, y_true: Any, y_pred: Any, aligned: bool) -> Any:
    """Class ids, laid out as the predictions' leading axes when aligned (the sparse alignment)."""
    if lib == "tf":
        ids = tf.reshape(y_true, tf.shape(y_pred)[:-1]) if aligned else y_true
        return tf.cast(ids, tf.int32)
    ids = K.reshape(y_true, K.shape(y_pred)[:-1]) if aligned else y_true
    return K.cast(ids, "int32")


SPARSE_LOSSES: dict[str, Callable[[Any, Any, bool], Any]] = {
    "keras.ops.take_along_axis": lambda t, p, a: -K.log(K.squeeze(
        K.take_along_axis(p, K.expand_dims(_ids("keras", t, p, a), -1), axis=-1), -1)),
    "tf.gather(batch_dims)": lambda t, p, a: -T.log(tf.gather(
        p, _ids("tf", t, p, a), batch_dims=len(p.shape) - 1)),
    "keras.ops.one_hot": lambda t, p, a: -K.sum(
        K.one_hot(_ids("keras", t, p, a), K.shape(p)[-1]) * K.log(p), axis=-1),
    "tf.one_hot + log_softmax": lambda t, p, a: -tf.reduce_sum(
        tf.one_hot(_ids("tf", t, p, a), tf.shape(p)[-1]) * tf.nn.log_softmax(p), axis=-1),
    "keras.losses.sparse_categorical_crossentropy":
        lambda t, p, a: keras.losses.sparse_categorical_crossentropy(t, p),
}


def sparse(form: str, reduction: str, aligned: bool = True) -> Callable[..., Any]:
    lib = "tf" if form.startswith("tf") else "keras"

    def sparse_loss(y_true, y_pred):
        return REDUCTIONS[reduction](lib, SPARSE_LOSSES[form](y_true, y_pred, aligned), y_pred)

    return sparse_loss


@given(
    form=st.sampled_from(tuple(SPARSE_LOSSES)),
    classes=st.sampled_from((2, 3, 5)),
    leading=st.sampled_from(((), (1,), (4,))),
    reduction=st.sampled_from(("none", "mean", "sum_over_batch")),
    batch=st.sampled_from((None, 2, 3, 7, 11)),
    seed=st.integers(0, 2**16),
)
def test_sparse_labels_against_class_probabilities_are_never_flagged(
        form, classes, leading, reduction, batch, seed):
    """y_true_shape = S, y_pred_shape = S + (C,): the rank difference is the intent."""
    true_shape, pred_shape = leading, (*leading, classes)
    if batch in pred_shape:
        batch = None
    options = {"domain": "sparse", "y_true_shape": true_shape, "y_pred_shape": pred_shape,
               "seed": seed, **({} if batch is None else {"batch_size": batch})}
    report = check(sparse(form, reduction), **options)
    note(str(report))
    assert report.ok, str(report)
    verdicts = {f.probe: f.verdict for f in report.findings}
    # No preds-missing probe: the class axis is never a unit axis.
    expected = ["labels-extra-unit-axis", "preds-extra-unit-axis"]
    if leading == (1,):
        expected.insert(0, "labels-missing-unit-axis")
    assert list(verdicts) == expected, str(report)
    # Labels that gain a unit axis (or lose the unit leading one) are still class ids in the
    # same layout: safe, not merely loud. Keras's own loss refuses (7,) ids against (7, 1, C).
    assert verdicts["labels-extra-unit-axis"] == "safe", str(report)
    if leading == (1,) and "keras.losses" not in form:
        assert verdicts["labels-missing-unit-axis"] == "safe", str(report)
    assert set(verdicts.values()) <= {"safe", "raises"}, str(report)


# ---------------------------------------------------------------------------------------------
# The oracle discriminates: hand-picked near-misses on both sides of each line it draws.


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (Spec(NAIVE_MSE, "mean"), "differs"),
        (Spec(NAIVE_MSE, "mean", alignment="tf.reshape"), "same"),
        (Spec(NAIVE_MSE, "mean", shape=(3,)), "raises"),
        (Spec(SEPARABLE, "mean_last"), "same"),
        (Spec(SEPARABLE, "sum_over_batch"), "differs"),
        (Spec(("mul", ("y_true",), ("y_pred",)), "mean", lib="keras"), "differs"),
        (Spec(("square", ("y_pred",)), "sum_over_size"), "same"),
        # zero on every draw, broadcast or not: -|y_true - y_pred| clipped at 0
        (Spec(("max0", ("neg", ("abs", ("sub", ("y_true",), ("y_pred",))))), "none"), "same"),
    ],
    ids=repr,
)
def test_oracle_discriminates_and_lossguard_agrees(spec, expected):
    verdicts = oracle(spec)
    if expected == "raises":
        assert set(verdicts.values()) == {"raises"}, verdicts
    elif expected == "differs":
        assert "differs" in verdicts.values(), verdicts
    else:
        assert set(verdicts.values()) <= {"same", "raises"}, verdicts
    report = spec.check()
    assert_agrees(report, verdicts)
    assert report.ok == (expected != "differs"), str(report)


def test_oracle_reports_unclear_where_its_draws_disagree():
    """Two binary labels are all equal on about half the draws: then a broadcast mixes nothing.
    That is why the unaligned property gives discrete domains batches of 11 or more."""
    spec = Spec(("mul", ("y_true",), ("y_pred",)), "mean", domain="binary", batch=2)
    assert oracle(spec)["labels-missing-unit-axis"] == "unclear"
    assert oracle(dataclasses.replace(spec, batch=13))["labels-missing-unit-axis"] == "differs"
    # and a loss that differs only on draws where labels of both signs meet is clear-cut
    spec = Spec(("min0", ("mul", ("y_true",), ("y_pred",))), "mean", domain="probability")
    assert set(oracle(spec).values()) == {"same"}  # all positive: min0 is zero everywhere
    assert "differs" in oracle(dataclasses.replace(spec, domain="real")).values()


def test_sides_reads_the_leaves():
    assert _sides(NAIVE_MSE) == _sides(SEPARABLE) == {"true", "pred"}
    assert _sides(("scale", 2.0, ("abs", ("log(1-y_pred)",)))) == {"pred"}


@pytest.mark.parametrize("form", ["keras.ops.one_hot", "tf.one_hot + log_softmax"])
def test_sparse_near_miss_unaligned_ids_are_flagged(form):
    """one_hot of (7, 1) ids is (7, 1, C): against (7, C) it broadcasts to (7, 7, C)."""
    assert check(sparse(form, "mean"), domain="sparse", output_shape=(3,)).ok
    report = check(sparse(form, "mean", aligned=False), domain="sparse", output_shape=(3,))
    assert not report.ok
    assert {f.probe: f.verdict for f in report.findings}["labels-extra-unit-axis"] == "broadcast"


def test_pairwise_near_miss_on_unaligned_inputs_is_flagged():
    """The same pairwise loss over y_true - y_pred without alignment: (7,) - (7, 1) grows."""
    aligned = Spec(("sub", ("y_true",), ("y_pred",)), "none", alignment="tf.reshape")
    assert check(pairwise(aligned, True, "abs", True)).ok
    report = check(pairwise(dataclasses.replace(aligned, alignment=None), True, "abs", True))
    assert not report.ok
    assert {f.verdict for f in report.failures} == {"broadcast"}, str(report)
