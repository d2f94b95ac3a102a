"""Objectives and aggregation: hand-derived examples, gradients with respect to logp, and
which aggregation modes make a sequence's weight depend on its length."""

from fractions import Fraction as F

import numpy as np
import pytest
import torch

import refmath
import refmath_torch


def test_ppo_clip_worked_example():
    # r = 0.03/0.01 = 3, A = 0.8, ε = 0.2: r·A = 2.4, clip(r)·A = 1.2·0.8 = 0.96, min = 0.96
    assert refmath.clipped_surrogate([F(3)], [F(4, 5)], clip_low=F(1, 5))[0] == F(24, 25)


def test_gradient_with_respect_to_logp_is_zero_exactly_where_clipped():
    """∂L/∂logp = r·A where r·A is selected, exactly 0 where the clip is active (float64,
    dyadic ratios, ε = 1/4 so the boundary 5/4 is exact)."""
    r = torch.tensor([0.5, 0.5, 1.25, 1.5, 1.5, 0.75, 1.0], dtype=torch.float64)
    A = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, -1.0, 2.0], dtype=torch.float64)
    logp = r.log().requires_grad_()
    old = torch.zeros_like(logp)
    ratio = refmath_torch.importance_ratio(logp, old)
    refmath_torch.clipped_surrogate(ratio, A, clip_low=0.25).sum().backward()
    dL_dr = refmath.clipped_surrogate_ratio_gradient(r.numpy(), A.numpy(), clip_low=0.25)
    expected = ratio.detach().numpy() * dL_dr
    np.testing.assert_allclose(logp.grad.numpy(), expected, rtol=1e-15, atol=0)
    # case by case: unclipped, clipped (A<0, r<1−ε), on the boundary (not clipped),
    # clipped (A>0, r>1+ε), unclipped, clipped (r = 3/4 = 1 − ε exactly is NOT clipped)...
    assert (logp.grad.numpy() == 0).tolist() == [False, True, False, True, False, False, False]


def test_dual_clip_applies_only_to_negative_advantages():
    # A > 0 with a huge ratio: dual clip changes nothing; A < 0, r = 5: max(5·(−1), 3·(−1)) = −3
    out = refmath.clipped_surrogate([F(5), F(5)], [F(1), F(-1)], clip_low=F(1, 5), dual_clip=3)
    assert list(out) == [F(6, 5), F(-3)]


def test_value_loss_two_conventions_by_hand():
    # V = 2, R = 0, V_old = 3, c = 1/2: V_clip = 3 + clip(−1, ±½) = 5/2;
    # max_of_squares: max(4, 25/4) = 25/4; clipped_prediction: 25/4. With V = 3.2:
    # V_clip = 3.2 (inside), both forms give (3.2)² (= max(10.24, 10.24)).
    # V = 1, R = 3, V_old = 0: V_clip = ½; max((−2)², (−5/2)²) = 25/4, clipped: 25/4;
    # V = 1, R = 0, V_old = 0: V_clip = ½: max(1, ¼) = 1 but clipped_prediction gives ¼.
    kw = dict(old_values=[F(0)], clip=F(1, 2))
    assert refmath.value_loss([F(1)], [F(0)], **kw)[0] == 1
    assert refmath.value_loss([F(1)], [F(0)], clip_form="clipped_prediction", **kw)[0] == F(1, 4)


def test_adaptive_kl_rule_by_hand():
    # target 0.01, tolerance 1.5: kl 0.02 > 0.015 → β·2; kl 0.005 < 0.00667 → β/2;
    # kl exactly target·1.5 keeps β (strict inequality).
    assert refmath.adaptive_kl_coefficient(F(1), F(2, 100), target=F(1, 100)) == 2
    assert refmath.adaptive_kl_coefficient(F(1), F(5, 1000), target=F(1, 100)) == F(1, 2)
    assert refmath.adaptive_kl_coefficient(F(1), F(15, 1000), target=F(1, 100)) == 1


