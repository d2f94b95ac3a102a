"""Checks for the functions of SPEC §3–4: ratios, divergences, KL estimators, objectives,
value loss, whitening, aggregation, group advantages.

Each value check feeds the function under test exact, float-representable inputs, runs the
oracle on exactly those numbers, and compares within a forward-error bound derived for that
function (written next to it, in units of the dtype's unit roundoff u). Elementwise
functions use a few roundings per operation; ``exp``/``log``/``expm1``/``rsqrt`` are allowed
4 ulps (library accuracy); reductions of n terms n roundings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
from . import CheckFailure, Context, register
from ._common import assert_hygienic, exceeds, expect_named_error
from .compare import compare, exact_floats
from .cases import (_AGGREGATE_PINNED, _GROUP_PINNED, _WHITEN_PINNED, Case, _arrays,
                    _clip_cases, _distribution_cases, _grid, _kl_estimate_cases,
                    _sequence_pinned, _vector, _aggregate_cases, _group_cases, _logit_cases,
                    _penalized_cases, _ratio_cases, _sequence_cases, _truncation_cases,
                    _value_cases, _whiten_cases, _policy_loss_cases, _policy_loss_pinned,
                    _iw_kl_cases, _shaped_reward_cases, _overlong_cases, _OVERLONG_PINNED,
                    _cispo_cases)
from .specs import SPECS, FunctionSpec


@dataclass(frozen=True)
class ArrayFunction:
    name: str
    oracle: Callable[..., Any]
    cases: Callable[[], st.SearchStrategy]  # noqa: E501 (the input strategy)
    bound: Callable[[Case, list, np.ndarray, float], np.ndarray]
    differentiable: tuple[int, ...] = (0,)
    kink: Callable[[Case], bool] | None = None  # gradcheck skips inputs at a kink
    pinned: tuple[Case, ...] = ()  # inputs every value check tries first

    @property
    def spec(self) -> FunctionSpec:
        return SPECS[self.name]

    def call(self, fn: Callable, values: dict[str, Any]) -> Any:
        return joined(self.spec.call(fn, values))


def joined(out: Any) -> Any:
    """A function of several outputs (V-trace's ``(vs, pg_advantages)``) as one array with
    the outputs on a new last axis, so that every check compares one array; anything else
    as it is."""
    if isinstance(out, tuple) and out and all(isinstance(x, torch.Tensor) for x in out):
        try:
            return torch.stack(out, dim=-1)
        except RuntimeError:
            return out
    if isinstance(out, tuple) and out and all(isinstance(x, np.ndarray) for x in out):
        return np.stack(out, axis=-1)
    return out


FUNCTIONS: dict[str, ArrayFunction] = {}


def _add(name, oracle, cases, bound, differentiable=(0,), kink=None, pinned=()):
    assert SPECS[name].oracle is oracle
    FUNCTIONS[name] = ArrayFunction(name, oracle, cases, bound, differentiable, kink, pinned)


_add("importance_ratio", ra.importance_ratio, _ratio_cases, B.bound_ratio, differentiable=(0, 1))
_add("sequence_log_ratio", ra.sequence_log_ratio, _sequence_cases, B.bound_sequence,
     differentiable=(0, 1), pinned=_sequence_pinned())
_add("geometric_mean_ratio", ra.geometric_mean_ratio, _sequence_cases, B.bound_geometric,
     differentiable=(0, 1), pinned=_sequence_pinned())
_add("truncated_importance_weight", ra.truncated_importance_weight, _truncation_cases,
     B.bound_truncation, kink=lambda case: _near(case.arrays["ratio"],
                                                [0, float(case.kwargs["cap"])]))
_add("kl_divergence", dv.kl_divergence, _distribution_cases, B.bound_kl, differentiable=())
_add("entropy", dv.entropy, lambda: _distribution_cases(("p",)), B.bound_entropy,
     differentiable=())
_add("entropy_from_logits", dv.entropy_from_logits, _logit_cases, B.bound_entropy_logits)
# small log-ratios: k3 ≈ (log r)²/2 must keep its digits (expm1, not exp − 1)
_add("kl_estimate", dv.kl_estimate, _kl_estimate_cases, B.bound_kl_estimate,
     differentiable=(0, 1),
     pinned=tuple(Case({"logp": _vector(0, Fraction(1, 64), Fraction(1, 1024)),
                        "ref_logp": _vector(Fraction(1, 64), 0, 0)}, kwargs={"kind": k})
                  for k in dv.KL_ESTIMATORS))
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


_add("clipped_surrogate", ob.clipped_surrogate, _clip_cases, B.bound_clip,
     differentiable=(0, 1), kink=lambda case: _near_kink(case), pinned=_clip_pinned())
_add("kl_penalized_surrogate", ob.kl_penalized_surrogate, _penalized_cases, B.bound_penalized,
     differentiable=(0, 1, 2))
# V = 1, R = 0, V_old = 0, c = 1/2: the two clip forms differ (max(1, 1/4) vs 1/4)
_add("value_loss", ob.value_loss, _value_cases, B.bound_value,
     pinned=tuple(Case({"values": _vector(1, 3), "returns": _vector(0, 0),
                        "old_values": _vector(0, 3)},
                       kwargs={"clip": Fraction(1, 2), "clip_form": form})
                  for form in ob.VALUE_CLIP_FORMS))
_add("policy_loss", ob.policy_loss, _policy_loss_cases, B.bound_policy_loss,
     kink=lambda case: _near_policy_kink(case), pinned=_policy_loss_pinned())
_add("whiten", ob.whiten, _whiten_cases, B.bound_whiten, pinned=_WHITEN_PINNED)
_add("aggregate_loss", ob.aggregate_loss, _aggregate_cases, B.bound_aggregate,
     pinned=_AGGREGATE_PINNED)
_add("group_advantages", ob.group_advantages, _group_cases, B.bound_group,
     kink=lambda case: _zero_spread(case), pinned=_GROUP_PINNED)


# SPEC §7
_add("importance_weighted_kl_estimate", dv.importance_weighted_kl_estimate, _iw_kl_cases,
     B.bound_iw_kl, differentiable=(0, 1, 2))
_add("kl_shaped_rewards", ob.kl_shaped_rewards, _shaped_reward_cases, B.bound_shaped_rewards,
     differentiable=(0, 1, 2))
_add("overlong_penalty", ob.overlong_penalty, _overlong_cases, B.bound_overlong,
     differentiable=(), pinned=_OVERLONG_PINNED)
# CISPO's value and its gradient differ by design (a stop-gradient): no gradcheck; its own
# gradient check below
_add("cispo_surrogate", ob.cispo_surrogate, _cispo_cases, B.bound_cispo, differentiable=())


def _prepare(case: Case, spec: ArrayFunction, ctx: Context) -> Case | None:
    """The case with its options restricted to what the function supports (``ctx.only``:
    ``--only`` or a layout), or None when the function's layout cannot express it."""
    if ctx.only:
        kw = dict(case.kwargs)
        for key, allowed in ctx.only.items():
            if kw.get(key) in allowed:
                continue
            if allowed[0] is None:
                kw.pop(key, None)
            else:
                kw[key] = allowed[0] if not isinstance(allowed[0], float) else Fraction(
                    allowed[0])
        if "mode" in kw:  # options that go with one mode: the normalizer, MIS's low
            if kw["mode"] == "seq-mean-token-sum-norm":
                kw.setdefault("normalizer", Fraction(4))
            else:
                kw.pop("normalizer", None)
            if kw["mode"] != "mask":
                kw.pop("low", None)
        case = Case(case.arrays, kw, case.flags)
    case = _declared(case, ctx.capabilities)
    if ctx.accepts is not None and not ctx.accepts(spec.name, case.values(torch.float64)):
        ctx.tracker.skip(f"the {ctx.layout or 'declared'} layout cannot express the input")
        return None
    return case


def _first_case(spec: ArrayFunction) -> Case:
    """A valid input of ``spec``'s kind, the same on every run: its first pinned input, else
    the first example its strategy draws (derandomized)."""
    if spec.pinned:
        return spec.pinned[0]
    from hypothesis import given

    from .profiles import settings_for

    drawn: list[Case] = []

    @settings_for("quick", max_examples=1)
    @given(case=spec.cases())
    def grab(case):
        drawn.append(case)

    grab()
    return drawn[0]


def option_domain_error(name: str, only: dict[str, tuple[Any, ...]]) -> str | None:
    """Why an ``--only`` value lies outside refmath's own oracle's domain (the oracle rejects
    an input it accepts with the option left as drawn), or None: found before any example,
    from the oracle's own validation, not from a second table of domains."""
    spec = FUNCTIONS[name]
    base = _first_case(spec)
    for key, values in only.items():
        for value in values:
            case = _prepare(base, spec, Context(only={key: (value,)}))
            try:
                spec.call(spec.oracle, case.exact_values(torch.float64))
            except (ValueError, TypeError) as err:
                return f"{key}={value!r} is outside the domain of {name}: {err}"
    return None


def honours_only(name: str) -> bool:
    """Whether ``name``'s checks draw their options through :func:`_prepare` (``--only``)."""
    return name in FUNCTIONS


def _declared(case: Case, caps) -> Case:
    """The case within what the function declares it supports (per-step families, SPEC §6):
    no mask, no truncation, exactly [B, T], consistent next_values, as declared."""
    arrays, flags = dict(case.arrays), dict(case.flags)
    if "mask" in flags and not caps.mask:
        flags.pop("mask")
    if "truncated" in flags and not caps.truncated:  # not passed, as for SPEC §2
        flags.pop("truncated")
    first = np.asarray(next(iter(arrays.values())))
    if not caps.batch and first.ndim != 2:  # exactly [B, T]: the per-step arrays folded
        T = first.shape[-1] if first.ndim else 1
        def fold(v):  # per step [..., T] → [B, T]; per sequence [...] → [B]
            if np.shape(v) == first.shape:
                return np.asarray(v).reshape(-1, T)
            return np.asarray(v).reshape(-1) if np.shape(v) == first.shape[:-1] else v

        arrays = {k: fold(v) for k, v in arrays.items()}
        flags = {k: fold(v) for k, v in flags.items()}
    if not caps.inconsistent_values and "next_values" in arrays and "terminated" in flags:
        from ..strategies import _consistent_next_values

        arrays["next_values"] = _consistent_next_values(
            arrays["values"], arrays["next_values"], flags["terminated"],
            flags.get("truncated", np.zeros_like(flags["terminated"])), flags.get("mask"))
    if arrays is case.arrays and flags == case.flags:
        return case
    return Case(arrays, dict(case.kwargs), flags)


def _output(out: Any, name: str) -> np.ndarray:
    if not isinstance(out, torch.Tensor):
        raise CheckFailure(f"{name} returned {type(out).__name__}, not a torch.Tensor",
                           tier="WRONG")
    return out.detach().cpu().double().numpy()


def _with_examples(prop, spec: ArrayFunction, ctx: Context):
    """The pinned inputs, then the counterexamples earlier checks of this run found."""
    for case in spec.pinned:
        prop = example(case=case)(prop)
    for known in ctx.examples_for(spec.name, {"case"}):
        prop = example(**known)(prop)
    return prop


_MODE_NOTES = {  # how each aggregation mode treats padding and fully masked rows (SPEC §4)
    "token-mean": "token-mean: Σ over response tokens ÷ their count in the whole batch",
    "seq-mean-token-mean": "seq-mean-token-mean: mean over rows with a response token of each "
                           "row's token mean; fully masked rows left out",
    "seq-mean-token-sum": "seq-mean-token-sum: mean over rows with a response token of each "
                          "row's token sum; fully masked rows left out",
    "seq-mean-token-sum-norm": "seq-mean-token-sum-norm: the mean of row sums over rows with a "
                               "response token, ÷ normalizer; fully masked rows left out",
}


def _value_check(name: str, dtype: torch.dtype):
    spec = FUNCTIONS[name]
    half = str(dtype).replace("torch.", "") in B.HALF_DTYPES

    def run(fn, ctx: Context) -> None:
        # half precision is computed in float32 (SPEC §1): the float32 bound, rounded once
        u = unit_roundoff(torch.float32 if half else dtype)

        # half: the float32 path's search breadth is the float32 check's; 20 examples here
        @ctx.settings(20 if half else None)
        @given(case=spec.cases())
        def prop(case):
            case = _prepare(case, spec, ctx)
            if case is None:
                return
            floats = case.floats(dtype)
            if half and not all(np.isfinite(f).all() for f in floats):
                # an input beyond the half dtype's range: not this check's question
                ctx.tracker.skip(f"an input beyond {dtype}'s range")
                return
            # the exact answer from the inputs BEFORE the call (a function may modify them)
            try:
                exact = exact_floats(spec.call(spec.oracle, case.exact_values(dtype)))
            except ValueError:
                if half:  # rounded to 8 or 11 bits, a distribution may no longer sum to 1
                    return
                raise
            bound = spec.bound(case, floats, exact, u)
            shown = case.values(dtype)
            got = _output(spec.call(fn, case.values(dtype)), name)
            if half:
                exact = B.expected_with_overflow(exact, bound, got, dtype)
                bound = B.rounded_once(bound, exact, dtype)
            note = f" [{_MODE_NOTES[case.kwargs['mode']]}]" if name == "policy_loss" else ""
            compare(spec.spec, got, exact, bound, ctx, f"({dtype}){note}", inputs=repr(case),
                    values=shown, rerun=lambda f: spec.call(f, case.values(dtype)),
                    example={"case": case})

        _with_examples(prop, spec, ctx)()

    return run


def _hygiene(name: str):
    spec = FUNCTIONS[name]

    def run(fn, ctx: Context) -> None:
        @ctx.settings(15)
        @given(case=spec.cases())
        def prop(case):
            case = _prepare(case, spec, ctx)
            if case is None:
                return
            for dtype in (torch.float32, torch.float64):
                inputs = case.values(dtype)
                assert_hygienic(name, lambda: spec.call(fn, inputs), inputs, dtype)
            ctx.tracker.saw()

        prop()

    return run


def _with_a_hole(case: Case) -> Case | None:
    """The case with at least one masked element (the last one masked if none was), or None
    when masking it would leave nothing (a single element)."""
    arrays = case.arrays
    shape = next(iter(arrays.values())).shape
    mask = case.flags.get("mask", np.ones(shape, dtype=bool)).copy()
    if mask.all():
        if mask.size < 2:
            return None
        mask.flat[-1] = False
    return Case(arrays, dict(case.kwargs), dict(case.flags, mask=mask))


_POISON = (math.nan, math.inf, -math.inf)


def _ignored_numbers(name: str):
    """NaN and ±inf at masked positions of every array must not change the result (a masked
    number is never read: selected out, not multiplied by 0)."""
    spec = FUNCTIONS[name]

    def run(fn, ctx: Context) -> None:
        @ctx.settings(20)
        @given(case=spec.cases())
        def prop(case):
            case = _prepare(case, spec, ctx)
            if case is None:
                return
            case = _with_a_hole(case)
            if case is None:
                ctx.tracker.skip("a single element: nothing to mask")
                return
            hole = ~torch.tensor(case.flags["mask"])

            def dirty() -> dict[str, Any]:  # a fresh poisoned copy for every call
                values = case.values(torch.float64)
                for k, a in enumerate(case.arrays):
                    if tuple(values[a].shape) == tuple(hole.shape):  # (not per-sequence)
                        values[a] = torch.where(hole, _POISON[k % 3], values[a])
                return values

            expected = _output(spec.call(fn, case.values(torch.float64)), name)
            got = _output(spec.call(fn, dirty()), name)
            ctx.tracker.saw()
            if not np.array_equal(got, expected, equal_nan=True):
                from .mutants import diagnose

                causes = [m.name for m in diagnose(name, lambda f: spec.call(f, dirty()),
                                                   got, np.zeros(got.shape), ctx)]
                raise CheckFailure(
                    f"{name}: NaN/inf at masked positions changed the result: "
                    f"{got.tolist()} vs {expected.tolist()} (a masked number multiplied by 0 "
                    f"instead of selected out?)\n  inputs: {case!r}"
                    + ("\n  likely cause   matches known mistake "
                       + ", ".join(f"'{c}'" for c in causes)
                       if causes else ""), tier="WRONG", counterexample=repr(case),
                    causes=causes)

        _with_examples(prop, spec, ctx)()

    return run


# global reductions (split_aggregate_loss: SPEC §7, registered in refmath/checks/lm.py)
ROW_WISE_EXCEPT = ("whiten", "aggregate_loss", "adaptive_kl_coefficient", "policy_loss",
                   "split_aggregate_loss")


def _row(case: Case, i: int) -> Case:
    return Case({k: np.asarray(v[i], dtype=v.dtype) for k, v in case.arrays.items()},
                dict(case.kwargs), {k: np.asarray(v[i]) for k, v in case.flags.items()})


def _batch_consistency(name: str):
    """Row i of a batch equals row i alone (functions of the last axis, or elementwise)."""
    spec = FUNCTIONS[name]

    def run(fn, ctx: Context) -> None:
        u = unit_roundoff(torch.float64)

        @ctx.settings(15)
        @given(case=spec.cases())
        def prop(case):
            case = _prepare(case, spec, ctx)
            if case is None:
                return
            if next(iter(case.arrays.values())).ndim < 2:
                ctx.tracker.skip("a single row: no batch to compare with")
                return
            if case.kwargs.get("method") in ob.BATCH_GROUP_METHODS:
                ctx.tracker.skip("a statistic over the whole batch: rows depend on each other")
                return
            exact = exact_floats(spec.call(spec.oracle, case.exact_values(torch.float64)))
            bound = np.broadcast_to(spec.bound(case, case.floats(torch.float64), exact, u),
                                    exact.shape)
            whole = _output(spec.call(fn, case.values(torch.float64)), name)
            lift = not ctx.capabilities.batch  # exactly [B, T]: row i as a batch of one
            for i in range(whole.shape[0]):
                row = _row(case, i)
                if lift:
                    row = Case({k: v[None] for k, v in row.arrays.items()}, dict(row.kwargs),
                               {k: v[None] for k, v in row.flags.items()})
                alone = _output(spec.call(fn, row.values(torch.float64)), name)
                alone = alone[0] if lift else alone
                ctx.tracker.saw()
                if alone.shape != whole[i].shape:
                    raise CheckFailure(f"{name}: row {i} alone has shape {alone.shape}, in the "
                                       f"batch {whole[i].shape}", tier="WRONG")
                with np.errstate(invalid="ignore"):
                    same = ((np.abs(whole[i] - alone) <= 2 * bound[i] + 1e-300)
                            | (whole[i] == alone) | (np.isnan(alone) & np.isnan(whole[i])))
                if not np.all(same):
                    raise CheckFailure(
                        f"{name}: row {i} of a batch differs from the same row alone: "
                        f"{whole[i].tolist()} vs {alone.tolist()}\n  inputs: {case!r}",
                        tier="WRONG", counterexample=repr(case))

        _with_examples(prop, spec, ctx)()

    return run


def _gradcheck(name: str):
    spec = FUNCTIONS[name]

    def run(fn, ctx: Context) -> None:
        @ctx.settings(10)
        @given(case=spec.cases())
        def prop(case):
            case = _prepare(case, spec, ctx)
            if case is None:
                return
            args, kw = case.torch_args(torch.float64)
            if spec.kink is not None and spec.kink(case):
                ctx.tracker.skip("at a kink, where finite differences mean nothing")
                return
            wrt = [i for i in spec.differentiable]
            for i in wrt:
                args[i] = args[i].clone().requires_grad_()

            def f(*xs):
                full = list(args)
                for i, x in zip(wrt, xs):
                    full[i] = x
                return spec.call(fn, dict(zip(case.arrays, full), **kw))

            torch.autograd.gradcheck(f, tuple(args[i] for i in wrt), eps=1e-7, atol=1e-6,
                                     rtol=1e-5)
            ctx.tracker.saw()

        prop()

    return run


def _near_policy_kink(case: Case) -> bool:
    """The policy loss's kinks: ratios at the clip boundaries (and the dual-clip point), and
    A = 0 (the min switches branch there)."""
    lp = np.asarray(case.arrays["logp"], dtype=np.float64)
    r = np.exp(lp - np.asarray(case.arrays["old_logp"], dtype=np.float64))
    A = np.asarray(case.arrays["advantages"], dtype=np.float64)
    kw = case.kwargs
    lo, hi = float(kw["clip_low"]), float(kw.get("clip_high") or kw["clip_low"])
    points = [1 - lo, 1 + hi] + ([float(kw["dual_clip"])] if kw.get("dual_clip") else [])
    return _near(r, points, 1e-4) or bool(np.any(np.abs(A) < 1e-6))


def _near(x: Any, points: list[float], tol: float = 1e-5) -> bool:
    x = np.asarray(x, dtype=np.float64)
    return any(bool(np.any(np.abs(x - p) < tol)) for p in points)


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


def register_array_checks(name: str) -> None:
    """The value, hygiene, batch, ignored-numbers and gradient checks of one function of
    :data:`FUNCTIONS` (SPEC §3–4, and the off-policy returns of §6)."""
    register(name, "float64", "exact inputs, float64: within the derived bound of the oracle")(
        _value_check(name, torch.float64))
    register(name, "float32", "exact inputs, float32: within the derived bound of the oracle")(
        _value_check(name, torch.float32))
    for half in (torch.float16, torch.bfloat16):
        register(name, str(half).replace("torch.", ""),
                 "exact inputs rounded to the half dtype: within the float32 bound plus one "
                 "final rounding (SPEC §1)", requires=("half",))(_value_check(name, half))
    register(name, "hygiene", "inputs untouched; dtype kept; deterministic")(_hygiene(name))
    if name not in ROW_WISE_EXCEPT:
        register(name, "batch_consistency", "row i of a batch equals row i alone")(
            _batch_consistency(name))
    if SPECS[name].has("mask"):
        register(name, "ignored_numbers", "NaN/inf at masked positions do not leak",
                 requires=("mask",))(_ignored_numbers(name))
    if FUNCTIONS[name].differentiable:
        register(name, "gradcheck", "torch.autograd.gradcheck in float64",
                 requires=("gradients",))(_gradcheck(name))


for _name in list(FUNCTIONS):
    register_array_checks(_name)


# --- exact gradient facts and special behaviour -----------------------------------------------

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


@register("clipped_surrogate", "gradient",
          "∂L/∂ratio by autograd = the exact case analysis: 0 where the clip is active, A "
          "elsewhere, ratios on the boundary included", requires=("gradients",))
def _clip_gradient(fn, ctx: Context) -> None:
    @ctx.settings()
    @given(case=_boundary_clip_cases())
    def prop(case):
        case = _prepare(case, FUNCTIONS["clipped_surrogate"], ctx)
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
            idx = np.argwhere(got != expected)[0]
            raise CheckFailure(
                f"clipped_surrogate: d/d ratio at {tuple(idx)} is {got[tuple(idx)]}, exact "
                f"{expected[tuple(idx)]} (ratio {args[0].numpy()[tuple(idx)]}, advantage "
                f"{args[1].numpy()[tuple(idx)]}, {kw})")

    prop()


def _logp_gradient(fn, spec: ArrayFunction, values: dict[str, Any]) -> np.ndarray:
    """Autograd's ∂(Σ output)/∂logp of ``fn`` on ``values`` (0 where no gradient flows)."""
    logp = values["logp"].clone().requires_grad_()
    out = spec.call(fn, dict(values, logp=logp))
    grad = (torch.autograd.grad(out.sum(), logp, allow_unused=True)[0]
            if isinstance(out, torch.Tensor) and out.requires_grad else None)
    return grad.numpy() if grad is not None else np.zeros(tuple(logp.shape))


def _assert_logp_gradient(name: str, got: np.ndarray, expected: np.ndarray, case: Case,
                          what: str, ctx: Context) -> None:
    """Autograd against the exact gradient, 16 float64 ulps relative (exp, a clip bound, a
    product or two per element)."""
    tol = 16 * 2.0**-53 * (np.abs(expected) + 1e-300)
    ctx.tracker.saw()
    if exceeds(np.abs(got - expected), tol):
        i = tuple(np.argwhere(~(np.abs(got - expected) <= tol))[0])
        raise CheckFailure(f"{name}: dL/dlogp at {i} is {got[i]!r}, exact {expected[i]!r} "
                           f"({what})\n  inputs: {case!r}", tier="WRONG",
                           counterexample=repr(case))


@register("policy_loss", "gradient",
          "∂L/∂logp by autograd = −w_t·r_t·g_t: w_t the exact aggregation weight of token t "
          "(the aggregate of the unit vector e_t), g_t the exact clip case analysis "
          "(0 where the clip is active); masked tokens get 0", requires=("gradients",))
def _policy_loss_gradient(fn, ctx: Context) -> None:
    spec = FUNCTIONS["policy_loss"]

    @ctx.settings()
    @given(case=spec.cases())
    def prop(case):
        case = _prepare(case, spec, ctx)
        if case is None or _near_policy_kink(case):
            return
        values = case.values(torch.float64)
        got = _logp_gradient(fn, spec, values)
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
        _assert_logp_gradient("policy_loss", got, expected, case,
                              f"mode {agg['mode']}; masked tokens get 0", ctx)

    _with_examples(prop, spec, ctx)()


_LOG_R = sympy.Symbol("log_r", real=True)


def _estimator_derivative(kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """d k / d log r from the oracle's own formula, by SymPy (then ∂/∂logp = −that)."""
    k = dv._estimator(kind, _LOG_R) if kind != "k3" else sympy.exp(_LOG_R) - 1 - _LOG_R
    return sympy.lambdify(_LOG_R, sympy.diff(k, _LOG_R), "numpy")


@register("kl_estimate", "gradient",
          "∂k/∂logp and ∂k/∂ref_logp by autograd = SymPy's derivative of the definition",
          requires=("gradients",))
def _kl_estimate_gradient(fn, ctx: Context) -> None:
    @ctx.settings()
    @given(case=_kl_estimate_cases())
    def prop(case):
        case = _prepare(case, FUNCTIONS["kl_estimate"], ctx)
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
                                   f" exact {(sign * dk).tolist()}")

    prop()


@register("kl_estimate", "extremes",
          "k3 ≥ 0 for every sample; finite log-probs up to ±1e3 never give NaN; k3 is +inf "
          "only where the exact value exceeds the largest float")
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


@register("importance_ratio", "extremes",
          "log-probs up to ±1e3: inf only on overflow, 0 only on underflow, never NaN")
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


@register("clipped_surrogate", "overflowed_ratio",
          "a ratio that overflowed to inf gives the exact limit: clipped for A > 0, −inf "
          "(or c·A) for A < 0, and 0 for A = 0 — never NaN")
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
             n: int, value: float) -> None:
    """The result must be exactly ``expected``. A deviation is graded by its size as the value
    checks grade theirs: within n·u·max(|c|, 1) (u the dtype's unit roundoff, n the elements
    reduced, c the constant) it is a rounding residue — IMPRECISE, e.g. RLOO's
    (Σr − r)/(G − 1) of equal float64 rewards, 1e-16; beyond it the residue was amplified —
    WRONG, e.g. a float32 GRPO group whose mean's rounding ÷ (std + eps) gives −0.151."""
    out = _output(got, name)
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
    raise CheckFailure(f"{name}: {what}: {tier}: expected exactly {want.ravel()[:1].tolist()} "
                       f"everywhere, got values off by up to {dev:.3g}, {why} (e.g. "
                       f"{out.ravel()[:3].tolist()})", tier=tier, counterexample=what)


