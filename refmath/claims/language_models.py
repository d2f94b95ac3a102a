"""Claims about RL for language models (SPEC §7): loss normalisation over micro-batches,
GRPO's KL term on samples from π_old, sequence- vs token-level importance sampling.

Each check computes its evidence from the definitions written out here (Fractions, SymPy,
every sequence enumerated), not from the function it judges.
"""

from __future__ import annotations

import itertools
from fractions import Fraction as F

import sympy

from . import FALSE, TRUE, Verdict, claim

__all__: list[str] = []  # claims, registered in refmath.claims.all_claims()

# --- micro-batches ------------------------------------------------------------------------------


@claim("common.micro_batch_token_mean",
       source="common practice (gradient accumulation: loss / accumulation steps; "
              "data-parallel ranks averaging their local token-means)",
       statement="averaging the token-mean losses of the micro-batches equals the "
                 "token-mean loss of the whole batch", expected=FALSE,
       judges=("objectives.aggregate_loss", "objectives.split_aggregate_loss"))
def _micro_batch_token_mean() -> Verdict:
    rows = [[F(1), F(2), F(3)], [F(8)]]  # two micro-batches: 3 tokens and 1 token
    own = [sum(r) / len(r) for r in rows]
    averaged = sum(own) / len(own)
    full = sum(sum(r) for r in rows) / sum(len(r) for r in rows)
    # equal counts n: mean_i(S_i/n) = ΣS_i/(k·n), for every S (symbolic, k = 3)
    S = sympy.symbols("S0:3", real=True)
    n = sympy.Symbol("n", positive=True)
    equal_counts = sympy.simplify(sum(s / n for s in S) / 3 - sum(S) / (3 * n)) == 0
    wrong = averaged != full
    return Verdict(FALSE if wrong and equal_counts else TRUE,
                   f"micro-batches [1, 2, 3] and [8]: their token-means {own[0]} and {own[1]} "
                   f"average to {averaged}, the whole batch's token-mean is {full} (the "
                   "1-token micro-batch's token weighs 3× the others). Scaling each "
                   "micro-batch's token SUM by the whole batch's count (6/4 + 8/4 = 7/2; "
                   "refmath.split_aggregate_loss) gives the full-batch loss for every mode",
                   counterexample={"micro-batches": "[1, 2, 3] and [8]",
                                   "mean of their token-means": str(averaged),
                                   "whole-batch token-mean": str(full)},
                   conditions="it holds only when every micro-batch (every rank) has the "
                              "same number of response tokens (proven symbolically)")


# --- GRPO's KL term, off-policy -------------------------------------------------------------------

_PI = [F(1, 2), F(1, 4), F(1, 4)]
_REF = [F(1, 8), F(1, 8), F(3, 4)]
_OLD = [F(1, 3), F(1, 3), F(1, 3)]


def _rational(x: F) -> sympy.Rational:
    return sympy.Rational(x.numerator, x.denominator)


@claim("grpo.k3_off_policy_gradient",
       source="Shao et al. (2024), DeepSeekMath (GRPO), eq. (3)–(4): the KL term of the "
              "objective, computed on the outputs sampled from π_old",
       statement="GRPO's KL term (k3 in the loss, samples from π_old, no importance weight) "
                 "is an unbiased estimate of the reverse KL's gradient ∇KL(π‖π_ref)",
       expected=FALSE)
def _grpo_k3_off_policy() -> Verdict:
    """E_{a~π_old}[∇k3(a)] with k3 = x − 1 − log x, x = π_ref(a)/π(a), θ π's logits:
    ∂k3/∂θ_j = (1 − x)·(δ_aj − π_j); and ∇KL(π‖π_ref)_j = π_j·(log(π_j/π_ref_j) − KL)."""
    x = [r / p for r, p in zip(_REF, _PI)]
    got = [sum(m * (1 - xa) * ((1 if a == j else 0) - _PI[j])
               for a, (m, xa) in enumerate(zip(_OLD, x))) for j in range(3)]
    logs = [sympy.log(_rational(p) / _rational(r)) for p, r in zip(_PI, _REF)]
    kl = sum(_rational(p) * lg for p, lg in zip(_PI, logs))
    reverse = [sympy.simplify(_rational(p) * (lg - kl)) for p, lg in zip(_PI, logs)]
    forward = [p - r for p, r in zip(_PI, _REF)]  # ∇KL(π_ref‖π) = π − π_ref
    unbiased = all(sympy.simplify(g - r) == 0 for g, r in zip(got, reverse))
    # with the ratio weight on the gradient path: E_old[∇(w·k3)] = ∇E_π[k3] = ∇KL(π‖π_ref)
    return Verdict(TRUE if unbiased else FALSE,
                   f"π = (1/2, 1/4, 1/4), π_ref = (1/8, 1/8, 3/4), π_old uniform: the "
                   f"expected autograd gradient of k3 is {[str(g) for g in got]}, not "
                   f"∇KL(π‖π_ref) = {[round(float(r), 4) for r in reverse]} (nor the forward "
                   f"KL's {[str(f) for f in forward]}, which it is at π_old = π). Weighting "
                   "each sample by w = π/π_old with w on the gradient path "
                   "(importance_weighted_kl_estimate) makes it unbiased for both the KL "
                   "and its gradient; k2 with the weight detached gives the gradient "
                   "(README: KL penalties on samples from π_old)").headed(
        f"E_old[∇k3] = {[str(g) for g in got]} ≠ ∇KL(π‖π_ref) = "
        f"{[round(float(r), 4) for r in reverse]}")


