"""Checks for the per-step functions of SPEC §2: TD errors, returns, GAE, λ-returns.

Every value check compares the function under test with the exact oracle run on the very
numbers the function saw (``Fraction(float(x))`` is exact), within the derived forward-error
bound of :mod:`refmath.bounds`, never a fixed rtol/atol.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from .. import advantages as adv
from .. import returns as ret
from ..bounds import recursion_bound, rounded_once, unit_roundoff
from ..strategies import (Episode, _consistent_next_values, episodes,
                          floats_as_fractions)
from .core import LIKELY, Capabilities, Check, CheckFailure, CheckList, Context
from ._common import assert_hygienic, exceeds, expect_named_error
from .compare import compare, exact_floats
from .episodes import BAD_INPUTS, PINNED, as_batch, half_pinned, terminal_ends
from .fingerprints import Probe, episode_variants
from .where import changed
from .specs import SPECS, FunctionSpec

__all__ = ["STEP_FUNCTIONS", "StepFunction", "CHECKS"]


@dataclass(frozen=True)
class StepFunction:
    """How to call one function of SPEC §2 and its oracle (read from its
    :class:`~refmath.checks.specs.FunctionSpec`), and its condition term."""

    spec: FunctionSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def oracle(self) -> Callable[..., np.ndarray]:
        return self.spec.oracle

    @property
    def args(self) -> tuple[str, ...]:  # positional per-step arguments
        return self.spec.positional_arrays

    @property
    def keyword_steps(self) -> tuple[str, ...]:  # per-step arrays passed by keyword
        return self.spec.keyword_arrays

    @property
    def flags(self) -> tuple[str, ...]:
        return self.spec.flags

    @property
    def uses_lam(self) -> bool:
        return self.spec.has("lam")

    @property
    def uses_n(self) -> bool:
        return self.spec.has("n")

    @property
    def steps(self) -> tuple[str, ...]:
        return self.args + self.keyword_steps

    def kwargs(self, ep: Episode, tensors: dict[str, Any] | None, n: int | None,
               caps: Capabilities = Capabilities()) -> dict:
        src = tensors if tensors is not None else ep.oracle_kwargs()
        kw = {"gamma": src["gamma"]}
        kw.update({k: src[k] for k in self.keyword_steps})
        if self.uses_lam:
            kw["lam"] = src["lam"]
        if self.uses_n:
            kw["n"] = n
        for f in self.flags:
            if src[f] is not None and getattr(caps, f, True):  # undeclared flags not passed
                kw[f] = src[f]
        return kw

    def values(self, ep: Episode, tensors: dict[str, Any], n: int | None,
               caps: Capabilities = Capabilities()) -> dict[str, Any]:
        """Every argument of a call by parameter name (for the reproduction snippet)."""
        return dict({a: tensors[a] for a in self.args}, **self.kwargs(ep, tensors, n, caps))

    def call(self, fn, ep: Episode, tensors: dict[str, Any], n: int | None,
             caps: Capabilities = Capabilities()):
        return fn(*(tensors[a] for a in self.args), **self.kwargs(ep, tensors, n, caps))

    def exact(self, ep: Episode, tensors: dict[str, Any], n: int | None) -> np.ndarray:
        """The oracle on exactly the numbers the implementation saw."""
        exact_args = [_fractions(tensors[a]) for a in self.args]
        kw = self.kwargs(ep, None, n)
        kw.update({k: _fractions(tensors[k]) for k in self.keyword_steps})
        kw["gamma"] = _exact_gamma(tensors["gamma"])
        if self.uses_lam:
            kw["lam"] = Fraction(tensors["lam"])
        return self.oracle(*exact_args, **kw)

    def condition(self, ep: Episode, tensors: dict[str, Any], n: int | None) -> np.ndarray:
        """S_t: the recursion run on absolute values (float64), see refmath.bounds."""
        a = {k: np.abs(tensors[k].detach().cpu().double().numpy())
             for k in ("rewards", "values", "next_values")}
        kw = self.kwargs(ep, None, n)
        kw.pop("next_values", None)
        kw["gamma"] = _float_gamma(tensors["gamma"])
        if self.uses_lam:
            kw["lam"] = float(tensors["lam"])
        if self.name in ("gae", "lambda_returns", "td_errors"):
            # |δ_t| ≤ |r_t| + γ|V'_t| + |V_t| = δ_t evaluated at (|r|, −|V|, |V'|)
            lam_kw = {"lam": kw.pop("lam")} if self.uses_lam else {}
            oracle = ret.td_errors if self.name == "td_errors" else adv.gae
            S = oracle(a["rewards"], -a["values"], a["next_values"], **kw, **lam_kw)
            if self.name == "lambda_returns":
                S = S + a["values"] * _present(ep)
            return S
        if self.name == "discounted_returns":
            return ret.discounted_returns(a["rewards"], next_values=a["next_values"], **kw)
        return ret.n_step_returns(a["rewards"], a["next_values"], **kw)


_POISON = (float("nan"), float("inf"), float("-inf"))


def _present(ep: Episode) -> np.ndarray:
    return np.ones(ep.shape) if ep.mask is None else ep.mask.astype(float)


def _fractions(t: torch.Tensor) -> np.ndarray:
    a = t.detach().cpu().double().numpy()
    out = np.empty(a.shape, dtype=object)
    for idx, x in np.ndenumerate(a):
        out[idx] = Fraction(float(x))
    return out


def _exact_gamma(g: Any) -> Any:
    return _fractions(g) if isinstance(g, torch.Tensor) else Fraction(g)


def _float_gamma(g: Any) -> Any:
    return g.detach().cpu().double().numpy() if isinstance(g, torch.Tensor) else float(g)


STEP_FUNCTIONS = {name: StepFunction(spec) for name, spec in SPECS.items()
                  if spec.family == "steps"}


def _eps(spec: StepFunction, caps: Capabilities, **kw: Any) -> st.SearchStrategy:
    """:func:`episodes` restricted to what the function under test declares it supports."""
    kw["masks"] = kw.get("masks", True) and "mask" in spec.flags and caps.mask
    kw["truncation"] = caps.truncated and "truncated" in spec.flags
    kw["per_step_gamma"] = kw.get("per_step_gamma", False) and caps.per_step_gamma
    kw["consistent"] = kw.get("consistent", False) or not caps.inconsistent_values
    if not caps.batch:
        kw["batch_dims"] = (1, 1)  # exactly [B, T]
    if not caps.flags:
        kw["flag_rate"], kw["truncation"] = 0.0, False
        return episodes(**kw).map(terminal_ends)
    return episodes(**kw)


def _episode_strategy(spec: StepFunction, regime: str, caps: Capabilities
                      ) -> st.SearchStrategy:
    if regime == "exact":
        return _eps(spec, caps, max_T=6)
    unit = st.one_of(st.sampled_from([Fraction(0), Fraction(1)]),
                     st.floats(0, 1, width=32).map(Fraction))
    # half precision: |numbers| ≤ 64 keeps every return of T ≤ 40 steps below float16's 65504
    numbers = floats_as_fractions(64 if regime == "half" else 1e3)
    return st.one_of(
        _eps(spec, caps, max_T=40, numbers=numbers, gamma=unit, lam=unit),
        _eps(spec, caps, max_T=8, numbers=numbers, gamma=unit, lam=unit,
             per_step_gamma=True),
    )


def _n_strategy(spec: StepFunction) -> st.SearchStrategy:
    return st.integers(1, 8) if spec.uses_n else st.none()


def _as_array(out: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(out, torch.Tensor):
        raise CheckFailure(f"{name} returned {type(out).__name__}, not a torch.Tensor",
                           tier="WRONG")
    if tuple(out.shape) != tuple(shape):
        raise CheckFailure(f"{name} returned shape {tuple(out.shape)}, expected {shape}",
                           tier="WRONG")
    return out.detach().cpu().double().numpy()


def _nan_free(name: str, a: np.ndarray, what: str) -> None:
    if np.isnan(a).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(a))[0])
        raise CheckFailure(f"{name} returned NaN at {idx} ({what})", tier="WRONG")


def _with_pinned(prop, spec: StepFunction, ctx: Context, extra: tuple[Episode, ...] = ()):
    """The pinned boundary rows (and ``extra`` ones), after the counterexamples earlier
    checks of this run found (tried first: a bug found once is not searched for and shrunk
    again)."""
    caps = ctx.capabilities
    for ep in PINNED + list(extra):
        if ep.mask is not None and not ("mask" in spec.flags and caps.mask):
            continue
        if not caps.flags:
            if ep.terminated.any() or ep.truncated.any():
                continue
            ep = terminal_ends(ep)
        if ep.truncated.any() and not (caps.truncated and "truncated" in spec.flags):
            continue
        if isinstance(ep.gamma, np.ndarray) and not caps.per_step_gamma:
            continue
        ep = as_batch(ep)
        if not caps.inconsistent_values:
            ep.next_values = _consistent_next_values(ep.values, ep.next_values, ep.terminated,
                                                     ep.truncated, ep.mask)
        prop = example(ep=ep, n=2 if spec.uses_n else None)(prop)
    return _with_known(prop, spec, ctx)


def _inexpressible(spec: StepFunction, ep: Episode, ctx: Context) -> bool:
    """Whether the function's layout cannot take this episode at all (verl's whitening needs
    two response tokens): then it is skipped, with the reason counted."""
    if ctx.accepts is None:
        return False
    keep = np.ones(ep.shape, bool) if ep.mask is None else np.asarray(ep.mask, bool)
    if ctx.accepts(spec.name, {"mask": keep, "episode": ep}):
        return False
    ctx.tracker.skip(f"the {ctx.layout or 'declared'} layout cannot express the input")
    return True


def _with_known(prop, spec: StepFunction, ctx: Context):
    """Counterexamples earlier checks of this run found, tried first."""
    for known in ctx.examples_for(spec.name, {"ep", "n"}):
        prop = example(**known)(prop)
    return prop


def _judge(spec: StepFunction, ep: Episode, tensors: dict[str, Any], n: int | None,
           regime: str, dtype: torch.dtype, ctx: Context) -> tuple[Any, np.ndarray]:
    """The exact answer and the bound of a value check, from the inputs BEFORE the call (a
    function that modifies its inputs is judged on what it was given)."""
    exact = spec.exact(ep, tensors, n)
    if regime == "half":  # computed in float32, rounded once (SPEC §1)
        bound = rounded_once(recursion_bound(spec.condition(ep, tensors, n), ep.shape[-1],
                                             torch.float32), exact_floats(exact), dtype)
    else:
        bound = recursion_bound(spec.condition(ep, tensors, n), ep.shape[-1],
                                ctx.bound_dtype(dtype))
    if ctx.post is not None:  # the library's own step after SPEC's function
        keep = np.ones(ep.shape, bool) if ep.mask is None else np.asarray(ep.mask, bool)
        exact, bound = ctx.post(exact, bound, keep, unit_roundoff(ctx.bound_dtype(dtype)))
    return exact, bound


def _probes(spec: StepFunction, ep: Episode, n: int | None, regime: str, dtype: torch.dtype,
            fn: Any, ctx: Context) -> list[Probe]:
    """The fingerprint's probes of a counterexample (:mod:`refmath.checks.fingerprints`),
    each judged as the check judges, with the function's output on it; a probe the
    function's layout cannot express, or the function cannot run, is left out."""
    caps = ctx.capabilities
    probes = []
    for label, probe in episode_variants(
            ep, flags=caps.flags, truncation=caps.truncated and "truncated" in spec.flags,
            consistent=not caps.inconsistent_values):
        if ctx.accepts is not None and not ctx.accepts(spec.name, {
                "mask": np.ones(probe.shape, bool) if probe.mask is None else probe.mask,
                "episode": probe}):
            continue
        tensors = probe.tensors(dtype)
        exact, bound = _judge(spec, probe, tensors, n, regime, dtype, ctx)

        def call(f, probe=probe, tensors=tensors):
            return spec.call(f, probe, copy.deepcopy(tensors), n, caps)

        try:
            got = _as_array(call(fn), spec.name, probe.shape)
        except Exception:  # noqa: BLE001 - a probe the function cannot run refutes nothing
            continue
        exact = exact_floats(exact)
        probes.append(Probe(label, call, got, exact, np.broadcast_to(bound, exact.shape)))
    return probes


