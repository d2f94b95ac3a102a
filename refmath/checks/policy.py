"""The functions of SPEC §3–4 (and the first of §7) as rows — ratios, divergences, KL
estimators, objectives, value loss, whitening, aggregation, group advantages, the
importance-weighted KL, KL-shaped rewards, the overlong penalty, CISPO — and what is particular
to one of them: exact gradient facts, limits at overflow, zero spread, the adaptive KL walk.
Every row gets the array checks of :mod:`refmath.checks.arrays`.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import sympy
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from .. import bounds as B
from .. import divergences as dv
from .. import objectives as ob
from .. import ratios as ra
from ..bounds import unit_roundoff
from ._common import exceeds
from .arrays import (_gradient_of, array_checks, array_row, assert_logp_gradient,
                     bad_input_check, logp_gradient,
                     logp_gradient_check, near, output, prepare, rows, with_examples)
from .cases import (_AGGREGATE_PINNED, _GROUP_PINNED, _OVERLONG_PINNED, _WHITEN_PINNED, Case,
                    T, _aggregate_cases, _arrays, _cispo_cases, _clip_cases,
                    _distribution_cases, _grid, _group_cases, _iw_kl_cases, _kl_estimate_cases,
                    _logit_cases, _overlong_cases, _penalized_cases, _policy_loss_cases,
                    _policy_loss_pinned, _ratio_cases, _sequence_cases, _sequence_pinned,
                    _shaped_reward_cases, _truncation_cases, _value_cases, _vector,
                    _whiten_cases, bad)
from .compare import exact_floats
from .where import changed
from .core import LIKELY, CheckFailure, CheckList, Context

__all__ = ["ROWS", "CHECKS"]

nan, inf = math.nan, math.inf


def _near_policy_kink(case: Case) -> bool:
    """The policy loss's kinks: ratios at the clip boundaries (and the dual-clip point), and
    A = 0 (the min switches branch there)."""
    lp = np.asarray(case.arrays["logp"], dtype=np.float64)
    r = np.exp(lp - np.asarray(case.arrays["old_logp"], dtype=np.float64))
    A = np.asarray(case.arrays["advantages"], dtype=np.float64)
    kw = case.kwargs
    lo, hi = float(kw["clip_low"]), float(kw.get("clip_high") or kw["clip_low"])
    points = [1 - lo, 1 + hi] + ([float(kw["dual_clip"])] if kw.get("dual_clip") else [])
    return near(r, points, 1e-4) or bool(np.any(np.abs(A) < 1e-6))


def _zero_spread(case: Case) -> bool:
    """std is not differentiable at 0: finite differences there are meaningless."""
    r = np.asarray(case.arrays["rewards"], dtype=np.float64)
    method = case.kwargs["method"]
    if method in ob.BATCH_GROUP_METHODS:  # the batch's spread (of r, or of r − group mean)
        x = r if method == "batch_std" else r - r.mean(-1, keepdims=True)
        return x.size == 0 or bool(x.std() < 1e-3)
    return method == "grpo" and bool(np.any(r.std(-1) < 1e-3))


def _near_kink(case: Case) -> bool:
    """gradcheck's finite differences are meaningless within 1e-6 of a clip boundary."""
    r = np.asarray(case.arrays["ratio"], dtype=np.float64)
    A = np.asarray(case.arrays["advantages"], dtype=np.float64)
    kw = case.kwargs
    lo, hi = float(kw["clip_low"]), float(kw.get("clip_high", kw["clip_low"]))
    kinks = [1 - lo, 1 + hi]
    if "dual_clip" in kw:
        kinks.append(float(kw["dual_clip"]))  # c·A = r·A at r = c
    near = np.zeros(r.shape, dtype=bool)
    for k in kinks:
        near |= np.abs(r - k) < 1e-5
    # the min switches branch where A changes sign: a finite difference of step 1e-7 in A
    # straddles that kink whenever |A| is below ~10 steps
    return bool(near.any() or np.any(np.abs(A) < 1e-6) or np.any(r < 1e-5))



def _near_cap(case: Case) -> bool:
    """min(r, cap) has kinks at r = 0 (the domain's edge) and r = cap."""
    return near(case.arrays["ratio"], [0, float(case.kwargs["cap"])])


def _clip_pinned() -> tuple[Case, ...]:
    """Ratios exactly on, and 1/64 to either side of, each threshold — 1 − ε_low, 1 + ε_high
    (asymmetric: ε_low = 1/4, ε_high = 1/2) and the dual-clip point c = 3 — for A = ±1: a
    threshold written at another place (ε_high for ε_low, c·A for A > 0) moves a value here."""
    points = []
    for th in (Fraction(3, 4), Fraction(3, 2), Fraction(3)):
        points += [th - Fraction(1, 64), th, th + Fraction(1, 64)]
    ratio = _vector(*points, *points)
    advantages = _vector(*[1] * len(points), *[-1] * len(points))
    return tuple(Case({"ratio": ratio, "advantages": advantages},
                      kwargs=dict(clip_low=Fraction(1, 4), clip_high=Fraction(1, 2), **extra))
                 for extra in ({}, {"dual_clip": Fraction(3)}))


