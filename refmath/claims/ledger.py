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

__all__: list[str] = []  # claims, registered in refmath.claims.all_claims()

NOTES = "notes §{}"  # ../shared/notes/policy_optimization_notes.md, by section
LOG = sympy.log


def _s(xs) -> str:
    return "(" + ", ".join(str(x) for x in xs) + ")"


def _all_zero(xs) -> bool:
    return all(is_zero(x) for x in np.asarray(xs, dtype=object).reshape(-1))


# --- the study notes --------------------------------------------------------------------------

OLD = [F(3, 10), F(4, 10), F(3, 10)]
NEW = [F(5, 10), F(35, 100), F(15, 100)]


@claim("notes.kl_example", source=NOTES.format("3.6"), excerpt="3.6-trpo",
       statement="old policy (0.3, 0.4, 0.3), new policy (0.5, 0.35, 0.15): "
                 "KL(old‖new) = 0.3·log(0.3/0.5) + 0.4·log(0.4/0.35) + 0.3·log(0.3/0.15) ≈ 0.09",
       expected=FALSE)
def _kl_example() -> Verdict:
    kl = dv.kl_divergence(OLD, NEW)[()]
    return check_value(kl, 0.09, 0.005, unit="nats", alternatives={
        "log base 10": kl / LOG(10), "log base 2 (bits)": kl / LOG(2),
        "reverse direction KL(new‖old), nats": dv.kl_divergence(NEW, OLD)[()],
        "reverse direction, log base 10": dv.kl_divergence(NEW, OLD)[()] / LOG(10)})


@claim("notes.kl_example_violates_delta", source=NOTES.format("3.6"), excerpt="3.6-trpo",
       statement="with δ = 0.05 that update violates the KL constraint", expected=TRUE)
def _kl_violates() -> Verdict:
    kl = dv.kl_divergence(OLD, NEW)[()]
    ok = kl > F(5, 100)
    return Verdict(TRUE if ok else FALSE,
                   f"KL(old‖new) = {kl} = {float(kl):.4f} nats > 0.05 (also true in the other "
                   f"direction: {float(dv.kl_divergence(NEW, OLD)[()]):.4f})")


@claim("notes.importance_sampling_example", source=NOTES.format("3.5"),
       excerpt="3.5-importance-sampling",
       statement="π_old = 0.3, π_θ = 0.5, A = 0.8: the corrected contribution (0.5/0.3)·0.8 = 1.33",
       expected=TRUE)
def _is_example() -> Verdict:
    value = F(5, 10) / F(3, 10) * F(8, 10)
    return check_value(value, 1.33, 0.005)


