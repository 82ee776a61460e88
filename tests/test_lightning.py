"""LightningModules: training_step / validation_step probed like a Keras model's steps, with
no Trainer and without importing Keras."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from pasting import pasted

from pytest_lossguard import LossguardError, check
from pytest_lossguard.errors import OptionNeeded

# The seed case, a Linear(3, 1) whose training_step broadcasts (B,) labels to (B, B), as the
# bundled example writes it.
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pytorch" / \
    "lightning_regression.py"
_spec = importlib.util.spec_from_file_location("lightning_regression", EXAMPLE)
example = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = example  # inspect finds the source of its classes (tests/pasting.py)
_spec.loader.exec_module(example)
Regression = example.LinearRegression


def without_example_input():
    module = Regression()
    module.example_input_array = None
    return module


class AlignedRegression(Regression):
    """Aligned, and returning Lightning's other form: a dict holding the loss."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        y_hat = self(x)
        return {"loss": torch.mean((y.reshape(y_hat.shape) - y_hat) ** 2)}


class ValidatedRegression(AlignedRegression):
    """Trains aligned, but validates by hand with the broadcast."""

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.mean((y - self(x)) ** 2))


class LogsHandMetric(AlignedRegression):
    """Trains aligned, but logs a mean absolute error computed by hand with the broadcast."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        y_hat = self(x)
        self.log("train_mae", self.error(y, y_hat))
        return torch.mean((y.reshape(y_hat.shape) - y_hat) ** 2)

    def error(self, y, y_hat):
        return torch.mean(torch.abs(y - y_hat))


class LogsAlignedMetric(LogsHandMetric):
    def error(self, y, y_hat):
        return torch.mean(torch.abs(y.reshape(y_hat.shape) - y_hat))


class KeyedBatch(Regression):
    """The seed case on dict batches, whose labels the step takes item by item."""

    def training_step(self, batch, batch_idx):
        x, target = batch["features"], batch["target"]
        return torch.mean((target - self(x)) ** 2)


def test_a_step_taking_its_labels_item_by_item_is_fixed_in_its_own_name():
    keyed = {"batch": lambda x, y: {"features": x, "target": y}}
    report = check(KeyedBatch, **keyed)
    text = " ".join(report.failures[0].fix.text.split())
    assert "before tests/test_lightning.py:" in text and "target = target.reshape(-1, 1)" in text
    fixed, _ = pasted(KeyedBatch, report)
    assert check(fixed, **keyed).ok


def test_the_broadcast_that_lossguard_reports_is_real():
    """The differential computation behind the verdicts below: (B,) labels against (B, 1)
    predictions give another loss than the aligned labels do."""
    torch.manual_seed(0)
    y_hat, y = torch.randn(7, 1), torch.randn(7)
    assert not torch.isclose(torch.mean((y - y_hat) ** 2),
                             torch.mean((y.reshape(y_hat.shape) - y_hat) ** 2))


def test_the_seed_case_is_flagged_at_its_line_in_training_step():
    report = check(Regression)
    assert report.kind == "lightning module" and report.alignment == "numpy port of keras 3"
    assert not report.ok and report.counts()["broadcast"] == 2
    first = report.failures[0]
    line = Regression.training_step.__code__.co_firstlineno + 2
    assert str(first.method) == "training_step"
    assert first.location.where.endswith(f"lightning_regression.py:{line}")
    assert first.location.operation == "sub (7,), (7, 1) -> (7, 7)"
    assert "weight update" in first.message
    assert dict(first.paths) == {"trainer.fit()": "affected"}
    # In the step's own name for the labels, before the line, and it works pasted there.
    assert " ".join(first.fix.text.split()).endswith(
        f"before {first.location.where}: y = y.reshape(-1, 1): torch broadcasts the two "
        "silently")
    fixed, _ = pasted(Regression, report)
    assert check(fixed).ok


def test_its_aligned_twin_passes():
    report = check(AlignedRegression)
    assert report.ok and report.counts()["safe"] == 2


def test_a_metric_the_step_logs_by_hand_is_fixed_where_it_is_computed():
    # Lightning has no compile(metrics=...): the fix is in the step, where the metric is made.
    report = check(LogsHandMetric)
    assert {str(f.method) for f in report.failures} == {"metric 'train_mae'"}
    assert all(f.method.step == "training_step" for f in report.failures)
    line = LogsHandMetric.training_step.__code__.co_firstlineno + 3
    assert " ".join(report.failures[0].fix.text.split()).startswith(
        "where metric 'train_mae' is computed, align the labels to the prediction before "
        f"tests/test_lightning.py:{line}: y = y.reshape(-1, 1)")
    fixed, _ = pasted(LogsHandMetric, report)
    assert check(fixed).ok
    assert "compile(" not in str(report)
    assert check(LogsAlignedMetric).ok


def test_a_broadcast_in_validation_step_names_that_step_and_trainer_validate():
    report = check(ValidatedRegression)
    assert {str(f.method) for f in report.failures} == {"validation_step"}
    assert all(dict(f.paths) == {"trainer.fit()": "protected", "trainer.validate()": "affected"}
               for f in report.failures)


def test_the_module_comes_back_exactly_as_it_was():
    module = Regression()
    module.eval()
    module.linear.weight.grad = torch.ones(1, 3)
    weights = [p.detach().clone() for p in module.parameters()]
    rng = torch.random.get_rng_state()
    report = check(module)
    assert not report.ok and not report.restored
    assert all(torch.equal(p, w) for p, w in zip(module.parameters(), weights, strict=True))
    assert torch.equal(module.linear.weight.grad, torch.ones(1, 3))
    assert not module.training and not module.linear.training
    assert "log" not in vars(module) and torch.equal(torch.random.get_rng_state(), rng)


def test_verdicts_do_not_depend_on_the_module_s_initial_weights():
    torch.manual_seed(1)
    first = check(Regression())
    torch.manual_seed(2)
    second = check(Regression())
    assert [f.value for f in first.findings] == [f.value for f in second.findings]


def test_without_example_input_array_the_input_shape_option_is_needed():
    with pytest.raises(OptionNeeded, match="input_shape"):
        check(without_example_input())
    assert not check(without_example_input(), input_shape=(3,)).ok


def test_a_module_that_cannot_run_on_its_inputs_is_a_clear_error():
    with pytest.raises(LossguardError, match=r"Regression raised on inputs .*set input_shape="):
        check(without_example_input(), input_shape=(4,))


class ReturnsText(AlignedRegression):
    def training_step(self, batch, batch_idx):
        return "done"


@pytest.mark.parametrize("module", [ReturnsText, AlignedRegression])
def test_a_step_that_returns_no_loss_is_told_what_lightning_takes(module):
    report = check(module())
    if module is AlignedRegression:  # a dict holding the loss is one of Lightning's forms
        assert report.ok and report.error is None
        return
    assert report.error is not None
    assert ("training_step raised on canonical labels: TypeError: training_step returned str "
            "'done'; return the loss tensor, a dict holding it under 'loss', or None"
            ) in report.error.message


class Scale(torch.nn.Module):
    """A layer of the user's whose reset_parameters raises."""

    def __init__(self):
        super().__init__()
        self.factor = torch.nn.Parameter(torch.ones(1))

    def reset_parameters(self):
        raise RuntimeError("no reset for Scale")

    def forward(self, x):
        return x * self.factor


