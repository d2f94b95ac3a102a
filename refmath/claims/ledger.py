"""The claims ledger: statements from the study notes (../shared/notes, 2025-10-07, Chinese)
and classic published ones, each with an exact check.

Every check computes with refmath's exact oracles (Fractions, SymPy); numbers quoted in a
source are compared at the precision they were quoted with.
"""

from __future__ import annotations

import itertools
from fractions import Fraction as F

import numpy as np
import sympy

from .. import advantages as adv
from .. import divergences as dv
from .. import objectives as ob
from .. import returns as ret
from .. import trust_region as tr
from ..exact import is_zero
from . import CONDITIONAL, FALSE, TRUE, Verdict, check_identity, check_value, claim

NOTES = "notes §{}"  # ../shared/notes/policy_optimization_notes.md, by section
LOG = sympy.log


def _s(xs) -> str:
    return "(" + ", ".join(str(x) for x in xs) + ")"


def _all_zero(xs) -> bool:
    return all(is_zero(x) for x in np.asarray(xs, dtype=object).reshape(-1))


# --- the study notes --------------------------------------------------------------------------

OLD = [F(3, 10), F(4, 10), F(3, 10)]
NEW = [F(5, 10), F(35, 100), F(15, 100)]


@claim("notes.kl_example", source=NOTES.format("3.6"),
       statement="old policy (0.3, 0.4, 0.3), new policy (0.5, 0.35, 0.15): "
                 "KL(old‖new) = 0.3·log(0.3/0.5) + 0.4·log(0.4/0.35) + 0.3·log(0.3/0.15) ≈ 0.09",
       expected=FALSE)
def _kl_example() -> Verdict:
    kl = dv.kl_divergence(OLD, NEW)[()]
    return check_value(kl, 0.09, 0.005, unit="nats", alternatives={
        "log base 10": kl / LOG(10), "log base 2 (bits)": kl / LOG(2),
        "reverse direction KL(new‖old), nats": dv.kl_divergence(NEW, OLD)[()],
        "reverse direction, log base 10": dv.kl_divergence(NEW, OLD)[()] / LOG(10)})


@claim("notes.kl_example_violates_delta", source=NOTES.format("3.6"),
       statement="with δ = 0.05 that update violates the KL constraint", expected=TRUE)
def _kl_violates() -> Verdict:
    kl = dv.kl_divergence(OLD, NEW)[()]
    ok = kl > F(5, 100)
    return Verdict(TRUE if ok else FALSE,
                   f"KL(old‖new) = {kl} = {float(kl):.4f} nats > 0.05 (also true in the other "
                   f"direction: {float(dv.kl_divergence(NEW, OLD)[()]):.4f})")


@claim("notes.importance_sampling_example", source=NOTES.format("3.5"),
       statement="π_old = 0.3, π_θ = 0.5, A = 0.8: the corrected contribution (0.5/0.3)·0.8 = 1.33",
       expected=TRUE)
def _is_example() -> Verdict:
    value = F(5, 10) / F(3, 10) * F(8, 10)
    return check_value(value, 1.33, 0.005)


@claim("notes.ppo_clip_example", source=NOTES.format("3.7.1"),
       statement="π_old = 0.01 (log −4.6), π_θ = 0.03 (log −3.5), A = 0.8, ε = 0.2: r = 3.0, "
                 "r·A = 2.4, clip(r, 0.8, 1.2)·A = 0.96, min = 0.96 (clipped)", expected=TRUE)
def _ppo_clip_example() -> Verdict:
    r = F(3, 100) / F(1, 100)
    value = ob.clipped_surrogate([r], [F(4, 5)], clip_low=F(1, 5))[0]
    from_logs = sympy.exp(sympy.Rational(-35, 10) - sympy.Rational(-46, 10))
    grad = ob.clipped_surrogate_ratio_gradient([r], [F(4, 5)], clip_low=F(1, 5))[0]
    v = check_value(value, 0.96, 0.005)
    v.evidence += (f"; r = 0.03/0.01 = {r}; the quoted log-probs give r = e^1.1 = "
                   f"{float(from_logs):.4f} (≈ 3.0); ∂L/∂r = {grad}: clipped, no gradient")
    return v


@claim("notes.ppo_clip_cases", source=NOTES.format("3.7.1"),
       statement="A > 0: r < 1+ε gives the normal gradient, r > 1+ε is clipped (no gradient); "
                 "A < 0: r > 1−ε normal, r < 1−ε clipped", expected=TRUE)
