"""The names user code gives labels, predictions and training steps: read by discovery, which
picks unmarked candidates by them, and by the kinds, which take argument order from them.
A leaf: it imports nothing, so the CLI's source pass stays free of NumPy."""

from __future__ import annotations

# First two parameter names that read as (labels, predictions).
PAIRS = frozenset({
    ("y_true", "y_pred"), ("labels", "logits"), ("labels", "predictions"), ("labels", "preds"),
    ("target", "output"), ("targets", "outputs"), ("target", "prediction"),
    ("targets", "predictions"), ("target", "pred"), ("y", "y_hat"), ("y", "yhat"),
    ("y", "y_pred"), ("y_true", "logits"), ("true", "pred"), ("truth", "prediction"),
})
# First two parameter names that read as (predictions, labels): torch's forward(input, target),
# and every labels-first pair the other way round (a module's forward(yhat, y)).
PREDICTION_FIRST = frozenset({
    ("input", "target"), ("pred", "target"), ("preds", "target"), ("prediction", "target"),
    ("predictions", "targets"), ("output", "target"), ("outputs", "targets"),
    ("logits", "targets"), *((second, first) for first, second in PAIRS),
})
# The methods whose override makes a model worth probing.
STEPS = ("train_step", "test_step", "compute_loss")
# A LightningModule's steps, in the order the Trainer's fit() and validate() run them.
LIGHTNING_STEPS = ("training_step", "validation_step")


def pair(args: list[str]) -> tuple[str, str] | None:
    """The first two parameter names, when they read as (labels, predictions) or, torch's
    order, (predictions, labels)."""
    first = tuple(args[:2])
    return (args[0], args[1]) if first in PAIRS or first in PREDICTION_FIRST else None
