"""Checks of refmath's own oracles against the identities of SPEC §2.

Each identity is proven exactly on Fraction inputs (Hypothesis, consistent trajectories where
the identity telescopes) and, for the symbolic checks, with SymPy for every horizon T ≤ 5 with
symbolic rewards, values, bootstraps, γ and λ. Both sides are computed by different oracles,
each a literal transcription of its own definition.
"""

from __future__ import annotations

import itertools
import sys
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import sympy
from hypothesis import given
from hypothesis import strategies as st

from .. import advantages as adv
from .. import returns as ret
from ..strategies import Episode, episodes
from ..exact import is_zero
from .core import CheckFailure, CheckList, Context
from .specs import SPECS


__all__ = ["CHECKS"]

CHECKS = CheckList()
KIND = "identities"




def _equal(lhs: np.ndarray, rhs: np.ndarray, what: str, ep: Any) -> None:
    for idx in np.ndindex(lhs.shape):
        if not is_zero(lhs[idx] - rhs[idx]):
            raise CheckFailure(f"{what} fails at {idx}: {lhs[idx]} != {rhs[idx]}  ({ep!r})")


def _flags(ep: Episode) -> dict[str, Any]:
    return dict(terminated=ep.terminated, truncated=ep.truncated, mask=ep.mask)


def _exact_identity(name: str, summary: str, consistent: bool,
                    sides: Callable[[Episode, int], tuple[np.ndarray, np.ndarray]],
                    per_step_gamma: bool = True) -> None:
    def run(fn, ctx: Context) -> None:
        @ctx.settings()
        @given(data=st.data())
        def prop(data):
            ep = data.draw(episodes(max_T=6, consistent=consistent,
                                    per_step_gamma=per_step_gamma and data.draw(
                                        st.booleans(), label="per-step gamma")),
                           label="inputs")
            n = data.draw(st.integers(1, 8), label="n")
            lhs, rhs = sides(ep, n)
            _equal(lhs, rhs, name, ep)
            ctx.tracker.saw()

        prop()

    CHECKS.register(KIND, f"identity.{name}", summary)(run)


def _k(ep: Episode) -> dict[str, Any]:
    return dict(gamma=ep.gamma, **_flags(ep))


def _gae_args(ep: Episode) -> tuple:
    return ep.rewards, ep.values, ep.next_values


def _sides_gae_summed(ep, n):
    return (adv.gae(*_gae_args(ep), lam=ep.lam, **_k(ep)),
            adv.gae_summed(*_gae_args(ep), lam=ep.lam, **_k(ep)))


_exact_identity("gae_summed", "recursive GAE = summed form Σ(γλ)^l δ (any inputs)", False,
                _sides_gae_summed)


def _sides_gae_mixture(ep, n):
    return (adv.gae(*_gae_args(ep), lam=ep.lam, **_k(ep)),
            adv.gae_mixture(*_gae_args(ep), lam=ep.lam, **_k(ep)))


_exact_identity("gae_mixture", "recursive GAE = n-step mixture with tail mass (consistent)",
                True,
                _sides_gae_mixture)


def _td_on_present(ep: Episode) -> np.ndarray:
    delta = ret.td_errors(*_gae_args(ep), gamma=ep.gamma, terminated=ep.terminated)
    if ep.mask is not None:
        delta = np.where(ep.mask, delta, Fraction(0))
    return delta


def _sides_lambda0_td(ep, n):
    return (adv.gae(*_gae_args(ep), lam=Fraction(0), **_k(ep)),
            _td_on_present(ep))


_exact_identity("lambda0_td", "GAE with λ = 0 = TD errors", False,
                _sides_lambda0_td)


def _sides_lambda1_mc(ep, n):
    return (adv.gae(*_gae_args(ep), lam=Fraction(1), **_k(ep)),
            adv.monte_carlo_advantage(*_gae_args(ep), **_k(ep)))


_exact_identity("lambda1_mc", "GAE with λ = 1 = discounted_returns(next_values) − values "
                "(consistent)", True,
                _sides_lambda1_mc)


def _mc_minus_values(ep: Episode) -> np.ndarray:
    G = ret.discounted_returns(ep.rewards, next_values=ep.next_values, **_k(ep))
    keep = np.ones(ep.shape, bool) if ep.mask is None else ep.mask
    return np.where(keep, G - ep.values, Fraction(0))


def _sides_mc_advantage(ep, n):
    return (adv.monte_carlo_advantage(*_gae_args(ep), **_k(ep)),
            _mc_minus_values(ep))


