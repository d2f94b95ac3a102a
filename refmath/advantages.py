"""Exact oracles for advantages: GAE, its alternative forms, λ-returns (SPEC §2).

Each form is written straight from its own definition (a plain loop or sum over one row), so
that the identities between them are real checks:

* :func:`gae` — the recursion ``A_t = δ_t + γ_t·λ·A_{t+1}`` (``A_t = δ_t`` at a segment end);
* :func:`gae_summed` — ``A_t = Σ_l (Π_{j<l} γ_{t+j}·λ) δ_{t+l}`` over the segment;
* :func:`gae_mixture` — ``A_t = (1−λ) Σ_{n=1}^{N−1} λ^{n−1} A^(n)_t + λ^{N−1} A^(N)_t``;
* :func:`monte_carlo_advantage` — ``G_t − V_t``;
* :func:`lambda_returns` — ``G^λ_t = A_t + V_t``, and :func:`lambda_returns_recursive`, the
  textbook recursion ``G^λ_t = r_t + γ_t((1−λ)V'_t + λ G^λ_{t+1})``;
* :func:`length_adaptive_gae` — VAPO's GAE with ``λ = 1 − 1/(α·l)`` per row (SPEC §7).

Schulman, Moritz, Levine, Jordan, Abbeel (2016), "High-Dimensional Continuous Control Using
Generalized Advantage Estimation", eqs. (11)–(16). Conventions as in :mod:`refmath.returns`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._arrays import Array, _convert, check_nonnegative, map_rows, plain, prepare
from .returns import _bootstrap, _segment_last, _td_row, discounted_returns, n_step_row, segment_end

__all__ = [
    "gae",
    "gae_summed",
    "gae_mixture",
    "monte_carlo_advantage",
    "lambda_returns",
    "lambda_returns_recursive",
    "length_adaptive_gae",
]

_STEPS = ["rewards", "values", "next_values", "gamma"]


def _prepare(rewards, values, next_values, gamma, lam, terminated, truncated, mask):
    return prepare(
        {"rewards": rewards, "values": values, "next_values": next_values},
        gamma=gamma,
        scalars={"lam": lam},
        flags={"terminated": terminated, "truncated": truncated, "mask": mask},
    )


def _gae_row(rewards, values, next_values, gamma, terminated, truncated, lam):
    delta = _td_row(rewards, values, next_values, gamma, terminated, truncated)
    A = [None] * len(delta)
    for t in reversed(range(len(delta))):
        if segment_end(t, terminated, truncated):
            A[t] = delta[t]
        else:
            A[t] = delta[t] + gamma[t] * lam * A[t + 1]
    return A


def gae(rewards: Array, values: Array, next_values: Array, *, gamma: Any, lam: Any,
        terminated: Array | None = None, truncated: Array | None = None,
        mask: Array | None = None) -> np.ndarray:
    """Generalized advantage estimation, recursive form.

    ``δ_t = r_t + γ_t·nt_t·V'_t − V_t``; ``A_t = δ_t + γ_t·λ·A_{t+1}`` inside a segment and
    ``A_t = δ_t`` at a segment end. λ = 0 gives the TD errors, λ = 1 the Monte Carlo
    advantage. No whitening. Schulman et al. (2016), eq. (16).

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        values: ``[..., T]`` V(s_t), the value of the state step t starts in.
        next_values: ``[..., T]`` V(s_{t+1}), the value of the state after step t (the bootstrap;
            not read where step t terminates).
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        lam: λ in [0, 1], the trace parameter (0: one-step TD, 1: Monte Carlo).
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.
        mask: ``[..., T]`` booleans, True at present steps. Absent steps (padding) are compressed
            out of every row, never read, and give 0. Default: every step present.

    Returns: ``[..., T]`` advantages (0 at masked steps).

    Examples:
        >>> from fractions import Fraction as F
        >>> list(gae([F(1), F(1)], [F(0), F(0)], [F(0), F(0)], gamma=F(1, 2), lam=F(1, 2)))
        [Fraction(5, 4), Fraction(1, 1)]
    """
    p = _prepare(rewards, values, next_values, gamma, lam, terminated, truncated, mask)
    return map_rows(p, _gae_row, _STEPS, lam=p.scalars["lam"])


def _gae_summed_row(rewards, values, next_values, gamma, terminated, truncated, lam):
    delta = _td_row(rewards, values, next_values, gamma, terminated, truncated)
    A = []
    for t in range(len(delta)):
        total, weight = 0, 1
        for s in range(t, _segment_last(t, terminated, truncated) + 1):
            total = total + weight * delta[s]
            weight = weight * gamma[s] * lam
        A.append(total)
    return A


def gae_summed(rewards: Array, values: Array, next_values: Array, *, gamma: Any, lam: Any,
               terminated: Array | None = None, truncated: Array | None = None,
               mask: Array | None = None) -> np.ndarray:
    """GAE as the sum ``A_t = Σ_{l=0}^{e−t} (Π_{j<l} γ_{t+j}·λ)·δ_{t+l}`` (e: segment end).

    Schulman et al. (2016), eq. (16), right-hand side. Same arguments as :func:`gae`.

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        values: ``[..., T]`` V(s_t), the value of the state step t starts in.
        next_values: ``[..., T]`` V(s_{t+1}), the value of the state after step t (the bootstrap;
            not read where step t terminates).
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        lam: λ in [0, 1], the trace parameter (0: one-step TD, 1: Monte Carlo).
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.
        mask: ``[..., T]`` booleans, True at present steps. Absent steps (padding) are compressed
            out of every row, never read, and give 0. Default: every step present.
    """
    p = _prepare(rewards, values, next_values, gamma, lam, terminated, truncated, mask)
    return map_rows(p, _gae_summed_row, _STEPS, lam=p.scalars["lam"])


def _gae_mixture_row(rewards, values, next_values, gamma, terminated, truncated, lam):
    A = []
    for t in range(len(rewards)):
        N = _segment_last(t, terminated, truncated) - t + 1
        adv = {
            n: n_step_row(rewards, next_values, gamma, terminated, truncated, n)[t] - values[t]
            for n in range(1, N + 1)
        }
        head = sum(lam ** (n - 1) * adv[n] for n in range(1, N))
        A.append((1 - lam) * head + lam ** (N - 1) * adv[N])
    return A


def gae_mixture(rewards: Array, values: Array, next_values: Array, *, gamma: Any, lam: Any,
                terminated: Array | None = None, truncated: Array | None = None,
                mask: Array | None = None) -> np.ndarray:
    """GAE as the λ-weighted mixture of n-step advantages, with the tail mass on the last one.

    ``A_t = (1−λ) Σ_{n=1}^{N−1} λ^{n−1} A^(n)_t + λ^{N−1} A^(N)_t`` with N the steps left in
    the segment and ``A^(n) = G^(n) − V`` (:func:`refmath.returns.n_step_returns`). Equals
    :func:`gae` on consistent inputs (``next_values[t] == values[t+1]`` inside a segment).
    Schulman et al. (2016), eqs. (11)–(16). Same arguments as :func:`gae`.

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        values: ``[..., T]`` V(s_t), the value of the state step t starts in.
        next_values: ``[..., T]`` V(s_{t+1}), the value of the state after step t (the bootstrap;
            not read where step t terminates).
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        lam: λ in [0, 1], the trace parameter (0: one-step TD, 1: Monte Carlo).
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.
        mask: ``[..., T]`` booleans, True at present steps. Absent steps (padding) are compressed
            out of every row, never read, and give 0. Default: every step present.
    """
    p = _prepare(rewards, values, next_values, gamma, lam, terminated, truncated, mask)
    return map_rows(p, _gae_mixture_row, _STEPS, lam=p.scalars["lam"])


def monte_carlo_advantage(rewards: Array, values: Array, next_values: Array, *, gamma: Any,
                          terminated: Array | None = None, truncated: Array | None = None,
                          mask: Array | None = None) -> np.ndarray:
    """Monte Carlo advantage ``G_t − V_t`` with ``G`` the bootstrapped discounted return.

    ``G = discounted_returns(rewards, next_values=next_values, ...)``; 0 at masked steps.
    GAE with λ = 1 on consistent inputs: Schulman et al. (2016), eq. (18); Sutton & Barto
    (2018), §13.4.

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        values: ``[..., T]`` V(s_t), the value of the state step t starts in.
        next_values: ``[..., T]`` V(s_{t+1}), read only where a segment ends by truncation or at
            the end of the data (the bootstrap of G_t).
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.
        mask: ``[..., T]`` booleans, True at present steps. Absent steps (padding) are compressed
            out of every row, never read, and give 0. Default: every step present.
    """
    G = discounted_returns(rewards, gamma=gamma, next_values=next_values,
                           terminated=terminated, truncated=truncated, mask=mask)
    p = prepare({"rewards": rewards, "values": values}, gamma=gamma,
                flags={"mask": mask})
    keep = p.flags["mask"]
    out = p.zeros()
    for idx in zip(*np.nonzero(keep)):
        out[idx] = G[idx] - p.arrays["values"][idx]
    return out


def lambda_returns(rewards: Array, values: Array, next_values: Array, *, gamma: Any, lam: Any,
                   terminated: Array | None = None, truncated: Array | None = None,
                   mask: Array | None = None) -> np.ndarray:
    """λ-returns ``G^λ_t = A_t + V_t`` with ``A`` = :func:`gae` (SPEC §2). 0 at masked steps.

    Sutton & Barto (2018), §12.1; Schulman et al. (2016), §3. Same arguments as :func:`gae`.

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        values: ``[..., T]`` V(s_t), the value of the state step t starts in.
        next_values: ``[..., T]`` V(s_{t+1}), the value of the state after step t (the bootstrap;
            not read where step t terminates).
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        lam: λ in [0, 1], the trace parameter (0: one-step TD, 1: Monte Carlo).
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.
        mask: ``[..., T]`` booleans, True at present steps. Absent steps (padding) are compressed
            out of every row, never read, and give 0. Default: every step present.
    """
    p = _prepare(rewards, values, next_values, gamma, lam, terminated, truncated, mask)
    A = map_rows(p, _gae_row, _STEPS, lam=p.scalars["lam"])
    out = p.zeros()
    for idx in zip(*np.nonzero(p.flags["mask"])):
        out[idx] = A[idx] + p.arrays["values"][idx]
    return out


def _lambda_recursive_row(rewards, values, next_values, gamma, terminated, truncated, lam):
    G = [None] * len(rewards)
    for t in reversed(range(len(rewards))):
        if segment_end(t, terminated, truncated):
            G[t] = rewards[t] + _bootstrap(t, gamma, next_values, terminated)
        else:
            G[t] = rewards[t] + gamma[t] * ((1 - lam) * next_values[t] + lam * G[t + 1])
    return G


def lambda_returns_recursive(rewards: Array, values: Array, next_values: Array, *, gamma: Any,
                             lam: Any, terminated: Array | None = None,
                             truncated: Array | None = None,
                             mask: Array | None = None) -> np.ndarray:
    """The textbook λ-return recursion ``G^λ_t = r_t + γ_t((1−λ)V'_t + λ·G^λ_{t+1})``.

    At a segment end ``G^λ_t = r_t + γ_t·nt_t·V'_t``. Sutton & Barto (2018), eq. (12.18);
    rlax ``lambda_returns``. Equals :func:`lambda_returns` on consistent inputs only
    (``next_values[t] == values[t+1]`` inside a segment). ``values`` is accepted for a uniform
    signature and is not read.

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        values: ``[..., T]`` V(s_t), the value of the state step t starts in.
        next_values: ``[..., T]`` V(s_{t+1}), the value of the state after step t (the bootstrap;
            not read where step t terminates).
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        lam: λ in [0, 1], the trace parameter (0: one-step TD, 1: Monte Carlo).
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.
        mask: ``[..., T]`` booleans, True at present steps. Absent steps (padding) are compressed
            out of every row, never read, and give 0. Default: every step present.
    """
    p = _prepare(rewards, values, next_values, gamma, lam, terminated, truncated, mask)
    return map_rows(p, _lambda_recursive_row, _STEPS, lam=p.scalars["lam"])


def length_adaptive_gae(rewards: Array, values: Array, next_values: Array, mask: Array, *,
                        alpha: Any, gamma: Any = 1.0, terminated: Array | None = None,
                        truncated: Array | None = None) -> np.ndarray:
    """VAPO's length-adaptive GAE: each row is :func:`gae` with its own λ.

    ``λ = 1 − 1/(α·l)`` for a row of ``l`` response tokens (``l`` = the row's ``mask`` sum),
    and ``λ = 0`` where ``α·l ≤ 1``; masked steps are deleted as in :func:`gae`. Long
    responses get λ near 1 (little bias from the value model over a long horizon), short
    ones a smaller λ. VAPO uses α = 0.05 for the policy's advantages (and λ = 1 for the
    critic's targets). Yue et al. (2025), "VAPO: Efficient and Reliable Reinforcement
    Learning for Advanced Reasoning Tasks", arXiv:2504.05118, "Length-Adaptive GAE".

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        values: ``[..., T]`` V(s_t), the value of the state step t starts in.
        next_values: ``[..., T]`` V(s_{t+1}), the value of the state after step t (the bootstrap;
            not read where step t terminates).
        mask: ``[..., T]`` booleans, True at the response tokens (required: l, the response length
            of a row, counts them).
        alpha: α > 0 of VAPO's λ = 1 − 1/(α·l).
        gamma: the discount in [0, 1] (default 1): a number, or ``[..., T]`` per step.
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.

    Returns: ``[..., T]`` advantages (0 at masked steps).

    Two rows, α = 1/2, γ = 1, every δ_t = 1. Row 0 has l = 3 tokens: λ = 1 − 1/(3/2) = 1/3,
    so A_2 = 1, A_1 = 1 + A_2/3 = 4/3, A_0 = 1 + A_1/3 = 13/9. Row 1 has l = 2 (its last
    step masked): α·l = 1, so λ = 0 and A = δ = 1 on its two tokens.

    Examples:
        >>> from fractions import Fraction as F
        >>> one, zero = [F(1)] * 3, [F(0)] * 3
        >>> A = length_adaptive_gae([one, one], [zero, zero], [zero, zero],
        ...                         [[True, True, True], [True, True, False]], alpha=F(1, 2))
        >>> [[str(a) for a in row] for row in A]
        [['13/9', '4/3', '1'], ['1', '1', '0']]
    """
    if mask is None:
        raise ValueError("mask is required: it says which steps are response tokens (l)")
    check_nonnegative("alpha", alpha, strict=True)
    p = _prepare(rewards, values, next_values, gamma, 0, terminated, truncated, mask)
    alpha = _convert(plain("alpha", alpha), p.mode)[()]  # exact for exact inputs
    out = p.zeros()
    for idx in np.ndindex(p.shape[:-1]):
        keep = [t for t in range(p.shape[-1]) if p.flags["mask"][idx + (t,)]]
        l = len(keep)  # the row's response tokens
        lam = 1 - 1 / (alpha * l) if alpha * l > 1 else p.zero
        rows = {n: [p.arrays[n][idx + (t,)] for t in keep] for n in _STEPS}
        flags = {f: [bool(p.flags[f][idx + (t,)]) for t in keep]
                 for f in ("terminated", "truncated")}
        for t, a in zip(keep, _gae_row(**rows, **flags, lam=lam)):
            out[idx + (t,)] = a
    return out
