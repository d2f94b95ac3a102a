"""Exact facts about the objectives of RL for language models (SPEC §7), each an entry of the
docs/functions.md table "Language-model RL: which estimate is unbiased, which gradient each gives".

Every number here is computed exactly (Fractions, SymPy differentiation of softmax logits,
every action enumerated), never assumed; the off-policy KL table is parsed from docs/functions.md
and each of its cells recomputed.
"""

from __future__ import annotations

import itertools
import pathlib
import re
from fractions import Fraction as F

import numpy as np
import pytest
import sympy
import torch
from hypothesis import given
from hypothesis import strategies as st

import refmath
import refmath_torch as rt
from refmath import divergences as dv

FUNCTIONS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "functions.md"

# The worked example of docs/functions.md: π, π_ref as in the on-policy KL table; π_old uniform.
PI = [F(1, 2), F(1, 4), F(1, 4)]
REF = [F(1, 8), F(1, 8), F(3, 4)]
OLD = [F(1, 3), F(1, 3), F(1, 3)]
# A second example with no symmetry (every row of the table is checked on both).
PI2 = [F(1, 5), F(3, 10), F(1, 2)]
REF2 = [F(1, 2), F(1, 3), F(1, 6)]
OLD2 = [F(2, 5), F(1, 2), F(1, 10)]
EXAMPLES = [(PI, REF, OLD), (PI2, REF2, OLD2)]


def _flat(x) -> list:
    return list(np.asarray(x, dtype=object).ravel())


def _equal(a, b) -> bool:
    """Exactly equal, element by element (SymPy simplification of the difference)."""
    a, b = _flat(a), _flat(b)
    return len(a) == len(b) and all(sympy.simplify(sympy.sympify(x) - sympy.sympify(y)) == 0
                                    for x, y in zip(a, b))


def _off_policy_cells(kind: str, weight: str, p, q, mu) -> tuple[str, str]:
    """(E = KL(π‖π_ref)?, which gradient autograd gives in expectation) for samples from μ."""
    m = dv.kl_estimator_moments(p, q, kind, mu, weight=weight)
    value = "unbiased" if _equal(m["expectation"], dv.kl_divergence(p, q)) else "biased"
    g = m["pathwise_gradient"]
    if _equal(g, dv.kl_divergence_gradient(p, q)):
        grad = "∇KL(π‖π_ref)"
    elif _equal(g, dv.kl_divergence_gradient(p, q, "forward")):
        grad = "∇KL(π_ref‖π)"
    elif _equal(g, [0] * len(p)):
        grad = "0"
    else:
        grad = "neither"
    return value, grad


def _readme_off_policy_rows() -> list[tuple[str, str, str, str]]:
    """(kind, weight, value cell, gradient cell) of the off-policy KL table (docs/functions.md)."""
    text = FUNCTIONS.read_text()
    section = text.split("## KL penalties on samples from π_old", 1)[1].split("\n\n| ", 1)[1]
    rows = []
    for line in ("| " + section).split("\n\n", 1)[0].splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        weight = {"`k`": "none", "`w·k`": "ratio", "`sg(w)·k`": "detached"}[cells[1]]
        value = "unbiased" if "unbiased" in cells[2] else "biased"
        grad = re.sub(r"\*\*|`", "", cells[3]).split(" —")[0].split(" (")[0].strip()
        rows.append((cells[0].strip("`"), weight, value, grad))
    return rows


def test_the_readme_off_policy_kl_table_has_every_estimator_and_weight():
    rows = _readme_off_policy_rows()
    assert {(k, w) for k, w, _, _ in rows} == set(itertools.product(
        dv.KL_ESTIMATORS, dv.KL_WEIGHTS))


@pytest.mark.parametrize("p,q,mu", EXAMPLES, ids=["worked", "asymmetric"])
@pytest.mark.parametrize("row", _readme_off_policy_rows(), ids=lambda r: f"{r[0]}-{r[1]}")
def test_every_cell_of_the_off_policy_kl_table(row, p, q, mu):
    kind, weight, value, grad = row
    assert _off_policy_cells(kind, weight, p, q, mu) == (value, grad)


