"""The pre-commit hook, run by pre-commit itself on a temporary git repository."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BAD = """import tensorflow as tf


def naive_mse(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred))
"""
GOOD = """import tensorflow as tf


def aligned_mse(y_true, y_pred):
    y_true = tf.reshape(y_true, tf.shape(y_pred))
    return tf.reduce_mean(tf.square(y_true - y_pred))
"""


def local_config():
    """A `repo: local` config made from .pre-commit-hooks.yaml, run in this environment."""
    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "lossguard" and hook["entry"] == "lossguard"
    assert hook["language"] == "python" and hook["types"] == ["python"]
    assert hook["require_serial"] is True
    script = Path(sys.executable).with_name("lossguard")
    hook.update(language="system", entry=str(script))
    return yaml.safe_dump({"repos": [{"repo": "local", "hooks": [hook]}]})


def run(*args, cwd, env=None):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_the_hook_fails_a_commit_with_a_broadcasting_loss_and_passes_a_good_one(tmp_path):
    import os

    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    repo = tmp_path / "repo"
    repo.mkdir()
    run("git", "init", "-q", cwd=repo)
    (repo / ".pre-commit-config.yaml").write_text(local_config())
    (repo / "losses.py").write_text(BAD)
    run("git", "add", "-A", cwd=repo)
    precommit = [sys.executable, "-m", "pre_commit", "run", "--all-files"]
    bad = run(*precommit, cwd=repo, env=env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "lossguard: naive_mse broadcasts labels against predictions" in bad.stdout
    (repo / "losses.py").write_text(GOOD)
    run("git", "add", "-A", cwd=repo)
    good = run(*precommit, cwd=repo, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
