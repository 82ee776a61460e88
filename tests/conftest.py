"""Shared test settings: quiet TensorFlow in every subprocess pytester starts."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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