def test_the_ratio_weighted_estimators_are_the_on_policy_ones_in_expectation():
    """E_μ[w·∇(w·k)]... precisely: E_μ[∇(w·k)] = ∇E_π[k] and E_μ[sg(w)·∇k] = E_π[∇k], the
    on-policy full and autograd gradients: why each row of the table is what it is."""
    for kind in dv.KL_ESTIMATORS:
        on = dv.kl_estimator_moments(PI, REF, kind)
        ratio = dv.kl_estimator_moments(PI, REF, kind, OLD, weight="ratio")
        detached = dv.kl_estimator_moments(PI, REF, kind, OLD, weight="detached")
        assert _equal(ratio["pathwise_gradient"], on["gradient"])
        assert _equal(detached["pathwise_gradient"], on["pathwise_gradient"])
        assert _equal(ratio["expectation"], on["expectation"])


def test_grpo_k3_on_samples_from_pi_old_exact_numbers():
    """GRPO's loss-side k3 on samples from π_old (no ratio weight): value and gradient are
    neither the reverse nor the forward KL's — the numbers the claim quotes."""
    m = dv.kl_estimator_moments(PI, REF, "k3", OLD)
    # E_μ[k3] = Σ μ·(π_ref/π − 1 − log(π_ref/π)), π_ref/π = (1/4, 1/2, 3):
    ratios = [r / p for r, p in zip(REF, PI)]
    by_hand = sum(m_ * (x - 1 - sympy.log(sympy.Rational(x.numerator, x.denominator)))
                  for m_, x in zip(OLD, ratios))
    assert sympy.simplify(m["expectation"][()] - by_hand) == 0
    # autograd: ∂k3(a)/∂θ_j = (1 − π_ref(a)/π(a))·(δ_aj − π_j); its μ-mean, by hand
    grad = [sum(m_ * (1 - x) * ((1 if a == j else 0) - PI[j])
                for a, (m_, x) in enumerate(zip(OLD, ratios))) for j in range(3)]
    assert _equal(m["pathwise_gradient"], grad)
    # Σ_a μ(1 − x_a) = −1/4, so grad_j = (1 − x_j)/3 + π_j/4
    assert grad == [F(3, 8), F(11, 48), F(-29, 48)]
    assert not _equal(grad, dv.kl_divergence_gradient(PI, REF))  # (0.3973, 0.0253, −0.4226)
    assert not _equal(grad, dv.kl_divergence_gradient(PI, REF, "forward"))  # (3/8, 1/8, −1/2)


# --- KL in the reward vs KL in the loss --------------------------------------------------------

def test_kl_in_the_reward_and_in_the_loss_give_different_gradients_single_step():
    """One step, samples from π. KL in the reward: the penalty enters the return, which is
    detached and multiplies ∇log π (REINFORCE): its expected gradient is E_π[k·∇log π] (the
    score term). KL in the loss: autograd through k: E_π[∇k]. Exactly:

    reward k1 → ∇KL(π‖π_ref) (k1's pathwise term is 0, so the full gradient is the score
    term); loss k2 → ∇KL(π‖π_ref); loss k1 → 0; loss k3 → ∇KL(π_ref‖π); reward k2 and reward
    k3 → neither. They agree (both ∇KL(π‖π_ref)) for the pair reward-k1 / loss-k2."""
    reverse = dv.kl_divergence_gradient(PI, REF)
    forward = dv.kl_divergence_gradient(PI, REF, "forward")
    m = {k: dv.kl_estimator_moments(PI, REF, k) for k in dv.KL_ESTIMATORS}
    assert _equal(m["k1"]["score_gradient"], reverse)
    assert _equal(m["k2"]["pathwise_gradient"], reverse)
    assert _equal(m["k1"]["pathwise_gradient"], [0, 0, 0])
    assert _equal(m["k3"]["pathwise_gradient"], forward)
    for kind in ("k2", "k3"):
        assert not _equal(m[kind]["score_gradient"], reverse)
        assert not _equal(m[kind]["score_gradient"], forward)


