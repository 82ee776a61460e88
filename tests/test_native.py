"""Loss functions written in native torch and JAX, fn(y_true, y_pred): fed their own tensors,
judged, and located with torch's function mode and JAX's jaxprs. This module imports both
libraries, so each loss's backend must come from the code it runs, not from the module."""

import jax.numpy as jnp
import pytest
import torch

from pytest_lossguard import check


def torch_mse(y_true, y_pred):
    return torch.mean((y_true - y_pred) ** 2)


def torch_aligned_mse(y_true, y_pred):
    return torch.mean((y_true.reshape(y_pred.shape) - y_pred) ** 2)


def jax_mse(y_true, y_pred):
    return jnp.mean((y_true - y_pred) ** 2)


def jax_aligned_mse(y_true, y_pred):
    return jnp.mean((y_true.reshape(y_pred.shape) - y_pred) ** 2)


@pytest.mark.parametrize(("loss", "aligned", "backend"), [
    (torch_mse, torch_aligned_mse, "torch"), (jax_mse, jax_aligned_mse, "jax")])
def test_a_native_loss_is_flagged_at_its_line_and_its_aligned_twin_passes(loss, aligned, backend):
    report = check(loss)
    assert report.backend == backend and not report.ok
    first = report.failures[0]
    assert first.verdict == "broadcast"
    assert first.location.where.endswith(f"test_native.py:{loss.__code__.co_firstlineno + 1}")
    assert first.location.operation == "sub (7,), (7, 1) -> (7, 7)"
    assert check(aligned).ok


def tf_bfloat16_mse(y_true, y_pred, aligned=False):
    import tensorflow as tf

    if aligned:
        y_true = tf.reshape(y_true, tf.shape(y_pred))
    error = tf.cast(y_true, tf.bfloat16) - tf.cast(y_pred, tf.bfloat16)
    return tf.reduce_mean(tf.square(error))


def torch_bfloat16_mse(y_true, y_pred, aligned=False):
    if aligned:
        y_true = y_true.reshape(y_pred.shape)
    return torch.mean((y_true.to(torch.bfloat16) - y_pred.to(torch.bfloat16)) ** 2)


@pytest.mark.parametrize("loss", [tf_bfloat16_mse, torch_bfloat16_mse])
def test_bfloat16_results_are_judged_with_bfloat16_tolerances(loss):
    assert check(loss).counts()["broadcast"] == 4
    assert check(lambda y_true, y_pred: loss(y_true, y_pred, aligned=True)).ok


class SquaredError(torch.nn.Module):
    """A custom torch loss, prediction first as torch writes them."""

    def forward(self, input, target):
        return ((input - target) ** 2).mean()


class AlignedSquaredError(torch.nn.Module):
    def forward(self, input, target):
        return ((input - target.reshape(input.shape)) ** 2).mean()


def functional_mse(input, target):
    return torch.nn.functional.mse_loss(input, target)


def functional_aligned_mse(pred, target):
    return torch.nn.functional.mse_loss(pred, target.reshape(pred.shape))


@pytest.mark.parametrize("loss", [
    torch.nn.MSELoss(), torch.nn.L1Loss(), torch.nn.HuberLoss(), SquaredError(), SquaredError,
    functional_mse])
def test_torch_losses_take_the_prediction_first_and_are_flagged(loss):
    report = check(loss)
    assert report.backend == "torch"
    assert report.counts()["broadcast"] == 4, str(report)
    fix = report.failures[0].fix.text
    assert "target = target.reshape(" in fix and "(input.shape)" in fix


def first_minus_second(a, b):
    return torch.mean((a - b) ** 2)


@pytest.mark.parametrize(("order", "operation", "header"), [
    ("auto", "sub (7,), (7, 1) -> (7, 7)", "labels first"),
    ("prediction-first", "sub (7, 1), (7,) -> (7, 7)", "prediction first"),
])
def test_the_order_option_sets_which_argument_gets_the_prediction(order, operation, header):
    """Names that say nothing, (a, b), read as labels first unless the option says otherwise;
    the probe feeding labels (7,) against predictions (7, 1) shows which argument got which."""
    report = check(first_minus_second, order=order)
    first = report.failures[0]
    assert first.probe == "labels-missing-unit-axis" and first.location.operation == operation
    assert f"torch tensors, {header}, reference" in str(report)


def test_poisson_nll_broadcasts_without_any_torch_warning():
    report = check(torch.nn.PoissonNLLLoss(log_input=False), domain="probability")
    assert report.counts()["broadcast"] == 4


@pytest.mark.parametrize("loss", [AlignedSquaredError(), functional_aligned_mse])
def test_aligned_torch_losses_pass(loss):
    assert check(loss).ok


def test_native_targets_never_import_tensorflow_or_keras(tmp_path):
    """torch, JAX and NumPy targets are judged against the NumPy port of Keras's rule: checking
    them loads neither TensorFlow nor Keras (2 s a process, and an import-order crash risk)."""
    import subprocess
    import sys

    script = tmp_path / "native.py"
    script.write_text(
        "import sys\nimport jax.numpy as jnp\nimport numpy as np\nimport torch\n"
        "from pytest_lossguard import check\n"
        "def torch_mse(y_true, y_pred):\n    return torch.mean((y_true - y_pred) ** 2)\n"
        "def jax_mse(y_true, y_pred):\n    return jnp.mean((y_true - y_pred) ** 2)\n"
        "def np_mae(y_true, y_pred):\n    return np.mean(np.abs(y_true - y_pred))\n"
        "reports = [check(t) for t in (torch_mse, jax_mse, np_mae, torch.nn.L1Loss())]\n"
        "print([r.counts()['broadcast'] for r in reports], {r.alignment for r in reports})\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules))\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    counts, loaded = run.stdout.strip().splitlines()[-2:]
    assert counts == "[4, 4, 4, 4] {'numpy port of keras 3'}"
    assert loaded == "[]"
