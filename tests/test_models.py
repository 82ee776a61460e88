"""Model targets, in-process, on whichever Keras flavour zoo.py picked.

test_legacy.py reruns this module with TF_USE_LEGACY_KERAS=1, so every test here must hold
on Keras 3 and on tf_keras; where the two Kerases truly differ, the expectation says so.
"""

import ast
import inspect
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import zoo
from pasting import pasted

from pytest_lossguard import LossguardError, Options, check, check_loss, check_model, probes
from pytest_lossguard.advice import fix_code
from pytest_lossguard.backends import load
from pytest_lossguard.errors import NotProbed
from pytest_lossguard.introspect import requires_weights, unpacks_weights
from pytest_lossguard.kinds import model as model_kind

SHAPE = {"input_shape": (3,)}


def failing(report):
    return [(f.probe, str(f.method)) for f in report.failures]


def test_hand_written_loss_in_train_step_is_flagged_with_numbers_and_fix():
    report = check(zoo.HandMSE, **SHAPE)
    assert not report.ok
    first = report.failures[0]
    assert (first.probe, first.verdict, str(first.method)) == (
        "labels-missing-unit-axis", "broadcast", "train_step")
    assert (first.y_true, first.y_pred) == ((7,), (7, 1))
    assert first.value != pytest.approx(first.reference_value, rel=1e-3)
    assert first.update_difference > 1e-3 and first.update_size > 0
    text = str(report)
    assert "train_step" in text and "y_true (7,)  y_pred (7, 1)" in text
    assert "largest weight-update difference" in text
    assert "tests/zoo.py:" in first.location.where and "y_true - y_pred" in first.location.source
    fix = " ".join(line.strip() for line in text.split("  fix ", 1)[1].splitlines())
    assert "self.compute_loss(x=x, y=y, y_pred=y_pred)" in fix


@pytest.mark.parametrize("model", [zoo.CompiledLoss, zoo.ComputeLoss, zoo.Linear])
def test_models_that_let_keras_compute_the_loss_pass(model):
    report = check(model, **SHAPE)
    assert report.ok, str(report)
    assert {f.verdict for f in report.findings} == {"safe"}
    # Keras's own test_step takes sample weights, so the weighting probe runs through it.
    assert [f.probe for f in report.findings] == [
        "labels-missing-unit-axis", "labels-extra-unit-axis", "sample-weight-rank"]


def test_a_broken_test_step_alone_is_flagged_and_training_is_not():
    report = check(zoo.BrokenTestStep, **SHAPE)
    assert {method for _, method in failing(report)} == {"test_step"}
    assert all(f.update_difference is None for f in report.failures)
    trained = [f for f in report.findings if f.verdict == "safe"]
    assert trained and all(f.update_difference == pytest.approx(0, abs=1e-6) for f in trained)


def test_an_overridden_compute_loss_that_broadcasts_is_named():
    report = check(zoo.BrokenComputeLoss, **SHAPE)
    assert not report.ok
    assert {method for _, method in failing(report)} == {"compute_loss"}


