"""examples/linear_regression/fit.py --plot: the training-curves picture in the README.

Runs the script in a subprocess, as a reader would, with few epochs. Skipped with a reason
when matplotlib is not installed, except in CI (CI=true), where that is a failure: the test
extra installs the plot extra.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

FIT = Path(__file__).resolve().parent.parent / "examples" / "linear_regression" / "fit.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_fit_plot_writes_the_training_curves(tmp_path):
    if importlib.util.find_spec("matplotlib") is None:
        if os.environ.get("CI"):
            pytest.fail("matplotlib is missing in CI; the test extra installs it: "
                        "pip install -e '.[test]'")
        pytest.skip("matplotlib is not installed; pip install -e '.[plot]'")
    out = tmp_path / "curves.png"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(FIT), "--epochs", "3", "--plot", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert f"training curves written to {out}" in result.stdout

    # The printed outcome: the hand-written loss leaves the model far from the fit.
    assert "after 3 epochs of SGD(0.1)" in result.stdout
    mse = {name.strip(): float(value) for name, value in
           re.findall(r"^(custom train_step, .+?|Keras's own train_step)\s+(\d+\.\d+)\s",
                      result.stdout, re.MULTILINE)}
    assert set(mse) == {"custom train_step, mse(y, y_pred)", "custom train_step, compute_loss",
                        "Keras's own train_step"}, result.stdout
    hand_written = mse.pop("custom train_step, mse(y, y_pred)")
    assert hand_written > 1.0, result.stdout
    assert all(hand_written > 100 * other for other in mse.values()), result.stdout

