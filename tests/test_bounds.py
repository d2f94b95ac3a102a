"""Every derived bound of an array row is a bound: never negative, finite wherever the exact
result is (but for the zero-spread inputs of the functions with a zero_spread check), and
never so loose that it proves nothing — in float64 at most 10⁷·u·scale·n
(scale: 1 + the largest |input| or |exact result|, times 1/eps where a result is divided by
(std + eps); n: the result's size + 1). The loosest legitimate one is group_advantages' (a
near-constant group's rounding ÷ (std + eps): ~8·10⁵ of that); a bound
loosened to an absolute 1.0 (as a slip in V-trace's policy-gradient bound once was) is ~10¹⁴
and fails. A tightened bound fails elsewhere: the bundled implementations use ~0.6-1.0 of
theirs under ``ci`` (``refmath``'s worst err/bound column)."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

from refmath.bounds import unit_roundoff
from refmath.checks import array_row, kinds
from refmath.checks.compare import exact_floats

ROWS = [k for k in kinds() if k != "identities" and array_row(k) is not None]
LOOSEST = 1e7
# A statistic divided by (std + eps) of a zero-spread input may be too ill-conditioned for a
# finite bound (a float32 mean's rounding ÷ eps): there the exact result is 0 everywhere, and
# the zero_spread check of these kinds holds the result to exactly 0 instead.
ZERO_SPREAD_CHECKED = ("group_advantages", "whiten")


def _scale(case, floats, exact) -> float:
    finite = [np.abs(np.asarray(x, dtype=np.float64)) for x in (*floats, exact)]
    scale = 1.0 + max(float(np.max(x[np.isfinite(x)], initial=0.0)) for x in finite)
    eps = case.kwargs.get("eps")
    return scale * max(1.0, 1 / float(eps)) if eps else scale


@pytest.mark.parametrize("kind", ROWS)
def test_bound_is_nonnegative_finite_and_not_vacuous(kind):
    row = array_row(kind)

    @settings(max_examples=20, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=row.cases())
    def prop(case):
        for dtype in (torch.float64, torch.float32):
            floats = case.floats(dtype)
            try:
                exact = exact_floats(row.call(row.oracle, case.exact_values(dtype)))
            except ValueError:  # an input the oracle rejects once rounded: no bound owed
                return
            u = unit_roundoff(dtype)
            bound = np.broadcast_to(np.asarray(row.bound(case, floats, exact, u),
                                               dtype=np.float64), exact.shape)
            finite = np.isfinite(exact)
            assert np.all(bound >= 0), f"{kind}: a negative bound {bound.min()} ({case!r})"
            if not (kind in ZERO_SPREAD_CHECKED and not np.any(exact)):
                assert np.all(np.isfinite(bound[finite])), \
                    f"{kind}: a non-finite bound ({case!r})"
            if dtype == torch.float64 and finite.any():
                worst = float(np.max(bound[finite])) / (u * _scale(case, floats, exact)
                                                         * (exact.size + 1))
                assert worst <= LOOSEST, f"{kind}: bound {worst:.3g}·u·scale·n ({case!r})"

    prop()