@claim("notes.ppo_clip_example", source=NOTES.format("3.7.1"), excerpt="3.7.1-clip",
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


@claim("notes.ppo_clip_cases", source=NOTES.format("3.7.1"), excerpt="3.7.1-clip",
       statement="A > 0: r < 1+ε gives the normal gradient, r > 1+ε is clipped (no gradient); "
                 "A < 0: r > 1−ε normal, r < 1−ε clipped", expected=TRUE,
       judges=("objectives.clipped_surrogate", "objectives.clipped_surrogate_ratio_gradient"))
def _ppo_clip_cases() -> Verdict:
    r = sympy.Symbol("r", positive=True)
    eps = sympy.Rational(1, 5)
    cases = [(F(1, 2), 1, True), (F(11, 10), 1, True), (F(13, 10), 1, False),
             (F(9, 10), -1, True), (F(3, 2), -1, True), (F(7, 10), -1, False)]
    grads = []
    for value, A, _ in cases:
        L = sympy.Min(r * A, sympy.Min(sympy.Max(r, 1 - eps), 1 + eps) * A)  # PPO eq. (7)
        grads.append(sympy.diff(L, r).subs(r, sympy.Rational(value.numerator,
                                                              value.denominator)))
    ok = all((g != 0) == normal for g, (_, _, normal) in zip(grads, cases))
    return Verdict(TRUE if ok else FALSE,
                   "SymPy's derivative of min(r·A, clip(r, 0.8, 1.2)·A) at (r, A) = " + ", ".join(
                       f"({v}, {A}) → {g}" for (v, A, _), g in zip(cases, grads))
                   + ": A where the case analysis says 'normal', 0 where it says 'clipped'")


def _gae_symbols(T: int):
    r = sympy.symbols(f"r0:{T}")
    v = sympy.symbols(f"v0:{T + 1}")
    g, lam = sympy.symbols("gamma lam", nonnegative=True)
    return list(r), list(v), g, lam


@claim("notes.gae_lambda0_is_td", source=NOTES.format("3.4"), excerpt="3.4-lambda",
       statement="λ = 0: A_t = δ_t (the TD(0) error)", expected=TRUE,
       judges=("advantages.gae", "returns.td_errors"))
def _lambda0() -> Verdict:
    for T in range(1, 6):
        r, v, g, lam = _gae_symbols(T)
        delta = [r[t] + g * v[t + 1] - v[t] for t in range(T)]  # the notes' δ_t
        summed = [sum((g * lam) ** l * delta[t + l] for l in range(T - t)) for t in range(T)]
        if not _all_zero([sympy.expand(a.subs(lam, 0) - d) for a, d in zip(summed, delta)]):
            return Verdict(FALSE, f"differs at T = {T}")
    return Verdict(TRUE, "proven symbolically from the notes' definitions, for every T ≤ 5 "
                         "(symbolic r, V, γ): Σ_l (γλ)^l δ_{t+l} at λ = 0 keeps only l = 0 "
                         "(0^0 = 1), which is δ_t = r_t + γV(s_{t+1}) − V(s_t)")


@claim("notes.gae_lambda1_is_mc", source=NOTES.format("3.4"), excerpt="3.4-lambda",
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


@claim("notes.gae_recursive_equals_sum", source=NOTES.format("3.4"), excerpt="3.4-pseudocode",
       statement="A_t = δ_t + γλ·A_{t+1} equals A_t = Σ_l (γλ)^l δ_{t+l}", expected=TRUE)
def _recursive_sum() -> Verdict:
    for T in range(1, 6):
        r, v, g, lam = _gae_symbols(T)
        if not _all_zero(adv.gae(r, v[:-1], v[1:], gamma=g, lam=lam)
                         - adv.gae_summed(r, v[:-1], v[1:], gamma=g, lam=lam)):
            return Verdict(FALSE, f"differs at T = {T}")
    return Verdict(TRUE, "proven symbolically for every T ≤ 5 with symbolic r, V, γ, λ, and "
                         "for every termination/truncation pattern by the identity checks")


@claim("notes.gae_is_n_step_mixture", source=NOTES.format("3.4"), excerpt="3.4-mixture",
       statement="A_t^GAE = (1−λ) Σ_{n≥1} λ^{n−1} A_t^(n)", expected=CONDITIONAL)
def _mixture() -> Verdict:
    T = 4
    r, v, g, lam = _gae_symbols(T)
    A = adv.gae(r, v[:-1], v[1:], gamma=g, lam=lam)
    mixture = adv.gae_mixture(r, v[:-1], v[1:], gamma=g, lam=lam)
    n_step = [ret.n_step_returns(r, v[1:], gamma=g, n=n)[0] - v[0] for n in range(1, T + 1)]
    truncated = (1 - lam) * sum(lam**(n - 1) * n_step[n - 1] for n in range(1, T + 1))
    # the notes' sum runs to n = ∞: past the episode's end (n ≥ N = T) the n-step estimate
    # no longer changes, A^(n) = A^(N), so its tail (1−λ)Σ_{n≥N} λ^{n−1} = λ^{N−1} lands on A^(N)
    infinite = (1 - lam) * sum(lam**(n - 1) * n_step[n - 1] for n in range(1, T)) \
        + lam**(T - 1) * n_step[T - 1]
    ok = _all_zero(A - mixture) and is_zero(sympy.expand(A[0] - infinite))
    gap = sympy.factor(sympy.expand(A[0] - truncated))
    return Verdict(CONDITIONAL if ok else FALSE,
                   "proven symbolically (T = 4, t = 0, symbolic r, V, γ, λ): the notes' sum "
                   "over n = 1…∞ on a finite episode has A^(n) = A^(N) for every n ≥ N (the "
                   "n-step estimate stops changing at the end), so its tail puts the mass "
                   "λ^{N−1} on A^(N) and the sum equals GAE. Cut at the N steps available "
                   f"instead, the weights sum to 1 − λ^N and it misses A_0 by {gap}",
                   conditions="consistent values (next_values[t] = values[t+1]); the sum "
                              "taken to ∞ as written (not cut at the episode's end)")


@claim("notes.true_advantage_recursion", source=NOTES.format("3.4"),
       excerpt="3.4-true-advantage",
       statement="A_t^true = δ_t + γ·A_{t+1}^true, so A_t^true = Σ_l γ^l δ_{t+l}",
       expected=CONDITIONAL)
def _true_recursion() -> Verdict:
    v = _lambda1()
    return Verdict(CONDITIONAL, "this is GAE with λ = 1 — " + v.evidence,
                   conditions=v.conditions)


@claim("notes.gae_pseudocode", source=NOTES.format("3.4, pseudo-code"), excerpt="3.4-pseudocode",
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
    # the episode terminates at its last step: values[T] must be 0, not the critic's guess
    at_end = list(adv.gae(r, v[:-1], v[1:], gamma=g, lam=lam,
                          terminated=[False, False, True]))
    critic_guess = loop(r, v, g, lam)
    zeroed = loop(r, v[:-1] + [F(0)], g, lam)
    terminal_ok = at_end == zeroed and at_end != critic_guess
    return Verdict(CONDITIONAL if same and right != wrong and terminal_ok else FALSE,
                   f"equal on one episode without termination inside the batch (values of "
                   f"length T+1, the last being the bootstrap); with a termination at step 0 "
                   f"(r = {_s(r)}, V = {_s(v)}, γ = λ = 1/2) the loop gives A_0 = {wrong[0]} but "
                   f"GAE is {right[0]}: it bootstraps across the episode boundary. And when the "
                   f"episode terminates at its last step, values[T] must be 0: with the "
                   f"critic's V(s_T) = {v[-1]} the loop gives A = {_s(critic_guess)}, GAE "
                   f"{_s(at_end)}",
                   conditions="a single episode per batch row, not terminated inside it, and "
                              "values[T] = 0 when it terminates at T−1 (V(s_T) only at a "
                              "truncation); otherwise mask the bootstrap and the recursion "
                              "with (1 − done)")


def _tree_scan(delta, c):
    """A_t = δ_t + c_t·A_{t+1} for all t WITHOUT a backward loop: the affine maps
    f_t(y) = δ_t + c_t·y compose associatively, (c, x)∘(c', x') = (c·c', x + c·x'), so the
    suffix compositions are computed in a balanced tree (log depth: Hillis & Steele 1986;
    Blelloch 1990), the way a parallel scan does on a GPU; A_t = (f_t∘…∘f_{T−1})(0)."""
    T = len(delta)
    maps = [(c[t], delta[t]) for t in range(T)]
    step = 1
    while step < T:  # after the round with `step`, maps[t] composes f_t … f_{t+2·step−1}
        maps = [(maps[t][0] * maps[t + step][0], maps[t][1] + maps[t][0] * maps[t + step][1])
                if t + step < T else maps[t] for t in range(T)]
        step *= 2
    return [x for _, x in maps]


@claim("notes.gae_must_be_backward", source=NOTES.format("3.4"), excerpt="3.4-pseudocode",
       statement="the computation must traverse time backwards, because A_t depends on the "
                 "future A_{t+1}", expected=FALSE, judges=("advantages.gae",))
def _must_be_backward() -> Verdict:
    import random

    rng = random.Random(0)
    for T in (1, 2, 3, 5, 8, 13):
        r = [F(rng.randint(-8, 8), 4) for _ in range(T)]
        v = [F(rng.randint(-8, 8), 4) for _ in range(T + 1)]
        g, lam = F(rng.randint(0, 8), 8), F(rng.randint(0, 8), 8)
        delta = [r[t] + g * v[t + 1] - v[t] for t in range(T)]
        backward, acc = [None] * T, F(0)
        for t in reversed(range(T)):  # the notes' loop
            acc = delta[t] + g * lam * acc
            backward[t] = acc
        if _tree_scan(delta, [g * lam] * T) != backward:
            return Verdict(TRUE, f"the tree scan differs at T = {T}")
    return Verdict(FALSE, "A_t depends on A_{t+1}, but the recursion is a composition of "
                   "affine maps, which is associative: a parallel (tree) scan computes every "
                   "A_t exactly in ⌈log₂ T⌉ rounds, in no particular time order. Exact, "
                   "random dyadic r, V, γ, λ, T = 1, 2, 3, 5, 8, 13: equal to the notes' "
                   "backward loop, Fraction for Fraction. (refmath_torch's GAE is such a scan: "
                   "no Python loop over T)").headed(
        'a parallel (tree) scan of affine maps gives every A_t exactly')


@claim("notes.baseline_unbiased", source=NOTES.format("3.2"), excerpt="3.2-reinforce",
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
    batch = _batch_mean_baseline()
    ok = state_ok and any(s != 0 for s in shift) and batch[0] == batch[1] * F(1, 2)
    return Verdict(CONDITIONAL if ok else FALSE,
                   "exact for a 3-armed softmax bandit with symbolic logits and rewards: "
                   "E[∇log π(a)·(R(a) − b)] = E[∇log π(a)·R(a)] for any constant b, since "
                   "Σ_a π(a)∇log π(a) = ∇Σ_a π(a) = 0. A baseline that depends on the action "
                   f"taken changes it: b(a) = [a = 0] at uniform π shifts the gradient by "
                   f"{shift}. The notes' example baseline, the average return of the N sampled "
                   "trajectories with the sample itself included, depends on its own action: "
                   f"exactly, N = 2 samples of a 2-armed bandit at π = (1/2, 1/2), R = (1, 0): "
                   f"E[ĝ] = {batch[0]} = (N−1)/N·∇J with ∇J = {batch[1]}",
                   conditions="the baseline does not depend on the action a_t (a function of "
                              "the state, or the mean of the OTHER samples); the batch mean "
                              "with the sample included scales the expected gradient by "
                              "(N − 1)/N")


def _batch_mean_baseline() -> tuple:
    """(E[ĝ], ∇J) for N = 2 samples of a 2-armed softmax bandit at π = (1/2, 1/2), rewards
    (1, 0), ĝ = (1/N) Σ_i ∂_θ log π(a_i)·(R(a_i) − mean_j R(a_j)), θ the logit of arm 0."""
    R, score, N = (F(1), F(0)), (F(1, 2), F(-1, 2)), 2  # ∂_θ log π at π = (1/2, 1/2)
    mean_g = F(0)
    for a in itertools.product((0, 1), repeat=N):
        b = sum(R[x] for x in a) / N
        mean_g += F(1, 2**N) * sum(score[x] * (R[x] - b) for x in a) / N
    true = sum(F(1, 2) * score[x] * R[x] for x in (0, 1))  # E[∂log π(a)·R(a)]
    return mean_g, true


@claim("notes.trpo_hessian_of_objective", source=NOTES.format("3.6"), excerpt="3.6-trpo",
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
                   "semi-definite)").headed(
        "it needs the Fisher matrix (∇²KL), not the objective's Hessian")


def _paper_rule(beta, kl, target):
    """PPO's adaptive β, transcribed from Schulman et al. (2017), §4: 'if d < d_targ/1.5,
    β ← β/2; if d > d_targ × 1.5, β ← β × 2'."""
    if kl < target / F(3, 2):
        return beta / 2
    if kl > target * F(3, 2):
        return beta * 2
    return beta


def _notes_rule(beta, kl, target):
    """The notes' rule, transcribed (the factor is not stated; 2 as in the paper)."""
    if kl > F(3, 2) * target:
        return beta * 2
    if kl < F(1, 2) * target:
        return beta / 2
    return beta


def _rllib_rule(beta, kl, target):
    """RLlib's ``update_kl``: 'if sampled_kl > 2.0 * kl_target: kl_coeff *= 1.5; elif
    sampled_kl < 0.5 * kl_target: kl_coeff *= 0.5'."""
    if kl > 2 * target:
        return beta * F(3, 2)
    if kl < F(1, 2) * target:
        return beta / 2
    return beta


@claim("notes.adaptive_beta_rule", source=NOTES.format("3.7.2"), excerpt="3.7.2-adaptive",
       statement="adaptive β (PPO-KL): increase β if KL > 1.5·target, decrease β if "
                 "KL < 0.5·target", expected=FALSE,
       judges=("objectives.adaptive_kl_coefficient",))
def _adaptive_beta() -> Verdict:
    target, kl = F(1, 100), F(6, 1000)
    paper, notes, rllib = (rule(F(1), kl, target) for rule in (_paper_rule, _notes_rule,
                                                               _rllib_rule))
    ok = paper != notes
    return Verdict(FALSE if ok else TRUE,
                   "as the rule of the PPO paper it is wrong: the paper (Schulman et al. "
                   "2017, §4) decreases β when d < d_targ/1.5 (≈ 0.667·target); its upper "
                   "threshold 1.5·target agrees. The notes mix the paper's upper threshold "
                   "with RLlib's lower one (RLlib: ×1.5 above 2·target, ×0.5 below "
                   f"0.5·target). Counterexample: KL = {kl}, target {target}: the paper "
                   f"halves β (→ {paper}), the notes' rule keeps it (→ {notes}), RLlib keeps "
                   f"it (→ {rllib})", counterexample={"KL": str(kl), "target": str(target)})


@claim("notes.reuse_table", source=NOTES.format("3.5, table"), excerpt="3.5-table",
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
       statement="if d < d_targ/1.5: β ← β/2; if d > d_targ·1.5: β ← β·2; otherwise β is "
                 "kept — so a KL exactly on a threshold keeps β, and β moves by exactly 2×",
       expected=TRUE, judges=("objectives.adaptive_kl_coefficient",))
def _ppo_adaptive() -> Verdict:
    target = F(3, 4)  # thresholds 1/2 and 9/8, exact in binary
    walk = [(F(1, 4), F(1, 2)), (F(1, 2), F(1)), (F(9, 8), F(1)), (F(2), F(2)), (F(1), F(1))]
    beta, seen = F(1), []
    for kl, _ in walk:
        new = _paper_rule(beta, kl, target)
        seen.append((kl, new / beta))
        beta = new
    ok = [f for _, f in seen] == [e for _, e in walk]
    return Verdict(TRUE if ok else FALSE,
                   "the paper's rule transcribed literally (strict inequalities), walked "
                   f"with target 3/4 through KLs hitting both thresholds exactly: factors "
                   f"{[(str(k), str(f)) for k, f in seen]} (refmath's oracle "
                   "adaptive_kl_coefficient is checked against the same rule by the registry "
                   "check adaptive_kl_coefficient.walk)")


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
       statement="k3 = (r − 1) − log r (r = π_ref/π, samples from π) is an unbiased "
                 "estimator of KL(π‖π_ref), and ≥ 0", expected=CONDITIONAL)
def _k3() -> Verdict:
    v = _estimator_claim("k3", unbiased=True)
    # E_π[r − 1] = Σ_{π>0} π_ref − 1 = 0 only if π_ref puts no mass where π = 0
    pi, ref = [F(1), F(0)], [F(1, 2), F(1, 2)]
    e = sum(p * ((q / p - 1) - LOG(sympy.Rational(q / p))) for p, q in zip(pi, ref) if p)
    kl = sum(p * LOG(sympy.Rational(p / q)) for p, q in zip(pi, ref) if p)
    ok = v.status == TRUE and not is_zero(sympy.simplify(e - kl))
    return Verdict(CONDITIONAL if ok else FALSE,
                   v.evidence + f". Not when π_ref has mass where π has none: π = (1, 0), "
                   f"π_ref = (1/2, 1/2): E_π[k3] = {sympy.simplify(e)} = {float(e):.4f} but "
                   f"KL(π‖π_ref) = {kl} = {float(kl):.4f} (E_π[r] = 1/2, not 1)",
                   conditions="supp π_ref ⊆ supp π (so that E_π[r] = 1); k3 ≥ 0 always")


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
       statement="with the k3 estimator in the loss (autograd through log π on samples from "
                 "π), gradient descent descends the gradient of KL(π‖π_ref)", expected=FALSE)
def _k3_loss() -> Verdict:
    path = dv.kl_estimator_moments(P_EX, Q_EX, "k3")["pathwise_gradient"]
    rev = dv.kl_divergence_gradient(P_EX, Q_EX, "reverse")
    fwd = dv.kl_divergence_gradient(P_EX, Q_EX, "forward")
    is_fwd = _all_zero(path - fwd) and not _all_zero(path - rev)
    return Verdict(FALSE if is_fwd else TRUE,
                   "the expected autograd gradient of sampled k3 is ∇KL(π_ref‖π) (the forward "
                   f"KL), not ∇KL(π‖π_ref): exactly, for the worked example, {list(path)} = "
                   f"∇KL(π_ref‖π) ≠ ∇KL(π‖π_ref) = {[round(float(x), 4) for x in rev]}. (Its "
                   "value is still an unbiased estimate of KL(π‖π_ref) — which is what the "
                   "GRPO paper says of it: it calls k3 an unbiased estimator of the KL and "
                   "makes no claim about its gradient; k2 in the loss gives the reverse-KL "
                   "gradient)")


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


@claim("notes.reinforce_unbiased", source=NOTES.format("3.2"), excerpt="3.2-variance",
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
