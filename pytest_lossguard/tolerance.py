"""When two results count as equal: dtype-aware tolerances, overridable by rtol / atol."""

from __future__ import annotations

import math

from pytest_lossguard.options import Options

# (rtol, atol) by the result's float width: reductions in another order differ in the last bits.
_BY_ITEMSIZE = {2: (1e-2, 1e-3), 4: (1e-4, 1e-6), 8: (1e-7, 1e-10)}


def tolerances(itemsize: int, options: Options) -> tuple[float, float]:
    """(rtol, atol) for results of this float width, unless the options set them."""
    rtol, atol = _BY_ITEMSIZE.get(itemsize, _BY_ITEMSIZE[4])
    return (options.rtol if options.rtol is not None else rtol,
            options.atol if options.atol is not None else atol)


def close(a: float, b: float, itemsize: int, options: Options) -> bool:
    """True when two reduced values agree within the tolerance for `itemsize`."""
    rtol, atol = tolerances(itemsize, options)
    if math.isinf(a) or math.isinf(b):
        return a == b
    # np.isclose's rule, in plain Python: this runs for every probe and reference.
    return abs(a - b) <= atol + rtol * abs(b)
