"""Models and losses written once for both Keras flavours: Keras 3, or tf_keras when
TF_USE_LEGACY_KERAS=1 (how test_legacy.py reruns test_models.py).

Tests import this module directly; pytester tests copy it next to the test files they write
(the `zoo_pytester` fixture in conftest.py) and mark what they import from it. Nothing here
is marked, so a direct check() sees exactly the options its test passes.
"""

import functools
import os
import time

import numpy as np
import tensorflow as tf

if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tf_keras as keras
else:
    import keras

LEGACY = keras.__name__ == "tf_keras"
COMPILE = {"optimizer": "sgd", "loss": "mean_squared_error"}


def mse(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred))


def aligned_mse(y_true, y_pred):
    y_true = tf.reshape(y_true, tf.shape(y_pred))
    return tf.reduce_mean(tf.square(y_true - y_pred))


def r2(y_true, y_pred):
    residual = tf.reduce_sum(tf.square(y_true - y_pred))
    total = tf.reduce_sum(tf.square(y_true - tf.reduce_mean(y_true)))
    return 1.0 - residual / total


def shape_asserting_mse(y_true, y_pred):
    tf.debugging.assert_equal(tf.shape(y_true), tf.shape(y_pred))
    return tf.reduce_mean(tf.square(y_true - y_pred))


def helper(values):
    raise ValueError("helper refuses " + str(values.shape))


def raising(y_true, y_pred):
    return helper(y_true)


class ElementwiseAbs(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.abs(y_true - y_pred), axis=-1)


# Hostile targets: no usable tensor, NaN on well-formed input, or no end at all.


def returns_none(y_true, y_pred):
    return None


def returns_text(y_true, y_pred):
    return "low"


def always_inf(y_true, y_pred):
    return tf.reduce_mean(tf.abs(y_pred)) / 0.0


def nan_everywhere(y_true, y_pred):
    return tf.math.log(y_pred - 100.0)


def hangs(y_true, y_pred):
    while True:
        time.sleep(0.01)


# Explanations (issue 14): weights, a canonical layout that itself broadcasts, randomness,
# sparse ids as a column. Each broken sample has a near miss that must stay clean.


def weighted_error(y_true, y_pred, sample_weight=None):
    """Aligned labels, but (B,) weights against the (B, 1) error grow to (B, B)."""
    y_true = tf.reshape(y_true, tf.shape(y_pred))
    err = tf.square(y_true - y_pred)
    if sample_weight is not None:
        err = err * sample_weight
    return tf.reduce_mean(err)


def weighted_error_column(y_true, y_pred, sample_weight=None):
    y_true = tf.reshape(y_true, tf.shape(y_pred))
    err = tf.square(y_true - y_pred)
    if sample_weight is not None:
        err = err * tf.reshape(sample_weight, (-1, 1))
    return tf.reduce_mean(err)


def weighted_per_sample(y_true, y_pred, sample_weight=None):
    """A (B,) per-sample loss: (B, 1) weights grow it to (B, B)."""
    y_true = tf.reshape(y_true, tf.shape(y_pred))
    per_sample = tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)
    if sample_weight is not None:
        per_sample = per_sample * sample_weight
    return per_sample


def cox_partial_likelihood(y_true, y_pred):
    """Event column (B, 1) times a (B,) risk term: the canonical layout is the broken one."""
    event = y_true
    log_risk = tf.reshape(y_pred, [-1])
    log_cumulative = tf.math.log(tf.cumsum(tf.exp(log_risk)))
    return -tf.reduce_mean(event * (log_risk - log_cumulative))


def cox_partial_likelihood_flat(y_true, y_pred):
    event = tf.reshape(y_true, [-1])
    log_risk = tf.reshape(y_pred, [-1])
    log_cumulative = tf.math.log(tf.cumsum(tf.exp(log_risk)))
    return -tf.reduce_mean(event * (log_risk - log_cumulative))


def true_positives(y_true, y_pred):
    """(B, 1) class ids compared with (B,) predicted classes."""
    predicted = tf.cast(tf.argmax(y_pred, axis=-1), y_true.dtype)
    return tf.reduce_sum(tf.cast(tf.equal(y_true, predicted), tf.float32))


def true_positives_flat(y_true, y_pred):
    predicted = tf.cast(tf.argmax(y_pred, axis=-1), y_true.dtype)
    return tf.reduce_sum(tf.cast(tf.equal(tf.reshape(y_true, [-1]), predicted), tf.float32))