def _value_check(spec: StepFunction, regime: str, dtype: torch.dtype):
    n_strategy = _n_strategy(spec)

    def run(fn, ctx: Context) -> None:
        caps = ctx.capabilities

        # half: the float32 path's search breadth is the float32 check's; 20 examples here
        @ctx.settings(20 if regime == "half" else None)
        @given(ep=_episode_strategy(spec, regime, caps), n=n_strategy)
        def prop(ep, n):
            if _inexpressible(spec, ep, ctx):
                return
            tensors = ep.tensors(dtype)
            exact, bound = _judge(spec, ep, tensors, n, regime, dtype, ctx)
            values = copy.deepcopy(spec.values(ep, tensors, n, caps))
            pristine = copy.deepcopy(tensors)
            got = _as_array(spec.call(fn, ep, tensors, n, caps), spec.name, ep.shape)
            compare(spec.spec, got, exact, bound, ctx, f"({regime}, {dtype})",
                    inputs=repr(ep) + (f", n={n}" if n is not None else ""), values=values,
                    rerun=lambda f: spec.call(f, ep, copy.deepcopy(pristine), n, caps),
                    probes=lambda: _probes(spec, ep, n, regime, dtype, fn, ctx),
                    example={"ep": ep, "n": n}, time_axis=True)

        _with_pinned(prop, spec, ctx, (half_pinned(),) if regime == "half" else ())()

    return run


