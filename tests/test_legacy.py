"""Keras 2: rerun test_models.py against tf_keras, as TF_USE_LEGACY_KERAS=1 users run it.

Skipped with a reason when tf_keras is not installed, except in CI (CI=true), where a
missing tf_keras is a failure: the test extra installs it.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_model_and_loss_probes_hold_on_tf_keras():
    if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        pytest.skip("already running under TF_USE_LEGACY_KERAS=1")
    if importlib.util.find_spec("tf_keras") is None:
        if os.environ.get("CI"):
            pytest.fail("tf_keras is missing in CI; the test extra installs it: "
                        "pip install -e '.[test]'")
        pytest.skip("tf_keras is not installed; pip install -e '.[test]' runs the Keras 2 "
                    "session too")
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(HERE / "test_models.py")],
        cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=600,
    )
    tail = result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and not re.search(
        r"failed|error|skipped", summary), tail
