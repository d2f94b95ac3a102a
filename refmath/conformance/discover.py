"""Capability discovery: one tiny exact probe per capability, to SUGGEST what to declare
— never assumed: the checks run with what the user declares.

Every probe goes through the user's binding (the same adapter the checks call: their layout,
names, axes and array library), and only capabilities the binding has not already declared
missing are probed. For the per-step functions of SPEC §2 each probe calls the function once
on a [1, 3] row of dyadic numbers (exact in every float type) with one feature switched on;
for every other kind it uses the kind's first pinned input (the same on every run).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

import numpy as np

from ..checks.specs import SPECS

__all__ = ["discover", "suggestion"]

_R, _V, _NV = [1.0, 2.0, 4.0], [0.125, 0.25, 0.375], [0.5, 0.75, 1.5]


def _base(kind: str):
    import torch

    spec = SPECS[kind]
    t = lambda xs: torch.tensor([xs], dtype=torch.float64)  # noqa: E731
    values: dict[str, Any] = {"rewards": t(_R), "values": t(_V), "next_values": t(_NV),
                              "gamma": 0.5}
    if spec.has("lam"):
        values["lam"] = 0.5
    if spec.has("n"):
        values["n"] = 2
    return {k: v for k, v in values.items() if spec.has(k)}


def _exact(kind: str, values: dict[str, Any]) -> np.ndarray:
    import torch

    spec = SPECS[kind]

    def frac(v):
        if isinstance(v, torch.Tensor):
            a = v.detach().numpy()
            if a.dtype == bool:
                return a
            return np.vectorize(lambda x: Fraction(float(x)), otypes=[object])(a)
        return Fraction(v) if isinstance(v, float) else v

    return np.vectorize(float)(spec.call(spec.oracle, {k: frac(v) for k, v in values.items()}))


def _agrees(kind: str, fn: Callable, values: dict[str, Any]) -> tuple[bool, str]:
    spec = SPECS[kind]
    try:
        out = spec.call(fn, values)
        got = np.asarray(out.detach().cpu().double().numpy() if hasattr(out, "detach")
                         else out, dtype=np.float64)
    except Exception as err:  # noqa: BLE001 - the probe's finding
        return False, f"raised {type(err).__name__}: {str(err)[:80]}"
    exact = _exact(kind, values)
    if got.shape != exact.shape:
        return False, f"shape {got.shape}, expected {exact.shape}"
    if not np.allclose(got, exact, rtol=1e-12, atol=1e-12):
        return False, f"{got.ravel().tolist()} vs exact {exact.ravel().tolist()}"
    return True, "agrees with the oracle"


def _probes(kind: str) -> dict[str, Callable[[dict], dict | None]]:
    import torch

    spec = SPECS[kind]
    flag = lambda xs: torch.tensor([xs])  # noqa: E731
    probes: dict[str, Callable[[dict], dict | None]] = {}
    if spec.has("mask"):
        probes["mask"] = lambda v: dict(v, mask=flag([True, False, True]))
    if spec.has("truncated"):
        probes["truncated"] = lambda v: dict(v, truncated=flag([False, True, False]))
    if spec.has("gamma"):
        probes["per_step_gamma"] = lambda v: dict(
            v, gamma=torch.tensor([0.5, 0.25, 1.0], dtype=torch.float64))
    if spec.has("next_values") and spec.has("values"):
        probes["inconsistent_values"] = lambda v: v  # _NV differs from values[t + 1]
    probes["batch"] = lambda v: {k: (x.reshape(1, 1, 3) if isinstance(x, torch.Tensor)
                                     and x.dim() == 2 else x) for k, x in v.items()}
    return probes


def discover(kind: str, fn: Callable, binding: Any = None) -> dict[str, tuple[bool, str]]:
    """``{capability: (supported, what the probe saw)}`` for ``fn`` written as ``binding``
    says (None: SPEC's own layout), for the capabilities the binding has not declared
    missing."""
    from . import Binding, Plan, bound

    from . import _adjust, _restrictions

    binding = binding if binding is not None else Binding()
    plan = Plan(fn, binding, [], kind=kind)
    caps = plan.capabilities()
    wrapped = bound(fn, kind, binding)
    if SPECS[kind].family == "steps":
        found = _discover_steps(kind, wrapped, caps)
    else:
        from ..checks.core import Context

        lay = plan.layout
        ctx = Context(capabilities=caps, only=_restrictions(kind, lay, dict(binding.only), fn),
                      accepts=lay.accepts if lay is not None else None,
                      computes_in=plan.computes_in(kind), adjust=_adjust(kind, plan))
        found = _discover_arrays(kind, wrapped, ctx)
    return {cap: r for cap, r in found.items() if getattr(caps, cap, True)}


def _discover_steps(kind: str, fn: Callable, caps: Any) -> dict[str, tuple[bool, str]]:
    base = _base(kind)
    found: dict[str, tuple[bool, str]] = {}
    for cap, make in _probes(kind).items():
        if getattr(caps, cap, True):
            found[cap] = _agrees(kind, fn, make(base))
    if caps.gradients:
        found["gradients"] = _gradients(kind, fn, base, "rewards")
    if caps.validates_input:
        found["validates_input"] = _validates(kind, fn, dict(base, gamma=1.5), "gamma")
    return found


def _gradients(kind: str, fn: Callable, values: dict[str, Any], name: str
               ) -> tuple[bool, str]:
    from ..checks.arrays import joined

    grad_values = dict(values, **{name: values[name].clone().requires_grad_()})
    try:
        out = joined(SPECS[kind].call(fn, grad_values))
        out.sum().backward()
        g = grad_values[name].grad
        return (g is not None and bool(g.abs().sum() > 0),
                f"autograd reaches {name}" if g is not None else "no gradient")
    except Exception as err:  # noqa: BLE001 - the probe's finding
        return False, f"raised {type(err).__name__}"


def _validates(kind: str, fn: Callable, values: dict[str, Any], word: str
               ) -> tuple[bool, str]:
    try:
        SPECS[kind].call(fn, values)
        return False, f"a bad {word} accepted silently"
    except (ValueError, TypeError) as err:
        return word in str(err), f"{type(err).__name__}: {err}"[:80]
    except Exception as err:  # noqa: BLE001
        return False, f"raised {type(err).__name__}"


def _discover_arrays(kind: str, fn: Callable, ctx: Any) -> dict[str, tuple[bool, str]]:
    """The kind's first pinned input (restricted to the binding's options) as it is, with a
    leading batch axis, differentiated, and its first bad input."""
    import torch

    from ..checks import array_row
    from ..checks.arrays import first_case, joined, prepare
    from ..checks.compare import exact_floats

    row = array_row(kind)
    if row is None:
        return {}
    caps = ctx.capabilities
    case = prepare(first_case(row), row, ctx)
    if case is None:
        return {}
    exact = exact_floats(row.call(row.oracle, case.exact_values(torch.float64)))

    def agrees(values: dict[str, Any], expected: np.ndarray) -> tuple[bool, str]:
        try:
            out = joined(row.call(fn, values))
            got = np.asarray(out.detach().cpu().double().numpy() if hasattr(out, "detach")
                             else out, dtype=np.float64)
        except Exception as err:  # noqa: BLE001 - the probe's finding
            return False, f"raised {type(err).__name__}: {str(err)[:80]}"
        if got.shape != expected.shape:
            return False, f"shape {got.shape}, expected {expected.shape}"
        rtol, atol = (1e-4, 1e-6) if ctx.computes_in == "float32" else (1e-9, 1e-12)
        if not np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True):
            return False, f"{got.ravel().tolist()[:6]} vs exact {expected.ravel().tolist()[:6]}"
        return True, "agrees with the oracle"

    found = {"base": agrees(case.values(torch.float64), exact)}
    if caps.batch and not row.reduces_batch:
        lifted = {k: (v.unsqueeze(0) if isinstance(v, torch.Tensor) and v.dim() > 0 else v)
                  for k, v in case.values(torch.float64).items()}
        found["batch"] = agrees(lifted, exact[None] if exact.ndim else exact)
    if caps.gradients and row.differentiable:
        name = list(case.arrays)[row.differentiable[0]]
        found["gradients"] = _gradients(kind, fn, case.values(torch.float64), name)
    if caps.validates_input and row.bad_inputs:
        bad = row.bad_inputs[0]
        try:
            bad.call(fn)
            found["validates_input"] = (False, f"a bad {bad.word} accepted silently")
        except (ValueError, TypeError) as err:
            found["validates_input"] = (bad.word in str(err), f"{type(err).__name__}: {err}"[:80])
        except Exception as err:  # noqa: BLE001 - the probe's finding
            found["validates_input"] = (False, f"raised {type(err).__name__}")
    return found


def suggestion(found: dict[str, tuple[bool, str]], binding: Any = None) -> str:
    missing = [f"no_{cap}" for cap, (ok, _) in found.items() if not ok and cap != "base"]
    if found.get("base", (True, ""))[0] is False:
        return ("nothing to declare would help: the first pinned input already disagrees "
                f"({found['base'][1]}); check the binding (layout, --arg) or the formula")
    if not missing:
        return "(nothing to declare)"
    words = ([binding.text()] if binding is not None and binding.text() else []) + missing
    return f"--bind {','.join(words)}"
