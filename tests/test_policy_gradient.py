"""Policy-gradient facts, proven exactly on small MDPs by enumerating every trajectory.

The claims of RL notes made in words — the policy gradient theorem, a state baseline keeps
the estimator unbiased, reward-to-go lowers variance, the critic's target is detached,
TRPO's KL Hessian is the Fisher matrix — become exact checks here.
"""

from fractions import Fraction as F

import numpy as np
import pytest
import sympy
import torch
from hypothesis import given, settings

import refmath_torch
from refmath import policy_gradient as pg
from refmath import trust_region as tr
from refmath.checks.trust import mdps


@settings(max_examples=30)
@given(case=mdps())
def test_every_estimator_is_unbiased(case):
    """E[g] = ∇J exactly for the full return, the reward-to-go, and reward-to-go with any
    baseline that depends on the time and the state only."""
    mdp, pi = case
    grad = pg.return_gradient(mdp, pi)
    for estimator in ("full_return", "reward_to_go"):
        assert (pg.reinforce_moments(mdp, pi, estimator)["mean"] == grad).all()
    state_baseline = pg.reinforce_moments(mdp, pi, "reward_to_go_baseline",
                                          baseline=lambda t, s, a: F(3 * s - t, 2))
    assert (state_baseline["mean"] == grad).all()


def _example():
    mdp = pg.TabularMDP(P=[[[F(1, 2), F(1, 2)], [F(1, 5), F(4, 5)]],
                           [[F(0), F(1)], [F(1, 2), F(1, 2)]]],
                        R=[[F(1), F(1)], [F(-3), F(0)]], rho=[F(1), F(0)], H=2, gamma=F(1))
    pi = np.array([[F(3, 4), F(1, 4)], [F(1, 2), F(1, 2)]], dtype=object)
    return mdp, pi


def test_an_action_dependent_baseline_biases_the_estimator():
    mdp, pi = _example()
    grad = pg.return_gradient(mdp, pi)
    biased = pg.reinforce_moments(mdp, pi, "reward_to_go_baseline",
                                  baseline=lambda t, s, a: F(a))["mean"]
    assert (biased != grad).any()
    # the bias is E[∇log π(a_t|s_t)·b(a_t)], here −Σ_t E[...]: nonzero in both states' rows
    assert biased[0, 0] != grad[0, 0]


def test_reward_to_go_can_have_larger_variance_than_the_full_return():
    """Not true in general that reward-to-go lowers the variance (trace of the covariance):
    a documented counterexample, found by searching random small MDPs, exact:
    start in s0, γ = 1, H = 2, r(s0, ·) = 1, r(s1, a0) = −3, r(s1, a1) = 0,
    P(·|s0, a0) = (½, ½), P(·|s0, a1) = (⅕, ⅘), π(·|s0) = (¾, ¼), π(·|s1) = (½, ½)."""
    mdp, pi = _example()
    full = pg.reinforce_moments(mdp, pi, "full_return")["trace"]
    rtg = pg.reinforce_moments(mdp, pi, "reward_to_go")["trace"]
    assert rtg > full  # 2.0369 vs 2.1338


def test_gradient_matches_finite_differences():
    """∇J (exact, symbolic) against central differences of J in logits (float64; error
    O(h²) + O(u/h) ≈ 1e-10 for h = 1e-5)."""
    mdp, pi = _example()
    grad = np.vectorize(float)(pg.return_gradient(mdp, pi)).astype(float)
    theta = np.log(np.vectorize(float)(pi).astype(float))
    h = 1e-5
    fd = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        for sign in (1, -1):
            t = theta.copy()
            t[idx] += sign * h
            p = np.exp(t) / np.exp(t).sum(-1, keepdims=True)
            fd[idx] += sign * float(pg.expected_return(mdp, p.astype(object))) / (2 * h)
    np.testing.assert_allclose(fd, grad, rtol=0, atol=1e-8)


