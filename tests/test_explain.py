"""Explanations that point the right way (issue 14, point 6): sparse ids may come as a
column."""

import keras
import zoo

from pytest_lossguard import check


def flat(report):
    """The report's text with its wrapping undone."""
    return " ".join(str(report).split())


SPARSE_COLUMN = {"domain": "sparse", "output_shape": (4,), "y_true_shape": (1,)}


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
