"""TensorFlow eager tensors, for tf.* code and tf_keras."""

from __future__ import annotations

import tensorflow as tf

from pytest_lossguard.backends import Backend

BACKEND = Backend("tensorflow", tf.convert_to_tensor)
