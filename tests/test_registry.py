"""Every check of the registry, on the bundled Torch implementations and on the oracles.

The same registry is what the ``refmath`` command runs; the checks are defined once, in
``refmath/checks/``. That they can fail is shown in ``test_checks_reject.py``.
"""

import pytest
import refmath_torch

from refmath.checks import checks_for, kinds, run_check

IMPLEMENTED = [k for k in kinds() if k != "identities"]


@pytest.mark.parametrize("check", [c for k in IMPLEMENTED for c in checks_for(k)],
                         ids=lambda c: c.id)
def test_bundled_implementation(check, profile):
    result = run_check(check, getattr(refmath_torch, check.kind), profile)
    assert result.status == "passed", result.message
    assert result.examples >= 1


@pytest.mark.parametrize("check", checks_for("identities"), ids=lambda c: c.id)
def test_identity(check, profile):
    result = run_check(check, None, profile)
    assert result.status == "passed", result.message
    assert result.examples >= 1


def test_every_bundled_function_has_checks():
    for name in refmath_torch.__all__:
        assert name in IMPLEMENTED, f"refmath_torch.{name} has no checks in the registry"
