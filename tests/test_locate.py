"""locate: the exact user line and op of each broadcast, for TF graphs and NumPy ufuncs."""

import inspect
import itertools
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import zoo

from pytest_lossguard import check
from pytest_lossguard.trace import Growth


def line_of(fn, text):
    """`path:line` of the first line of fn's source that contains text."""
    fn = getattr(fn, "python_function", fn)
    lines, start = inspect.getsourcelines(fn)
    offset = next(i for i, line in enumerate(lines) if text in line)
    return f"{os.path.relpath(inspect.getsourcefile(fn))}:{start + offset}"


def first_failure(report, probe="labels-missing-unit-axis"):
    return next(f for f in report.failures if f.probe == probe)


def inline(y_true, y_pred):
    scale = 2.0
    return scale * tf.reduce_mean(tf.square(y_true - y_pred))


def squared_error(a, b):
    return tf.square(a - b)


def through_helper(y_true, y_pred):
    return tf.reduce_mean(squared_error(y_true, y_pred))


class AbsoluteError(keras.losses.Loss):
    def call(self, y_true, y_pred):
        y_pred = keras.ops.convert_to_tensor(y_pred)
        return keras.ops.abs(y_true - y_pred)


def numpy_r2(y_true, y_pred):
    residual = np.sum((y_true - y_pred) ** 2)
    return 1.0 - residual / np.sum((y_true - np.mean(y_true)) ** 2)


def numpy_r2_of_values(y_true, y_pred):
    """r2 computed by NumPy on the tensors' values: TensorFlow runs none of its ops."""
    return numpy_r2(y_true.numpy(), y_pred.numpy())


def where_picked(y_true, y_pred):
    picked = tf.where(y_pred > 0.0, y_true, tf.zeros_like(y_true))
    return tf.reduce_mean(tf.abs(picked))


@tf.function
def graph_mse(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred))


@tf.function
def compiled_error(a, b):
    return tf.square(a - b)


def through_a_tf_function(y_true, y_pred):
    return tf.reduce_mean(compiled_error(y_true, y_pred))


def first_label_only(y_true, y_pred):
    return tf.reduce_mean(tf.abs(y_true[..., 0][..., None] - y_pred), axis=-1)


@pytest.mark.parametrize(("target", "text", "op", "options"), [
    (inline, "y_true - y_pred", "Sub (7,), (7, 1) -> (7, 7)", {}),
    (AbsoluteError, "y_true - y_pred", "Sub (7,), (7, 1) -> (7, 7)", {}),
    (numpy_r2, "y_true - y_pred", "subtract (7,), (7, 1) -> (7, 7)", {"backend": "numpy"}),
    (where_picked, "tf.where", "SelectV2 (7, 1), (7,), (7,) -> (7, 7)", {}),
    (graph_mse, "y_true - y_pred", "Sub (7,), (7, 1) -> (7, 7)", {}),
])
def test_the_exact_line_and_op_are_named(target, text, op, options):
    finding = first_failure(check(target, **options))
    assert finding.verdict == "broadcast"
    assert finding.location.where == line_of(target, text)
    assert text in finding.location.source
    assert finding.location.operation == op


def test_a_helper_is_located_at_its_own_line_with_the_call_chain():
    finding = first_failure(check(through_helper))
    assert finding.location.where == line_of(squared_error, "a - b")
    assert finding.location.chain == (
        f"{line_of(through_helper, 'squared_error(')} in through_helper",
        f"{line_of(squared_error, 'a - b')} in squared_error",
    )
    assert "via         " in str(check(through_helper))


def test_the_via_line_shows_each_link_s_path_as_the_broadcast_line_does():
    # Not bare file names: two links from model.py files of different folders must differ.
    report = check(through_helper)
    finding = first_failure(report)
    lines = str(report).split("\n  via         ", 1)[1].splitlines()
    wrapped = itertools.takewhile(lambda line: line.startswith(" " * 14), lines[1:])
    assert " ".join([lines[0], *(line.strip() for line in wrapped)]) == \
        " -> ".join(finding.location.chain)
    assert finding.location.chain[-1].startswith(f"{finding.location.where} in ")
    assert finding.location.where.startswith("tests/")


def test_a_tf_function_helper_is_located_inside_not_at_its_call():
    finding = first_failure(check(through_a_tf_function))
    assert finding.verdict == "broadcast"
    assert finding.location.operation == "Sub (7,), (7, 1) -> (7, 7)"
    assert finding.location.where == line_of(compiled_error, "a - b")
    assert [link.rsplit(" in ", 1)[1] for link in finding.location.chain] == [
        "through_a_tf_function", "compiled_error"]
    assert not tf.config.functions_run_eagerly()


