"""Claims of the study notes about PPO's clip and TRPO's guarantee (notes §3.5–3.7), with
evidence from SymPy derivatives of the written-out objectives and exact small MDPs."""

from __future__ import annotations

from fractions import Fraction as F

import sympy

from . import CONDITIONAL, FALSE, TRUE, Verdict, claim
from .estimation import X, Y, _J, _grad, _surrogate

__all__: list[str] = []  # claims, registered in refmath.claims.all_claims()

NOTES = "notes §{}"
EPS = sympy.Rational(1, 5)


def _clipped(r, A):
    """The PPO-Clip term min(r·A, clip(r, 1 − ε, 1 + ε)·A), written out (ε = 1/5)."""
    return sympy.Min(r * A, sympy.Min(sympy.Max(r, 1 - EPS), 1 + EPS) * A)


@claim("notes.ppo_clip_bounds_ratio", source=NOTES.format("3.7.1"), excerpt="3.7.1-clip",
       statement="although the new policy's probability increased 3×, PPO only allows an "
                 "increase of up to 1.2×", expected=FALSE,
       judges=('objectives.clipped_surrogate', 'objectives.clipped_surrogate_ratio_gradient'))
def _clip_bounds_ratio() -> Verdict:
    # three actions; the clipped sample a0 (A = 4/5, r = 3) and an unclipped a2 (A = −1,
    # r = 13/16 > 1 − ε) share the logits θ of a softmax policy
    th = sympy.symbols("t0:3", real=True)
    z = sum(sympy.exp(t) for t in th)
    pi = [sympy.exp(t) / z for t in th]
    old = [F(1, 10), F(1, 10), F(4, 5)]
    now = [F(3, 10), F(1, 20), F(13, 20)]
    at = {t: sympy.log(sympy.Rational(p.numerator, p.denominator)) for t, p in zip(th, now)}
    r0 = pi[0] / sympy.Rational(1, 10)
    r2 = pi[2] / sympy.Rational(4, 5)
    L = _clipped(r0, sympy.Rational(4, 5)) + _clipped(r2, -1)
    grad_L = [sympy.simplify(sympy.diff(L, t).subs(at)) for t in th]
    grad_r0 = [sympy.simplify(sympy.diff(r0, t).subs(at)) for t in th]
    clipped_grad = [sympy.simplify(sympy.diff(_clipped(r0, sympy.Rational(4, 5)), t).subs(at))
                    for t in th]
    rate = sympy.simplify(sum(a * b for a, b in zip(grad_L, grad_r0)))
    ok = all(g == 0 for g in clipped_grad) and rate > 0
    return Verdict(FALSE if ok else TRUE,
                   "the notes' own example keeps r = 3.0: the clip replaces that sample's term "
                   "by the constant 1.2·A, so its gradient is 0 — it bounds neither r nor the "
                   "KL. Exact (SymPy on min(r·A, clip(r)·A) with softmax logits): π_old = "
                   f"(1/10, 1/10, 4/5), π_θ = (3/10, 1/20, 13/20); the clipped sample a0 (r = "
                   f"3, A = 4/5) has gradient {clipped_grad}, yet the gradient of the whole "
                   f"objective (with the unclipped a2, r = 13/16, A = −1) is {grad_L}, along "
                   f"which r_0 grows at rate {rate} > 0: the ratio keeps rising past 3",
                   value=rate).headed(
        'r = 3 stays; the clip zeroes its gradient and r keeps growing (rate 3393/3200)')


@claim("notes.clip_gradient_at_old", source=NOTES.format("3.7.1"), excerpt="3.7.1-clip",
       statement="at θ = θ_old (r = 1) the clipped objective's gradient is the plain policy "
                 "gradient ∇log π·A", expected=TRUE,
       judges=('objectives.clipped_surrogate', 'objectives.clipped_surrogate_ratio_gradient', 'objectives.policy_loss'))
