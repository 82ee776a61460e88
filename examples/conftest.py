"""Keep TensorFlow's C++ start-up logs (CUDA probing on a CPU) out of the examples' output."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
