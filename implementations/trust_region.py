"""Torch twins of the trust-region pieces (SPEC §5): Fisher matrix of a softmax policy,
conjugate gradient, natural-gradient step, backtracking line search. Schulman et al. (2015),
TRPO, Appendix C."""

from __future__ import annotations

from typing import Any, Callable

import torch

from ._tensors import number, tensors

__all__ = ["fisher_matrix", "conjugate_gradient", "natural_gradient_step",
           "backtracking_line_search"]


def fisher_matrix(p: torch.Tensor) -> torch.Tensor:
    """``F = E_a[∇log π(a) ∇log π(a)ᵀ] = diag(p) − p pᵀ`` for ``π = softmax(θ)``, with respect
    to the logits, batched over leading axes: ``[..., K] → [..., K, K]`` (Kakade 2001)."""
    (p,) = tensors(p=p)
    if p.dim() == 0:
        raise ValueError("p must have a support axis (the last)")
    if bool((p <= 0).any()):
        raise ValueError("p must be strictly positive")
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)


def conjugate_gradient(Avp: Callable[[torch.Tensor], torch.Tensor], g: torch.Tensor,
                       iters: int, damping: float = 0.0) -> torch.Tensor:
    """Solve ``(A + damping·I) x = g`` with ``iters`` conjugate-gradient steps, given only the
    product ``Avp(v) = A v`` (Hestenes & Stiefel 1952). No host synchronisation inside the
    loop: a zero residual is handled by a guarded division."""
    (g,) = tensors(g=g)
    if not (isinstance(iters, int) and iters >= 0):
        raise ValueError(f"iters must be an integer >= 0, got {iters!r}")
    damping = number("damping", damping, minimum=0.0)
    x = torch.zeros_like(g)
    r, p = g.clone(), g.clone()
    rr = r.dot(r)
    tiny = torch.finfo(g.dtype).tiny
    for _ in range(iters):
        Ap = Avp(p) + damping * p
        pAp = p.dot(Ap)
        alpha = torch.where(rr > 0, rr / torch.clamp(pAp, min=tiny), torch.zeros_like(rr))
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = r.dot(r)
        beta = torch.where(rr > 0, rr_new / torch.clamp(rr, min=tiny), torch.zeros_like(rr))
        p = r + beta * p
        rr = rr_new
    return x


def natural_gradient_step(g: torch.Tensor, F: torch.Tensor, max_kl: float) -> torch.Tensor:
    """``sqrt(2δ / gᵀF⁻¹g)·F⁻¹g``: ``½ sᵀF s = δ`` (Schulman et al. 2015, Appendix C)."""
    g, = tensors(g=g)
    delta = number("max_kl", max_kl, minimum=0.0, strict=True)
    if F.shape != (g.shape[0], g.shape[0]):
        raise ValueError(f"F has shape {tuple(F.shape)} but g has {g.shape[0]} entries")
    x = torch.linalg.solve(F, g)
    quad = g.dot(x)
    if not bool(quad > 0):
        raise ValueError("gᵀF⁻¹g must be positive (F positive definite, g ≠ 0)")
    return torch.sqrt(2 * delta / quad) * x


def backtracking_line_search(objective: Callable[[Any], Any], kl: Callable[[Any], Any],
                             x: torch.Tensor, full_step: torch.Tensor, *, max_kl: float,
                             backtrack: float = 0.5, max_backtracks: int = 10):
    """Accept the first ``x + backtrack^k·full_step`` with ``kl ≤ max_kl`` and a positive
    improvement of ``objective``; ``(x, None)`` if none. Same rule as the oracle
    (Schulman et al. 2015, §6)."""
    max_kl = number("max_kl", max_kl, minimum=0.0, strict=True)
    base = objective(x)
    for k in range(max_backtracks):
        candidate = x + backtrack**k * full_step
        if bool(kl(candidate) <= max_kl) and bool(objective(candidate) - base > 0):
            return candidate, k
    return x.clone(), None
