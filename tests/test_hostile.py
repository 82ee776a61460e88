"""Hostile input: every case gets a clear one-line reason, and the rest of the suite runs on."""

import functools
import importlib.util
import json
import os
import random
import signal
import sys
import threading
import time
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
import zoo
from test_plugin import outcomes_by_item
from zoo import always_inf, returns_none, returns_text

from pytest_lossguard import LossguardError, LossguardWarning, check


@pytest.mark.parametrize(("target", "reason"), [
    (returns_none, "TypeError: returned None (NoneType), not a number; a loss or metric must "
                   "return its value: a tensor, an array or a number"),
    (returns_text, "TypeError: returned 'low' (str), not a number"),
    (always_inf, "returned inf on well-formed input; check domain="),
])
def test_a_loss_that_returns_no_usable_tensor_is_an_error_with_the_reason(target, reason):
    report = check(target)
    assert not report.ok and report.error is not None
    assert reason in report.error.message
    assert "\n" not in report.error.message


def test_nan_only_under_the_probe_is_a_failing_finding():
    def nan_when_ranks_differ(y_true, y_pred):
        loss = tf.reduce_mean(tf.square(y_true - y_pred))
        return loss if y_true.shape.rank == y_pred.shape.rank else loss * float("nan")

    report = check(nan_when_ranks_differ)
    assert not report.ok and report.error is None
    assert all(f.value != f.value for f in report.failures)  # NaN, shown as nan
    assert "-> nan" in str(report)


def global_state():
    """What a target interrupted by the time limit could leave behind: the SIGALRM handler and
    timer the limit sets, and the global state lossguard snapshots around a target."""
    name, keys, *position = np.random.get_state()
    return {
        "SIGALRM handler": signal.getsignal(signal.SIGALRM),
        "timer": signal.getitimer(signal.ITIMER_REAL),
        "python random": random.getstate(),
        "numpy random": (name, keys.tolist(), *position),
        "eager": tf.config.functions_run_eagerly(),
        "dtype policy": keras.config.dtype_policy().name,
    }


def test_a_hanging_loss_hits_the_timeout_and_state_is_restored():
    def hangs(y_true, y_pred):
        # Changes global state, then never returns to let anything put it back.
        np.random.seed(1)
        random.seed(2)
        tf.config.run_functions_eagerly(not tf.config.functions_run_eagerly())
        keras.config.set_dtype_policy("mixed_float16")
        while True:
            time.sleep(0.01)

    before = global_state()
    started = time.perf_counter()
    with pytest.raises(LossguardError, match=r"hangs did not finish within timeout=0.3 s"
                                             r".*raise the limit with check\(target, "
                                             r"timeout=<seconds>\) \(0 turns it off\)"):
        check(hangs, timeout=0.3)
    assert time.perf_counter() - started < 30
    assert global_state() == before
    assert check(zoo.aligned_mse, timeout=0.3).ok  # and the next target runs as usual
    with pytest.raises(LossguardError, match="timeout=-1 must be a number >= 0"):
        check(hangs, timeout=-1)


class Resource:
    """A context manager whose release takes longer than the time limit's re-arm interval."""

    released = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        time.sleep(0.3)
        Resource.released += 1


def holds_a_resource(y_true, y_pred):
    with Resource():
        time.sleep(30)


def test_the_time_limit_lets_a_context_manager_release_what_it_holds(monkeypatch):
    """Interrupting an __exit__ half way leaves its resource held: a TensorFlow GradientTape
    left on the tape stack breaks every later fit() in the process."""
    from pytest_lossguard import deadline

    monkeypatch.setattr(deadline, "REARM", 0.02)  # ticks all through the slow __exit__
    with pytest.raises(LossguardError, match="holds_a_resource did not finish"):
        check(holds_a_resource, timeout=0.2)
    assert Resource.released == 1