def same_label_rate(y_true, y_pred):
    """Every label compared with every other, unit axes written on both sides: an intended
    (B, B) outer comparison, not a canonical layout that broadcasts by accident."""
    return tf.reduce_mean(tf.cast(tf.equal(y_true, tf.transpose(y_true)), tf.float32))


def noisy_mse(y_true, y_pred):
    y_true = tf.reshape(y_true, tf.shape(y_pred))
    return tf.reduce_mean(tf.square(y_true - y_pred)) + 0.1 * tf.random.uniform(())


def seeded_noise_mse(y_true, y_pred):
    y_true = tf.reshape(y_true, tf.shape(y_pred))
    noise = tf.random.stateless_uniform((), seed=(1, 2))
    return tf.reduce_mean(tf.square(y_true - y_pred)) + 0.1 * noise


class CountingMSE:
    """A loss whose value depends on how often it was called."""

    def __init__(self):
        self.calls = 0

    def __call__(self, y_true, y_pred):
        self.calls += 1
        y_true = tf.reshape(y_true, tf.shape(y_pred))
        return tf.reduce_mean(tf.square(y_true - y_pred)) * self.calls


CLASS_WEIGHTS = tf.constant([1.0, 2.0, 0.5, 1.5])


def class_weighted_nll(y_true, y_pred):
    """Sparse ids as a column (B, 1): the class weights take the ids' shape."""
    y_pred = tf.reshape(y_pred, (-1, 4))
    ids = tf.cast(y_true, tf.int32)
    picked = tf.gather(y_pred, tf.reshape(ids, (-1, 1)), batch_dims=1)
    return -tf.reduce_mean(tf.gather(CLASS_WEIGHTS, ids) * tf.math.log(picked))


def class_weighted_nll_column(y_true, y_pred):
    y_pred = tf.reshape(y_pred, (-1, 4))
    ids = tf.cast(tf.reshape(y_true, (-1, 1)), tf.int32)
    picked = tf.gather(y_pred, ids, batch_dims=1)
    return -tf.reduce_mean(tf.gather(CLASS_WEIGHTS, ids) * tf.math.log(picked))


class Linear(keras.Model):
    """Linear regression: one Dense unit, no custom step."""

    initializer = "zeros"
    regularizer = None

    def build(self, input_shape):
        self.layer = keras.layers.Dense(1, kernel_initializer=self.initializer,
                                        kernel_regularizer=self.regularizer)
        super().build(input_shape)

    def call(self, x, training=None):
        return self.layer(x)

    def fit_step(self, data, loss_of, logs_of=None):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = loss_of(x, y, y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss} if logs_of is None else logs_of(x, y, y_pred, loss)


class HandMSE(Linear):
    """The seed bug: the loss computed by hand in train_step."""

    def train_step(self, data):
        return self.fit_step(data, lambda x, y, y_pred: mse(y, y_pred))


class OwnNames(Linear):
    """The seed bug in a step that names its labels its own way."""

    def train_step(self, data):
        features, targets = data
        return self.fit_step((features, targets), lambda x, y, y_pred: mse(targets, y_pred))


def logged(step):
    """A decorator around a step, as functools.wraps writes one."""

    @functools.wraps(step)
    def wrapper(self, data):
        return step(self, data)

    return wrapper


class DecoratedOwnNames(Linear):
    """OwnNames with its step decorated: the fix reads the step the decorator wraps."""

    @logged
    def train_step(self, data):
        features, targets = data
        return self.fit_step((features, targets), lambda x, y, y_pred: mse(targets, y_pred))


class LateNames(Linear):
    """The seed bug in a step that reads its labels by index, and names them only after the
    loss: a fix in its name there would run before the name is bound."""

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = mse(data[1], self(data[0], training=True))
        logs = applied(self, tape, loss)
        _, y = data
        return {**logs, "labels": tf.reduce_mean(y)}


class Regularised(Linear):
    """The seed bug, with the kernel regulariser's loss added from model.losses, as a step
    that computes its loss by hand adds it."""

    regularizer = "l2"

    def train_step(self, data):
        return self.fit_step(data, lambda x, y, y_pred: mse(y, y_pred) + tf.add_n(self.losses))


class Dropped(Linear):
    """An unseeded Dropout before the Dense unit, as users write one: tf_keras draws its mask
    from TensorFlow's global random state."""

    def build(self, input_shape):
        self.dropout = keras.layers.Dropout(0.5)
        super().build(input_shape)

    def call(self, x, training=None):
        return self.layer(self.dropout(x, training=training))


