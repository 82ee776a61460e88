"""A small losses module of the kind a team grows: some of these broadcast, some do not."""

import keras
import tensorflow as tf


def naive_mse(y_true, y_pred):
    """The classic: labels (N,) against a Dense(1) output (N, 1) silently become (N, N)."""
    return tf.reduce_mean(tf.math.square(y_true - y_pred))


def aligned_mse(y_true, y_pred):
    """The same loss with the ranks aligned first: safe for any layout Keras accepts."""
    y_true = tf.reshape(y_true, tf.shape(y_pred))
    return tf.reduce_mean(tf.math.square(y_true - y_pred))


def absolute_error(y_true, y_pred):
    """Per-sample absolute error, left unreduced for Keras to reduce."""
    return tf.abs(y_true - y_pred)


def pinball(y_true, y_pred, quantiles=(0.1, 0.5, 0.9)):
    """Quantile loss: labels (N, 1), predictions (N, 3); the label column broadcasts by design."""
    y_true = tf.reshape(y_true, (-1, 1))
    error = y_true - y_pred
    q = tf.constant(quantiles, dtype=y_pred.dtype)
    return tf.reduce_mean(tf.maximum(q * error, (q - 1) * error), axis=-1)


def pinball_first_column(y_true, y_pred, quantiles=(0.1, 0.5, 0.9)):
    """Quantile loss that takes the label as column 0: a (N,) label array loses its batch."""
    error = y_true[..., 0][..., None] - y_pred
    q = tf.constant(quantiles, dtype=y_pred.dtype)
    return tf.reduce_mean(tf.maximum(q * error, (q - 1) * error), axis=-1)


def r2_score(y_true, y_pred):
    """Coefficient of determination as a custom metric: compile(metrics=...) does not align it."""
    residual = tf.reduce_sum(tf.square(y_true - y_pred))
    total = tf.reduce_sum(tf.square(y_true - tf.reduce_mean(y_true)))
    return 1.0 - residual / total


class ScaledAbsoluteError(keras.losses.Loss):
    """A Loss subclass overriding call: Keras aligns nothing for it, even inside fit()."""

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * keras.ops.abs(y_true - y_pred)


def shape_checked_mse(y_true, y_pred):
    """Refuses any layout but equal shapes: loud, never silent."""
    tf.debugging.assert_equal(tf.shape(y_true), tf.shape(y_pred))
    return tf.reduce_mean(tf.square(y_true - y_pred))
