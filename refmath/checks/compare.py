"""The one comparison of every value check, and the one failure anatomy: check id, tier,
worst element, yours vs exact, the bound, the minimal counterexample, a runnable reproduction
that calls the USER's function and prints the exact expected value, and the diagnosis from
the catalogue of known mistakes."""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from .core import LIKELY, CheckFailure, Context, Target
from .specs import FunctionSpec

__all__ = ["compare", "literal", "reproduction", "exact_floats"]

# WRONG: the error is beyond the bound AND more than 1e-5 of the result's scale (the largest
# |exact| of the output): a formula bug. Beyond the bound but within 1e-5 of the scale (an
# epsilon of 1e-8 added to a denominator, a float32 step inside float64): IMPRECISE.
WRONG_RELATIVE = 1e-5


def exact_floats(exact: Any) -> np.ndarray:
    a = np.asarray(exact, dtype=object) if not isinstance(exact, np.ndarray) else exact
    if a.dtype == object:
        return np.vectorize(_to_float, otypes=[np.float64])(a)
    return a.astype(np.float64)


def _to_float(x: Any) -> float:
    import sympy

    if isinstance(x, sympy.Basic):
        if x == sympy.oo:
            return float("inf")
        if x == -sympy.oo:
            return float("-inf")
        return float(sympy.N(x, 20))  # 20 correct digits: a float64 is 17
    return float(x)


def literal(t: Any) -> str:
    """Python source that rebuilds ``t`` (a tensor, an array, a number)."""
    import torch

    if isinstance(t, torch.Tensor):
        dtype = "" if t.dtype == torch.bool else f", dtype={t.dtype}"
        return f"torch.tensor({t.tolist()!r}{dtype})"
    if isinstance(t, np.ndarray):
        return f"np.array({t.tolist()!r})"
    return repr(t)


def reproduction(spec: FunctionSpec, values: dict[str, Any], target: Target | None,
                 exact: Any = None) -> str:
    """A runnable snippet: import the function under test, call it on ``values``, print it
    next to the exact answer."""
    target = target or Target(f"from refmath_torch import {spec.name}", spec.name)
    args, kwargs = spec.bind(values)
    call = ", ".join([literal(a) for a in args] + [f"{k}={literal(v)}" for k, v in kwargs.items()])
    lines = ["import numpy as np", "import torch", target.imports,
             f"print({target.callee}({call}))"]
    if exact is not None:
        shown = np.vectorize(str, otypes=[object])(np.asarray(exact, dtype=object)).tolist()
        lines.append(f"print('exact:', {shown!r})")
    return "\n".join(lines)


def _tier(err: float, bound: float, scale: float, label: str, got: np.ndarray,
          exact: np.ndarray, declared_float32: bool = False) -> str:
    """WRONG (an error beyond 1e-5 of the result's scale) or IMPRECISE. "Runs in float32" is
    said only when measured: a float64 result within the float32 bound whose every element
    is a float32 number, where the exact answer is not (and never when float32 is declared:
    the bound is float32's already)."""
    if "float64" in label and not declared_float32 and err <= bound * (2.0**-24 / 2.0**-53):
        if _all_float32(got) and not _all_float32(exact):
            return ("IMPRECISE (every output is a float32 number and the error is within the "
                    "float32 bound: the computation runs in float32; declare "
                    "computes_in=float32 if that is by design)")
        return "IMPRECISE (within the float32 bound)"
    return "WRONG" if not err <= WRONG_RELATIVE * scale else "IMPRECISE"


def _all_float32(a: np.ndarray) -> bool:
    finite = a[np.isfinite(a)]
    with np.errstate(over="ignore"):
        return bool(np.array_equal(finite.astype(np.float32).astype(np.float64), finite))


def _where(worst: tuple[int, ...], time_axis: bool) -> str:
    if time_axis and worst:
        return f"batch={tuple(int(i) for i in worst[:-1])}, t={int(worst[-1])}"
    return f"index {tuple(int(i) for i in worst)}"


