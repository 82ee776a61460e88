"""NumPy losses and scikit-learn metrics: a number is a result, location survives np.asarray and
in-place arithmetic, and sklearn.metrics are judged like any other metric. Each verdict is
checked against a differential computation written here: the same metric on the probe's
shapes and on the aligned shapes, by hand."""

import inspect
import os

import numpy as np
import pytest
from sklearn import metrics

from pytest_lossguard import check


def line_of(fn, text):
    lines, start = inspect.getsourcelines(fn)
    offset = next(i for i, line in enumerate(lines) if text in line)
    return f"{os.path.relpath(inspect.getsourcefile(fn))}:{start + offset}"


def float_mse(y_true, y_pred):
    return float(np.mean((y_true - y_pred) ** 2))


def numpy_scalar_mse(y_true, y_pred):
    return np.float64(np.mean((y_true - y_pred) ** 2))


def zero_d_mse(y_true, y_pred):
    return np.array(np.mean((y_true - y_pred) ** 2))


def int_count(y_true, y_pred):
    return int(np.sum(np.abs(y_true - y_pred) < 0.05))


@pytest.mark.parametrize("loss", [float_mse, numpy_scalar_mse, zero_d_mse, int_count])
def test_a_number_is_a_0d_result_judged_and_located(loss):
    report = check(loss)
    assert report.error is None, str(report)
    assert report.counts()["broadcast"] == 4
    first = report.failures[0]
    assert first.result_shape == () and first.reference_shape == ()
    assert first.location.where == line_of(loss, "y_true - y_pred")


def test_the_target_line_says_numpy_is_fed_arrays_and_torch_tensors():
    import torch

    def torch_mse(y_true, y_pred):
        return torch.mean((y_true - y_pred) ** 2)

    assert "(function, numpy arrays, labels first, reference:" in str(check(float_mse))
    assert "(function, torch tensors, labels first, reference:" in str(check(torch_mse))


def aligned_float_mse(y_true, y_pred):
    return float(np.mean((np.reshape(y_true, np.shape(y_pred)) - y_pred) ** 2))


def test_a_number_from_aligned_code_is_safe():
    report = check(aligned_float_mse)
    assert report.ok and report.counts()["safe"] == 4


@pytest.mark.parametrize(("returned", "words"), [
    (None, "returned None (NoneType), not a number"),
    ("0.5", "returned '0.5' (str), not a number"),
    (True, "returned bool of dtype bool; a loss or metric must return a real-valued"),
    (1j, "returned complex of dtype complex128"),
])
def test_a_result_that_is_no_real_number_stays_an_error_naming_the_fix(returned, words):
    def constant(y_true, y_pred):
        return returned

    report = check(constant)
    assert report.error is not None and words in report.error.message
    assert "<locals>.constant cannot be evaluated on canonical input" in str(report)
    assert "fix         make the target work on canonical input" in str(report)