def _long_check(spec: StepFunction):
    """T = 10^5 in float32 with γλ = 0.9 (γ = 0.9, λ = 1 for returns)."""

    def run(fn, ctx: Context) -> None:
        T = 100_000
        gen = np.random.default_rng(0)
        r = gen.normal(size=(1, T))
        v = gen.normal(size=(1, T))
        nv = np.concatenate([v[:, 1:], gen.normal(size=(1, 1))], axis=1)
        caps = ctx.capabilities
        term = (gen.random((1, T)) < 0.001) & caps.flags
        term[:, -1] |= not caps.flags
        trunc = (gen.random((1, T)) < 0.001) & caps.truncated & caps.flags
        gamma, lam = (0.9, 1.0) if not spec.uses_lam else (0.96, 0.9375)  # γλ = 0.9
        ep = Episode(r, v, nv, term, trunc, None, gamma, lam)
        tensors = {k: torch.tensor(x, dtype=torch.float32)
                   for k, x in (("rewards", r), ("values", v), ("next_values", nv))}
        tensors.update(gamma=gamma, lam=lam, terminated=torch.tensor(term),
                       truncated=torch.tensor(trunc) if caps.truncated else None, mask=None)
        n = 16 if spec.uses_n else None
        f64 = {k: x.double().numpy() for k, x in tensors.items()
               if isinstance(x, torch.Tensor) and x.is_floating_point()}
        kw = spec.kwargs(ep, None, n)
        # The float64 oracle (a plain loop) carries its own error, bounded the same way
        # with u = 2^-53; the float32 result must lie within the sum of both bounds.
        reference = spec.oracle(*(f64[a] for a in spec.args), **kw)
        S = spec.condition(ep, tensors, n)
        bound = recursion_bound(S, T, torch.float32) + recursion_bound(S, T, torch.float64)
        got = _as_array(spec.call(fn, ep, tensors, n, caps), spec.name, ep.shape)
        compare(spec.spec, got, reference, bound, ctx, "(T = 100000, float32)",
                inputs="T = 100000 standard-normal rewards and values, γλ = 0.9, "
                       "terminations and truncations at 0.1 % of steps (seed 0)",
                time_axis=True)

    return run