class SuperComputeLoss(zoo.Linear):
    """BrokenComputeLoss with the fix lossguard gives it pasted: Keras's own compute_loss."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)


def test_an_overridden_compute_loss_is_told_to_call_keras_s_own_not_itself():
    fix = " ".join(check(zoo.BrokenComputeLoss, **SHAPE).failures[0].fix.text.split())
    assert ("return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)"
            in fix and "self.compute_loss" not in fix), fix
    assert check(SuperComputeLoss, **SHAPE).ok


def test_a_compiled_custom_metric_is_judged_as_keras_runs_it():
    compile = {**zoo.COMPILE, "metrics": [zoo.r2]}
    report = check(zoo.Linear, compile=compile, **SHAPE)
    if zoo.LEGACY:
        # tf_keras's MeanMetricWrapper aligns ranks before calling a metric function.
        assert report.ok, str(report)
    else:
        assert not report.ok
        assert {method for _, method in failing(report)} == {"metric 'r2'"}
        assert all(f.update_difference == pytest.approx(0, abs=1e-6) for f in report.failures)
        assert "metric 'r2'" in str(report)


def test_a_near_miss_metric_that_aligns_itself_passes():
    def r2_aligned(y_true, y_pred):
        return zoo.r2(zoo.tf.reshape(y_true, zoo.tf.shape(y_pred)), y_pred)

    report = check(zoo.Linear, compile={**zoo.COMPILE, "metrics": [r2_aligned]}, **SHAPE)
    assert report.ok, str(report)


def test_a_metric_the_train_step_computes_itself_is_fixed_in_that_step():
    # No compile(metrics=...) is involved: the fix is in train_step, not in a compiled metric.
    report = check(zoo.HandMetric, **SHAPE)
    assert not report.ok
    assert {method for _, method in failing(report)} == {"metric 'mae'"}
    assert all(f.method.step == "train_step" for f in report.failures)
    fix = " ".join(report.failures[0].fix.text.split())
    ns = "tf" if zoo.LEGACY else "keras.ops"
    assert fix.startswith("in train_step, align the labels to the prediction before computing "
                          f"the metric 'mae', e.g. y = {ns}.reshape(y, {ns}.shape(y_pred))"), fix
    assert "compile(metrics=...)" not in fix
    assert check(zoo.AlignedHandMetric, **SHAPE).ok


def test_a_compiled_metric_that_the_user_s_own_step_reports_keeps_the_compile_fix():
    # The near miss: a train_step of the user's whose metric comes from compile(metrics=...)
    # through Keras's compute_metrics. The fix belongs to the compiled metric, not the step.
    compile = {**zoo.COMPILE, "metrics": [zoo.r2]}
    report = check(zoo.StepMetrics, compile=compile, **SHAPE)
    if zoo.LEGACY:  # tf_keras's MeanMetricWrapper aligns ranks before calling a metric function
        assert report.ok, str(report)
        return
    assert {method for _, method in failing(report)} == {"metric 'r2'"}
    assert all(f.method.step == "" for f in report.failures)
    assert "compile(metrics=...) does not align custom metric functions" in str(report)


def test_multi_output_model_flags_only_the_output_whose_loss_broadcasts():
    report = check(zoo.two_outputs)
    flagged = {probe.rsplit(" ", 1)[-1] for probe, _ in failing(report)}
    assert flagged == {"[count]"}
    assert {method for _, method in failing(report)} == {"compiled loss"}
    assert any(f.probe.endswith("[price]") and f.verdict == "safe" for f in report.findings)


def test_constructor_arguments_come_from_init_and_a_factory_builds_a_compiled_model():
    assert not check(zoo.Scaled, init={"scale": 2.0}, **SHAPE).ok
    assert not check(zoo.hand_mse_factory, **SHAPE).ok
    with pytest.raises(LossguardError, match=r"cannot build Scaled: TypeError.*init=\{\.\.\.\}"):
        check(zoo.Scaled, **SHAPE)


def test_a_model_raising_on_aligned_labels_is_an_error_with_its_exception():
    report = check(zoo.Raising, **SHAPE)
    assert report.error is not None
    assert "train_step raised on canonical labels: RuntimeError" in report.error.message
    assert isinstance(report.error.exception, RuntimeError)


def test_a_model_whose_step_takes_no_labels_is_not_probed_and_says_why():
    # An autoencoder's step raises on (x, y) and runs on x alone, as fit(x) gives it.
    with pytest.raises(NotProbed, match=r"Autoencoder's train_step takes its data as inputs "
                                        r"alone, as fit\(x\) gives it .*nothing to probe"):
        check(zoo.Autoencoder, **SHAPE)
    # The near miss, a step that raises on x alone too, is the user's error, as before.
    assert "train_step raised on canonical labels" in check(zoo.Raising, **SHAPE).error.message


def test_weights_a_step_builds_are_named_and_the_model_is_not_probed():
    # fit() lets a first step build a layer call() never uses: probing needs them all first.
    with pytest.raises(NotProbed, match=r"StepOnlyLayer's train_step builds weights that its "
                                        r"call\(\) does not \(.*kernel.*, .*bias.*\)"):
        check(zoo.StepOnlyLayer, **SHAPE)
    # Built in build(), the same layer is probed: the step's broadcast is found.
    report = check(zoo.StepLayerBuilt, **SHAPE)
    assert report.error is None and not report.ok, str(report)


def test_a_model_not_probed_for_the_weights_its_step_builds_still_fits():
    # lossguard builds the optimizer before its snapshot; fit() builds it in the first step,
    # once that step has made the layer. Left built without it, fit() raised 'Unknown
    # variable' (tf_keras: KeyError) on the user's model after the check.
    model = zoo.StepOnlyLayer()
    model.compile(**zoo.COMPILE)
    with pytest.raises(NotProbed):
        check(model, **SHAPE)
    rng = np.random.default_rng(0)
    history = model.fit(rng.normal(size=(8, 3)), rng.normal(size=(8, 1)), verbose=0)
    assert len(history.history["loss"]) == 1
    assert len(model.optimizer.variables) > 1  # built by fit(), with the step's layer


def test_a_model_compiled_without_a_loss_has_fit_judged_and_evaluate_left_out():
    # Keras's guide writes the loss in train_step and compiles an optimizer alone: Keras's own
    # test_step has no loss to compute, so evaluate() fails on it, but fit() is probed.
    report = check(zoo.tracked)
    assert report.error is None and not report.ok, str(report)
    assert {str(f.method) for f in report.failures} == {"train_step"}
    assert all(any(link.endswith(" in train_step") for link in f.location.chain)
               for f in report.failures)
    fix = " ".join(report.failures[0].fix.text.split())
    assert "compute_loss" not in fix  # there is no compiled loss for Keras to align
    if not zoo.LEGACY:  # tf_keras's test_step reports no loss instead of raising
        assert all(dict(f.paths) == {"fit()": "affected"} for f in report.failures)
        assert report.failures[0].notes[-1].startswith(
            "evaluate() not probed: Keras's own test_step raises on the canonical labels "
            "(ValueError: No loss to compute")
    if not zoo.LEGACY:  # Keras's test_step raising in the user's own code is still an error
        error = check(zoo.EvaluationRaises, **SHAPE).error
        assert error is not None and ("test_step raised on canonical labels: ValueError: the "
                                      "evaluation loss is unfinished") in error.message
    # The near miss, its aligned twin, passes; a test_step the user wrote that raises is still
    # an error (test_a_model_raising_on_aligned_labels_is_an_error_with_its_exception).
    aligned = check(zoo.tracked_aligned)
    assert aligned.ok
    if not zoo.LEGACY:  # a passing report shows the note too
        assert "\n  note        evaluate() not probed: " in str(aligned), str(aligned)


class ConcatInputs(zoo.keras.Model):
    def __init__(self):
        super().__init__()
        self.layer = zoo.keras.layers.Dense(1)

    def call(self, inputs, training=None):
        return self.layer(tf.concat(inputs, axis=-1))


def built_hand_mse():
    model = zoo.HandMSE()
    model.build((None, 3))
    return model


def test_a_model_built_or_called_before_the_check_gives_its_own_input_shape():
    # Built on (None, 3) by its factory, or called once on (2, 3): Keras's build config says
    # (3,), so no input_shape= is needed, and the verdicts are those given with the option.
    given = check(zoo.HandMSE, **SHAPE)
    called = zoo.HandMSE()
    called(np.zeros((2, 3), np.float32))
    for target in (built_hand_mse, called):
        report = check(target)
        assert [(f.probe, f.verdict) for f in report.findings] == \
            [(f.probe, f.verdict) for f in given.findings]
    # A subclassed model of two inputs, called on a list, gives both shapes.
    two = ConcatInputs()
    two([np.zeros((2, 3), np.float32), np.zeros((2, 1), np.float32)])
    assert check(two).ok
    # Never built, it still needs the option (below).
    with pytest.raises(LossguardError, match="cannot tell the input shape of model HandMSE"):
        check(zoo.HandMSE())


def test_a_model_without_known_input_shape_names_the_option():
    with pytest.raises(LossguardError, match=r"input shape of model HandMSE.*input_shape=") as e:
        check(zoo.HandMSE)
    # A placeholder, not a guessed shape: only the author knows how many features it takes.
    assert str(e.value).endswith("e.g. @pytest.mark.lossguard(input_shape=(<features>,)), or "
                                 "check(target, input_shape=(<features>,))")


def test_a_functional_model_supplies_its_own_input_shape():
    report = check(zoo.two_outputs)
    assert report.findings and report.error is None


def returns_nothing(self, data):
    self.fit_step(data, lambda x, y, y_pred: zoo.mse(y, y_pred))


def reports_no_loss_and_trains_nothing(self, data):
    return {"batches": 1.0}


@pytest.mark.parametrize(("step", "message"), [
    (returns_nothing, "train_step returned None"),
    (reports_no_loss_and_trains_nothing, "train_step reported no loss and moved no weight"),
])
def test_a_train_step_without_a_loss_is_an_error_naming_the_fix(step, message):
    model = type("Silent", (zoo.Linear,), {"train_step": step})
    report = check(model, **SHAPE)
    assert report.error is not None
    assert message in report.error.message


def test_a_train_step_that_reports_no_loss_is_still_judged_by_its_weight_update():
    class Quiet(zoo.Linear):
        def train_step(self, data):
            self.fit_step(data, lambda x, y, y_pred: zoo.mse(y, y_pred))
            return {}

    report = check(Quiet, **SHAPE)
    assert report.error is None and not report.ok
    assert any("weight update" in f.message for f in report.failures)


def test_probing_leaves_an_instance_compiled_as_it_was():
    fresh = zoo.HandMSE()
    assert not check(fresh, **SHAPE).ok
    assert not (getattr(fresh, "compiled", False) or getattr(fresh, "_is_compiled", False))
    fresh.compile(optimizer="adam", loss="mean_absolute_error")
    fresh.fit(np.ones((4, 3), np.float32), np.ones((4, 1), np.float32), verbose=0)

    mine = zoo.HandMSE()
    mine.compile(optimizer="adam", loss="mean_absolute_error")
    optimizer = mine.optimizer
    assert not check(mine, input_shape=(3,), compile={"optimizer": "sgd", "loss": zoo.mse}).ok
    assert mine.optimizer is optimizer and mine.loss == "mean_absolute_error"


def test_probing_an_instance_leaves_its_weights_and_optimizer_untouched():
    model = zoo.HandMSE()
    model.compile(optimizer="adam", loss="mean_squared_error")
    model(np.ones((2, 3), np.float32))
    model.optimizer.build(model.trainable_variables)
    slots = model.optimizer.variables

    def values():  # the step located under tf_keras runs eagerly and moves all of these
        return [np.array(v.numpy())
                for v in [*model.variables, *(slots() if callable(slots) else slots)]]

    before = values()
    iterations = int(model.optimizer.iterations.numpy())
    report = check(model, **SHAPE)
    assert report.failures and all(f.location is not None for f in report.failures)
    after = values()
    assert len(before) > len(model.variables)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert int(model.optimizer.iterations.numpy()) == iterations


@pytest.mark.skipif(not zoo.LEGACY, reason="tf_keras's legacy optimizers")
def test_a_legacy_optimizer_s_slots_are_made_before_the_snapshot_and_come_back_empty():
    """tf_keras's legacy optimizers make their slots in the first step: made then, momentum
    would carry from run to run (a false "not deterministic") and stay in the user's optimizer."""
    model = zoo.HandMSE()
    model.compile(optimizer=zoo.keras.optimizers.legacy.SGD(0.01, momentum=0.9), loss="mse")
    model(np.ones((2, 3), np.float32))
    report = check(model, **SHAPE)
    assert report.error is None and report.failures
    assert model.optimizer.variables()  # made, as fit() would, and empty again
    assert all(not np.any(v.numpy()) for v in model.optimizer.variables())