def test_group_advantages_by_hand():
    r = [F(1), F(0), F(0), F(1)]
    assert list(refmath.group_advantages(r, method="dr_grpo")) == [F(1, 2), F(-1, 2),
                                                                    F(-1, 2), F(1, 2)]
    # rloo: 1 − (0 + 0 + 1)/3 = 2/3; 0 − 2/3 = −2/3
    assert list(refmath.group_advantages(r, method="rloo")) == [F(2, 3), F(-2, 3),
                                                                 F(-2, 3), F(2, 3)]
    assert list(refmath.group_advantages([F(5)], method="grpo")) == [0]
    assert list(refmath_torch.group_advantages(torch.ones(3), method="grpo")) == [0, 0, 0]


def test_whiten_degenerate_inputs_are_defined():
    assert refmath_torch.whiten(torch.tensor([3.0])).tolist() == [0.0]
    assert refmath_torch.whiten(torch.tensor([2.0, 2.0])).tolist() == [0.0, 0.0]
    assert refmath_torch.whiten(torch.tensor([3.0]), shift_mean=False).tolist() == [3.0]
    with pytest.raises(ValueError, match="mask"):
        refmath_torch.whiten(torch.ones(2), torch.zeros(2, dtype=torch.bool))


def token_weights(mode, mask, normalizer=None):
    """d loss / d l_{b,t}, exactly: the loss is linear, so weight = aggregate(e_{b,t})."""
    B, T = mask.shape
    W = np.zeros((B, T), dtype=object)
    for b in range(B):
        for t in range(T):
            e = np.array([[F(0)] * T] * B, dtype=object)
            e[b, t] = F(1)
            W[b, t] = refmath.aggregate_loss(e, mask, mode, normalizer=normalizer)
    return W


@pytest.mark.parametrize("mode, sequence_weight_depends_on_length, token_weight_constant", [
    ("token-mean", True, True),
    ("seq-mean-token-mean", False, False),
    ("seq-mean-token-sum", True, True),
    ("seq-mean-token-sum-norm", True, True),
])
def test_which_modes_weigh_sequences_by_length(mode, sequence_weight_depends_on_length,
                                               token_weight_constant):
    """A short (1 token) and a long (3 tokens) sequence: the total weight of a sequence is
    Σ_t ∂loss/∂l_{b,t}. token-mean and the token-sum modes weigh a sequence by its length;
    seq-mean-token-mean weighs every sequence equally, so its tokens' weights depend on the
    length instead (a short sequence's tokens weigh more: the length bias of GRPO's loss)."""
    mask = np.array([[1, 0, 0], [1, 1, 1]], dtype=bool)
    W = token_weights(mode, mask, normalizer=3 if mode.endswith("norm") else None)
    sequence = [sum(W[b][mask[b]]) for b in range(2)]
    tokens = {W[b, t] for b in range(2) for t in range(3) if mask[b, t]}
    assert (sequence[0] != sequence[1]) == sequence_weight_depends_on_length
    assert (len(tokens) == 1) == token_weight_constant
    assert all(W[~mask] == 0)


def test_cispo_gradient_is_nonzero_exactly_where_the_ppo_clip_gradient_is_zero():
    """SPEC §7: CISPO's gradient clip(r)·A·∇log π is nonzero where PPO-clip's is zero (the
    clip active), and the same as PPO's (r·A) where the clip is inactive, at r = 1 in
    particular. Exact, on dyadic log-ratios."""
    from fractions import Fraction as F

    import sympy

    import refmath

    r = [F(1, 2), F(1), F(3), F(3)]  # below 1 − ε, inside, above 1 + ε (A > 0 and A < 0)
    A = [F(-1), F(1), F(1), F(-1)]
    ppo = refmath.clipped_surrogate_ratio_gradient(r, A, clip_low=F(1, 5))
    ppo_logp = [x * g for x, g in zip(r, ppo)]  # ∂/∂logp = r·∂/∂r
    logp = [sympy.log(sympy.Rational(x.numerator, x.denominator)) for x in r]
    cispo = refmath.cispo_surrogate_gradient(logp, [0] * 4, A, [1] * 4, clip_low=F(1, 5),
                                             clip_high=F(1, 5))
    assert [p == 0 for p in ppo_logp] == [True, False, True, False]
    assert [c != 0 for c in cispo] == [True, True, True, True]
    assert cispo[1] == ppo_logp[1] == 1  # r = 1: both the plain policy gradient A