def _cap_pinned() -> tuple[Case, ...]:
    """Ratios 0, exactly the cap c = 3/2, and 1/64 to either side of it."""
    c = Fraction(3, 2)
    return (Case({"ratio": _vector(0, c - Fraction(1, 64), c, c + Fraction(1, 64))},
                 kwargs={"cap": c}),)


def _k3_pinned() -> tuple[Case, ...]:
    """Small log-ratios: k3 ≈ (log r)²/2 must keep its digits (expm1, not exp − 1)."""
    return tuple(Case({"logp": _vector(0, Fraction(1, 64), Fraction(1, 1024)),
                       "ref_logp": _vector(Fraction(1, 64), 0, 0)}, kwargs={"kind": k})
                 for k in dv.KL_ESTIMATORS)


def _value_clip_pinned() -> tuple[Case, ...]:
    """V = 1, R = 0, V_old = 0, c = 1/2: the two clip forms differ (max(1, 1/4) vs 1/4)."""
    return tuple(Case({"values": _vector(1, 3), "returns": _vector(0, 0),
                       "old_values": _vector(0, 3)},
                      kwargs={"clip": Fraction(1, 2), "clip_form": form})
                 for form in ob.VALUE_CLIP_FORMS)


def _entropy_cases():
    return _distribution_cases(("p",))


