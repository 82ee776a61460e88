"""The fix hints every kind shares: the aligning statement, and the hints that do not depend
on the kind. Kind-specific wording lives with each kind (kinds/*), which calls these."""

from __future__ import annotations

from pytest_lossguard.findings import Finding, Fix

CANONICAL_ERROR = ("make the target work on canonical input, or describe its intended shapes "
                   "with output_shape / y_true_shape / y_pred_shape and its values with domain=")


def fix_code(finding: Finding, true_shape: tuple[int, ...], pred_shape: tuple[int, ...],
             ns: str) -> str:
    """The statement that aligns the probe's odd side, to put first in the loss's body.

    With equal canonical shapes, labels reshaped to the prediction's shape fix every probe
    (Keras's own idiom); otherwise the side the probe edited goes back to its own shape.
    """
    if true_shape == pred_shape:
        return f"y_true = {ns}.reshape(y_true, {ns}.shape(y_pred))"
    side = "y_pred" if finding.edits == ("y_pred",) else "y_true"
    own = pred_shape if side == "y_pred" else true_shape
    return f"{side} = {ns}.reshape({side}, {(-1, *own)})"


def weights_hint(ns: str) -> str:
    """A (B,) weighting that broadcast against a (B, 1) per-sample loss."""
    return ("reshape sample_weight to the per-sample loss before weighting, e.g. "
            f"sample_weight = {ns}.reshape(sample_weight, {ns}.shape(values))")


def advised(finding: Finding, code: str, text: str) -> Fix:
    """`text` as the fix of `finding`, whose aligning statement is `code`: findings of the same
    method and weighting that need the same statement share one fix."""
    return Fix(text, f"{finding.method}|{finding.sample_weight is None}|{code}")
