"""Test configuration: the Hypothesis profile.

The project's tests register refmath's profiles (``refmath.profiles``) and load one,
deliberately: ``ci`` replaces Hypothesis' built-in ``ci`` profile when ``CI`` is set. It is
derandomized, deadline-free and bounded: the suite is deterministic and never flaky.
``REFMATH_PROFILE=thorough pytest`` runs the long randomized version. (Library code never does
this: the checks apply their own settings objects.)
"""

import importlib
import os
import pkgutil

import pytest
from hypothesis import settings

import refmath
import refmath.checks
import refmath.checks.mutants  # noqa: F401
import refmath.claims
import refmath.cli  # noqa: F401
import refmath.conformance  # noqa: F401
import refmath.peers  # noqa: F401
from refmath.checks import kinds
from refmath.claims import all_claims
from refmath.strategies import register_profiles

# Hypothesis mixes literal constants of the project's imported modules into generation, so
# what is imported changes the (derandomized) examples. Import everything the tests will load
# up front: the examples are then the same however the tests are selected or ordered.
kinds()
all_claims()
register_profiles()
for _pkg in (refmath, refmath.checks, refmath.claims, refmath.conformance):
    for _module in pkgutil.iter_modules(_pkg.__path__):  # every module, lazy ones included
        if _module.name != "__main__":
            importlib.import_module(f"{_pkg.__name__}.{_module.name}")
PROFILE = os.environ.get("REFMATH_PROFILE") or "ci"
settings.load_profile(PROFILE)


def pytest_report_header(config):
    return f"refmath hypothesis profile: {PROFILE}"


@pytest.fixture
def profile() -> str:
    return PROFILE
