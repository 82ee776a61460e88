"""NumPy arrays: copies, so an in-place loss cannot corrupt the shared draw."""

from __future__ import annotations

import numpy as np

from pytest_lossguard.backends import Backend

BACKEND = Backend("numpy", np.array)
