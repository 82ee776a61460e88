"""Where a broadcast happened: the first op that grew on one layout and not on the other.

The backend traces (backends/*: TF op callbacks, jaxprs, torch function modes, NumPy ufunc
recording). Growth that the reference layout also shows is intended (an outer product, a bias
add) and is left out, so only the probe's own growth is reported, at the user's line that
created it. Asked the other way round (the reference's growth that the probe does not show,
mixing ranks), it finds a reference layout that is the broken one. Each layout is traced once
per check: most probes share their reference.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from pytest_lossguard.backends import Backend
from pytest_lossguard.findings import Location
from pytest_lossguard.trace import Growth


class Locator:
    """Locates growth for one target's check, tracing each layout once."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.traces: dict[Hashable, list[Growth] | None] = {}

    def _growth(self, call: Callable[..., Any], arrays: Sequence[np.ndarray],
                tag: str) -> list[Growth] | None:
        key = (tag, tuple((a.shape, a.dtype.str) for a in arrays))
        if key not in self.traces:
            try:
                self.traces[key] = self.backend.growth(call, arrays)
            except Exception:  # a target that cannot be traced simply has no location
                self.traces[key] = None
        return self.traces[key]

    def __call__(self, call: Callable[..., Any], probe: Sequence[np.ndarray],
                 reference: Sequence[np.ndarray], tag: str = "",
                 mixed: bool = False) -> Location | None:
        """The first growth the probe shows and the reference does not; None if none or
        untraceable. `call` takes the arrays positionally, as the backend's tensors; `tag`
        names the call when one target is traced through several (a model's phases); `mixed`
        keeps only ops that mix ranks (to blame a reference layout, never an outer product)."""
        intended = self._growth(call, reference, tag)
        found = None if intended is None else self._growth(call, probe, tag)
        if intended is None or found is None:
            return None
        keys = {g.key for g in intended}
        return next((g.location() for g in found
                     if g.key not in keys and (g.mixed or not mixed)), None)