def _ppo_clip_cases() -> Verdict:
    eps = F(1, 5)
    cases = [(F(1, 2), 1, True), (F(11, 10), 1, True), (F(13, 10), 1, False),
             (F(9, 10), -1, True), (F(3, 2), -1, True), (F(7, 10), -1, False)]
    grads = ob.clipped_surrogate_ratio_gradient([c[0] for c in cases], [c[1] for c in cases],
                                                clip_low=eps)
    ok = all((g != 0) == normal for g, (_, _, normal) in zip(grads, cases))
    return Verdict(TRUE if ok else FALSE,
                   "exact case analysis ∂L/∂r at (r, A) = " + ", ".join(
                       f"({r}, {A}) → {g}" for (r, A, _), g in zip(cases, grads))
                   + "; on the boundary r = 1 ± ε itself the clip is not active")


def _gae_symbols(T: int):
    r = sympy.symbols(f"r0:{T}")
    v = sympy.symbols(f"v0:{T + 1}")
    g, lam = sympy.symbols("gamma lam", nonnegative=True)
    return list(r), list(v), g, lam


@claim("notes.gae_lambda0_is_td", source=NOTES.format("3.4"),
       statement="λ = 0: A_t = δ_t (the TD(0) error)", expected=TRUE)
def _lambda0() -> Verdict:
    for T in range(1, 6):
        r, v, g, _ = _gae_symbols(T)
        A = adv.gae(r, v[:-1], v[1:], gamma=g, lam=0)
        d = ret.td_errors(r, v[:-1], v[1:], gamma=g)
        if not _all_zero(A - d):
            return Verdict(FALSE, f"differs at T = {T}")
    return Verdict(TRUE, "proven symbolically for every T ≤ 5 (symbolic r, V, γ)")


@claim("notes.gae_lambda1_is_mc", source=NOTES.format("3.4"),
       statement="λ = 1: A_t = Σ_l γ^l δ_{t+l} = G_t − V(s_t) (Monte Carlo)",
       expected=CONDITIONAL)
def _lambda1() -> Verdict:
    for T in range(1, 6):
        r, v, g, _ = _gae_symbols(T)
        A = adv.gae(r, v[:-1], v[1:], gamma=g, lam=1)
        G = ret.discounted_returns(r, gamma=g, next_values=v[1:])
        if not _all_zero(A - (G - np.array(v[:-1], dtype=object))):
            return Verdict(FALSE, f"differs at T = {T}")
    # a counterexample when next_values are not the next values (inconsistent critic calls)
    bad = adv.gae([F(1), F(1)], [F(0), F(0)], [F(1), F(0)], gamma=F(1), lam=F(1))
    mc = adv.monte_carlo_advantage([F(1), F(1)], [F(0), F(0)], [F(1), F(0)], gamma=F(1))
    return Verdict(CONDITIONAL,
                   "proven symbolically for every T ≤ 5 when V'(t) = V(s_{t+1}) is the value "
                   "the next step uses (the sum telescopes), G_t bootstrapping V(s_T) at a "
                   f"cut and 0 at a terminal state. Otherwise not: V' = (1, 0), V = (0, 0), "
                   f"r = (1, 1), γ = λ = 1 gives GAE {_s(bad)} but G − V = {_s(mc)}",
                   conditions="consistent values: next_values[t] == values[t+1] inside an "
                              "episode; G_t bootstraps with V(s_T) when the data is truncated")


@claim("notes.gae_recursive_equals_sum", source=NOTES.format("3.4"),
       statement="A_t = δ_t + γλ·A_{t+1} equals A_t = Σ_l (γλ)^l δ_{t+l}", expected=TRUE)
def _recursive_sum() -> Verdict:
    for T in range(1, 6):
        r, v, g, lam = _gae_symbols(T)
        if not _all_zero(adv.gae(r, v[:-1], v[1:], gamma=g, lam=lam)
                         - adv.gae_summed(r, v[:-1], v[1:], gamma=g, lam=lam)):
            return Verdict(FALSE, f"differs at T = {T}")
    return Verdict(TRUE, "proven symbolically for every T ≤ 5 with symbolic r, V, γ, λ, and "
                         "for every termination/truncation pattern by the identity checks")


