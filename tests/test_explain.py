"""Explanations that point the right way (issue 14, point 6): randomness is an error and not a
verdict, and sparse ids may come as a column."""

import json

import keras
import numpy as np
import pytest
import zoo

from pytest_lossguard import check


def flat(report):
    """The report's text with its wrapping undone."""
    return " ".join(str(report).split())


SPARSE_COLUMN = {"domain": "sparse", "output_shape": (4,), "y_true_shape": (1,)}


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
    assert finding.y_true == (7,)
    assert "y_true = tf.reshape(y_true, (-1, 1))" in flat(report)
    assert check(zoo.class_weighted_nll_column, **SPARSE_COLUMN).ok
