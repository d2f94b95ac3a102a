"""The test module the pytest plugin runs: ``pytest --pyargs refmath.suite --refmath-impl …``.

One test per check of the registry for each implementation given; "not applicable
(declared)" checks are reported as skips with their reason, never silently dropped.
"""

import os

import pytest

__all__ = ["test_refmath_conformance"]


def test_refmath_conformance(refmath_check, request):
    if refmath_check is None:
        pytest.skip("no implementation given: pass --refmath-impl KIND=module:function "
                    "or add [tool.refmath.check.NAME] tables to pyproject.toml "
                    "(or set REFMATH_IMPL)")
    from refmath.conformance import failure_text, importable, run_one
    from refmath.pytest_plugin import run_options, waivers_for

    importable(os.getcwd())  # module:function from where pytest runs, after site-packages
    kind, check_id, target, binding = refmath_check
    options = run_options(request.config)
    options["expected_failures"] = waivers_for(kind, options["expected_failures"])
    result, _ = run_one(kind, check_id, target, binding, **options)
    if result.status == "not applicable":
        pytest.skip(f"{check_id}: not applicable ({result.message})")
    if result.status == "xfail":
        pytest.xfail(f"{check_id}: {result.waiver}")
    if result.status not in ("passed", "xpass"):
        pytest.fail(f"refmath check {check_id} FAILED for {target} "
                    f"[profile {options['profile']}]\n{failure_text(result)}", pytrace=False)