def test_torch_autograd_gradient_equals_the_exact_one():
    mdp, pi = _example()
    theta = torch.tensor(np.log(np.vectorize(float)(pi).astype(float)), requires_grad=True)
    refmath_torch.expected_return(mdp, torch.softmax(theta, -1)).backward()
    exact = np.vectorize(float)(pg.return_gradient(mdp, pi)).astype(float)
    np.testing.assert_allclose(theta.grad.numpy(), exact, rtol=0, atol=1e-14)


def test_actor_loss_without_detach_is_caught(profile):
    """The registry check rejects an actor loss that lets gradient into the critic."""
    from refmath.checks import checks_for, run_check

    (check,) = checks_for("actor_loss")
    assert run_check(check, refmath_torch.actor_loss, profile).passed
    broken = run_check(check, lambda logp, advantages: -logp * advantages, "detect")
    assert broken.status == "failed" and "critic" in broken.message


def test_fisher_equals_kl_hessian_symbolically_for_three_actions():
    p1, p2 = sympy.symbols("p1 p2", positive=True)
    p = [p1, p2, 1 - p1 - p2]
    assert (tr.fisher_matrix(p) - tr.kl_hessian(p)).applyfunc(sympy.simplify).is_zero_matrix


def test_surrogate_hessian_is_not_the_fisher_matrix():
    p = [F(1, 2), F(1, 4), F(1, 4)]
    H = tr.surrogate_hessian(p, [F(1), F(0), F(-1)])
    assert not (H - tr.fisher_matrix(p)).is_zero_matrix


def test_conjugate_gradient_oracle_is_exact_in_n_steps():
    A = sympy.Matrix([[4, 1, 0], [1, 3, 1], [0, 1, 2]])
    g = [1, -2, 3]
    x = tr.conjugate_gradient(lambda v: list(A * sympy.Matrix(v)), g, iters=3)
    assert sympy.Matrix(x) == A.LUsolve(sympy.Matrix(g))
    damped = tr.conjugate_gradient(lambda v: list(A * sympy.Matrix(v)), g, 3, damping=F(1, 2))
    assert sympy.Matrix(damped) == (A + sympy.eye(3) / 2).LUsolve(sympy.Matrix(g))


def test_natural_step_quadratic_model_is_delta_exactly():
    F_ = [[2, 1], [1, 3]]
    s = tr.natural_gradient_step([1, 2], F_, F(1, 100))
    assert sympy.simplify((s.T * sympy.Matrix(F_) * s)[0] / 2) == F(1, 100)


def test_line_search_backtracks_when_the_full_step_violates_the_constraint():
    """Full step = 4× the δ-step: its KL is 16δ; halving twice gives exactly δ (accepted)."""
    F_ = sympy.Matrix([[2, 1], [1, 3]])
    g = [1, 2]
    delta = F(1, 100)
    step = [4 * x for x in tr.natural_gradient_step(g, F_, delta)]

    def objective(x):
        return sum(a * b for a, b in zip(g, x))

    def kl(x):
        v = sympy.Matrix(x)
        return (v.T * F_ * v)[0] / 2

    assert kl(step) > delta
    x, k = tr.backtracking_line_search(objective, kl, [0, 0], step, max_kl=delta)
    assert k == 2 and sympy.simplify(kl(x) - delta) == 0 and objective(x) > 0
    x, k = tr.backtracking_line_search(objective, kl, [0, 0], [-v for v in step], max_kl=delta)
    assert k is None and x == [0, 0]  # never accepts a step that does not improve


@pytest.mark.parametrize("bad", [
    dict(P=[[[F(1, 2), F(1, 3)]]], R=[[F(0)]], rho=[F(1)], H=1),
    dict(P=[[[F(1)]]], R=[[F(0)]], rho=[F(1)], H=0),
])
def test_bad_mdp_is_rejected(bad):
    with pytest.raises(ValueError):
        pg.TabularMDP(**bad)