def _call_row(spec: StepFunction, fn, ep: Episode, row: dict[str, Any], n: int | None,
              caps: Capabilities):
    """Call fn on one row [T]; as a [1, T] batch if it declares no support for other shapes."""
    if caps.batch:
        return spec.call(fn, ep, row, n, caps)
    T = row["rewards"].shape[-1]
    lifted = {k: (v.unsqueeze(0) if isinstance(v, torch.Tensor) and v.dim() == 1
                  and v.shape[-1] == T and k != "gamma" else v) for k, v in row.items()}
    out = spec.call(fn, ep, lifted, n, caps)
    return out[0] if isinstance(out, torch.Tensor) and out.dim() == 2 else out


def _batch_consistency(spec: StepFunction):
    def run(fn, ctx: Context) -> None:
        caps = ctx.capabilities

        @ctx.settings(15)
        @given(ep=_eps(spec, caps, max_T=12, batch_dims=(1, 2)), n=_n_strategy(spec))
        def prop(ep, n):
            if _inexpressible(spec, ep, ctx):
                return
            tensors = ep.tensors(torch.float64)  # each call gets its own copy (hygiene
            # judges modified inputs; here they must not turn into a batch difference)
            whole = _as_array(spec.call(fn, ep, copy.deepcopy(tensors), n, caps), spec.name,
                              ep.shape)
            _nan_free(spec.name, whole, f"the whole batch, inputs {ep!r}")
            bound = recursion_bound(spec.condition(ep, tensors, n), ep.shape[-1],
                                    torch.float64)
            for idx in np.ndindex(ep.shape[:-1]):
                row = {k: (v[idx] if isinstance(v, torch.Tensor) and v.dim() == len(ep.shape)
                           else v) for k, v in tensors.items()}
                alone = _as_array(_call_row(spec, fn, ep, copy.deepcopy(row), n, caps),
                                  spec.name,
                                  ep.shape[-1:])
                _nan_free(spec.name, alone, f"row {idx} alone, inputs {ep!r}")
                diff = np.abs(whole[idx] - alone)
                ctx.tracker.saw(float(np.max(diff / (2 * bound[idx]))))
                if np.any(diff > 2 * bound[idx]):
                    raise CheckFailure(
                        f"{spec.name}: row {idx} of a batch differs from the same row alone: "
                        f"{whole[idx].tolist()} vs {alone.tolist()}\n  inputs: {ep!r}",
                        tier="WRONG", counterexample=repr(ep), pattern=changed(
                            f"in row {idx} of the batch, against the same row alone: ",
                            whole[idx], alone, row, time_axis=True, tol=2 * bound[idx]))

        _with_known(prop, spec, ctx)()

    return run


