"""Test configuration: the Hypothesis profile.

``ci`` (registered by refmath under that name on purpose, so that it replaces Hypothesis'
built-in ``ci`` profile when ``CI`` is set) is derandomized, deadline-free and bounded: the
suite is deterministic and never flaky. ``REFMATH_PROFILE=thorough pytest`` runs the long
randomized version.
"""

import pytest

from refmath.strategies import load_default_profile

PROFILE = load_default_profile()


def pytest_report_header(config):
    return f"refmath hypothesis profile: {PROFILE}"


@pytest.fixture
def profile() -> str:
    return PROFILE
