"""Exact oracles for importance ratios (SPEC §3).

Inputs are log-probabilities of the taken actions/tokens: ``logp`` (the current policy π_θ)
and ``old_logp`` (the policy that sampled), shape ``[..., T]``. Fraction inputs give exact
SymPy results (``exp`` of a rational is kept exact), floats give float64 arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._arrays import Array, check_nonnegative, exp, prepare_arrays

__all__ = ["importance_ratio", "sequence_log_ratio", "geometric_mean_ratio",
           "truncated_importance_weight", "rollout_correction", "CORRECTION_LEVELS",
           "CORRECTION_MODES"]

CORRECTION_LEVELS = ("token", "sequence")
CORRECTION_MODES = ("truncate", "mask")



def importance_ratio(logp: Array, old_logp: Array) -> np.ndarray:
    """Per-step importance ratio ``r_t = π_θ(a_t|s_t) / π_old(a_t|s_t) = exp(logp_t − old_logp_t)``.

    Computed from the difference of log-probabilities (never as a quotient of probabilities,
    which underflow). Schulman et al. (2017), PPO, eq. (6); Kahn & Marshall (1953).

    Args:
        logp: ``[..., T]`` log π_θ(a_t|s_t) (or any shape).
        old_logp: log π_old(a_t|s_t), the same shape.

    Examples:
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

    Args:
        logp: ``[..., T]`` log π_θ(a_t|s_t), the current policy's log-probabilities of the taken
            actions (tokens).
        old_logp: ``[..., T]`` log π_old(a_t|s_t), those of the policy that sampled them.
        mask: ``[..., T]`` booleans, True at the tokens of the sequence; default all.

    Examples:
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

    Args:
        logp: ``[..., T]`` log π_θ(a_t|s_t), the current policy's log-probabilities of the taken
            actions (tokens).
        old_logp: ``[..., T]`` log π_old(a_t|s_t), those of the policy that sampled them.
        mask: ``[..., T]`` booleans, True at the tokens of the sequence; default all.
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

    Args:
        ratio: importance ratios ≥ 0 (any shape; +inf gives ``cap``).
        cap: the truncation level > 0 (ρ̄ or c̄ in V-trace).

    Examples:
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


def _correction_options(level: str, mode: str, low: Any) -> None:
    if level not in CORRECTION_LEVELS:
        raise ValueError(f"level must be one of {CORRECTION_LEVELS}, got {level!r}")
    if mode not in CORRECTION_MODES:
        raise ValueError(f"mode must be one of {CORRECTION_MODES}, got {mode!r}")
    if low is not None and mode != "mask":
        raise ValueError("low is used only by mode='mask' (truncation has no lower bound)")


def rollout_correction(logp: Array, rollout_logp: Array, mask: Array, *, level: str = "token",
                       mode: str = "truncate", low: Any = None, high: Any = 2.0) -> np.ndarray:
    """Importance weights for the mismatch between the trainer (``logp``) and the inference
    engine that sampled (``rollout_logp``), shape ``[..., T]`` (SPEC §7):

    * ``level="token"``: ``w_t = exp(logp_t − rollout_logp_t)``;
    * ``level="sequence"``: one ``w = exp(Σ_t mask_t·(logp_t − rollout_logp_t))`` per
      sequence, written to each of its response tokens;
    * ``mode="truncate"`` (TIS): ``min(w, high)``; ``mode="mask"`` (MIS): ``w`` if
      ``low ≤ w ≤ high`` else 0 (``low`` defaults to 0).

    Masked tokens get 0 and are never read. The weights are constants of the loss: no
    gradient flows through them. Yao et al. (2025), "Your efficient RL framework secretly
    brings you off-policy RL training" (TIS); Ionides (2008).

    Args:
        logp: ``[..., T]`` the trainer's log-probabilities of the sampled tokens.
        rollout_logp: ``[..., T]`` the inference engine's log-probabilities of the same tokens.
        mask: ``[..., T]`` booleans, True at the response tokens.
        level: ``"token"`` (a weight per token) or ``"sequence"`` (one per sequence).
        mode: ``"truncate"`` (TIS: ``min(w, high)``) or ``"mask"`` (MIS: 0 outside [low, high]).
        low: MIS's lower bound (default 0); not read by ``"truncate"``.
        high: TIS's cap, MIS's upper bound (default 2).
    """
    _correction_options(level, mode, low)
    p = prepare_arrays({"logp": logp, "rollout_logp": rollout_logp}, flags={"mask": mask},
                       numbers={"low": low, "high": high})
    lo, hi = p.scalars.get("low", 0), p.scalars["high"]
    check_nonnegative("low", lo)
    check_nonnegative("high", hi, strict=True)
    if not lo <= hi:
        raise ValueError(f"low must be <= high, got {lo} > {hi}")
    m = p.flags["mask"]
    d = {idx: p.arrays["logp"][idx] - p.arrays["rollout_logp"][idx]
         for idx in np.ndindex(p.shape) if m[idx]}
    out = p.zeros()
    for row in np.ndindex(p.shape[:-1]):
        steps = [row + (t,) for t in range(p.shape[-1]) if m[row + (t,)]]
        total = sum((d[idx] for idx in steps), p.zero)
        for idx in steps:
            w = exp(d[idx] if level == "token" else total)
            out[idx] = min(w, hi) if mode == "truncate" else (w if lo <= w <= hi else p.zero)
    return out