@claim("notes.gae_is_n_step_mixture", source=NOTES.format("3.4"),
       statement="A_t^GAE = (1−λ) Σ_{n≥1} λ^{n−1} A_t^(n)", expected=CONDITIONAL)
def _mixture() -> Verdict:
    T = 4
    r, v, g, lam = _gae_symbols(T)
    A = adv.gae(r, v[:-1], v[1:], gamma=g, lam=lam)
    mixture = adv.gae_mixture(r, v[:-1], v[1:], gamma=g, lam=lam)
    n_step = [ret.n_step_returns(r, v[1:], gamma=g, n=n)[0] - v[0] for n in range(1, T + 1)]
    truncated = (1 - lam) * sum(lam**(n - 1) * n_step[n - 1] for n in range(1, T + 1))
    ok = _all_zero(A - mixture)
    gap = sympy.factor(sympy.expand(A[0] - truncated))
    return Verdict(CONDITIONAL if ok else FALSE,
                   "proven symbolically (T = 4) when the last n-step estimate carries the tail "
                   "mass λ^{N−1}: A = (1−λ)Σ_{n<N} λ^{n−1}A^(n) + λ^{N−1}A^(N); the series "
                   "as written, cut at the N steps available, has weights summing to 1 − λ^N "
                   f"and misses A_0 by {gap}",
                   conditions="an infinite horizon, or the tail mass λ^{N−1} on the last "
                              "n-step estimate; consistent values")


@claim("notes.true_advantage_recursion", source=NOTES.format("3.4"),
       statement="A_t^true = δ_t + γ·A_{t+1}^true, so A_t^true = Σ_l γ^l δ_{t+l}",
       expected=CONDITIONAL)
def _true_recursion() -> Verdict:
    v = _lambda1()
    return Verdict(CONDITIONAL, "this is GAE with λ = 1 — " + v.evidence,
                   conditions=v.conditions)


@claim("notes.gae_pseudocode", source=NOTES.format("3.4, pseudo-code"),
       statement="the loop delta = r[t] + γ·values[t+1] − values[t]; gae = delta + γλ·gae "
                 "computes GAE for a batch of steps", expected=CONDITIONAL)
def _pseudocode() -> Verdict:
    def loop(rewards, values, gamma, lam):
        out, acc = [None] * len(rewards), 0
        for t in reversed(range(len(rewards))):
            delta = rewards[t] + gamma * values[t + 1] - values[t]
            acc = delta + gamma * lam * acc
            out[t] = acc
        return out

    r, v = [F(1), F(2), F(3)], [F(1, 2), F(1, 4), F(1, 8), F(1)]
    g, lam = F(1, 2), F(1, 2)
    same = list(adv.gae(r, v[:-1], v[1:], gamma=g, lam=lam)) == loop(r, v, g, lam)
    # an episode ends (terminated) at step 0 and a new one starts at step 1
    right = list(adv.gae(r, v[:-1], v[1:], gamma=g, lam=lam, terminated=[True, False, False]))
    wrong = loop(r, v, g, lam)
    return Verdict(CONDITIONAL if same and right != wrong else FALSE,
                   f"equal on one episode without termination inside the batch (values of "
                   f"length T+1, the last being the bootstrap); with a termination at step 0 "
                   f"(r = {_s(r)}, V = {_s(v)}, γ = λ = 1/2) the loop gives A_0 = {wrong[0]} but GAE "
                   f"is {right[0]}: it bootstraps across the episode boundary",
                   conditions="a single episode per batch row, not terminated inside it; "
                              "otherwise mask the bootstrap and the recursion with (1 − done)")


@claim("notes.baseline_unbiased", source=NOTES.format("3.2"),
       statement="subtracting a baseline b(s_t) does not change the expected gradient",
       expected=CONDITIONAL)