def test_model_verdicts_are_deterministic():
    first, second = check(zoo.HandMSE, **SHAPE), check(zoo.HandMSE, **SHAPE)
    assert first.as_dict()["findings"] == second.as_dict()["findings"]


def test_loss_probes_use_this_flavours_alignment():
    report = check(zoo.mse)
    assert report.alignment.split()[0] == ("tf_keras" if zoo.LEGACY else "keras")
    assert not report.ok
    assert check(zoo.aligned_mse).ok


def test_check_model_and_check_loss_refuse_the_other_kind():
    assert not check_model(zoo.HandMSE, **SHAPE).ok
    with pytest.raises(LossguardError, match="mse is not a keras Model; use check_loss"):
        check_model(zoo.mse)
    with pytest.raises(LossguardError, match="HandMSE is not a loss; use check_model"):
        check_loss(zoo.HandMSE)


def evaluate(compile_kwargs, inputs):
    """What Keras's own compile() + evaluate() report for fixed predictions and labels."""
    model = zoo.keras.Sequential([zoo.keras.layers.Lambda(lambda t: t)])
    model.compile(**compile_kwargs)
    logs = model.evaluate(inputs.y_pred, inputs.y_true, batch_size=len(inputs.y_true),
                          return_dict=True, verbose=0)
    return [value for key, value in sorted(logs.items())]


