"""Keras 3 tensors of whichever backend KERAS_BACKEND selects."""

from __future__ import annotations

import keras

from pytest_lossguard.backends import Backend

BACKEND = Backend("keras", keras.ops.convert_to_tensor, keras.ops.convert_to_numpy)
