"""Batched Torch GAE and λ-returns (SPEC §2); twins of :mod:`refmath.advantages`.

Schulman et al. (2016), "High-Dimensional Continuous Control Using Generalized Advantage
Estimation", eq. (16). ``A_t = δ_t + γ_t·λ·A_{t+1}`` inside a segment, ``A_t = δ_t`` at its
end, computed as one reverse linear scan (no Python loop over T, no cumulative products).
"""

from __future__ import annotations

import torch

from ._inputs import check_finite_result, check_unit_scalar, prepare
from .returns import _continuation, _not_terminated, _used
from ._scan import reverse_scan

__all__ = ["gae", "lambda_returns"]


def _gae(rewards, values, next_values, gamma, lam, terminated, truncated, mask):
    lam = check_unit_scalar("lam", lam)
    s = prepare(rewards, {"values": values, "next_values": next_values}, gamma=gamma,
                terminated=terminated, truncated=truncated, mask=mask)
    t = s.tensors
    delta = s.zero_absent(
        t["rewards"] + _not_terminated(s.gamma * t["next_values"], s) - t["values"])
    A = reverse_scan(delta, _continuation(s, s.gamma * lam, delta))
    inputs = {"rewards": rewards, "values": values, "next_values": next_values}
    used = {"rewards": _used(mask, None), "values": _used(mask, None),
            "next_values": _used(mask, terminated)}
    return s.restore(A, mask), inputs, used


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, *,
        gamma: float | torch.Tensor, lam: float,
        terminated: torch.Tensor | None = None, truncated: torch.Tensor | None = None,
        mask: torch.Tensor | None = None) -> torch.Tensor:
    """Generalized advantage estimates ``A_t = δ_t + γ_t·λ·A_{t+1}`` (``δ_t`` at segment ends).

    Args: ``[..., T]`` tensors of one floating dtype and device; ``gamma``, ``lam`` in [0, 1];
    boolean (or 0/1) ``terminated``, ``truncated``, ``mask``. Returns ``[..., T]``, 0 where
    masked. Differentiable with respect to rewards, values and next_values.
    """
    A, inputs, used = _gae(rewards, values, next_values, gamma, lam,
                           terminated, truncated, mask)
    return check_finite_result(A, inputs, used)


def lambda_returns(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, *,
                   gamma: float | torch.Tensor, lam: float,
                   terminated: torch.Tensor | None = None,
                   truncated: torch.Tensor | None = None,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """λ-returns ``G^λ_t = A_t + V_t`` (0 where masked). Sutton & Barto (2018), §12.1."""
    A, inputs, used = _gae(rewards, values, next_values, gamma, lam,
                           terminated, truncated, mask)
    G = A + values if mask is None else torch.where(mask.bool(), A + values, A)
    return check_finite_result(G, inputs, used)
