"""Marks for the NumPy, scikit-learn, JAX and optax examples: run `pytest --lossguard examples/`."""

import pytest
from array_losses import aligned_huber, huber, jax_mse, rmse
from sklearn.metrics import mean_squared_error

# scikit-learn's regression metrics align (N,) against (N, 1) themselves: mean_squared_error
# passes the rank probes (and refuses a third axis loudly, a pass too).
pytestmark = pytest.mark.lossguard(
    targets=[rmse, mean_squared_error, jax_mse, huber, aligned_huber]
)
