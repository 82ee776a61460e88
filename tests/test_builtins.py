"""Keras's own losses and metrics, which nobody here wrote.

Each verdict must agree with a differential computation written in this file: the same
function on the probe's layout against the canonical layout, on values drawn here. Keras code
that truly broadcasts is flagged (and docs/keras-builtins.md lists it); everything else passes.
"""

import functools
import re
from pathlib import Path

import keras
import pytest
from differential import agree

from pytest_lossguard import check

# (Loss class, loss function, domain, shape options): each used as its documentation says.
LOSSES = [
    ("BinaryCrossentropy", "binary_crossentropy", "binary", {}),
    ("BinaryFocalCrossentropy", "binary_focal_crossentropy", "binary", {}),
    ("CTC", "ctc", "sparse", {"y_true_shape": (6,), "y_pred_shape": (6, 5)}),
    ("CategoricalCrossentropy", "categorical_crossentropy", "one-hot", {"output_shape": (4,)}),
    ("CategoricalFocalCrossentropy", "categorical_focal_crossentropy", "one-hot",
     {"output_shape": (4,)}),
    ("CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy", "sparse",
     {"output_shape": (4,)}),
    ("CategoricalHinge", "categorical_hinge", "one-hot", {"output_shape": (4,)}),
    ("Circle", "circle", "sparse", {"output_shape": (4,)}),
    ("CosineSimilarity", "cosine_similarity", "real", {"output_shape": (3,)}),
    ("Dice", "dice", "probability", {}),
    ("Hinge", "hinge", "binary", {}),
    ("Huber", "huber", "real", {}),
    ("KLDivergence", "kl_divergence", "probability", {}),
    ("LogCosh", "log_cosh", "real", {}),
    ("MeanAbsoluteError", "mean_absolute_error", "real", {}),
    ("MeanAbsolutePercentageError", "mean_absolute_percentage_error", "real", {}),
    ("MeanSquaredError", "mean_squared_error", "real", {}),
    ("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", "probability", {}),
    ("Poisson", "poisson", "probability", {}),
    ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy", "sparse",
     {"output_shape": (4,)}),
    ("SquaredHinge", "squared_hinge", "binary", {}),
    ("Tversky", "tversky", "probability", {}),
]
# Keyword arguments a loss function needs beyond (y_true, y_pred).
FUNCTION_KWARGS = {"categorical_generalized_cross_entropy": {"q": 0.5}}
# The regression and probabilistic metrics of the Keras documentation.
METRICS = [
    ("MeanSquaredError", "real", {}),
    ("RootMeanSquaredError", "real", {}),
    ("MeanAbsoluteError", "real", {}),
    ("MeanAbsolutePercentageError", "real", {}),
    ("MeanSquaredLogarithmicError", "probability", {}),
    ("CosineSimilarity", "real", {"output_shape": (3,)}),
    ("LogCoshError", "real", {}),
    ("R2Score", "real", {}),
    ("PearsonCorrelation", "real", {"output_shape": (4,)}),
    ("ConcordanceCorrelation", "real", {"output_shape": (4,)}),
    ("BinaryCrossentropy", "binary", {}),
    ("CategoricalCrossentropy", "one-hot", {"output_shape": (4,)}),
    ("SparseCategoricalCrossentropy", "sparse", {"output_shape": (4,)}),
    ("KLDivergence", "probability", {}),
    ("Poisson", "probability", {}),
]
def measure_metric(cls):
    def measure(y_true, y_pred):
        metric = cls()
        metric.update_state(y_true, y_pred)
        return metric.result()

    return measure


@pytest.mark.parametrize(("cls", "domain", "shapes"),
                         [(c, d, s) for c, _, d, s in LOSSES], ids=[c for c, *_ in LOSSES])
def test_loss_classes_agree_with_the_differential(cls, domain, shapes):
    loss = getattr(keras.losses, cls)
    agree(loss, loss(), domain, shapes)


@pytest.mark.parametrize(("fn", "domain", "shapes"),
                         [(f, d, s) for _, f, d, s in LOSSES], ids=[f for _, f, *_ in LOSSES])
def test_loss_functions_agree_with_the_differential(fn, domain, shapes):
    loss = functools.partial(getattr(keras.losses, fn), **FUNCTION_KWARGS.get(fn, {}))
    agree(loss, loss, domain, shapes)


@pytest.mark.parametrize(("cls", "domain", "shapes"), METRICS, ids=[c for c, *_ in METRICS])
def test_metrics_agree_with_the_differential(cls, domain, shapes):
    metric = getattr(keras.metrics, cls)
    agree(metric, measure_metric(metric), domain, shapes)


def test_the_tables_cover_every_keras_loss():
    classes = {name for name, obj in vars(keras.losses).items() if isinstance(obj, type)
               and issubclass(obj, keras.losses.Loss)} - {"Loss", "LossFunctionWrapper"}
    functions = {name for name, obj in vars(keras.losses).items() if callable(obj)
                 and not isinstance(obj, type)} - {"get", "serialize", "deserialize"}
    assert classes == {c for c, *_ in LOSSES}
    assert functions == {f for _, f, *_ in LOSSES}


def flagged(targets):
    return {name for name, target, domain, shapes in targets
            if not check(target, domain=domain, **shapes).ok}


def listed(heading):
    """The backticked names in docs/keras-builtins.md's paragraph that starts with `heading`."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "keras-builtins.md").read_text()
    paragraph = text[text.index(heading):].split("\n\n")[0].partition(":")[2]
    return set(re.findall(r"`(\w+)`", paragraph))


def test_readme_lists_exactly_the_keras_code_that_broadcasts():
    functions = flagged((f, functools.partial(getattr(keras.losses, f),
                                              **FUNCTION_KWARGS.get(f, {})), d, s)
                        for _, f, d, s in LOSSES)
    classes = flagged((c, getattr(keras.losses, c), d, s) for c, _, d, s in LOSSES)
    metrics = flagged((c, getattr(keras.metrics, c), d, s) for c, d, s in METRICS)
    assert "mean_squared_error" not in functions and "MeanSquaredError" not in metrics
    assert functions == listed("Called as plain functions")
    assert classes == listed("Even as `Loss` classes")
    assert metrics == listed("As metric objects")