def converts_its_inputs(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.array(y_pred)
    return float(np.mean((y_true - y_pred) ** 2))


def squares_in_place(y_true, y_pred):
    out = np.asarray(y_true) - np.asarray(y_pred)
    out **= 2
    return out.mean()


def subtracts_into_a_buffer(y_true, y_pred):
    out = np.empty(np.broadcast_shapes(np.shape(y_true), np.shape(y_pred)))
    np.subtract(y_true, y_pred, out=out)
    out *= out
    return out.mean()


def accumulates(y_true, y_pred):
    total = np.zeros(())
    total += np.abs(np.ascontiguousarray(y_true) - np.ascontiguousarray(y_pred)).mean()
    return total


@pytest.mark.parametrize(("loss", "text"), [
    (converts_its_inputs, "y_true - y_pred"), (squares_in_place, "np.asarray(y_true) -"),
    (subtracts_into_a_buffer, "np.subtract("), (accumulates, "np.abs("),
])
def test_location_survives_asarray_and_in_place_arithmetic(loss, text):
    report = check(loss)
    assert report.backend == "numpy"
    assert report.counts()["broadcast"] == 4, str(report)
    assert all(f.location is not None and f.location.where == line_of(loss, text)
               for f in report.failures)
    assert "not located" not in str(report)


def test_asarray_is_itself_again_after_the_trace():
    converters = (np.asarray, np.array, np.ascontiguousarray)
    check(converts_its_inputs)
    assert (np.asarray, np.array, np.ascontiguousarray) == converters
    assert type(np.asarray(np.zeros(2).view(np.ma.MaskedArray))) is np.ndarray


# scikit-learn's metrics, each with the domain its inputs need.
SKLEARN = [
    (metrics.mean_squared_error, "real"), (metrics.mean_absolute_error, "real"),
    (metrics.r2_score, "real"), (metrics.explained_variance_score, "real"),
    (metrics.median_absolute_error, "real"), (metrics.max_error, "real"),
    (metrics.mean_pinball_loss, "real"), (metrics.mean_squared_log_error, "probability"),
    (metrics.log_loss, "binary"), (metrics.brier_score_loss, "binary"),
    (metrics.hinge_loss, "binary"), (metrics.roc_auc_score, "binary"),
]


def drawn(shape, domain, rng, labels):
    """Values of `shape` in `domain`: labels, or predictions near them."""
    if domain == "real":
        return rng.normal(size=shape)
    if labels:
        return np.resize([0.0, 1.0], shape)  # both classes always present
    return rng.uniform(0.05, 0.95, size=shape)


def expected(metric, finding, domain):
    """The verdict by hand: call the metric on the probe's shapes and on the same values with
    the labels reshaped to the predictions (what alignment does); raising is `raises`, the same
    value is `safe`, a different one a failure."""
    rng = np.random.default_rng(0)
    y_true = drawn(finding.y_true, domain, rng, labels=True)
    y_pred = drawn(finding.y_pred, domain, rng, labels=False)
    weights = {} if finding.sample_weight is None else {
        "sample_weight": rng.uniform(0.5, 1.5, size=finding.sample_weight)}
    flat = {key: value.reshape(-1) for key, value in weights.items()}
    try:
        probe = metric(y_true, y_pred, **weights)
    except (ValueError, TypeError):
        return "raises"
    aligned = metric(y_true.reshape(-1) if y_true.size == y_pred.size else y_true,
                     y_pred.reshape(-1) if y_true.size == y_pred.size else y_pred, **flat)
    return "safe" if np.isclose(probe, aligned) else "failed"


@pytest.mark.parametrize(("metric", "domain"), SKLEARN, ids=[m.__name__ for m, _ in SKLEARN])
def test_sklearn_metrics_are_judged_as_a_hand_computation_says(metric, domain):
    report = check(metric, domain=domain)
    assert report.backend == "numpy" and report.error is None, str(report)
    verdicts = {f.probe: f.verdict.value for f in report.findings}
    by_hand = {f.probe: expected(metric, f, domain) for f in report.findings}
    assert verdicts == by_hand
    # sklearn aligns (N,) against (N, 1) itself, and refuses a third axis loudly.
    assert verdicts["labels-missing-unit-axis"] == "safe"
    assert report.ok


def test_a_hand_written_numpy_r2_is_flagged_where_sklearn_s_is_not():
    def r2(y_true, y_pred):
        residual = np.sum((y_true - y_pred) ** 2)
        return 1.0 - residual / np.sum((y_true - np.mean(y_true)) ** 2)

    report = check(r2)
    assert report.counts()["broadcast"] == 4
    assert report.failures[0].location.where == line_of(r2, "y_true - y_pred")
    assert check(metrics.r2_score).ok


def test_a_wrapped_metric_points_at_the_function_it_wraps():
    # sklearn's parameter validation wraps every metric (functools.wraps): the target line is
    # the metric's own file and line, not the wrapper's file with the metric's line.
    wrapped = inspect.unwrap(metrics.r2_score)
    file, line = inspect.getsourcefile(wrapped), wrapped.__code__.co_firstlineno
    assert file != inspect.getsourcefile(metrics.r2_score)  # a wrapper from another file
    source = check(metrics.r2_score).source
    assert source.endswith(f"sklearn/metrics/_regression.py:{line}"), source
