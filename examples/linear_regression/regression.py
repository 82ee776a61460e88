"""The teaching case: linear regression as a one-unit keras.Model, three ways to train it.

The labels come as a flat vector, y of shape (N,), as `df["target"].values` gives them; the
model outputs (N, 1). All three variants are the same network compiled with the same loss.
"""

import keras
import numpy as np
import tensorflow as tf

TRUE_KERNEL = np.array([2.0, -1.0, 0.5], dtype="float32")
TRUE_BIAS = 3.0


def simulate(samples=256, seed=0):
    """Inputs and labels that a linear model fits exactly: y = x @ [2, -1, 0.5] + 3."""
    x = np.random.default_rng(seed).normal(size=(samples, 3)).astype("float32")
    return x, x @ TRUE_KERNEL + TRUE_BIAS


def mse(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_true - y_pred))


class LinearRegression(keras.Model):
    """No custom train_step: Keras computes the compiled loss and aligns (N,) to (N, 1)."""

    def build(self, input_shape):
        self.layer = keras.layers.Dense(1, kernel_initializer="zeros")

    def call(self, x, training=None):
        return self.layer(x)


class HandWrittenLoss(LinearRegression):
    """A custom train_step calling the loss by hand: (N,) - (N, 1) broadcasts to (N, N)."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = mse(y, self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


class ComputeLoss(LinearRegression):
    """A custom train_step that lets Keras compute (and align) the compiled loss."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


VARIANTS = {
    "custom train_step, mse(y, y_pred)": HandWrittenLoss,
    "custom train_step, compute_loss": ComputeLoss,
    "Keras's own train_step": LinearRegression,
}
