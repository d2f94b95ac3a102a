"""Claims of the study notes about estimators: importance sampling, the off-policy gradient,
Monte Carlo vs TD, the λ trade-off, variance growth, the advantage in the actor loss, the
discount weight, the group example (notes §3.2–3.5).

Each check computes its evidence from the definitions written out here (exact enumeration of
small MDPs and bandits with Fractions, SymPy derivatives), not from the function it judges.
"""

from __future__ import annotations

import itertools
from fractions import Fraction as F

import sympy

from . import CONDITIONAL, FALSE, TRUE, Verdict, claim

__all__: list[str] = []  # claims, registered in refmath.claims.all_claims()

NOTES = "notes §{}"


def _sigmoid(x):
    return 1 / (1 + sympy.exp(-x))


# --- importance sampling ------------------------------------------------------------------------

@claim("notes.importance_sampling_identity", source=NOTES.format("3.5"), excerpt="3.5-importance-sampling",
       statement="for any function f: E_{x~p}[f(x)] = E_{x~q}[(p(x)/q(x))·f(x)]",
       expected=CONDITIONAL,
       judges=('ratios.importance_ratio',))
def _is_identity() -> Verdict:
    K = 3
    p = sympy.symbols(f"p0:{K}", positive=True)
    q = sympy.symbols(f"q0:{K}", positive=True)
    f = sympy.symbols(f"f0:{K}", real=True)
    proven = sympy.simplify(sum(p[i] * f[i] for i in range(K))
                            - sum(q[i] * (p[i] / q[i]) * f[i] for i in range(K))) == 0
    # q(x) = 0 where p(x)·f(x) ≠ 0: that x is never sampled, so its mass is lost
    P, Q, Fx = [F(1, 2), F(1, 2)], [F(1), F(0)], [F(0), F(1)]
    lhs = sum(pi * fi for pi, fi in zip(P, Fx))
    rhs = sum(qi * (pi / qi) * fi for pi, qi, fi in zip(P, Q, Fx) if qi != 0)
    ok = proven and lhs != rhs
    return Verdict(CONDITIONAL if ok else FALSE,
                   "proven symbolically (K = 3, symbolic p, q > 0 and f): the sums agree term "
                   f"by term. Where q = 0 but p·f ≠ 0 they do not: p = (1/2, 1/2), q = (1, 0), "
                   f"f = (0, 1): E_p[f] = {lhs}, E_q[(p/q)·f] = {rhs} (x = 1 is never sampled)",
                   conditions="q(x) > 0 wherever p(x)·f(x) ≠ 0 (support of p·f within that of q)")


def _bandit_variance(p, q, f):
    """Var_{x~q}[(p/q)·f], exactly."""
    m1 = sum(qi * (pi / qi) * fi for pi, qi, fi in zip(p, q, f))
    m2 = sum(qi * ((pi / qi) * fi) ** 2 for pi, qi, fi in zip(p, q, f))
    return m2 - m1 * m1


@claim("notes.single_step_is_variance", source=NOTES.format("3.5"), excerpt="3.5-importance-sampling",
       statement="if the ratio r = π_θ/π_old is large (e.g. 10), importance sampling fails and "
                 "the variance of the gradient estimate explodes", expected=CONDITIONAL)
def _single_step_variance() -> Verdict:
    # Var_q[r·f] = E_p[r·f²] − E_p[f]²: a ratio r on x adds p(x)·r(x)·f(x)² to it
    loud = _bandit_variance([F(1, 2), F(1, 2)], [F(1, 20), F(19, 20)], [F(1), F(1)])
    quiet = _bandit_variance([F(1, 100), F(99, 100)], [F(1, 1000), F(999, 1000)],
                             [F(1), F(1)])
    ok = loud > 4 and quiet < F(1, 10)
    return Verdict(CONDITIONAL if ok else FALSE,
                   "Var_{x~π_old}[r·f] = E_{π_θ}[r·f²] − E_{π_θ}[f]² exactly: with f = 1, "
                   f"π_θ = (1/2, 1/2), π_old = (1/20, 19/20) (r = 10 on the first action) the "
                   f"variance is {loud} = {float(loud):.3f}; but π_θ = (1/100, 99/100), "
                   f"π_old = (1/1000, 999/1000) also has r = 10 there and variance {quiet} = "
                   f"{float(quiet):.4f}: a large ratio matters in proportion to the mass π_θ·f² "
                   "it multiplies", conditions="the large ratio falls on outcomes with "
                   "non-negligible π_θ(x)·f(x)²: the variance term is π_θ(x)·r(x)·f(x)²")


