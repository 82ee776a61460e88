"""Marks for the three linear-regression variants: run `pytest --lossguard examples/`."""

import pytest
from regression import ComputeLoss, HandWrittenLoss, LinearRegression, mse

# Each model is built with no arguments, compiled as fit.py compiles it, and fed inputs of
# three features; the labels' shape comes from the model's own output, (B, 1).
pytestmark = pytest.mark.lossguard(
    targets=[HandWrittenLoss, ComputeLoss, LinearRegression],
    input_shape=(3,),
    compile={"optimizer": "sgd", "loss": mse},
)
