"""Marks for examples/losses/losses.py: run `pytest --lossguard examples/`."""

import keras
import pytest
from losses import (
    ScaledAbsoluteError,
    absolute_error,
    aligned_mse,
    naive_mse,
    pinball,
    pinball_first_column,
    r2_score,
    shape_checked_mse,
)

# One item per target, all with the default options: labels and predictions of shape (B, 1).
pytestmark = pytest.mark.lossguard(
    targets=[naive_mse, aligned_mse, absolute_error, r2_score, shape_checked_mse,
             ScaledAbsoluteError, keras.losses.MeanSquaredError()]
)


@pytest.mark.lossguard(
    targets=[pinball, pinball_first_column], y_true_shape=(1,), y_pred_shape=(3,)
)
def test_quantile_losses_are_finite():
    """An ordinary test; its mark adds one lossguard item per quantile loss."""
    import numpy as np

    y_true = np.zeros((4, 1), dtype="float32")
    y_pred = np.ones((4, 3), dtype="float32")
    assert np.isfinite(pinball(y_true, y_pred)).all()


@pytest.mark.lossguard(domain="sparse", output_shape=(5,))
def sparse_cross_entropy(y_true, y_pred):
    """Integer class ids (B,) against probabilities (B, 5): the rank difference is intended."""
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
