"""The oracles on hand-derived examples, exactness, input forms and bad input.

Each expected number below is derived by hand next to it from SPEC §2's definitions.
"""

import doctest
from fractions import Fraction as F

import numpy as np
import pytest
import sympy

import refmath
from refmath import advantages, returns

R = [F(1), F(2), F(3)]
V = [F(1, 2), F(1, 4), F(1, 8)]
NV = [F(1, 4), F(1), F(1)]
HALF = F(1, 2)


def test_doctests():
    for module in (returns, advantages):
        failures, tried = doctest.testmod(module)
        assert tried > 0 and failures == 0


def test_gae_truncation_by_hand():
    # δ0 = 1 + ½·¼ − ½ = 5/8;  δ1 = 2 + ½·1 − ¼ = 9/4;  δ2 = 3 + ½·1 − ⅛ = 27/8.
    # truncated at 1 → segments {0, 1}, {2}: A2 = 27/8, A1 = δ1 = 9/4 (segment end,
    # bootstraps from next_values[1] inside δ1), A0 = 5/8 + ¼·9/4 = 19/16.
    out = refmath.gae(R, V, NV, gamma=HALF, lam=HALF, truncated=[False, True, False])
    assert list(out) == [F(19, 16), F(9, 4), F(27, 8)]
    assert all(isinstance(x, F) for x in out)


def test_gae_termination_by_hand():
    # terminated at 2: δ2 = 3 − ⅛ = 23/8 (next_values[2] is not read); A2 = 23/8,
    # A1 = 9/4 + ¼·23/8 = 95/32, A0 = 5/8 + ¼·95/32 = 175/128.
    out = refmath.gae(R, V, NV, gamma=HALF, lam=HALF, terminated=[False, False, True])
    assert list(out) == [F(175, 128), F(95, 32), F(23, 8)]
    nan_there = refmath.gae(R, V, NV[:2] + [float("nan")], gamma=HALF, lam=HALF,
                            terminated=[False, False, True])
    assert list(nan_there) == list(out)


def test_gae_mask_by_hand():
    # mask [1, 0, 1]: compressed row r = [1, 3], V = [½, ⅛], V' = [¼, 1]:
    # δ = [1 + ⅛ − ½, 3 + ½ − ⅛] = [5/8, 27/8]; A = [5/8 + ¼·27/8, 27/8] = [47/32, 27/8];
    # written back, 0 at the masked step.
    out = refmath.gae(R, V, NV, gamma=HALF, lam=HALF, mask=[1, 0, 1])
    assert list(out) == [F(47, 32), F(0), F(27, 8)]


def test_discounted_returns_per_step_gamma_by_hand():
    # G2 = 1; G1 = 1 + ⅓·1 = 4/3; G0 = 1 + ½·4/3 = 5/3.
    out = refmath.discounted_returns([1, 1, 1], gamma=[HALF, F(1, 3), F(1)])
    assert list(out) == [F(5, 3), F(4, 3), F(1)]


def test_n_step_by_hand():
    # rewards 1, next_values 4, γ = ½, n = 2, terminated at step 2:
    # G0: k = 2 → 1 + ½·1 + ¼·V'_1 = 3/2 + 1 = 5/2;  G1: k = 2, the window ends at the
    # terminated step 2 → 1 + ½·1 + 0 = 3/2;  G2: terminated → 1;  G3: last step, k = 1 →
    # 1 + ½·4 = 3.
    out = refmath.n_step_returns([1] * 4, [4] * 4, gamma=HALF, n=2,
                                 terminated=[False, False, True, False])
    assert list(out) == [F(5, 2), F(3, 2), F(1), F(3)]


def test_symbolic_gamma():
    r0, r1, g = sympy.symbols("r0 r1 gamma")
    out = refmath.discounted_returns([r0, r1], gamma=g)
    assert sympy.expand(out[0] - (r0 + g * r1)) == 0 and out[1] == r1


def test_float_inputs_give_float64_and_batches_are_rows():
    gen = np.random.default_rng(0)
    r, v, nv = (gen.normal(size=(2, 3, 5)).astype(np.float32) for _ in range(3))
    out = refmath.gae(r, v, nv, gamma=0.9, lam=0.8)
    assert out.dtype == np.float64 and out.shape == (2, 3, 5)
    row = refmath.gae(r[1, 2], v[1, 2], nv[1, 2], gamma=0.9, lam=0.8)
    assert np.array_equal(out[1, 2], row)


def test_integer_inputs_are_exact():
    out = refmath.discounted_returns([1, 1], gamma=F(1, 3))
    assert list(out) == [F(4, 3), F(1)]


@pytest.mark.parametrize("call, message", [
    (lambda: refmath.gae(R, V[:2], NV, gamma=HALF, lam=HALF), "values has shape"),
    (lambda: refmath.gae(R, V, NV, gamma=1.5, lam=HALF), "gamma must lie in"),
    (lambda: refmath.gae(R, V, NV, gamma=HALF, lam=-0.5), "lam must lie in"),
    (lambda: refmath.gae(R, V, NV, gamma=HALF, lam=HALF, mask=[1, 2, 1]), "mask must contain"),
    (lambda: refmath.gae(R, V, NV, gamma=HALF, lam=HALF, terminated=[1, 0]),
     "terminated has shape"),
    (lambda: refmath.gae([1.0, float("nan")], [0.0, 0.0], [0.0, 0.0], gamma=0.5, lam=0.5),
     "rewards is not finite"),
    (lambda: refmath.n_step_returns(R, NV, gamma=HALF, n=0), "n must be an integer"),
    (lambda: refmath.discounted_returns([], gamma=HALF), "empty time axis"),
    (lambda: refmath.gae(R, V, NV, gamma=[HALF, HALF], lam=HALF), "gamma has shape"),
])
def test_bad_input_names_the_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_ignored_numbers_may_be_anything():
    # NaN at a masked step is never read (SPEC §1: flags and values at masked steps are
    # ignored), so the result equals the one with a finite number there.
    clean = refmath.gae([1.0, 2.0], [0.0, 0.0], [0.0, 0.0], gamma=0.5, lam=0.5, mask=[1, 0])
    dirty = refmath.gae([1.0, float("nan")], [0.0, 0.0], [0.0, 0.0], gamma=0.5, lam=0.5,
                        mask=[1, 0])
    assert np.array_equal(clean, dirty)
