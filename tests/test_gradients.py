"""Gradients of the Torch GAE against the closed form of SPEC §2.

``A_t = Σ_{s=t}^{e_t} (Π_{j=t}^{s−1} γ_j·λ)·δ_s`` (e_t: the end of t's segment) gives
``∂A_t/∂r_s = Π_{j=t}^{s−1} γ_j·λ`` for t ≤ s ≤ e_t and 0 elsewhere, ``∂A_t/∂V_s`` the
negative of it, and ``∂A_t/∂V'_s = Π_{j=t}^{s−1}(γ_j·λ)·γ_s·(1 − terminated_s)``. The
expected Jacobians below are written straight from those products.
"""

import numpy as np
import pytest
import torch

import refmath_torch as rt


def closed_form_jacobians(gamma, lam, terminated, truncated):
    T = len(gamma)
    dr = np.zeros((T, T))
    dnv = np.zeros((T, T))
    for t in range(T):
        weight = 1.0
        for s in range(t, T):
            dr[t, s] = weight
            dnv[t, s] = weight * gamma[s] * (0.0 if terminated[s] else 1.0)
            if terminated[s] or truncated[s]:
                break
            weight *= gamma[s] * lam
    return dr, -dr, dnv


@pytest.mark.parametrize("seed", range(6))
def test_gae_jacobian_is_the_product_of_step_discounts(seed):
    gen = np.random.default_rng(seed)
    T = 9
    gamma = gen.uniform(0, 1, T)
    lam = float(gen.uniform(0, 1))
    terminated = gen.random(T) < 0.2
    truncated = gen.random(T) < 0.2
    inputs = [torch.tensor(gen.normal(size=T)) for _ in range(3)]
    kw = dict(gamma=torch.tensor(gamma), lam=lam, terminated=torch.tensor(terminated),
              truncated=torch.tensor(truncated))
    expected = closed_form_jacobians(gamma, lam, terminated, truncated)
    for i, exp in enumerate(expected):
        def f(x, i=i):
            args = list(inputs)
            args[i] = x
            return rt.gae(*args, **kw)

        J = torch.autograd.functional.jacobian(f, inputs[i]).numpy()
        # entries are products of ≤ 2T factors in [0, 1], each with a relative rounding
        # error ≤ u = 2^-53: |error| ≤ 2T·u ≈ 2e-15.
        np.testing.assert_allclose(J, exp, rtol=0, atol=1e-13)


def test_gae_jacobian_with_a_mask_skips_the_hole():
    # mask [1, 0, 1, 1]: the recursion jumps from step 2 straight to step 0, so
    # ∂A_0/∂r_2 = γλ and nothing depends on the masked step 1.
    gamma, lam = 0.5, 0.25
    r = torch.zeros(4, dtype=torch.float64)
    z = torch.zeros(4, dtype=torch.float64)
    mask = torch.tensor([True, False, True, True])
    J = torch.autograd.functional.jacobian(
        lambda x: rt.gae(x, z, z, gamma=gamma, lam=lam, mask=mask), r).numpy()
    g = gamma * lam
    expected = np.array([[1, 0, g, g * g], [0, 0, 0, 0], [0, 0, 1, g], [0, 0, 0, 1]])
    np.testing.assert_allclose(J, expected, rtol=0, atol=1e-15)


def test_gae_gradgradcheck():
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(2, 6, generator=gen, dtype=torch.float64, requires_grad=True)
          for _ in range(3)]
    kw = dict(gamma=0.9, lam=0.7, truncated=torch.tensor([[0, 0, 1, 0, 0, 0]] * 2).bool())
    assert torch.autograd.gradgradcheck(lambda *a: rt.gae(*a, **kw), tuple(xs))