def _hygiene(spec: StepFunction):
    """Inputs not modified, dtype/device/shape preserved, deterministic."""

    def run(fn, ctx: Context) -> None:
        caps = ctx.capabilities

        @ctx.settings(15, shrink=False)  # the message names the input, not its size
        @given(ep=_eps(spec, caps, max_T=8), n=_n_strategy(spec))
        def prop(ep, n):
            if _inexpressible(spec, ep, ctx):
                return
            for dtype in (torch.float32, torch.float64):
                tensors = ep.tensors(dtype)
                assert_hygienic(spec.name, lambda: spec.call(fn, ep, tensors, n, caps),
                                tensors, dtype, ep.shape)
            ctx.tracker.saw()

        _with_known(prop, spec, ctx)()

    return run


def _ignored_numbers(spec: StepFunction):
    """NaN/inf at masked steps and in next_values of terminated steps must not leak."""

    def run(fn, ctx: Context) -> None:
        caps = ctx.capabilities

        @ctx.settings(20)
        @given(ep=_eps(spec, caps, max_T=8), n=_n_strategy(spec))
        def prop(ep, n):
            if _inexpressible(spec, ep, ctx):
                return
            clean = ep.tensors(torch.float64)
            dirty = copy.deepcopy(clean)
            if "next_values" in dirty and ep.terminated.any():
                dirty["next_values"][torch.tensor(ep.terminated)] = float("nan")
            if ep.mask is not None and "mask" in spec.flags:
                for i, k in enumerate(spec.steps):  # NaN, +inf, −inf in turn
                    dirty[k][~torch.tensor(ep.mask)] = _POISON[i % 3]
            pristine = copy.deepcopy(dirty)  # (the call may modify its inputs)
            expected = _as_array(spec.call(fn, ep, clean, n, caps), spec.name, ep.shape)
            got = _as_array(spec.call(fn, ep, dirty, n, caps), spec.name, ep.shape)
            ctx.tracker.saw()
            if not np.array_equal(got, expected, equal_nan=True):
                from .mutants import diagnose

                raise CheckFailure(f"{spec.name}: numbers that SPEC says are ignored changed "
                                   f"the result: {got.tolist()} vs {expected.tolist()}\n"
                                   f"  inputs: {ep!r} (NaN in next_values of terminated "
                                   f"steps; NaN, +inf, −inf at masked steps){LIKELY}",
                                   tier="WRONG", counterexample=repr(ep),
                                   pattern=changed("changed by the ignored numbers: ", got,
                                                   expected, ep.tensors(torch.float64),
                                                   time_axis=True),
                                   diagnosis=lambda: diagnose(
                                       spec.name, lambda f: spec.call(
                                           f, ep, copy.deepcopy(pristine), n, caps),
                                       got, np.zeros(got.shape), ctx))

        # the pinned rows first: an interior hole and a padded end, on every run
        _with_pinned(prop, spec, ctx)()

    return run