@register("group_advantages", "zero_spread",
          "a group of equal rewards (non-dyadic: 0.9, 0.1, 0.7, …; G up to 156) gets "
          "advantages exactly 0 under every method, in every dtype")
def _group_zero_spread(fn, ctx: Context) -> None:
    methods = (ctx.only or {}).get("method", ob.GROUP_METHODS)
    for dtype in _zero_spread_dtypes(ctx):
        for value in ZERO_SPREAD_CONSTANTS:
            for G in ZERO_SPREAD_SIZES:
                r = torch.full((2, G), value, dtype=dtype)
                for method in methods:
                    if method == "rloo" and G < 2 or ctx.accepts is not None and not \
                            ctx.accepts("group_advantages", {"rewards": r, "method": method}):
                        continue
                    n = 2 * G if method in ob.BATCH_GROUP_METHODS else G
                    _exactly("group_advantages", fn(r.clone(), method=method),
                             torch.zeros_like(r), f"method={method!r}, rewards = "
                             f"torch.full((2, {G}), {value}, dtype={dtype})", ctx, n=n,
                             value=value)


@register("whiten", "zero_spread",
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


@register("adaptive_kl_coefficient", "walk",
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
            kl = Fraction(float(kl))  # the oracle on exactly the number the function sees
            b_impl = fn(b_impl, float(kl), target=float(target), tolerance=float(tol),
                        factor=float(factor))
            b_exact = ob.adaptive_kl_coefficient(b_exact, kl, target=target, tolerance=tol,
                                                 factor=factor)
            ctx.tracker.saw()
            if b_impl != float(b_exact):
                raise CheckFailure(f"adaptive_kl_coefficient: step {step} (kl = {kl}, "
                                   f"target {target}, tolerance {tol}, factor {factor}) gave "
                                   f"beta = {b_impl}, exact {b_exact}; thresholds "
                                   f"{target / tol} and {target * tol}; walk {kls}",
                                   tier="WRONG")

    _kl_walk_examples(prop)()


def _bad(fn_name: str, *cases: tuple[str, Callable[[Callable], Any]]):
    """Register a bad-input check: each call must raise ValueError/TypeError naming a word."""

    def run(fn, ctx: Context) -> None:
        for word, call in cases:
            expect_named_error(fn_name, word, word, lambda: call(fn))
            ctx.tracker.saw()

    register(fn_name, "bad_input", "bad input raises ValueError/TypeError naming the argument",
             requires=("validates_input",))(run)


def _t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


_bad("importance_ratio", ("old_logp", lambda f: f(_t(0.0, 1.0), _t(0.0))),
     ("logp", lambda f: f([0.0], _t(0.0))))
_bad("sequence_log_ratio", ("old_logp", lambda f: f(_t(0.0, 1.0), _t(0.0))),
     ("mask", lambda f: f(_t(0.0, 1.0), _t(0.0, 0.0), mask=_t(2.0, 1.0))))
_bad("geometric_mean_ratio", ("old_logp", lambda f: f(_t(0.0, 1.0), _t(0.0))),
     ("mask", lambda f: f(_t(0.0, 1.0), _t(0.0, 0.0), mask=_t(0.5, 1.0))))
_bad("truncated_importance_weight", ("cap", lambda f: f(_t(1.0), cap=0.0)),
     ("cap", lambda f: f(_t(1.0), cap=-1.0)), ("ratio", lambda f: f(_t(-1.0), cap=1.0)))
_bad("kl_divergence", ("q", lambda f: f(_t(0.5, 0.5), _t(0.5, 0.6))),
     ("p", lambda f: f(_t(1.5, -0.5), _t(0.5, 0.5))),
     ("q", lambda f: f(_t(0.5, 0.5), _t(1.0))))
_bad("entropy", ("p", lambda f: f(_t(0.5, 0.6))))
_bad("entropy_from_logits", ("logits", lambda f: f(_t(0.0, math.nan))))
_bad("kl_estimate", ("kind", lambda f: f(_t(0.0), _t(0.0), "k4")),
     ("ref_logp", lambda f: f(_t(0.0), _t(0.0, 1.0), "k1")))
_bad("clipped_surrogate", ("clip_low", lambda f: f(_t(1.0), _t(1.0), clip_low=-0.1)),
     ("clip_high", lambda f: f(_t(1.0), _t(1.0), clip_high=-0.1)),
     ("dual_clip", lambda f: f(_t(1.0), _t(1.0), dual_clip=0.5)),
     ("advantages", lambda f: f(_t(1.0), _t(1.0, 2.0))),
     ("ratio", lambda f: f(_t(-1.0), _t(1.0))))
_bad("kl_penalized_surrogate", ("beta", lambda f: f(_t(1.0), _t(1.0), _t(0.0), beta=-1.0)),
     ("kl", lambda f: f(_t(1.0), _t(1.0), _t(0.0, 1.0), beta=1.0)))
_bad("adaptive_kl_coefficient", ("target", lambda f: f(1.0, 0.1, target=0.0)),
     ("tolerance", lambda f: f(1.0, 0.1, target=0.1, tolerance=0.5)),
     ("factor", lambda f: f(1.0, 0.1, target=0.1, factor=0.5)),
     ("kl", lambda f: f(1.0, -0.1, target=0.1)))
_bad("value_loss", ("returns", lambda f: f(_t(1.0), _t(1.0, 2.0))),
     ("old_values", lambda f: f(_t(1.0), _t(1.0), clip=0.2)),
     ("clip", lambda f: f(_t(1.0), _t(1.0), old_values=_t(1.0), clip=-0.2)),
     ("clip_form", lambda f: f(_t(1.0), _t(1.0), old_values=_t(1.0), clip=0.2,
                               clip_form="huber")))
_bad("whiten", ("mask", lambda f: f(_t(1.0, 2.0), _t(0.0, 0.0))),
     ("eps", lambda f: f(_t(1.0, 2.0), eps=0.0)))
_bad("aggregate_loss", ("mode", lambda f: f(_t(1.0).reshape(1, 1), _t(1.0).reshape(1, 1),
                                            "sum")),
     ("normalizer", lambda f: f(_t(1.0).reshape(1, 1), _t(1.0).reshape(1, 1),
                                "seq-mean-token-sum-norm")),
     ("mask", lambda f: f(_t(1.0).reshape(1, 1), _t(0.0).reshape(1, 1), "token-mean")),
     ("per_step_loss", lambda f: f(_t(1.0), _t(1.0), "token-mean")))
_bad("policy_loss", ("advantages", lambda f: f(_t(0.0, 0.0).reshape(1, 2), _t(0.0, 0.0).reshape(1, 2),
                                               _t(1.0, 2.0, 3.0), _t(1.0, 1.0).reshape(1, 2))),
     ("mask", lambda f: f(_t(0.0).reshape(1, 1), _t(0.0).reshape(1, 1), _t(1.0),
                          _t(2.0).reshape(1, 1))),
     ("mode", lambda f: f(_t(0.0).reshape(1, 1), _t(0.0).reshape(1, 1), _t(1.0),
                          _t(1.0).reshape(1, 1), mode="sum")),
     ("clip_low", lambda f: f(_t(0.0).reshape(1, 1), _t(0.0).reshape(1, 1), _t(1.0),
                              _t(1.0).reshape(1, 1), clip_low=-0.5)))
_bad("group_advantages", ("G >= 2", lambda f: f(_t(1.0).reshape(1, 1), method="rloo")),
     ("method", lambda f: f(_t(1.0, 2.0), method="ppo")),
     ("eps", lambda f: f(_t(1.0, 2.0), method="grpo", eps=0.0)))

_bad("importance_weighted_kl_estimate",
     ("kind", lambda f: f(_t(0.0), _t(0.0), _t(0.0), "k4")),
     ("old_logp", lambda f: f(_t(0.0), _t(0.0), _t(0.0, 1.0), "k1")),
     ("old_logp", lambda f: f(_t(0.0), _t(0.0), _t(math.nan), "k3")))
_bad("kl_shaped_rewards", ("beta", lambda f: f(_t(0.0), _t(0.0), _t(0.0), beta=-1.0)),
     ("kind", lambda f: f(_t(0.0), _t(0.0), _t(0.0), beta=0.1, kind="k5")),
     ("ref_logp", lambda f: f(_t(0.0), _t(0.0), _t(math.inf), beta=0.1)),
     ("mask", lambda f: f(_t(0.0), _t(0.0), _t(0.0), beta=0.1, mask=_t(0.5))))
_bad("overlong_penalty", ("cache_length", lambda f: f(_t(3.0), max_length=8, cache_length=0)),
     ("max_length", lambda f: f(_t(3.0), max_length=2, cache_length=4)),
     ("lengths", lambda f: f(_t(-1.0), max_length=8, cache_length=4)))


def register_logp_gradient(name: str, summary: str, exact: Callable[..., Any], what: str,
                           check_id: str = "gradient") -> None:
    """Register ``name.check_id``: autograd's ∂(Σ output)/∂logp of the function under test
    equals ``exact(**the case's exact values)`` (a stop-gradient fact of SPEC §7: CISPO's
    detached weight, GSPO-token's sequence ratio; ``exact`` of zeros: no gradient at all)."""

    def run(fn, ctx: Context) -> None:
        spec = FUNCTIONS[name]

        @ctx.settings()
        @given(case=spec.cases())
        def prop(case):
            case = _prepare(case, spec, ctx)
            if case is None:
                return
            got = _logp_gradient(fn, spec, case.values(torch.float64))
            expected = exact_floats(exact(**case.exact_values(torch.float64)))
            _assert_logp_gradient(name, got, expected, case, what, ctx)

        _with_examples(prop, spec, ctx)()

    register(name, check_id, summary, requires=("gradients",))(run)


register_logp_gradient(
    "cispo_surrogate", "∂L/∂logp by autograd = clip(r, 1 − ε_low, 1 + ε_high)·A exactly where "
    "unmasked (the clipped weight is stop-gradiented), 0 where masked; nonzero where "
    "PPO-clip's gradient is 0", ob.cispo_surrogate_gradient,
    "= clip(r)·A: the weight must be detached")


_bad("cispo_surrogate",
     ("clip_low", lambda f: f(_t(0.0), _t(0.0), _t(1.0), _t(1.0), clip_low=-0.2,
                              clip_high=0.2)),
     ("advantages", lambda f: f(_t(0.0), _t(0.0), _t(1.0, 2.0), _t(1.0), clip_low=0.2,
                                clip_high=0.2)),
     ("logp", lambda f: f(_t(math.nan), _t(0.0), _t(1.0), _t(1.0), clip_low=0.2,
                          clip_high=0.2)))
