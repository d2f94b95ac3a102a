"""Exact policy gradients on small finite-horizon tabular MDPs (SPEC §5).

A :class:`TabularMDP` has S states, A actions, transition table ``P[s, a, s']``, reward table
``R[s, a]``, start distribution ``rho[s]``, horizon ``H`` and discount ``gamma``. The policy is
softmax in logits ``θ[s, a]``; functions take the policy's probabilities ``pi[s, a]`` (so
exact rationals stay rational: ``θ = log π``) and differentiate with respect to θ.

Everything is computed by enumerating every trajectory ``τ = (s_0, a_0, …, s_{H−1}, a_{H−1})``,
``p(τ) = ρ(s_0)·Π_t π(a_t|s_t)·P(s_{t+1}|s_t, a_t)``, ``R(τ) = Σ_t γ^t r(s_t, a_t)``:

* :func:`expected_return` — ``J = Σ_τ p(τ) R(τ)``;
* :func:`return_gradient` — ``∇_θ J``, by SymPy differentiation of J as a function of the
  softmax weights ``x = e^θ`` (``∂/∂θ = x·∂/∂x``), evaluated at ``x = π`` — independent of the
  score-function identity that the estimators below rely on;
* :func:`reinforce_moments` — the exact mean, covariance and its trace of the per-trajectory
  REINFORCE estimator ``g(τ) = Σ_t ∇_θ log π(a_t|s_t)·Ψ_t`` with ``Ψ_t`` the full return,
  the reward-to-go ``Σ_{t'≥t} γ^{t'} r_{t'}``, or the reward-to-go minus a baseline.

Williams (1992), "Simple statistical gradient-following algorithms"; Sutton et al. (2000),
"Policy gradient methods for reinforcement learning with function approximation".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterator

import numpy as np
import sympy

from ._arrays import plain, prepare_arrays

__all__ = ["TabularMDP", "softmax_policy", "trajectories", "expected_return",
           "return_gradient", "reinforce_moments", "ESTIMATORS", "critic_loss", "actor_loss"]

ESTIMATORS = ("full_return", "reward_to_go", "reward_to_go_baseline")


def _exact(x: Any) -> Any:
    if isinstance(x, float):
        return Fraction(x)
    return x


@dataclass(frozen=True)
class TabularMDP:
    """``P[s][a][s']``, ``R[s][a]``, ``rho[s]``, horizon ``H`` ≥ 1, discount ``gamma``
    (a finite-horizon MDP, Puterman 1994).

    Args:
        P: ``[S, A, S]`` transition probabilities ``P[s][a][s']``.
        R: ``[S, A]`` rewards ``R[s][a]``.
        rho: ``[S]`` the start distribution ρ(s).
        H: the horizon (steps per episode), ≥ 1.
        gamma: the discount γ (default 1).
    """

    P: Any
    R: Any
    rho: Any
    H: int
    gamma: Any = 1

    def __post_init__(self) -> None:
        P, R, rho = (np.asarray(x, dtype=object) for x in (self.P, self.R, self.rho))
        S, A = R.shape
        if P.shape != (S, A, S):
            raise ValueError(f"P has shape {P.shape}, expected (S, A, S) = {(S, A, S)}")
        if rho.shape != (S,):
            raise ValueError(f"rho has shape {rho.shape}, expected ({S},)")
        if not (isinstance(self.H, int) and self.H >= 1):
            raise ValueError(f"H must be an integer >= 1, got {self.H!r}")
        for s in range(S):
            for a in range(A):
                if sum(P[s, a]) != 1 or any(x < 0 for x in P[s, a]):
                    raise ValueError(f"P[{s}, {a}] is not a probability distribution")
        if sum(rho) != 1 or any(x < 0 for x in rho):
            raise ValueError("rho is not a probability distribution")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must lie in [0, 1], got {self.gamma}")

    @property
    def shape(self) -> tuple[int, int]:
        return np.asarray(self.R, dtype=object).shape


def softmax_policy(theta: Any) -> np.ndarray:
    """``π[s, a] = exp(θ[s, a]) / Σ_b exp(θ[s, b])`` (exact SymPy for exact θ): the softmax
    policy of Sutton & Barto (2018), §13.1.

    Args:
        theta: ``[S, A]`` logits θ[s, a] (numbers or SymPy symbols).
    """
    theta = np.asarray(theta, dtype=object)
    out = np.empty(theta.shape, dtype=object)
    for s in range(theta.shape[0]):
        w = [sympy.exp(sympy.nsimplify(_exact(x))) for x in theta[s]]
        for a, x in enumerate(w):
            out[s, a] = sympy.simplify(x / sum(w))
    return out


def _check_policy(mdp: TabularMDP, pi: Any) -> np.ndarray:
    pi = np.asarray(plain("pi", pi), dtype=object)
    for x in pi.reshape(-1):
        if isinstance(x, complex) or (isinstance(x, (float, np.floating)) and not np.isfinite(x)):
            raise ValueError(f"pi must hold finite real probabilities, got {x}")
    if pi.shape != mdp.shape:
        raise ValueError(f"pi has shape {pi.shape}, expected (S, A) = {mdp.shape}")
    for s in range(pi.shape[0]):
        total = sum(pi[s])
        floats = any(isinstance(x, (float, np.floating)) for x in pi[s])
        off = abs(total - 1) > 1e-9 if floats else sympy.simplify(total - 1) != 0
        if off or any(x <= 0 for x in pi[s] if not isinstance(x, sympy.Symbol)):
            raise ValueError(f"pi[{s}] must be a strictly positive distribution (softmax)")
    return pi


def trajectories(mdp: TabularMDP, pi: Any) -> Iterator[tuple[list[tuple[int, int]], Any]]:
    """Every trajectory ``[(s_0, a_0), …]`` with its probability ``ρ(s_0)·Π π(a_t|s_t)·
    P(s_{t+1}|s_t, a_t)`` (zero-probability ones skipped; Sutton & Barto 2018, §3.1).

    Args:
        mdp: the finite-horizon MDP (:class:`TabularMDP`).
        pi: ``[S, A]`` the policy's probabilities π[s, a] (rows sum to 1): exact numbers, floats or
            SymPy expressions; θ = log π.
    """
    P, rho = np.asarray(mdp.P, dtype=object), np.asarray(mdp.rho, dtype=object)
    S, A = mdp.shape
    for states in itertools.product(range(S), repeat=mdp.H):
        for actions in itertools.product(range(A), repeat=mdp.H):
            p = rho[states[0]]
            for t in range(mdp.H):
                p = p * pi[states[t], actions[t]]
                if t + 1 < mdp.H:
                    p = p * P[states[t], actions[t], states[t + 1]]
            if p != 0:
                yield list(zip(states, actions)), p


def _rewards(mdp: TabularMDP, tau) -> list[Any]:
    R = np.asarray(mdp.R, dtype=object)
    return [mdp.gamma**t * R[s, a] for t, (s, a) in enumerate(tau)]


def expected_return(mdp: TabularMDP, pi: Any) -> Any:
    """``J = Σ_τ p(τ)·Σ_t γ^t r(s_t, a_t)`` (Sutton et al. 2000, eq. 1).

    Args:
        mdp: the finite-horizon MDP (:class:`TabularMDP`).
        pi: ``[S, A]`` the policy's probabilities π[s, a] (rows sum to 1): exact numbers, floats or
            SymPy expressions; θ = log π.
    """
    pi = _check_policy(mdp, pi)
    return sum((p * sum(_rewards(mdp, tau)) for tau, p in trajectories(mdp, pi)), 0)


def return_gradient(mdp: TabularMDP, pi: Any) -> np.ndarray:
    """``∇_θ J`` as an ``[S, A]`` array, by symbolic differentiation (see the module doc) —
    the quantity of the policy gradient theorem (Sutton et al. 2000).

    Args:
        mdp: the finite-horizon MDP (:class:`TabularMDP`).
        pi: ``[S, A]`` the policy's probabilities π[s, a] (rows sum to 1): exact numbers, floats or
            SymPy expressions; θ = log π.
    """
    pi = _check_policy(mdp, pi)
    S, A = mdp.shape
    x = np.array([[sympy.Symbol(f"x_{s}_{a}", positive=True) for a in range(A)]
                  for s in range(S)], dtype=object)
    soft = np.array([[x[s, a] / sum(x[s]) for a in range(A)] for s in range(S)], dtype=object)
    J = sum((p * sum(_rewards(mdp, tau)) for tau, p in trajectories(mdp, soft)), 0)
    at = {x[s, a]: sympy.nsimplify(_exact(pi[s, a])) for s in range(S) for a in range(A)}
    out = np.empty((S, A), dtype=object)
    for s in range(S):
        for a in range(A):
            out[s, a] = sympy.simplify((x[s, a] * sympy.diff(J, x[s, a])).subs(at))
    return out


def _score(pi: np.ndarray, s: int, a: int) -> np.ndarray:
    """∇_θ log π(a|s) = e_{s,a} − π(·|s) in row s (softmax)."""
    g = np.zeros(pi.shape, dtype=object)
    g[:] = 0
    g[s, :] = -pi[s, :]
    g[s, a] = g[s, a] + 1
    return g


def reinforce_moments(mdp: TabularMDP, pi: Any, estimator: str, *,
                      baseline: Callable[[int, int, int], Any] | None = None
                      ) -> dict[str, Any]:
    """Exact ``mean`` ([S, A]), ``covariance`` ([S·A, S·A]) and ``trace`` of the estimator.

    ``estimator``: ``"full_return"`` (Ψ_t = R(τ)), ``"reward_to_go"``
    (Ψ_t = Σ_{t'≥t} γ^{t'} r_{t'}), or ``"reward_to_go_baseline"`` (Ψ_t = that − γ^t·b),
    with ``baseline(t, s_t, a_t)`` — pass one that ignores ``a_t`` for a state(-time)
    baseline; one that uses ``a_t`` is the classic mistake (it biases the estimator).
    Williams (1992); Greensmith et al. (2004) for baselines.

    Args:
        mdp: the finite-horizon MDP (:class:`TabularMDP`).
        pi: ``[S, A]`` the policy's probabilities π[s, a] (rows sum to 1): exact numbers, floats or
            SymPy expressions; θ = log π.
        estimator: ``"full_return"``, ``"reward_to_go"`` or ``"reward_to_go_baseline"``.
        baseline: ``baseline(t, s_t, a_t)``, read by ``"reward_to_go_baseline"`` only.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if (baseline is None) == (estimator == "reward_to_go_baseline"):
        raise ValueError("baseline is required by (and only by) 'reward_to_go_baseline'")
    pi = _check_policy(mdp, pi)
    S, A = mdp.shape
    mean = np.zeros((S, A), dtype=object)
    second = np.zeros((S * A, S * A), dtype=object)
    mean[:] = 0
    second[:] = 0
    for tau, p in trajectories(mdp, pi):
        r = _rewards(mdp, tau)
        g = np.zeros((S, A), dtype=object)
        g[:] = 0
        for t, (s, a) in enumerate(tau):
            psi = sum(r) if estimator == "full_return" else sum(r[t:])
            if baseline is not None:
                psi = psi - mdp.gamma**t * baseline(t, s, a)
            g = g + _score(pi, s, a) * psi
        mean = mean + p * g
        flat = g.reshape(-1)
        second = second + p * np.outer(flat, flat)
    flat_mean = mean.reshape(-1)
    cov = second - np.outer(flat_mean, flat_mean)
    return {"mean": mean, "covariance": cov, "trace": sum(cov[i, i] for i in range(S * A))}


def critic_loss(values: Any, returns: Any) -> np.ndarray:
    """Per-step critic loss ``(V(s_t) − G_t)²`` (no factor ½), to MINIMISE.

    Mnih et al. (2016), "Asynchronous methods for deep RL" (A3C), §4.

    Args:
        values: ``[..., T]`` the critic's predictions V(s_t).
        returns: ``[..., T]`` the targets G_t.
    """
    p = prepare_arrays({"values": values, "returns": returns}, min_ndim=0)
    return (p.arrays["values"] - p.arrays["returns"]) ** 2


def actor_loss(logp: Any, advantages: Any) -> np.ndarray:
    """Per-step actor loss ``−log π(a_t|s_t)·A_t``, to MINIMISE, with the advantage a constant
    (in Torch: detached, so no gradient reaches the critic). Williams (1992); Mnih et al.
    (2016).

    Args:
        logp: ``[..., T]`` log π(a_t|s_t).
        advantages: ``[..., T]`` A_t, a constant of the loss.
    """
    p = prepare_arrays({"logp": logp, "advantages": advantages}, min_ndim=0)
    return -p.arrays["logp"] * p.arrays["advantages"]
