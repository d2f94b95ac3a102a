"""The KL estimators: what each estimates and which gradient each gives — established by
exact computation, not assumed — and the Torch twin's autograd tied to those facts.

Worked example (README table): π = (1/2, 1/4, 1/4), π_ref = (1/8, 1/8, 3/4).
"""

from fractions import Fraction as F

import numpy as np
import pytest
import sympy
import torch

import refmath
import refmath_torch
from refmath.exact import is_zero

P = [F(1, 2), F(1, 4), F(1, 4)]
Q = [F(1, 8), F(1, 8), F(3, 4)]
LOG2, LOG3 = sympy.log(2), sympy.log(3)


def moments(kind):
    return refmath.kl_estimator_moments(P, Q, kind)


def test_worked_example_kl_by_hand():
    # KL(π‖π_ref) = ½·log 4 + ¼·log 2 + ¼·log(1/3) = (5/4)·log 2 − (1/4)·log 3
    assert is_zero(refmath.kl_divergence(P, Q)[()] - (F(5, 4) * LOG2 - F(1, 4) * LOG3))
    # KL(π_ref‖π) = ⅛·log ¼ + ⅛·log ½ + ¾·log 3 = −(3/8)·log 2 + (3/4)·log 3
    assert is_zero(refmath.kl_divergence(Q, P)[()] - (-F(3, 8) * LOG2 + F(3, 4) * LOG3))


def test_k1_and_k3_are_unbiased_k2_is_not():
    kl = refmath.kl_divergence(P, Q)[()]
    assert is_zero(moments("k1")["expectation"][()] - kl)
    assert is_zero(moments("k3")["expectation"][()] - kl)
    # E[k2] = ½ Σ π (log π − log π_ref)² = ½(½·(2 log 2)² + ¼·(log 2)² + ¼·(log 3)²)
    e2 = moments("k2")["expectation"][()]
    assert is_zero(e2 - (F(9, 8) * LOG2**2 + F(1, 8) * LOG3**2))
    assert not is_zero(e2 - kl) and abs(float(e2 - kl)) > 0.09  # 0.6914 vs 0.5918 nats


def test_autograd_gradients_of_the_sampled_losses():
    """E_π[∇k] — what autograd on sampled k gives: k1 → 0, k2 → ∇KL(π‖π_ref),
    k3 → ∇KL(π_ref‖π) (the forward KL), which differs from the reverse-KL gradient."""
    reverse = refmath.kl_divergence_gradient(P, Q, "reverse")
    forward = refmath.kl_divergence_gradient(P, Q, "forward")
    assert all(is_zero(g) for g in moments("k1")["pathwise_gradient"])
    assert all(is_zero(a - b) for a, b in zip(moments("k2")["pathwise_gradient"], reverse))
    assert all(is_zero(a - b) for a, b in zip(moments("k3")["pathwise_gradient"], forward))
    # ∇KL(π_ref‖π) = π − π_ref (softmax logits): (3/8, 1/8, −1/2); not the reverse gradient
    assert [sympy.nsimplify(g) for g in forward] == [F(3, 8), F(1, 8), F(-1, 2)]
    assert not all(is_zero(a - b) for a, b in zip(forward, reverse))


def test_full_gradients_of_the_expectations():
    """∇E_π[k] (score-function + pathwise): the reverse-KL gradient for k1 and k3, not k2."""
    reverse = refmath.kl_divergence_gradient(P, Q, "reverse")
    for kind in ("k1", "k3"):
        assert all(is_zero(a - b) for a, b in zip(moments(kind)["gradient"], reverse))
    assert not all(is_zero(a - b) for a, b in zip(moments("k2")["gradient"], reverse))


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_torch_autograd_matches_the_exact_pathwise_gradient(kind):
    """Enumerate the actions: Σ_a π(a)·∇_θ k(a) through refmath_torch.kl_estimate and
    autograd equals the oracle's exact E_π[∇k] (float64: ~1e-15)."""
    theta = torch.tensor([float(x) for x in P], dtype=torch.float64).log().requires_grad_()
    ref = torch.tensor([float(x) for x in Q], dtype=torch.float64).log()
    logpi = torch.log_softmax(theta, -1)
    k = refmath_torch.kl_estimate(logpi, ref, kind)
    pi = logpi.exp().detach()  # the sampling distribution: samples do not carry gradient
    (grad,) = torch.autograd.grad((pi * k).sum(), theta)
    exact = [float(g) for g in moments(kind)["pathwise_gradient"]]
    np.testing.assert_allclose(grad.numpy(), exact, rtol=0, atol=1e-14)


def test_reverse_direction_mistake_changes_the_value():
    """log r with the wrong sign (logp − ref_logp) turns k3 into a different number."""
    logp, ref = [F(-1)], [F(-3)]
    right = refmath.kl_estimate(logp, ref, "k3")[0]
    wrong = refmath.kl_estimate(ref, logp, "k3")[0]
    assert not is_zero(right - wrong)


def test_entropy_from_logits_extremes():
    logits = torch.tensor([1e4, -1e4, 0.0])
    assert refmath_torch.entropy_from_logits(logits).item() == 0.0
    assert refmath.entropy_from_logits([1e4, -1e4, 0.0])[()] == 0.0
    # two equal logits far from a third: log 2 (the third has probability e^-1e4 = 0)
    np.testing.assert_allclose(
        refmath_torch.entropy_from_logits(torch.tensor([1e4, 1e4, -1e4])).item(),
        np.log(2), rtol=1e-6)