ROWS = rows(
    array_row("importance_ratio", ra.importance_ratio, _ratio_cases, B.bound_ratio,
              differentiable=(0, 1), bad_inputs=(
                  bad("old_logp", T([0.0, 1.0]), T([0.0])),
                  bad("logp", [0.0], T([0.0])))),
    array_row("sequence_log_ratio", ra.sequence_log_ratio, _sequence_cases, B.bound_sequence,
              differentiable=(0, 1), pinned=_sequence_pinned(), bad_inputs=(
                  bad("old_logp", T([0.0, 1.0]), T([0.0])),
                  bad("mask", T([0.0, 1.0]), T([0.0, 0.0]), mask=T([2.0, 1.0])))),
    array_row("geometric_mean_ratio", ra.geometric_mean_ratio, _sequence_cases,
              B.bound_geometric, differentiable=(0, 1), pinned=_sequence_pinned(), bad_inputs=(
                  bad("old_logp", T([0.0, 1.0]), T([0.0])),
                  bad("mask", T([0.0, 1.0]), T([0.0, 0.0]), mask=T([0.5, 1.0])))),
    array_row("truncated_importance_weight", ra.truncated_importance_weight, _truncation_cases,
              B.bound_truncation, kink=_near_cap, pinned=_cap_pinned(), bad_inputs=(
                  bad("cap", T([1.0]), cap=0.0),
                  bad("cap", T([1.0]), cap=-1.0),
                  bad("ratio", T([-1.0]), cap=1.0))),
    array_row("kl_divergence", dv.kl_divergence, _distribution_cases, B.bound_kl,
              differentiable=(), bad_inputs=(
                  bad("q", T([0.5, 0.5]), T([0.5, 0.6])),
                  bad("p", T([1.5, -0.5]), T([0.5, 0.5])),
                  bad("q", T([0.5, 0.5]), T([1.0])))),
    array_row("entropy", dv.entropy, _entropy_cases, B.bound_entropy, differentiable=(),
              bad_inputs=(bad("p", T([0.5, 0.6])),)),
    array_row("entropy_from_logits", dv.entropy_from_logits, _logit_cases,
              B.bound_entropy_logits, bad_inputs=(bad("logits", T([0.0, nan])),)),
    array_row("kl_estimate", dv.kl_estimate, _kl_estimate_cases, B.bound_kl_estimate,
              differentiable=(0, 1), pinned=_k3_pinned(), bad_inputs=(
                  bad("kind", T([0.0]), T([0.0]), "k4"),
                  bad("ref_logp", T([0.0]), T([0.0, 1.0]), "k1"))),
    array_row("clipped_surrogate", ob.clipped_surrogate, _clip_cases, B.bound_clip,
              differentiable=(0, 1), kink=_near_kink, pinned=_clip_pinned(), bad_inputs=(
                  bad("clip_low", T([1.0]), T([1.0]), clip_low=-0.1),
                  bad("clip_high", T([1.0]), T([1.0]), clip_high=-0.1),
                  bad("dual_clip", T([1.0]), T([1.0]), dual_clip=0.5),
                  bad("advantages", T([1.0]), T([1.0, 2.0])),
                  bad("ratio", T([-1.0]), T([1.0])))),
    array_row("kl_penalized_surrogate", ob.kl_penalized_surrogate, _penalized_cases,
              B.bound_penalized, differentiable=(0, 1, 2), bad_inputs=(
                  bad("beta", T([1.0]), T([1.0]), T([0.0]), beta=-1.0),
                  bad("kl", T([1.0]), T([1.0]), T([0.0, 1.0]), beta=1.0))),
    array_row("value_loss", ob.value_loss, _value_cases, B.bound_value,
              pinned=_value_clip_pinned(), bad_inputs=(
                  bad("returns", T([1.0]), T([1.0, 2.0])),
                  bad("old_values", T([1.0]), T([1.0]), clip=0.2),
                  bad("clip", T([1.0]), T([1.0]), old_values=T([1.0]), clip=-0.2),
                  bad("clip_form", T([1.0]), T([1.0]), old_values=T([1.0]), clip=0.2,
                      clip_form="huber"))),
    array_row("policy_loss", ob.policy_loss, _policy_loss_cases, B.bound_policy_loss,
              kink=_near_policy_kink, pinned=_policy_loss_pinned(), reduces_batch=True,
              bad_inputs=(
                  bad("advantages", T([[0.0, 0.0]]), T([[0.0, 0.0]]), T([1.0, 2.0, 3.0]),
                      T([[1.0, 1.0]])),
                  bad("mask", T([[0.0]]), T([[0.0]]), T([1.0]), T([[2.0]])),
                  bad("mode", T([[0.0]]), T([[0.0]]), T([1.0]), T([[1.0]]), mode="sum"),
                  bad("clip_low", T([[0.0]]), T([[0.0]]), T([1.0]), T([[1.0]]),
                      clip_low=-0.5))),
    array_row("whiten", ob.whiten, _whiten_cases, B.bound_whiten, pinned=_WHITEN_PINNED,
              reduces_batch=True, bad_inputs=(
                  bad("mask", T([1.0, 2.0]), T([0.0, 0.0])),
                  bad("eps", T([1.0, 2.0]), eps=0.0))),
    array_row("aggregate_loss", ob.aggregate_loss, _aggregate_cases, B.bound_aggregate,
              pinned=_AGGREGATE_PINNED, reduces_batch=True, bad_inputs=(
                  bad("mode", T([[1.0]]), T([[1.0]]), "sum"),
                  bad("normalizer", T([[1.0]]), T([[1.0]]), "seq-mean-token-sum-norm"),
                  bad("mask", T([[1.0]]), T([[0.0]]), "token-mean"),
                  bad("per_step_loss", T([1.0]), T([1.0]), "token-mean"))),
    array_row("group_advantages", ob.group_advantages, _group_cases, B.bound_group,
              kink=_zero_spread, pinned=_GROUP_PINNED, bad_inputs=(
                  bad("G >= 2", T([[1.0]]), method="rloo"),
                  bad("method", T([1.0, 2.0]), method="ppo"),
                  bad("eps", T([1.0, 2.0]), method="grpo", eps=0.0))),
    # SPEC §7
    array_row("importance_weighted_kl_estimate", dv.importance_weighted_kl_estimate,
              _iw_kl_cases, B.bound_iw_kl, differentiable=(0, 1, 2), bad_inputs=(
                  bad("kind", T([0.0]), T([0.0]), T([0.0]), "k4"),
                  bad("old_logp", T([0.0]), T([0.0]), T([0.0, 1.0]), "k1"),
                  bad("old_logp", T([0.0]), T([0.0]), T([nan]), "k3"))),
    array_row("kl_shaped_rewards", ob.kl_shaped_rewards, _shaped_reward_cases,
              B.bound_shaped_rewards, differentiable=(0, 1, 2), bad_inputs=(
                  bad("beta", T([0.0]), T([0.0]), T([0.0]), beta=-1.0),
                  bad("kind", T([0.0]), T([0.0]), T([0.0]), beta=0.1, kind="k5"),
                  bad("ref_logp", T([0.0]), T([0.0]), T([inf]), beta=0.1),
                  bad("mask", T([0.0]), T([0.0]), T([0.0]), beta=0.1, mask=T([0.5])))),
    array_row("overlong_penalty", ob.overlong_penalty, _overlong_cases, B.bound_overlong,
              differentiable=(), pinned=_OVERLONG_PINNED, bad_inputs=(
                  bad("cache_length", T([3.0]), max_length=8, cache_length=0),
                  bad("max_length", T([3.0]), max_length=2, cache_length=4),
                  bad("lengths", T([-1.0]), max_length=8, cache_length=4))),
    # CISPO's value and its gradient differ by design (a stop-gradient): no gradcheck; its
    # own gradient check below
    array_row("cispo_surrogate", ob.cispo_surrogate, _cispo_cases, B.bound_cispo,
              differentiable=(), bad_inputs=(
                  bad("clip_low", T([0.0]), T([0.0]), T([1.0]), T([1.0]), clip_low=-0.2,
                      clip_high=0.2),
                  bad("advantages", T([0.0]), T([0.0]), T([1.0, 2.0]), T([1.0]),
                      clip_low=0.2, clip_high=0.2),
                  bad("logp", T([nan]), T([0.0]), T([1.0]), T([1.0]), clip_low=0.2,
                      clip_high=0.2))),
)
CHECKS = CheckList(check for row in ROWS.values() for check in array_checks(row))


