"""Shared test settings: quiet TensorFlow in every subprocess pytester starts."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
