"""Checks for the language-model objectives of SPEC §7 added after the first four (those are
in :mod:`refmath.checks.policy`): rollout correction, GSPO and GSPO-token, micro-batch loss
splitting, ReMax, VAPO's length-adaptive GAE. They run through the same factories, comparison and failure anatomy as
SPEC §3–4 (:func:`refmath.checks.arrays.array_checks`), plus the exact gradient
facts §7 states: no gradient through the correction weights, GSPO-token's gradient."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st

from .. import advantages as adv
from .. import bounds as B
from .. import objectives as ob
from .. import ratios as ra
from .arrays import array_checks, array_row, logp_gradient_check, rows
from .cases import Case, M, T, _arrays, _grid, _mask, _matrix, _numbers, bad
from .core import CheckList

__all__ = ["ROWS", "CHECKS"]

nan, inf = math.nan, math.inf

_HIGH = st.sampled_from([Fraction(2), Fraction(3, 2), Fraction(4), Fraction(1)])
_LOW = st.sampled_from([None, Fraction(0), Fraction(1, 2), Fraction(1, 4)])
_EPS = st.sampled_from([Fraction(1, 5), Fraction(1, 4), Fraction(0), Fraction(2)])


@st.composite
def _rollout_cases(draw):
    a = draw(_arrays(("logp", "rollout_logp"), {"logp": _numbers(2), "rollout_logp":
                                                _numbers(2)}, min_ndim=1))
    mode = draw(st.sampled_from(ra.CORRECTION_MODES), label="mode")
    kw = {"level": draw(st.sampled_from(ra.CORRECTION_LEVELS), label="level"), "mode": mode,
          "high": draw(_HIGH, label="high")}
    low = draw(_LOW, label="low") if mode == "mask" else None
    if low is not None and low <= kw["high"]:
        kw["low"] = low
    return Case(a, kw, {"mask": _mask(draw, a["logp"].shape)})


def _rollout_pinned() -> tuple:
    """w = 1 exactly (logp = rollout_logp) on the bounds low = high = 1 (kept: ≤ is
    inclusive), and a sequence whose token ratios straddle the bounds but whose product
    does not (Σ d = 0 over the response: w = 1), every level and mode."""
    lp = _matrix([Fraction(1, 2), Fraction(-1, 2), 3], [0, 0, 0])
    ro = _matrix([0, 0, 0], [0, 0, 0])
    mask = np.array([[True, True, False], [True, True, True]])
    cases = []
    for level in ra.CORRECTION_LEVELS:
        cases.append(Case({"logp": lp, "rollout_logp": ro},
                          {"level": level, "mode": "mask", "low": Fraction(1),
                           "high": Fraction(1)}, {"mask": mask}))
        cases.append(Case({"logp": lp, "rollout_logp": ro},
                          {"level": level, "mode": "truncate", "high": Fraction(3, 2)},
                          {"mask": mask}))
    return tuple(cases)


@st.composite
def _gspo_cases(draw, per_token: bool = False):
    a = draw(_arrays(("logp", "old_logp"), {"logp": _numbers(2), "old_logp": _numbers(2)},
                     min_ndim=1))
    shape = a["logp"].shape
    tokens = per_token and draw(st.booleans(), label="per-token advantages")
    a.update(draw(_arrays(("advantages",), {"advantages": _numbers(2)},
                          shape=shape if tokens else shape[:-1])))
    kw = {"clip_low": draw(_EPS, label="clip_low")}
    if draw(st.booleans(), label="clip_high given"):
        kw["clip_high"] = draw(_EPS, label="clip_high")
    return Case(a, kw, {"mask": _mask(draw, shape)})


def _gspo_pinned(per_token: bool) -> tuple:
    """s = 1 exactly (the response's log-ratios ±1/2 cancel) on a clip boundary (ε = 0);
    a sequence clipped above (A > 0, s = e) and one not clipped below (A < 0, s = e); a fully
    masked row."""
    lp = _matrix([Fraction(1, 2), Fraction(-1, 2), 2], [1, 1, 1], [1, 1, 1], [3, 3, 3])
    old = _matrix([0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0])
    mask = np.array([[True, True, False], [True, True, True], [True, True, True],
                     [False, False, False]])
    A = np.array([Fraction(1), Fraction(2), Fraction(-1), Fraction(1)], dtype=object)
    forms = [A] + ([np.repeat(A[:, None], 3, axis=1), _matrix([1, -1, 1], [2, 0, -2],
                                                              [-1, -1, 1], [1, 1, 1])]
                   if per_token else [])
    return tuple(Case({"logp": lp, "old_logp": old, "advantages": adv},
                      {"clip_low": eps, "clip_high": hi}, {"mask": mask})
                 for adv in forms for eps, hi in ((Fraction(0), Fraction(0)),
                                                  (Fraction(1, 5), Fraction(1, 4))))


@st.composite
def _split_cases(draw):
    B_ = draw(st.integers(1, 5), label="B")
    T = draw(st.integers(1, 5), label="T")
    a = draw(_arrays(("per_step_loss",), {"per_step_loss": _numbers(4)}, shape=(B_, T)))
    mask = _mask(draw, (B_, T))
    if not mask.any():
        mask[draw(st.integers(0, B_ - 1), label="kept row"), 0] = True
    mode = draw(st.sampled_from(ob.AGGREGATION_MODES), label="mode")
    if draw(st.booleans(), label="chunk size"):
        splits = draw(st.integers(1, B_ + 1), label="splits")
    else:
        cuts = sorted(draw(st.lists(st.integers(0, B_), max_size=3), label="cuts"))
        bounds = [0] + cuts + [B_]
        splits = [b - a_ for a_, b in zip(bounds, bounds[1:])]
    kw = {"mode": mode, "splits": splits}
    if mode == "seq-mean-token-sum-norm":
        kw["normalizer"] = draw(st.sampled_from([Fraction(4), Fraction(3)]), label="norm")
    return Case(a, kw, {"mask": mask})


# rows with different token counts (so each micro-batch's own token-mean is not its share),
# a fully masked row, an empty micro-batch, every mode
_SPLIT_LOSS = _matrix([1, 2, 3], [8, 0, 0], [5, 7, 9])
_SPLIT_MASK = np.array([[True, True, True], [True, False, False], [False, False, False]])
_SPLIT_PINNED = tuple(
    Case({"per_step_loss": _SPLIT_LOSS},
         {"mode": mode, "splits": splits,
          **({"normalizer": Fraction(4)} if mode == "seq-mean-token-sum-norm" else {})},
         {"mask": _SPLIT_MASK})
    for mode in ob.AGGREGATION_MODES for splits in ([1, 2], [2, 0, 1], 1))


@st.composite
def _remax_cases(draw):
    return Case(draw(_arrays(("rewards", "greedy_rewards"),
                             {"rewards": _numbers(4), "greedy_rewards": _numbers(4)})))


def _near_gspo_kink(case: Case) -> bool:
    """GSPO is not differentiable where s sits on a clip boundary (or A = 0 switches the
    branch): finite differences there are meaningless."""
    lp, old = (np.asarray(case.arrays[k], dtype=np.float64) for k in ("logp", "old_logp"))
    keep = case.flags["mask"]
    mu, _, _, _ = B._masked_mean_log_ratio(lp, old, keep)
    s = np.exp(mu)
    kw = case.kwargs
    lo = float(kw["clip_low"])
    hi = float(kw["clip_high"]) if kw.get("clip_high") is not None else lo
    A = np.asarray(case.arrays["advantages"], dtype=np.float64)
    return bool(np.any(np.abs(s - (1 - lo)) < 1e-5) or np.any(np.abs(s - (1 + hi)) < 1e-5)
                or np.any(A == 0))


# --- VAPO's length-adaptive GAE (Yue et al. 2025) ---------------------------------------------

_ALPHAS = st.sampled_from([Fraction(1, 2), Fraction(1, 4), Fraction(1), Fraction(3, 4),
                           Fraction(2), Fraction(1, 8)])


@st.composite
def _length_adaptive_cases(draw):
    """Rows of up to 12 steps, so that α·l crosses 1 inside the draws (λ = 0, then
    1 − 1/(α·l) for longer rows); a termination every few steps, a truncation elsewhere."""
    a = draw(_arrays(("rewards", "values", "next_values"),
                     {k: _numbers(4) for k in ("rewards", "values", "next_values")},
                     min_ndim=1, max_T=12))
    shape = a["rewards"].shape
    T = np.arange(shape[-1])
    term = _mask(draw, shape, "terminated") & (T % 4 == 3)
    trunc = _mask(draw, shape, "truncated") & (T % 5 == 2) & ~term
    unit = st.one_of(st.sampled_from([Fraction(0), Fraction(1)]), _grid(1, 64).map(abs))
    return Case(a, {"alpha": draw(_ALPHAS, label="alpha"), "gamma": draw(unit, label="gamma")},
                {"mask": _mask(draw, shape), "terminated": term, "truncated": trunc})


def _length_adaptive_pinned() -> tuple[Case, ...]:
    """α = 1/2 on rows of 2, 3 and 4 response tokens: α·l = 1 exactly (λ = 0, the boundary),
    then λ = 1/3 and 1/2; an interior hole and a padded end (masked steps deleted, not
    counted in l); a truncation inside the holed row and a termination inside the full one
    (segment ends do not change l)."""
    def rows(*xs):
        return np.array([[Fraction(x) for x in row] for row in xs], dtype=object)

    r = rows([1, 2, 4, -1], [1, 2, 4, -1], [1, 2, 4, -1])
    v = rows(["1/8", "1/4", "3/8", "1/2"], ["1/8", "1/4", "3/8", "1/2"],
             ["1/8", "1/4", "3/8", "1/2"])
    mask = np.array([[1, 1, 0, 0], [1, 0, 1, 1], [1, 1, 1, 1]], bool)
    terminated = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]], bool)
    truncated = np.array([[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], bool)
    return (Case({"rewards": r, "values": v, "next_values": r},
                 {"alpha": Fraction(1, 2), "gamma": Fraction(3, 4)},
                 {"mask": mask, "terminated": terminated, "truncated": truncated}),)


def _bound_length_adaptive(case, f, exact, u):
    """GAE's recursion bound (:func:`refmath.bounds.recursion_bound`, S the oracle on |r|,
    −|V|, |V'|: every term positive), plus λ's own rounding: λ = 1 − 1/(α·l) is computed in
    float64 and rounded once, a relative error ≤ u in each of the ≤ T factors γλ of a term:
    ≤ T·u·S more."""
    r, v, nv = (np.asarray(x, dtype=np.float64) for x in f[:3])
    kw = {"alpha": float(case.kwargs["alpha"]), "gamma": float(case.kwargs["gamma"])}
    S = np.asarray(adv.length_adaptive_gae(np.abs(r), -np.abs(v), np.abs(nv), case.flags["mask"],
                                           terminated=case.flags.get("terminated"),
                                           truncated=case.flags.get("truncated"), **kw),
                   dtype=np.float64)
    T = r.shape[-1]
    return B.recursion_bound(S, T, B._dtype_of(u)) + T * u * S


def _gspo_token_cases():
    return _gspo_cases(per_token=True)


def _no_weight_gradient(logp, rollout_logp, mask, **options):
    """The exact ∂(Σ w)/∂logp of detached weights: 0 everywhere."""
    return np.zeros(np.shape(logp), dtype=object)


_PAIR = T([[0.0, 0.0]])
_MASK = M([[True, True]])

ROWS = rows(
    array_row("rollout_correction", ra.rollout_correction, _rollout_cases, B.bound_rollout,
              differentiable=(), pinned=_rollout_pinned(), bad_inputs=(
                  bad("level", _PAIR, _PAIR, _MASK, level="batch"),
                  bad("mode", _PAIR, _PAIR, _MASK, mode="clip"),
                  bad("low", _PAIR, _PAIR, _MASK, low=0.5),
                  bad("high", _PAIR, _PAIR, _MASK, high=0.0),
                  bad("low", _PAIR, _PAIR, _MASK, mode="mask", low=3.0),
                  bad("rollout_logp", _PAIR, T([[0.0, nan]]), _MASK))),
    array_row("gspo_surrogate", ob.gspo_surrogate, _gspo_cases, B.bound_gspo,
              differentiable=(0, 1), kink=_near_gspo_kink, pinned=_gspo_pinned(False),
              bad_inputs=(
                  bad("advantages", _PAIR, _PAIR, T([[1.0, 1.0]]), _MASK, clip_low=0.2),
                  bad("clip_low", _PAIR, _PAIR, T([1.0]), _MASK, clip_low=-0.2),
                  bad("old_logp", _PAIR, T([[0.0, inf]]), T([1.0]), _MASK, clip_low=0.2))),
    # GSPO-token's value and gradient differ by design (stop-gradients): no gradcheck; its
    # own gradient check below
    array_row("gspo_token_surrogate", ob.gspo_token_surrogate, _gspo_token_cases,
              B.bound_gspo, differentiable=(), pinned=_gspo_pinned(True), bad_inputs=(
                  bad("advantages", _PAIR, _PAIR, T([1.0, 1.0]), _MASK, clip_low=0.2),
                  bad("clip_high", _PAIR, _PAIR, T([1.0]), _MASK, clip_low=0.2,
                      clip_high=-1.0))),
    array_row("split_aggregate_loss", ob.split_aggregate_loss, _split_cases,
              B.bound_split_aggregate, pinned=_SPLIT_PINNED, reduces_batch=True, bad_inputs=(
                  bad("splits", T([[1.0, 2.0]]), _MASK, "token-mean", splits=[2]),
                  bad("splits", T([[1.0, 2.0]]), _MASK, "token-mean", splits=0),
                  bad("splits", T([[1.0, 2.0]]), _MASK, "token-mean", splits=[-1, 2]),
                  bad("mode", T([[1.0, 2.0]]), _MASK, "sum", splits=1),
                  bad("mask", T([[1.0, 2.0]]), M([[False, False]]), "token-mean", splits=1))),
    array_row("remax_advantages", ob.remax_advantages, _remax_cases, B.bound_remax,
              differentiable=(0, 1), bad_inputs=(
                  bad("greedy_rewards", T([1.0, 2.0]), T([1.0])),
                  bad("rewards", T([nan]), T([1.0])))),
    array_row("length_adaptive_gae", adv.length_adaptive_gae, _length_adaptive_cases,
              _bound_length_adaptive, differentiable=(0, 1, 2),
              pinned=_length_adaptive_pinned(), bad_inputs=(
                  bad("alpha", _PAIR, _PAIR, _PAIR, _MASK, alpha=0.0),
                  bad("alpha", _PAIR, _PAIR, _PAIR, _MASK, alpha=-0.05),
                  bad("mask", _PAIR, _PAIR, _PAIR, None, alpha=0.05),
                  bad("mask", _PAIR, _PAIR, _PAIR, T([[2.0, 1.0]]), alpha=0.05),
                  bad("gamma", _PAIR, _PAIR, _PAIR, _MASK, alpha=0.05, gamma=1.5),
                  bad("next_values", _PAIR, _PAIR, T([[0.0]]), _MASK, alpha=0.05),
                  bad("values", _PAIR, T([[0.0, nan]]), _PAIR, _MASK, alpha=0.05))),
)
CHECKS = CheckList(check for row in ROWS.values() for check in array_checks(row))
CHECKS.append(logp_gradient_check(
    ROWS["rollout_correction"], "no gradient flows through the weights (SPEC §7): ∂(Σ w)/∂logp "
    "is None or exactly 0, for every level and mode", _no_weight_gradient,
    "= 0: the weights must be detached (a correction weight on the gradient path changes "
    "the policy gradient)", check_id="no_gradient"))
CHECKS.append(logp_gradient_check(
    ROWS["gspo_token_surrogate"], "∂(Σ L)/∂logp_t by autograd = s·A_t where the clip is not "
    "active (0 where it is, and where masked), s the sequence ratio: GSPO-token's gradient "
    "(Zheng et al. 2025, eq. 17)", ob.gspo_token_surrogate_gradient,
    "= s·A_t: the sequence ratio stop-gradiented, the token's own probability on the "
    "gradient path"))
