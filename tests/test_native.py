"""Loss functions written in native torch and JAX, fn(y_true, y_pred): fed their own tensors,
judged, and located with torch's function mode and JAX's jaxprs. This module imports both
libraries, so each loss's backend must come from the code it runs, not from the module."""

import inspect
import os
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from differential import agree

from pytest_lossguard import check

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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


jitted_mse = jax.jit(jax_mse)


def test_a_jitted_loss_is_judged_traced_and_advised_as_the_jax_function_it_wraps():
    # jax.jit returns a PjitFunction, not a function: it must still be JAX code at its line.
    report = check(jitted_mse)
    first = report.failures[0]
    assert report.backend == "jax" and report.source.endswith(
        f"test_native.py:{jax_mse.__code__.co_firstlineno}")
    assert first.verdict == "broadcast"
    assert first.location.where.endswith(f"test_native.py:{jax_mse.__code__.co_firstlineno + 1}")
    assert "jnp.reshape(y_true, jnp.shape(y_pred))" in str(report)
    assert check(jax.jit(jax_aligned_mse)).ok


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


class CountsCalls(AlignedSquaredError):
    """An aligned loss that keeps state in a buffer, as a loss with running statistics does."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    def forward(self, input, target):
        self.calls += 1
        return super().forward(input, target)


def test_a_torch_loss_s_buffers_come_back_as_they_were():
    loss = CountsCalls()
    assert check(loss).ok
    assert loss.calls.item() == 0


@pytest.mark.parametrize(("option", "value", "slot"), [
    ("jax_enable_x64", True, "jax x64"),
    ("jax_default_matmul_precision", "highest", "jax matmul precision"),
])
def test_jax_s_switches_a_loss_flips_are_put_back_and_named(option, value, slot):
    import jax

    def flips(y_true, y_pred):
        jax.config.update(option, value)
        return jnp.mean((y_true.reshape(y_pred.shape) - y_pred) ** 2)

    before = getattr(jax.config, option)
    assert before != value
    report = check(flips)
    assert report.ok and report.restored == (slot,)
    assert getattr(jax.config, option) == before


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


class RMSELoss(torch.nn.Module):
    """The RMSE module users copy from Q&A sites: forward(yhat, y), prediction first."""

    def forward(self, yhat, y):
        return torch.sqrt(torch.nn.functional.mse_loss(yhat, y) + 1e-6)


def rmse(y, yhat):
    return torch.sqrt(torch.mean((y - yhat) ** 2))


@pytest.mark.parametrize(("loss", "operation", "header"), [
    (RMSELoss(), "mse_loss (7, 1), (7,) -> (), broadcast to (7, 7) inside", "prediction first"),
    (rmse, "sub (7,), (7, 1) -> (7, 7)", "labels first"),
])
def test_yhat_y_reads_as_prediction_first_as_y_yhat_reads_labels_first(loss, operation, header):
    first = check(loss).failures[0]
    assert first.probe == "labels-missing-unit-axis" and first.location.operation == operation
    assert f"torch tensors, {header}, reference" in str(check(loss))


def picked_nll(y_true, y_pred):
    """Picks each sample's class probability by its id: (B, 1) ids pick a (B, B) grid."""
    return -torch.log(y_pred[torch.arange(len(y_true)), y_true]).mean()


def aligned_picked_nll(y_true, y_pred):
    return picked_nll(y_true.reshape(-1), y_pred)


SPARSE = {"domain": "sparse", "y_true_shape": (), "y_pred_shape": (5,)}


def test_torch_losses_on_class_ids_get_integer_ids_and_are_judged():
    # torch takes class ids as int64 only; Keras's container's float ids cannot be indexed.
    report = check(torch.nn.CrossEntropyLoss(), **SPARSE)
    assert report.ok and report.counts()["raises"] == 2, str(report)
    assert not check(picked_nll, **SPARSE).ok
    assert check(aligned_picked_nll, **SPARSE).ok


def hand_accuracy(y_true, y_pred):
    return torch.mean((y_pred.argmax(-1) == y_true).float())


def test_a_comparison_of_integer_ids_that_broadcasts_is_located():
    report = check(hand_accuracy, **SPARSE)
    first = report.failures[0]
    assert first.verdict == "broadcast", str(report)
    assert first.location.where.endswith(
        f"test_native.py:{hand_accuracy.__code__.co_firstlineno + 1}")
    assert first.location.operation == "eq (7,), (7, 1) -> (7, 7)"
    assert check(lambda y_true, y_pred: hand_accuracy(y_true.reshape(-1), y_pred), **SPARSE).ok


def test_poisson_nll_broadcasts_without_any_torch_warning():
    report = check(torch.nn.PoissonNLLLoss(log_input=False), domain="probability")
    assert report.counts()["broadcast"] == 4
    assert all(f.notes == () for f in report.findings)


