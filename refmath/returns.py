"""Exact oracles for TD errors and returns (SPEC §2).

Every function is a literal transcription of its definition, a plain loop over one row,
applied to each row of ``[..., T]`` inputs (time is the last axis). Conventions (SPEC §1):

* ``terminated[t]``: step t reached a terminal state; nothing is bootstrapped after it.
* ``truncated[t]``: the episode was cut after step t; step t bootstraps from
  ``next_values[t]`` and the recursion does not cross from t+1 into t.
* the last present step of a row is always a segment end.
* ``mask[t] = 0``: the step is deleted before computing (compression); the output there is 0.
* ``gamma`` is a number in [0, 1] or an array broadcastable to ``[..., T]`` (step discounts).

Fraction inputs give Fraction outputs, SymPy inputs give SymPy expressions, floats give
float64 arrays.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._arrays import Array, check_positive_int, map_rows, prepare

__all__ = ["td_errors", "discounted_returns", "n_step_returns", "segment_end"]



def segment_end(t: int, terminated: Sequence[bool], truncated: Sequence[bool]) -> bool:
    """Is step ``t`` of a (compressed) row the end of a segment? (SPEC §1)

    Args:
        t: the step's index in the row (after masked steps are removed).
        terminated: the row's terminated flags.
        truncated: the row's truncated flags.
    """
    return terminated[t] or truncated[t] or t == len(terminated) - 1


def _bootstrap(t: int, gamma: Sequence[Any], next_values: Sequence[Any],
               terminated: Sequence[bool]) -> Any:
    """γ_t·nt_t·V'_t, written so that V' at a terminated step is never read."""
    if terminated[t] or next_values[t] is None:
        return 0
    return gamma[t] * next_values[t]


def _td_row(rewards, values, next_values, gamma, terminated, truncated):
    return [
        rewards[t] + _bootstrap(t, gamma, next_values, terminated) - values[t]
        for t in range(len(rewards))
    ]


def td_errors(rewards: Array, values: Array, next_values: Array, *, gamma: Any,
              terminated: Array | None = None) -> np.ndarray:
    """One-step TD errors ``δ_t = r_t + γ_t·(1 − terminated_t)·V'_t − V_t``.

    Sutton (1988), "Learning to predict by the methods of temporal differences";
    Schulman et al. (2016), GAE paper, eq. (10) notation.

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        values: ``[..., T]`` V(s_t), the value of the state step t starts in.
        next_values: ``[..., T]`` V(s_{t+1}), the value of the state after step t (the bootstrap;
            not read where step t terminates).
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        terminated: ``[..., T]`` booleans: step t ends the episode in a terminal state (no
            bootstrap). Default: nothing terminates.

    Returns: ``[..., T]`` TD errors. Raises ``ValueError`` on mismatched shapes, gamma outside
    [0, 1], non-finite inputs.

    Examples:
        >>> from fractions import Fraction as F
        >>> list(td_errors([F(1)], [F(2)], [F(4)], gamma=F(1, 2)))
        [Fraction(1, 1)]
    """
    p = prepare({"rewards": rewards, "values": values, "next_values": next_values},
                gamma=gamma, flags={"terminated": terminated, "truncated": None})
    return map_rows(p, _td_row, ["rewards", "values", "next_values", "gamma"])


def _returns_row(rewards, next_values, gamma, terminated, truncated):
    T = len(rewards)
    G = [None] * T
    for t in reversed(range(T)):
        if segment_end(t, terminated, truncated):
            G[t] = rewards[t] + _bootstrap(t, gamma, next_values, terminated)
        else:
            G[t] = rewards[t] + gamma[t] * G[t + 1]
    return G


def discounted_returns(rewards: Array, *, gamma: Any, next_values: Array | None = None,
                       terminated: Array | None = None, truncated: Array | None = None,
                       mask: Array | None = None) -> np.ndarray:
    """Discounted returns ``G_t = r_t + γ_t·(G_{t+1} if t is not a segment end else nt_t·V'_t)``.

    Closed form inside a segment ending at e: ``G_t = Σ_{l=0}^{e−t} (Π_{j<l} γ_{t+j}) r_{t+l}
    + (Π_{j≤e−t} γ_{t+j})·nt_e·V'_e``. Without ``next_values`` the bootstrap is 0 (Monte Carlo
    to the end of the data). Sutton & Barto (2018), eq. (3.8).

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        next_values: ``[..., T]`` V(s_{t+1}), bootstrapped at a truncation and at the end of the
            data; None: no bootstrap (0).
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.
        mask: ``[..., T]`` booleans, True at present steps. Absent steps (padding) are compressed
            out of every row, never read, and give 0. Default: every step present.

    Examples:
        >>> from fractions import Fraction as F
        >>> list(discounted_returns([F(1), F(1)], gamma=F(1, 2)))
        [Fraction(3, 2), Fraction(1, 1)]
    """
    p = prepare({"rewards": rewards, "next_values": next_values}, gamma=gamma,
                flags={"terminated": terminated, "truncated": truncated, "mask": mask})
    return map_rows(p, _returns_row, ["rewards", "next_values", "gamma"])


def _discount(gamma: Sequence[Any], t: int, length: int) -> Any:
    """Π_{j<length} γ_{t+j} (1 for length 0)."""
    d = 1
    for j in range(length):
        d = d * gamma[t + j]
    return d


def _segment_last(t: int, terminated, truncated) -> int:
    e = t
    while not segment_end(e, terminated, truncated):
        e += 1
    return e


def _steps_left(t: int, terminated, truncated, cap: int) -> int:
    """min(cap, number of steps from t to the end of its segment, t included)."""
    k = 1
    while k < cap and not segment_end(t + k - 1, terminated, truncated):
        k += 1
    return k


def n_step_row(rewards, next_values, gamma, terminated, truncated, n):
    """G^(n)_t for every t of one compressed row (used by the mixture form too)."""
    G = []
    for t in range(len(rewards)):
        k = _steps_left(t, terminated, truncated, n)  # k = min(n, steps left in the segment)
        g = sum(_discount(gamma, t, l) * rewards[t + l] for l in range(k))
        last = t + k - 1
        if not terminated[last]:
            g = g + _discount(gamma, t, k) * next_values[last]
        G.append(g)
    return G


def n_step_returns(rewards: Array, next_values: Array, *, gamma: Any, n: int,
                   terminated: Array | None = None, truncated: Array | None = None,
                   mask: Array | None = None) -> np.ndarray:
    """n-step returns ``G^(n)_t = Σ_{l<k} γ^l r_{t+l} + γ^k·nt_{t+k−1}·V'_{t+k−1}``.

    ``k = min(n, steps left in the segment)``; with a per-step gamma, ``γ^l`` is the product
    of the step discounts ``Π_{j<l} γ_{t+j}``. Sutton & Barto (2018), eq. (7.1).
    ``n = 1`` gives ``r + γ·nt·V'``; ``n ≥ T`` gives :func:`discounted_returns`.

    Args:
        rewards: ``[..., T]`` rewards r_t, time on the last axis.
        next_values: ``[..., T]`` V(s_{t+1}), the bootstrap after the last reward step (not read
            where that step terminates).
        gamma: the discount γ in [0, 1]: a number, or ``[..., T]`` per step.
        n: the number of reward steps n ≥ 1 before the bootstrap.
        terminated: ``[..., T]`` booleans: the episode ends at step t in a terminal state, so
            nothing after it is bootstrapped (``next_values[t]`` is never read). Default: none.
        truncated: ``[..., T]`` booleans: the episode is cut at step t by a time limit; the value
            after it is bootstrapped from ``next_values[t]``. Default: none.
        mask: ``[..., T]`` booleans, True at present steps. Absent steps (padding) are compressed
            out of every row, never read, and give 0. Default: every step present.

    Examples:
        >>> from fractions import Fraction as F
        >>> list(n_step_returns([F(1), F(1)], [F(2), F(2)], gamma=F(1, 2), n=1))
        [Fraction(2, 1), Fraction(2, 1)]
    """
    n = check_positive_int("n", n)
    p = prepare({"rewards": rewards, "next_values": next_values}, gamma=gamma,
                flags={"terminated": terminated, "truncated": truncated, "mask": mask})
    return map_rows(p, n_step_row, ["rewards", "next_values", "gamma"], n=n)