_exact_identity("mc_advantage", "monte_carlo_advantage = discounted_returns − values", False,
                _sides_mc_advantage)


def _sides_nstep_long_is_mc(ep, n):
    return (ret.n_step_returns(ep.rewards, ep.next_values,
                              n=ep.shape[-1] + n - 1, **_k(ep)),
            ret.discounted_returns(ep.rewards, next_values=ep.next_values,
                                  **_k(ep)))


_exact_identity("nstep_long_is_mc", "n_step_returns with n ≥ T = discounted_returns", False,
                _sides_nstep_long_is_mc)


def _one_step(ep: Episode) -> np.ndarray:
    zero = np.array([Fraction(0)] * ep.rewards.size, dtype=object).reshape(ep.shape)
    delta = ret.td_errors(ep.rewards, zero, ep.next_values, gamma=ep.gamma,
                          terminated=ep.terminated)
    return np.where(ep.mask, delta, Fraction(0)) if ep.mask is not None else delta


def _sides_nstep_one(ep, n):
    return (ret.n_step_returns(ep.rewards, ep.next_values, n=1, **_k(ep)),
            _one_step(ep))


_exact_identity("nstep_one", "n_step_returns with n = 1 = r + γ·nt·V'", False,
                _sides_nstep_one)


def _sides_lambda_returns_minus_values(ep, n):
    return (adv.lambda_returns(*_gae_args(ep), lam=ep.lam, **_k(ep)),
            adv.gae(*_gae_args(ep), lam=ep.lam, **_k(ep))
            + np.where(ep.mask if ep.mask is not None else True,
                      ep.values, Fraction(0)))


_exact_identity("lambda_returns_minus_values", "lambda_returns − values = gae (masked: 0)",
                False,
                _sides_lambda_returns_minus_values)


def _sides_lambda_returns_recursive(ep, n):
    return (adv.lambda_returns_recursive(*_gae_args(ep), lam=ep.lam,
                                        **_k(ep)),
            adv.lambda_returns(*_gae_args(ep), lam=ep.lam, **_k(ep)))


_exact_identity("lambda_returns_recursive", "textbook λ-return recursion = gae + values "
                "(consistent)", True,
                _sides_lambda_returns_recursive)

# --- structural identities: compression and splitting ------------------------------------

def _step_oracle(name: str) -> Callable[[Episode, dict, int], np.ndarray]:
    """The §2 oracle ``name`` called through its spec (looked up at call time, so a test can
    replace it), on the arguments it takes."""
    spec = SPECS[name]

    def call(ep: Episode, kw: dict, n: int) -> np.ndarray:
        values = dict(rewards=kw["rewards"], values=kw.get("values"),
                      next_values=kw["next_values"], gamma=kw["gamma"], lam=ep.lam, n=n,
                      **kw["flags"])
        oracle = getattr(sys.modules[spec.oracle.__module__], name)
        return spec.call(oracle, {k: v for k, v in values.items() if spec.has(k)})

    return call


FUNCS = {name: _step_oracle(name) for name in ("gae", "discounted_returns", "n_step_returns")}


def _row_kwargs(ep: Episode, idx: tuple, keep: list[int]) -> dict[str, Any]:
    def pick(a):
        return np.array([a[idx + (t,)] for t in keep], dtype=a.dtype)

    gamma = ep.gamma if not isinstance(ep.gamma, np.ndarray) else np.array(
        [ep.gamma[t] for t in keep], dtype=object)
    return dict(rewards=pick(ep.rewards), values=pick(ep.values),
                next_values=pick(ep.next_values), gamma=gamma,
                flags=dict(terminated=pick(ep.terminated), truncated=pick(ep.truncated)))


def _compressed_rows(name: str):
    def sides(ep: Episode, n: int):
        full = FUNCS[name](ep, dict(rewards=ep.rewards, values=ep.values,
                                    next_values=ep.next_values, gamma=ep.gamma,
                                    flags=_flags(ep)), n)
        expected = np.array([Fraction(0)] * full.size, dtype=object).reshape(full.shape)
        for idx in np.ndindex(ep.shape[:-1]):
            keep = [t for t in range(ep.shape[-1]) if ep.mask is None or ep.mask[idx + (t,)]]
            if keep:
                row = FUNCS[name](ep, _row_kwargs(ep, idx, keep), n)
                for t, value in zip(keep, row):
                    expected[idx + (t,)] = value
        return full, expected

    return sides