def _jacobian(spec: StepFunction):
    """Every function of §2 is linear in its per-step inputs: the exact Jacobian's column s
    is the oracle applied to the unit vector e_s (all other numeric inputs 0)."""

    def run(fn, ctx: Context) -> None:
        caps = ctx.capabilities

        # the first failing input as found: shrinking a T×T exact Jacobian took up to 50 s,
        # and the value checks already give the minimal counterexample of a wrong formula
        @ctx.settings(15, shrink=False)
        @given(ep=_eps(spec, caps, max_T=6), n=_n_strategy(spec))
        def prop(ep, n):
            T = ep.shape[-1]
            tensors = ep.tensors(torch.float64)
            row = {k: (v.reshape(-1, T)[0] if isinstance(v, torch.Tensor) and v.dim() > 0
                       and v.shape[-1] == T and v.dim() == len(ep.shape) else v)
                   for k, v in tensors.items()}
            row_ep = Episode(*(np.asarray(ep.__dict__[k]).reshape(-1, T)[0]
                               if ep.__dict__[k] is not None else None
                               for k in ("rewards", "values", "next_values", "terminated",
                                         "truncated", "mask")), ep.gamma, ep.lam)
            for wrt in spec.steps:
                def f(x, wrt=wrt):
                    args = dict(row, **{wrt: x})
                    return _call_row(spec, fn, row_ep, args, n, caps)

                J = torch.autograd.functional.jacobian(f, row[wrt].clone()).numpy()
                exact = np.zeros((T, T))
                for s in range(T):
                    unit = {a: np.array([Fraction(0)] * T, dtype=object) for a in spec.steps}
                    unit[wrt][s] = Fraction(1)
                    kw = spec.kwargs(row_ep, None, n)
                    kw.update({k: unit[k] for k in spec.keyword_steps})
                    kw["gamma"] = _exact_gamma(row["gamma"])
                    if spec.uses_lam:
                        kw["lam"] = Fraction(row["lam"])
                    col = spec.oracle(*(unit[a] for a in spec.args), **kw)
                    exact[:, s] = [float(x) for x in col]
                err = np.abs(J - exact)
                ctx.tracker.saw(float(err.max()) / 1e-12 if err.size else 0.0)
                if exceeds(err, 1e-12):  # entries: products of ≤ T factors in [0, 1]: ~T·u
                    bad = np.where(np.isnan(err), np.inf, err)
                    t, s = np.unravel_index(int(np.argmax(bad)), err.shape)
                    raise CheckFailure(
                        f"{spec.name}: d out[{t}] / d {wrt}[{s}] = {J[t, s]!r}, exact "
                        f"{exact[t, s]!r} (inputs {row_ep!r})", tier="WRONG",
                        counterexample=repr(row_ep), pattern=changed(
                            f"in the Jacobian d out[t] / d {wrt}[s], at (t, s) ", J, exact,
                            tol=1e-12))

        _with_known(prop, spec, ctx)()

    return run