# --- the importance-weighted policy gradient on a two-step MDP ---------------------------------
#
# s0: action 0 (prob σ(x)) gives reward 0 and leads to s1; action 1 gives reward 1/4 and ends.
# s1: action 0 (prob σ(y)) gives reward 1, action 1 gives 0; then the episode ends. H = 2, γ = 1.
# J(x, y) = σ(x)·σ(y) + (1 − σ(x))/4. The old policy is x = y = 0 (uniform).

X, Y = sympy.symbols("x y", real=True)


def _J():
    return _sigmoid(X) * _sigmoid(Y) + (1 - _sigmoid(X)) / 4


def _surrogate():
    """L(θ) = Σ_t Σ_s d_t^old(s) Σ_a π_θ(a|s)·A_t^old(s, a): the notes' E_old[r·A], the
    expectation over the OLD policy's states of the ratio-weighted OLD advantages."""
    half = sympy.Rational(1, 2)
    V1 = half * 1 + half * 0  # V^old(s1)
    Q0 = {0: 0 + V1, 1: sympy.Rational(1, 4)}  # Q^old(s0, a)
    V0 = half * Q0[0] + half * Q0[1]
    A0 = {a: Q0[a] - V0 for a in (0, 1)}
    A1 = {0: 1 - V1, 1: 0 - V1}
    d1 = half  # the old policy reaches s1 with probability 1/2
    pi0 = {0: _sigmoid(X), 1: 1 - _sigmoid(X)}
    pi1 = {0: _sigmoid(Y), 1: 1 - _sigmoid(Y)}
    return sum(pi0[a] * A0[a] for a in (0, 1)) + d1 * sum(pi1[a] * A1[a] for a in (0, 1))


def _grad(expr, at):
    return [sympy.simplify(sympy.diff(expr, v).subs(at)) for v in (X, Y)]


@claim("notes.is_policy_gradient", source=NOTES.format("3.5"), excerpt="3.5-importance-sampling",
       statement="∇_θ J = E_{a~π_old}[(π_θ/π_old)·∇log π_θ·A] on data from π_old",
       expected=CONDITIONAL,
       judges=('policy_gradient.expected_return', 'policy_gradient.return_gradient'))
def _is_gradient() -> Verdict:
    J, L = _J(), _surrogate()
    old = {X: 0, Y: 0}
    moved = {X: sympy.log(3), Y: 0}  # σ(x) = 3/4
    g_old, l_old = _grad(J, old), _grad(L, old)
    g_new, l_new = _grad(J, moved), _grad(L, moved)
    ok = g_old == l_old and g_new != l_new
    return Verdict(CONDITIONAL if ok else FALSE,
                   "exact, on a two-step MDP (s0 → s1 with π(0|s0) = σ(x); rewards 0 or 1/4 "
                   "at s0, 1 or 0 at s1; old policy uniform): the right side is ∇ of "
                   "L(θ) = Σ_s d_old(s) Σ_a π_θ(a|s)·A_old(s, a). At θ = θ_old: ∇J = "
                   f"{g_old} = ∇L. At σ(x) = 3/4: ∇J = {g_new} but ∇L = {l_new} — the states "
                   "are still weighted by π_old and the advantages are π_old's",
                   conditions="θ = θ_old (then r = 1 and it is the on-policy gradient); "
                              "elsewhere it is the gradient of the surrogate, a first-order "
                              "approximation of J")


@claim("notes.is_surrogate_objective", source=NOTES.format("3.5"), excerpt="3.5-importance-sampling",
       statement="the objective can be written J(θ) = E_{τ~π_old}[(π_θ/π_old)·A]",
       expected=CONDITIONAL,
       judges=('policy_gradient.expected_return',))
def _is_objective() -> Verdict:
    J, L = _J(), _surrogate()
    J_old = J.subs({X: 0, Y: 0})
    at = {X: sympy.log(3), Y: sympy.log(3)}  # σ = 3/4 at both states
    true, approx = sympy.simplify(J.subs(at)), sympy.simplify((J_old + L).subs(at))
    first_order = _grad(J, {X: 0, Y: 0}) == _grad(L, {X: 0, Y: 0})
    ok = true != approx and first_order
    return Verdict(CONDITIONAL if ok else FALSE,
                   f"exact, same two-step MDP: J(θ_old) + E_old[r·A] equals J only to first "
                   f"order at θ_old (equal gradients there); at σ = 3/4 in both states J = "
                   f"{true} but J(θ_old) + E_old[r·A] = {approx}. It is TRPO/PPO's surrogate "
                   "L(θ) (Kakade & Langford 2002), not J", value=true - approx,
                   conditions="read as J(θ) ≈ J(θ_old) + E_old[r·A], exact to first order at "
                              "θ = θ_old (and exact for a one-step bandit, where no state "
                              "distribution shifts)")