def test_a_train_step_is_located_through_its_loss_call():
    finding = first_failure(check(zoo.HandMSE, input_shape=(3,)))
    assert finding.location.where == line_of(zoo.mse, "y_true - y_pred")
    assert any(link.endswith("in train_step") for link in finding.location.chain)


def test_a_rank_mix_without_growth_is_located_but_stays_a_mismatch():
    report = check(first_label_only, y_true_shape=(1,), y_pred_shape=(3,))
    finding = first_failure(report)
    assert finding.verdict == "mismatch"
    assert finding.location.operation == "Sub (1,), (7, 3) -> (7, 3)"
    assert finding.location.where == line_of(first_label_only, "y_true[..., 0]")


def test_an_untraceable_difference_says_it_was_not_located():
    report = check(numpy_r2_of_values, backend="tensorflow")
    assert not report.ok
    assert all(f.location is None for f in report.failures)
    assert "not located: no single op grew or mixed ranks" in str(report)


def test_tensorflow_ops_that_numpy_functions_run_are_located():
    """The same r2 handed TF tensors: `y_true - y_pred` is a TF op, and the eager run sees it."""
    report = check(numpy_r2, backend="tensorflow")
    assert report.failures
    assert all(f.location.where == line_of(numpy_r2, "y_true - y_pred")
               for f in report.failures)


@pytest.mark.parametrize("target", [zoo.aligned_mse, keras.losses.MeanSquaredError()])
def test_aligned_targets_have_nothing_to_locate(target):
    report = check(target)
    assert report.ok and all(f.location is None for f in report.findings)


def test_a_broadcast_inside_keras_itself_is_not_pinned_on_the_caller():
    # keras.losses.hinge grows (7,) x (7, 1) in Keras's own code: there is no user line to
    # name, and the line that called check() must not be named instead.
    report = check(keras.losses.hinge, domain="binary")
    assert not report.ok
    assert all(f.location is not None and f.location.where == "" and f.location.chain == ()
               for f in report.failures)
    assert os.path.basename(__file__) not in str(report)
    hinge = line_of(keras.losses.hinge, "1.0 - y_true * y_pred").rsplit(":", 1)[1]
    internals = f"keras/src/losses/losses.py:{hinge} in hinge"
    assert all(f.location.internals == internals for f in report.failures)
    assert ("broadcast   not in your code: Mul (7,), (7, 1) -> (7, 7), in library internals at\n"
            f"              {internals}\n") in str(report)
    assert "align ranks before calling it (it broadcasts inside the library)" in str(report)


def test_library_files_show_from_their_package_down_from_any_working_directory(
        tmp_path, monkeypatch):
    # The target line, the JSON source and the internals line show Keras's file as its import
    # path, not as .venv/lib/.../site-packages/keras/... or ../../... from elsewhere.
    monkeypatch.chdir(tmp_path)
    report = check(keras.losses.hinge, domain="binary")
    line = keras.losses.hinge.__code__.co_firstlineno
    assert report.source == report.as_dict()["source"] == f"keras/src/losses/losses.py:{line}"
    assert f"  target      keras/src/losses/losses.py:{line}  (function" in str(report)
    assert report.failures[0].location.internals.startswith("keras/src/losses/losses.py:")
    assert "site-packages" not in str(report) and "../" not in str(report)


def test_a_long_call_chain_wraps_between_links_within_the_width():
    from pytest_lossguard.render import _via
    from pytest_lossguard.text import WIDTH

    links = [f"module_{i}.py:{10 * i} in some_fairly_long_function_name_{i}" for i in range(6)]
    lines = _via(links)
    assert len(lines) > 1 and all(len(line) <= WIDTH for line in lines)
    joined = " ".join(line[14:] for line in lines)
    assert joined == " -> ".join(links)


def test_a_fused_op_that_reduces_what_it_broadcast_says_so_on_its_op_line():
    fused = Growth("mse_loss", ((7,), (7, 1)), (), "a.py:1", "")
    assert fused.describe() == "mse_loss (7,), (7, 1) -> (), broadcast to (7, 7) inside"
    # An op whose output shows the growth itself, or that only mixes ranks, needs no more.
    assert Growth("Sub", ((7,), (7, 1)), (7, 7), "a.py:1", "").describe() == \
        "Sub (7,), (7, 1) -> (7, 7)"
    assert Growth("AddV2", ((7, 1), (1,)), (7, 1), "a.py:1", "").describe() == \
        "AddV2 (7, 1), (1,) -> (7, 1)"
    # A contraction that mixes ranks reduces by design: nothing broadcast inside it.
    assert Growth("matmul", ((7,), (7, 1)), (1,), "a.py:1", "").describe() == \
        "matmul (7,), (7, 1) -> (1,)"