def _clip_at_old() -> Verdict:
    lp, old = sympy.symbols("logp old_logp", real=True)
    results = []
    for A in (sympy.Rational(4, 5), sympy.Integer(-1), sympy.Rational(1, 3)):
        L = _clipped(sympy.exp(lp - old), A)
        d = sympy.simplify(sympy.diff(L, lp).subs(lp, old))
        results.append((A, d))
    ok = all(d == A for A, d in results)
    return Verdict(TRUE if ok else FALSE,
                   "SymPy, ∂/∂logp of min(e^{logp−old}·A, clip(e^{logp−old}, 0.8, 1.2)·A) at "
                   "logp = old: " + ", ".join(f"A = {A}: {d}" for A, d in results)
                   + " — exactly A, the coefficient of ∇log π in the policy gradient (r = 1 "
                   "lies strictly inside the clip range for ε > 0)")


@claim("notes.trpo_monotonic_improvement", source=NOTES.format("3.6"), excerpt="3.6-trpo",
       statement="TRPO's theoretical guarantee is strong: monotonic improvement",
       expected=CONDITIONAL,
       judges=('policy_gradient.expected_return',))
def _trpo_monotonic() -> Verdict:
    # the two-step MDP of refmath.claims.estimation; a step that TRPO's constrained problem
    # allows (average KL ≤ 0.01, surrogate improvement > 0) and that lowers J
    sx, sy = sympy.Rational(57, 100), sympy.Rational(467, 1000)
    at = {X: sympy.log(sx / (1 - sx)), Y: sympy.log(sy / (1 - sy))}
    J_old, J_new = _J().subs({X: 0, Y: 0}), sympy.simplify(_J().subs(at))
    gain = sympy.simplify(_surrogate().subs(at))
    half = sympy.Rational(1, 2)

    def kl(p_new):
        return half * sympy.log(half / p_new) + half * sympy.log(half / (1 - p_new))

    kl_s0, kl_s1 = kl(sx), kl(sy)
    average = (kl_s0 + half * kl_s1) / (1 + half)  # states weighted by π_old's visits
    ok = gain > 0 and J_new < J_old and float(average) <= 0.01 and float(kl_s0) <= 0.01
    return Verdict(CONDITIONAL if ok else FALSE,
                   "Schulman et al. (2015), Thm 1: J(π') ≥ L(π') − C·max_s KL(π‖π'), so "
                   "maximising that penalised bound never lowers J. TRPO instead maximises L "
                   "subject to a KL constraint (the AVERAGE KL ≤ δ), which guarantees nothing "
                   "— not even a max-KL constraint does. Exact, on the "
                   f"two-step MDP: π(0|s0) = 57/100, π(0|s1) = 467/1000 has surrogate gain "
                   f"{gain} > 0, average KL {float(average):.5f} ≤ 0.01 (max KL "
                   f"{float(kl_s0):.5f}), yet J falls from {J_old} to {J_new} "
                   f"(Δ = {float(J_new - J_old):.6f})", value=J_new - J_old,
                   conditions="the step maximises the penalised bound L − C·max_s KL with "
                              "C = 4·max|A|·γ/(1 − γ)² (the theory's algorithm), not a "
                              "KL-constrained step such as the average-KL one TRPO takes")


@claim("notes.ppo_is_off_policy", source=NOTES.format("3.5, table"), excerpt="3.5-table",
       statement="PPO is an off-policy method (the table's 'Off-Policy (PPO)')", expected=FALSE)
def _ppo_off_policy() -> Verdict:
    moved = {X: sympy.log(3), Y: 0}
    g, l = _grad(_J(), moved), _grad(_surrogate(), moved)
    ok = g != l
    return Verdict(FALSE if ok else TRUE,
                   "PPO is on-policy: every iteration samples with the current policy, reuses "
                   "that batch for K epochs through the ratio to that same π_old, and discards "
                   "it. Its importance-weighted gradient is the policy gradient only at "
                   "θ = θ_old (notes.is_policy_gradient); away from it the gradient drifts — "
                   f"exactly, at σ(x) = 3/4 on the two-step MDP: ∇J = {g}, the reused batch's "
                   f"gradient {l} — which is why the clip keeps θ near θ_old. Off-policy "
                   "methods (V-trace, Retrace, Q-learning) learn from another policy's data "
                   "with corrections valid at any distance", value=[a - b for a, b in zip(g, l)]).headed(
        'on-policy, K epochs of reuse: reused gradient (3/64, 1/8) vs ∇J = (3/64, 3/16)')
