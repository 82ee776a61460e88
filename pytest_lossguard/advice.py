"""The fix hints every kind shares: the aligning statement, and the hints that do not depend
on the kind. Kind-specific wording lives with each kind (kinds/*), which calls these."""

from __future__ import annotations

from pytest_lossguard.backends import Backend
from pytest_lossguard.findings import Finding, Fix

CANONICAL_ERROR = ("make the target work on canonical input, or describe its intended shapes "
                   "with output_shape / y_true_shape / y_pred_shape and its values with domain=")
NOT_DETERMINISTIC = (
    "seed it: draw its randomness from a fixed seed inside it (keras.random.normal(shape, seed=0), "
    "tf.random.stateless_normal, np.random.default_rng(0)) or from a seed argument that the "
    "check fixes (functools.partial(loss, seed=0)), and keep no count or state between calls")


def fix_code(finding: Finding, true_shape: tuple[int, ...], pred_shape: tuple[int, ...],
             backend: Backend, names: tuple[str, str] = ("y_true", "y_pred")) -> str:
    """The statement that aligns the probe's odd side, to put first in the loss's body.

    With equal canonical shapes, labels reshaped to the prediction's shape fix every probe
    (Keras's own idiom); otherwise the side the probe edited goes back to its own shape.
    """
    labels, predictions = names
    if true_shape == pred_shape:
        return f"{labels} = {backend.reshape(labels, backend.shape(predictions))}"
    side, own = ((predictions, pred_shape) if finding.edits == ("y_pred",)
                 else (labels, true_shape))
    return f"{side} = {backend.reshape(side, str((-1, *own)))}"


def weights_hint(backend: Backend) -> str:
    """A (B,) weighting that broadcast against a (B, 1) per-sample loss."""
    weights = backend.reshape("sample_weight", backend.shape("values"))
    return ("reshape sample_weight to the per-sample loss before weighting, e.g. "
            f"sample_weight = {weights}")


def advised(finding: Finding, code: str, text: str) -> Fix:
    """`text` as the fix of `finding`, whose aligning statement is `code`: findings of the same
    method and weighting that need the same statement share one fix."""
    return Fix(text, f"{finding.method}|{finding.sample_weight is None}|{code}")