def _split_pieces(name: str):
    """Cut every row after each truncated or terminated step; compute the pieces alone."""

    def sides(ep: Episode, n: int):
        ep_nomask = Episode(ep.rewards, ep.values, ep.next_values, ep.terminated,
                            ep.truncated, None, ep.gamma, ep.lam)
        full = FUNCS[name](ep_nomask, dict(rewards=ep.rewards, values=ep.values,
                                           next_values=ep.next_values, gamma=ep.gamma,
                                           flags=_flags(ep_nomask)), n)
        expected = np.empty(full.shape, dtype=object)
        T = ep.shape[-1]
        for idx in np.ndindex(ep.shape[:-1]):
            start = 0
            for t in range(T):
                if ep.terminated[idx + (t,)] or ep.truncated[idx + (t,)] or t == T - 1:
                    piece = list(range(start, t + 1))
                    row = FUNCS[name](ep, _row_kwargs(ep, idx, piece), n)
                    for s, value in zip(piece, row):
                        expected[idx + (s,)] = value
                    start = t + 1
        return full, expected

    return sides


for _f in FUNCS:
    _exact_identity(f"{_f}_masked_is_compressed",
                    f"{_f}: a masked row = its compressed row written back", False,
                    _compressed_rows(_f))
    _exact_identity(f"{_f}_split_at_boundaries",
                    f"{_f}: splitting rows at truncation/termination = the pieces alone",
                    False, _split_pieces(_f))


# --- symbolic proofs, T ≤ 5 ---------------------------------------------------------------

def _symbolic_cases(max_T: int):
    """Every T ≤ max_T and every pattern of segment ends (none / terminated / truncated)."""
    for T in range(1, max_T + 1):
        for pattern in itertools.product((0, 1, 2), repeat=T - 1):
            terminated = [p == 1 for p in pattern] + [False]
            truncated = [p == 2 for p in pattern] + [False]
            for last in (0, 1):
                terminated[-1] = bool(last)
                yield T, list(terminated), list(truncated)


def _symbolic_inputs(T: int, terminated, truncated, consistent: bool):
    r = sympy.symbols(f"r0:{T}")
    v = sympy.symbols(f"v0:{T}")
    b = sympy.symbols(f"b0:{T}")  # bootstraps at segment ends
    nv = [v[t + 1] if consistent and t + 1 < T and not (terminated[t] or truncated[t])
          else b[t] for t in range(T)]
    arr = lambda xs: np.array(list(xs), dtype=object)  # noqa: E731
    return arr(r), arr(v), arr(nv)


GAMMA, LAM = sympy.symbols("gamma lam", nonnegative=True)


def _symbolic_check(name: str, summary: str, consistent: bool, sides, max_T: int = 5):
    def run(fn, ctx: Context) -> None:
        for T, terminated, truncated in _symbolic_cases(max_T):
            r, v, nv = _symbolic_inputs(T, terminated, truncated, consistent)
            kw = dict(gamma=GAMMA, terminated=terminated, truncated=truncated)
            lhs, rhs = sides(r, v, nv, kw)
            _equal(lhs, rhs, name, f"T={T}, terminated={terminated}, truncated={truncated}")
            ctx.tracker.saw()

    CHECKS.register(KIND, f"symbolic.{name}", summary + " — SymPy, all T ≤ 5, all boundary patterns")(
        run)


def _symbolic_sides_gae_summed(r, v, nv, kw):
    return (adv.gae(r, v, nv, lam=LAM, **kw),
            adv.gae_summed(r, v, nv, lam=LAM, **kw))


_symbolic_check("gae_summed", "recursive GAE = summed form", False,
                _symbolic_sides_gae_summed)


def _symbolic_sides_gae_mixture(r, v, nv, kw):
    return (adv.gae(r, v, nv, lam=LAM, **kw),
            adv.gae_mixture(r, v, nv, lam=LAM, **kw))


_symbolic_check("gae_mixture", "recursive GAE = n-step mixture", True,
                _symbolic_sides_gae_mixture)


def _symbolic_sides_lambda0_td(r, v, nv, kw):
    return (adv.gae(r, v, nv, lam=0, **kw),
            ret.td_errors(r, v, nv, gamma=kw["gamma"],
                         terminated=kw["terminated"]))


_symbolic_check("lambda0_td", "GAE(λ=0) = TD errors", False,
                _symbolic_sides_lambda0_td)


def _symbolic_sides_lambda1_mc(r, v, nv, kw):
    return (adv.gae(r, v, nv, lam=1, **kw),
            ret.discounted_returns(r, next_values=nv, **kw) - v)


