"""The seed case on every Keras 3 backend: a one-unit regression whose custom train_step calls
the loss by hand, written as the Keras guide "Customizing what happens in fit()" writes it for
the backend in use, and its twin that lets Keras compute (and align) the loss.

`HandWrittenLoss` and `ComputeLoss` are the classes for `keras.backend.backend()`.
"""

import keras
from ops_losses import mse


class Linear(keras.Model):
    """Linear regression: one Dense unit, Keras's own train_step."""

    def build(self, input_shape):
        self.layer = keras.layers.Dense(1, kernel_initializer="zeros")

    def call(self, x, training=None):
        return self.layer(x)


def _tensorflow(loss_of):
    import tensorflow as tf

    class Step(Linear):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = loss_of(self, x, y, y_pred)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return {"loss": loss}

    return Step


def _jax(loss_of):
    import jax

    class Step(Linear):
        # The JAX guide names this compute_loss_and_updates; another name keeps Keras's own
        # test_step (which calls that method with its own signature) working for evaluate().
        def loss_and_updates(self, trainable_variables, non_trainable_variables, x, y,
                             training=False):
            y_pred, non_trainable_variables = self.stateless_call(
                trainable_variables, non_trainable_variables, x, training=training)
            return loss_of(self, x, y, y_pred), (y_pred, non_trainable_variables)

        def train_step(self, state, data):
            trainable, non_trainable, optimizer_variables, metrics_variables = state
            x, y = data
            grad_fn = jax.value_and_grad(self.loss_and_updates, has_aux=True)
            (loss, (y_pred, non_trainable)), grads = grad_fn(
                trainable, non_trainable, x, y, training=True)
            trainable, optimizer_variables = self.optimizer.stateless_apply(
                optimizer_variables, grads, trainable)
            new_metrics = []
            logs = {}
            for metric in self.metrics:
                count = len(metric.variables)
                current, metrics_variables = metrics_variables[:count], metrics_variables[count:]
                if metric.name == "loss":
                    current = metric.stateless_update_state(current, loss)
                else:
                    current = metric.stateless_update_state(current, y, y_pred)
                logs[metric.name] = metric.stateless_result(current)
                new_metrics += current
            logs["loss"] = loss
            return logs, (trainable, non_trainable, optimizer_variables, new_metrics)

    return Step


def _torch(loss_of):
    import torch

    class Step(Linear):
        def train_step(self, data):
            x, y = data
            self.zero_grad()
            y_pred = self(x, training=True)
            loss = loss_of(self, x, y, y_pred)
            loss.backward()
            trainable_weights = list(self.trainable_weights)
            gradients = [v.value.grad for v in trainable_weights]
            with torch.no_grad():
                self.optimizer.apply(gradients, trainable_weights)
            return {"loss": loss}

    return Step


_STEPS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}
_step = _STEPS[keras.backend.backend()]


class HandWrittenLoss(_step(lambda model, x, y, y_pred: mse(y, y_pred))):
    """The seed bug: mse(y, y_pred) by hand, (N,) against (N, 1)."""


class ComputeLoss(_step(lambda model, x, y, y_pred: model.compute_loss(x=x, y=y, y_pred=y_pred))):
    """The fix: Keras computes the compiled loss and aligns the labels first."""
