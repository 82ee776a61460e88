"""Keras 3 on every backend: the same verdicts, locations and call paths on TensorFlow, JAX and
torch. These tests are backend-neutral: they run here under the session's KERAS_BACKEND, and
`test_every_backend` reruns this module under the other two (as test_legacy does for tf_keras).

The targets are examples/keras_ops: keras.ops losses, a Loss, a Metric, and the seed model
written as the Keras guide writes a custom train_step for each backend; and models with two
heads, two inputs and sample weights, written once for every backend.
"""

import importlib.util
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "examples" / "keras_ops"))

from ops_losses import AbsoluteError, MeanError, aligned_mse, mse  # noqa: E402
from ops_models import ComputeLoss, HandWrittenLoss, Linear  # noqa: E402

from pytest_lossguard import LossguardError, check  # noqa: E402
from pytest_lossguard.backends import load  # noqa: E402

read = load("keras").read
BACKEND = keras.backend.backend()
MODEL = {"input_shape": (3,), "compile": {"optimizer": "sgd", "loss": mse}}
LOSSES = HERE.parent / "examples" / "keras_ops" / "ops_losses.py"


def line_of(text, path=LOSSES):
    """`path:line` of the first line of `path` holding `text`."""
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if text in line)
    return f"{os.path.relpath(path)}:{number}"


def r2(y_true, y_pred):
    """A custom metric that broadcasts (N,) labels against (N, 1) predictions."""
    residual = keras.ops.sum(keras.ops.square(y_true - y_pred))
    total = keras.ops.sum(keras.ops.square(y_true - keras.ops.mean(y_true)))
    return 1.0 - residual / total


class BrokenComputeLoss(Linear):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return mse(y, y_pred)


if BACKEND == "jax":
    class BrokenTestStep(Linear):
        """Evaluates by hand, as a stateless JAX step."""

        def test_step(self, state, data):
            trainable, non_trainable, metrics_variables = state
            x, y = data
            y_pred, non_trainable = self.stateless_call(trainable, non_trainable, x)
            return {"loss": mse(y, y_pred)}, (trainable, non_trainable, metrics_variables)
else:
    class BrokenTestStep(Linear):
        """Evaluates by hand."""

        def test_step(self, data):
            x, y = data
            return {"loss": mse(y, self(x, training=False))}


def two_heads():
    """A regression head and a 4-class head on integer ids, a compiled loss for each."""
    inputs = keras.Input((3,))
    reg = keras.layers.Dense(1, name="reg")(inputs)
    cls = keras.layers.Dense(4, activation="softmax", name="cls")(inputs)
    model = keras.Model(inputs, [reg, cls])
    model.compile(optimizer="sgd", loss=["mean_squared_error", "sparse_categorical_crossentropy"])
    return model


