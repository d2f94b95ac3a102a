"""The test module the pytest plugin runs: ``pytest --pyargs refmath.suite --refmath-impl …``.

One test per check of the registry for each implementation given; "not applicable
(declared)" checks are reported as skips with their reason, never silently dropped.
"""

import sys

import pytest


def test_refmath_conformance(refmath_check, request):
    if refmath_check is None:
        pytest.skip("no implementation given: pass --refmath-impl KIND=module:function "
                    "(or set REFMATH_IMPL)")
    if "" not in sys.path:
        sys.path.insert(0, "")  # module:function from the directory pytest runs in
    from refmath.conformance import parse_convention, run_one
    from refmath.strategies import load_default_profile

    kind, check_id, target, convention = refmath_check
    profile = request.config.getoption("--refmath-profile") or load_default_profile()
    result, _ = run_one(kind, check_id, target, parse_convention(convention), profile)
    if result.status == "not applicable":
        pytest.skip(f"{check_id}: not applicable ({result.message})")
    assert result.status == "passed", (
        f"refmath check {check_id} FAILED for {target} [profile {profile}]\n{result.message}")
