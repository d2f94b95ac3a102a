"""Batched Torch importance ratios (SPEC §3); twins of :mod:`refmath.ratios`."""

from __future__ import annotations

import torch

from ._inputs import checking
from ._precision import float32_for_half
from ._tensors import finite, mask_of, number, tensors, where0

__all__ = ["importance_ratio", "sequence_log_ratio", "geometric_mean_ratio",
           "truncated_importance_weight", "rollout_correction"]

CORRECTION_LEVELS = ("token", "sequence")
CORRECTION_MODES = ("truncate", "mask")


@float32_for_half
def importance_ratio(logp: torch.Tensor, old_logp: torch.Tensor) -> torch.Tensor:
    """``r = exp(logp − old_logp)``, from the difference (Schulman et al. 2017, eq. 6).

    A log-ratio above ~88.7 (float32) / ~709.8 (float64) overflows to ``+inf`` — the exact
    ratio is larger than the largest float; below ~−103 / ~−745 it underflows to 0. Never NaN:
    a NaN or ±inf log-probability raises ``ValueError`` naming it (as the oracle does).
    """
    logp, old_logp = tensors(logp=logp, old_logp=old_logp)
    finite({"logp": logp, "old_logp": old_logp})
    return torch.exp(logp - old_logp)


def _masked_log_ratios(logp, old_logp, mask, other: str = "old_logp"):
    logp, old_logp = tensors(**{"logp": logp, other: old_logp})
    if logp.dim() == 0:
        raise ValueError("logp must have a time axis: shape [..., T]")
    if logp.shape[-1] == 0:
        raise ValueError("logp has an empty last axis (T = 0)")
    keep = mask_of(mask, logp)
    finite({"logp": logp, other: old_logp}, keep)
    return where0(keep, logp - old_logp), keep


@float32_for_half
def sequence_log_ratio(logp: torch.Tensor, old_logp: torch.Tensor,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """``Σ_t mask_t·(logp_t − old_logp_t)`` over the last axis: the log of the sequence ratio
    (sequence-level ratios: Zheng et al. 2025, GSPO)."""
    d, _ = _masked_log_ratios(logp, old_logp, mask)
    return d.sum(-1)


@float32_for_half
def geometric_mean_ratio(logp: torch.Tensor, old_logp: torch.Tensor,
                         mask: torch.Tensor | None = None) -> torch.Tensor:
    """``exp(Σ_t m·(logp − old_logp) / Σ_t m)`` (GSPO, Zheng et al. 2025, eq. 7); 1 for a row
    with no unmasked step."""
    d, keep = _masked_log_ratios(logp, old_logp, mask)
    count = keep.sum(-1).clamp(min=1).to(d.dtype)
    return torch.exp(d.sum(-1) / count)


@float32_for_half
def truncated_importance_weight(ratio: torch.Tensor, cap: float) -> torch.Tensor:
    """``min(r, cap)`` (Ionides 2008; IMPALA's ρ̄). Gradient 1 where ``r ≤ cap``, else 0.
    A ratio that overflowed to ``+inf`` gives ``cap`` (the exact limit); NaN raises."""
    (ratio,) = tensors(ratio=ratio)
    cap = number("cap", cap, minimum=0.0, strict=True)
    finite({"ratio": ratio}, allow_inf=("ratio",))
    if checking() and bool((ratio < 0).any()):
        raise ValueError("ratio must be non-negative")
    return torch.clamp(ratio, max=cap)


def _correction_bounds(level, mode, low, high) -> tuple[float, float]:
    if level not in CORRECTION_LEVELS:
        raise ValueError(f"level must be one of {CORRECTION_LEVELS}, got {level!r}")
    if mode not in CORRECTION_MODES:
        raise ValueError(f"mode must be one of {CORRECTION_MODES}, got {mode!r}")
    if low is not None and mode != "mask":
        raise ValueError("low is used only by mode='mask' (truncation has no lower bound)")
    lo = number("low", 0.0 if low is None else low, minimum=0.0)
    hi = number("high", high, minimum=0.0, strict=True)
    if lo > hi:
        raise ValueError(f"low must be <= high, got {lo:g} > {hi:g}")
    return lo, hi


@float32_for_half
def rollout_correction(logp: torch.Tensor, rollout_logp: torch.Tensor, mask: torch.Tensor, *,
                       level: str = "token", mode: str = "truncate", low: float | None = None,
                       high: float = 2.0) -> torch.Tensor:
    """Trainer/inference-engine mismatch weights (SPEC §7): ``w = exp(logp − rollout_logp)``
    per token, or ``exp(Σ_t m·(logp − rollout_logp))`` per sequence on each of its tokens;
    ``truncate`` (TIS) ``min(w, high)``, ``mask`` (MIS) ``w`` if ``low ≤ w ≤ high`` else 0.
    Detached: no gradient flows through the weights (Yao et al. 2025). 0 where masked."""
    lo, hi = _correction_bounds(level, mode, low, high)
    d, keep = _masked_log_ratios(logp.detach() if isinstance(logp, torch.Tensor) else logp,
                                 rollout_logp, mask, other="rollout_logp")
    if level == "sequence":
        d = d.sum(-1, keepdim=True).expand_as(d)
    w = torch.exp(d)
    if mode == "truncate":
        w = torch.clamp(w, max=hi)
    else:
        w = torch.where((w >= lo) & (w <= hi), w, w.new_zeros(()))
    return where0(keep, w).detach()