def _baseline() -> Verdict:
    K = 3
    theta = sympy.symbols(f"theta0:{K}", real=True)
    R = sympy.symbols(f"R0:{K}", real=True)
    b = sympy.Symbol("b", real=True)
    z = sum(sympy.exp(t) for t in theta)
    pi = [sympy.exp(t) / z for t in theta]

    def expected_gradient(baseline):
        return [sympy.simplify(sum(pi[a] * sympy.diff(sympy.log(pi[a]), th) * (R[a] - baseline[a])
                                   for a in range(K))) for th in theta]

    plain = expected_gradient([0] * K)
    with_b = expected_gradient([b] * K)
    state_ok = all(sympy.simplify(x - y) == 0 for x, y in zip(plain, with_b))
    at = {theta[0]: 0, theta[1]: 0, theta[2]: 0, R[0]: 1, R[1]: 0, R[2]: 0}
    action_b = expected_gradient([1, 0, 0])
    shift = [sympy.simplify((x - y).subs(at)) for x, y in zip(action_b, plain)]
    ok = state_ok and any(s != 0 for s in shift)
    return Verdict(CONDITIONAL if ok else FALSE,
                   "exact for a 3-armed softmax bandit with symbolic logits and rewards: "
                   "E[∇log π(a)·(R(a) − b)] = E[∇log π(a)·R(a)] for any constant b, since "
                   "Σ_a π(a)∇log π(a) = ∇Σ_a π(a) = 0. A baseline that depends on the action "
                   f"taken changes it: b(a) = [a = 0] at uniform π shifts the gradient by "
                   f"{shift}", conditions="the baseline does not depend on the action a_t "
                                          "(any function of the state, or of the past)")


@claim("notes.importance_variance_exponential", source=NOTES.format("3.2/3.5"),
       statement="the variance of the importance-weighted (per-trajectory) estimator grows "
                 "exponentially with the horizon", expected=CONDITIONAL)
def _is_variance() -> Verdict:
    pi, old = [F(3, 4), F(1, 4)], [F(1, 2), F(1, 2)]
    variances = []
    for T in range(1, 6):
        m1 = m2 = F(0)
        for seq in itertools.product(range(2), repeat=T):
            prob = np.prod([old[a] for a in seq])
            w = np.prod([pi[a] / old[a] for a in seq])
            m1, m2 = m1 + prob * w, m2 + prob * w * w
        variances.append(m2 - m1 * m1)
    base = sum(p * p / q for p, q in zip(pi, old))  # 1 + χ²(π‖π_old)
    ok = all(var == base**T - 1 for T, var in zip(range(1, 6), variances))
    return Verdict(CONDITIONAL if ok else FALSE,
                   f"exact enumeration, π = (3/4, 1/4), π_old = (1/2, 1/2), T = 1…5: Var[Π r_t] "
                   f"= {[str(v) for v in variances]} = (1 + χ²)^T − 1 with 1 + χ² = {base}: "
                   "exponential in T. With π = π_old the variance is 0 for every T",
                   conditions="the weight is the product of per-step ratios, steps independent "
                              "(or a Markov chain), and π ≠ π_old")


@claim("notes.trpo_hessian_of_objective", source=NOTES.format("3.6"),
       statement="TRPO's conjugate-gradient step needs the Hessian of the objective",
       expected=FALSE)
def _trpo_hessian() -> Verdict:
    p, A = [F(1, 2), F(1, 4), F(1, 4)], [F(1), F(0), F(-1)]
    fisher, kl_h, obj_h = tr.fisher_matrix(p), tr.kl_hessian(p), tr.surrogate_hessian(p, A)
    ok = ((fisher - kl_h).is_zero_matrix and not (obj_h - fisher).is_zero_matrix
          and obj_h.trace() < 0)  # a negative trace means a negative eigenvalue
    return Verdict(FALSE if ok else TRUE,
                   "TRPO linearises the objective and takes a quadratic model of the KL "
                   "constraint: conjugate gradient solves F·x = g with F = ∇²KL(π_old‖π_θ), "
                   f"the Fisher matrix. Exactly, for π_old = (1/2, 1/4, 1/4): ∇²KL = F = "
                   f"{fisher.tolist()}, while the objective's Hessian with A = (1, 0, −1) is "
                   f"{obj_h.tolist()} ≠ F (trace {obj_h.trace()} < 0: not even positive "
                   "semi-definite)")


@claim("notes.adaptive_beta_rule", source=NOTES.format("3.7.2"),
       statement="adaptive β: increase β if KL > 1.5·target, decrease β if KL < 0.5·target",
       expected=FALSE)
def _adaptive_beta() -> Verdict:
    target, kl = F(1, 100), F(6, 1000)
    paper = ob.adaptive_kl_coefficient(F(1), kl, target=target)
    notes_rule = F(1) / 2 if kl < target / 2 else F(1)
    ok = paper != notes_rule
    return Verdict(FALSE if ok else TRUE,
                   "the PPO paper (Schulman et al. 2017, §4) decreases β when d < d_targ/1.5 "
                   "(≈ 0.667·target), not 0.5·target; the upper threshold 1.5·target agrees. "
                   f"Counterexample: KL = {kl} with target {target}: the paper halves β "
                   f"(→ {paper}), the notes' rule keeps it (→ {notes_rule})")


