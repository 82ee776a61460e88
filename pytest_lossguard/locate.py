"""Where a broadcast happened: the first op that grew on the probe and not on the reference.

The backend traces (backends/*: TF graphs, NumPy ufunc recording). Growth that the reference
layout also shows is intended (an outer product, a bias add) and is left out, so only the
probe's own growth is reported, at the user's line that created it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pytest_lossguard.backends import Backend
from pytest_lossguard.findings import Location


def locate(call: Callable[..., Any], probe: Sequence[np.ndarray],
           reference: Sequence[np.ndarray], backend: Backend) -> Location | None:
    """The first growth the probe shows and the reference does not; None if none or untraceable.

    `call` takes the arrays positionally, as the backend's traced tensors.
    """
    try:
        intended = {g.key for g in backend.growth(call, reference)}
        found = next((g for g in backend.growth(call, probe) if g.key not in intended), None)
    except Exception:  # a target that cannot be traced simply has no location
        return None
    return None if found is None else found.location()