@pytest.mark.parametrize("target", [zoo.mse, zoo.ElementwiseAbs(), zoo.r2])
def test_call_paths_agree_with_keras_compile_and_evaluate(target):
    report = check(target)
    cases = {case.label: case for case in probes.cases(Options.build(), takes_weights=False)}
    assert report.failures
    for finding in report.failures:
        case, claims = cases[finding.probe], dict(finding.paths)
        assert claims["direct call"] == "affected"
        for path, kwargs in (("compile(loss=...)", {"loss": target}),
                             ("compile(metrics=...)", {"loss": "mae", "metrics": [target]})):
            try:
                reference = evaluate(kwargs, case.canonical)
            except (TypeError, ValueError):
                assert claims[path] == "n/a", (finding.probe, path)
                continue
            probed = evaluate(kwargs, case.inputs)
            differs = probed != pytest.approx(reference, rel=1e-4, abs=1e-6)
            assert claims[path] == ("affected" if differs else "protected"), (finding.probe, path)


@pytest.mark.parametrize(("model", "paths"), [
    (zoo.HandMSE, {"fit()": "affected", "evaluate()": "protected"}),
    (zoo.BrokenTestStep, {"fit()": "protected", "evaluate()": "affected"}),
    # tf_keras's test_step reports no loss once compute_loss is overridden: nothing to compare.
    (zoo.BrokenComputeLoss, {"fit()": "affected",
                             "evaluate()": "n/a" if zoo.LEGACY else "affected"}),
])
def test_model_findings_say_whether_fit_or_evaluate_is_affected(model, paths):
    report = check(model, **SHAPE)
    assert report.failures and all(dict(f.paths) == paths for f in report.failures)
    assert "paths       affected: " in str(report)


ABS_LOSS = {"compile": {"optimizer": "sgd", "loss": zoo.ElementwiseAbs()}}


@pytest.mark.parametrize(("model", "options", "mirrored"), [
    # Keras wrote both steps and the loss computation (a Loss subclass overriding call).
    (zoo.Linear, ABS_LOSS, True),
    # Keras's steps, but the user's compute_loss may tell the phases apart.
    (zoo.BrokenComputeLoss, {}, False),
    (zoo.EvaluatesByHand, {}, False),
    (zoo.TrainingScaled, {}, False),
    (zoo.BrokenTestStep, {}, False),  # the user wrote test_step
])
def test_evaluate_reads_fit_s_runs_only_where_keras_wrote_the_steps_and_they_agree(
        model, options, mirrored, monkeypatch):
    phases = []
    run = model_kind.Harness.run
    monkeypatch.setattr(model_kind.Harness, "run",
                        lambda self, phase, batch: phases.append(phase) or run(self, phase, batch))
    report = check(model, **SHAPE, **options)
    assert (phases.count("test") == 1) is mirrored, phases
    monkeypatch.setattr(model_kind, "_mirrors",
                        lambda harness, batch: {phase: phase for phase in harness.methods})
    unmirrored = check(model, **SHAPE, **options)
    assert [f.as_dict() for f in report.findings] == [f.as_dict() for f in unmirrored.findings]