@claim("notes.reuse_table", source=NOTES.format("3.5, table"),
       statement="3 s per sample, 1000 updates: on-policy 3000 s; PPO reusing data 4 times 750 s",
       expected=TRUE)
def _reuse_table() -> Verdict:
    on, ppo = 3 * 1000, 3 * 1000 // 4
    ok = (on, ppo) == (3000, 750)
    return Verdict(TRUE if ok else FALSE,
                   f"3 s × 1000 = {on} s; 1000 updates / 4 reuses = 250 samplings × 3 s = {ppo} s "
                   "(counting sampling time only)")


# --- published claims -------------------------------------------------------------------------

@claim("paper.ppo_gae_truncated", source="Schulman et al. (2017), PPO, eq. (11)",
       statement="Â_t = δ_t + (γλ)δ_{t+1} + … + (γλ)^{T−t+1} δ_{T−1}", expected=FALSE)
def _ppo_eq11() -> Verdict:
    T = 4
    r, v, g, lam = _gae_symbols(T)
    delta = ret.td_errors(r, v[:-1], v[1:], gamma=g)
    A = adv.gae(r, v[:-1], v[1:], gamma=g, lam=lam)
    t = 0
    printed = sum((g * lam)**l * delta[t + l] for l in range(T - t - 1)) \
        + (g * lam)**(T - t + 1) * delta[T - 1]
    fixed = sum((g * lam)**l * delta[t + l] for l in range(T - t - 1)) \
        + (g * lam)**(T - t - 1) * delta[T - 1]
    wrong = not is_zero(A[t] - printed)
    right = is_zero(A[t] - fixed)
    return Verdict(FALSE if wrong and right else TRUE,
                   "as printed, the last term's exponent T−t+1 breaks the pattern (γλ)^l δ_{t+l}"
                   ": for δ_{T−1} it must be (γλ)^{T−t−1}. With that exponent the sum equals the "
                   "recursion A_t = δ_t + γλ·A_{t+1} truncated at T (bootstrapping V(s_T)) — "
                   "proven symbolically for T = 4, t = 0")


@claim("paper.ppo_adaptive_kl", source="Schulman et al. (2017), PPO, §4",
       statement="if d < d_targ/1.5: β ← β/2; if d > d_targ·1.5: β ← β·2; otherwise β is kept",
       expected=TRUE)
def _ppo_adaptive() -> Verdict:
    target = F(3, 4)
    walk = [(F(1, 4), F(1, 2)), (F(1, 2), F(1)), (F(9, 8), F(1)), (F(2), F(2)), (F(1), F(1))]
    beta, seen = F(1), []
    for kl, expected_beta_factor in walk:
        new = ob.adaptive_kl_coefficient(beta, kl, target=target)
        seen.append((kl, new / beta))
        beta = new
    ok = [f for _, f in seen] == [e for _, e in walk]
    return Verdict(TRUE if ok else FALSE,
                   "refmath's oracle implements the rule with strict inequalities; a walk with "
                   f"target 3/4 (thresholds 1/2 and 9/8 hit exactly) gives factors "
                   f"{[(str(k), str(f)) for k, f in seen]}")


@claim("paper.trpo_step_size", source="Schulman et al. (2015), TRPO, Appendix C",
       statement="the step β·s with β = sqrt(2δ / sᵀAs) satisfies the quadratic KL model "
                 "½(βs)ᵀA(βs) = δ", expected=TRUE)
def _trpo_step() -> Verdict:
    a, b, c, s1, s2, delta = sympy.symbols("a b c s1 s2 delta", positive=True)
    A = sympy.Matrix([[a, b], [b, c]])
    s = sympy.Matrix([s1, s2])
    q = (s.T * A * s)[0]
    beta = sympy.sqrt(2 * delta / q)
    model = sympy.simplify(((beta * s).T * A * (beta * s))[0] / 2)
    F_ = sympy.Matrix([[2, 1], [1, 3]])
    step = tr.natural_gradient_step([1, 2], F_, F(1, 100))
    exact = sympy.simplify((step.T * F_ * step)[0] / 2)
    ok = sympy.simplify(model - delta) == 0 and exact == F(1, 100)
    return Verdict(TRUE if ok else FALSE,
                   f"symbolically ½(βs)ᵀA(βs) = {model} for a symbolic 2×2 A and s; and "
                   f"natural_gradient_step(g = (1, 2), F = [[2, 1], [1, 3]], δ = 1/100) has "
                   f"½ sᵀF s = {exact}", conditions="")


