"""The checks every array function gets from its row (SPEC §3–4, §6, §7): value checks in
float64, float32, float16 and bfloat16 against the exact oracle within the derived bound;
hygiene; batch consistency; NaN/inf at masked positions; gradcheck; bad input.

A family module (``policy``, ``lm``, ``off_policy``) declares its functions as rows
(:func:`array_row`) and gets their checks from :func:`array_checks`; what is particular to one
function (an exact gradient fact, a zero-spread rule) stays in its family module.

Each value check feeds the function under test exact, float-representable inputs, runs the
oracle on exactly those numbers, and compares within a forward-error bound derived for that
function (:mod:`refmath.bounds`, in units of the dtype's unit roundoff u).
"""

from __future__ import annotations

import dataclasses
import functools

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from .. import bounds as B
from .. import objectives as ob
from ..bounds import unit_roundoff
from ._common import assert_hygienic, exceeds, expect_named_error
from .cases import BadInput, Case
from .compare import compare, exact_floats
from .core import LIKELY, Check, CheckFailure, Context, Tracker
from .fingerprints import Probe, other_numbers
from .where import changed
from .specs import SPECS, FunctionSpec

__all__ = ["ArrayFunction", "array_row", "rows", "array_checks", "joined", "prepare",
           "first_case", "option_domain_error", "output", "with_examples", "near",
           "logp_gradient", "assert_logp_gradient", "logp_gradient_check", "bad_input_check"]


@dataclass(frozen=True)
class ArrayFunction:
    """The row of one array function: everything its checks know about it besides the
    signature (read from the oracle by :class:`~refmath.checks.specs.FunctionSpec`)."""

    name: str
    oracle: Callable[..., Any]
    cases: Callable[[], st.SearchStrategy]  # the input strategy (exact inputs)
    bound: Callable[[Case, list, np.ndarray, float], np.ndarray]  # derived, refmath.bounds
    differentiable: tuple[int, ...] = (0,)  # positions of the arrays gradcheck perturbs
    kink: Callable[[Case], bool] | None = None  # gradcheck skips inputs at a kink
    pinned: tuple[Case, ...] = ()  # inputs every value check tries first
    bad_inputs: tuple[BadInput, ...] = ()  # SPEC §1: each must raise naming its word
    reduces_batch: bool = False  # a statistic over the whole batch: no batch consistency

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


def array_row(name: str, oracle: Callable[..., Any], cases: Callable[[], st.SearchStrategy],
              bound: Callable[..., np.ndarray], **facts: Any) -> ArrayFunction:
    """One function's row (``facts``: the optional fields of :class:`ArrayFunction`); its
    oracle must be the one SPEC's row names."""
    if SPECS[name].oracle is not oracle:
        raise ValueError(f"row {name}: {oracle.__name__} is not SPEC's oracle for {name}")
    return ArrayFunction(name, oracle, cases, bound, **facts)


def rows(*declared: ArrayFunction) -> dict[str, ArrayFunction]:
    return {row.name: row for row in declared}


def prepare(case: Case, spec: ArrayFunction, ctx: Context) -> Case | None:
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
    if ctx.adjust is not None:
        case = ctx.adjust(case)
    if "rhos" in ctx.declined and "rhos" in case.arrays:
        case = _as_log_rhos(case)
        if case is None:
            ctx.tracker.skip("a ratio of 0 (rhos is a refmath extension your function does "
                             "not take; log_rhos = −inf is no number to pass)")
            return None
    if ctx.accepts is not None and not ctx.accepts(spec.name, case.values(torch.float64)):
        ctx.tracker.skip(f"the {ctx.layout or 'declared'} layout cannot express the input")
        return None
    return case


def _as_log_rhos(case: Case) -> Case | None:
    """The same input with SPEC's ``log_rhos`` in place of refmath's extension ``rhos``: the
    float64 logarithm of each ratio, taken as exact (the oracle then sees exactly what the
    function sees); None when a ratio is 0."""
    rhos = case.arrays["rhos"]
    if any(Fraction(r) <= 0 for r in np.ravel(rhos)):
        return None
    logs = np.vectorize(lambda r: Fraction(math.log(float(r))), otypes=[object])(rhos)
    arrays = {("log_rhos" if k == "rhos" else k): (logs if k == "rhos" else v)
              for k, v in case.arrays.items()}
    return Case(arrays, case.kwargs, case.flags)


