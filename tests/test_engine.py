"""The engine through its public API: each detector with a case it must flag and a near-miss."""

import functools
import inspect
import json
import random
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from pytest_lossguard import LossguardError, Options, caches, check, check_loss
from pytest_lossguard.align import aligned_shapes, numpy_port


def naive_mse(y_true, y_pred):
    return tf.reduce_mean(tf.math.square(y_true - y_pred))


def reshaped_mse(y_true, y_pred):
    y_true = tf.reshape(y_true, tf.shape(y_pred))
    return tf.reduce_mean(tf.math.square(y_true - y_pred))


def absolute_error(y_true, y_pred):
    return tf.abs(y_true - y_pred)


def pinball(y_true, y_pred):
    y_true = tf.reshape(y_true, (-1, 1))
    error = y_true - y_pred
    q = tf.constant([0.1, 0.5, 0.9])
    return tf.reduce_mean(tf.maximum(q * error, (q - 1) * error), axis=-1)


def pinball_first_column(y_true, y_pred):
    error = y_true[..., 0][..., None] - y_pred
    q = tf.constant([0.1, 0.5, 0.9])
    return tf.reduce_mean(tf.maximum(q * error, (q - 1) * error), axis=-1)


class ElementwiseLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.abs(y_true - y_pred)


class AlignedElementwiseLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        y_true = keras.ops.reshape(y_true, keras.ops.shape(y_pred))
        return keras.ops.abs(y_true - y_pred)


def r2(y_true, y_pred):
    residual = tf.reduce_sum(tf.square(y_true - y_pred))
    total = tf.reduce_sum(tf.square(y_true - tf.reduce_mean(y_true)))
    return 1.0 - residual / total


def aligned_r2(y_true, y_pred):
    return r2(tf.reshape(y_true, tf.shape(y_pred)), y_pred)


def shape_asserting_mse(y_true, y_pred):
    tf.debugging.assert_equal(tf.shape(y_true), tf.shape(y_pred))
    return tf.reduce_mean(tf.square(y_true - y_pred))


def reshaped(y_true, y_pred):
    return tf.reshape(y_true, tf.shape(y_pred))


def verdicts(report):
    return {f.probe: f.verdict for f in report.findings}


def test_seed_naive_mse_is_flagged_and_its_reshaped_twin_passes():
    flagged = check(naive_mse)
    assert not flagged.ok
    finding = flagged.failures[0]
    assert finding.verdict == "broadcast"
    assert finding.result_shape == ()  # reduced to a scalar: only the trace shows the growth
    assert finding.location.operation == "Sub (7,), (7, 1) -> (7, 7)"
    line = inspect.getsourcelines(naive_mse)[1] + 1
    assert finding.location.where.endswith(f"test_engine.py:{line}")
    assert finding.location.source == "return tf.reduce_mean(tf.math.square(y_true - y_pred))"
    assert (finding.y_true, finding.y_pred) == ((7,), (7, 1))
    assert finding.value > 10 * finding.reference_value
    assert check(reshaped_mse).ok
    assert set(verdicts(check(reshaped_mse)).values()) == {"safe"}


def test_per_sample_absolute_error_is_a_broadcast():
    report = check(absolute_error)
    finding = report.failures[0]
    assert finding.verdict == "broadcast"
    assert finding.result_shape == (7, 7)
    assert finding.reference == "Keras-aligned"
    assert finding.reference_shape == (7, 1)


def test_pinball_correct_form_passes_and_first_column_form_is_flagged():
    shapes = {"y_true_shape": (1,), "y_pred_shape": (3,)}
    good = check(pinball, **shapes)
    assert good.ok, str(good)
    bad = check(pinball_first_column, **shapes)
    assert not bad.ok
    assert verdicts(bad)["labels-missing-unit-axis"] == "mismatch"
    assert verdicts(bad)["labels-extra-unit-axis"] == "broadcast"


def test_loss_subclass_overriding_call_is_flagged_and_aligned_subclass_passes():
    report = check(ElementwiseLoss)
    assert report.kind == "loss"
    assert {f.verdict for f in report.failures} == {"broadcast"}
    assert "LossFunctionWrapper" in str(report)
    assert check(AlignedElementwiseLoss()).ok


def test_custom_r2_metric_is_flagged_and_aligned_twin_passes():
    assert not check(r2).ok
    assert check(aligned_r2).ok


