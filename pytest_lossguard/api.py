"""The stable entry points: check, and check_loss / check_model for an explicit kind."""

from __future__ import annotations

from typing import Any

from pytest_lossguard.engine import probe
from pytest_lossguard.findings import Report
from pytest_lossguard.options import Options


def check(target: Any, **options: Any) -> Report:
    """Probe any supported target and return its Report.

    Raises LossguardError only when the target cannot be checked at all; a broken
    target is a Report whose `ok` is False.
    """
    __tracebackhide__ = True
    return probe(target, Options.build(**options), _TIMEOUT_SETTING)


# Where a caller of check() raises the time limit: its own keyword, not an ini key.
_TIMEOUT_SETTING = "check(target, timeout=<seconds>) (0 turns it off)"


def check_loss(target: Any, **options: Any) -> Report:
    """`check` for a loss or metric function, Loss class or instance, or factory of one."""
    __tracebackhide__ = True
    return probe(target, Options.build(**options), _TIMEOUT_SETTING, model=False)


def check_model(target: Any, **options: Any) -> Report:
    """`check` for a keras Model class or instance, or a factory of one."""
    __tracebackhide__ = True
    return probe(target, Options.build(**options), _TIMEOUT_SETTING, model=True)