def first_case(spec: ArrayFunction) -> Case:
    """A valid input of ``spec``'s kind, the same on every run: its first pinned input, else
    the first example its strategy draws (derandomized)."""
    if spec.pinned:
        return spec.pinned[0]
    from hypothesis import given

    from ..profiles import settings_for

    drawn: list[Case] = []

    @settings_for("quick", max_examples=1)
    @given(case=spec.cases())
    def grab(case):
        drawn.append(case)

    grab()
    return drawn[0]


def option_domain_error(spec: ArrayFunction, only: dict[str, tuple[Any, ...]]) -> str | None:
    """Why an ``--only`` value lies outside refmath's own oracle's domain (the oracle rejects
    an input it accepts with the option left as drawn), or None: found before any example,
    from the oracle's own validation, not from a second table of domains."""
    name = spec.name
    base = first_case(spec)
    for key, values in only.items():
        for value in values:
            case = prepare(base, spec, Context(only={key: (value,)}))
            try:
                spec.call(spec.oracle, case.exact_values(torch.float64))
            except (ValueError, TypeError) as err:
                return f"{key}={value!r} is outside the domain of {name}: {err}"
    return None


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


def output(out: Any, name: str) -> np.ndarray:
    if not isinstance(out, torch.Tensor):
        raise CheckFailure(f"{name} returned {type(out).__name__}, not a torch.Tensor",
                           tier="WRONG")
    return out.detach().cpu().double().numpy()


def with_examples(prop, spec: ArrayFunction, ctx: Context):
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


def _value_check(spec: ArrayFunction, dtype: torch.dtype):
    name = spec.name
    half = str(dtype).replace("torch.", "") in B.HALF_DTYPES

    def run(fn, ctx: Context) -> None:
        # half precision is computed in float32 (SPEC §1): the float32 bound, rounded once
        u = unit_roundoff(torch.float32 if half else ctx.bound_dtype(dtype))

        # half: the float32 path's search breadth is the float32 check's; 20 examples here
        @ctx.settings(20 if half else None)
        @given(case=spec.cases())
        def prop(case):
            case = prepare(case, spec, ctx)
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
            got = output(spec.call(fn, case.values(dtype)), name)
            if half:
                exact = B.expected_with_overflow(exact, bound, got, dtype)
                bound = B.rounded_once(bound, exact, dtype)
            note = "" if name != "policy_loss" else (
                f" [{case.kwargs['mode']}, as the library computes it]" if ctx.derived
                else f" [{_MODE_NOTES[case.kwargs['mode']]}]")
            compare(spec.spec, got, exact, bound, ctx, f"({dtype}){note}", inputs=repr(case),
                    values=shown, rerun=lambda f: spec.call(f, case.values(dtype)),
                    probes=None if half else lambda: _probes(spec, case, dtype, fn, ctx, u),
                    example={"case": case})

        with_examples(prop, spec, ctx)()

    return run


def _case_variants(spec: ArrayFunction, case: Case) -> list[tuple[str, Case]]:
    """The fingerprint's probes of a counterexample (:mod:`refmath.checks.fingerprints`):
    with its mask (if any) all True, and the kind's pinned corners that take the same options
    (a mistake may live in one option's code path: ``kind="k1"`` is not probed with k3)."""
    def options(c: Case) -> dict[str, Any]:
        return {k: v for k, v in c.kwargs.items() if isinstance(v, (str, bool)) or v is None}

    out = [(f"the same input with other numbers ({seed})", Case(arrays, case.kwargs, case.flags))
           for seed in (1, 2) if (arrays := other_numbers(case.arrays, seed)) is not None]
    if case.flags.get("mask") is not None and not np.all(case.flags["mask"]):
        out.append(("no masked element", Case(case.arrays, case.kwargs, dict(
            case.flags, mask=np.ones(np.shape(case.flags["mask"]), bool)))))
    seen = {repr(case)}
    mine = options(case)
    for pinned in spec.pinned:
        theirs = options(pinned)
        if repr(pinned) not in seen and all(theirs[k] == v for k, v in mine.items()
                                            if k in theirs):
            seen.add(repr(pinned))
            out.append((f"the pinned input {pinned!r}", pinned))
    return out