# --- what is particular to one function: exact gradient facts, limits, zero spread ----------

@st.composite
def _boundary_clip_cases(draw):
    """Dyadic ratios ON and around the clip boundaries (exact in float64), with the clip range
    1 ± ε and the dual-clip point c also dyadic, so every comparison is decided exactly."""
    lo = draw(st.sampled_from([Fraction(1, 4), Fraction(1, 8), Fraction(0)]), label="clip_low")
    hi = draw(st.sampled_from([lo, Fraction(3, 8)]), label="clip_high")
    c = draw(st.sampled_from([None, Fraction(3), Fraction(5, 4)]), label="dual_clip")
    special = [1 - lo, 1 + hi, Fraction(1)] + ([c] if c else [])
    ratio = st.one_of(st.sampled_from(special), _grid(4).map(abs))
    a = draw(_arrays(("ratio", "advantages"), {"ratio": ratio, "advantages": _grid(4)}))
    kw = {"clip_low": lo, "clip_high": hi}
    if c is not None:
        kw["dual_clip"] = c
    return Case(a, kwargs=kw)


def _diagnose(*args: Any, **kw: Any) -> Any:
    from .mutants import diagnose  # (imported when a failure is diagnosed, as elsewhere)

    return diagnose(*args, **kw)


@CHECKS.register("clipped_surrogate", "gradient",
          "∂L/∂ratio by autograd = the exact case analysis: 0 where the clip is active, A "
          "elsewhere, ratios on the boundary included", requires=("gradients",))
def _clip_gradient(fn, ctx: Context) -> None:
    @ctx.settings()
    @given(case=_boundary_clip_cases())
    def prop(case):
        case = prepare(case, ROWS["clipped_surrogate"], ctx)
        if case is None:
            return
        args, kw = case.torch_args(torch.float64)
        r = args[0].clone().requires_grad_()
        fn(r, args[1], **kw).sum().backward()
        exact_args, exact_kw = case.exact_args(torch.float64)
        expected = exact_floats(ob.clipped_surrogate_ratio_gradient(*exact_args, **exact_kw))
        got = r.grad.numpy() if r.grad is not None else np.zeros(expected.shape)
        ctx.tracker.saw()
        if not np.array_equal(got, expected):
            idx = tuple(int(i) for i in np.argwhere(got != expected)[0])
            raise CheckFailure(
                f"clipped_surrogate: d/d ratio at {idx} is {got[idx]}, exact "
                f"{expected[idx]} (ratio {args[0].numpy()[idx]}, advantage "
                f"{args[1].numpy()[idx]}, {kw}){LIKELY}",
                pattern=changed("in the gradient d/d ratio: ", got, expected,
                                {"mask": np.ones(got.shape, bool)} if got.ndim else None),
                diagnosis=functools.partial(
                    _diagnose, "clipped_surrogate", _gradient_of(
                        ROWS["clipped_surrogate"], case.values(torch.float64), "ratio"), got,
                    np.zeros(got.shape), ctx, exact=expected))

    prop()


@CHECKS.register("policy_loss", "gradient",
          "∂L/∂logp by autograd = −w_t·r_t·g_t: w_t the exact aggregation weight of token t "
          "(the aggregate of the unit vector e_t), g_t the exact clip case analysis "
          "(0 where the clip is active); masked tokens get 0", requires=("gradients",))