class DroppedHandMSE(Dropped, HandMSE):
    """The seed bug behind the Dropout."""


class Autoencoder(Linear):
    """Unsupervised: its step takes its data as inputs alone, as fit(x) gives them."""

    def build(self, input_shape):
        self.layer = keras.layers.Dense(input_shape[-1])
        super().build(input_shape)

    def train_step(self, data):
        return self.fit_step((data, data), lambda x, y, y_pred: mse(y, y_pred))


class StepOnlyLayer(Linear):
    """A layer its train_step uses but its call() never builds: fit() builds it in its first
    step. With `built_early`, the near miss builds it in build()."""

    built_early = False

    def build(self, input_shape):
        self.scale = keras.layers.Dense(1)
        if self.built_early:
            self.scale.build((None, 1))
        super().build(input_shape)

    def train_step(self, data):
        return self.fit_step(data, lambda x, y, y_pred: mse(y, self.scale(y_pred)))


class StepLayerBuilt(StepOnlyLayer):
    built_early = True


class CompiledLoss(Linear):
    def train_step(self, data):
        return self.fit_step(data, lambda x, y, y_pred: self.compiled_loss(y, y_pred))


class ComputeLoss(Linear):
    def train_step(self, data):
        return self.fit_step(
            data, lambda x, y, y_pred: self.compute_loss(x=x, y=y, y_pred=y_pred))


class RegularisedComputeLoss(ComputeLoss):
    """Its twin that lets Keras compute the loss, regularisation included."""

    regularizer = "l2"


class DroppedComputeLoss(Dropped, ComputeLoss):
    """Its twin that lets Keras compute the loss."""


class BrokenTestStep(Linear):
    """Trains through Keras, evaluates by hand."""

    def test_step(self, data):
        x, y = data
        return {"loss": mse(y, self(x, training=False))}


class BrokenComputeLoss(Linear):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return mse(y, y_pred)


class EvaluatesByHand(Linear):
    """Keras's own steps; its compute_loss lets Keras compute the loss in training but writes
    the mse by hand when Keras 3 evaluates (tf_keras never passes `training` to it)."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training:
            return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        return mse(y, y_pred)


class TrainingScaled(BrokenComputeLoss):
    """Keras's own steps, but training doubles the predictions: fit() and evaluate() see
    different predictions even on the canonical labels."""

    def call(self, x, training=None):
        return self.layer(x) * (2.0 if training else 1.0)


class StrictWeightsMSE(Linear):
    """Unpacks (x, y, sample_weight) strictly, as a pipeline of three would feed it, so that
    (x, y) alone raises; the weighted mse is written by hand."""

    def train_step(self, data):
        x, y, sample_weight = data
        return self.fit_step((x, y), lambda x, y, y_pred: weighted_mse(
            y - y_pred, sample_weight))


class AlignedStrictWeightsMSE(Linear):
    def train_step(self, data):
        x, y, sample_weight = data
        return self.fit_step((x, y), lambda x, y, y_pred: weighted_mse(
            aligned_error(y, y_pred), sample_weight))


class GuideStep(Linear):
    """Unpacks as Keras's guide does (weights only when the data has three values), and
    writes the mse by hand when there are none."""

    def train_step(self, data):
        if len(data) == 3:
            x, y, sample_weight = data
        else:
            sample_weight = None
            x, y = data
        if sample_weight is None:
            return self.fit_step((x, y), lambda x, y, y_pred: mse(y, y_pred))
        return self.fit_step((x, y), lambda x, y, y_pred: weighted_mse(
            aligned_error(y, y_pred), sample_weight))


def weighted_mse(error, sample_weight):
    """Per-sample squared error, weighted by (B,) or (B, 1) weights alike."""
    per_sample = tf.reduce_mean(tf.square(error), axis=-1)
    return tf.reduce_mean(tf.reshape(sample_weight, [-1]) * per_sample)


class NoisySGD(keras.optimizers.SGD):
    """Unseeded noise on every gradient: a step's logs repeat, its weight update does not."""

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        noisy = [(g + np.random.normal(size=g.shape).astype(np.float32), v)
                 for g, v in grads_and_vars]
        return super().apply_gradients(noisy, *args, **kwargs)


class Scaled(Linear):
    """Needs a constructor argument."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x, training=None):
        return self.scale * self.layer(x)

    def train_step(self, data):
        return self.fit_step(data, lambda x, y, y_pred: mse(y, y_pred))


class RandomInit(HandMSE):
    """HandMSE starting from Keras's unseeded default initialiser."""

    initializer = "glorot_uniform"


