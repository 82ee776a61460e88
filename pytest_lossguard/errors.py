"""The one exception users see when a target cannot be checked at all."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class LossguardError(Exception):
    """A target that cannot be checked: not a loss, cannot be built, or bad options.

    A verdict (safe, broadcast, ...) is never an exception; this is raised only when
    there is nothing to give a verdict on. The message names the target and the fix.
    """


class NotProbed(LossguardError):
    """A target lossguard cannot probe as it stands, through no fault of its code (an option
    only its author can give, a model whose steps take no labels). Marked, it is an error;
    found by a scan, it is skipped (not checked) with the reason."""

    def for_scan(self, target_id: str) -> str:
        """The reason as a skipped, unmarked target's row gives it."""
        return str(self)


class OptionNeeded(NotProbed):
    """A target that needs an option only its author can give (a subclassed model's input
    shape): found by a scan, it is skipped with where pyproject.toml takes the option."""

    def __init__(self, reason: str, option: str, placeholder: str = "<features>") -> None:
        # A placeholder, not a guess: only the target's author knows the shape.
        super().__init__(f"{reason}: set {option}= to the per-sample shape, e.g. "
                         f"@pytest.mark.lossguard({option}=({placeholder},)), or "
                         f"check(target, {option}=({placeholder},))")
        self.reason, self.option, self.placeholder = reason, option, placeholder

    def for_scan(self, target_id: str) -> str:
        """The same advice for an unmarked target: where pyproject.toml takes the option."""
        return (f"{self.reason}; set it in pyproject.toml, under "
                f'[tool.lossguard.targets."{target_id}"]: {self.option} = [{self.placeholder}]')


class LossguardWarning(UserWarning):
    """A target passed, but did something the user should know of, such as changing global
    state (random seeds, dtype policy, eager mode) that lossguard then put back."""


_STAGE = "__lossguard_stage__"


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Mark what lossguard was doing when an unexpected exception escaped (the innermost stage
    wins), so that `unexpected` can name it."""
    try:
        yield
    except LossguardError:
        raise
    except Exception as exc:
        if not hasattr(exc, _STAGE):
            setattr(exc, _STAGE, name)
        raise


def unexpected(target: str, exc: Exception) -> LossguardError:
    """An exception from lossguard's own code (or from a library under it), as the one error
    `check()` raises: naming the target, the stage and the original exception."""
    where = getattr(exc, _STAGE, "checking it")
    return LossguardError(
        f"{target}: lossguard failed while {where}: {type(exc).__name__}: {exc}; this is a "
        "lossguard bug or an unsupported setup: please report it with this message"
    )