def _two_token_policy():
    """An autoregressive policy over 2 tokens of a 2-word vocabulary: softmax logits at the
    root and after each first token (6 logits θ); the reference fixed. Returns θ, log π and
    log π_ref of each (context, token), and every sequence."""
    theta = sympy.symbols("t0:6", real=True)
    contexts = [(), (0,), (1,)]
    logpi, logref = {}, {}
    ref = {(): (F(1, 4), F(3, 4)), (0,): (F(2, 3), F(1, 3)), (1,): (F(4, 5), F(1, 5))}
    for c, ctx in enumerate(contexts):
        z = sympy.log(sympy.exp(theta[2 * c]) + sympy.exp(theta[2 * c + 1]))
        for y in (0, 1):
            logpi[ctx, y] = theta[2 * c + y] - z
            logref[ctx, y] = sympy.log(sympy.Rational(ref[ctx][y].numerator,
                                                      ref[ctx][y].denominator))
    at = {theta[0]: 0, theta[1]: sympy.log(3), theta[2]: sympy.log(2), theta[3]: 0,
          theta[4]: 0, theta[5]: sympy.log(5)}  # π: (1/4, 3/4), (2/3, 1/3), (1/6, 5/6)
    return theta, logpi, logref, list(itertools.product((0, 1), repeat=2)), at


def test_kl_in_the_reward_gives_the_sequence_kl_gradient_and_per_token_k2_in_the_loss_does_not():
    """Two tokens. The sequence KL(π‖π_ref) = E[Σ_t k1_t]; its gradient is the reward-side
    estimator with the reward-to-go of the KL (Σ_{t' ≥ t} k1_{t'}) on ∇log π_t — exactly.
    Per-token k2 in the loss (autograd) gives E[Σ_t k1_t·∇log π_t]: it drops the future
    tokens' KL, so it differs unless the later KL does not depend on the earlier token."""
    theta, logpi, logref, seqs, at = _two_token_policy()

    def steps(y):
        return [((), y[0]), ((y[0],), y[1])]

    prob = {y: sympy.exp(sum(logpi[s] for s in steps(y))) for y in seqs}
    k1 = {y: [logpi[s] - logref[s] for s in steps(y)] for y in seqs}
    kl_seq = sum(prob[y] * sum(k1[y]) for y in seqs)
    exact = [sympy.simplify(sympy.diff(kl_seq, th).subs(at)) for th in theta]

    def expect(f):  # E_π[f(y)] for a per-sequence expression with θ held in the samples
        return [sympy.simplify(sum((prob[y] * f(y, th)).subs(at) for y in seqs))
                for th in theta]

    reward_side = expect(lambda y, th: sum(
        sympy.diff(logpi[s], th) * sum(k1[y][t:]) for t, s in enumerate(steps(y))))
    per_token_k2 = expect(lambda y, th: sum(
        sympy.diff((logpi[s] - logref[s]) ** 2 / 2, th) for s in steps(y)))
    assert all(sympy.simplify(a - b) == 0 for a, b in zip(reward_side, exact))
    # the later tokens' logits: the same (their KL is the last one); the root's: not, by
    # E[KL(π(·|y₁)‖π_ref(·|y₁))·∇log π(y₁)] — 0 after y₁ = 0 (π = π_ref there), not after 1
    assert all(sympy.simplify(a - b) == 0 for a, b in zip(per_token_k2[2:], exact[2:]))
    gap = [float(a - b) for a, b in zip(per_token_k2[:2], exact[:2])]
    assert min(abs(g) for g in gap) > 0.1, gap


# --- truncated vs masked importance sampling ------------------------------------------------

def _is_moments(weights, mu, f):
    """(mean, variance) of the estimate w(a)·f(a), a ~ μ."""
    mean = sum(m * w * x for m, w, x in zip(mu, weights, f))
    second = sum(m * (w * x) ** 2 for m, w, x in zip(mu, weights, f))
    return mean, second - mean ** 2


