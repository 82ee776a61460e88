"""The one exception users see when a target cannot be checked at all."""

from __future__ import annotations


class LossguardError(Exception):
    """A target that cannot be checked: not a loss, cannot be built, or bad options.

    A verdict (safe, broadcast, ...) is never an exception; this is raised only when
    there is nothing to give a verdict on. The message names the target and the fix.
    """


class LossguardWarning(UserWarning):
    """A target passed, but did something the user should know of, such as changing global
    state (random seeds, dtype policy, eager mode) that lossguard then put back."""
