"""Backend-neutral losses and a metric, written with keras.ops: they run, and broadcast, the
same way on TensorFlow, JAX and torch."""

import keras


def mse(y_true, y_pred):
    """The seed bug: (N,) - (N, 1) broadcasts to (N, N)."""
    return keras.ops.mean(keras.ops.square(y_true - y_pred))


def aligned_mse(y_true, y_pred):
    """The fix: labels reshaped to the prediction first."""
    y_true = keras.ops.reshape(y_true, keras.ops.shape(y_pred))
    return keras.ops.mean(keras.ops.square(y_true - y_pred))


class AbsoluteError(keras.losses.Loss):
    """A Loss subclass overriding call: Keras 3 does not align it, even in compile()."""

    def call(self, y_true, y_pred):
        return keras.ops.abs(y_true - y_pred)


class MeanError(keras.metrics.Metric):
    """A metric that broadcasts in update_state."""

    def __init__(self, name="mean_error", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        error = keras.ops.abs(y_true - y_pred)
        self.total.assign_add(keras.ops.sum(error))
        self.count.assign_add(keras.ops.cast(keras.ops.size(error), "float32"))

    def result(self):
        return self.total / self.count