# --- Monte Carlo vs TD, and λ ------------------------------------------------------------------
#
# One action, so every estimator targets A^π(s0) = 0. s0 (reward 0) moves to s1 or s2 with
# probability 1/2; there the reward is 2 or 0 (s1) and 0 or −2 (s2), each with probability 1/2;
# then the episode ends. V^π = (0, 1, −1); γ = 1.

OUTCOMES = [(s, r, F(1, 4)) for s, rs in ((1, (2, 0)), (2, (0, -2))) for r in rs]
EXACT_V = {0: F(0), 1: F(1), 2: F(-1)}
WRONG_V = {0: F(0), 1: F(10), 2: F(-10)}


def _moments(estimate) -> tuple[F, F]:
    """Mean and variance of ``estimate(s1, r1)`` over the four equally likely outcomes."""
    m1 = sum(p * estimate(s, r) for s, r, p in OUTCOMES)
    m2 = sum(p * estimate(s, r) ** 2 for s, r, p in OUTCOMES)
    return m1, m2 - m1 * m1


def _mc(V):
    return lambda s, r: 0 + r - V[0]  # G_0 − V(s0)


def _td(V):
    return lambda s, r: 0 + V[s] - V[0]  # δ_0 = r_0 + γV(s1) − V(s0)


def _gae(V, lam):
    return lambda s, r: (0 + V[s] - V[0]) + lam * (r - V[s])  # δ_0 + λ·δ_1, terminal after


@claim("notes.mc_vs_td", source=NOTES.format("3.3"), excerpt="3.3-td",
       statement="the Monte Carlo advantage G_t − V(s_t) is unbiased with high variance; the "
                 "TD advantage δ_t is biased with lower variance", expected=CONDITIONAL,
       judges=('advantages.gae', 'returns.td_errors', 'advantages.monte_carlo_advantage'))
def _mc_vs_td() -> Verdict:
    mc, td = _moments(_mc(EXACT_V)), _moments(_td(EXACT_V))
    mc_w, td_w = _moments(_mc(WRONG_V)), _moments(_td(WRONG_V))
    ok = td[0] == 0 and td[1] < mc[1] and td_w[1] > mc_w[1]
    return Verdict(CONDITIONAL if ok else FALSE,
                   "exact enumeration, a two-step chain with a random next state and a random "
                   f"reward (A^π = 0): with the exact critic V = V^π, TD is unbiased too "
                   f"(mean {td[0]}) and its variance {td[1]} is below Monte Carlo's {mc[1]}. "
                   f"With a wrong critic V(s1) = 10, V(s2) = −10, TD's variance is {td_w[1]}, "
                   f"Monte Carlo's {mc_w[1]}", conditions="TD is biased only when V ≠ V^π, "
                   "and its variance is lower when the critic is accurate (with V = V^π it is "
                   "a conditional expectation of the Monte Carlo estimate); a poor critic can "
                   "make it the highest-variance estimate")


@claim("notes.lambda_bias_variance", source=NOTES.format("3.4"), excerpt="3.4-lambda",
       statement="λ = 0 has the largest bias and the smallest variance; λ = 1 is unbiased with "
                 "the largest variance", expected=CONDITIONAL,
       judges=('advantages.gae', 'returns.td_errors'))
def _lambda_tradeoff() -> Verdict:
    lams = [F(0), F(1, 2), F(1)]
    exact = [_moments(_gae(EXACT_V, lam)) for lam in lams]
    wrong = [_moments(_gae(WRONG_V, lam)) for lam in lams]
    unbiased = all(m == 0 for m, _ in exact)
    increasing = exact[0][1] < exact[1][1] < exact[2][1]
    reversed_ = wrong[0][1] > wrong[2][1]
    ok = unbiased and increasing and reversed_
    return Verdict(CONDITIONAL if ok else FALSE,
                   "exact, same chain: with V = V^π every λ is unbiased (means "
                   f"{[str(m) for m, _ in exact]}) and the variance grows with λ "
                   f"({[str(v) for _, v in exact]} for λ = 0, 1/2, 1); with V(s1) = 10, "
                   f"V(s2) = −10 the variances are {[str(v) for _, v in wrong]}: λ = 0 is the "
                   "largest", conditions="bias comes only from an inexact critic (with "
                   "V = V^π no λ is biased); variance grows with λ when the critic is "
                   "accurate, and can shrink with λ when it is not")


# --- variance growth with the horizon ----------------------------------------------------------