def _policy_loss_gradient(fn, ctx: Context) -> None:
    spec = ROWS["policy_loss"]

    @ctx.settings()
    @given(case=spec.cases())
    def prop(case):
        case = prepare(case, spec, ctx)
        if case is None or _near_policy_kink(case):
            return
        values = case.values(torch.float64)
        got = logp_gradient(fn, spec, values)
        keep = case.flags["mask"]
        agg = {k: v for k, v in case.kwargs.items() if k in ("mode", "normalizer")}
        clip = {k: v for k, v in case.kwargs.items() if k in ("clip_low", "clip_high",
                                                             "dual_clip")}
        d = values["logp"].numpy() - values["old_logp"].numpy()
        r = np.where(keep, np.exp(np.where(keep, d, 0.0)), 0.0)
        A = case.arrays["advantages"]
        A = np.repeat(A[..., None], r.shape[-1], -1) if A.shape != r.shape else A
        expected = np.zeros(r.shape)
        for idx in zip(*np.nonzero(keep)):
            unit = np.zeros(r.shape, dtype=object)
            unit.fill(Fraction(0))
            unit[idx] = Fraction(1)
            w = ob.aggregate_loss(unit, keep, **agg)  # the loss is linear in each token's term
            g = ob.clipped_surrogate_ratio_gradient([Fraction(float(r[idx]))], [A[idx]],
                                                    **clip)[0]
            expected[idx] = -float(w) * float(r[idx]) * float(g)
        assert_logp_gradient("policy_loss", got, expected, case,
                              f"mode {agg['mode']}; masked tokens get 0", ctx,
                              rerun=_gradient_of(spec, values))

    with_examples(prop, spec, ctx)()


_LOG_R = sympy.Symbol("log_r", real=True)