def test_a_compute_loss_that_writes_the_loss_by_hand_only_when_evaluating_is_flagged():
    report = check(zoo.EvaluatesByHand, **SHAPE)
    if zoo.LEGACY:  # tf_keras never tells compute_loss the phase: Keras computes it always
        assert report.ok
        return
    assert [f.probe for f in report.failures] == ["labels-missing-unit-axis",
                                                  "labels-extra-unit-axis"]
    assert all(dict(f.paths) == {"fit()": "protected", "evaluate()": "affected"}
               for f in report.failures)


def with_first_statement(fn, code):
    """fn (or a class's call method) rebuilt from source with `code` as its first statement."""
    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source)
    node = tree.body[0]
    if isinstance(node, ast.ClassDef):
        node = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "call")
    node.body.insert(0, ast.parse(code).body[0])
    namespace = dict(sys.modules[fn.__module__].__dict__)
    exec(compile(ast.fix_missing_locations(tree), inspect.getsourcefile(fn), "exec"), namespace)
    return namespace[fn.__name__]


@pytest.mark.parametrize("target", [zoo.mse, zoo.ElementwiseAbs])
def test_the_fix_hint_applied_to_the_code_makes_every_probe_pass(target):
    report = check(target)
    assert not report.ok
    code = fix_code(report.failures[0], report.true_shape, report.pred_shape,
                    load(report.backend))
    assert code in " ".join(str(report).split())
    fixed = with_first_statement(target, code)
    assert check(fixed).ok, str(check(fixed))


@pytest.mark.parametrize("name", ["Poisson", "KLDivergence"])
def test_metric_objects_are_aligned_by_tf_keras_but_not_by_keras_3(name):
    # tf_keras's MeanMetricWrapper aligns ranks; Keras 3's hands the labels over as they come.
    report = check(getattr(zoo.keras.metrics, name), domain="probability")
    assert report.kind == "metric" and report.error is None
    assert report.ok == zoo.LEGACY, str(report)
    if not zoo.LEGACY:
        assert dict(report.failures[0].paths)["compile(metrics=...)"] == "affected"


class Noisy(zoo.Linear):
    """An aligned loss plus unseeded noise: every run of the step reports another loss."""

    def train_step(self, data):
        return self.fit_step(data, lambda x, y, y_pred: zoo.aligned_mse(y, y_pred)
                             + np.random.uniform())


def test_a_step_with_unseeded_randomness_is_an_error_not_a_verdict():
    report = check(Noisy, **SHAPE)
    assert report.error is not None
    assert "train_step is not deterministic" in report.error.message
    # The near miss: the same step without the noise is a clean, deterministic model.
    assert check(zoo.ComputeLoss, **SHAPE).ok


def test_a_step_adding_its_regularisation_losses_is_located_at_its_loss():
    """Keras 3 reads a weight regulariser's loss through the tracer's stateless scope."""
    report = check(zoo.Regularised, **SHAPE)
    assert report.failures and all(f.verdict == "broadcast" for f in report.failures)
    assert all(f.location.source == "return tf.reduce_mean(tf.square(y_true - y_pred))"
               for f in report.failures)
    assert check(zoo.RegularisedComputeLoss, **SHAPE).ok


def test_a_step_drawing_from_the_framework_s_global_random_state_is_judged_from_a_seed():
    """An unseeded Dropout draws its mask from TensorFlow's global state in tf_keras (Keras 3
    seeds its own layers' generators, which the snapshot holds): each step starts it from the
    seed, so the seed bug behind it is flagged and its twin passes."""
    report = check(zoo.DroppedHandMSE, **SHAPE)
    assert report.error is None and report.failures
    assert {str(f.method) for f in report.failures} == {"train_step"}
    assert check(zoo.DroppedComputeLoss, **SHAPE).ok


def test_a_difference_in_logs_shown_reproducible_needs_no_repeat_run(monkeypatch):
    runs = []
    run = model_kind.Harness.run
    monkeypatch.setattr(model_kind.Harness, "run",
                        lambda self, phase, batch: runs.append(phase) or run(self, phase, batch))
    # Keras's steps report the same logs on the canonical labels, and the loss differs: five
    # train runs (canonical, two label probes, two weightings) and no repeat.
    report = check(zoo.Linear, **SHAPE, **ABS_LOSS)
    assert report.failures and report.error is None
    assert runs.count("train") == 5, runs
    # The user's compute_loss keeps the test phase's own runs: the difference is repeated.
    runs.clear()
    assert check(zoo.BrokenComputeLoss, **SHAPE).failures
    assert runs.count("train") == 6, runs


def test_randomness_in_the_weight_update_alone_is_still_an_error():
    """The near miss: logs that repeat and agree on every probe, but an update that does not."""
    report = check(zoo.Linear, **SHAPE,
                   compile={"optimizer": zoo.NoisySGD(learning_rate=0.01), "loss": "mse"})
    assert report.error is not None
    assert "train_step is not deterministic" in report.error.message


def test_a_compile_option_that_breaks_the_steps_leaves_the_instance_compiled_as_it_was():
    model = zoo.ComputeLoss()
    model.compile(**zoo.COMPILE)
    loss, optimizer = model.loss, model.optimizer
    try:
        report = check(model, input_shape=(3,), compile={"optimizer": "sgd", "loss": {"x": "mse"}})
    except LossguardError:
        report = None
    assert report is None or report.error is not None
    assert (model.loss, model.optimizer) == (loss, optimizer)


