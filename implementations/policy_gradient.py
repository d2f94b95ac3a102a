"""Torch twins for SPEC §5: the expected return of a tabular MDP (differentiable, so autograd
gives ∇J), and the actor-critic losses. Twins of :mod:`refmath.policy_gradient`."""

from __future__ import annotations

from typing import Any

import torch

from ._inputs import checking
from .divergences import distribution_tolerance
from ._precision import float32_for_half
from ._tensors import finite, tensors

__all__ = ["expected_return", "critic_loss", "actor_loss"]


@float32_for_half
def expected_return(mdp: Any, pi: torch.Tensor) -> torch.Tensor:
    """``J = Σ_t γ^t Σ_s d_t(s) Σ_a π(a|s) r(s, a)`` with the state distribution
    ``d_0 = ρ``, ``d_{t+1}(s') = Σ_{s,a} d_t(s) π(a|s) P(s'|s, a)`` — the same J as the
    oracle's trajectory enumeration, by dynamic programming. Differentiable in ``pi``: with
    ``pi = softmax(θ)``, autograd gives ``∇_θ J`` (Sutton et al. 2000)."""
    (pi,) = tensors(pi=pi)
    _check_policy(pi)
    P = torch.tensor([[[float(x) for x in row] for row in plane] for plane in mdp.P],
                     dtype=pi.dtype, device=pi.device)
    R = torch.tensor([[float(x) for x in row] for row in mdp.R], dtype=pi.dtype,
                     device=pi.device)
    d = torch.tensor([float(x) for x in mdp.rho], dtype=pi.dtype, device=pi.device)
    if pi.shape != R.shape:
        raise ValueError(f"pi has shape {tuple(pi.shape)}, expected (S, A) = {tuple(R.shape)}")
    J = pi.new_zeros(())
    for t in range(mdp.H):  # a loop over the horizon of a tabular MDP, not over data
        J = J + float(mdp.gamma) ** t * (d[:, None] * pi * R).sum()
        d = torch.einsum("s,sa,sap->p", d, pi, P)
    return J


def _check_policy(pi: torch.Tensor) -> None:
    """Every row of pi a strictly positive distribution (as the oracle requires)."""
    finite({"pi": pi})
    if pi.dim() == 2 and checking():
        if bool((pi <= 0).any()):
            raise ValueError("pi must be strictly positive (a softmax policy)")
        off = (pi.sum(-1) - 1).abs() > distribution_tolerance(pi)
        if bool(off.any()):
            raise ValueError(f"pi[{int(off.nonzero()[0, 0])}] must sum to 1 (a distribution "
                             "over actions)")


@float32_for_half
def critic_loss(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """``(V − G)²`` per step, to MINIMISE (no ½). A3C, Mnih et al. (2016)."""
    V, G = tensors(values=values, returns=returns)
    finite({"values": V, "returns": G})
    return (V - G).square()


@float32_for_half
def actor_loss(logp: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """``−log π(a|s)·A`` per step with the advantage DETACHED, so the actor loss sends no
    gradient into the critic that produced A. Williams (1992); Mnih et al. (2016)."""
    logp, A = tensors(logp=logp, advantages=advantages)
    finite({"logp": logp, "advantages": A})
    return -logp * A.detach()
