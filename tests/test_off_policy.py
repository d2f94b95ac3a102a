"""SPEC §6: the identities of the off-policy returns, proven exactly on Fractions (Hypothesis)
and symbolically for small T and every termination/truncation pattern; IMPALA's fixed point;
the Torch twins against the oracles."""

from __future__ import annotations

import itertools
from fractions import Fraction as F

import numpy as np
import pytest
import sympy
import torch
from hypothesis import given
from hypothesis import strategies as st

import refmath
import refmath_torch as rt

small = st.integers(-8, 8).map(lambda k: F(k, 4))
unit = st.integers(0, 8).map(lambda k: F(k, 8))
ratio = st.integers(0, 12).map(lambda k: F(k, 4))


@st.composite
def rows(draw, max_T=6):
    T = draw(st.integers(1, max_T))
    vec = lambda e: [draw(e) for _ in range(T)]  # noqa: E731
    term = [draw(st.booleans()) for _ in range(T)]
    trunc = [draw(st.booleans()) and not term[t] for t in range(T)]
    return dict(rewards=vec(small), values=vec(small), next_values=vec(small),
                terminated=term, truncated=trunc), draw(unit), draw(unit)


def _arr(xs):
    return np.array(xs, dtype=object)


@given(rows())
def test_on_policy_vtrace_is_the_lambda_return(case):
    row, gamma, lam = case
    T = len(row["rewards"])
    vs, pg = refmath.vtrace(**row, rhos=[F(1)] * T, gamma=gamma, lam=lam, rho_clip=F(2))
    steps = {k: v for k, v in row.items()}
    assert list(vs) == list(refmath.lambda_returns(**steps, gamma=gamma, lam=lam))
    # the advantage: r + γ·nt·v' − V with v' = V' + A_{t+1} inside a segment (A = GAE)
    A = refmath.gae(**steps, gamma=gamma, lam=lam)
    delta = refmath.td_errors(row["rewards"], row["values"], row["next_values"], gamma=gamma,
                              terminated=row["terminated"])
    end = [row["terminated"][t] or row["truncated"][t] or t == T - 1 for t in range(T)]
    expected = [delta[t] + (0 if end[t] else gamma * A[t + 1]) for t in range(T)]
    assert list(pg) == expected


@given(rows(), st.lists(ratio, min_size=6, max_size=6))
def test_lambda_one_no_clips_zero_values_is_per_decision_importance_sampling(case, rhos):
    row, gamma, _ = case
    T = len(row["rewards"])
    rho = rhos[:T]
    zero = [F(0)] * T
    vs, _ = refmath.vtrace(row["rewards"], zero, zero, rhos=rho, gamma=gamma, lam=1,
                           rho_clip=None, c_clip=None, pg_rho_clip=None,
                           terminated=row["terminated"], truncated=row["truncated"])
    G = [None] * T  # G_t = ρ_t·(r_t + γ·G_{t+1}), G = ρ·r at a segment end (Precup 2000)
    for t in reversed(range(T)):
        end = row["terminated"][t] or row["truncated"][t] or t == T - 1
        G[t] = rho[t] * (row["rewards"][t] + (0 if end else gamma * G[t + 1]))
    assert list(vs) == G


@given(rows())
def test_zero_traces_give_the_expected_sarsa_target(case):
    row, gamma, _ = case
    T = len(row["rewards"])
    q, e = row["values"], row["next_values"]
    G = refmath.off_policy_q_targets(row["rewards"], q, e, [F(0)] * T, gamma=gamma,
                                     terminated=row["terminated"], truncated=row["truncated"])
    assert list(G) == [row["rewards"][t] + (0 if row["terminated"][t] else gamma * e[t])
                       for t in range(T)]


@given(rows(), st.lists(st.integers(4, 16).map(lambda k: F(k, 4)), min_size=6, max_size=6))
def test_retrace_is_q_lambda_where_every_ratio_is_at_least_one(case, rhos):
    row, gamma, lam = case
    T = len(row["rewards"])
    retrace = refmath.trace_coefficients("retrace", lam=lam, rhos=rhos[:T])
    q_lam = refmath.trace_coefficients("q_lambda", lam=lam, rhos=rhos[:T])
    assert list(retrace) == list(q_lam)
    kw = dict(gamma=gamma, terminated=row["terminated"], truncated=row["truncated"])
    args = (row["rewards"], row["values"], row["next_values"])
    assert list(refmath.off_policy_q_targets(*args, retrace, **kw)) == list(
        refmath.off_policy_q_targets(*args, q_lam, **kw))