class CompileRaises(zoo.HandMSE):
    """Its compile() sets Keras's compile state, then raises."""

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        raise RuntimeError("compile broke")


def test_a_compile_that_raises_part_way_leaves_the_instance_uncompiled():
    model = CompileRaises()
    with pytest.raises(LossguardError, match=r"cannot compile CompileRaises .*compile broke"):
        check(model, **SHAPE)
    assert not (getattr(model, "compiled", False) or getattr(model, "_is_compiled", False))
    assert getattr(model, "optimizer", None) is None


class Opaque:
    """An object Keras cannot interpret as an optimizer: its error shows the object's repr."""


@pytest.mark.parametrize(("model", "optimizer", "shown"), [
    (CompileRaises, zoo.keras.optimizers.SGD, "SGD object>"),
    (zoo.HandMSE, Opaque, "optimizer identifier: <test_models.Opaque object>"),
])
def test_a_compile_error_reads_the_same_on_every_run(model, optimizer, shown):
    """Objects in compile= and in Keras's error are named without their memory address, which
    changes every run and would make the JSON report differ."""
    with pytest.raises(LossguardError) as raised:
        check(model(), **SHAPE, compile={"optimizer": optimizer(), "loss": zoo.mse})
    message = str(raised.value)
    assert "0x" not in message
    assert "'loss': <function mse>" in message and shown in message


class GlorotCompiledLoss(zoo.CompiledLoss):
    """A correct model whose Dense starts from Keras's unseeded default initialiser."""

    initializer = "glorot_uniform"


@pytest.mark.parametrize("target", [GlorotCompiledLoss, GlorotCompiledLoss()])
def test_a_correct_model_is_not_blamed_for_keras_drawing_seeds_while_lossguard_builds_it(target):
    import random

    state = random.getstate()
    report = check(target, **SHAPE, compile=zoo.COMPILE)
    assert report.ok and report.restored == (), report.restored
    assert random.getstate() == state


# Several heads and inputs, sample weights through the steps, custom batches (issue 14).

HEADS = {"domain": {"cls": "sparse"}}
HAND_HEADS = {**HEADS, "compile": zoo.HEADS_COMPILE}


def test_two_heads_computed_by_keras_pass_with_the_class_head_s_labels_given_per_output():
    report = check(zoo.two_heads, **HEADS)
    assert report.ok, str(report)
    probed = {f.probe for f in report.findings}
    # Integer ids (B,) for the class head: only an extra unit axis can be probed on them.
    assert {"labels-missing-unit-axis [reg]", "labels-extra-unit-axis [cls]"} <= probed
    assert "labels-missing-unit-axis [cls]" not in probed
    # Keyed by index, or with the ids' shape said outright, the heads get the same labels.
    by_index = check(zoo.two_heads, domain={1: "sparse"}, y_true_shape={"cls": ()})
    assert by_index.findings == report.findings
    # Without it the class head gets real-valued (B, 4) labels, which its loss refuses.
    assert check(zoo.two_heads).error is not None


def test_a_hand_written_loss_on_one_head_is_flagged_naming_that_head():
    report = check(zoo.HandHeads, **HAND_HEADS)
    assert not report.ok
    assert {f.output for f in report.failures} == {"reg"}
    assert all(f.probe.endswith("[reg]") for f in report.failures)
    first = report.failures[0]
    assert (first.verdict, str(first.method)) == ("broadcast", "train_step")
    assert "tests/zoo.py:" in first.location.where
    assert "method      train_step on output 'reg': loss" in str(report)
    assert check(zoo.AlignedHeads, **HAND_HEADS).ok


def test_per_output_keys_and_shapes_are_checked_against_the_model_s_outputs():
    with pytest.raises(LossguardError, match=r"domain names output 'clss', but the outputs of "
                                             r"two_heads are 'reg' \(0\), 'cls' \(1\); key it"):
        check(zoo.two_heads, domain={"clss": "sparse"})
    with pytest.raises(LossguardError, match=r"output 'reg' of two_heads predicts per-sample "
                                             r"shape \(1,\), not output_shape \(2,\)"):
        check(zoo.two_heads, output_shape={"reg": (2,)}, **HEADS)
    with pytest.raises(LossguardError, match=r"output 'reg' of two_heads: domain='sparse' needs "
                                             "a class axis"):
        check(zoo.two_heads, domain={"reg": "sparse", "cls": "sparse"})
    with pytest.raises(LossguardError, match=r"domain= per output apply to models only, and mse "
                                             "is a function"):
        check(zoo.mse, domain={0: "probability"})


