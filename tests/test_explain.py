"""Explanations that point the right way (issue 14, point 6): the weighting that grew is the
result, a canonical layout that broadcasts is named and not advised, randomness is an error and
not a verdict, and sparse ids may come as a column."""

import inspect
import json
import os
import re
import sys
import textwrap

import keras
import numpy as np
import pytest
import zoo

from pytest_lossguard import check


def line_of(fn, text):
    """`path:line` of the first line of fn's source that contains text."""
    lines, start = inspect.getsourcelines(fn)
    offset = next(i for i, line in enumerate(lines) if text in line)
    return f"{os.path.relpath(inspect.getsourcefile(fn))}:{start + offset}"


def with_statement_before(fn, where, code):
    """fn rebuilt from source with `code` inserted before its line `where` (path:line), at that
    line's indentation: the advice applied where it says."""
    lines, start = inspect.getsourcelines(fn)
    index = int(where.rpartition(":")[2]) - start
    indent = lines[index][:len(lines[index]) - len(lines[index].lstrip())]
    lines.insert(index, f"{indent}{code}\n")
    namespace = dict(sys.modules[fn.__module__].__dict__)
    exec(compile(textwrap.dedent("".join(lines)), inspect.getsourcefile(fn), "exec"), namespace)
    return namespace[fn.__name__]


def flat(report):
    """The report's text with its wrapping undone."""
    return " ".join(str(report).split())


def advised_statement(report):
    """The `name = ...reshape(...)` statement the first fix advises."""
    return re.search(r"(\w+ = tf\.reshape\(\w+, \([-0-9, ]+\)\))", flat(report)).group(1)


# a. sample-weight-rank: the (B,) weighting grew, so it is the result, located and named.


@pytest.mark.parametrize(("target", "grew", "other", "line", "operation"), [
    (zoo.weighted_error, (7,), (7, 1), "err * sample_weight", "Mul (7, 1), (7,) -> (7, 7)"),
    (zoo.weighted_per_sample, (7, 1), (7,), "per_sample * sample_weight",
     "Mul (7,), (7, 1) -> (7, 7)"),
])
def test_weights_that_grow_are_the_result_located_at_the_users_line(target, grew, other, line,
                                                                   operation):
    report = check(target)
    (finding,) = report.failures
    assert finding.probe == "sample-weight-rank" and finding.verdict == "broadcast"
    assert finding.sample_weight == grew  # the weighting that grew is the one shown
    assert finding.reference == f"sample_weight {other}"
    assert finding.location.where == line_of(target, line)
    assert finding.location.operation == operation
    text = str(report)
    headline = text.splitlines()[0]
    assert "sample weights" in headline and "label and prediction" not in headline
    assert "not located" not in text and "values" not in text
    assert line.split(" * ")[0] in finding.fix.text  # the user's own names
    # The advice, applied where it says, makes every probe pass.
    fixed = with_statement_before(target, finding.location.where, advised_statement(report))
    assert check(fixed).ok, str(check(fixed))


def test_weights_that_do_not_grow_stay_clean():
    report = check(zoo.weighted_error_column)
    assert report.ok, str(report)
    assert any(f.probe == "sample-weight-rank" and f.reference == "canonical"
               for f in report.findings)


def test_the_weights_block_reads_right_through_pytest(zoo_pytester):
    zoo_pytester.makepyfile(test_weights="""
        import pytest
        from zoo import weighted_error, weighted_error_column

        pytestmark = pytest.mark.lossguard(targets=[weighted_error, weighted_error_column])
    """)
    result = zoo_pytester.runpytest("--lossguard", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "lossguard: weighted_error broadcasts sample weights against the per-sample loss",
        "  probe       sample-weight-rank         y_true (7, 1)  y_pred (7, 1)  sample_weight (7,)",
        "  result      () -> *reference (sample_weight (7, 1)) () -> *",
        "  broadcast   zoo.py:* err = err * sample_weight",
        "              Mul (7, 1), (7,) -> (7, 7)",
        "  fix         sample_weight (7,) meets err (7, 1) at zoo.py:*; Keras hands sample_weight*",
    ])
    text = " ".join(result.stdout.str().split())
    assert "before that line: sample_weight = tf.reshape(sample_weight, (-1, 1))" in text
    assert "values" not in text


# b. A canonical layout that itself broadcasts is named, at its line, and not advised.


SPARSE_COLUMN = {"domain": "sparse", "output_shape": (4,), "y_true_shape": (1,)}


@pytest.mark.parametrize(("broken", "fine", "line", "options"), [
    (zoo.cox_partial_likelihood, zoo.cox_partial_likelihood_flat, "event * (log_risk",
     {"domain": "binary"}),
    (zoo.true_positives, zoo.true_positives_flat, "tf.equal(y_true, predicted)", SPARSE_COLUMN),
])
def test_a_canonical_layout_that_broadcasts_is_named_and_not_advised(broken, fine, line,
                                                                     options):
    report = check(broken, **options)
    finding = next(f for f in report.failures if f.probe == "labels-missing-unit-axis")
    assert finding.verdict == "broadcast"
    assert finding.location.where == line_of(broken, line)
    assert finding.location.layout == "canonical"
    assert finding.as_dict()["layout"] == "canonical"  # machines reading the JSON see it too
    assert finding.location.operation.endswith("(7, 1), (7,) -> (7, 7)")
    text = flat(report)
    assert "canonical" in text.split(" target ")[0]  # the headline says where it grows
    assert "the canonical layout y_true (7, 1) y_pred " in text
    assert "not located" not in text
    # The reshape to the canonical layout would recreate the bug: it is not advised.
    assert "tf.reshape(y_true, tf.shape(y_pred))" not in text
    assert "tf.reshape(y_true, (-1, 1))" not in text
    assert len(re.findall(r" fix ", text)) == 1
    fixed = with_statement_before(broken, finding.location.where, advised_statement(report))
    assert check(fixed, **options).ok, str(check(fixed, **options))
    # The near miss: the same computation on one rank is clean.
    assert check(fine, **options).ok