def test_truncated_and_masked_importance_sampling_are_biased_differently():
    """Target E_π[f], samples from μ (the inference engine), weights from rollout_correction
    (C = 2). π = (1/2, 1/4, 1/4), μ = (1/8, 3/8, 1/2), f = (1, 0, 1/2): w = (4, 2/3, 1/2).

    plain IS: mean 5/8 = E_π[f] (unbiased), variance 65/32 − 25/64 = 105/64;
    TIS (min(w, 2)): weights (2, 2/3, 1/2): mean 3/8, bias −1/4 = −Σ μ·(w − C)₊·f,
        variance 17/32 − 9/64 = 25/64;
    MIS (w·1[w ≤ 2]): weights (0, 2/3, 1/2): mean 1/8, bias −1/2 = −Σ_{w > C} π·f,
        variance 1/32 − 1/64 = 1/64."""
    pi = [sympy.Rational(1, 2), sympy.Rational(1, 4), sympy.Rational(1, 4)]
    mu = [sympy.Rational(1, 8), sympy.Rational(3, 8), sympy.Rational(1, 2)]
    f = [1, 0, sympy.Rational(1, 2)]
    logs = [[sympy.log(x) for x in pi]], [[sympy.log(x) for x in mu]]
    plain = [p / m for p, m in zip(pi, mu)]
    tis = list(refmath.rollout_correction(*logs, [[1, 1, 1]], mode="truncate", high=2)[0])
    mis = list(refmath.rollout_correction(*logs, [[1, 1, 1]], mode="mask", high=2)[0])
    assert tis == [2, sympy.Rational(2, 3), sympy.Rational(1, 2)]
    assert mis == [0, sympy.Rational(2, 3), sympy.Rational(1, 2)]
    target = sum(p * x for p, x in zip(pi, f))
    moments = {name: _is_moments(w, mu, f) for name, w in
               (("is", plain), ("tis", tis), ("mis", mis))}
    assert moments["is"] == (target, sympy.Rational(105, 64))
    assert moments["tis"] == (sympy.Rational(3, 8), sympy.Rational(25, 64))
    assert moments["mis"] == (sympy.Rational(1, 8), sympy.Rational(1, 64))
    # the biases, by their closed forms
    assert moments["tis"][0] - target == -sum(m * max(w - 2, 0) * x
                                              for m, w, x in zip(mu, plain, f))
    assert moments["mis"][0] - target == -sum(p * x for p, w, x in zip(pi, plain, f) if w > 2)


# --- GSPO-token and GSPO ----------------------------------------------------------------------

def test_gspo_token_gradient_equals_gspo_gradient_when_a_sequence_advantages_are_equal():
    """SymPy: a sequence of n = 3 tokens, unclipped and clipped. GSPO's value s·A (or
    clip(s)·A) written to each token and averaged (seq-mean-token-mean) has ∂/∂logp_t =
    s·A/n where unclipped (0 where clipped); the exact GSPO-token gradient (the paper's eq.
    17, refmath.gspo_token_surrogate_gradient, ÷ n for the token mean) equals it when A_t = A."""
    x = sympy.symbols("x0:3", real=True)
    old = [0, 0, 0]
    for point, A, eps in (([F(1, 8), F(-1, 4), F(1, 16)], F(2), F(1, 5)),
                          ([F(1, 2), F(1, 2), F(1, 2)], F(3), F(1, 5)),   # s = e^½: clipped
                          ([F(1, 2), F(1, 2), F(1, 2)], F(-3), F(1, 5))):  # A < 0: unclipped
        s = sympy.exp(sum(x) / 3)
        clipped = A > 0 and sympy.exp(sympy.Rational(sum(point)) / 3) > 1 + eps
        value = (1 + eps) * A if clipped else s * A  # the sequence objective, its branch
        sub = {xi: sympy.Rational(p.numerator, p.denominator) for xi, p in zip(x, point)}
        gspo = [sympy.diff(value, xi).subs(sub) for xi in x]  # the token mean of n copies
        token = refmath.gspo_token_surrogate_gradient([point], [old], [[A] * 3], [[1, 1, 1]],
                                                      clip_low=eps)[0]
        assert _equal([g * 3 for g in gspo], token), (point, A)


@given(st.integers(0, 2**31))
def test_torch_gspo_and_gspo_token_gradients_agree_when_advantages_are_equal(seed):
    """The twins, float64 autograd through seq-mean-token-mean: equal within a few ulps when
    each sequence's token advantages are its one advantage; different when they are not."""
    g = torch.Generator().manual_seed(seed)
    lp = (torch.randn(3, 5, generator=g, dtype=torch.float64) * 0.3).requires_grad_()
    old = torch.randn(3, 5, generator=g, dtype=torch.float64) * 0.3
    mask = torch.rand(3, 5, generator=g) > 0.3
    mask[:, 0] = True
    A = torch.randn(3, generator=g, dtype=torch.float64)

    def grad(fn, adv):
        out = fn(lp, old, adv, mask, clip_low=0.2)
        return torch.autograd.grad(rt.aggregate_loss(out, mask, "seq-mean-token-mean"), lp)[0]

    gspo = grad(rt.gspo_surrogate, A)
    assert torch.allclose(grad(rt.gspo_token_surrogate, A[:, None].expand(3, 5)), gspo,
                          rtol=1e-13, atol=1e-16)


