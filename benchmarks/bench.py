"""Benchmarks of pytest-lossguard, printed as ratios against their targets.

Run: .venv/bin/python benchmarks/bench.py
Figures are measured side by side in one run; benchmarks/README.md records the latest.
"""

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "linear_regression"))

MODEL_TARGET_SECONDS = 2.0


def seconds(fn, repeat=1):
    """Median wall time of `repeat` calls of fn."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def model_probing():
    """Probing the linear-regression Dense model, after TensorFlow is imported."""
    started = time.perf_counter()
    import regression  # imports keras and tensorflow

    imported = time.perf_counter() - started
    from pytest_lossguard import check

    options = {"input_shape": (3,), "compile": {"optimizer": "sgd", "loss": regression.mse}}
    first = seconds(lambda: check(regression.HandWrittenLoss, **options))
    warm = seconds(lambda: check(regression.HandWrittenLoss, **options), repeat=5)
    clean = seconds(lambda: check(regression.ComputeLoss, **options), repeat=5)
    print(f"framework import                 {imported:6.2f} s (not counted)")
    print(f"model probing, first (flagged)   {first:6.2f} s   "
          f"{first / MODEL_TARGET_SECONDS:5.2f} x target {MODEL_TARGET_SECONDS} s")
    print(f"model probing, warm (flagged)    {warm:6.2f} s   "
          f"{warm / MODEL_TARGET_SECONDS:5.2f} x target")
    print(f"model probing, warm (clean)      {clean:6.2f} s   "
          f"{clean / MODEL_TARGET_SECONDS:5.2f} x target")


def main():
    import platform
    from importlib.metadata import version

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"lossguard {version('pytest-lossguard')}, keras {version('keras')}, "
          f"tensorflow {version('tensorflow')}")
    model_probing()


if __name__ == "__main__":
    main()