def _estimator_derivative(kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """d k / d log r from the oracle's own formula, by SymPy (then ∂/∂logp = −that)."""
    k = dv._estimator(kind, _LOG_R) if kind != "k3" else sympy.exp(_LOG_R) - 1 - _LOG_R
    return sympy.lambdify(_LOG_R, sympy.diff(k, _LOG_R), "numpy")


@CHECKS.register("kl_estimate", "gradient",
          "∂k/∂logp and ∂k/∂ref_logp by autograd = SymPy's derivative of the definition",
          requires=("gradients",))
def _kl_estimate_gradient(fn, ctx: Context) -> None:
    @ctx.settings()
    @given(case=_kl_estimate_cases())
    def prop(case):
        case = prepare(case, ROWS["kl_estimate"], ctx)
        if case is None:
            return
        kind = case.kwargs["kind"]
        args, _ = case.torch_args(torch.float64)
        logp, ref = (a.clone().requires_grad_() for a in args)
        fn(logp, ref, kind).sum().backward()
        x = (args[1] - args[0]).numpy()
        dk = np.broadcast_to(_estimator_derivative(kind)(x), x.shape)
        # |x| ≤ 30: e^x − 1 to ≤ 4u relative, plus the rounding of x (u|x|·e^x)
        u = unit_roundoff(torch.float64)
        tol = 8 * u * (np.abs(dk) + np.abs(x) * np.exp(np.abs(x)) + 1)
        for got, sign, name in ((logp.grad, -1, "logp"), (ref.grad, 1, "ref_logp")):
            err = np.abs(got.numpy() - sign * dk)
            ctx.tracker.saw(float(np.max(err / tol)) if err.size else 0.0)
            if exceeds(err, tol):
                raise CheckFailure(f"kl_estimate({kind}): d/d{name} = {got.numpy().tolist()},"
                                   f" exact {(sign * dk).tolist()}{LIKELY}", pattern=changed(
                                       f"in the gradient d/d{name} ({kind}): ", got.numpy(),
                                       sign * dk, tol=tol), diagnosis=functools.partial(
                                       _diagnose, "kl_estimate", _gradient_of(
                                           ROWS["kl_estimate"], case.values(torch.float64),
                                           name), got.numpy(), tol, ctx, exact=sign * dk))

    prop()


@CHECKS.register("kl_estimate", "extremes",
                 "k3 ≥ 0 for every sample; finite log-probs up to ±1e3 never give NaN; k3 is "
                 "+inf only where the exact value exceeds the largest float", tier="robustness")
def _kl_extremes(fn, ctx: Context) -> None:
    values = st.one_of(st.floats(-1e3, 1e3, allow_subnormal=False),
                       st.sampled_from([-1e3, 1e3, 0.0, 1e-30, -1e-30, 700.0, 710.0, 89.0]))

    @ctx.settings()
    @given(logp=values, ref=values, dtype=st.sampled_from([torch.float32, torch.float64]))
    def prop(logp, ref, dtype):
        a = torch.tensor([logp], dtype=dtype)
        b = torch.tensor([ref], dtype=dtype)
        x = float(b - a)  # the log-ratio as the function sees it (the rounded difference)
        largest = math.log(torch.finfo(dtype).max)
        for kind in dv.KL_ESTIMATORS:
            k = fn(a, b, kind)
            value = float(k)
            ctx.tracker.saw()
            if math.isnan(value):
                raise CheckFailure(f"kl_estimate({kind}) is NaN for logp={logp}, ref={ref}")
            if kind == "k3" and value < 0:
                raise CheckFailure(f"k3 = {value} < 0 for logp={logp}, ref={ref}")
            if math.isinf(value) and not (kind == "k3" and x > largest - 1):
                raise CheckFailure(f"kl_estimate({kind}) = {value} for logp={logp}, "
                                   f"ref={ref}, whose exact value is representable")

    prop()


@CHECKS.register("importance_ratio", "extremes",
                 "log-probs up to ±1e3: inf only on overflow, 0 only on underflow, never NaN",
                 tier="robustness")
def _ratio_extremes(fn, ctx: Context) -> None:
    logps = st.one_of(st.floats(-1e3, 1e3, allow_subnormal=False),
                      st.sampled_from([-1e3, -999.0, 0.0, 999.0, 1e3]))

    @ctx.settings()
    @given(logp=logps, old=logps, dtype=st.sampled_from([torch.float32, torch.float64]))
    def prop(logp, old, dtype):
        a, b = torch.tensor([logp], dtype=dtype), torch.tensor([old], dtype=dtype)
        r = float(fn(a, b))
        x = float(a) - float(b)  # exact difference of what the function saw
        info = torch.finfo(dtype)
        ctx.tracker.saw()
        if math.isnan(r):
            raise CheckFailure(f"importance_ratio is NaN for logp={logp}, old_logp={old}")
        # exp(x) is representable (not inf) when x < log(max) − a margin for the rounding
        # of the difference (≤ u·(|logp| + |old|)), and not 0 when x > log(tiny) + margin.
        margin = 2 * info.eps * (abs(logp) + abs(old)) + 1e-3
        if math.isinf(r) and x < math.log(info.max) - margin:
            raise CheckFailure(f"importance_ratio({logp}, {old}) = inf, but exp({x}) is "
                               "representable")
        if r == 0 and x > math.log(info.tiny) + margin:
            raise CheckFailure(f"importance_ratio({logp}, {old}) = 0, but exp({x}) is "
                               "representable")

    prop()


@CHECKS.register("clipped_surrogate", "overflowed_ratio",
                 "a ratio that overflowed to inf gives the exact limit: clipped for A > 0, −inf "
                 "(or c·A) for A < 0, and 0 for A = 0 — never NaN", tier="robustness")
def _clip_inf(fn, ctx: Context) -> None:
    for dtype in (torch.float32, torch.float64):
        r = torch.full((3,), math.inf, dtype=dtype)
        A = torch.tensor([1.0, -1.0, 0.0], dtype=dtype)
        got = fn(r, A, clip_low=0.2).tolist()
        dual = fn(r, A, clip_low=0.2, dual_clip=3.0).tolist()
        clipped = float(torch.tensor(1.2, dtype=dtype))  # (1 + ε)·A, ε rounded to the dtype
        expected, expected_dual = [clipped, -math.inf, 0.0], [clipped, -3.0, 0.0]
        ctx.tracker.saw()
        if got != expected or dual != expected_dual:
            raise CheckFailure(f"clipped_surrogate(inf, {A.tolist()}) = {got} (dual clip: "
                               f"{dual}), expected {expected} ({expected_dual})")


# Constants that are not dyadic (0.9, 0.1, 0.7, 1/3 are not exact in binary) and group sizes
# whose float mean of G copies is not the constant itself: the zero-spread answer is exactly 0
# by definition, and a rounding error of the mean divided by (std + eps) is not small.
ZERO_SPREAD_CONSTANTS = (0.9, 0.1, 0.7, 1 / 3, -2.2, 123.456, 1e-3)
ZERO_SPREAD_SIZES = (1, 2, 3, 7, 30, 156)


def _zero_spread_dtypes(ctx: Context) -> tuple[torch.dtype, ...]:
    half = (torch.float16, torch.bfloat16) if ctx.capabilities.half else ()
    return (torch.float64, torch.float32) + half


def _exactly(name: str, got: Any, expected: torch.Tensor, what: str, ctx: Context, *,
             n: int, value: float, rerun: Callable[[Callable], Any] | None = None) -> None:
    """The result must be exactly ``expected``. A deviation is graded by its size as the value
    checks grade theirs: within n·u·max(|c|, 1) (u the dtype's unit roundoff, n the elements
    reduced, c the constant) it is a rounding residue — IMPRECISE, e.g. RLOO's
    (Σr − r)/(G − 1) of equal float64 rewards, 1e-16; beyond it the residue was amplified —
    WRONG, e.g. a float32 GRPO group whose mean's rounding ÷ (std + eps) gives −0.151."""
    out = output(got, name)
    ctx.tracker.saw()
    want = expected.double().numpy()
    if out.shape != want.shape:
        raise CheckFailure(f"{name}: {what}: returned shape {out.shape}, expected "
                           f"{want.shape}", tier="WRONG", counterexample=what)
    if np.array_equal(out, want):
        return
    dev = float(np.max(np.abs(np.nan_to_num(out - want, nan=np.inf))))
    residue = n * unit_roundoff(expected.dtype) * max(abs(value), 1.0)
    tier = "IMPRECISE" if dev <= residue else "WRONG"
    why = (f"a rounding residue (within n·u·max(|c|, 1) = {residue:.3g})" if tier == "IMPRECISE"
           else f"far beyond a rounding residue (n·u·max(|c|, 1) = {residue:.3g})")
    diagnosis = None
    if rerun is not None:  # which known mistake leaves this residue (``rerun(f)``: f's output)
        from .mutants import diagnose

        diagnosis = functools.partial(diagnose, name, rerun, out, np.full(out.shape, residue),
                                      ctx, exact=want, caught_by=f"{name}.zero_spread")
    raise CheckFailure(f"{name}: {what}: {tier}: expected exactly {want.ravel()[:1].tolist()} "
                       f"everywhere, got values off by up to {dev:.3g}, {why} (e.g. "
                       f"{out.ravel()[:3].tolist()}){LIKELY if diagnosis else ''}", tier=tier,
                       counterexample=what, diagnosis=diagnosis,
                       pattern=changed("where the exact answer is exactly 0: ", out, want))


def _call_group(r: torch.Tensor, method: str, fixed: dict[str, Any], f: Callable) -> Any:
    """A known mistake on the zero-spread input, with the options the function's layout fixes
    (TRL's eps = 1e-4): the residue it leaves depends on them."""
    return f(r.clone(), method=method, **fixed)


def _fixed(ctx: Context, *leave: str) -> dict[str, Any]:
    """The options the function supports one value of (``--only``, a layout), as floats."""
    return {k: (float(v[0]) if isinstance(v[0], Fraction) else v[0])
            for k, v in (ctx.only or {}).items() if len(v) == 1 and k not in leave
            and v[0] is not None}


@CHECKS.register("group_advantages", "zero_spread",
          "a group of equal rewards (non-dyadic: 0.9, 0.1, 0.7, …; G up to 156) gets "
          "advantages exactly 0 under every method, in every dtype")
def _group_zero_spread(fn, ctx: Context) -> None:
    methods = (ctx.only or {}).get("method", ob.GROUP_METHODS)
    for dtype in _zero_spread_dtypes(ctx):
        for value in ZERO_SPREAD_CONSTANTS:
            for G in ZERO_SPREAD_SIZES:
                r = torch.full((2, G), value, dtype=dtype)
                for method in methods:
                    # (zero_spread: a layout may define a group of one otherwise, as verl)
                    if method == "rloo" and G < 2 or ctx.accepts is not None and not \
                            ctx.accepts("group_advantages", {"rewards": r, "method": method,
                                                             "zero_spread": True}):
                        continue
                    n = 2 * G if method in ob.BATCH_GROUP_METHODS else G
                    _exactly("group_advantages", fn(r.clone(), method=method),
                             torch.zeros_like(r), f"method={method!r}, rewards = "
                             f"torch.full((2, {G}), {value}, dtype={dtype})", ctx, n=n,
                             value=value, rerun=functools.partial(_call_group, r, method,
                                                                  _fixed(ctx, "method")))


@CHECKS.register("whiten", "zero_spread",
          "a constant x (non-dyadic: 0.9, 0.1, 0.7, …; up to 156 elements, with and without "
          "a mask) whitens to exactly 0, or exactly the constant without shift_mean")
def _whiten_zero_spread(fn, ctx: Context) -> None:
    for dtype in _zero_spread_dtypes(ctx):
        for value in ZERO_SPREAD_CONSTANTS:
            for n in ZERO_SPREAD_SIZES:
                x = torch.full((n,), value, dtype=dtype)
                mask = torch.arange(n) % 3 != 1  # keeps element 0: never empty
                for m in (None, mask):
                    if ctx.accepts is not None and not ctx.accepts("whiten", {"x": x,
                                                                              "mask": m}):
                        continue
                    keep = torch.ones(n, dtype=torch.bool) if m is None else m
                    what = (f"x = torch.full(({n},), {value}, dtype={dtype})"
                            + (", every third element masked" if m is not None else ""))
                    _exactly("whiten", fn(x.clone(), m), torch.zeros_like(x), what, ctx, n=n,
                             value=value)
                    _exactly("whiten", fn(x.clone(), m, shift_mean=False),
                             torch.where(keep, x, torch.zeros_like(x)),
                             what + ", shift_mean=False", ctx, n=n, value=value)


# Thresholds target/tolerance = d and target·tolerance = d·tolerance² are dyadic (d and the
# tolerance dyadic, target = d·tolerance): float division and product give them exactly, so a
# KL on a threshold is on it for the function too.
_KL_LOW = (Fraction(1, 4), Fraction(1, 2), Fraction(3, 64), Fraction(5, 8))  # d = target/tol
_KL_TOLERANCES = (Fraction(3, 2), Fraction(5, 4), Fraction(2), Fraction(3), Fraction(1))
_KL_FACTORS = (Fraction(2), Fraction(3, 2))


def _kl_walk_points(target: Fraction, tol: Fraction) -> list[Fraction]:
    """Every threshold, exactly and 1/256 of it to either side, then a sweep of 48 evenly
    spaced KLs over [0, 2·target·tolerance]: a threshold written at any other place than
    target/tolerance and target·tolerance (e.g. target·(2 − tolerance), or ≤ for <) moves the
    result at one of them."""
    points = []
    for th in (target / tol, target * tol):
        points += [th, th * Fraction(255, 256), th * Fraction(257, 256)]
    return points + [2 * target * tol * k / 48 for k in range(49)]


def _kl_walk_examples(prop):
    """The sweeps for the PPO paper's own constants (tolerance 1.5, factor 2) and for
    tolerance 2, tried on every run before the random walks."""
    for d, tol in ((Fraction(1, 2), Fraction(3, 2)), (Fraction(1, 4), Fraction(2))):
        prop = example(walk=(d * tol, tol, _kl_walk_points(d * tol, tol)), beta=Fraction(1),
                       factor=Fraction(2))(prop)
    return prop


@st.composite
def _kl_walk(draw):
    """(target, tolerance, KLs): the thresholds drawn, the KLs near them or anywhere."""
    d = draw(st.sampled_from(_KL_LOW), label="target / tolerance")
    tol = draw(st.sampled_from(_KL_TOLERANCES), label="tolerance")
    target = d * tol
    near = st.sampled_from(_kl_walk_points(target, tol))
    anywhere = st.integers(0, 256).map(lambda k: 2 * target * tol * k / 128)
    kls = draw(st.lists(st.one_of(near, anywhere), min_size=1, max_size=12), label="kls")
    return target, tol, kls


@CHECKS.register("adaptive_kl_coefficient", "walk",
          "a sequence of observed KLs, with target, tolerance and factor drawn, every threshold "
          "hit exactly and 1/256 to either side: every step equals the oracle")
def _adaptive_walk(fn, ctx: Context) -> None:
    @ctx.settings()
    @given(walk=_kl_walk(), beta=st.sampled_from([Fraction(1), Fraction(1, 8), Fraction(0)]),
           factor=st.sampled_from(_KL_FACTORS))
    def prop(walk, beta, factor):
        target, tol, kls = walk
        b_impl, b_exact = float(beta), beta
        for step, kl in enumerate(kls):
            kl = Fraction(float(kl))  # the oracle on exactly the numbers the function sees:
            # this kl, and its own previous β (a float; carrying the exact β instead would
            # demand that five roundings of β/1.5 compound to the correctly rounded (2/3)^5)
            b_seen = b_exact if step == 0 else Fraction(b_impl)
            b_impl = fn(b_impl, float(kl), target=float(target), tolerance=float(tol),
                        factor=float(factor))
            b_exact = ob.adaptive_kl_coefficient(b_seen, kl, target=target, tolerance=tol,
                                                 factor=factor)
            ctx.tracker.saw()
            if b_impl != float(b_exact):
                raise CheckFailure(f"adaptive_kl_coefficient: step {step} (kl = {kl}, "
                                   f"target {target}, tolerance {tol}, factor {factor}) gave "
                                   f"beta = {b_impl}, exact {b_exact}; thresholds "
                                   f"{target / tol} and {target * tol}; walk {kls}",
                                   tier="WRONG")

    _kl_walk_examples(prop)()


CHECKS.append(logp_gradient_check(
    ROWS["cispo_surrogate"], "∂L/∂logp by autograd = clip(r, 1 − ε_low, 1 + ε_high)·A "
    "exactly where unmasked (the clipped weight is stop-gradiented), 0 where masked; nonzero "
    "where PPO-clip's gradient is 0", ob.cispo_surrogate_gradient,
    "= clip(r)·A: the weight must be detached"))
CHECKS.append(bad_input_check("adaptive_kl_coefficient", (
    bad("target", 1.0, 0.1, target=0.0),
    bad("tolerance", 1.0, 0.1, target=0.1, tolerance=0.5),
    bad("factor", 1.0, 0.1, target=0.1, factor=0.5),
    bad("kl", 1.0, -0.1, target=0.1))))