# --- sequence- vs token-level importance sampling --------------------------------------------

_HALF = (F(1, 2), F(1, 2))
_REWARD = {(0, 0): F(1), (0, 1): F(0), (1, 0): F(0), (1, 1): F(1, 2)}


def _is_gradient_moments(pi: dict, mu: dict) -> dict[str, tuple]:
    """Two tokens of a 2-word vocabulary, π and μ tabular per prefix (logits θ: 2 per
    prefix). Estimators of ∇E_π[R] from y ~ μ: sequence-level w(y)·R(y)·Σ_t ∇log π(y_t|y_<t)
    with w = Π_t w_t; token-level R(y)·Σ_t w_t·∇log π(y_t|y_<t) (PPO's). Returns, per
    estimator, (unbiased?, trace of the covariance)."""
    prefixes = [(), (0,), (1,)]
    est: dict[str, list] = {"sequence": [], "token": []}
    true = [F(0)] * 6
    for y in itertools.product((0, 1), repeat=2):
        steps = [(y[:t], y[t]) for t in range(2)]
        p_y = q_y = w_y = F(1)
        scores, weights = [], []
        for prefix, a in steps:
            p_y, q_y = p_y * pi[prefix][a], q_y * mu[prefix][a]
            w = pi[prefix][a] / mu[prefix][a]
            w_y *= w
            weights.append(w)
            g = [F(0)] * 6  # ∇_θ log softmax: e_a − π(·|prefix) on that prefix's logits
            for b in (0, 1):
                g[2 * prefixes.index(prefix) + b] = (1 if b == a else 0) - pi[prefix][b]
            scores.append(g)
        R = _REWARD[y]
        full = [sum(s[i] for s in scores) for i in range(6)]
        true = [t + p_y * R * f for t, f in zip(true, full)]
        est["sequence"].append((q_y, [w_y * R * f for f in full]))
        est["token"].append((q_y, [R * sum(w * s[i] for w, s in zip(weights, scores))
                                   for i in range(6)]))
    out = {}
    for name, samples in est.items():
        mean = [sum(q * e[i] for q, e in samples) for i in range(6)]
        second = sum(q * sum(x * x for x in e) for q, e in samples)
        out[name] = (mean == true, second - sum(m * m for m in mean))
    return out


@claim("common.sequence_is_lower_variance",
       source="common belief in RL for language models (GSPO, Zheng et al. 2025, and the "
              "token- vs sequence-level importance-sampling debate)",
       statement="sequence-level importance sampling has lower variance than token-level",
       expected=FALSE)
def _sequence_vs_token_is() -> Verdict:
    skewed = {(): (F(3, 4), F(1, 4)), (0,): (F(3, 4), F(1, 4)), (1,): _HALF}
    other = {(): (F(1, 4), F(3, 4)), (0,): (F(1, 4), F(3, 4)), (1,): (F(3, 4), F(1, 4))}
    uniform = {(): _HALF, (0,): _HALF, (1,): _HALF}
    a = _is_gradient_moments(skewed, uniform)
    b = _is_gradient_moments(other, uniform)
    same = _is_gradient_moments(uniform, uniform)
    higher = a["sequence"][1] > a["token"][1]
    lower = b["sequence"][1] < b["token"][1]
    return Verdict(FALSE if higher and lower else TRUE,
                   "two tokens, reward (1, 0, 0, 1/2) on (00, 01, 10, 11), samples from a "
                   "uniform μ; trace of the covariance of the gradient estimate, exactly: "
                   f"π = (3/4, 1/4) at the root and after 0: sequence-level "
                   f"{a['sequence'][1]} > token-level {a['token'][1]}; π = (1/4, 3/4), "
                   f"(1/4, 3/4), (3/4, 1/4): sequence-level {b['sequence'][1]} < token-level "
                   f"{b['token'][1]}; at π = μ both are {same['sequence'][1]}. Neither "
                   "dominates; and only the sequence-level estimator is unbiased "
                   f"(unbiased: sequence {a['sequence'][0]}, token {a['token'][0]})",
                   conditions="which is lower depends on π, μ and the reward").headed(
        f"neither dominates: {a['sequence'][1]} > {a['token'][1]} in one exact example, "
        f"{b['sequence'][1]} < {b['token'][1]} in another (trace of the covariance)")
