"""Capability discovery: one tiny exact probe per capability, to SUGGEST a ``--convention``
line — never assumed: the checks run with what the user declares.

Each probe calls the function once on a [1, 3] row of dyadic numbers (exact in every float
type) with one feature switched on, and compares with the exact oracle on the same numbers.
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


def discover(kind: str, fn: Callable) -> dict[str, tuple[bool, str]]:
    """``{capability: (supported, what the probe saw)}`` for a function in SPEC's layout
    (the per-step functions of SPEC §2)."""
    import torch

    if SPECS[kind].family != "steps":
        return {}
    base = _base(kind)
    found: dict[str, tuple[bool, str]] = {}
    for cap, make in _probes(kind).items():
        found[cap] = _agrees(kind, fn, make(base))
    grad_values = dict(base, rewards=base["rewards"].clone().requires_grad_())
    try:
        out = SPECS[kind].call(fn, grad_values)
        out.sum().backward()
        g = grad_values["rewards"].grad
        found["gradients"] = (g is not None and bool(g.abs().sum() > 0),
                              "autograd reaches rewards" if g is not None else "no gradient")
    except Exception as err:  # noqa: BLE001
        found["gradients"] = (False, f"raised {type(err).__name__}")
    try:
        SPECS[kind].call(fn, dict(base, gamma=1.5))
        found["validates_input"] = (False, "gamma = 1.5 accepted silently")
    except (ValueError, TypeError) as err:
        found["validates_input"] = ("gamma" in str(err), f"{type(err).__name__}: {err}"[:80])
    except Exception as err:  # noqa: BLE001
        found["validates_input"] = (False, f"raised {type(err).__name__}")
    del torch
    return found


def suggestion(found: dict[str, tuple[bool, str]]) -> str:
    missing = [f"no_{cap}" for cap, (ok, _) in found.items() if not ok]
    return f"--convention {','.join(missing)}" if missing else "(nothing to declare)"
