"""Batched Torch TD errors and returns (SPEC §2); twins of :mod:`refmath.returns`.

Inputs ``[..., T]`` (time last), any floating dtype and device; the result has the input's
dtype and device. No Python loop over T: returns are a reverse linear scan
(:func:`refmath_torch._scan.reverse_scan`), n-step returns a log-depth composition of
windows. Differentiable with respect to rewards and next_values; inputs are never modified.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._inputs import StepInputs, check_finite_result, prepare
from ._scan import reverse_scan

__all__ = ["td_errors", "discounted_returns", "n_step_returns"]


def _not_terminated(x: torch.Tensor, s: StepInputs) -> torch.Tensor:
    """x where the step is present and not terminated, else exactly 0 (never 0·inf)."""
    keep = ~s.terminated if s.present is None else ~s.terminated & s.present
    return torch.where(keep, x, x.new_zeros(()))


def _used(mask, terminated):
    keep = None if mask is None else mask.bool()
    if terminated is None:
        return keep
    alive = ~terminated.bool()
    return alive if keep is None else keep & alive


def td_errors(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, *,
              gamma: float | torch.Tensor,
              terminated: torch.Tensor | None = None) -> torch.Tensor:
    """``δ_t = r_t + γ_t·(1 − terminated_t)·V'_t − V_t``. Sutton (1988)."""
    s = prepare(rewards, {"values": values, "next_values": next_values}, gamma=gamma,
                terminated=terminated)
    t = s.tensors
    delta = t["rewards"] + _not_terminated(s.gamma * t["next_values"], s) - t["values"]
    out = s.restore(delta, None)
    return check_finite_result(out, {"rewards": rewards, "values": values,
                                     "next_values": next_values},
                               {"next_values": _used(None, terminated)})


def _bootstrapped_rewards(s: StepInputs) -> torch.Tensor:
    """x_t = r_t + [t ends its segment]·γ_t·nt_t·V'_t, zero on deleted steps."""
    t = s.tensors
    x = t["rewards"]
    if "next_values" in t:
        boot = _not_terminated(s.gamma * t["next_values"], s)
        x = x + torch.where(s.done, boot, boot.new_zeros(()))
    return s.zero_absent(x)


def _continuation(s: StepInputs, factor: float | torch.Tensor, like: torch.Tensor):
    """c_t = factor_t where the recursion continues from t+1 into t, else 0."""
    factor = torch.as_tensor(factor, dtype=like.dtype, device=like.device)
    return torch.where(s.done, like.new_zeros(()), factor.expand_as(like))


def discounted_returns(rewards: torch.Tensor, *, gamma: float | torch.Tensor,
                       next_values: torch.Tensor | None = None,
                       terminated: torch.Tensor | None = None,
                       truncated: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """``G_t = r_t + γ_t·(G_{t+1} if t is not a segment end else nt_t·V'_t)``.

    Computed as the reverse scan of ``x_t = r_t + [segment end]·γ_t·nt_t·V'_t`` with
    ``c_t = γ_t·(1 − segment end_t)``. Sutton & Barto (2018), eq. (3.8).
    """
    s = prepare(rewards, {"next_values": next_values}, gamma=gamma,
                terminated=terminated, truncated=truncated, mask=mask)
    x = _bootstrapped_rewards(s)
    G = reverse_scan(x, _continuation(s, s.gamma, x))
    out = s.restore(G, mask)
    return check_finite_result(out, {"rewards": rewards, "next_values": next_values},
                               {"rewards": _used(mask, None),
                                "next_values": _used(mask, terminated)})


def _shift(x: torch.Tensor, m: int) -> torch.Tensor:
    """x[t + m], 0 beyond the end."""
    if m >= x.shape[-1]:
        return torch.zeros_like(x)
    return F.pad(x[:, m:], (0, m))


def _windows(x: torch.Tensor, c: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """W_t = Σ_{l<n} (Π_{j<l} c_{t+j}) x_{t+l} and C_t = Π_{j<n} c_{t+j}, by doubling.

    Windows compose as ``(W, C)[a+b]_t = (W^a_t + C^a_t·W^b_{t+a}, C^a_t·C^b_{t+a})``; the
    binary expansion of n needs O(log n) vectorized steps and no cumulative product over T.
    """
    W, C, m = torch.zeros_like(x), torch.ones_like(c), 0
    Wp, Cp, p = x, c, 1
    while n:
        if n & 1:
            W, C, m = W + C * _shift(Wp, m), C * _shift(Cp, m), m + p
        n >>= 1
        if n:
            Wp, Cp, p = Wp + Cp * _shift(Wp, p), Cp * _shift(Cp, p), 2 * p
    return W, C


def n_step_returns(rewards: torch.Tensor, next_values: torch.Tensor, *,
                   gamma: float | torch.Tensor, n: int,
                   terminated: torch.Tensor | None = None,
                   truncated: torch.Tensor | None = None,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """``G^(n)_t = Σ_{l<k} γ^l r_{t+l} + γ^k·nt_{t+k−1}·V'_{t+k−1}``, k = min(n, steps left).

    With ``x``, ``c`` as in :func:`discounted_returns`: ``G^(n)_t = W_t + C_t·V'_{t+n−1}``
    where ``W``, ``C`` are the length-n window sum and product (``C_t = 0`` whenever the
    segment ends inside the window, whose bootstrap ``x`` already holds). Sutton & Barto
    (2018), eq. (7.1).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an integer >= 1, got {n!r}")
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n}")
    s = prepare(rewards, {"next_values": next_values}, gamma=gamma,
                terminated=terminated, truncated=truncated, mask=mask)
    x = _bootstrapped_rewards(s)
    c = _continuation(s, s.gamma, x)
    n_eff = min(n, x.shape[-1])
    W, C = _windows(x, c, n_eff)
    nv = _not_terminated(s.tensors["next_values"], s)
    G = W + C * _shift(nv, n_eff - 1)
    out = s.restore(G, mask)
    return check_finite_result(out, {"rewards": rewards, "next_values": next_values},
                               {"rewards": _used(mask, None),
                                "next_values": _used(mask, terminated)})