class ResidualMetric(keras.metrics.Metric):
    """A running mean of squared residuals, whose update_state does not align."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = self.align(y_true, y_pred)
        squared = keras.ops.square(y_true - y_pred)
        self.total.assign_add(keras.ops.sum(squared))
        self.count.assign_add(keras.ops.cast(keras.ops.size(squared), "float32"))

    def align(self, y_true, y_pred):
        return y_true

    def result(self):
        return self.total / self.count


class AlignedResidualMetric(ResidualMetric):
    def align(self, y_true, y_pred):
        return keras.ops.reshape(y_true, keras.ops.shape(y_pred))


def test_metric_objects_are_called_as_documented_and_judged():
    report = check(ResidualMetric)
    assert report.kind == "metric" and not report.ok
    finding = report.failures[0]
    assert finding.verdict == "broadcast"
    assert finding.location.operation == "Sub (7,), (7, 1) -> (7, 7)"
    assert finding.location.source == "squared = keras.ops.square(y_true - y_pred)"
    assert dict(finding.paths) == {"direct call": "affected", "compile(loss=...)": "n/a",
                                   "compile(metrics=...)": "affected"}
    assert "align ranks in update_state" in str(report)
    assert check(AlignedResidualMetric()).ok


def test_checking_a_metric_instance_leaves_its_state_alone():
    metric = keras.metrics.MeanSquaredError()
    metric.update_state(np.ones((2, 1)), np.zeros((2, 1)))
    assert check(metric).ok
    assert float(metric.result()) == 1.0 and int(metric.count.numpy()) == 2


def test_a_metric_that_cannot_be_rebuilt_from_its_config_says_how_to_fix_it():
    class Thresholded(AlignedResidualMetric):
        def __init__(self, threshold, **kwargs):
            super().__init__(**kwargs)
            self.threshold = threshold

    with pytest.raises(LossguardError, match=r"cannot rebuild metric Thresholded from its "
                                             r"get_config\(\).*get_config"):
        check(Thresholded(0.5))
    assert check(Thresholded, init={"threshold": 0.5}).ok


def test_a_metric_whose_get_config_raises_says_how_to_fix_it():
    class Unconfigured(AlignedResidualMetric):
        def get_config(self):
            raise NotImplementedError("no config yet")

    with pytest.raises(LossguardError, match=r"cannot rebuild metric Unconfigured from its "
                                             r"get_config\(\): NotImplementedError: no config "
                                             r"yet; return every constructor argument"):
        check(Unconfigured())


def test_sparse_categorical_crossentropy_with_int_labels_is_not_flagged():
    def sparse_ce(y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(tf.cast(y_true, tf.int32), y_pred)

    report = check(sparse_ce, domain="sparse", output_shape=(5,))
    assert report.ok, str(report)
    assert verdicts(report)["labels-extra-unit-axis"] == "safe"


def test_shape_asserting_loss_raises_loudly_and_fails_only_under_strict():
    report = check(shape_asserting_mse)
    assert report.ok
    assert set(verdicts(report).values()) == {"raises"}
    assert "raises (loud, not silent)" in str(report)
    # The one-liner counts as the summary table does: no "safe" for probes that raised.
    probes = len(report.findings)
    assert str(report).splitlines()[0] == (
        f"lossguard: shape_asserting_mse passes: {probes} raises (loud) under {probes} probe(s)")
    strict = check(shape_asserting_mse, strict=True)
    assert not strict.ok
    assert "strict" in str(strict)


@pytest.mark.parametrize("true", [(7,), (7, 1), (7, 3), (7, 1, 1), (7, 3, 1), (7, 4, 1, 1)])
@pytest.mark.parametrize("pred", [(7,), (7, 1), (7, 3), (7, 1, 1), (7, 3, 1)])
def test_numpy_port_agrees_with_installed_keras(true, pred):
    assert numpy_port(true, pred) == aligned_shapes(true, pred)


def test_failure_block_names_probe_shapes_values_and_fix():
    text = str(check(absolute_error))
    assert text.startswith("lossguard: absolute_error broadcasts labels against predictions")
    assert "labels-missing-unit-axis   y_true (7,)  y_pred (7, 1)" in text
    assert "(7, 7) -> " in text and "reference (Keras-aligned) (7, 1) -> " in text
    assert "fix         align ranks before combining" in text
    assert "tf.reshape(y_true, tf.shape(y_pred))" in text


def test_reference_that_raises_on_canonical_input_is_an_error_verdict():
    def broken(y_true, y_pred):
        raise RuntimeError("boom")

    report = check(broken)
    assert not report.ok
    assert report.error is not None
    assert report.error.message == "RuntimeError: boom"
    assert isinstance(report.error.exception, RuntimeError)


def test_nan_on_canonical_input_is_an_error_not_a_pass():
    def log_of_negative(y_true, y_pred):
        return tf.math.log(y_pred - 100.0)

    report = check(log_of_negative)
    assert report.error is not None
    assert "nan" in report.error.message


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (42, "42 (int) is not callable"),
        (object(), "object (object) is not callable"),  # no address: the same on every run
        (lambda: None, "factory <lambda> returned what lossguard cannot check: None (NoneType) is "
                       "not callable"),
        (lambda a, b, c: a, "cannot be called as fn(y_true, y_pred)"),
        (dict, "is not a keras Loss, Metric or Model"),
    ],
)
def test_non_targets_raise_lossguard_error_naming_what_is_accepted(target, words):
    with pytest.raises(LossguardError, match="lossguard accepts") as info:
        check(target)
    assert words in str(info.value)


class NeedsQuantile(keras.losses.Loss):
    def __init__(self, q, **kwargs):
        super().__init__(**kwargs)
        self.q = q

    def call(self, y_true, y_pred):
        y_true = keras.ops.reshape(y_true, keras.ops.shape(y_pred))
        return self.q * keras.ops.abs(y_true - y_pred)


def test_loss_class_needing_arguments_says_to_pass_init():
    with pytest.raises(LossguardError, match=r"cannot build NeedsQuantile.*init=\{\.\.\.\}"):
        check(NeedsQuantile)
    assert check(NeedsQuantile, init={"q": 0.5}).ok


def test_factories_partials_tf_functions_and_callable_objects_are_targets():
    class Callable:
        def __call__(self, y_true, y_pred):
            return tf.abs(y_true - y_pred)

    def factory():
        return ElementwiseLoss()

    scaled = functools.partial(lambda y_true, y_pred, k: k * tf.abs(y_true - y_pred), k=2.0)
    for target in (factory, scaled, tf.function(absolute_error), Callable()):
        assert not check(target).ok, target
    assert check(tf.function(reshaped_mse)).ok
    assert check(factory).target.endswith("<locals>.factory")


def test_sample_weight_rank_probe_flags_weights_that_broadcast():
    def weighted(y_true, y_pred, sample_weight=None):
        values = tf.reduce_mean(tf.square(reshaped(y_true, y_pred) - y_pred), axis=-1)
        return values if sample_weight is None else values * sample_weight

    def flat_weighted(y_true, y_pred, sample_weight=None):
        values = tf.reduce_mean(tf.square(reshaped(y_true, y_pred) - y_pred), axis=-1)
        return values if sample_weight is None else values * tf.reshape(sample_weight, [-1])

    report = check(weighted)
    assert [f.probe for f in report.failures] == ["sample-weight-rank"]
    assert report.failures[0].verdict == "broadcast"
    assert report.failures[0].sample_weight == (7, 1)
    assert "sample-weight-rank" in verdicts(check(flat_weighted))
    assert check(flat_weighted).ok


def test_each_distinct_fix_is_given_and_recorded_per_finding():
    def labels_and_weights_broadcast(y_true, y_pred, sample_weight=None):
        values = tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)
        return values if sample_weight is None else values * sample_weight

    report = check(labels_and_weights_broadcast)
    text = str(report)
    assert text.count("\n  fix         ") == 2
    assert "fix         sample_weight (7, 1) meets values (7,) at " in text
    assert "fix         align ranks before combining" in text
    fixes = {f["probe"]: f["fix"] for f in report.as_dict()["findings"]}
    assert fixes["sample-weight-rank"].startswith("sample_weight (7, 1) meets values (7,)")
    assert fixes["labels-missing-unit-axis"].startswith("align ranks before combining")
    assert check(reshaped_mse).as_dict()["findings"][0]["fix"] is None


def test_a_weighting_the_reference_cannot_take_is_not_applicable_not_an_error():
    def column_weights_only(y_true, y_pred, sample_weight=None):
        values = tf.square(reshaped(y_true, y_pred) - y_pred)
        if sample_weight is not None:
            values = values * tf.ensure_shape(sample_weight, (None, 1))
        return tf.reduce_mean(values)

    report = check(column_weights_only)
    assert report.ok and report.error is None
    assert "sample-weight-rank" not in verdicts(report)
    assert set(verdicts(report).values()) == {"safe"}


def test_label_dtype_and_coincident_batch_run_on_request():
    default = verdicts(check(pinball_first_column, y_true_shape=(1,), y_pred_shape=(3,)))
    assert not any(name.startswith(("label-dtype", "coincident")) for name in default)
    report = check(naive_mse, probes=["label-dtype"])
    assert list(verdicts(report)) == ["label-dtype (y_true float64)"]
    assert verdicts(report)["label-dtype (y_true float64)"] == "raises"
    coincident = check(pinball, y_true_shape=(1,), y_pred_shape=(3,),
                       probes=["default", "coincident-batch"])
    names = [f.probe for f in coincident.findings]
    assert "coincident-batch (preds-extra-unit-axis, B=3)" in names
    # Its findings keep the side they edited, which the fix names, and read apart in the block.
    square = check(naive_mse, output_shape=(3,), probes=["coincident-batch"])
    edits = {f.probe: f.edits for f in square.failures}
    assert edits["coincident-batch (preds-extra-unit-axis, B=3)"] == ("y_pred",)
    assert edits["coincident-batch (labels-extra-unit-axis, B=3)"] == ("y_true",)
    assert "coincident-batch (labels-extra-unit-axis, B=3) y_true (3, 3, 1)" in str(square)


def test_unknown_options_and_probes_are_refused_with_the_known_ones():
    with pytest.raises(LossguardError, match="known options are"):
        check(naive_mse, output_shap=(1,))
    with pytest.raises(LossguardError, match="choose from default"):
        check(naive_mse, probes=["nope"])
    with pytest.raises(LossguardError, match="batch_size=3 must be > 1 and differ"):
        check(naive_mse, output_shape=(3,), batch_size=3)
    with pytest.raises(LossguardError, match="over the limit"):
        check(naive_mse, output_shape=(10_000, 10_000))


@pytest.mark.parametrize(("options", "message"), [
    ({"seed": -1}, "seed=-1 must be an int >= 0"),
    ({"seed": 1.5}, "seed=1.5 must be an int >= 0"),
    ({"seed": "a"}, "seed='a' must be an int >= 0"),
    ({"strict": "false"}, "strict='false' must be True or False"),
    ({"probes": [1]}, "probes=(1,) must be probe names"),
    ({"output_shape": "13"}, "output_shape='13' is not a shape: give a tuple of positive ints"),
    ({"output_shape": "3"}, "output_shape='3' is not a shape"),
    ({"y_pred_shape": (2.9,)}, "y_pred_shape=(2.9,) is not a shape"),
    ({"input_shape": 3.0}, "input_shape=3.0 is not a shape"),
    ({"output_shape": (True,)}, "output_shape=(True,) is not a shape"),
    ({"input_shape": [(3,), "1"]}, "input_shape[1]='1' is not a shape"),
    ({"input_shape": {"state": (3,), "action": 1.0}}, "input_shape['action']=1.0 is not a shape"),
    ({"domain": {"cls": "classes"}}, "domain['cls']='classes' is not known; use one of"),
    ({"y_true_shape": {0: "3"}}, "y_true_shape[0]='3' is not a shape"),
    ({"output_shape": {(0,): (1,)}}, "output_shape={(0,): (1,)} keys (0,), which names no "
                                     "output: key it by output name or index"),
    ({"batch": "pkg.data:batch"}, "batch='pkg.data:batch' must be a function batch(x, y) -> data"),
])
def test_malformed_option_values_are_refused_before_any_probe(options, message):
    with pytest.raises(LossguardError, match=re.escape(message)):
        Options.build(**options)
    assert Options.build(seed=3, strict=True, probes=["default"]).seed == 3


def test_input_shape_is_one_shape_a_list_of_shapes_or_a_dict_of_them():
    assert Options.build(input_shape=[3]).input_shape == (3,)
    assert Options.build(input_shape=[(3,), [1]]).input_shape == ((3,), (1,))
    assert Options.build(input_shape={"state": [3], "action": 1}).input_shape == {
        "state": (3,), "action": (1,)}


def test_a_per_output_value_layers_over_the_plain_value_beneath_it():
    start = Options.build(domain="probability", y_true_shape=(1,))
    heads = Options.build(start, domain={"cls": "sparse", 1: "one-hot"})
    # The plain value stays, for every output the dict does not name.
    assert (heads.domain, heads.per_output) == ("probability",
                                                {"domain": {"cls": "sparse", 1: "one-hot"}})
    assert Options.build(heads, y_true_shape={"cls": []}).per_output == {
        "domain": {"cls": "sparse", 1: "one-hot"}, "y_true_shape": {"cls": ()}}
    # A later plain value is every output's again.
    assert Options.build(heads, domain="binary").per_output == {}
    with pytest.raises(LossguardError, match="unknown lossguard option"):
        Options.build(per_output={})


def test_verdicts_are_deterministic():
    shapes = {"y_true_shape": (1,), "y_pred_shape": (3,)}
    first = check(pinball_first_column, **shapes)
    caches.clear()  # the second check draws its values afresh from the seed
    second = check(pinball_first_column, **shapes)
    assert first.findings == second.findings
    # The seed is what fixes the values: the same target under another seed gets other
    # values, and the same verdicts.
    reseeded = check(pinball_first_column, seed=1, **shapes)
    assert reseeded.seed == 1 and first.seed == 0
    assert verdicts(reseeded) == verdicts(first)
    assert [f.value for f in reseeded.findings] != [f.value for f in first.findings]
    caches.clear()
    assert check(pinball_first_column, seed=1, **shapes).findings == reseeded.findings


def test_global_state_touched_by_a_loss_is_restored_and_reported():
    eager = tf.config.functions_run_eagerly()
    np_state = np.random.get_state()[1].copy()
    py_state = random.getstate()

    def meddling(y_true, y_pred):
        np.random.seed(123)
        random.seed(5)
        tf.config.run_functions_eagerly(not eager)
        keras.config.set_dtype_policy("mixed_float16")
        return reshaped_mse(y_true, y_pred)

    report = check(meddling)
    assert report.ok
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state
    assert tf.config.functions_run_eagerly() == eager
    assert keras.config.dtype_policy().name == "float32"
    assert set(report.restored) >= {"numpy random state", "python random state",
                                    "tf.config.run_functions_eagerly", "keras dtype policy"}
    assert "lossguard put it back" in str(report)


def test_numpy_metric_runs_on_numpy_arrays():
    namespace = {"np": np}
    exec(
        "def np_mae(y_true, y_pred):\n    return np.mean(np.abs(y_true - y_pred))\n"
        "def np_aligned(y_true, y_pred):\n"
        "    return np.mean(np.abs(np.reshape(y_true, np.shape(y_pred)) - y_pred))\n",
        namespace,
    )
    report = check(namespace["np_mae"])
    assert report.backend == "numpy"
    assert not report.ok
    assert check_loss(namespace["np_aligned"]).ok


def test_intended_pairwise_growth_on_aligned_input_is_not_flagged():
    """Growth that the canonical layout shows too is the author's intent, not a broadcast."""

    def pairwise_ranking(y_true, y_pred):
        y_true = tf.reshape(y_true, [-1])
        y_pred = tf.reshape(y_pred, [-1])
        true_order = tf.sign(y_true[:, None] - y_true[None, :])
        return tf.reduce_mean(tf.nn.relu(-true_order * (y_pred[:, None] - y_pred[None, :])))

    report = check(pairwise_ranking)
    assert report.ok, str(report)
    assert set(verdicts(report).values()) == {"safe"}


