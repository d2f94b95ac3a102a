"""Test configuration: the Hypothesis profile.

``ci`` (registered by refmath under that name on purpose, so that it replaces Hypothesis'
built-in ``ci`` profile when ``CI`` is set) is derandomized, deadline-free and bounded: the
suite is deterministic and never flaky. ``REFMATH_PROFILE=thorough pytest`` runs the long
randomized version.
"""

import pytest

import refmath.checks.mutants  # noqa: F401
import refmath.cli  # noqa: F401
import refmath.conformance  # noqa: F401
import refmath.peers  # noqa: F401
from refmath.checks import kinds
from refmath.claims import all_claims
from refmath.strategies import load_default_profile

# Hypothesis mixes literal constants of the project's imported modules into generation, so
# what is imported changes the (derandomized) examples. Import everything the tests will load
# up front: the examples are then the same however the tests are selected or ordered.
kinds()
all_claims()
PROFILE = load_default_profile()


def pytest_report_header(config):
    return f"refmath hypothesis profile: {PROFILE}"


@pytest.fixture
def profile() -> str:
    return PROFILE
