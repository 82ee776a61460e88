"""Where a broadcast happened: the first op that grew on the probe and not on the reference.

The backend traces (backends/*: TF graphs, NumPy ufunc recording). Growth that the reference
layout also shows is intended (an outer product, a bias add) and is left out, so only the
probe's own growth is reported, at the user's line that created it. The reference layout is
shared by most probes of a target, so its trace is taken once per layout.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from pytest_lossguard.backends import Backend
from pytest_lossguard.findings import Location


class Locator:
    """Locates growth for one target's check, tracing each reference layout once."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.intended: dict[Hashable, set[tuple[str, str]] | None] = {}

    def _intended(self, call: Callable[..., Any], reference: Sequence[np.ndarray],
                  tag: str) -> set[tuple[str, str]] | None:
        key = (tag, tuple((a.shape, a.dtype.str) for a in reference))
        if key not in self.intended:
            try:
                self.intended[key] = {g.key for g in self.backend.growth(call, reference)}
            except Exception:  # a target that cannot be traced simply has no location
                self.intended[key] = None
        return self.intended[key]

    def __call__(self, call: Callable[..., Any], probe: Sequence[np.ndarray],
                 reference: Sequence[np.ndarray], tag: str = "") -> Location | None:
        """The first growth the probe shows and the reference does not; None if none or
        untraceable. `call` takes the arrays positionally, as the backend's tensors; `tag`
        names the call when one target is traced through several (a model's phases)."""
        intended = self._intended(call, reference, tag)
        if intended is None:
            return None
        try:
            found = next((g for g in self.backend.growth(call, probe) if g.key not in intended),
                         None)
        except Exception:
            return None
        return None if found is None else found.location()