def test_retrace_traces_are_safe_and_importance_sampling_traces_are_not_bounded():
    rhos = [F(1, 4), F(1), F(3), F(100)]
    retrace = refmath.trace_coefficients("retrace", lam=F(9, 10), rhos=rhos)
    is_ = refmath.trace_coefficients("importance_sampling", lam=F(9, 10), rhos=rhos)
    assert all(0 <= c <= F(9, 10) * min(1, r) for c, r in zip(retrace, rhos))
    assert max(is_) == 90  # λ·ρ: a product of such traces grows without bound


@given(rows(), st.lists(ratio, min_size=6, max_size=6), st.lists(st.booleans(), min_size=6,
                                                                  max_size=6))
def test_a_masked_row_equals_its_compressed_row(case, rhos, keep):
    row, gamma, lam = case
    T = len(row["rewards"])
    keep = keep[:T]
    if not any(keep):
        keep[0] = True
    kw = dict(gamma=gamma, lam=lam, rho_clip=F(3, 2), c_clip=F(1))
    vs, pg = refmath.vtrace(**row, rhos=rhos[:T], mask=keep, **kw)
    sub = {k: [v[t] for t in range(T) if keep[t]] for k, v in row.items()}
    vs_c, pg_c = refmath.vtrace(**sub, rhos=[rhos[t] for t in range(T) if keep[t]], **kw)
    assert [vs[t] for t in range(T) if keep[t]] == list(vs_c)
    assert [pg[t] for t in range(T) if keep[t]] == list(pg_c)
    assert all(vs[t] == 0 and pg[t] == 0 for t in range(T) if not keep[t])


@given(rows(), st.lists(ratio, min_size=6, max_size=6))
def test_splitting_a_row_at_a_segment_end_equals_the_pieces(case, rhos):
    row, gamma, lam = case
    T = len(row["rewards"])
    ends = [t for t in range(T - 1) if row["terminated"][t] or row["truncated"][t]]
    if not ends:
        return
    cut = ends[0] + 1
    kw = dict(gamma=gamma, lam=lam, c_clip=None)
    whole = refmath.vtrace(**row, rhos=rhos[:T], **kw)
    parts = [refmath.vtrace(**{k: v[a:b] for k, v in row.items()}, rhos=rhos[a:b], **kw)
             for a, b in ((0, cut), (cut, T))]
    for i in range(2):
        assert list(whole[i]) == list(parts[0][i]) + list(parts[1][i])
    q_whole = refmath.off_policy_q_targets(row["rewards"], row["values"], row["next_values"],
                                           rhos[:T], gamma=gamma, terminated=row["terminated"],
                                           truncated=row["truncated"])
    q_parts = [refmath.off_policy_q_targets(
        row["rewards"][a:b], row["values"][a:b], row["next_values"][a:b], rhos[a:b],
        gamma=gamma, terminated=row["terminated"][a:b], truncated=row["truncated"][a:b])
        for a, b in ((0, cut), (cut, T))]
    assert list(q_whole) == list(q_parts[0]) + list(q_parts[1])


@pytest.mark.parametrize("T", [1, 2, 3, 4])
def test_on_policy_vtrace_is_the_lambda_return_symbolically(T):
    """For every termination/truncation pattern, symbolic r, V, V', γ, λ."""
    r = list(sympy.symbols(f"r0:{T}"))
    v = list(sympy.symbols(f"v0:{T}"))
    nv = list(sympy.symbols(f"w0:{T}"))
    g, lam = sympy.symbols("gamma lam", positive=True)
    for pattern in itertools.product((0, 1, 2), repeat=T):  # none / terminated / truncated
        term = [p == 1 for p in pattern]
        trunc = [p == 2 for p in pattern]
        vs, _ = refmath.vtrace(r, v, nv, rhos=[1] * T, gamma=g, lam=lam, terminated=term,
                               truncated=trunc)
        lr = refmath.lambda_returns(r, v, nv, gamma=g, lam=lam, terminated=term,
                                    truncated=trunc)
        assert all(sympy.expand(a - b) == 0 for a, b in zip(vs, lr)), pattern