def test_report_as_dict_is_json_and_carries_every_finding():
    data = json.loads(json.dumps(check(naive_mse).as_dict()))
    assert data["ok"] is False
    assert data["counts"]["broadcast"] == 4
    assert data["findings"][0]["probe"] == "labels-missing-unit-axis"
    assert data["findings"][0]["operation"] == "Sub (7,), (7, 1) -> (7, 7)"
    assert "exception" not in data["findings"][0]


def json_keys(value, skip=("paths",)):
    """Every dict key in a JSON value, not descending into `skip` (whose keys are data)."""
    if isinstance(value, dict):
        return {k for k in value} | {key for k, v in value.items() if k not in skip
                                     for key in json_keys(v, skip)}
    if isinstance(value, list):
        return {key for item in value for key in json_keys(item, skip)}
    return set()


def test_the_readme_documents_exactly_the_json_report_keys():
    from pathlib import Path

    from pytest_lossguard.json_report import document, entry

    text = (Path(__file__).resolve().parent.parent / "docs" / "json-report.md").read_text()
    section = text[text.index("# JSON report and JUnit"):]
    block = section[section.index("```text"):section.index("```", section.index("```text") + 3)]
    documented = set(re.findall(r'"([\w-]+)"', block))
    doc = json.loads(json.dumps(document([entry("t::naive_mse[lossguard]", check(naive_mse)),
                                          entry("t::x[lossguard]", None, "cannot")])))
    assert json_keys(doc) == documented