def _gradcheck(spec: StepFunction):
    def run(fn, ctx: Context) -> None:
        gen = torch.Generator().manual_seed(0)
        B, T = 2, 9
        inputs = {k: torch.randn(B, T, generator=gen, dtype=torch.float64, requires_grad=True)
                  for k in spec.steps}
        kw: dict[str, Any] = {"gamma": 0.9}
        if spec.uses_lam:
            kw["lam"] = 0.8
        if spec.uses_n:
            kw["n"] = 3
        flags = {"terminated": torch.rand(B, T, generator=gen) < 0.2,
                 "truncated": torch.rand(B, T, generator=gen) < 0.2,
                 "mask": torch.rand(B, T, generator=gen) < 0.8}
        kw.update({f: flags[f] for f in spec.flags})

        def f(*xs):
            named = dict(zip(spec.steps, xs))
            return fn(*(named[a] for a in spec.args),
                      **{k: named[k] for k in spec.keyword_steps}, **kw)

        eps, atol, rtol = ctx.gradcheck_tolerances(1e-6, 1e-9, 1e-7)
        ok = torch.autograd.gradcheck(f, tuple(inputs[a] for a in spec.steps), eps=eps,
                                      atol=atol, rtol=rtol)
        ctx.tracker.saw()
        if not ok:
            raise CheckFailure(f"{spec.name}: torch.autograd.gradcheck failed")

    return run


def _bad_input(spec: StepFunction):
    """Each mistake of SPEC §1 'Bad input' raises ValueError/TypeError naming the argument."""

    def run(fn, ctx: Context) -> None:
        T = 4
        base = {"rewards": torch.ones(2, T, dtype=torch.float64),
                "values": torch.zeros(2, T, dtype=torch.float64),
                "next_values": torch.zeros(2, T, dtype=torch.float64),
                "gamma": 0.5, "lam": 0.5, "n": 2,
                "terminated": torch.zeros(2, T, dtype=torch.bool),
                "truncated": torch.zeros(2, T, dtype=torch.bool),
                "mask": torch.ones(2, T, dtype=torch.bool)}
        for bad in BAD_INPUTS:
            needs, word = bad.needs, bad.word
            kw = bad.apply(dict(base))
            caps = ctx.capabilities
            present = set(spec.steps) | {"gamma"} | {
                f for f in spec.flags if getattr(caps, f, True)
                and (caps.flags or f == "mask")}
            if spec.uses_lam:
                present.add("lam")
            if spec.uses_n:
                present.add("n")
            if needs == "shape" and len(spec.steps) < 2 or needs not in present | {"shape"}:
                continue
            args = [kw[a] for a in spec.args]
            call_kw = {k: kw[k] for k in present - set(spec.args)}
            expect_named_error(spec.name, needs, word, lambda: fn(*args, **call_kw))
            ctx.tracker.saw()

    return run


def _checks(spec: StepFunction) -> list[Check]:
    """The checks of one §2 function."""
    name = spec.name

    def check(suffix, summary, func, requires=(), tier="correctness") -> Check:
        return Check(f"{name}.{suffix}", name, summary, func, frozenset(requires), tier)

    made = [
        check("exact_small", "exact dyadic inputs, T <= 6, float64: equals the exact oracle",
              _value_check(spec, "exact", torch.float64)),
        check("float64", "general floats, T <= 40, float64, within the derived bound",
              _value_check(spec, "float", torch.float64)),
        check("float32", "general floats, T <= 40, float32, within the derived bound",
              _value_check(spec, "float", torch.float32))]
    made += [check(str(half).replace("torch.", ""), "general floats rounded to the half dtype, "
                   "T <= 40: within the float32 bound plus one final rounding (SPEC §1)",
                   _value_check(spec, "half", half), requires=("half",))
             for half in (torch.float16, torch.bfloat16)]
    if name != "td_errors":
        made.append(check("long_float32", "T = 100000 in float32, within the derived bound",
                          _long_check(spec)))
    return made + [
        check("batch_consistency", "row i of a batch equals row i alone",
              _batch_consistency(spec), tier="robustness"),
        check("hygiene", "inputs untouched; dtype, device, shape kept; deterministic",
              _hygiene(spec), tier="hygiene"),
        check("ignored_numbers", "NaN/inf at masked steps and terminated next_values do not "
              "leak", _ignored_numbers(spec), tier="robustness"),
        check("jacobian", "Jacobian equals the exact one (float64)", _jacobian(spec),
              requires=("gradients", "inconsistent_values")),
        check("gradcheck", "torch.autograd.gradcheck in float64", _gradcheck(spec),
              requires=("gradients", "mask", "truncated", "flags")),
        check("bad_input", "bad input raises ValueError/TypeError naming the argument",
              _bad_input(spec), requires=("validates_input",), tier="validation")]


CHECKS = CheckList(c for spec in STEP_FUNCTIONS.values() for c in _checks(spec))