def _prepared_variants(spec: ArrayFunction, case: Case, ctx: Context):
    """The probe inputs restricted as the check restricts its own (``prepare``), those the
    function's binding cannot express left out — quietly: a probe left out is no skip."""
    quiet = dataclasses.replace(ctx, tracker=Tracker())
    for label, probe in _case_variants(spec, case):
        try:
            probe = prepare(probe, spec, quiet)
        except Exception:  # noqa: BLE001 - a probe the binding cannot take refutes nothing
            continue
        if probe is not None:
            yield label, probe


def _probes(spec: ArrayFunction, case: Case, dtype: torch.dtype, fn: Any, ctx: Context,
            u: float) -> list[Probe]:
    """The probes, each judged as the value check judges, with the function's output on it;
    one the function's binding cannot express, or the function cannot run, is left out."""
    probes = []
    for label, probe in _prepared_variants(spec, case, ctx):
        try:
            floats = probe.floats(dtype)
            exact = exact_floats(spec.call(spec.oracle, probe.exact_values(dtype)))
            bound = np.broadcast_to(spec.bound(probe, floats, exact, u), exact.shape)

            def call(f, probe=probe):
                return spec.call(f, probe.values(dtype))

            got = output(call(fn), spec.name)
        except Exception:  # noqa: BLE001 - a probe the function cannot run refutes nothing
            continue
        if np.shape(got) == exact.shape:
            probes.append(Probe(label, call, np.asarray(got, np.float64), exact, bound))
    return probes


def _hygiene(spec: ArrayFunction):
    name = spec.name

    def run(fn, ctx: Context) -> None:
        @ctx.settings(15, shrink=False)  # the message names the input, not its size
        @given(case=spec.cases())
        def prop(case):
            case = prepare(case, spec, ctx)
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


def _ignored_numbers(spec: ArrayFunction):
    """NaN and ±inf at masked positions of every array must not change the result (a masked
    number is never read: selected out, not multiplied by 0)."""
    name = spec.name

    def run(fn, ctx: Context) -> None:
        @ctx.settings(20)
        @given(case=spec.cases())
        def prop(case):
            case = prepare(case, spec, ctx)
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

            expected = output(spec.call(fn, case.values(torch.float64)), name)
            got = output(spec.call(fn, dirty()), name)
            ctx.tracker.saw()
            if not np.array_equal(got, expected, equal_nan=True):
                from .mutants import diagnose

                raise CheckFailure(
                    f"{name}: NaN/inf at masked positions changed the result: "
                    f"{got.tolist()} vs {expected.tolist()} (a masked number multiplied by 0 "
                    f"instead of selected out?)\n  inputs: {case!r}{LIKELY}", tier="WRONG",
                    counterexample=repr(case), pattern=changed(
                        "changed by the NaN/inf at masked positions: ", got, expected,
                        case.values(torch.float64)), diagnosis=lambda: diagnose(
                        name, lambda f: spec.call(f, dirty()), got, np.zeros(got.shape), ctx))

        with_examples(prop, spec, ctx)()

    return run


def _row(case: Case, i: int) -> Case:
    return Case({k: np.asarray(v[i], dtype=v.dtype) for k, v in case.arrays.items()},
                dict(case.kwargs), {k: np.asarray(v[i]) for k, v in case.flags.items()})


def _batch_consistency(spec: ArrayFunction):
    """Row i of a batch equals row i alone (functions of the last axis, or elementwise)."""
    name = spec.name

    def run(fn, ctx: Context) -> None:
        u = unit_roundoff(torch.float64)

        @ctx.settings(15)
        @given(case=spec.cases())
        def prop(case):
            case = prepare(case, spec, ctx)
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
            whole = output(spec.call(fn, case.values(torch.float64)), name)
            lift = not ctx.capabilities.batch  # exactly [B, T]: row i as a batch of one
            for i in range(whole.shape[0]):
                row = _row(case, i)
                if lift:
                    row = Case({k: v[None] for k, v in row.arrays.items()}, dict(row.kwargs),
                               {k: v[None] for k, v in row.flags.items()})
                alone = output(spec.call(fn, row.values(torch.float64)), name)
                alone = alone[0] if lift else alone
                ctx.tracker.saw()
                if alone.shape != whole[i].shape:
                    raise CheckFailure(f"{name}: row {i} alone has shape {alone.shape}, in the "
                                       f"batch {whole[i].shape}", tier="WRONG",
                                       pattern=f"the shape of row {i} alone: {alone.shape}, "
                                       f"in the batch {whole[i].shape}")
                with np.errstate(invalid="ignore"):
                    same = ((np.abs(whole[i] - alone) <= 2 * bound[i] + 1e-300)
                            | (whole[i] == alone) | (np.isnan(alone) & np.isnan(whole[i])))
                if not np.all(same):
                    raise CheckFailure(
                        f"{name}: row {i} of a batch differs from the same row alone: "
                        f"{whole[i].tolist()} vs {alone.tolist()}\n  inputs: {case!r}",
                        tier="WRONG", counterexample=repr(case), pattern=changed(
                            f"in row {i} of the batch, against the same row alone: ",
                            whole[i], alone, tol=2 * bound[i]))

        with_examples(prop, spec, ctx)()

    return run