def test_vtrace_fixed_point_is_the_value_of_the_truncated_policy():
    """Espeholt et al. (2018), Theorem 1: the expected one-step V-trace target leaves V
    unchanged exactly when V = V^{π_ρ̄}, π_ρ̄(a|x) ∝ min(ρ̄·μ(a|x), π(a|x)). Exact, on a
    2-state, 2-action MDP with γ = 1/2, ρ̄ = 1 and a target policy far from the behaviour."""
    P = {(0, 0): [F(1, 2), F(1, 2)], (0, 1): [F(0), F(1)], (1, 0): [F(1), F(0)],
         (1, 1): [F(1, 4), F(3, 4)]}
    R = {(0, 0): F(1), (0, 1): F(0), (1, 0): F(2), (1, 1): F(-1)}
    mu = {0: [F(1, 2), F(1, 2)], 1: [F(3, 4), F(1, 4)]}
    pi = {0: [F(9, 10), F(1, 10)], 1: [F(1, 10), F(9, 10)]}
    gamma, rho_bar = F(1, 2), F(1)

    def value_of(policy):
        V = sympy.symbols("V0 V1")
        eqs = [sympy.Eq(V[x], sum(policy[x][a] * (R[x, a] + gamma * sum(
            P[x, a][y] * V[y] for y in (0, 1))) for a in (0, 1))) for x in (0, 1)]
        sol = sympy.solve(eqs, V)
        return [sol[V[0]], sol[V[1]]]

    def truncated(x):
        w = [min(rho_bar * mu[x][a], pi[x][a]) for a in (0, 1)]
        return [wi / sum(w) for wi in w]

    def expected_target(V, x):  # E_{a~μ, x'~P}[vs] for one step that bootstraps V(x')
        total = 0
        for a in (0, 1):
            for y in (0, 1):
                if P[x, a][y] == 0:
                    continue
                vs, _ = refmath.vtrace([R[x, a]], [V[x]], [V[y]], rhos=[pi[x][a] / mu[x][a]],
                                       gamma=gamma, rho_clip=rho_bar, truncated=[True])
                total += mu[x][a] * P[x, a][y] * vs[0]
        return sympy.nsimplify(total)

    fixed = value_of({x: truncated(x) for x in (0, 1)})
    target = value_of(pi)
    assert all(expected_target(fixed, x) == fixed[x] for x in (0, 1))
    assert any(expected_target(target, x) != target[x] for x in (0, 1))


@pytest.mark.parametrize("name", ["vtrace", "off_policy_q_targets"])
def test_twin_matches_the_oracle_with_per_step_gamma(name):
    gen = torch.Generator().manual_seed(1)
    B, T = 2, 6
    x = [torch.randn(B, T, generator=gen, dtype=torch.float64) for _ in range(4)]
    gamma = torch.rand(B, T, generator=gen, dtype=torch.float64)
    flags = dict(terminated=torch.rand(B, T, generator=gen) < 0.2,
                 truncated=torch.rand(B, T, generator=gen) < 0.2,
                 mask=torch.rand(B, T, generator=gen) < 0.8)
    numpy = lambda t: t.numpy()  # noqa: E731
    if name == "vtrace":
        got = torch.stack(rt.vtrace(*x, gamma=gamma, lam=0.9, **flags), -1)
        want = np.stack(refmath.vtrace(*map(numpy, x), gamma=gamma.numpy(), lam=0.9,
                                       **{k: numpy(v) for k, v in flags.items()}), -1)
    else:
        x[3] = x[3].abs()
        got = rt.off_policy_q_targets(*x, gamma=gamma, **flags)
        want = refmath.off_policy_q_targets(*map(numpy, x), gamma=gamma.numpy(),
                                            **{k: numpy(v) for k, v in flags.items()})
    # float64 against the float64 oracle: a few roundings per step, T = 6
    assert np.allclose(got.numpy(), np.asarray(want, dtype=np.float64), rtol=1e-12,
                       atol=1e-12)