@claim("notes.reinforce_variance_exponential", source=NOTES.format("3.2"), excerpt="3.2-variance",
       statement="for long dialogues (e.g. T = 100 turns) the variance of REINFORCE grows "
                 "exponentially", expected=FALSE,
       judges=('policy_gradient.reinforce_moments',))
def _reinforce_growth() -> Verdict:
    # T steps of a two-action softmax policy at π = (1/2, 1/2), reward 1 for action 0; the
    # estimator Σ_t ∂_θ log π(a_t)·G_0, with ∂_θ log π(a) = [a = 0] − 1/2 for the logit θ of
    # action 0. Its variance, by exact enumeration of the 2^T action sequences:
    variances = []
    for T in range(1, 9):
        m1 = m2 = F(0)
        for seq in itertools.product((0, 1), repeat=T):
            g = sum(F(1 if a == 0 else 0) - F(1, 2) for a in seq) * sum(
                1 for a in seq if a == 0)
            m1, m2 = m1 + g / 2**T, m2 + g * g / 2**T
        variances.append(m2 - m1 * m1)
    t = sympy.Symbol("T")
    poly = sympy.expand(sympy.interpolate(list(zip(range(1, 5), variances[:4])), t))
    cubic = all(poly.subs(t, T) == v for T, v in zip(range(1, 9), variances))
    ok = cubic and sympy.degree(poly, t) == 3
    return Verdict(FALSE if ok else TRUE,
                   "exact enumeration, T = 1…8 steps of a two-action softmax policy at "
                   f"(1/2, 1/2), reward 1 for action 0: Var = {[str(v) for v in variances]}, "
                   f"exactly the cubic {poly} for every T: polynomial, not exponential. With "
                   "bounded rewards the estimator is a sum of T score terms times a return "
                   "bounded by T·r_max, so its variance is O(T⁴) at most. (What grows "
                   "exponentially is a product of T importance ratios: "
                   "common.importance_product_variance)", value=poly).headed(
        'polynomial: Var = T³/16 + T²/8 − T/8 exactly (T = 1…8), not exponential')


@claim("common.importance_product_variance",
       source="common knowledge (per-trajectory importance sampling; Precup et al. 2000)",
       statement="the variance of the per-trajectory importance weight Π_t π(a_t)/π_old(a_t) "
                 "grows exponentially with the horizon", expected=CONDITIONAL)
def _is_product() -> Verdict:
    pi, old = [F(3, 4), F(1, 4)], [F(1, 2), F(1, 2)]
    variances = []
    for T in range(1, 6):
        m1 = m2 = F(0)
        for seq in itertools.product(range(2), repeat=T):
            prob, w = F(1), F(1)
            for a in seq:
                prob, w = prob * old[a], w * pi[a] / old[a]
            m1, m2 = m1 + prob * w, m2 + prob * w * w
        variances.append(m2 - m1 * m1)
    base = sum(p * p / q for p, q in zip(pi, old))  # 1 + χ²(π‖π_old)
    ok = all(var == base**T - 1 for T, var in zip(range(1, 6), variances))
    return Verdict(CONDITIONAL if ok else FALSE,
                   f"exact enumeration, π = (3/4, 1/4), π_old = (1/2, 1/2), T = 1…5: "
                   f"Var[Π r_t] = {[str(v) for v in variances]} = (1 + χ²)^T − 1 with "
                   f"1 + χ² = {base}: exponential in T. With π = π_old the variance is 0",
                   conditions="π ≠ π_old on the states the trajectory visits (each step "
                              "multiplies the second moment by 1 + χ²(π‖π_old) ≥ 1)")


# --- the advantage in the actor loss ----------------------------------------------------------

@claim("notes.advantage_reward_minus_value", source=NOTES.format("3.3"), excerpt="3.3-actor-critic",
       statement="advantage = reward − value.detach() is the advantage of the actor loss",
       expected=FALSE)
def _reward_minus_value() -> Verdict:
    # s0, two actions under a uniform policy: action 0 gives reward 0 and then 2; action 1
    # gives 1 and then 0 (then the episode ends; γ = 1). Q = (2, 1), V(s0) = 3/2.
    Q = {0: F(0) + 2, 1: F(1) + 0}
    V = (Q[0] + Q[1]) / 2
    true = {a: Q[a] - V for a in Q}
    reward_minus_value = {0: F(0) - V, 1: F(1) - V}
    ok = true[0] > 0 and reward_minus_value[0] < 0
    return Verdict(FALSE if ok else TRUE,
                   "the advantage is the RETURN minus the value, G_t − V(s_t) (or the TD "
                   "target r_t + γV(s_{t+1}) − V(s_t)), not the one-step reward minus it. "
                   f"Exact: Q(s0, ·) = (2, 1), V(s0) = {V}: A = ({true[0]}, {true[1]}) but "
                   f"r − V = ({reward_minus_value[0]}, {reward_minus_value[1]}) — the better "
                   "action gets the more negative 'advantage'. The detach itself is right: "
                   "the actor loss must not train the critic", counterexample={
                       "Q(s0, ·)": "(2, 1)", "r(s0, ·)": "(0, 1)", "V(s0)": str(V)}).headed(
        'A = (1/2, −1/2) but r − V = (−3/2, −1/2): the better action looks worse')