def _gradcheck(spec: ArrayFunction):
    def run(fn, ctx: Context) -> None:
        @ctx.settings(10)
        @given(case=spec.cases())
        def prop(case):
            case = prepare(case, spec, ctx)
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

            eps, atol, rtol = ctx.gradcheck_tolerances(1e-7, 1e-6, 1e-5)
            torch.autograd.gradcheck(f, tuple(args[i] for i in wrt), eps=eps, atol=atol,
                                     rtol=rtol)
            ctx.tracker.saw()

        prop()

    return run


def near(x: Any, points: list[float], tol: float = 1e-5) -> bool:
    """Whether any element of ``x`` lies within ``tol`` of one of ``points`` (a kink)."""
    x = np.asarray(x, dtype=np.float64)
    return any(bool(np.any(np.abs(x - p) < tol)) for p in points)


def bad_input_check(name: str, bad_inputs: tuple[BadInput, ...]) -> Check:
    """``name.bad_input``: each bad input raises ValueError/TypeError naming its word (SPEC
    §1)."""

    def run(fn, ctx: Context) -> None:
        for bad in bad_inputs:
            if ctx.declined & {k for k, _ in bad.kwargs}:
                ctx.tracker.skip("a bad value of a refmath extension your function does not "
                                 "take")
                continue
            expect_named_error(name, bad.word, bad.word, lambda: bad.call(fn))
            ctx.tracker.saw()

    return Check(f"{name}.bad_input", name, "bad input raises ValueError/TypeError naming the "
                 "argument", run, frozenset({"validates_input"}), "validation")


def array_checks(spec: ArrayFunction) -> list[Check]:
    """The value, hygiene, batch, ignored-numbers, gradient and bad-input checks of one row."""
    name = spec.name

    def check(suffix, summary, func, requires=(), tier="correctness") -> Check:
        return Check(f"{name}.{suffix}", name, summary, func, frozenset(requires), tier)

    made = [check("float64", "exact inputs, float64: within the derived bound of the oracle",
                  _value_check(spec, torch.float64)),
            check("float32", "exact inputs, float32: within the derived bound of the oracle",
                  _value_check(spec, torch.float32))]
    made += [check(str(half).replace("torch.", ""), "exact inputs rounded to the half dtype: "
                   "within the float32 bound plus one final rounding (SPEC §1)",
                   _value_check(spec, half), requires=("half",))
             for half in (torch.float16, torch.bfloat16)]
    made.append(check("hygiene", "inputs untouched; dtype kept; deterministic", _hygiene(spec),
                      tier="hygiene"))
    if not spec.reduces_batch:
        made.append(check("batch_consistency", "row i of a batch equals row i alone",
                          _batch_consistency(spec), tier="robustness"))
    if SPECS[name].has("mask"):
        made.append(check("ignored_numbers", "NaN/inf at masked positions do not leak",
                          _ignored_numbers(spec), requires=("mask",), tier="robustness"))
    if spec.differentiable:
        made.append(check("gradcheck", "torch.autograd.gradcheck in float64", _gradcheck(spec),
                          requires=("gradients",)))
    if spec.bad_inputs:
        made.append(bad_input_check(name, spec.bad_inputs))
    return made


def logp_gradient(fn, spec: ArrayFunction, values: dict[str, Any],
                  wrt: str = "logp") -> np.ndarray:
    """Autograd's ∂(Σ output)/∂``wrt`` (default logp) of ``fn`` on ``values`` (0 where no
    gradient flows)."""
    x = values[wrt].clone().requires_grad_()
    out = spec.call(fn, dict(values, **{wrt: x}))
    grad = (torch.autograd.grad(out.sum(), x, allow_unused=True)[0]
            if isinstance(out, torch.Tensor) and out.requires_grad else None)
    return grad.numpy() if grad is not None else np.zeros(tuple(x.shape))


