"""Shared test settings.

Frameworks load here, once, before any in-process pytester run: pytester drops every module an
inner run imports when that run ends, and TensorFlow does not survive being imported twice.
"""

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy  # noqa: F401
import pytest

from pytest_lossguard.quiet import framework_import

with framework_import():  # TensorFlow's C++ start-up lines stay out of the test output
    # Lightning before Keras: the reverse order crashes the process with some torch builds.
    import lightning  # noqa: F401
    import tensorflow  # noqa: F401

    # The flavour zoo.py picks: tf_keras when test_legacy.py reruns test_models.py, else Keras 3.
    if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        import tf_keras  # noqa: F401
    else:
        import keras  # noqa: F401

# The engine too (the public API loads it), so inner runs share its modules with this process.
from pytest_lossguard import caches, check  # noqa: F401

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # only tests/test_properties.py needs it, and it imports hypothesis itself
    pass
else:
    # Deterministic in CI: examples derive from each test's source, nothing is replayed from a
    # local database, and TensorFlow's first calls are slow without meaning anything.
    settings.register_profile(
        "lossguard",
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=50,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    # Local exploration: `pytest tests/test_properties.py --hypothesis-profile=lossguard-explore`
    settings.register_profile(
        "lossguard-explore",
        parent=settings.get_profile("lossguard"),
        derandomize=False,
        max_examples=1000,
    )
    settings.load_profile("lossguard")


@pytest.fixture(autouse=True)
def _clean_engine():
    """Every test starts from an empty engine: no memo left by an earlier test or inner run."""
    caches.clear()


@pytest.fixture
def zoo_pytester(pytester, monkeypatch):
    """pytester, with a copy of zoo.py in its directory for the test files it writes to import.

    In-process runs must import that copy (its code located in the pytester directory, fresh
    for each run), not this process's zoo module: it is out of sys.modules for the test.
    """
    shutil.copy(Path(__file__).with_name("zoo.py"), pytester.path / "zoo.py")
    monkeypatch.delitem(sys.modules, "zoo", raising=False)
    return pytester
