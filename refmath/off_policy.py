"""Exact oracles for off-policy returns with importance-weighted traces (SPEC §6).

* :func:`vtrace` — IMPALA's V-trace targets and policy-gradient advantages (Espeholt et al.
  2018, eq. 1 and §4.2), written as the plain backward recursion of the paper;
* :func:`off_policy_q_targets` — the general off-policy return for action values (Munos et
  al. 2016, "Safe and efficient off-policy reinforcement learning", eq. 3);
* :func:`trace_coefficients` — the traces c_t of Retrace, tree backup, Q(λ) and per-decision
  importance sampling.

Ratios enter as ``log_rhos = log π − log μ`` (SPEC §6). For exact arithmetic, where the
exponential of a rational is not rational, the ratios themselves may be given instead as
``rhos`` (Fractions): exactly one of the two. Episode boundaries, ``next_values``, masks (by
compression) and per-step γ mean what SPEC §1 says.
"""

from __future__ import annotations

from fractions import Fraction
from numbers import Real
from typing import Any, Sequence

import numpy as np
import sympy

from ._arrays import Array, exp, map_rows, prepare, prepare_arrays
from .returns import _bootstrap, segment_end

__all__ = ["vtrace", "off_policy_q_targets", "trace_coefficients", "TRACE_METHODS"]

TRACE_METHODS = ("retrace", "tree_backup", "q_lambda", "importance_sampling")