def test_torch_s_size_warning_is_a_note_on_the_finding_never_the_verdict():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as under pytest -W error: it must not raise either
        report = check(torch.nn.MSELoss())
    assert report.counts()["broadcast"] == 4
    for finding in report.failures:
        assert len(finding.notes) == 1
        true, pred = torch.Size(finding.y_true), torch.Size(finding.y_pred)
        assert finding.notes[0] == (
            f"the target warned: UserWarning: Using a target size ({true}) that is different to "
            f"the input size ({pred}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.")
    assert "  note        the target warned: UserWarning: Using a target size" in str(report)
    assert all(f.notes == () for f in check(functional_aligned_mse).findings)


def test_torch_s_size_warning_stays_out_of_pytest_s_warnings_summary(pytester):
    pytester.makepyfile(test_torch_losses="""
        import pytest
        import torch

        @pytest.mark.lossguard
        def mse(input, target):
            return torch.nn.functional.mse_loss(input, target)
    """)
    result = pytester.runpytest("--lossguard", "-W", "error::UserWarning")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "warnings summary" not in output
    warned = [line for line in output.splitlines() if "Using a target size" in line]
    assert len(warned) == 4
    assert all(line.startswith("  note        the target warned: UserWarning:") for line in warned)


@pytest.mark.parametrize("loss", [AlignedSquaredError(), functional_aligned_mse])
def test_aligned_torch_losses_pass(loss):
    assert check(loss).ok