class HandHeads(keras.Model):
    """The two heads, with the regression head's loss written by hand in compute_loss."""

    def __init__(self, **kwargs):
        inputs = keras.Input((3,))
        reg = keras.layers.Dense(1, name="reg")(inputs)
        cls = keras.layers.Dense(4, activation="softmax", name="cls")(inputs)
        super().__init__(inputs, [reg, cls], **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        classes = keras.losses.sparse_categorical_crossentropy(y[1], y_pred[1])
        return mse(y[0], y_pred[0]) + keras.ops.mean(classes)


class TwoInputs(Linear):
    """Called as call([state, action])."""

    def call(self, inputs, training=None):
        return self.layer(keras.ops.concatenate(inputs, axis=-1))


class TwoInputsHandWritten(TwoInputs, HandWrittenLoss):
    """The seed bug in a two-input model's train_step."""


class TwoInputsComputeLoss(TwoInputs, ComputeLoss):
    """Its twin that lets Keras compute the loss."""


class WeightedComputeLoss(Linear):
    """Weights a (B, 1) error by Keras's (B,) sample weights, in Keras's own steps."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        error = keras.ops.square(keras.ops.reshape(y, keras.ops.shape(y_pred)) - y_pred)
        return keras.ops.mean(error if sample_weight is None else error * sample_weight)


class WarnsOfRank(Linear):
    """Warns, as torch's mse_loss does on Keras's torch backend, when the ranks differ."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if len(y.shape) != len(y_pred.shape):
            warnings.warn("label rank differs from the prediction's", UserWarning, stacklevel=1)
        return mse(y, y_pred)


class Dropped:
    """An unseeded Dropout before the Dense unit, as users write one: on torch its mask comes
    from torch's global random state, not from a SeedGenerator the snapshot holds."""

    def build(self, input_shape):
        super().build(input_shape)
        self.dropout = keras.layers.Dropout(0.5)

    def call(self, x, training=None):
        return self.layer(self.dropout(x, training=training))


class DroppedHandWritten(Dropped, HandWrittenLoss):
    """The seed bug behind the Dropout."""


class DroppedComputeLoss(Dropped, ComputeLoss):
    """Its twin that lets Keras compute the loss."""


class NoisyComputeLoss(Linear):
    """The seed bug in compute_loss, plus noise from keras.random without a seed: it draws
    from Keras's global SeedGenerator, which no snapshot holds."""

    loss_of = staticmethod(mse)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.loss_of(y, y_pred) + 0.01 * keras.random.uniform(())


class NoisyAlignedComputeLoss(NoisyComputeLoss):
    loss_of = staticmethod(aligned_mse)


def failing_methods(report):
    return {str(f.method) for f in report.failures}


def test_the_header_names_keras_s_backend():
    assert check(aligned_mse).alignment.endswith(f" on {BACKEND}")


def test_a_keras_ops_loss_is_flagged_and_located_and_its_aligned_twin_passes():
    report = check(mse)
    assert not report.ok and check(aligned_mse).ok
    first = report.failures[0]
    assert (first.probe, first.verdict) == ("labels-missing-unit-axis", "broadcast")
    assert first.location.where == line_of("keras.ops.square(y_true - y_pred)")
    assert first.location.operation.endswith("(7,), (7, 1) -> (7, 7)")
    assert dict(first.paths) == {"direct call": "affected", "compile(loss=...)": "protected",
                                 "compile(metrics=...)": "affected"}


def test_a_loss_subclass_and_a_metric_are_flagged_on_every_path_they_are_used_on():
    loss, metric = check(AbsoluteError), check(MeanError)
    assert loss.kind == "loss" and not loss.ok
    assert dict(loss.failures[0].paths)["compile(loss=...)"] == "affected"
    assert loss.failures[0].location.where == line_of("return keras.ops.abs(y_true - y_pred)")
    assert metric.kind == "metric" and not metric.ok
    assert metric.failures[0].location.where == line_of("error = keras.ops.abs(y_true - y_pred)")
    assert dict(metric.failures[0].paths) == {
        "direct call": "affected", "compile(loss=...)": "n/a", "compile(metrics=...)": "affected"}


def test_the_seed_model_is_flagged_in_train_step_at_the_loss_line_and_its_twins_pass():
    report = check(HandWrittenLoss, **MODEL)
    assert not report.ok
    assert failing_methods(report) == {"train_step"}
    first = report.failures[0]
    assert first.verdict == "broadcast"
    assert first.location.where == line_of("keras.ops.square(y_true - y_pred)")
    assert any(link.endswith("in train_step") for link in first.location.chain)
    assert dict(first.paths) == {"fit()": "affected", "evaluate()": "protected"}
    assert check(ComputeLoss, **MODEL).ok
    assert check(Linear, **MODEL).ok


def test_a_step_behind_an_unseeded_dropout_is_judged_on_every_backend():
    report = check(DroppedHandWritten, **MODEL)
    assert report.error is None, str(report)
    assert failing_methods(report) == {"train_step"}
    assert check(DroppedComputeLoss, **MODEL).ok


def test_a_step_drawing_from_keras_s_global_seed_generator_is_judged():
    if BACKEND == "jax":  # Keras refuses unseeded draws in JAX's traces, in fit() too
        with pytest.raises(LossguardError, match=r"NoisyComputeLoss's own code raised while "
                                                 r"Keras built its training state .*seeded"):
            check(NoisyComputeLoss, **MODEL)
        return
    # Was 'not deterministic': Keras's global SeedGenerator went on from run to run.
    report = check(NoisyComputeLoss, **MODEL)
    assert report.error is None, str(report)
    assert failing_methods(report) == {"compute_loss"}
    assert check(NoisyAlignedComputeLoss, **MODEL).ok


@pytest.mark.parametrize(("model", "method"), [
    (BrokenComputeLoss, "compute_loss"), (BrokenTestStep, "test_step")])
def test_a_broken_compute_loss_or_test_step_is_named(model, method):
    report = check(model, **MODEL)
    assert failing_methods(report) == {method}
    assert all(f.verdict == "broadcast" for f in report.failures)


def test_a_compiled_custom_metric_is_judged_as_keras_runs_it():
    report = check(Linear, input_shape=(3,),
                   compile={"optimizer": "sgd", "loss": "mse", "metrics": [r2]})
    assert failing_methods(report) == {"metric 'r2'"}


def test_what_a_model_s_step_warns_is_a_note_on_its_finding_never_a_pytest_warning(recwarn):
    report = check(WarnsOfRank, **MODEL)
    assert report.failures
    assert all(any("label rank differs" in note for note in f.notes) for f in report.failures)
    assert not [w for w in recwarn if "label rank differs" in str(w.message)]
    assert check(Linear, **MODEL).ok


def test_a_model_instance_keeps_its_weights():
    model = HandWrittenLoss()
    model.compile(**MODEL["compile"])
    model(np.ones((2, 3), "float32"))
    before = [read(v) for v in model.weights]
    assert not check(model, input_shape=(3,)).ok
    after = [read(v) for v in model.weights]
    assert len(before) == len(after) == 2
    assert all((a == b).all() for a, b in zip(before, after, strict=True))


def test_a_hand_written_loss_on_one_of_two_heads_is_flagged_naming_that_head():
    assert check(two_heads, domain={"cls": "sparse"}).ok
    report = check(HandHeads, domain={"cls": "sparse"}, compile={"optimizer": "sgd"})
    assert {(f.output, str(f.method)) for f in report.failures} == {("reg", "compute_loss")}
    assert report.failures[0].location.where == line_of("keras.ops.square(y_true - y_pred)")


def test_a_two_input_model_is_flagged_in_train_step_and_its_twin_passes():
    report = check(TwoInputsHandWritten, input_shape=[(3,), (1,)], compile=MODEL["compile"])
    assert failing_methods(report) == {"train_step"}
    assert check(TwoInputsComputeLoss, input_shape=[(3,), (1,)], compile=MODEL["compile"]).ok


def test_sample_weights_reach_compute_loss_through_keras_s_own_steps():
    report = check(WeightedComputeLoss, input_shape=(3,))
    assert [(f.probe, str(f.method)) for f in report.failures] == [
        ("sample-weight-rank", "compute_loss")]
    assert dict(report.failures[0].paths) == {"fit()": "affected", "evaluate()": "affected"}


class Counted(keras.Model):
    """A subclassed model with no build() of its own, counting its calls."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(4, activation="relu")
        self.out = keras.layers.Dense(1)
        self.calls = 0

    def call(self, x, training=False):
        self.calls += 1
        return self.out(self.hidden(x))


class OwnBuild(Counted):
    """The same model, building its layers in a build() of its own."""

    def build(self, input_shape):
        self.calls -= 100
        self.hidden.build(input_shape)
        self.out.build((*input_shape[:-1], 4))


@pytest.mark.parametrize("model", [Counted, OwnBuild])
def test_the_first_call_builds_a_model_as_keras_does_without_the_symbolic_pass(model):
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    runs = []
    for first_call in (lambda m: m(x, training=False), lambda m: load("keras").forward(m, x)):
        keras.utils.set_random_seed(3)
        built = model()
        outputs = keras.ops.convert_to_numpy(first_call(built))
        with pytest.raises(ValueError, match="already built"):
            built.extra = keras.layers.Dense(1)  # the state is locked, as Keras's build locks it
        runs.append((built.calls, built.built, built.get_build_config(),
                     [read(v).tolist() for v in built.weights], outputs.tolist()))
    (keras_calls, *keras_state), (calls, *state) = runs
    assert state == keras_state
    # Keras traces a model without a build() symbolically before it calls it; forward does not.
    # A model with its own build() is built by it, then called, either way.
    assert (keras_calls, calls) == ((2, 1) if model is Counted else (-99, -99))


@pytest.mark.parametrize("backend", [b for b in ("tensorflow", "jax", "torch") if b != BACKEND])
def test_every_backend(backend):
    """This module, rerun under another Keras backend."""
    if os.environ.get("LOSSGUARD_BACKEND_RERUN"):
        pytest.skip("already a rerun")
    if importlib.util.find_spec(backend) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{backend} is missing in CI; the test extra installs it")
        pytest.skip(f"{backend} is not installed; pip install -e '.[test]' installs it")
    env = {**os.environ, "KERAS_BACKEND": backend, "LOSSGUARD_BACKEND_RERUN": "1",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(Path(__file__))],
        cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=600,
    )
    tail = result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and not re.search(r"failed|error", summary), tail