_symbolic_check("lambda1_mc", "GAE(λ=1) = discounted_returns(next_values) − values", True,
                _symbolic_sides_lambda1_mc)


def _symbolic_sides_nstep_long_is_mc(r, v, nv, kw):
    return (ret.n_step_returns(r, nv, n=len(r), **kw),
            ret.discounted_returns(r, next_values=nv, **kw))


_symbolic_check("nstep_long_is_mc", "n_step_returns(n = T) = discounted_returns", False,
                _symbolic_sides_nstep_long_is_mc)


def _symbolic_sides_lambda_returns_recursive(r, v, nv, kw):
    return (adv.lambda_returns_recursive(r, v, nv, lam=LAM, **kw),
            adv.gae(r, v, nv, lam=LAM, **kw) + v)


_symbolic_check("lambda_returns_recursive", "λ-return recursion = gae + values", True,
                _symbolic_sides_lambda_returns_recursive)


def _symbolic_structure(name: str, sides_for: Callable[[str], Callable], masks: bool,
                        max_T: int = 4):
    """Masked row = compressed row (every mask pattern), split = pieces, symbolically."""

    def run(fn, ctx: Context) -> None:
        for T, terminated, truncated in _symbolic_cases(max_T):
            r, v, nv = _symbolic_inputs(T, terminated, truncated, consistent=False)
            for mask in itertools.product((True, False), repeat=T if masks else 0):
                mask = mask or (True,) * T
                ep = Episode(r.reshape(1, T), v.reshape(1, T), nv.reshape(1, T),
                             np.array([terminated]), np.array([truncated]),
                             np.array([mask]), GAMMA, LAM)
                for f in FUNCS:
                    lhs, rhs = sides_for(f)(ep, 2)
                    _equal(lhs, rhs, f"{f} {name}", ep)
                ctx.tracker.saw()

    CHECKS.register(KIND, f"symbolic.{name}",
             f"gae, returns, n-step: {name.replace('_', ' ')} — SymPy, all T ≤ {max_T}, all "
             f"boundary{' and mask' if masks else ''} patterns")(run)


_symbolic_structure("masked_is_compressed", _compressed_rows, masks=True)
_symbolic_structure("split_at_boundaries", _split_pieces, masks=False)


# --- SPEC §3–4: objectives, aggregation, group advantages, KL estimators --------------------

from .. import divergences as dv  # noqa: E402
from .. import objectives as ob  # noqa: E402
from ..strategies import dyadics  # noqa: E402


def _oracle_identity(name: str, summary: str, strategy, sides, cap: int | None = None):
    def run(fn, ctx: Context) -> None:
        @ctx.settings(cap)
        @given(case=strategy)
        def prop(case):
            lhs, rhs = sides(case)
            _equal(np.asarray(lhs, dtype=object).reshape(-1),
                   np.asarray(rhs, dtype=object).reshape(-1), name, case)
            ctx.tracker.saw()

        prop()

    CHECKS.register(KIND, f"identity.{name}", summary)(run)


def _vectors(min_size=1, max_size=6, elements=None):
    elements = dyadics() if elements is None else elements
    return st.lists(elements, min_size=min_size, max_size=max_size).map(
        lambda xs: np.array(xs, dtype=object))


_pairs = st.integers(1, 6).flatmap(lambda n: st.tuples(
    _vectors(n, n, dyadics().map(abs)), _vectors(n, n)))


def _oracle_identity_sides_clip_wide_is_ratio_times_advantage(c):
    return (ob.clipped_surrogate(c[0], c[1], clip_low=1, clip_high=100),
            c[0] * c[1])


_oracle_identity("clip_wide_is_ratio_times_advantage",
                 "clipped_surrogate with ε_low = 1, ε_high ≥ max r equals r·A", _pairs,
                 _oracle_identity_sides_clip_wide_is_ratio_times_advantage)


def _oracle_identity_sides_kl_penalty_beta0(c):
    ratio, advantages = c[0]
    return (ob.kl_penalized_surrogate(ratio, advantages, c[1][:len(ratio)], beta=0),
            ratio * advantages)


_oracle_identity("kl_penalty_beta0", "kl_penalized_surrogate with β = 0 equals r·A",
                 st.tuples(_pairs, _vectors(6, 6)),
                 _oracle_identity_sides_kl_penalty_beta0)


def _oracle_identity_sides_rloo_is_scaled_dr_grpo(r):
    return (ob.group_advantages(r, method="rloo"),
            Fraction(len(r), len(r) - 1) * ob.group_advantages(r, method="dr_grpo"))