# --- the discount weight ------------------------------------------------------------------------

@claim("common.discount_weight_dropped",
       source="common practice; Thomas (2014), 'Bias in natural actor-critic algorithms'",
       statement="Σ_t ∇log π(a_t|s_t)·Σ_{t'≥t} γ^{t'−t} r_{t'} (the discounted reward-to-go, "
                 "without the factor γ^t) is an unbiased estimate of ∇J_γ", expected=FALSE,
       judges=('policy_gradient.reinforce_moments', 'policy_gradient.return_gradient'))
def _discount_dropped() -> Verdict:
    g = sympy.Rational(1, 2)
    dropped = [sympy.Integer(0), sympy.Integer(0)]
    # the two-step MDP above with γ = 1/2: J_γ = σ(x)·γ·σ(y) + (1 − σ(x))/4
    J = _sigmoid(X) * g * _sigmoid(Y) + (1 - _sigmoid(X)) / 4
    at = {X: 0, Y: 0}
    true = _grad(J, at)
    # E[Σ_t ∂log π(a_t)·Σ_{t'≥t} γ^{t'−t} r_{t'}] by enumeration, at the uniform policy
    half = sympy.Rational(1, 2)
    score = {0: half, 1: -half}  # ∂_logit log σ for action 0 / action 1 at σ = 1/2
    for a0 in (0, 1):
        if a0 == 1:  # reward 1/4 at t = 0, episode ends
            dropped[0] += half * score[1] * sympy.Rational(1, 4)
            continue
        for a1 in (0, 1):
            p = half * half
            r1 = 1 if a1 == 0 else 0
            dropped[0] += p * score[0] * (0 + g * r1)  # t = 0: r_0 + γ r_1
            dropped[1] += p * score[a1] * r1  # t = 1: r_1 — no γ^1 in front
    dropped = [sympy.simplify(d) for d in dropped]
    ok = dropped != true
    return Verdict(FALSE if ok else TRUE,
                   "exact, the two-step MDP with γ = 1/2 at the uniform policy: ∇J_γ = "
                   f"{true}, but the estimator without γ^t has mean {dropped}: the step-1 "
                   "term is weighted as if it started the episode. With γ^t·(reward-to-go) "
                   "it is unbiased (refmath.policy_gradient.reinforce_moments); without it, "
                   "it is the gradient of no objective in general (Nota & Thomas 2020)",
                   value=dropped).headed(
        'biased: mean (0, 1/8) vs ∇J_γ = (0, 1/16) at γ = 1/2')


# --- the notes' worked group example ------------------------------------------------------------

@claim("notes.medical_group_advantages", source=NOTES.format("3.2"), excerpt="3.2-variance",
       statement="the rewards 0.9, 0.6, −0.8 of three responses from one policy, taken as a "
                 "GRPO group (mean and unbiased std of the group), give the advantages "
                 "0.73, 0.40, −1.14", expected=TRUE,
       judges=('objectives.group_advantages',))
def _medical_group() -> Verdict:
    r = [sympy.Rational(9, 10), sympy.Rational(6, 10), sympy.Rational(-8, 10)]
    mean = sum(r) / 3
    std = sympy.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    adv = [sympy.radsimp((x - mean) / std) for x in r]
    quoted = [0.73, 0.40, -1.14]  # to two decimals
    ok = all(abs(float(a) - q) <= 0.005 for a, q in zip(adv, quoted))
    second = (sum(x * x for x in r) / 3, sum((x - mean) ** 2 for x in r) / 3)
    return Verdict(TRUE if ok else FALSE,
                   f"exact: mean {mean}, unbiased std {std} = {float(std):.4f}; (r − mean)/std "
                   f"= {[str(a) for a in adv]} = {[round(float(a), 4) for a in adv]} (eps = 0): "
                   "the wrong answer is the only one pushed down, the verbose one still up. "
                   f"Centring alone lowers the mean square weight on ∇log π from {second[0]} to "
                   f"{second[1]}", value=[round(float(a), 4) for a in adv])
