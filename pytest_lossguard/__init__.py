"""pytest-lossguard: find losses and metrics that silently broadcast labels against predictions.

Importing this package is cheap: each name below loads its module on first use (`check`,
`check_loss` and `check_model` bring the engine and NumPy), and no framework loads until a
target is probed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_lossguard.api import check, check_loss, check_model
    from pytest_lossguard.errors import LossguardError, LossguardWarning
    from pytest_lossguard.findings import Finding, Report
    from pytest_lossguard.options import Options

__all__ = [
    "Finding", "LossguardError", "LossguardWarning", "Options", "Report", "check", "check_loss",
    "check_model",
]
__version__ = "0.1.0"

_HOMES = {
    "check": "api",
    "check_loss": "api",
    "check_model": "api",
    "LossguardError": "errors",
    "LossguardWarning": "errors",
    "Options": "options",
    "Finding": "findings",
    "Report": "findings",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"pytest_lossguard.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'pytest_lossguard' has no attribute {name!r}")