def test_the_time_limit_never_leaves_the_location_s_op_callback_behind(monkeypatch):
    """TensorFlow location runs under an op callback: a tick while it is taken down must not
    leave it on every later op in the process."""
    from tensorflow.python.eager import context

    from pytest_lossguard import deadline

    monkeypatch.setattr(deadline, "REARM", 0.02)
    remove = context.Context.remove_op_callback

    def slow_remove(self, callback):  # ticks land all through the removal
        time.sleep(0.3)
        return remove(self, callback)

    monkeypatch.setattr(context.Context, "remove_op_callback", slow_remove)
    try:
        check(zoo.mse, timeout=0.2)
    except LossguardError as exc:  # whether a later tick lands in the target depends on timing
        assert "did not finish" in str(exc)
    assert context.context().op_callbacks == []
    assert not tf.config.functions_run_eagerly()


def test_a_factory_that_hangs_while_building_hits_the_timeout_too():
    def slow_factory():
        while True:
            time.sleep(0.01)

    with pytest.raises(LossguardError, match=r"slow_factory did not finish within timeout=0.2 s"):
        check(slow_factory, timeout=0.2)


EXITS = """import sys

import numpy as np


def exits(y_true, y_pred):
    sys.exit(2)  # as an argparse parse_args() does on arguments it does not know


def mse(y_true, y_pred):
    return np.mean((y_true - y_pred) ** 2)
"""


