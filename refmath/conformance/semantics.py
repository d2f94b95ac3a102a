"""The libraries' semantics: the row a layout's function is checked against, derived from
refmath's own row by composing exact oracles with explicit options.

A faithful port of a library's function must PASS in that library's layout, and a bug in it
must still fail with its cause named: so where a library computes something other than SPEC's
formula by design (a clamp, whitening after GAE, a compute precision), the layout names a
:class:`Semantics` whose ``derive`` turns the kind's row into the row actually checked — its
oracle a literal composition of refmath's oracles, its bound the composed bound — and every
named check then runs unchanged on the derived row. Each derivation cites the library file and
version it mirrors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Callable

import numpy as np

__all__ = ["Semantics", "clamped", "openrlhf_approx_kl"]


@dataclass(frozen=True)
class Semantics:
    """What a library computes for a kind, as a derivation of refmath's row."""

    text: str  # the formula, and the library file and version it mirrors
    derive: Callable[[Any], Any]  # ArrayFunction → ArrayFunction
    # checks of the kind whose assertion the library's formula does not share, with why
    not_applicable: dict[str, str] = field(default_factory=dict)
    computes_in: str | None = None  # the library's declared compute precision


def clamped(oracle: Callable[..., Any], lo: Fraction, hi: Fraction) -> Callable[..., Any]:
    """``min(max(oracle(...), lo), hi)`` elementwise, exactly."""

    @functools.wraps(oracle)
    def clamp(*args: Any, **kwargs: Any) -> np.ndarray:
        out = np.asarray(oracle(*args, **kwargs), dtype=object)
        return np.vectorize(lambda v: min(max(v, lo), hi), otypes=[object])(out)

    return clamp


def _openrlhf_kl(row: Any) -> Any:
    """OpenRLHF 0.11.0 ``compute_approx_kl`` (openrlhf/models/utils.py, OpenRLHF/OpenRLHF at
    3c3be62)::

        log_ratio = log_probs.float() - log_probs_base.float()
        k1: log_ratio;  k2: log_ratio**2 / 2.0;  k3: (-log_ratio).exp() - 1 + log_ratio
        return log_ratio.clamp(min=-10, max=10)

    With SPEC's ``log r = ref_logp − logp`` these are SPEC's k1, k2, k3 exactly, then
    clamped: the derived oracle is ``clamp(refmath.kl_estimate(logp, ref_logp, kind), −10,
    10)``, computed in float32 (declared: float64 inputs get the float32 bound). A clamp is
    1-Lipschitz and exact in floating point, so the unclamped bound holds unchanged."""
    import torch

    from ..checks.arrays import near
    from ..checks.compare import exact_floats

    oracle = clamped(row.oracle, Fraction(-10), Fraction(10))

    def kink(case: Any) -> bool:  # finite differences across the clamp mean nothing
        k = exact_floats(row.call(row.oracle, case.exact_values(torch.float64)))
        return bool(row.kink and row.kink(case)) or near(k, [-10.0, 10.0], 0.05)

    return replace(row, oracle=oracle, kink=kink)


openrlhf_approx_kl = Semantics(
    "clamp(k_kind(log r), −10, 10) computed in float32 — OpenRLHF compute_approx_kl "
    "(openrlhf/models/utils.py)", _openrlhf_kl,
    not_applicable={"gradient": "the ±10 clamp: the gradient is 0 beyond it (the gradcheck "
                                "check still compares autograd with finite differences)",
                    "extremes": "the ±10 clamp: no estimate is ever infinite"},
    computes_in="float32")