def test_gspo_token_gradient_differs_when_advantages_differ_within_a_sequence():
    lp = torch.tensor([[0.1, -0.2, 0.05]], dtype=torch.float64, requires_grad=True)
    old, mask = torch.zeros(1, 3, dtype=torch.float64), torch.ones(1, 3, dtype=torch.bool)
    A_t = torch.tensor([[1.0, -1.0, 0.5]], dtype=torch.float64)
    out = rt.gspo_token_surrogate(lp, old, A_t, mask, clip_low=0.2)
    g_token = torch.autograd.grad(out.mean(), lp)[0]
    out = rt.gspo_surrogate(lp, old, A_t.mean(-1), mask, clip_low=0.2)
    g_seq = torch.autograd.grad(out.mean(), lp)[0]
    s = float(torch.exp(lp.detach().mean()))
    assert torch.allclose(g_token, s * A_t / 3, rtol=1e-14)  # s·A_t/n per token
    assert torch.allclose(g_seq, torch.full((1, 3), s * (0.5 / 3) / 3, dtype=torch.float64),
                          rtol=1e-14)  # s·A/n on every token, A = mean(A_t) = 1/6


# --- micro-batches ---------------------------------------------------------------------------

@given(st.integers(1, 5), st.integers(1, 4), st.data())
def test_split_losses_sum_exactly_to_the_full_batch_loss(B, T, data):
    loss = np.array(data.draw(st.lists(st.fractions(-4, 4, max_denominator=16),
                                       min_size=B * T, max_size=B * T)),
                    dtype=object).reshape(B, T)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=B * T, max_size=B * T)),
                    dtype=bool).reshape(B, T)
    mask[0, 0] = True
    cuts = sorted(data.draw(st.lists(st.integers(0, B), max_size=3)))
    splits = [b - a for a, b in zip([0] + cuts, cuts + [B])]
    for mode in refmath.objectives.AGGREGATION_MODES:
        kw = {"normalizer": F(3)} if mode == "seq-mean-token-sum-norm" else {}
        parts = refmath.split_aggregate_loss(loss, mask, mode, splits=splits, **kw)
        assert len(parts) == len(splits)
        assert sum(parts) == refmath.aggregate_loss(loss, mask, mode, **kw)


def test_averaging_micro_batch_token_means_is_not_the_token_mean():
    """The claim common.micro_batch_token_mean: rows [1, 2, 3] (3 tokens) and [8] (1 token)
    as two micro-batches: the mean of their token-means is (2 + 8)/2 = 5, the full-batch
    token-mean (1 + 2 + 3 + 8)/4 = 7/2; the split losses 6/4 + 8/4 sum to 7/2."""
    loss = np.array([[F(1), F(2), F(3)], [F(8), F(0), F(0)]], dtype=object)
    mask = np.array([[True, True, True], [True, False, False]])
    own = [refmath.aggregate_loss(loss[i:i + 1], mask[i:i + 1], "token-mean") for i in (0, 1)]
    assert sum(own) / 2 == 5
    assert refmath.aggregate_loss(loss, mask, "token-mean") == F(7, 2)
    assert list(refmath.split_aggregate_loss(loss, mask, "token-mean", splits=1)) == [
        F(3, 2), F(2)]


def test_reinforce_pp_advantages_have_batch_mean_zero_exactly():
    r = np.array([[F(1), F(0), F(1)], [F(3), F(1), F(2)]], dtype=object)
    eps = F(1, 10**6)
    a = refmath.group_advantages(r, method="reinforce_pp", unbiased=False, eps=eps)
    assert sympy.simplify(sum(a.ravel())) == 0
    # and (biased) variance (σ/(σ + eps))²: d = (1/3, −2/3, 1/3, 1, −1, 0), σ² = 24/9/6 = 4/9
    sigma = sympy.Rational(2, 3)
    eps = sympy.Rational(1, 10**6)
    assert sympy.simplify(sum(x ** 2 for x in a.ravel()) / 6
                          - (sigma / (sigma + eps)) ** 2) == 0