def test_native_targets_never_import_tensorflow_or_keras(tmp_path):
    """torch, Lightning, JAX (optax too), NumPy and scikit-learn targets are judged against the
    NumPy port of Keras's rule: checking them loads neither TensorFlow nor Keras (2 s a process,
    and an import-order crash risk), and each report's header names that reference."""
    import subprocess
    import sys

    from pytest_lossguard.align import PORT

    script = tmp_path / "native.py"
    script.write_text(
        "import sys\nimport jax.numpy as jnp\nimport numpy as np\nimport optax\nimport torch\n"
        "from sklearn.metrics import mean_squared_error\n"
        f"sys.path.insert(0, {str(EXAMPLES / 'pytorch')!r})\n"
        "from lightning_regression import LinearRegression\n"
        "from pytest_lossguard import check\n"
        "def torch_mse(y_true, y_pred):\n    return torch.mean((y_true - y_pred) ** 2)\n"
        "def jax_mse(y_true, y_pred):\n    return jnp.mean((y_true - y_pred) ** 2)\n"
        "def optax_huber(y_true, y_pred):\n"
        "    return jnp.mean(optax.huber_loss(y_pred, y_true))\n"
        "def np_mae(y_true, y_pred):\n    return np.mean(np.abs(y_true - y_pred))\n"
        "reports = [check(t) for t in (torch_mse, jax_mse, optax_huber, np_mae, "
        "torch.nn.L1Loss(), mean_squared_error, LinearRegression)]\n"
        "print([r.counts()['broadcast'] for r in reports], {r.alignment for r in reports})\n"
        "print(sum(f'reference: {r.alignment})' in str(r).splitlines()[1] for r in reports))\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules))\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    counts, headers, loaded = run.stdout.strip().splitlines()[-3:]
    assert PORT.name == "numpy port of keras 3"
    assert counts == f"[4, 4, 4, 4, 4, 0, 2] {{'{PORT.name}'}}"
    assert headers == "6"  # the six failing reports' target lines; a passing one has none
    assert loaded == "[]"


def optax_huber(y_true, y_pred):
    return jnp.mean(optax.huber_loss(y_pred, y_true))


def optax_aligned_huber(y_true, y_pred):
    return jnp.mean(optax.huber_loss(y_pred, y_true.reshape(y_pred.shape)))


def line_in(fn, text):
    """`line in function` of the first line of fn's source that contains text."""
    lines, start = inspect.getsourcelines(fn)
    return f"{start + next(i for i, line in enumerate(lines) if text in line)} in {fn.__name__}"


def test_optax_broadcasts_as_a_hand_computation_shows():
    labels = np.linspace(0.0, 1.0, 7, dtype=np.float32)
    predictions = labels[:, None] + 0.01
    assert optax.huber_loss(predictions, labels).shape == (7, 7)  # the silent broadcast
    assert optax.huber_loss(predictions, labels[:, None]).shape == (7, 1)


def test_a_broadcast_inside_optax_names_the_user_line_and_the_library_internals():
    report = check(optax_huber)
    assert report.counts()["broadcast"] == 4
    internals = f"optax/losses/_regression.py:{line_in(optax.huber_loss, 'predictions - targets')}"
    for finding in report.failures:
        assert finding.location.where.endswith(
            f"test_native.py:{optax_huber.__code__.co_firstlineno + 1}")
        assert finding.location.internals == internals
    assert (f"not in your code: in library internals at {internals}, which this line calls"
            in " ".join(str(report).split()))
    assert check(optax_aligned_huber).ok


def test_optax_marked_itself_is_not_in_your_code_and_never_named_as_yours():
    report = check(optax.huber_loss)
    assert report.counts()["broadcast"] == 4 and report.backend == "jax"
    assert all(f.location.where == "" and f.location.chain == () for f in report.failures)
    assert "broadcast   not in your code: sub (7, 1), (7,) -> (7, 7), in library internals at" \
        in str(report)
    assert "_regression.py:99   " not in str(report)  # never shown as a line of yours
    assert "align ranks before calling it" in report.failures[0].fix.text


@pytest.mark.parametrize(("loss", "internals"), [
    (torch_mse, ""), (jax_mse, ""), (functional_mse, "torch/nn/functional.py:"),
])
def test_an_op_the_user_s_line_writes_has_no_library_internals(loss, internals):
    location = check(loss).failures[0].location
    assert location.where.endswith(f"test_native.py:{loss.__code__.co_firstlineno + 1}")
    assert location.internals.startswith(internals) and bool(location.internals) == bool(internals)


def jax_where_error(y_true, y_pred):
    return jnp.mean(jnp.abs(jnp.where(y_pred > 0.0, y_true - 0.5, y_pred)))


def jax_aligned_where_error(y_true, y_pred):
    return jnp.mean(jnp.abs(jnp.where(y_pred > 0.0, y_true.reshape(y_pred.shape) - 0.5, y_pred)))


def test_jnp_where_broadcasting_its_operands_is_located_at_the_user_s_line():
    """jnp.where broadcasts its operands explicitly, then selects: the select is judged on the
    shapes the user's line handed it."""
    report = check(jax_where_error)
    assert report.counts()["broadcast"] == 4
    line = f"test_native.py:{jax_where_error.__code__.co_firstlineno + 1}"
    assert all(f.location.where.endswith(line) and f.location.op == "select_n"
               for f in report.failures)
    assert report.failures[0].location.operation == "select_n (7, 1), (7, 1), (7,) -> (7, 7)"
    assert check(jax_aligned_where_error).ok


def test_a_user_directory_named_like_a_framework_is_still_user_code(tmp_path, monkeypatch):
    # The old rule matched path parts such as /jax/ or /torch/; a project folder may be named so.
    folder = tmp_path / "torch" / "jax"
    folder.mkdir(parents=True)
    (folder / "framework_named_losses.py").write_text(
        "import numpy as np\n\ndef mae(y_true, y_pred):\n"
        "    return np.mean(np.abs(y_true - y_pred))\n")
    monkeypatch.syspath_prepend(str(folder))
    from framework_named_losses import mae

    location = check(mae).failures[0].location
    assert location.where.endswith(f"torch{os.sep}jax{os.sep}framework_named_losses.py:4")
    assert location.internals == ""


def on_torch(loss, prediction_first=False):
    """`loss` as the differential calls it, on NumPy arrays turned into torch tensors."""
    def fn(y_true, y_pred):
        y_true, y_pred = torch.from_numpy(y_true), torch.from_numpy(y_pred)
        with warnings.catch_warnings():  # torch's own size warning, for four of them
            warnings.simplefilter("ignore")
            return loss(y_pred, y_true) if prediction_first else loss(y_true, y_pred)

    return fn


def on_jax(loss):
    return lambda y_true, y_pred: loss(jnp.asarray(y_true), jnp.asarray(y_pred))


NATIVE = [
    ("torch_mse", torch_mse, on_torch(torch_mse), "real"),
    ("torch_aligned_mse", torch_aligned_mse, on_torch(torch_aligned_mse), "real"),
    ("SquaredError", SquaredError(), on_torch(SquaredError(), True), "real"),
    ("AlignedSquaredError", AlignedSquaredError(), on_torch(AlignedSquaredError(), True), "real"),
    ("MSELoss", torch.nn.MSELoss(), on_torch(torch.nn.MSELoss(), True), "real"),
    ("L1Loss", torch.nn.L1Loss(), on_torch(torch.nn.L1Loss(), True), "real"),
    ("HuberLoss", torch.nn.HuberLoss(), on_torch(torch.nn.HuberLoss(), True), "real"),
    ("PoissonNLLLoss", torch.nn.PoissonNLLLoss(log_input=False),
     on_torch(torch.nn.PoissonNLLLoss(log_input=False), True), "probability"),
    ("functional_mse", functional_mse, on_torch(functional_mse, True), "real"),
    ("functional_aligned_mse", functional_aligned_mse, on_torch(functional_aligned_mse, True),
     "real"),
    ("jax_mse", jax_mse, on_jax(jax_mse), "real"),
    ("jax_aligned_mse", jax_aligned_mse, on_jax(jax_aligned_mse), "real"),
    ("optax_huber", optax_huber, on_jax(optax_huber), "real"),
    ("optax_aligned_huber", optax_aligned_huber, on_jax(optax_aligned_huber), "real"),
]


@pytest.mark.parametrize(("target", "fn", "domain"), [n[1:] for n in NATIVE],
                         ids=[n[0] for n in NATIVE])
def test_native_verdicts_agree_with_the_differential(target, fn, domain):
    """Each verdict is what the library itself computes: the same function on the probe's
    layout against the canonical one, on values drawn in the test."""
    agree(target, fn, domain, {})
