"""The stable entry points: check, check_loss."""

from __future__ import annotations

from typing import Any

from pytest_lossguard.options import Options
from pytest_lossguard.oracle import probe
from pytest_lossguard.report import Report


def check(target: Any, **options: Any) -> Report:
    """Probe any supported target and return its Report.

    Raises LossguardError only when the target cannot be checked at all; a broken
    target is a Report whose `ok` is False.
    """
    return probe(target, Options.build(**options))


def check_loss(target: Any, **options: Any) -> Report:
    """`check` for a loss or metric function, Loss class or instance, or factory of one."""
    return check(target, **options)
