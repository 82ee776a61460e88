"""Marks for the backend-neutral examples: run with any KERAS_BACKEND, e.g.
`KERAS_BACKEND=jax pytest --lossguard examples/keras_ops`."""

import pytest
from ops_losses import AbsoluteError, MeanError, aligned_mse, mse
from ops_models import ComputeLoss, HandWrittenLoss, Linear

pytestmark = [
    pytest.mark.lossguard(targets=[mse, aligned_mse, AbsoluteError, MeanError]),
    pytest.mark.lossguard(targets=[HandWrittenLoss, ComputeLoss, Linear], input_shape=(3,),
                          compile={"optimizer": "sgd", "loss": mse}),
]
