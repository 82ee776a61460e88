"""Marks for the PyTorch examples: run `pytest --lossguard examples/`."""

import pytest
from lightning_regression import AlignedLinearRegression, LinearRegression
from torch import nn
from torch_losses import RelativeError, aligned_mse, naive_mse

# Functions and modules take the prediction/label order from their signatures; Lightning
# modules are built from their classes and probed through training_step.
pytestmark = pytest.mark.lossguard(
    targets=[naive_mse, aligned_mse, RelativeError, nn.MSELoss(), LinearRegression,
             AlignedLinearRegression]
)
