"""`check()` raises only LossguardError: an exception from lossguard's own code (or a library
under it) names the target, the stage and the original exception."""

import pytest

from pytest_lossguard import LossguardError, check, check_loss, check_model
from pytest_lossguard.kinds import model as model_kind


def mse(y_true, y_pred):
    return ((y_true - y_pred) ** 2).mean()


def test_a_failure_inside_lossguard_is_a_lossguard_error_naming_target_stage_and_cause(
        monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("tracer exploded")

    monkeypatch.setattr("pytest_lossguard.calls._judge", broken)
    with pytest.raises(LossguardError) as info:
        check(mse)
    text = str(info.value)
    assert text.startswith("mse: lossguard failed while probing labels-missing-unit-axis")
    assert "RuntimeError: tracer exploded" in text
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_model_stage_is_named_too(monkeypatch):
    import zoo

    monkeypatch.setattr(model_kind, "judge_steps", lambda harness: 1 / 0)
    with pytest.raises(LossguardError, match="HandMSE: lossguard failed while stepping the model: "
                                             "ZeroDivisionError"):
        check(zoo.HandMSE, input_shape=(3,))


class Proxy:
    """A callable whose every missing attribute raises something else than AttributeError, as
    a lazily initialised wrapper's may."""

    def __getattr__(self, name):
        raise RuntimeError(f"not ready: {name}")

    def __call__(self, y_true, y_pred):
        return mse(y_true, y_pred)


@pytest.mark.parametrize("entry", [check, check_loss, check_model])
def test_an_object_whose_attributes_raise_is_a_lossguard_error_naming_it(entry):
    with pytest.raises(LossguardError, match=r"^Proxy: .*RuntimeError: not ready"):
        entry(Proxy())


def test_a_user_error_stays_a_verdict_not_a_lossguard_failure():
    def raising(y_true, y_pred):
        raise RuntimeError("the user's own bug")

    report = check(raising)
    assert report.error is not None and "the user's own bug" in report.error.message


def test_a_weighting_probe_is_not_dropped_when_the_unweighted_call_gives_nan():
    import numpy as np

    def weighted(y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            return np.full(y_true.shape[:1], np.nan)
        if np.ndim(sample_weight) == 1:
            raise ValueError("weights must be a column")
        return np.mean((y_true - y_pred) ** 2 * sample_weight)

    report = check(weighted, probes=["sample-weight-rank"])
    assert report.error is not None and report.error.probe == "canonical"