def test_a_target_that_exits_the_process_is_an_error_and_the_command_goes_on(
        tmp_path, monkeypatch, capsys):
    from pytest_lossguard import cli

    namespace = {}
    exec(compile(EXITS, "exits.py", "exec"), namespace)
    with pytest.raises(LossguardError, match=r"^exits called sys.exit\(2\); "):
        check(namespace["exits"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "losses_exit.py").write_text(EXITS)
    assert cli.main(["losses_exit.py", "--format", "json"]) == 1
    rows = {row["nodeid"]: row for row in json.loads(capsys.readouterr().out)["targets"]}
    assert rows["losses_exit:exits"]["error"] == 1
    assert rows["losses_exit:mse"]["broadcast"] == 4


def test_a_huge_output_shape_is_refused_before_allocating():
    with pytest.raises(LossguardError, match=r"over the limit of 1000000"):
        check(returns_none, output_shape=(1000, 1000))


SUITE = """
import pytest
from zoo import hangs, nan_everywhere, returns_none

pytestmark = pytest.mark.lossguard(targets=[42, returns_none, nan_everywhere])


@pytest.mark.lossguard(targets=[hangs], timeout=0.5)
def test_ordinary():
    assert True


@pytest.mark.lossguard(output_shape=(1000, 1000))
def huge(y_true, y_pred):
    return y_true - y_pred
"""


def test_the_rest_of_the_suite_runs_on(zoo_pytester):
    zoo_pytester.makepyfile(test_hostile_suite=SUITE)
    result = zoo_pytester.runpytest("--lossguard", "-rA", "-p", "no:randomly",
                                    "--lossguard-report=report.json")
    assert outcomes_by_item(result) == {
        "test_hostile_suite.py::int[lossguard]": "ERROR",
        "test_hostile_suite.py::returns_none[lossguard]": "ERROR",
        "test_hostile_suite.py::nan_everywhere[lossguard]": "ERROR",
        "test_hostile_suite.py::test_ordinary": "PASSED",
        "test_hostile_suite.py::test_ordinary[lossguard-hangs]": "ERROR",
        "test_hostile_suite.py::huge[lossguard]": "ERROR",
    }
    assert "lossguard: lossguard:" not in result.stdout.str()
    assert "LossguardError" not in result.stdout.str()  # the reason, not the exception type
    result.stdout.fnmatch_lines_random([
        "ERROR test_hostile_suite.py::returns_none[[]lossguard[]] - lossguard: returns_none c*",
        "lossguard: 42 (int) is not callable; lossguard accepts*",
        "*returned None (NoneType), not a number; a loss or metric must return its",
        "*returned nan on well-formed input; check domain=*",
        "lossguard: hangs did not finish within timeout=0.5 s; fix the hang*",
        "lossguard: canonical shapes (1000, 1000) / (1000, 1000) at batch 7 need * over the limit*",
    ])
    rows = {row["nodeid"]: row for row in
            json.loads((zoo_pytester.path / "report.json").read_text())["targets"]}
    assert rows["test_hostile_suite.py::test_ordinary[lossguard-hangs]"]["seconds"] >= 0.5


def test_keras_backend_naming_a_missing_backend_is_an_error_item(pytester, monkeypatch):
    # OpenVINO is a Keras 3 backend that the test extra does not install.
    assert importlib.util.find_spec("openvino") is None, "openvino is installed here"
    monkeypatch.setenv("KERAS_BACKEND", "openvino")
    # A TensorFlow loss is judged against the installed Keras, which cannot load; a NumPy
    # loss needs no Keras at all and is judged against the NumPy port of Keras's rule.
    pytester.makepyfile(test_backend="""
        import numpy as np
        import pytest
        import tensorflow as tf

        @pytest.mark.lossguard
        def naive(y_true, y_pred):
            return tf.reduce_mean((y_true - y_pred) ** 2)

        @pytest.mark.lossguard
        def numpy_naive(y_true, y_pred):
            return np.mean((y_true - y_pred) ** 2)

        def test_ordinary():
            assert True
    """)
    result = pytester.runpytest_subprocess("--lossguard", "-rA")
    assert outcomes_by_item(result) == {"test_backend.py::naive[lossguard]": "ERROR",
                                        "test_backend.py::numpy_naive[lossguard]": "FAILED",
                                        "test_backend.py::test_ordinary": "PASSED"}
    result.stdout.fnmatch_lines([
        "lossguard: keras cannot load with KERAS_BACKEND='openvino' (*); "
        "install that backend or unset KERAS_BACKEND",
    ])


def test_a_loss_that_changes_global_state_passes_with_a_warning_naming_what_was_put_back(
        pytester):
    pytester.makepyfile(test_meddling="""
        import numpy as np
        import pytest
        import tensorflow as tf

        @pytest.mark.lossguard
        def meddling(y_true, y_pred):
            np.random.seed(1)
            tf.config.run_functions_eagerly(True)
            return tf.reduce_mean(tf.square(tf.reshape(y_true, tf.shape(y_pred)) - y_pred))

        def test_state_is_back():
            assert not tf.config.functions_run_eagerly()
    """)
    # In this process the run starts from this session's warning filters (`-W ignore`, say):
    # pin what a fresh process has for LossguardWarning, no filter, the "default" action.
    with warnings.catch_warnings():
        warnings.filterwarnings("default", category=LossguardWarning)
        result = pytester.runpytest("--lossguard", "-rP", "-p", "no:randomly")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines([
        "*test_meddling.py:5: LossguardWarning: meddling changed numpy random state, "
        "tf.config.run_functions_eagerly; lossguard put it back*",
        "*- Captured lossguard call -*",
        "lossguard: meddling is safe under 4 probe(s)",
        "  restored    the target changed numpy random state, tf.config.run_functions_eagerly; "
        "lossguard put it back",
    ])


def test_the_framework_import_is_not_blamed_on_the_first_target():
    # Importing Keras reseeds Python's random module; lossguard imports it before the
    # snapshot, so a pure first target is not reported as having changed global state.
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from pytest_lossguard import check\n"
        "def mse(y_true, y_pred):\n"
        "    return np.mean((y_true.reshape(y_pred.shape) - y_pred) ** 2)\n"
        "report = check(mse)\n"
        "print(report.ok, report.restored)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.strip().splitlines()[-1] == "True ()", result.stderr[-2000:]


def test_builtins_ufuncs_and_cached_functions_are_named_by_their_own_name():
    from pytest_lossguard.introspect import describe

    @functools.lru_cache
    def cached(y_true, y_pred):
        return y_true - y_pred

    assert describe(abs) == "abs"
    assert describe(np.subtract) == "subtract"
    assert describe(np.mean) == "mean"
    assert describe(cached).endswith("<locals>.cached")
    assert describe(zoo.ElementwiseAbs()) == "ElementwiseAbs"  # an instance: its class


def test_a_tuple_result_says_what_was_returned():
    def with_aux(y_true, y_pred):
        loss = tf.reduce_mean(tf.square(y_true - y_pred))
        return loss, {"squared": loss}

    report = check(with_aux)
    assert report.error is not None
    assert "returned a tuple of 2 (EagerTensor, dict); a loss or metric must return one tensor: " \
           "return its value alone, not (loss, aux)" in report.error.message
    assert "inhomogeneous" not in report.error.message


def test_a_changed_warnings_filter_is_put_back_and_named():
    def quiet(y_true, y_pred):
        warnings.simplefilter("ignore")
        return tf.reduce_mean(tf.square(tf.reshape(y_true, tf.shape(y_pred)) - y_pred))

    before = list(warnings.filters)
    report = check(quiet)
    assert report.ok and report.restored == ("warnings filters",)
    assert "restored    the target changed warnings filters" in str(report)
    assert warnings.filters == before


@pytest.mark.parametrize(("meddle", "read", "slot"), [
    (lambda: keras.config.set_floatx("float64"), keras.config.floatx, "keras floatx"),
    (lambda: torch.set_default_dtype(torch.float64), torch.get_default_dtype,
     "torch default dtype"),
    (lambda: torch.set_grad_enabled(False), torch.is_grad_enabled, "torch grad mode"),
    (lambda: keras.config.set_epsilon(1e-3), keras.config.epsilon, "keras epsilon"),
    (lambda: keras.config.set_image_data_format("channels_first"),
     keras.config.image_data_format, "keras image data format"),
    (lambda: np.seterr(divide="ignore"), np.geterr, "numpy error handling"),
    (lambda: torch.set_num_threads(torch.get_num_threads() + 1), torch.get_num_threads,
     "torch threads"),
    (lambda: torch.use_deterministic_algorithms(True, warn_only=True),
     torch.are_deterministic_algorithms_enabled, "torch deterministic algorithms"),
])
def test_a_framework_default_a_loss_changes_is_put_back_and_named(meddle, read, slot):
    def meddling(y_true, y_pred):
        meddle()
        return np.mean(np.square(np.reshape(y_true, np.shape(y_pred)) - y_pred))

    before = read()
    report = check(meddling, backend="numpy")
    assert report.ok and report.restored == (slot,)
    assert read() == before


def test_environment_variables_a_loss_sets_or_removes_are_put_back_and_named(monkeypatch):
    monkeypatch.setenv("LOSSGUARD_QA_KEPT", "1")
    monkeypatch.delenv("LOSSGUARD_QA_ADDED", raising=False)

    def meddling(y_true, y_pred):
        os.environ["LOSSGUARD_QA_ADDED"] = "1"
        os.environ.pop("LOSSGUARD_QA_KEPT")
        return np.mean(np.square(np.reshape(y_true, np.shape(y_pred)) - y_pred))

    before = dict(os.environ)
    report = check(meddling, backend="numpy")
    assert report.ok and report.restored == ("environment variables",)
    assert dict(os.environ) == before


def test_environment_variables_a_first_import_sets_are_the_import_s(tmp_path, monkeypatch):
    """A loss that imports a library lazily: what the library sets up at import stays (as
    TensorFlow's and scikit-learn's imports set KMP_ and TF_ variables), and is not blamed."""
    (tmp_path / "sets_up.py").write_text('import os\nos.environ["LOSSGUARD_QA_IMPORT"] = "1"\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("LOSSGUARD_QA_IMPORT", raising=False)

    def lazy(y_true, y_pred):
        import sets_up  # noqa: F401

        return np.mean(np.square(np.reshape(y_true, np.shape(y_pred)) - y_pred))

    try:
        report = check(lazy, backend="numpy")
        assert report.ok and report.restored == ()
        assert os.environ["LOSSGUARD_QA_IMPORT"] == "1"
    finally:
        sys.modules.pop("sets_up", None)


def test_the_tensorflow_version_is_read_from_tensorflow_cpu_too(monkeypatch):
    import importlib.metadata as metadata

    from pytest_lossguard.json_report import document

    real = metadata.version

    def version(name):
        if name == "tensorflow":
            raise metadata.PackageNotFoundError(name)
        return "2.99.0" if name == "tensorflow-cpu" else real(name)

    monkeypatch.setattr(metadata, "version", version)
    assert document([])["versions"]["tensorflow"] == "2.99.0"


def test_threading_frames_stay_out_of_via():
    def inner(y_true, y_pred):
        return np.mean(np.square(y_true - y_pred), axis=-1)

    def threaded(y_true, y_pred):
        out = []
        thread = threading.Thread(target=lambda: out.append(inner(y_true, y_pred)))
        thread.start()
        thread.join()
        return out[0]

    report = check(threaded, backend="numpy")
    chains = [f.location.chain for f in report.failures if f.location is not None]
    assert chains and all("inner" in chain[-1] for chain in chains)
    assert not any("threading.py" in frame for chain in chains for frame in chain)


def seeds():
    """TensorFlow's global seed and Keras's global seed and seed generator (with its state)."""
    from keras.src.backend.common import global_state
    from tensorflow.python.eager import context

    generator = global_state.get_global_attribute("global_seed_generator")
    return (context.global_seed(), global_state.get_global_attribute("global_random_seed"),
            generator, None if generator is None else generator.state.numpy().tolist())


def test_seeds_set_by_a_loss_are_put_back_and_named():
    def aligned(y_true, y_pred):
        return tf.reduce_mean(tf.square(tf.reshape(y_true, tf.shape(y_pred)) - y_pred))

    def tf_seed(y_true, y_pred):
        tf.random.set_seed(7)
        return aligned(y_true, y_pred)

    def keras_seed(y_true, y_pred):
        keras.utils.set_random_seed(8)
        return aligned(y_true, y_pred)

    def draws(y_true, y_pred):
        keras.random.normal((1,))  # no seed: Keras's global seed generator
        return aligned(y_true, y_pred)

    keras.random.normal((1,))  # the global generator exists before
    before, python_before = seeds(), global_state()
    assert check(tf_seed).restored == ("tf global seed",)
    assert seeds() == before
    assert check(keras_seed).restored == ("python random state", "numpy random state",
                                          "tf global seed", "keras global seed generator")
    assert seeds() == before and global_state() == python_before
    assert check(draws).restored == ("keras global seed generator",)
    assert seeds() == before


def test_a_loss_that_catches_the_time_limit_once_is_still_timed_out():
    def catches_once(y_true, y_pred):
        try:
            while True:
                time.sleep(0.01)
        except BaseException:  # the hostile part
            pass
        return tf.reduce_mean(tf.square(tf.reshape(y_true, tf.shape(y_pred)) - y_pred))

    before = global_state()
    with pytest.raises(LossguardError, match=r"catches_once did not finish within timeout=0.3"):
        check(catches_once, timeout=0.3)
    assert global_state() == before


def test_a_loss_that_always_catches_the_time_limit_ends_the_run_with_the_reason(pytester):
    pytester.makepyfile(test_stubborn="""
        import time
        import pytest

        @pytest.mark.lossguard(timeout=0.3)
        def stubborn(y_true, y_pred):
            while True:
                try:
                    time.sleep(0.05)
                except BaseException:
                    pass
    """)
    started = time.perf_counter()
    result = pytester.runpytest_subprocess("--lossguard", "-p", "no:randomly", timeout=300)
    assert result.ret == 3
    result.stderr.fnmatch_lines([
        "lossguard: stubborn did not finish within timeout=0.3 s; * It caught the time limit 10 "
        "times (an `except BaseException:` or a bare `except:` swallows it), so it cannot be "
        "stopped: lossguard ends the run here"])
    assert time.perf_counter() - started < 120


class SlowThirdCall(keras.Model):
    """A trained instance whose third call is slow, or raises what `third` gives."""

    def __init__(self, third=None):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.calls = None  # counted once trained
        self.third = third

    def call(self, x, training=False):
        if self.calls is None:
            return self.dense(x)
        self.calls += 1
        if self.calls == 3:
            if self.third is not None:
                raise self.third
            time.sleep(30)
        return self.dense(x)


@pytest.mark.parametrize("third", [None, KeyboardInterrupt(), RuntimeError("setup broke")])
def test_a_trained_instance_is_given_back_on_every_exit(monkeypatch, third):
    from pytest_lossguard import deadline

    monkeypatch.setattr(deadline, "REARM", 0.001)  # ticks all through lossguard's restore
    model = SlowThirdCall(third)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=1, verbose=0)
    model.calls = 0
    weights = [w.numpy().copy() for w in model.weights]
    optimizer, loss = model.optimizer, model.loss
    expected = KeyboardInterrupt if isinstance(third, KeyboardInterrupt) else LossguardError
    with pytest.raises(expected):
        report = check(model, input_shape=(3,), timeout=1)
        if report.error is not None:  # the error of the model's own call is in the report
            raise LossguardError(report.error.message)
    assert all(np.array_equal(w.numpy(), v) for w, v in zip(model.weights, weights, strict=True))
    assert model.optimizer is optimizer and model.loss == loss
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_model_whose_call_raises_while_lossguard_prepares_it_is_the_user_s_error():
    model = SlowThirdCall(RuntimeError("setup broke"))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=1, verbose=0)
    model.calls = 1  # its third call is lossguard's second, which prepares the weights
    weights = [w.numpy().copy() for w in model.weights]
    with pytest.raises(LossguardError) as raised:
        check(model, input_shape=(3,))
    message = str(raised.value)
    assert message.startswith("SlowThirdCall raised on inputs of per-sample shape (3,): "
                              "RuntimeError")
    assert "lossguard bug" not in message
    assert all(np.array_equal(w.numpy(), v) for w, v in zip(model.weights, weights, strict=True))