def classifier():
    """A single-output 3-class classifier on integer ids, as Keras's guides compile one."""
    model = zoo.keras.Sequential([zoo.keras.Input((4,)),
                                  zoo.keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_a_plain_domain_is_checked_against_the_model_s_output_not_the_default_shape():
    # The classifier's output gives the class axis; a loss has only the output_shape option.
    assert check(classifier, domain="sparse").ok
    with pytest.raises(LossguardError, match=r"domain='sparse' needs a class axis"):
        check(zoo.mse, domain="sparse")


def test_a_two_input_model_takes_a_list_of_input_shapes():
    report = check(zoo.Critic, input_shape=[(3,), (1,)])
    assert [str(f.method) for f in report.failures] == ["train_step"] * 2
    assert report.failures[0].verdict == "broadcast"
    assert check(zoo.AlignedCritic, input_shape=[(3,), (1,)]).ok
    # A functional model knows its inputs' shapes.
    assert check(zoo.two_inputs).ok


def test_a_functional_model_of_dict_inputs_is_fed_them_by_key(recwarn):
    report = check(zoo.keyed)
    assert report.error is None, str(report)
    assert [str(f.method) for f in report.failures] == ["train_step"] * 2
    assert check(lambda: zoo.keyed(zoo.AlignedKeyed)).ok
    assert not [w for w in recwarn if "structure of `inputs`" in str(w.message)]
    with pytest.raises(LossguardError, match=r"Critic raised on inputs of per-sample shape \(4,\)"):
        check(zoo.Critic, input_shape=(4,))


def test_the_weighting_probe_runs_through_a_step_that_unpacks_sample_weights():
    report = check(zoo.WeightedStep, **SHAPE)
    assert [(f.probe, str(f.method)) for f in report.failures] == [
        ("sample-weight-rank", "train_step")]
    first = report.failures[0]
    # The (B,) weights are the ones that grew against the (B, 1) error: they are shown.
    assert (first.verdict, first.sample_weight, first.reference) == (
        "broadcast", (7,), "sample_weight (7, 1)")
    assert "error * sample_weight" in first.location.source
    assert dict(first.paths) == {"fit()": "affected", "evaluate()": "protected"}
    # The fix names the step's own variable, at its line, as a loss's fix does.
    assert first.fix.text.startswith(f"sample_weight (7,) meets error (7, 1) at "
                                     f"{first.location.where}")
    assert check(zoo.AlignedWeightStep, **SHAPE).ok


def unpacks_by_name(self, data):
    x, y, weights = data
    return x, y, weights


def passes_data_to_keras_s_own_step(self, data):
    return super().train_step(data)


def unpacks_by_keras(self, state, data):
    return zoo.keras.utils.unpack_x_y_sample_weight(data)


def unpacks_two(self, data):
    x, y = data
    weights = x, y, None
    return weights


def unpacks_the_rest(self, data):
    x, y, *weights = data
    return x, y, weights


def stateless_jax_step(self, state, data):
    trainable, non_trainable, metrics = state
    x, y = data
    return x, y, (trainable, non_trainable, metrics)


@pytest.mark.parametrize(("step", "takes", "needs"), [
    (unpacks_by_name, True, True), (unpacks_by_keras, True, False),
    (passes_data_to_keras_s_own_step, True, False), (unpacks_the_rest, True, False),
    (zoo.GuideStep.train_step, True, False), (stateless_jax_step, False, False),
    (unpacks_two, False, False), (zoo.HandMSE.train_step, False, False)])
def test_a_step_takes_sample_weights_when_its_code_unpacks_them(step, takes, needs):
    assert unpacks_weights(step) is takes
    assert requires_weights(step) is needs


def test_a_step_that_needs_three_values_is_fed_weights_of_one_and_judged():
    report = check(zoo.StrictWeightsMSE, **SHAPE)
    assert report.error is None
    assert failing(report) == [("labels-missing-unit-axis", "train_step"),
                               ("labels-extra-unit-axis", "train_step")]
    assert check(zoo.AlignedStrictWeightsMSE, **SHAPE).ok


def test_a_step_whose_weights_are_optional_is_judged_on_its_unweighted_branch_too():
    """Keras's guide unpacks three values only when there are three: without weights, the
    step takes its other branch, whose hand-written mse broadcasts."""
    report = check(zoo.GuideStep, **SHAPE)
    assert [f.probe for f in report.failures] == ["labels-missing-unit-axis",
                                                  "labels-extra-unit-axis"]


def test_a_batch_option_builds_the_data_of_a_step_that_takes_a_dict():
    def batch(x, y):
        return {"obs": x, "target": y}

    report = check(zoo.DictStep, batch=batch, **SHAPE)
    assert [(f.probe, str(f.method)) for f in report.failures] == [
        ("labels-missing-unit-axis", "train_step"), ("labels-extra-unit-axis", "train_step")]
    # Keras's own test_step still gets (x, y[, sample_weight]), as evaluate() would give it.
    assert dict(report.failures[0].paths) == {"fit()": "affected", "evaluate()": "protected"}
    assert check(zoo.AlignedDictStep, batch=batch, **SHAPE).ok
    assert check(zoo.DictStep, **SHAPE).error is not None  # (x, y) is not what it unpacks


def test_a_batch_option_that_takes_sample_weight_gets_the_weighting_probe():
    def weighted(x, y, sample_weight=None):
        weight = np.ones(len(y), np.float32) if sample_weight is None else sample_weight
        return x, y, np.zeros((len(y), 1), np.float32), weight

    def unweighted(x, y):
        return weighted(x, y, np.ones((len(y), 1), np.float32))

    report = check(zoo.Transitions, batch=weighted, **SHAPE)
    assert [f.probe for f in report.failures] == ["sample-weight-rank"]
    assert dict(report.failures[0].paths) == {"fit()": "affected", "evaluate()": "protected"}
    # Without a sample_weight parameter it is never handed weights, and its step's are fixed.
    assert check(zoo.Transitions, batch=unweighted, **SHAPE).ok


def test_a_batch_option_that_fails_is_an_error_naming_the_target_and_the_option():
    def broken(x, y):
        return {"obs": x, "target": y["target"]}

    with pytest.raises(LossguardError, match=r"batch=.*broken, given for DictStep, raised on "
                                             r"labels \(7, 1\): IndexError.*fix the batch= "):
        check(zoo.DictStep, batch=broken, **SHAPE)
    with pytest.raises(LossguardError, match=r"batch=.* of DictStep cannot be called as "
                                             r"batch\(x, y\)"):
        check(zoo.DictStep, batch=lambda x: x, **SHAPE)
    with pytest.raises(LossguardError, match="batch= apply to models only"):
        check(zoo.mse, batch=lambda x, y: (x, y))


def test_a_factory_built_functional_model_points_at_the_factory():
    line = inspect.getsourcelines(zoo.two_heads)[1]
    report = check(zoo.two_heads, **HEADS)
    assert report.source == f"tests/zoo.py:{line}"
    # Its layers' unseeded initialisers drew seeds from Python's random state as the factory
    # built them: put back, and not blamed on a correct model.
    assert report.ok and report.restored == ()
    # A factory of the user's own Model class points at that class, as before.
    line = inspect.getsourcelines(zoo.HandMSE)[1]
    assert check(zoo.hand_mse_factory, **SHAPE).source == f"tests/zoo.py:{line}"


# The fix of a model with several outputs, pasted as lossguard writes it.

DICT_HEADS = {**HEADS, "compile": {"optimizer": "sgd", "loss": {
    "reg": "mean_squared_error", "cls": "sparse_categorical_crossentropy"}}}


@pytest.mark.parametrize(("model", "options", "code"), [
    # The located line names the head: the fix uses its operands, on a copy of the dict.
    (zoo.DictHands, DICT_HEADS, 'y = dict(y); y["reg"] = {ns}.reshape(y["reg"], '
                                '{ns}.shape(y_pred["reg"]))'),
    # A statement over several lines: the step's labels by the head's index, on a list (fit()
    # hands a list of labels over as a tuple), in their own shape, before the statement.
    (zoo.ListHands, HAND_HEADS, "y = list(y); y[0] = {ns}.reshape(y[0], (-1, 1))"),
    # The head's loss on a line that continues the statement, the predictions named otherwise.
    (zoo.NamedHeads, HAND_HEADS, "y = list(y); y[0] = {ns}.reshape(y[0], (-1, 1))"),
    (zoo.DictComputeLoss, DICT_HEADS, 'y = dict(y); y["reg"] = {ns}.reshape(y["reg"], (-1, 1))'),
])
def test_the_fix_of_one_head_of_several_names_it_and_works_pasted(model, options, code):
    report = check(model, **options)
    assert {f.output for f in report.failures} == {"reg"}, str(report)
    fixed, given = pasted(model, report)
    assert given == code.format(ns="tf" if zoo.LEGACY else "keras.ops")
    assert check(fixed, **options).ok, str(check(fixed, **options))


@pytest.mark.parametrize("model", [zoo.OwnNames, zoo.DecoratedOwnNames])
def test_the_fix_of_a_model_of_one_output_uses_the_step_s_own_name_and_works_pasted(model):
    report = check(model, **SHAPE)
    ns = "tf" if zoo.LEGACY else "keras.ops"
    # The broadcast is in zoo.mse: the fix goes before the step's line that calls it.
    line = next(link for link in report.failures[0].location.chain if "in train_step" in link)
    text = " ".join(report.failures[0].fix.text.split())
    assert text.endswith(f"before {line.split()[0]}: targets = {ns}.reshape(targets, (-1, 1))")
    fixed, _ = pasted(model, report)
    assert check(fixed, **SHAPE).ok, str(check(fixed, **SHAPE))


def test_the_fix_of_a_step_names_its_labels_only_where_the_name_is_bound():
    report = check(zoo.LateNames, **SHAPE)
    assert report.failures, str(report)
    text = " ".join(report.failures[0].fix.text.split())
    # Was 'before zoo.py:<the loss>: y = ...(y, (-1, 1))', where y is not bound yet
    # (UnboundLocalError pasted): the step's own names are used only before their statement.
    assert "(y, (-1, 1))" not in text and "before the loss, e.g. y = " in text, text


def test_the_fix_of_a_model_of_one_output_keeps_the_step_s_y_and_y_pred():
    report = check(zoo.HandMSE, **SHAPE)
    ns = "tf" if zoo.LEGACY else "keras.ops"
    assert " ".join(report.failures[0].fix.text.split()).endswith(
        f"or align them to the prediction before the loss, e.g. y = {ns}.reshape(y, "
        f"{ns}.shape(y_pred))")