def _clip(name: str, value: Any, mode: str) -> Any:
    """A clip threshold: a number in (0, ∞], or None for no clip; exact (the float 1.0 is
    the Fraction 1) unless the inputs are floats."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Real, sympy.Basic)) or not value > 0:
        raise ValueError(f"{name} must be a number in (0, inf] or None, got {value!r}")
    if value == float("inf") or mode == "float":
        return value
    return Fraction(value) if not isinstance(value, sympy.Basic) else value


def _clipped(clip: Any, x: Any) -> Any:
    return x if clip is None or clip == float("inf") else min(clip, x)


def _ratio_name(log_rhos: Any, rhos: Any) -> str:
    if (log_rhos is None) == (rhos is None):
        raise ValueError("give exactly one of log_rhos (log π − log μ) and rhos (π/μ)")
    return "log_rhos" if log_rhos is not None else "rhos"


def _ratio(row: Sequence[Any], kind: str) -> list[Any]:
    if kind == "rhos":
        for x in row:
            if x < 0:
                raise ValueError(f"rhos must be non-negative, got {x}")
        return list(row)
    return [exp(x) for x in row]


def _vtrace_row(rewards, values, next_values, gamma, ratio, terminated, truncated, *, kind,
                lam, rho_clip, c_clip, pg_rho_clip, output):
    T = len(rewards)
    rho = _ratio(ratio, kind)
    A = [None] * T
    for t in reversed(range(T)):  # A_t = ρ̄_t·(r_t + γ_t·nt_t·V'_t − V_t) + γ_t·c_t·A_{t+1}
        delta = _clipped(rho_clip, rho[t]) * (
            rewards[t] + _bootstrap(t, gamma, next_values, terminated) - values[t])
        if segment_end(t, terminated, truncated):
            A[t] = delta
        else:
            A[t] = delta + gamma[t] * lam * _clipped(c_clip, rho[t]) * A[t + 1]
    if output == "vs":
        return [values[t] + A[t] for t in range(T)]
    pg = []
    for t in range(T):  # v'_t = V'_t + A_{t+1} inside a segment (= vs_{t+1} when consistent)
        if segment_end(t, terminated, truncated):
            target = rewards[t] + _bootstrap(t, gamma, next_values, terminated)
        else:
            target = rewards[t] + gamma[t] * (next_values[t] + A[t + 1])
        pg.append(_clipped(pg_rho_clip, rho[t]) * (target - values[t]))
    return pg


def vtrace(rewards: Array, values: Array, next_values: Array, log_rhos: Array | None = None,
           *, gamma: Any, lam: Any = 1.0, rho_clip: Any = 1.0, c_clip: Any = 1.0,
           pg_rho_clip: Any = 1.0, terminated: Array | None = None,
           truncated: Array | None = None, mask: Array | None = None,
           rhos: Array | None = None) -> tuple[np.ndarray, np.ndarray]:
    """V-trace: ``(vs, pg_advantages)``, each ``[..., T]`` (0 where masked).

    With ``ρ_t = exp(log_rhos[t])``, ``ρ̄_t = min(rho_clip, ρ_t)``, ``c_t = λ·min(c_clip, ρ_t)``
    and ``δ_t = ρ̄_t·(r_t + γ_t·nt_t·V'_t − V_t)``: ``A_t = δ_t + γ_t·c_t·A_{t+1}`` inside a
    segment, ``A_t = δ_t`` at its end; ``vs_t = V_t + A_t``. The policy-gradient advantage is
    ``min(pg_rho_clip, ρ_t)·(r_t + γ_t·nt_t·v'_t − V_t)`` with ``v'_t = V'_t + A_{t+1}``
    inside a segment and ``V'_t`` at its end. Clips are numbers in (0, ∞], None for no clip.
    Espeholt et al. (2018), IMPALA, eq. (1) and §4.2.

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        values: ``[..., T]`` V(s_t), the value of the state step t starts in.
        next_values: ``[..., T]`` V(s_{t+1}), the value of the state after step t (the bootstrap;
            not read where step t terminates).
        log_rhos: ``[..., T]`` log ρ_t = log π(a_t|s_t) − log μ(a_t|s_t), target over behaviour
            policy; give this or ``rhos``.
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        lam: λ in [0, 1] of the trace c_t = λ·min(c̄, ρ_t) (default 1).
        rho_clip: ρ̄ in (0, ∞], the clip of ρ_t in δ_t; None: no clip.
        c_clip: c̄ in (0, ∞], the clip of the trace c_t; None: no clip.
        pg_rho_clip: the clip of ρ_t in the policy-gradient advantage; None: no clip.
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.
        mask: ``[..., T]`` booleans, True at present steps. Absent steps (padding) are compressed
            out of every row, never read, and give 0. Default: every step present.
        rhos: ``[..., T]`` the ratios ρ_t themselves (exact ratios, e.g. Fractions), instead of
            ``log_rhos``.

    Examples:
        >>> from fractions import Fraction as F
        >>> vs, pg = vtrace([F(1), F(1)], [F(0), F(0)], [F(0), F(0)], rhos=[F(1, 2), F(2)],
        ...                 gamma=F(1))
        >>> list(vs), list(pg)
        ([Fraction(1, 1), Fraction(1, 1)], [Fraction(1, 1), Fraction(1, 1)])
    """
    kind = _ratio_name(log_rhos, rhos)
    p = prepare({"rewards": rewards, "values": values, "next_values": next_values,
                 kind: log_rhos if kind == "log_rhos" else rhos}, gamma=gamma,
                scalars={"lam": lam},
                flags={"terminated": terminated, "truncated": truncated, "mask": mask})
    clips = {n: _clip(n, v, p.mode) for n, v in (("rho_clip", rho_clip), ("c_clip", c_clip),
                                        ("pg_rho_clip", pg_rho_clip))}
    names = ["rewards", "values", "next_values", "gamma", kind]

    def rows(output):
        def row(**kw):
            ratio = kw.pop(kind)
            return _vtrace_row(ratio=ratio, **kw, kind=kind, lam=p.scalars["lam"],
                               output=output, **clips)

        return map_rows(p, row, names)

    return rows("vs"), rows("pg")


def _q_row(rewards, q_values, next_expected_q, traces, gamma, terminated, truncated):
    T = len(rewards)
    G = [None] * T
    for t in reversed(range(T)):
        if segment_end(t, terminated, truncated):  # G_t = r_t + γ_t·nt_t·E_t
            G[t] = rewards[t] + _bootstrap(t, gamma, next_expected_q, terminated)
        else:  # G_t = r_t + γ_t·(E_t + c_{t+1}·(G_{t+1} − Q_{t+1}))
            G[t] = rewards[t] + gamma[t] * (next_expected_q[t]
                                            + traces[t + 1] * (G[t + 1] - q_values[t + 1]))
    return G


def off_policy_q_targets(rewards: Array, q_values: Array, next_expected_q: Array,
                         traces: Array, *, gamma: Any, terminated: Array | None = None,
                         truncated: Array | None = None, mask: Array | None = None
                         ) -> np.ndarray:
    """The general off-policy return for action values, per step ``[..., T]``:

    ``G_t = r_t + γ_t·nt_t·(E_t + c_{t+1}·(G_{t+1} − Q_{t+1}))`` inside a segment and
    ``G_t = r_t + γ_t·nt_t·E_t`` at its end, with ``Q_t = q_values[t] = Q(s_t, a_t)``,
    ``E_t = next_expected_q[t] = E_{a~π} Q(s_{t+1}, a)`` and ``c_t = traces[t]``
    (:func:`trace_coefficients`). Munos et al. (2016), eq. (3).

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        q_values: ``[..., T]`` Q(s_t, a_t) of the taken actions.
        next_expected_q: ``[..., T]`` E_{a~π} Q(s_{t+1}, a) (not read where step t terminates).
        traces: ``[..., T]`` the trace coefficients c_t (:func:`trace_coefficients`).
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.
        mask: ``[..., T]`` booleans, True at present steps. Absent steps (padding) are compressed
            out of every row, never read, and give 0. Default: every step present.
    """
    p = prepare({"rewards": rewards, "q_values": q_values,
                 "next_expected_q": next_expected_q, "traces": traces}, gamma=gamma,
                flags={"terminated": terminated, "truncated": truncated, "mask": mask})
    return map_rows(p, _q_row, ["rewards", "q_values", "next_expected_q", "traces", "gamma"])


def trace_coefficients(method: str, *, lam: Any, log_rhos: Array | None = None,
                       pi_probs: Array | None = None, rhos: Array | None = None
                       ) -> np.ndarray:
    """The trace c_t of a named method, elementwise:

    ``retrace`` ``λ·min(1, ρ_t)`` (Munos et al. 2016), ``tree_backup`` ``λ·π(a_t|s_t)``
    (Precup et al. 2000), ``q_lambda`` ``λ`` (Harutyunyan et al. 2016),
    ``importance_sampling`` ``λ·ρ_t`` (per-decision IS, Precup et al. 2000). ρ from
    ``log_rhos`` (or exact ``rhos``); ``tree_backup`` needs ``pi_probs`` (and q_lambda takes
    its shape from whichever array is given).

    Args:
        method: ``"retrace"``, ``"tree_backup"``, ``"q_lambda"`` or ``"importance_sampling"``.
        lam: λ in [0, 1].
        log_rhos: log ρ_t = log π(a_t|s_t) − log μ(a_t|s_t), read by retrace and
            importance_sampling (or ``rhos``).
        pi_probs: π(a_t|s_t), read by tree_backup.
        rhos: the ratios ρ_t themselves (exact), instead of ``log_rhos``.
    """
    if method not in TRACE_METHODS:
        raise ValueError(f"method must be one of {TRACE_METHODS}, got {method!r}")
    needs_ratio = method in ("retrace", "importance_sampling")
    if method == "tree_backup" and pi_probs is None:
        raise ValueError("tree_backup needs pi_probs = π(a_t|s_t)")
    if needs_ratio:
        kind = _ratio_name(log_rhos, rhos)
        source = {kind: log_rhos if kind == "log_rhos" else rhos}
    elif pi_probs is not None:
        kind, source = "pi_probs", {"pi_probs": pi_probs}
    else:
        kind = _ratio_name(log_rhos, rhos)
        source = {kind: log_rhos if kind == "log_rhos" else rhos}
    p = prepare_arrays(source, numbers={"lam": lam}, min_ndim=0)
    lam = p.scalars["lam"]
    if not 0 <= lam <= 1:
        raise ValueError(f"lam must lie in [0, 1], got {lam}")
    a = p.arrays[kind]
    out = p.empty()
    for idx in np.ndindex(p.shape):
        if method == "q_lambda":
            out[idx] = lam + 0 * a[idx]
        elif method == "tree_backup":
            if not 0 <= a[idx] <= 1:
                raise ValueError(f"pi_probs must lie in [0, 1], got {a[idx]}")
            out[idx] = lam * a[idx]
        else:
            (rho,) = _ratio([a[idx]], kind)
            out[idx] = lam * (min(1, rho) if method == "retrace" else rho)
    return out