@claim("blog.k1_unbiased", source="Schulman (2020), 'Approximating KL divergence'",
       statement="k1 = −log r is an unbiased estimator of KL(π‖π_ref) for samples from π",
       expected=TRUE)
def _k1() -> Verdict:
    return _estimator_claim("k1", unbiased=True)


@claim("blog.k2_biased", source="Schulman (2020), 'Approximating KL divergence'",
       statement="k2 = (log r)²/2 is a biased estimator of KL(π‖π_ref)", expected=TRUE)
def _k2() -> Verdict:
    return _estimator_claim("k2", unbiased=False)


@claim("blog.k3_unbiased", source="Schulman (2020), 'Approximating KL divergence'",
       statement="k3 = (r − 1) − log r is an unbiased estimator of KL(π‖π_ref), and ≥ 0",
       expected=TRUE)
def _k3() -> Verdict:
    return _estimator_claim("k3", unbiased=True)


P_EX, Q_EX = [F(1, 2), F(1, 4), F(1, 4)], [F(1, 8), F(1, 8), F(3, 4)]


def _estimator_claim(kind: str, unbiased: bool) -> Verdict:
    e = dv.kl_estimator_moments(P_EX, Q_EX, kind)["expectation"][()]
    kl = dv.kl_divergence(P_EX, Q_EX)[()]
    equal = is_zero(e - kl)
    return Verdict(TRUE if equal == unbiased else FALSE,
                   f"exact, π = (1/2, 1/4, 1/4), π_ref = (1/8, 1/8, 3/4): E_π[{kind}] = {e} "
                   f"= {float(e):.4f}, KL(π‖π_ref) = {float(kl):.4f} nats (also proven for "
                   "random distributions by the identity checks)")


@claim("grpo.k3_loss_gradient", source="Shao et al. (2024), DeepSeekMath (GRPO), eq. (4)",
       statement="putting the k3 estimator in the loss (autograd through log π on samples "
                 "from π) penalises KL(π‖π_ref)", expected=FALSE)
def _k3_loss() -> Verdict:
    path = dv.kl_estimator_moments(P_EX, Q_EX, "k3")["pathwise_gradient"]
    rev = dv.kl_divergence_gradient(P_EX, Q_EX, "reverse")
    fwd = dv.kl_divergence_gradient(P_EX, Q_EX, "forward")
    is_fwd = _all_zero(path - fwd) and not _all_zero(path - rev)
    return Verdict(FALSE if is_fwd else TRUE,
                   "the expected autograd gradient of sampled k3 is ∇KL(π_ref‖π) (the forward "
                   f"KL), not ∇KL(π‖π_ref): exactly, for the worked example, {list(path)} = "
                   f"∇KL(π_ref‖π) ≠ ∇KL(π‖π_ref) = {[round(float(x), 4) for x in rev]}. (Its "
                   "value is still an unbiased estimate of KL(π‖π_ref); k2 in the loss gives "
                   "the reverse-KL gradient)")


@claim("drgrpo.std_upweights_easy_and_hard", source="Liu et al. (2025), Dr. GRPO, §3",
       statement="GRPO's division by the group std gives questions with low reward variance "
                 "(too easy or too hard) larger advantages", expected=TRUE)
def _std_bias() -> Verdict:
    easy = [F(1)] * 7 + [F(0)]
    mixed = [F(1)] * 4 + [F(0)] * 4
    size = {}
    for name, group in (("7/8 correct", easy), ("4/8 correct", mixed)):
        for method in ("grpo", "dr_grpo"):
            a = ob.group_advantages(group, method=method, eps=F(1, 10**6))
            size[name, method] = sum(abs(x) for x in a) / len(a)
    gain = {k: size[k, "grpo"] / size[k, "dr_grpo"] for k in ("7/8 correct", "4/8 correct")}
    ok = gain["7/8 correct"] > gain["4/8 correct"]
    return Verdict(TRUE if ok else FALSE,
                   "mean |A| under grpo / under dr_grpo (= 1/(std + eps)): "
                   + ", ".join(f"{k}: {float(v):.4f}" for k, v in gain.items())
                   + " — the low-variance group is scaled up more")