_oracle_identity("rloo_is_scaled_dr_grpo", "rloo = G/(G−1)·dr_grpo (G ≥ 2)",
                 _vectors(2, 8),
                 _oracle_identity_sides_rloo_is_scaled_dr_grpo)


@st.composite
def _equal_length_batches(draw):
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    length = draw(st.integers(1, T))
    loss = np.array(draw(st.lists(dyadics(), min_size=B * T, max_size=B * T)),
                    dtype=object).reshape(B, T)
    mask = np.zeros((B, T), dtype=bool)
    for b in range(B):
        start = draw(st.integers(0, T - length))
        mask[b, start:start + length] = True
    return loss, mask


def _oracle_identity_sides_token_mean_equal_lengths(c):
    return (ob.aggregate_loss(c[0], c[1], "token-mean"),
            ob.aggregate_loss(c[0], c[1], "seq-mean-token-mean"))


_oracle_identity("token_mean_equal_lengths",
                 "token-mean = seq-mean-token-mean when every sequence has the same length",
                 _equal_length_batches(),
                 _oracle_identity_sides_token_mean_equal_lengths)


@st.composite
def _positive_distributions(draw):
    K = draw(st.integers(2, 3))

    def dist():
        w = draw(st.lists(st.integers(1, 7), min_size=K, max_size=K))
        return [Fraction(x, sum(w)) for x in w]

    return dist(), dist()


def _kl_fact(name: str, summary: str, sides):
    _oracle_identity(name, summary + " (exact, SymPy)", _positive_distributions(), sides, cap=4)


def _kl_fact_sides_k1_unbiased(c):
    return (dv.kl_estimator_moments(c[0], c[1], "k1")["expectation"],
            dv.kl_divergence(c[0], c[1]))


_kl_fact("k1_unbiased", "E_π[k1] = KL(π‖π_ref)",
         _kl_fact_sides_k1_unbiased)


def _kl_fact_sides_k3_unbiased(c):
    return (dv.kl_estimator_moments(c[0], c[1], "k3")["expectation"],
            dv.kl_divergence(c[0], c[1]))


_kl_fact("k3_unbiased", "E_π[k3] = KL(π‖π_ref)",
         _kl_fact_sides_k3_unbiased)


def _kl_fact_sides_k1_pathwise_zero(c):
    return (dv.kl_estimator_moments(c[0], c[1], "k1")["pathwise_gradient"],
            np.zeros(len(c[0]), dtype=int))


_kl_fact("k1_pathwise_zero", "E_π[∇k1] (autograd on sampled k1) = 0",
         _kl_fact_sides_k1_pathwise_zero)


def _kl_fact_sides_k2_pathwise_reverse_kl(c):
    return (dv.kl_estimator_moments(c[0], c[1], "k2")["pathwise_gradient"],
            dv.kl_divergence_gradient(c[0], c[1], "reverse"))


_kl_fact("k2_pathwise_reverse_kl", "E_π[∇k2] = ∇KL(π‖π_ref)",
         _kl_fact_sides_k2_pathwise_reverse_kl)


def _kl_fact_sides_k3_pathwise_forward_kl(c):
    return (dv.kl_estimator_moments(c[0], c[1], "k3")["pathwise_gradient"],
            dv.kl_divergence_gradient(c[0], c[1], "forward"))


_kl_fact("k3_pathwise_forward_kl", "E_π[∇k3] = ∇KL(π_ref‖π), the FORWARD KL",
         _kl_fact_sides_k3_pathwise_forward_kl)


def _kl_fact_sides_k1_k3_full_gradient(c):
    return (np.concatenate([dv.kl_estimator_moments(c[0], c[1], k)["gradient"]
                            for k in ("k1", "k3")]),
            np.concatenate([dv.kl_divergence_gradient(c[0], c[1], "reverse")] * 2))


_kl_fact("k1_k3_full_gradient", "∇E_π[k1] = ∇E_π[k3] = ∇KL(π‖π_ref)",
         _kl_fact_sides_k1_k3_full_gradient)


def _score_plus_pathwise(c):
    lhs, rhs = [], []
    for k in dv.KL_ESTIMATORS:
        m = dv.kl_estimator_moments(c[0], c[1], k)
        lhs.append(m["gradient"])
        rhs.append(m["pathwise_gradient"] + m["score_gradient"])
    return np.concatenate(lhs), np.concatenate(rhs)


_kl_fact("gradient_is_pathwise_plus_score",
         "∇E_π[k] = E[∇k] + E[k·∇log π] for k1, k2, k3", _score_plus_pathwise)
