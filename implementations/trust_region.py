"""Torch twins of the trust-region pieces (SPEC §5): Fisher matrix of a softmax policy,
conjugate gradient, natural-gradient step, backtracking line search. Schulman et al. (2015),
TRPO, Appendix C."""

from __future__ import annotations

import numbers
from typing import Any, Callable

import torch

from ._inputs import checking
from ._precision import float32_for_half
from ._tensors import finite, number, tensors
from .divergences import check_distribution

__all__ = ["fisher_matrix", "conjugate_gradient", "natural_gradient_step",
           "backtracking_line_search"]


@float32_for_half
def fisher_matrix(p: torch.Tensor) -> torch.Tensor:
    """``F = E_a[∇log π(a) ∇log π(a)ᵀ] = diag(p) − p pᵀ`` for ``π = softmax(θ)``, with respect
    to the logits, batched over leading axes: ``[..., K] → [..., K, K]`` (Kakade 2001)."""
    (p,) = tensors(p=p)
    check_distribution("p", p)
    if checking() and bool((p <= 0).any()):
        raise ValueError("p must be strictly positive")
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)


@float32_for_half
def conjugate_gradient(Avp: Callable[[torch.Tensor], torch.Tensor], g: torch.Tensor,
                       iters: int, damping: float = 0.0) -> torch.Tensor:
    """Solve ``(A + damping·I) x = g`` with ``iters`` conjugate-gradient steps, given only the
    product ``Avp(v) = A v`` (Hestenes & Stiefel 1952). No host synchronisation inside the
    loop: a zero residual is handled by a guarded division, and a direction with
    ``pᵀ(A + damping·I)p ≤ 0`` (A not positive definite) is remembered and reported after
    the loop as a ``ValueError`` naming Avp (one host synchronisation)."""
    (g,) = tensors(g=g)
    if g.dim() != 1 or g.numel() == 0:
        raise ValueError(f"g must be a non-empty vector (one axis), got shape {tuple(g.shape)}")
    if isinstance(iters, bool) or not isinstance(iters, numbers.Integral) or iters < 0:
        raise ValueError(f"iters must be an integer >= 0, got {iters!r}")
    damping = number("damping", damping, minimum=0.0)
    finite({"g": g})
    x = torch.zeros_like(g)
    r, p = g.clone(), g.clone()
    rr = r.dot(r)
    tiny = torch.finfo(g.dtype).tiny
    indefinite = torch.zeros((), dtype=torch.bool, device=g.device)
    for _ in range(int(iters)):
        Ap = Avp(p)
        if not isinstance(Ap, torch.Tensor) or Ap.shape != p.shape:
            raise ValueError(f"Avp must return a tensor of shape {tuple(p.shape)}, got "
                             f"{getattr(Ap, 'shape', type(Ap).__name__)}")
        Ap = Ap + damping * p
        pAp = p.dot(Ap)
        indefinite = indefinite | ((rr > 0) & ~(pAp > 0))
        alpha = torch.where(rr > 0, rr / torch.clamp(pAp, min=tiny), torch.zeros_like(rr))
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = r.dot(r)
        beta = torch.where(rr > 0, rr_new / torch.clamp(rr, min=tiny), torch.zeros_like(rr))
        p = r + beta * p
        rr = rr_new
    if checking() and bool(indefinite | ~torch.isfinite(x.detach()).all()):
        raise ValueError("Avp is not positive definite (a direction with pᵀAp ≤ 0, or a "
                         "non-finite product): conjugate gradient needs a symmetric positive "
                         "definite operator; add damping (e.g. damping=1e-2)")
    return x


def _check_positive_definite(F: torch.Tensor) -> None:
    """F symmetric with every eigenvalue above ``100·K·eps·max|λ|`` (numerically positive
    definite): a singular F (the softmax Fisher over all K logits has ``F·1 = 0``) would
    give a step of rounding noise, ~1e7 long, with ``½sᵀFs ≠ δ``."""
    if not checking():
        return
    K = F.shape[0]
    eps = torch.finfo(F.dtype).eps
    scale = F.detach().abs().max()
    if not bool((F.detach() - F.detach().T).abs().max() <= 10 * K * eps * scale):
        raise ValueError("F must be symmetric (a Fisher matrix is)")
    eig = torch.linalg.eigvalsh(F.detach())
    if not bool(eig[0] > 100 * K * eps * eig.abs().max()):
        raise ValueError(f"F is singular or indefinite (smallest eigenvalue {eig[0].item():.3g}"
                         f", largest {eig[-1].item():.3g}): add damping, F + λ·I with λ ~ "
                         "1e-3·trace(F)/K, or drop the redundant logit of a softmax")


@float32_for_half
def natural_gradient_step(g: torch.Tensor, F: torch.Tensor, max_kl: float) -> torch.Tensor:
    """``sqrt(2δ / gᵀF⁻¹g)·F⁻¹g``: ``½ sᵀF s = δ`` (Schulman et al. 2015, Appendix C)."""
    g, = tensors(g=g)
    if g.dim() != 1 or g.numel() == 0:
        raise ValueError(f"g must be a non-empty vector (one axis), got shape {tuple(g.shape)}")
    if not isinstance(F, torch.Tensor):
        raise TypeError(f"F must be a torch.Tensor, got {type(F).__name__}")
    if F.dtype != g.dtype or F.device != g.device:
        raise TypeError(f"F must have g's dtype and device ({g.dtype}, {g.device}), got "
                        f"{F.dtype} on {F.device}")
    delta = number("max_kl", max_kl, minimum=0.0, strict=True)
    if F.shape != (g.shape[0], g.shape[0]):
        raise ValueError(f"F has shape {tuple(F.shape)} but g has {g.shape[0]} entries")
    finite({"g": g, "F": F})
    _check_positive_definite(F)
    x = torch.linalg.solve(F, g)
    quad = g.dot(x)
    if not bool(quad > 0):
        raise ValueError("gᵀF⁻¹g must be positive (F positive definite, g ≠ 0)")
    return torch.sqrt(2 * delta / quad) * x


@float32_for_half
def backtracking_line_search(objective: Callable[[Any], Any], kl: Callable[[Any], Any],
                             x: torch.Tensor, full_step: torch.Tensor, *, max_kl: float,
                             backtrack: float = 0.5, max_backtracks: int = 10):
    """Accept the first ``x + backtrack^k·full_step`` with ``kl ≤ max_kl`` and a positive
    improvement of ``objective``; ``(x, None)`` if none. Same rule as the oracle
    (Schulman et al. 2015, §6)."""
    max_kl = number("max_kl", max_kl, minimum=0.0, strict=True)
    backtrack = number("backtrack", backtrack, minimum=0.0, strict=True)
    if backtrack >= 1:
        raise ValueError(f"backtrack must lie in (0, 1), got {backtrack:g}")
    if isinstance(max_backtracks, bool) or not isinstance(max_backtracks, numbers.Integral) \
            or max_backtracks < 1:
        raise ValueError(f"max_backtracks must be an integer >= 1, got {max_backtracks!r}")
    (x, full_step) = tensors(x=x, full_step=full_step)
    if x.dim() != 1 or x.numel() == 0:
        raise ValueError(f"x must be a non-empty vector (one axis), got shape {tuple(x.shape)}")
    finite({"x": x, "full_step": full_step})
    base = objective(x)
    for k in range(max_backtracks):
        candidate = x + backtrack**k * full_step
        if bool(kl(candidate) <= max_kl) and bool(objective(candidate) - base > 0):
            return candidate, k
    return x.clone(), None