def test_the_error_a_model_s_call_raises_is_shown_not_only_keras_s_wrapper_of_it():
    model = SlowThirdCall(ValueError("expects 4 features\nsecond line"))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=1, verbose=0)
    model.calls = 2  # its third call is lossguard's first
    with pytest.raises(LossguardError) as raised:
        check(model, input_shape=(3,))
    assert ("raised on inputs of per-sample shape (3,): ValueError: expects 4 features "
            "(in SlowThirdCall.call()); set input_shape=") in str(raised.value)


def test_the_error_a_tf_function_raises_is_shown_not_only_autograph_s_wrapper_of_it():
    report = check(tf.function(zoo.raising))
    assert report.error is not None
    assert report.error.message == "ValueError: helper refuses (7, 1) (in helper)"


def test_a_model_with_dropout_gives_the_same_report_on_every_build():
    class WithDropout(zoo.HandMSE):
        def build(self, input_shape):
            self.dropout = keras.layers.Dropout(0.5)  # its seed: an unseeded draw
            super().build(input_shape)

        def call(self, x, training=None):
            return self.layer(self.dropout(x, training=training))

    def without_seconds(report):
        return {k: v for k, v in report.as_dict().items() if k != "seconds"}

    def run(python_seed):
        # Each run of a suite starts from its own Python random state, which Keras draws the
        # Dropout's seed from.
        random.seed(python_seed)
        return without_seconds(check(WithDropout(), input_shape=(3,), compile=zoo.COMPILE))

    state = random.getstate()
    try:
        first, second = run(1), run(2)
    finally:
        random.setstate(state)
    assert first["findings"] and first == second