class ScaledRegression(AlignedRegression):
    def __init__(self):
        super().__init__()
        self.scale = Scale()

    def forward(self, x):
        return self.scale(self.linear(x))


def test_a_layer_whose_reset_parameters_raises_is_named_with_the_fix():
    module = ScaledRegression()
    weights = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(LossguardError) as raised:
        check(module)
    message = str(raised.value)
    assert message.startswith("ScaledRegression: Scale.reset_parameters() raised RuntimeError: "
                              "no reset for Scale; ")
    assert "lossguard bug" not in message
    assert all(torch.equal(p, w) for p, w in zip(module.parameters(), weights, strict=True))


def test_a_session_that_checks_keras_then_lightning_ends_with_its_report(pytester):
    """Keras first, then Lightning, in one session: the order that crashes with some torch
    builds. The session ends with its report (test_native checks that Lightning alone never
    loads Keras)."""
    module = EXAMPLE.read_text()
    pytester.makepyfile(
        test_a_keras=(
            "import keras\nimport pytest\n\n\n@pytest.mark.lossguard\n"
            "def keras_mse(y_true, y_pred):\n    return keras.ops.mean((y_true - y_pred) ** 2)\n"
        ),
        test_b_lightning=f"import pytest\n{module}\npytestmark = pytest.mark.lossguard("
                         "targets=[LinearRegression])\n",
    )
    result = pytester.runpytest_subprocess("--lossguard", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*2 target(s)*"])


class Weighted(Regression):
    """Aligned labels, but (B,) weights against a (B, 1) error broadcast to (B, B)."""

    def training_step(self, batch, batch_idx):
        x, y, *weights = batch  # (x, y) or (x, y, sample_weight), as Keras's steps take them
        y_hat = self(x)
        error = (y.reshape(y_hat.shape) - y_hat) ** 2
        return torch.mean(error * weights[0]) if weights else torch.mean(error)


class AlignedWeights(Regression):
    def training_step(self, batch, batch_idx):
        x, y, *weights = batch
        y_hat = self(x)
        error = (y.reshape(y_hat.shape) - y_hat) ** 2
        return torch.mean(error * weights[0].reshape(-1, 1)) if weights else torch.mean(error)


def test_a_step_that_unpacks_sample_weights_gets_the_weighting_probe():
    report = check(Weighted)
    assert [f.probe for f in report.failures] == ["sample-weight-rank"]
    assert "(7,) meets error (7, 1) at " in report.failures[0].fix.text
    assert check(AlignedWeights).ok


class StrictWeights(Regression):
    """Unpacks exactly three values, so (x, y) alone raises; the mse is written by hand."""

    def training_step(self, batch, batch_idx):
        x, y, weights = batch
        return torch.mean(weights.reshape(-1) * ((y - self(x)) ** 2).mean(dim=-1))


class AlignedStrictWeights(Regression):
    def training_step(self, batch, batch_idx):
        x, y, weights = batch
        y_hat = self(x)
        return torch.mean(weights.reshape(-1) * ((y.reshape(y_hat.shape) - y_hat) ** 2).mean(-1))


def test_a_step_that_needs_three_values_is_fed_weights_of_one_and_judged():
    report = check(StrictWeights)
    assert report.error is None
    assert [f.probe for f in report.failures] == ["labels-missing-unit-axis",
                                                  "labels-extra-unit-axis"]
    assert check(AlignedStrictWeights).ok


class TwoInputs(Regression):
    """forward(x, z), called by Lightning as module(*example_input_array)."""

    def __init__(self):
        super().__init__()
        self.example_input_array = (torch.zeros(8, 3), torch.zeros(8, 2))
        self.other = torch.nn.Linear(2, 1)

    def forward(self, x, z):
        return self.linear(x) + self.other(z)

    def training_step(self, batch, batch_idx):
        (x, z), y = batch
        return torch.mean((y - self(x, z)) ** 2)


class OwnParameter(Regression):
    """A parameter no layer resets: lossguard seeds it too."""

    def __init__(self):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.rand(2))

    def forward(self, x):
        return self.linear(x) + self.shift.sum()


