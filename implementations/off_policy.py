"""Batched Torch off-policy returns (SPEC §6); twins of :mod:`refmath.off_policy`.

V-trace is the one reverse scan of :mod:`._scan` with ``x_t = ρ̄_t·δ_t`` and
``c_t = γ_t·λ·min(c̄, ρ_t)`` on the compressed ``[N, T]`` layout of :func:`._inputs.prepare`;
the general off-policy Q return is the scan of ``r + γ·nt·E − γ·c_{t+1}·Q_{t+1}`` with carry
``γ·c_{t+1}``. No Python loop over T; differentiable; any floating dtype (half precision in
float32, rounded once); bad input raises naming the argument.
"""

from __future__ import annotations

import torch

from . import _kernels as kernels
from ._inputs import StepInputs, check_unit_scalar, checking, kernel_steps, prepare
from ._precision import float32_for_half
from ._scan import reverse_scan
from ._tensors import finite, tensors
from .returns import used_where

__all__ = ["vtrace", "off_policy_q_targets", "trace_coefficients"]

TRACE_METHODS = ("retrace", "tree_backup", "q_lambda", "importance_sampling")


def _clip(name: str, value: object) -> float | None:
    """A clip in (0, ∞], or None (no clip)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in (0, inf] or None, got {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be a number in (0, inf] or None, got {value!r}")
    return None if value == float("inf") else float(value)


def _ratio_name(log_rhos: object, rhos: object) -> str:
    if (log_rhos is None) == (rhos is None):
        raise ValueError("give exactly one of log_rhos (log π − log μ) and rhos (π/μ)")
    return "log_rhos" if log_rhos is not None else "rhos"


def _rho(s: StepInputs, kind: str) -> torch.Tensor:
    x = s.tensors[kind]
    return torch.exp(x) if kind == "log_rhos" else x


def _min(clip: float | None, rho: torch.Tensor) -> torch.Tensor:
    return rho if clip is None else torch.clamp(rho, max=clip)


def _next(x: torch.Tensor) -> torch.Tensor:
    """x_{t+1} (0 after the last step); read only inside a segment."""
    return torch.cat([x[..., 1:], torch.zeros_like(x[..., :1])], dim=-1)


def _checked(named: dict, mask, terminated, ratio_kind: str, rhos) -> None:
    keep = used_where(mask)
    alive = used_where(mask, terminated)
    finite({k: v for k, v in named.items() if k != "next_values"}, keep)
    finite({"next_values": named.get("next_values")}, alive)
    if checking() and ratio_kind == "rhos":
        negative = rhos < 0
        if bool((negative if keep is None else negative & keep).any()):  # masked: not read
            raise ValueError("rhos must be non-negative")


def _vtrace_kernel(rewards, values, next_values, kind, ratio, gamma, lam, clips, terminated,
                   truncated, mask):
    """The compiled no-gradient path (:mod:`._kernels`), or None where it does not apply. A
    non-finite result (a bad input, or ρ beyond the float range with no clip) goes to the
    Torch path, which names the bad input or gives the same values."""
    k = kernel_steps(rewards, {"values": values, "next_values": next_values, kind: ratio},
                     gamma=gamma, terminated=terminated, truncated=truncated, mask=mask)
    return None if k is None else _vtrace_rows(k, kind, lam, clips)


def _plain_vtrace(rewards, values, next_values, log_rhos, rhos, gamma, lam, clips, terminated,
                  truncated, mask):
    """The compiled kernel for a plain call (:func:`._kernels.plain`; clips None or positive
    Python numbers, one ratio given), with nothing validated on the way; None otherwise, or
    where a result is not finite."""
    if (log_rhos is None) == (rhos is None):
        return None
    for c in clips:
        if c is not None and (type(c) not in (float, int) or not c > 0):
            return None
    k = kernels.plain((rewards, values, next_values, rhos if log_rhos is None else log_rhos),
                      (terminated, truncated, mask), gamma, lam)
    return None if k is None else _vtrace_rows(k, "rhos" if log_rhos is None else "log_rhos",
                                               lam, clips)


def _vtrace_rows(k: kernels.Arrays, kind: str, lam: float, clips) -> tuple | None:
    if kind == "rhos" and checking():
        negative = k.numpy(3) < 0
        if (negative & k.numpy(6) if k.masked else negative).any():  # masked: not read
            raise ValueError("rhos must be non-negative")
    return kernels.vtrace_rows(k, kind, lam, clips)


def vtrace(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
           log_rhos: torch.Tensor | None = None, *, gamma: float | torch.Tensor,
           lam: float = 1.0, rho_clip: float | None = 1.0, c_clip: float | None = 1.0,
           pg_rho_clip: float | None = 1.0, terminated: torch.Tensor | None = None,
           truncated: torch.Tensor | None = None, mask: torch.Tensor | None = None,
           rhos: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """V-trace ``(vs, pg_advantages)``: ``A_t = ρ̄_t·δ_t + γ_t·λ·min(c̄, ρ_t)·A_{t+1}``
    (``ρ̄_t·δ_t`` at a segment end), ``vs = V + A``;
    ``pg = min(ρ̄_pg, ρ_t)·(r_t + γ_t·nt_t·v'_t − V_t)`` with ``v'_t = V'_t + A_{t+1}`` inside a
    segment. Espeholt et al. (2018), eq. (1)."""
    clips = (rho_clip, c_clip, pg_rho_clip)
    out = _plain_vtrace(rewards, values, next_values, log_rhos, rhos, gamma, lam, clips,
                        terminated, truncated, mask)
    return out if out is not None else _validated_vtrace(
        rewards, values, next_values, log_rhos, gamma=gamma, lam=lam, rho_clip=rho_clip,
        c_clip=c_clip, pg_rho_clip=pg_rho_clip, terminated=terminated, truncated=truncated,
        mask=mask, rhos=rhos)


@float32_for_half
def _validated_vtrace(rewards, values, next_values, log_rhos=None, *, gamma, lam=1.0,
                      rho_clip=1.0, c_clip=1.0, pg_rho_clip=1.0, terminated=None,
                      truncated=None, mask=None, rhos=None):
    """A call :func:`._kernels.plain` declines (or whose result is not finite): validated,
    half precision lifted, then the compiled kernel or the Torch scan."""
    kind = _ratio_name(log_rhos, rhos)
    lam = check_unit_scalar("lam", lam)
    clips = [_clip(n, v) for n, v in (("rho_clip", rho_clip), ("c_clip", c_clip),
                                      ("pg_rho_clip", pg_rho_clip))]
    ratio = log_rhos if kind == "log_rhos" else rhos
    fast = _vtrace_kernel(rewards, values, next_values, kind, ratio, gamma, lam, clips,
                          terminated, truncated, mask)
    if fast is not None:
        return fast
    s = prepare(rewards, {"values": values, "next_values": next_values, kind: ratio},
                gamma=gamma, terminated=terminated, truncated=truncated, mask=mask,
                sanitize=True)
    _checked({"rewards": rewards, "values": values, "next_values": next_values,
              kind: ratio}, mask, terminated, kind, ratio)
    t = s.tensors
    rho = _rho(s, kind)
    target = t["rewards"] + s.alive * s.gamma * t["next_values"]
    delta = s.zero_absent(_min(clips[0], rho) * (target - t["values"]))
    A = reverse_scan(delta, s.cont * s.gamma * lam * _min(clips[1], rho))
    vs = s.zero_absent(t["values"] + A)
    v_next = t["next_values"] + s.cont * _next(A)
    pg = s.zero_absent(_min(clips[2], rho) * (
        t["rewards"] + s.alive * s.gamma * v_next - t["values"]))
    return s.restore(vs), s.restore(pg)


vtrace.in_input_dtype = _validated_vtrace.in_input_dtype  # type: ignore[attr-defined]


@float32_for_half
def off_policy_q_targets(rewards: torch.Tensor, q_values: torch.Tensor,
                         next_expected_q: torch.Tensor, traces: torch.Tensor, *,
                         gamma: float | torch.Tensor, terminated: torch.Tensor | None = None,
                         truncated: torch.Tensor | None = None,
                         mask: torch.Tensor | None = None) -> torch.Tensor:
    """``G_t = r_t + γ_t·nt_t·(E_t + c_{t+1}·(G_{t+1} − Q_{t+1}))`` (``r_t + γ_t·nt_t·E_t`` at
    a segment end), one reverse scan. Munos et al. (2016), eq. (3)."""
    s = prepare(rewards, {"q_values": q_values, "next_expected_q": next_expected_q,
                          "traces": traces}, gamma=gamma, terminated=terminated,
                truncated=truncated, mask=mask, sanitize=True)
    keep, alive = used_where(mask), used_where(mask, terminated)
    finite({"rewards": rewards, "q_values": q_values, "traces": traces}, keep)
    finite({"next_expected_q": next_expected_q}, alive)
    t = s.tensors
    carry = s.cont * s.gamma * _next(t["traces"])  # γ_t·c_{t+1} inside a segment
    x = t["rewards"] + s.alive * s.gamma * t["next_expected_q"] - carry * _next(t["q_values"])
    return s.restore(reverse_scan(s.zero_absent(x), carry))


@float32_for_half
def trace_coefficients(method: str, *, lam: float, log_rhos: torch.Tensor | None = None,
                       pi_probs: torch.Tensor | None = None,
                       rhos: torch.Tensor | None = None) -> torch.Tensor:
    """Traces c_t: retrace ``λ·min(1, ρ)``, tree_backup ``λ·π``, q_lambda ``λ``,
    importance_sampling ``λ·ρ`` (Munos et al. 2016; Precup et al. 2000; Harutyunyan et al.
    2016)."""
    if method not in TRACE_METHODS:
        raise ValueError(f"method must be one of {TRACE_METHODS}, got {method!r}")
    lam = check_unit_scalar("lam", lam)
    if method == "tree_backup" or (method == "q_lambda" and pi_probs is not None):
        if pi_probs is None:
            raise ValueError("tree_backup needs pi_probs = π(a_t|s_t)")
        (p,) = tensors(pi_probs=pi_probs)
        finite({"pi_probs": p})
        if bool(((p < 0) | (p > 1)).any()):
            raise ValueError("pi_probs must lie in [0, 1]")
        return lam * p if method == "tree_backup" else torch.full_like(p, lam)
    kind = _ratio_name(log_rhos, rhos)
    (x,) = tensors(**{kind: log_rhos if kind == "log_rhos" else rhos})
    finite({kind: x})
    if kind == "rhos" and bool((x < 0).any()):
        raise ValueError("rhos must be non-negative")
    rho = torch.exp(x) if kind == "log_rhos" else x
    if method == "q_lambda":
        return torch.full_like(rho, lam)
    return lam * (torch.clamp(rho, max=1.0) if method == "retrace" else rho)