class Raising(Linear):
    def train_step(self, data):
        raise RuntimeError("this train_step is unfinished")


class Tracked(keras.Model):
    """Keras's guide to custom steps, going lower level: compiled with an optimizer alone, its
    train_step computes the loss and updates its own tracker, so Keras's test_step (and so
    evaluate()) has no loss to compute."""

    loss_of = staticmethod(mse)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = self.loss_of(y, self(x, training=True))
        applied(self, tape, loss)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]


class TrackedAligned(Tracked):
    loss_of = staticmethod(aligned_mse)


class EvaluationRaises(Linear):
    """Trains aligned, but its own compute_loss raises when evaluating (Keras 3 tells it the
    phase): evaluate() fails in the user's code, which stays the check's error."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not training:
            raise ValueError("the evaluation loss is unfinished")
        return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)

    def train_step(self, data):
        return self.fit_step(data, lambda x, y, y_pred: aligned_mse(y, y_pred))


def tracked(cls=Tracked):
    inputs = keras.Input((3,))
    model = cls(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd")
    return model


def tracked_aligned():
    return tracked(TrackedAligned)


def hand_mse_factory():
    model = HandMSE()
    model.compile(**COMPILE)
    return model


def two_outputs():
    """A functional model with a dict of outputs and a dict of losses, one of which broadcasts."""
    inputs = keras.Input((3,))
    outputs = {
        "price": keras.layers.Dense(1, name="price")(inputs),
        "count": keras.layers.Dense(1, name="count")(inputs),
    }
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss={"price": "mean_squared_error", "count": ElementwiseAbs()})
    return model


# Models with several heads or inputs, sample weights and their own batches (issue 14).


def two_heads():
    """A regression head (B, 1) and a 4-class head trained on integer ids, compiled with a loss
    per head: Keras's own steps compute (and align) both."""
    inputs = keras.Input((3,))
    reg = keras.layers.Dense(1, name="reg")(inputs)
    cls = keras.layers.Dense(4, activation="softmax", name="cls")(inputs)
    model = keras.Model(inputs, [reg, cls])
    model.compile(**HEADS_COMPILE)
    return model


HEADS_COMPILE = {"optimizer": "sgd",
                 "loss": ["mean_squared_error", "sparse_categorical_crossentropy"]}


def applied(model, tape, loss):
    """A hand-written step's end: the gradients of its loss applied, the loss reported."""
    grads = tape.gradient(loss, model.trainable_variables)
    model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return {"loss": loss}


class HandHeads(keras.Model):
    """The two heads, with both losses written by hand in train_step (evaluate() computes
    them from HEADS_COMPILE)."""

    regression = staticmethod(mse)

    def __init__(self, **kwargs):
        inputs = keras.Input((3,))
        reg = keras.layers.Dense(1, name="reg")(inputs)
        cls = keras.layers.Dense(4, activation="softmax", name="cls")(inputs)
        super().__init__(inputs, [reg, cls], **kwargs)

    def train_step(self, data):
        x, (reg, cls) = data
        with tf.GradientTape() as tape:
            reg_pred, cls_pred = self(x, training=True)
            loss = self.regression(reg, reg_pred) + tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(cls, cls_pred))
        return applied(self, tape, loss)


class AlignedHeads(HandHeads):
    regression = staticmethod(aligned_mse)


class ListHands(HandHeads):
    """The two heads as a list, both losses by hand on one statement over several lines, which
    names the heads by index: the fix subscripts the step's own y and y_pred."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = tf.reduce_mean(tf.square(y[0] - y_pred[0])) + tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(y[1], y_pred[1]))
        return applied(self, tape, loss)


class NamedHeads(HandHeads):
    """ListHands with the predictions named by the step, and the head's loss on a line that
    continues the statement: the fix goes before the statement, in the labels' own shape."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            reg, cls = self(x, training=True)
            loss = tf.reduce_mean(
                tf.square(y[0] - reg)) + tf.reduce_mean(
                    keras.losses.sparse_categorical_crossentropy(y[1], cls))
        return applied(self, tape, loss)


class DictHeads(keras.Model):
    """The two heads as a dict, trained by Keras's own steps."""

    def __init__(self, **kwargs):
        inputs = keras.Input((3,))
        super().__init__(inputs, {
            "reg": keras.layers.Dense(1, name="reg")(inputs),
            "cls": keras.layers.Dense(4, activation="softmax", name="cls")(inputs)}, **kwargs)


