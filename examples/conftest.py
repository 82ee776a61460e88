"""Keep TensorFlow's C++ start-up logs (CUDA probing on a CPU) out of the examples' output, and
import Lightning before any example imports Keras: with some torch builds, importing Lightning
after Keras crashes the process (see README, "Import order")."""

import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

with contextlib.suppress(ImportError):
    import lightning  # noqa: F401
