"""NumPy, scikit-learn, JAX and optax losses: the same broadcast, without Keras."""

import jax.numpy as jnp
import numpy as np
import optax


def rmse(y_true, y_pred):
    """Broken: np.asarray keeps the shapes, and (B,) - (B, 1) broadcasts to (B, B)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def jax_mse(y_true, y_pred):
    """Broken: jax.numpy broadcasts as NumPy does."""
    return jnp.mean((y_true - y_pred) ** 2)


def huber(y_true, y_pred):
    """Broken inside optax: huber_loss(predictions, targets) broadcasts (B, 1) against (B,)."""
    return jnp.mean(optax.huber_loss(y_pred, y_true))


def aligned_huber(y_true, y_pred):
    """Fixed: the labels take the prediction's shape first."""
    return jnp.mean(optax.huber_loss(y_pred, y_true.reshape(y_pred.shape)))