def _pattern(name: str, got: np.ndarray, exact: np.ndarray, off: np.ndarray,
             values: dict[str, Any] | None, time_axis: bool) -> str:
    """The ``where`` line (:mod:`.where`); a pattern that cannot be read is left out."""
    from .where import OUTPUTS, pattern

    try:
        return pattern(got, exact, off, values, time_axis, OUTPUTS.get(name, ()))
    except Exception:  # noqa: BLE001 - a description is never worth hiding the failure
        return ""


def compare(spec: FunctionSpec, got: Any, exact: Any, bound: Any, ctx: Context, label: str,
            *, inputs: str, values: dict[str, Any] | None = None,
            rerun: Callable[[Callable], Any] | None = None,
            probes: Callable[[], list] | None = None,
            example: dict[str, Any] | None = None, time_axis: bool = False) -> None:
    """Raise :class:`CheckFailure` at the worst element if any error exceeds its bound.

    ``values`` (the inputs by parameter name, as the function saw them) adds a reproduction,
    ``rerun(f)`` (``f`` called on the same input) the diagnosis, ``probes()`` its
    fingerprint's other inputs (:mod:`refmath.checks.fingerprints`), ``example`` (the check's
    keyword arguments) lets later checks of the run reuse the counterexample."""
    got = np.asarray(got, dtype=np.float64)
    exact_f = exact_floats(exact)
    if got.shape != exact_f.shape:
        raise CheckFailure(f"{spec.name} {label}: returned shape {got.shape}, expected "
                           f"{exact_f.shape}\n  inputs: {inputs}", tier="WRONG",
                           counterexample=inputs, example=example)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), got.shape)
    both_inf = np.isinf(exact_f) & (got == exact_f)
    with np.errstate(invalid="ignore"):
        err = np.where(both_inf, 0.0, np.abs(got - exact_f))
    err = np.where(np.isnan(got) & ~np.isnan(exact_f), np.inf, err)
    floor = 4 * 2.0**-126  # a few float32 subnormal steps: bounds of exact zeros
    ratio = np.nan_to_num(err / (bound + floor), nan=0.0, posinf=np.inf)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.ndim else ()
    ctx.tracker.saw(float(min(ratio[worst], 1e300)))
    if not ratio[worst] > 1:
        return
    finite = np.abs(exact_f[np.isfinite(exact_f)])
    scale = float(finite.max()) if finite.size else 0.0
    tier = _tier(float(err[worst]), float(bound[worst]), scale, label, got, exact_f,
                 ctx.computes_in == "float32")
    yours = "NaN" if np.isnan(got[worst]) else repr(float(got[worst]))
    exact_text = str(np.asarray(exact, dtype=object)[worst]) if np.ndim(exact) else str(exact)
    where = _where(worst, time_axis)
    pattern = _pattern(spec.name, got, exact_f, ratio > 1, values, time_axis)
    message = (f"{spec.name} {label}: {tier} (error is {float(ratio[worst]):.3g} x the allowed "
               f"bound)\n  worst element {where}: yours = {yours}  exact = {exact_text}  "
               f"bound = {float(bound[worst]):.3g}" + (f"\n  where          {pattern}"
                                                      if pattern else ""))
    diagnosis = None
    if rerun is not None:
        from .mutants import diagnose

        message += LIKELY
        diagnosis = functools.partial(diagnose, spec.name, rerun, got, bound, ctx,
                                      exact=exact_f, probes=probes)
    message += f"\n  inputs: {inputs}"
    repro = ""
    if values is not None:
        repro = reproduction(spec, values, ctx.target, exact)
        message += "\n  reproduce:\n" + "\n".join("      " + line
                                                  for line in repro.splitlines())
    raise CheckFailure(message, tier=tier, worst=where, yours=yours, exact=exact_text,
                       bound=f"{float(bound[worst]):.3g}", pattern=pattern,
                       counterexample=inputs,
                       reproduction=repro, diagnosis=diagnosis, example=example)
