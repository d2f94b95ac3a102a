"""Batched Torch divergences, entropies and KL estimators (SPEC §3); twins of
:mod:`refmath.divergences`. Categorical distributions on the last axis; natural logs."""

from __future__ import annotations

import torch

from ._inputs import checking
from ._precision import float32_for_half, source_dtype
from ._tensors import finite, tensors, where0

__all__ = ["kl_divergence", "entropy", "entropy_from_logits", "kl_estimate",
           "importance_weighted_kl_estimate"]

KL_ESTIMATORS = ("k1", "k2", "k3")


def distribution_tolerance(p: torch.Tensor) -> float:
    """How far from 1 the sum of K probabilities rounded to the caller's dtype may be:
    K roundings of u each (float64: 1e-5, the oracle's float tolerance)."""
    dtype = source_dtype(p.dtype)
    if dtype == torch.float64:
        return 1e-5
    u = torch.finfo(dtype).eps / 2
    return max(1e-5 * max(1, p.shape[-1]) ** 0.5, 2 * u * p.shape[-1])


def check_distribution(name: str, p: torch.Tensor) -> None:
    """Non-empty support axis, finite, non-negative, summing to 1 (to rounding)."""
    if p.dim() == 0:
        raise ValueError(f"{name} must have a support axis (the last)")
    if p.shape[-1] == 0:
        raise ValueError(f"{name} has an empty support axis (the last)")
    finite({name: p})
    if checking() and bool((p < 0).any()):
        raise ValueError(f"{name} has a negative probability")
    tol = distribution_tolerance(p)
    if checking() and bool(((p.sum(-1) - 1).abs() > tol).any()):
        raise ValueError(f"{name} must sum to 1 over the last axis")


def _plog(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """p·log q with 0·log q = 0; q is replaced by 1 where p = 0 so no NaN reaches autograd."""
    positive = p > 0
    return where0(positive, p * torch.log(torch.where(positive, q, torch.ones_like(q))))


@float32_for_half
def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``KL(p‖q) = Σ p·log(p/q)`` over the last axis; ``+inf`` where p > 0 = q.
    Kullback & Leibler (1951)."""
    p, q = tensors(p=p, q=q)
    check_distribution("p", p)
    check_distribution("q", q)
    return (_plog(p, p) - _plog(p, q)).sum(-1)


@float32_for_half
def entropy(p: torch.Tensor) -> torch.Tensor:
    """``H(p) = −Σ p·log p`` over the last axis (0·log 0 = 0). Shannon (1948)."""
    (p,) = tensors(p=p)
    check_distribution("p", p)
    return -_plog(p, p).sum(-1)


@float32_for_half
def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """``H = −Σ_i p_i·log p_i`` with ``log p = log_softmax(logits)`` (stable for ±1e4:
    an underflowed p_i contributes 0·finite = 0). Shannon (1948)."""
    (logits,) = tensors(logits=logits)
    if logits.dim() == 0:
        raise ValueError("logits must have a support axis (the last)")
    if logits.shape[-1] == 0:
        raise ValueError("logits has an empty support axis (the last)")
    finite({"logits": logits})
    logp = torch.log_softmax(logits, dim=-1)
    return -(torch.exp(logp) * logp).sum(-1)


@float32_for_half
def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str) -> torch.Tensor:
    """``k1 = −log r``, ``k2 = (log r)²/2``, ``k3 = exp(log r) − 1 − log r`` with
    ``log r = ref_logp − logp`` (Schulman 2020). k3 uses ``expm1`` (accurate near 0) and is
    ≥ 0 for every sample; it overflows to ``+inf`` for log r above ~88.7 (float32) / ~709.8
    (float64), where the exact value exceeds the largest float; never NaN for finite input.
    Which KL each estimates and which gradient each gives: :mod:`refmath.divergences`."""
    if kind not in KL_ESTIMATORS:
        raise ValueError(f"kind must be one of {KL_ESTIMATORS}, got {kind!r}")
    logp, ref_logp = tensors(logp=logp, ref_logp=ref_logp)
    finite({"logp": logp, "ref_logp": ref_logp})
    log_r = ref_logp - logp
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return log_r.square() / 2
    return torch.expm1(log_r) - log_r


def _estimate(kind: str, log_r: torch.Tensor) -> torch.Tensor:
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return log_r.square() / 2
    return torch.expm1(log_r) - log_r


@float32_for_half
def importance_weighted_kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor,
                                    old_logp: torch.Tensor, kind: str) -> torch.Tensor:
    """``exp(logp − old_logp)·k(ref_logp − logp)``: the KL penalty on samples from π_old
    (SPEC §7); the ratio and the estimator both carry the gradient."""
    if kind not in KL_ESTIMATORS:
        raise ValueError(f"kind must be one of {KL_ESTIMATORS}, got {kind!r}")
    logp, ref_logp, old_logp = tensors(logp=logp, ref_logp=ref_logp, old_logp=old_logp)
    finite({"logp": logp, "ref_logp": ref_logp, "old_logp": old_logp})
    return torch.exp(logp - old_logp) * _estimate(kind, ref_logp - logp)