class ResetRaises(keras.metrics.Metric):
    """A stateful metric whose reset_state raises once `armed`, as after some epochs."""

    def __init__(self, name="reset_raises", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.armed = False

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total.assign_add(tf.reduce_mean(tf.abs(y_pred)))

    def result(self):
        return self.total

    def reset_state(self):
        if self.armed:
            raise RuntimeError("reset_state broke")
        self.total.assign(0.0)


def variables_of(model):
    """Every value a check could leave changed: weights, optimizer slots and iterations, and
    each metric's state."""
    owners = [model, model.optimizer, *model.metrics]
    return [np.array(v.numpy()) for owner in owners for v in owner.variables]


def test_a_metric_whose_reset_raises_is_named_and_the_model_is_given_back():
    metric = ResetRaises()
    model = zoo.Linear()
    model.compile(optimizer="adam", loss="mse", metrics=[metric])
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=1, verbose=0)
    metric.armed = True
    before = variables_of(model)
    with pytest.raises(LossguardError) as raised:
        check(model, input_shape=(3,))
    message = str(raised.value)
    assert message.startswith("Linear: ") and "reset_state broke" in message
    assert "reset_state()" in message and "lossguard bug" not in message
    after = variables_of(model)
    assert len(after) == len(before)
    assert all(np.array_equal(a, b) for a, b in zip(after, before, strict=True))