def test_a_forward_of_several_inputs_a_bfloat16_module_and_own_parameters_are_checked():
    assert check(TwoInputs).counts()["broadcast"] == 2
    assert check(Regression().to(torch.bfloat16)).counts()["broadcast"] == 2
    torch.manual_seed(1)
    first = check(OwnParameter())
    torch.manual_seed(2)
    assert [f.value for f in first.findings] == [f.value for f in check(OwnParameter()).findings]


class Manual(Regression):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False


class ReturnsFeatures(Regression):
    def forward(self, x):
        return self.linear(x), None


def test_modules_lossguard_cannot_step_are_clear_errors():
    with pytest.raises(LossguardError, match="manual-optimization training_step"):
        check(Manual)
    assert [str(f.method) for f in check(type("ManualValidated", (Manual, ValidatedRegression),
                                              {})).failures] == ["validation_step"] * 2
    with pytest.raises(LossguardError, match="is NoneType, not a tensor"):
        check(ReturnsFeatures)


class FunctionalLoss(Regression):
    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)


def test_torch_s_size_warning_in_a_step_is_a_note_on_its_finding(recwarn):
    report = check(FunctionalLoss)
    assert report.counts()["broadcast"] == 2
    assert all(any("Using a target size" in note for note in f.notes) for f in report.failures)
    assert not [w for w in recwarn if "target size" in str(w.message)]


class SqueezedRegression(Regression):
    """Squeezes the prediction to fit (B,) labels: on output-shaped (B, 1) labels, the
    canonical layout, it is this line that broadcasts."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x).squeeze(-1), y)


class SqueezedAlignedRegression(Regression):
    def training_step(self, batch, batch_idx):
        x, y = batch
        y_hat = self(x).squeeze(-1)
        return torch.nn.functional.mse_loss(y_hat, y.reshape(y_hat.shape))


def test_a_step_whose_canonical_layout_broadcasts_is_located_there():
    report = check(SqueezedRegression)
    first = report.failures[0]
    line = SqueezedRegression.training_step.__code__.co_firstlineno + 2
    assert first.verdict == "broadcast" and first.location.layout == "canonical"
    assert first.location.where.endswith(f"test_lightning.py:{line}")
    assert first.location.operation.startswith("mse_loss (7,), (7, 1) -> ()")
    assert check(SqueezedAlignedRegression).ok


class Classifier(Regression):
    """Three classes on integer ids: torch's cross_entropy takes int64 ids only; the accuracy
    it logs by hand compares (B,) argmaxes with the ids."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("train_acc", (logits.argmax(-1) == y).float().mean())
        return torch.nn.functional.cross_entropy(logits, y.view(-1))


