"""The engine's one entry: classify a marked object, then let its kind check it in time.

Plain Python, no pytest: the plugin, the fixture, the CLI and the public API all come here.
"""

from __future__ import annotations

from typing import Any

from pytest_lossguard import align
from pytest_lossguard.deadline import SETTING, deadline
from pytest_lossguard.errors import LossguardError, stage, unexpected
from pytest_lossguard.findings import Report
from pytest_lossguard.introspect import describe
from pytest_lossguard.kinds import TargetKind, classify
from pytest_lossguard.options import Options
from pytest_lossguard.quiet import framework_import


def probe(obj: Any, options: Options, timeout_setting: str = SETTING,
          model: bool | None = None, name: str = "") -> Report:
    """Check `obj`; LossguardError only if it cannot be checked. `timeout_setting` is where
    the caller's user raises the time limit, as a target that runs out of time is told;
    `model` is the kind the caller asked for (check_model, check_loss), None for any; `name`
    is what the report calls it (`introspect.describe` by default)."""
    __tracebackhide__ = True
    name = name or describe(obj)  # never raises, whatever the object's attributes do
    try:
        with stage("classifying it"):
            kind = classify(obj, name)
            _expect(kind, model)
            keras = kind.needs_keras(options)
        if keras and not align.loaded():
            # Importing Keras takes seconds and reseeds Python's random module: do it before
            # the time limit and the state snapshot start, so neither is charged to the first
            # target; loading it here keeps its C++ logs out of the output (quiet.py).
            with framework_import():
                align.reference()
        with deadline(options.timeout, name, timeout_setting):  # building a class can hang too
            return kind.check(options)
    except LossguardError:
        raise
    except SystemExit as exc:  # pytest makes it the test's error; the command must go on too
        raise LossguardError(
            f"{name} called sys.exit({exc.code!r}); a target must return or raise, not end the "
            "process (argparse's parse_args() exits on arguments it does not know): give it "
            "what it reads with init= or a zero-argument factory"
        ) from exc
    except Exception as exc:
        raise unexpected(name, exc) from exc


def _expect(kind: TargetKind, model: bool | None) -> None:
    """Refuse a target of the other kind than the caller asked for."""
    if model is None or kind.is_model is None or kind.is_model == model:
        return
    wanted, other = ("a keras Model", "check_loss") if model else ("a loss", "check_model")
    raise LossguardError(f"{kind.name} is not {wanted}; use {other} or check")
