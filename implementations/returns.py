"""Batched Torch TD errors and returns (SPEC §2); twins of :mod:`refmath.returns`.

Inputs ``[..., T]`` (time last), any floating dtype and device; the result has the input's
dtype and device. No Python loop over T: returns are a reverse linear scan
(:func:`refmath_torch._scan.reverse_scan`), n-step returns a log-depth composition of
windows. Differentiable with respect to rewards and next_values; inputs are never modified.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from . import _kernels as kernels
from ._inputs import (FlatSteps, StepInputs, checking, finite_or_retry, flat_steps,
                      kernel_steps, prepare)
from ._precision import float32_for_half
from ._scan import FusedScan, at, reverse_scan

__all__ = ["td_errors", "discounted_returns", "n_step_returns"]


def used_where(mask: torch.Tensor | None, terminated: torch.Tensor | None = None):
    """Boolean map of where an input is read (None: everywhere), for error messages."""
    keep = None if mask is None else mask != 0
    if terminated is None:
        return keep
    alive = terminated == 0
    return alive if keep is None else keep & alive


@float32_for_half
def td_errors(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, *,
              gamma: float | torch.Tensor,
              terminated: torch.Tensor | None = None) -> torch.Tensor:
    """``δ_t = r_t + γ_t·(1 − terminated_t)·V'_t − V_t``. Sutton (1988)."""
    def compute(sanitize: bool) -> torch.Tensor:
        s = prepare(rewards, {"values": values, "next_values": next_values}, gamma=gamma,
                    terminated=terminated, sanitize=sanitize)
        t = s.tensors
        return s.restore(t["rewards"] + s.alive * (s.gamma * t["next_values"]) - t["values"])

    return finite_or_retry(compute, {"rewards": rewards, "values": values,
                                     "next_values": next_values},
                           lambda: {"next_values": used_where(None, terminated)})


def bootstrapped_rewards(s: StepInputs) -> torch.Tensor:
    """x_t = r_t + [t ends its segment]·γ_t·nt_t·V'_t, zero on deleted steps."""
    t = s.tensors
    x = t["rewards"]
    if "next_values" in t:
        read = (1 - s.cont) * s.alive * t["next_values"]
        # a scalar γ as in the fused path (one fused multiply-add), so both agree bitwise
        x = torch.add(x, read, alpha=s.gamma) if isinstance(s.gamma, float) else (
            x + s.gamma * read)
    return s.zero_absent(x)


def _returns_checked(compute, rewards, next_values, terminated, mask):
    return finite_or_retry(compute, {"rewards": rewards, "next_values": next_values},
                           lambda: {"rewards": used_where(mask),
                                    "next_values": used_where(mask, terminated)})


def _fused_returns(f: FlatSteps, safe: bool) -> torch.Tensor:
    """The no-gradient fast path: x and γ·(1 − end) written straight into the scan's
    chunk-major buffers (:class:`FusedScan`; its buffers double as scratch space). Ignored
    numbers are dropped by multiplying by 0/1 (a NaN that reaches the result sends the
    caller to the sanitizing path), or with ``safe`` by ``torch.where`` (for
    :func:`unchecked`). Masked steps pass the recursion through (x = 0, c = 1), output 0."""
    r, nv = f.tensors["rewards"], f.tensors.get("next_values")
    scan = FusedScan(*r.shape, r)
    boot = None  # V'_t where it is read: present segment ends that are not terminal
    if nv is not None:
        read = f.reads_next_value(at_ends=True)
        boot = f.select(read, nv, scan.scratch("out")) if safe else torch.mul(
            f.float_into(read, scan.scratch("c")), nv, out=scan.scratch("out"))
    f.write_continuation(scan, f.gamma)
    if f.keep is not None:
        x = scan.scratch("out")
        if boot is not None:
            torch.add(r, boot, alpha=f.gamma, out=x)
        present = f.select(f.keep, r if boot is None else x, x) if safe else \
            torch.mul(r if boot is None else x, f.keep, out=x)
        scan.write("x", lambda out, steps: out.copy_(at(present, steps, out)))
    elif boot is None:
        scan.write("x", lambda out, steps: out.copy_(at(r, steps, out)))
    else:
        scan.write("x", lambda out, steps: torch.add(at(r, steps, out), at(boot, steps, out),
                                                     alpha=f.gamma, out=out))
    return scan.run(f.finish(safe=safe)).reshape(f.shape)


def discounted_returns(rewards: torch.Tensor, *, gamma: float | torch.Tensor,
                       next_values: torch.Tensor | None = None,
                       terminated: torch.Tensor | None = None,
                       truncated: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """``G_t = r_t + γ_t·(G_{t+1} if t is not a segment end else nt_t·V'_t)``.

    Computed as the reverse scan of ``x_t = r_t + [segment end]·γ_t·nt_t·V'_t`` with
    ``c_t = γ_t·(1 − segment end_t)``. Sutton & Barto (2018), eq. (3.8).
    """
    # a plain call goes straight to the compiled kernel (as in gae: no frames on the way)
    k = kernels.plain((rewards, next_values), (terminated, truncated, mask), gamma)
    out = None if k is None else kernels.returns_rows(k)
    return out if out is not None else _validated_returns(
        rewards, gamma=gamma, next_values=next_values, terminated=terminated,
        truncated=truncated, mask=mask)


@float32_for_half
def _validated_returns(rewards, *, gamma, next_values=None, terminated=None, truncated=None,
                       mask=None):
    """A call :func:`._kernels.plain` declines (or whose result is not finite): validated,
    half precision lifted, then the compiled kernel or the Torch scan."""
    def compute(sanitize: bool) -> torch.Tensor:
        if not sanitize or not checking():  # unchecked: the fused path, NaN-safe
            f = flat_steps(rewards, {"next_values": next_values}, gamma=gamma,
                           terminated=terminated, truncated=truncated, mask=mask)
            if f is not None:
                return _fused_returns(f, safe=sanitize)
        s = prepare(rewards, {"next_values": next_values}, gamma=gamma, terminated=terminated,
                    truncated=truncated, mask=mask, sanitize=sanitize)
        return s.restore(reverse_scan(bootstrapped_rewards(s), s.cont * s.gamma))

    k = kernel_steps(rewards, {"next_values": next_values}, gamma=gamma,
                     terminated=terminated, truncated=truncated, mask=mask)
    out = None if k is None else kernels.returns_rows(k)
    if out is not None:  # compiled: one pass, checked finite; otherwise the Torch path
        return out
    return _returns_checked(compute, rewards, next_values, terminated, mask)


discounted_returns.in_input_dtype = (  # type: ignore[attr-defined]
    _validated_returns.in_input_dtype)


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


@float32_for_half
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
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer >= 1, got {n!r}")
    n = int(n)  # numpy integers too
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n}")

    def compute(sanitize: bool) -> torch.Tensor:
        s = prepare(rewards, {"next_values": next_values}, gamma=gamma, terminated=terminated,
                    truncated=truncated, mask=mask, sanitize=sanitize)
        x = bootstrapped_rewards(s)
        n_eff = min(n, x.shape[-1])
        W, C = _windows(x, s.cont * s.gamma, n_eff)
        tail = _shift(s.alive * s.tensors["next_values"], n_eff - 1)
        return s.restore(W + C * tail)

    return _returns_checked(compute, rewards, next_values, terminated, mask)