@claim("drgrpo.length_bias", source="Liu et al. (2025), Dr. GRPO, §3",
       statement="averaging each response's token losses (seq-mean-token-mean) gives the tokens "
                 "of shorter responses more weight", expected=TRUE)
def _length_bias() -> Verdict:
    mask = np.array([[1, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    weights = []
    for b in range(2):
        e = np.array([[F(0)] * 4] * 2, dtype=object)
        e[b, 0] = F(1)
        weights.append(ob.aggregate_loss(e, mask, "seq-mean-token-mean"))
    ok = weights[0] > weights[1]
    return Verdict(TRUE if ok else FALSE,
                   f"exact token weights ∂loss/∂l: a 1-token response's token {weights[0]}, a "
                   f"4-token response's tokens {weights[1]} each; token-mean and the token-sum "
                   "modes weigh every token equally")


@claim("rloo.relation_to_dr_grpo", source="Ahmadian et al. (2024), RLOO; refmath SPEC §4",
       statement="the leave-one-out advantage is G/(G−1) times the mean-centred one",
       expected=TRUE)
def _rloo() -> Verdict:
    def lhs(r0, r1, r2, r3):
        return ob.group_advantages([r0, r1, r2, r3], method="rloo")

    def rhs(r0, r1, r2, r3):
        return sympy.Rational(4, 3) * ob.group_advantages([r0, r1, r2, r3], method="dr_grpo")

    return check_identity(lhs, rhs)


# --- policy gradients on an exact MDP ---------------------------------------------------------

def _pg_example():
    from .. import policy_gradient as pg

    mdp = pg.TabularMDP(P=[[[F(1, 2), F(1, 2)], [F(1, 5), F(4, 5)]],
                           [[F(0), F(1)], [F(1, 2), F(1, 2)]]],
                        R=[[F(1), F(1)], [F(-3), F(0)]], rho=[F(1), F(0)], H=2, gamma=F(1))
    pi = np.array([[F(3, 4), F(1, 4)], [F(1, 2), F(1, 2)]], dtype=object)
    return pg, mdp, pi


@claim("notes.reinforce_unbiased", source=NOTES.format("3.2"),
       statement="REINFORCE (Σ_t ∇log π(a_t|s_t)·G_t, averaged over sampled trajectories) is an "
                 "unbiased estimate of ∇J", expected=TRUE)
def _reinforce() -> Verdict:
    pg, mdp, pi = _pg_example()
    grad = pg.return_gradient(mdp, pi)
    means = {e: pg.reinforce_moments(mdp, pi, e)["mean"] for e in ("full_return",
                                                                    "reward_to_go")}
    ok = all((m == grad).all() for m in means.values())
    return Verdict(TRUE if ok else FALSE,
                   "exact enumeration of every trajectory of a 2-state, 2-action, H = 2 MDP: the "
                   "estimator's mean equals ∇J (SymPy differentiation of J) for the full return "
                   f"and the reward-to-go: ∇J = {grad.tolist()}; also checked on random MDPs by "
                   "the tests")


@claim("common.reward_to_go_lowers_variance",
       source="common belief, e.g. OpenAI Spinning Up, 'Don't let the past distract you'",
       statement="replacing the full return by the reward-to-go never increases the variance of "
                 "the REINFORCE estimator", expected=FALSE)
def _rtg_variance() -> Verdict:
    pg, mdp, pi = _pg_example()
    full = pg.reinforce_moments(mdp, pi, "full_return")["trace"]
    rtg = pg.reinforce_moments(mdp, pi, "reward_to_go")["trace"]
    return Verdict(FALSE if rtg > full else TRUE,
                   f"counterexample (exact): start in s0, γ = 1, H = 2, r(s0, ·) = 1, r(s1, a0) = "
                   "−3, r(s1, a1) = 0, P(·|s0, a0) = (1/2, 1/2), P(·|s0, a1) = (1/5, 4/5), "
                   f"π(·|s0) = (3/4, 1/4), π(·|s1) = (1/2, 1/2): trace Cov = {full} = "
                   f"{float(full):.4f} for the full return but {rtg} = {float(rtg):.4f} for the "
                   "reward-to-go. Dropping the past rewards removes zero-mean terms, but their "
                   "covariance with the kept terms can be negative; both are unbiased")