class AlignedClassifier(Classifier):
    def training_step(self, batch, batch_idx):
        x, y = batch
        y = y.view(-1)
        logits = self(x)
        self.log("train_acc", (logits.argmax(-1) == y).float().mean())
        return torch.nn.functional.cross_entropy(logits, y)


def test_a_classifier_on_class_ids_gets_integer_ids_and_its_hand_metric_is_judged():
    report = check(Classifier, domain="sparse")
    assert report.error is None and not report.ok, str(report)
    assert report.failures[0].probe == "labels-extra-unit-axis"
    assert "train_acc" in report.failures[0].message
    assert check(AlignedClassifier, domain="sparse").ok


def test_options_that_do_not_apply_to_a_lightning_module_are_refused():
    with pytest.raises(LossguardError,
                       match=r"compile= and order= do not apply to LinearRegression"):
        check(Regression(), compile={"optimizer": "sgd"}, order="prediction-first")
    assert not check(Regression(), backend="torch").ok


class WithFeatures(Regression):
    """forward returns (prediction, features): only the prediction takes labels."""

    def forward(self, x):
        return self.linear(x), torch.relu(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        y_hat, _ = self(x)
        return torch.mean((y - y_hat) ** 2)


class AlignedWithFeatures(WithFeatures):
    def training_step(self, batch, batch_idx):
        x, y = batch
        y_hat, _ = self(x)
        return torch.mean((y.reshape(y_hat.shape) - y_hat) ** 2)


def labelled_first(x, y):
    return x, y[0]


def test_a_forward_that_also_returns_features_is_told_how_to_give_labels_to_one_output():
    # Given a label for each output, the step fails on a list of labels: the error says why and
    # how batch= sends the prediction's labels alone.
    report = check(WithFeatures)
    assert report.error is not None
    assert ("given labels for each of its 2 outputs (0, 1): if only some take labels, pass "
            "those alone with the batch= option of the mark or check(), e.g. "
            "batch=lambda x, y: (x, y[0])") in report.error.message
    # Followed, the advice gives a verdict: the broadcast at its line, and the aligned twin safe.
    flagged = check(WithFeatures, batch=labelled_first)
    assert [f.probe for f in flagged.failures] == ["labels-missing-unit-axis [0]",
                                                   "labels-extra-unit-axis [0]"]
    assert "y - y_hat" in flagged.failures[0].location.source
    assert check(AlignedWithFeatures, batch=labelled_first).ok
    # A step of one output that raises gets no such hint, nor does one fed through batch=.
    assert "outputs" not in check(UnpacksLabels).error.message
    assert "outputs" not in check(WithFeatures, batch=lambda x, y: (x, y)).error.message


class UnpacksLabels(Regression):
    def training_step(self, batch, batch_idx):
        x, (y, _) = batch
        return torch.mean((y - self(x)) ** 2)


class DictHeads(Regression):
    """forward returns a dict of a regression and a 4-class head; the regression's loss is
    torch's mse_loss on (B,) labels, over several lines with the class head's."""

    def __init__(self):
        super().__init__()
        self.classes = torch.nn.Linear(3, 4)

    def forward(self, x):
        return {"reg": self.linear(x), "cls": self.classes(x)}

    def training_step(self, batch, batch_idx):
        x, y = batch
        y_hat = self(x)
        loss = torch.nn.functional.mse_loss(y_hat["reg"], y["reg"]) + (
            torch.nn.functional.cross_entropy(y_hat["cls"], y["cls"]))
        return loss


class TupleHeads(DictHeads):
    """forward returns a tuple; the regression's error on a line of its own."""

    def forward(self, x):
        return self.linear(x), self.classes(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        y_hat = self(x)
        error = y_hat[0] - y[0]
        return torch.mean(error ** 2) + torch.nn.functional.cross_entropy(y_hat[1], y[1])


@pytest.mark.parametrize(("module", "head", "domain", "code"), [
    # Located inside mse_loss, on a line that is not a whole statement: the step's y by the
    # head's key, on a copy of the dict, in its own shape, before the step's statement.
    (DictHeads, "reg", {"cls": "sparse"},
     'y = dict(y); y["reg"] = y["reg"].reshape(-1, 1)'),
    # Located on the line's own operands, by index, on a list copy.
    (TupleHeads, "0", {1: "sparse"}, "y = list(y); y[0] = y[0].reshape(y_hat[0].shape)"),
])
@pytest.mark.filterwarnings("ignore:Using a target size")
def test_the_fix_of_one_head_of_several_names_it_and_works_pasted(module, head, domain, code):
    report = check(module, domain=domain)
    assert {f.output for f in report.failures} == {head}, str(report)
    fixed, given = pasted(module, report)
    assert given == code
    assert check(fixed, domain=domain).ok, str(check(fixed, domain=domain))