def test_an_intended_outer_comparison_on_the_canonical_layout_is_not_blamed():
    report = check(zoo.same_label_rate, domain="binary")
    finding = next(f for f in report.failures if f.probe == "labels-missing-unit-axis")
    assert finding.verdict == "mismatch" and finding.location is None
    assert "canonical layout" not in str(report)
    assert "y_true = tf.reshape(y_true, tf.shape(y_pred))" in flat(report)


def test_a_probe_that_grows_is_still_located_on_the_probe():
    report = check(zoo.mse)
    finding = report.failures[0]
    assert finding.location.layout == "" and "canonical layout" not in str(report)
    assert "y_true = tf.reshape(y_true, tf.shape(y_pred))" in flat(report)


# c. Randomness and call counters are an error, not a broadcast.


@pytest.mark.parametrize("target", [zoo.noisy_mse, zoo.CountingMSE()])
def test_a_loss_that_is_not_deterministic_is_an_error_that_says_how_to_seed_it(target):
    report = check(target)
    assert report.error is not None, str(report)
    assert [f.verdict for f in report.findings] == ["error"]
    assert "is not deterministic: called twice on the same canonical input" in \
        report.error.message
    text = flat(report)
    assert "fix seed it: draw its randomness from a fixed seed" in text
    # Nothing raised: the line says error, not raised, which a target that raises keeps.
    assert "error noisy" in text or "error CountingMSE" in text
    assert "raised" not in text
    assert "raised ValueError: helper refuses (7, 1)" in flat(check(zoo.raising))
    assert "label and prediction ranks" not in text and "make the target work" not in text


def test_a_seeded_random_loss_is_deterministic_and_clean():
    assert check(zoo.seeded_noise_mse).ok


def test_a_deterministic_broken_loss_is_still_a_broadcast():
    report = check(zoo.mse)
    assert report.error is None
    assert {f.verdict for f in report.failures} == {"broadcast"}


class Recorded:
    """A NumPy loss that records the layout of every call (not of the tracer's runs, which
    pass recording arrays)."""

    def __init__(self, aligned):
        self.aligned = aligned
        self.layouts = []

    def __call__(self, y_true, y_pred):
        if type(y_true) is np.ndarray:
            self.layouts.append((y_true.shape, y_pred.shape))
        if self.aligned:
            y_true = y_true.reshape(y_pred.shape)
        return np.mean((y_true - y_pred) ** 2)


def test_the_determinism_check_costs_a_clean_target_no_call():
    clean = Recorded(aligned=True)
    assert check(clean, backend="numpy").ok
    assert len(clean.layouts) == len(set(clean.layouts))  # no layout called twice
    broken = Recorded(aligned=False)
    assert not check(broken, backend="numpy").ok
    assert len(broken.layouts) == len(set(broken.layouts)) + 1  # one repeat, once


def test_a_random_loss_is_an_error_row_in_the_summary_and_the_json_report(zoo_pytester):
    zoo_pytester.makepyfile(test_random="""
        import pytest
        from zoo import mse, noisy_mse

        pytestmark = pytest.mark.lossguard(targets=[noisy_mse, mse])
    """)
    result = zoo_pytester.runpytest("--lossguard", "-p", "no:randomly",
                                    "--lossguard-report=report.json")
    result.assert_outcomes(errors=1, failed=1)
    result.stdout.fnmatch_lines(["*noisy_mse* is not deterministic*"])
    rows = {row["nodeid"]: row for row in
            json.loads((zoo_pytester.path / "report.json").read_text())["targets"]}
    noisy = rows["test_random.py::noisy_mse[lossguard]"]
    assert noisy["error"] == 1 and noisy["broadcast"] == noisy["mismatch"] == 0
    assert rows["test_random.py::mse[lossguard]"]["broadcast"] == 4


# d. Sparse class ids as a column (B, 1), as Keras's sparse losses take them.


def test_sparse_ids_as_a_column_are_the_canonical_labels():
    report = check(keras.losses.SparseCategoricalCrossentropy(), **SPARSE_COLUMN)
    assert report.ok and report.error is None, str(report)
    assert report.true_shape == (1,) and report.pred_shape == (4,)
    probe = next(f for f in report.findings if f.probe == "labels-missing-unit-axis")
    assert probe.verdict == "safe" and probe.y_true == (7,) and probe.y_pred == (7, 4)


def test_a_hand_written_sparse_loss_on_id_columns_is_flagged_and_its_twin_is_clean():
    report = check(zoo.class_weighted_nll, **SPARSE_COLUMN)
    finding = report.failures[0]
    assert finding.probe == "labels-missing-unit-axis" and finding.verdict == "broadcast"
    assert finding.y_true == (7,) and finding.location.layout == ""
    assert "y_true = tf.reshape(y_true, (-1, 1))" in flat(report)
    assert check(zoo.class_weighted_nll_column, **SPARSE_COLUMN).ok
