"""Exact oracles for importance ratios (SPEC §3).

Inputs are log-probabilities of the taken actions/tokens: ``logp`` (the current policy π_θ)
and ``old_logp`` (the policy that sampled), shape ``[..., T]``. Fraction inputs give exact
SymPy results (``exp`` of a rational is kept exact), floats give float64 arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._arrays import check_nonnegative, exp, prepare_arrays

__all__ = ["importance_ratio", "sequence_log_ratio", "geometric_mean_ratio",
           "truncated_importance_weight"]

Array = Any


def importance_ratio(logp: Array, old_logp: Array) -> np.ndarray:
    """Per-step importance ratio ``r_t = π_θ(a_t|s_t) / π_old(a_t|s_t) = exp(logp_t − old_logp_t)``.

    Computed from the difference of log-probabilities (never as a quotient of probabilities,
    which underflow). Schulman et al. (2017), PPO, eq. (6); Kahn & Marshall (1953).

    >>> from fractions import Fraction as F
    >>> importance_ratio([F(0)], [F(0)])[0]
    1
    """
    p = prepare_arrays({"logp": logp, "old_logp": old_logp}, min_ndim=0)
    out = p.empty()
    for idx in np.ndindex(p.shape):
        out[idx] = exp(p.arrays["logp"][idx] - p.arrays["old_logp"][idx])
    return out


def _row_log_ratios(p, idx):
    T = p.shape[-1]
    mask = p.flags["mask"]
    return [p.arrays["logp"][idx + (t,)] - p.arrays["old_logp"][idx + (t,)]
            for t in range(T) if mask[idx + (t,)]]


def sequence_log_ratio(logp: Array, old_logp: Array, mask: Array | None = None) -> np.ndarray:
    """``log Π_t r_t = Σ_t mask_t·(logp_t − old_logp_t)`` along the last axis: shape ``[...]``.

    The log of the sequence-level importance ratio (the product of the token ratios), as in
    sequence-level PPO/GSPO (Zheng et al. 2025). A row with no unmasked step has log-ratio 0.

    >>> from fractions import Fraction as F
    >>> sequence_log_ratio([F(1), F(2)], [F(0), F(0)], mask=[1, 0])[()]
    Fraction(1, 1)
    """
    p = prepare_arrays({"logp": logp, "old_logp": old_logp}, flags={"mask": mask})
    out = p.empty(p.shape[:-1])
    for idx in np.ndindex(p.shape[:-1]):
        out[idx] = sum(_row_log_ratios(p, idx), p.zero)
    return out


def geometric_mean_ratio(logp: Array, old_logp: Array, mask: Array | None = None) -> np.ndarray:
    """``exp( Σ_t mask_t·(logp_t − old_logp_t) / Σ_t mask_t )``: the sequence ratio of GSPO.

    The geometric mean of the unmasked token ratios. Zheng et al. (2025), "Group Sequence
    Policy Optimization", eq. (7). A row with no unmasked step has ratio 1 (log-ratio 0, as
    verl's implementation gives by clamping the length to 1).
    """
    p = prepare_arrays({"logp": logp, "old_logp": old_logp}, flags={"mask": mask})
    out = p.empty(p.shape[:-1])
    for idx in np.ndindex(p.shape[:-1]):
        ratios = _row_log_ratios(p, idx)
        mean = sum(ratios, p.zero) / len(ratios) if ratios else p.zero
        out[idx] = exp(mean)
    return out


def truncated_importance_weight(ratio: Array, cap: Any) -> np.ndarray:
    """``min(r, cap)``: the truncated importance weight (``cap > 0``).

    Ionides (2008), "Truncated importance sampling"; Espeholt et al. (2018), IMPALA/V-trace
    (ρ̄, c̄). Bad input: ``cap ≤ 0`` or a negative ratio raise ``ValueError``; a ratio
    that overflowed to ``+inf`` gives ``cap``.

    >>> from fractions import Fraction as F
    >>> list(truncated_importance_weight([F(1, 2), F(3)], cap=2))
    [Fraction(1, 2), Fraction(2, 1)]
    """
    p = prepare_arrays({"ratio": ratio}, numbers={"cap": cap}, min_ndim=0,
                       allow_inf=("ratio",))
    check_nonnegative("cap", p.scalars["cap"], strict=True)
    out = p.empty()
    for idx in np.ndindex(p.shape):
        r = p.arrays["ratio"][idx]
        check_nonnegative("ratio", r)
        out[idx] = min(r, p.scalars["cap"])
    return out
