"""Exact oracles for the trust-region quantities of TRPO on a categorical (softmax) policy
(SPEC §5).

The policy is ``π_θ = softmax(θ)`` over K actions; derivatives are with respect to the logits
θ, taken by SymPy on the definitions and evaluated at ``θ = log p`` (so ``π = p`` exactly).

* :func:`fisher_matrix` — ``F = E_{a~π}[∇log π(a) ∇log π(a)ᵀ]``;
* :func:`kl_hessian` — ``∇²_θ KL(π_old‖π_θ)`` at ``θ = θ_old`` (equals F: the quadratic model
  of TRPO's constraint);
* :func:`surrogate_hessian` — ``∇²_θ Σ_a π_old(a)·(π_θ(a)/π_old(a))·A(a)`` at θ_old, the
  Hessian of the *objective* (not F in general);
* :func:`natural_gradient_step` — ``sqrt(2δ / gᵀF⁻¹g)·F⁻¹g``, whose quadratic KL model
  ``½ sᵀF s`` equals δ.

Schulman et al. (2015), "Trust Region Policy Optimization", §6 and Appendix C; Kakade (2001),
"A Natural Policy Gradient".
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Integral, Real
from typing import Any, Sequence

import numpy as np
import sympy

from ._arrays import plain

__all__ = ["fisher_matrix", "kl_hessian", "surrogate_hessian", "natural_gradient_step",
           "conjugate_gradient", "backtracking_line_search"]


def _rational(x: Any, name: str = "input") -> Any:
    """An exact SymPy number (floats exactly); NaN/inf or a non-number name the argument."""
    if isinstance(x, sympy.Basic):
        return x
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, Real):
        raise TypeError(f"{name} must hold real numbers, got {type(x).__name__}")
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(float(x)):
            raise ValueError(f"{name} is not finite: {x}")
        x = float(x)
    f = Fraction(int(x) if isinstance(x, np.integer) else x)
    return sympy.Rational(f.numerator, f.denominator)


def _vector(name: str, x: Any) -> list:
    arr = np.asarray(plain(name, x), dtype=object)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty vector (one axis), got shape {arr.shape}")
    return [_rational(v, name) for v in arr]


def _policy(p: Sequence[Any]):
    probs = _vector("p", p)
    if len(probs) < 1:
        raise ValueError("p must have at least one action")
    if any(x <= 0 for x in probs if x.is_number):
        raise ValueError("p must be strictly positive (log-probabilities of every action)")
    if sympy.simplify(sum(probs) - 1) != 0:
        raise ValueError(f"p must sum to 1, got {sum(probs)}")
    K = len(probs)
    theta = sympy.symbols(f"theta0:{K}", real=True)
    log_z = sympy.log(sum(sympy.exp(t) for t in theta))
    logpi = [t - log_z for t in theta]
    at = {t: sympy.log(x) for t, x in zip(theta, probs)}
    return probs, theta, logpi, at


def _evaluate(expr: Any, at: dict) -> Any:
    return sympy.simplify(sympy.expand_log(sympy.sympify(expr).subs(at), force=True))


def fisher_matrix(p: Sequence[Any]) -> sympy.Matrix:
    """``F_ij = Σ_a π(a)·∂_i log π(a)·∂_j log π(a)`` for ``π = softmax(θ)`` at ``π = p``
    (Amari 1998; Kakade 2001).

    Args:
        p: ``[K]`` π = softmax(θ), the point at which F is taken.

    Examples:
        >>> from fractions import Fraction as F
        >>> fisher_matrix([F(1, 2), F(1, 2)])
        Matrix([
        [ 1/4, -1/4],
        [-1/4,  1/4]])
    """
    probs, theta, logpi, at = _policy(p)
    K = len(probs)
    grads = [[sympy.diff(logpi[a], t) for t in theta] for a in range(K)]
    return sympy.Matrix(K, K, lambda i, j: _evaluate(
        sum(sympy.exp(logpi[a]) * grads[a][i] * grads[a][j] for a in range(K)), at))


def kl_hessian(p: Sequence[Any]) -> sympy.Matrix:
    """``∇²_θ KL(π_old‖π_θ)`` at ``θ = θ_old``, with ``π_old = p`` (a constant); equals the
    Fisher matrix (Schulman et al. 2015, Appendix C).

    Args:
        p: ``[K]`` π_old, the point of the expansion.
    """
    probs, theta, logpi, at = _policy(p)
    kl = sum(probs[a] * (sympy.log(probs[a]) - logpi[a]) for a in range(len(probs)))
    return sympy.Matrix(len(theta), len(theta),
                        lambda i, j: _evaluate(sympy.diff(kl, theta[i], theta[j]), at))


def surrogate_hessian(p: Sequence[Any], advantages: Sequence[Any]) -> sympy.Matrix:
    """``∇²_θ L(θ)`` at θ_old for TRPO's surrogate ``L(θ) = Σ_a π_old(a)·(π_θ(a)/π_old(a))·A(a)``
    (the importance-weighted objective of Schulman et al. 2015, eq. 14), ``π_old = p``.

    Args:
        p: ``[K]`` π_old.
        advantages: ``[K]`` A(a), one advantage per action.
    """
    probs, theta, logpi, at = _policy(p)
    if len(advantages) != len(probs):
        raise ValueError(f"advantages has {len(advantages)} entries but p has {len(probs)}")
    A = [_rational(x) for x in advantages]
    L = sum(probs[a] * (sympy.exp(logpi[a]) / probs[a]) * A[a] for a in range(len(probs)))
    return sympy.Matrix(len(theta), len(theta),
                        lambda i, j: _evaluate(sympy.diff(L, theta[i], theta[j]), at))


def natural_gradient_step(g: Sequence[Any], F: Any, max_kl: Any) -> sympy.Matrix:
    """``s = sqrt(2δ / gᵀF⁻¹g)·F⁻¹g``: the step maximising ``gᵀs`` subject to the quadratic
    KL model ``½ sᵀF s ≤ δ`` (Schulman et al. 2015, Appendix C). ``F`` must be positive
    definite on g's direction; a singular F (softmax over all K logits) needs a
    parametrisation without the redundant direction, or damping.

    Args:
        g: ``[K]`` the gradient of the surrogate.
        F: ``[K, K]`` the Fisher matrix (positive definite on g's direction).
        max_kl: δ > 0, the trust region's KL radius.
    """
    g = sympy.Matrix(_vector("g", g))
    F_rows = np.asarray(plain("F", F), dtype=object)
    if F_rows.ndim != 2:
        raise ValueError(f"F must be a matrix (two axes), got shape {F_rows.shape}")
    F = sympy.Matrix([[_rational(v, "F") for v in row] for row in F_rows])
    delta = _rational(max_kl, "max_kl")
    if F.shape != (g.rows, g.rows):
        raise ValueError(f"F has shape {F.shape} but g has {g.rows} entries")
    if not delta > 0:
        raise ValueError(f"max_kl must be positive, got {max_kl}")
    if F.det() == 0:
        raise ValueError("F is singular: add damping (F + λ·I) or use a parametrisation "
                         "without the redundant direction (a softmax over all K logits)")
    if F != F.T or not F.is_positive_definite:
        raise ValueError("F is not symmetric positive definite (a Fisher matrix is): add "
                         "damping (F + λ·I)")
    x = F.LUsolve(g)
    quad = sympy.simplify((g.T * x)[0])
    if not quad > 0:
        raise ValueError("gᵀF⁻¹g must be positive (F positive definite, g ≠ 0)")
    return sympy.sqrt(2 * delta / quad) * x


def conjugate_gradient(Avp: Any, g: Sequence[Any], iters: int, damping: Any = 0) -> list:
    """Solve ``(A + damping·I)·x = g`` by conjugate gradients (Hestenes & Stiefel 1952),
    given only ``Avp(v) = A·v``, in exact arithmetic: for a symmetric positive definite A of
    size n, ``iters ≥ n`` iterations give the exact solution (TRPO, Schulman et al. 2015,
    Appendix C).

    Args:
        Avp: ``v ↦ A·v``, the matrix-vector product (A symmetric positive definite).
        g: the right-hand side.
        iters: the number of iterations (≥ n for the exact solution).
        damping: added to A's diagonal (default 0).
    """
    if isinstance(iters, bool) or not isinstance(iters, Integral) or iters < 0:
        raise ValueError(f"iters must be an integer >= 0, got {iters!r}")
    damping = _rational(damping, "damping")
    if damping < 0:
        raise ValueError(f"damping must be >= 0, got {damping}")
    g = _vector("g", g)
    x = [sympy.Integer(0)] * len(g)
    r, p = list(g), list(g)
    rr = sum(v * v for v in r)
    for _ in range(iters):
        if rr == 0:
            break
        Ap = [a + damping * b for a, b in zip((_rational(v) for v in Avp(p)), p)]
        pAp = sum(a * b for a, b in zip(p, Ap))
        if not pAp > 0:
            raise ValueError(f"Avp is not positive definite (pᵀAp = {pAp} ≤ 0): conjugate "
                             "gradient needs a symmetric positive definite operator; add "
                             "damping")
        alpha = rr / pAp
        x = [a + alpha * b for a, b in zip(x, p)]
        r = [a - alpha * b for a, b in zip(r, Ap)]
        rr_new = sum(v * v for v in r)
        p = [a + (rr_new / rr) * b for a, b in zip(r, p)]
        rr = rr_new
    return x


def backtracking_line_search(objective: Any, kl: Any, x: Any, full_step: Any, *, max_kl: Any,
                             backtrack: Any = Fraction(1, 2), max_backtracks: int = 10):
    """TRPO's line search: try ``x + backtrack^k·full_step`` for k = 0, 1, …, and accept the
    first step whose ``kl(x_new) ≤ max_kl`` AND whose improvement
    ``objective(x_new) − objective(x)`` is positive; if none is accepted, return x unchanged.

    Args:
        objective: ``x ↦ L(x)``, the surrogate to increase.
        kl: ``x ↦ KL(π_x_old‖π_x)``, the constraint's KL from the starting point.
        x: the starting parameters.
        full_step: the proposed step (e.g. :func:`natural_gradient_step`).
        max_kl: δ, the largest accepted KL.
        backtrack: the step's shrink factor per try (default 1/2).
        max_backtracks: the number of shrunk tries after the full step (default 10).

    Returns ``(x_new, k)`` with ``k = None`` when nothing was accepted. Schulman et al.
    (2015), §6 and Appendix C."""
    if not 0 < backtrack < 1:
        raise ValueError(f"backtrack must lie in (0, 1), got {backtrack}")
    x_values, step_values = _vector("x", x), _vector("full_step", full_step)  # validation
    if len(x_values) != len(step_values):
        raise ValueError(f"full_step has {len(step_values)} entries but x has {len(x_values)}")
    x, full_step = plain("x", x), plain("full_step", full_step)
    if not max_kl > 0:
        raise ValueError(f"max_kl must be positive, got {max_kl}")
    if isinstance(max_backtracks, bool) or not isinstance(max_backtracks, Integral) \
            or max_backtracks < 1:
        raise ValueError(f"max_backtracks must be an integer >= 1, got {max_backtracks!r}")
    base = objective(x)
    for k in range(max_backtracks):
        fraction = backtrack**k
        candidate = [a + fraction * b for a, b in zip(x, full_step)]
        if kl(candidate) <= max_kl and objective(candidate) - base > 0:
            return candidate, k
    return list(x), None