class DictHands(DictHeads):
    """The regression's loss by hand on a line of its own that names the head: the fix reads
    its operands off that line."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            regression = tf.reduce_mean(tf.square(y["reg"] - y_pred["reg"]))
            loss = regression + tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(y["cls"], y_pred["cls"]))
        return applied(self, tape, loss)


class DictComputeLoss(DictHeads):
    """compute_loss overridden by hand, over several lines."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return tf.reduce_mean(tf.abs(y["reg"] - y_pred["reg"])) + tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(y["cls"], y_pred["cls"]))


class Critic(Linear):
    """Two inputs, called as call([state, action]); the loss by hand in train_step."""

    def call(self, inputs, training=None):
        state, action = inputs
        return self.layer(tf.concat([state, action], axis=-1))

    def train_step(self, data):
        return self.fit_step(data, lambda x, y, y_pred: mse(y, y_pred))


class AlignedCritic(Critic):
    def train_step(self, data):
        return self.fit_step(data, lambda x, y, y_pred: aligned_mse(y, y_pred))


def two_inputs():
    """A functional model with two inputs, whose shapes it knows."""
    state, action = keras.Input((3,)), keras.Input((1,))
    output = keras.layers.Dense(1)(keras.layers.Concatenate()([state, action]))
    model = keras.Model([state, action], output)
    model.compile(**COMPILE)
    return model


class Keyed(keras.Model):
    """A functional model of dict inputs, whose step takes them by key and computes its loss
    by hand (the seed bug); `AlignedKeyed` is the near miss."""

    loss_of = staticmethod(mse)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self({"state": x["state"], "action": x["action"]}, training=True)
            loss = self.loss_of(y, y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss}


class AlignedKeyed(Keyed):
    loss_of = staticmethod(aligned_mse)


def keyed(cls=Keyed):
    """A `Keyed` model, whose input shapes it knows by key."""
    inputs = {"state": keras.Input((3,), name="state"),
              "action": keras.Input((1,), name="action")}
    output = keras.layers.Dense(1)(keras.layers.Concatenate()(list(inputs.values())))
    model = cls(inputs, output)
    model.compile(**COMPILE)
    return model


class WeightedStep(Linear):
    """Unpacks sample weights as Keras's own steps do, and weights a (B, 1) error by them."""

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = tf.reduce_mean(self.weighted(tf.square(aligned_error(y, y_pred)),
                                                sample_weight))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss}

    @staticmethod
    def weighted(error, sample_weight):
        return error if sample_weight is None else error * sample_weight


class AlignedWeightStep(WeightedStep):
    @staticmethod
    def weighted(error, sample_weight):
        return error if sample_weight is None else error * tf.reshape(sample_weight, (-1, 1))


def aligned_error(y_true, y_pred):
    return tf.reshape(y_true, tf.shape(y_pred)) - y_pred


class DictStep(Linear):
    """A train_step fed a dict, as fit() would be given one by a tf.data pipeline."""

    def train_step(self, data):
        return self.fit_step((data["obs"], data["target"]), lambda x, y, y_pred: mse(y, y_pred))


class AlignedDictStep(Linear):
    def train_step(self, data):
        return self.fit_step((data["obs"], data["target"]),
                             lambda x, y, y_pred: aligned_mse(y, y_pred))


class Transitions(Linear):
    """A train_step fed (obs, target, done, weight), which weights a (B, 1) error by them."""

    def train_step(self, data):
        obs, target, done, weight = data
        return self.fit_step((obs, target), lambda x, y, y_pred: tf.reduce_mean(
            tf.square(aligned_error(y, y_pred)) * (1.0 - done) * weight))


class HandMetric(Linear):
    """Lets Keras compute the loss, but reports a mean absolute error it computes itself,
    with no compile(metrics=...) involved."""

    def train_step(self, data):
        return self.fit_step(
            data, lambda x, y, y_pred: self.compute_loss(x=x, y=y, y_pred=y_pred), self.logs)

    def logs(self, x, y, y_pred, loss):
        return {"loss": loss, "mae": tf.reduce_mean(tf.abs(y - y_pred))}


class AlignedHandMetric(HandMetric):
    def logs(self, x, y, y_pred, loss):
        y = tf.reshape(y, tf.shape(y_pred))
        return {"loss": loss, "mae": tf.reduce_mean(tf.abs(y - y_pred))}


class StepMetrics(HandMetric):
    """Its own train_step, reporting compile(metrics=...) through Keras's compute_metrics."""

    def logs(self, x, y, y_pred, loss):
        return self.compute_metrics(x, y, y_pred, sample_weight=None)