def _gradient_of(spec: ArrayFunction, values: dict[str, Any],
                 wrt: str = "logp") -> Callable[[Callable], Any]:
    """``f`` ↦ autograd's ∂(Σ f)/∂``wrt`` on ``values``, as a tensor (the diagnosis' call)."""
    return lambda f: torch.as_tensor(logp_gradient(f, spec, values, wrt))


def _gradient_tolerance(expected: np.ndarray) -> np.ndarray:
    """16 float64 ulps relative (exp, a clip bound, a product or two per element)."""
    return 16 * 2.0**-53 * (np.abs(expected) + 1e-300)


def _gradient_probes(spec: ArrayFunction, case: Case, fn: Any, ctx: Context,
                     exact: Callable[..., Any]) -> list[Probe]:
    """The fingerprint's probes of a gradient check's counterexample: the value probes'
    inputs (:func:`_case_variants`), each with autograd's ∂(Σ f)/∂logp and its exact value."""
    probes = []
    for label, probe in _prepared_variants(spec, case, ctx):
        try:
            values = probe.values(torch.float64)
            expected = exact_floats(exact(**probe.exact_values(torch.float64)))
            got = logp_gradient(fn, spec, values)
        except Exception:  # noqa: BLE001 - a probe the function cannot run refutes nothing
            continue
        if got.shape == expected.shape:
            probes.append(Probe(label, _gradient_of(spec, values), got, expected,
                                _gradient_tolerance(expected)))
    return probes


def assert_logp_gradient(name: str, got: np.ndarray, expected: np.ndarray, case: Case,
                          what: str, ctx: Context,
                          rerun: Callable[[Callable], Any] | None = None,
                          probes: Callable[[], list[Probe]] | None = None) -> None:
    """Autograd against the exact gradient, 16 float64 ulps relative (exp, a clip bound, a
    product or two per element). ``rerun(f)``: the same gradient of ``f`` on the same input,
    for the diagnosis (a failure seen only in the gradient is diagnosed like a value one, its
    fingerprint's ``probes()`` included)."""
    tol = _gradient_tolerance(expected)
    ctx.tracker.saw()
    if exceeds(np.abs(got - expected), tol):
        from .compare import _pattern
        from .mutants import diagnose

        off = ~(np.abs(got - expected) <= tol)
        i = tuple(np.argwhere(off)[0])
        where = _pattern(name, got, expected, off, case.values(torch.float64), False)
        raise CheckFailure(
            f"{name}: dL/dlogp at {i} is {got[i]!r}, exact {expected[i]!r} ({what})"
            + (f"\n  where          in the gradient ∂L/∂logp: {where}" if where else "")
            + (LIKELY if rerun is not None else "") + f"\n  inputs: {case!r}", tier="WRONG",
            counterexample=repr(case), pattern=f"in the gradient: {where}",
            diagnosis=None if rerun is None else functools.partial(
                diagnose, name, rerun, got, tol, ctx, exact=expected, probes=probes))


def logp_gradient_check(spec: ArrayFunction, summary: str, exact: Callable[..., Any],
                        what: str, check_id: str = "gradient") -> Check:
    """Check ``name.check_id``: autograd's ∂(Σ output)/∂logp of the function under test
    equals ``exact(**the case's exact values)`` (a stop-gradient fact of SPEC §7: CISPO's
    detached weight, GSPO-token's sequence ratio; ``exact`` of zeros: no gradient at all)."""

    name = spec.name

    def run(fn, ctx: Context) -> None:
        @ctx.settings()
        @given(case=spec.cases())
        def prop(case):
            case = prepare(case, spec, ctx)
            if case is None:
                return
            values = case.values(torch.float64)
            got = logp_gradient(fn, spec, values)
            expected = exact_floats(exact(**case.exact_values(torch.float64)))
            assert_logp_gradient(name, got, expected, case, what, ctx, rerun=_gradient_of(
                spec, values), probes=lambda: _gradient_probes(spec, case, fn, ctx, exact))

        with_examples(prop, spec, ctx)()

    return Check(f"{name}.{check_id}", name, summary, run, frozenset({"gradients"}))
