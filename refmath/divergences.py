"""Exact oracles for divergences, entropies and the k1/k2/k3 KL estimators (SPEC §3).

Categorical distributions are arrays whose LAST axis is the support. Natural logarithms
throughout; ``0·log 0 = 0``. Fraction inputs give exact SymPy results (logs of rationals are
kept exact), floats give float64 arrays.

The estimator analysis (:func:`kl_estimator_moments`) is done symbolically: the policy
``π_θ = softmax(θ)`` is differentiated with SymPy with respect to its logits, then evaluated
at ``θ = log p`` (so ``π = p`` exactly). What it establishes (proven in the tests, tabled in
the README): for samples ``a ~ π`` and ``log r = log π_ref(a) − log π(a)``,

============  ================================  ==============================================
estimator     E_π[k]                            E_π[∇_θ k] (autograd on the sampled loss)
============  ================================  ==============================================
k1 = −log r   KL(π‖π_ref)   (unbiased)          0                (no useful gradient)
k2 = ½log²r   ½E[log² r] ≠ KL  (biased)         ∇_θ KL(π‖π_ref)  (the reverse-KL gradient)
k3 = r−1−log r  KL(π‖π_ref) (unbiased, ≥ 0)     ∇_θ KL(π_ref‖π)  (the FORWARD-KL gradient)
============  ================================  ==============================================

and the full gradient of the expectation, ``∇_θ E_π[k] = E[∇_θ k] + E[k·∇_θ log π]``, is the
reverse-KL gradient for k1 and k3 and not for k2. Schulman (2020), "Approximating KL
divergence"; the gradient analysis follows Liu et al. (2025), "Rethinking KL regularization
in RLHF".
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import sympy

from ._arrays import Array, exp, log, prepare_arrays

__all__ = ["KL_WEIGHTS", "kl_divergence", "entropy", "entropy_from_logits", "kl_estimate",
           "importance_weighted_kl_estimate",
           "kl_estimator_moments", "kl_divergence_gradient", "KL_ESTIMATORS"]

KL_ESTIMATORS = ("k1", "k2", "k3")


def _negative(x: Any) -> bool:
    """x < 0; for a SymPy expression only when SymPy can decide it (a symbolic probability
    such as 1 − p, with 0 < p < 1 assumed by the caller, is not rejected)."""
    if isinstance(x, sympy.Basic):
        return bool(x.is_negative)
    return x < 0


def _distributions(**named: Array):
    p = prepare_arrays(named)
    for name, a in p.arrays.items():
        for idx in np.ndindex(p.shape[:-1]):
            row = [a[idx + (i,)] for i in range(p.shape[-1])]
            if any(_negative(x) for x in row):
                raise ValueError(f"{name} has a negative probability in row {idx}")
            total = sum(row)
            if (p.mode == "float" and abs(total - 1) > 1e-5) or (
                    p.mode != "float" and sympy.simplify(total - 1) != 0):
                raise ValueError(f"{name} must sum to 1 over the last axis; row {idx} sums "
                                 f"to {total}")
    return p


def _plogq(p_i: Any, q_i: Any) -> Any:
    """p·log q with 0·log q = 0 (also for q = 0)."""
    if p_i == 0:
        return 0
    return p_i * log(q_i)


def kl_divergence(p: Array, q: Array) -> np.ndarray:
    """``KL(p‖q) = Σ_x p(x)·log(p(x)/q(x))`` over the last axis, in nats.

    ``0·log 0 = 0``; ``+inf`` where some p(x) > 0 = q(x). Kullback & Leibler (1951).

    Args:
        p: ``[..., K]`` the first distribution (each row sums to 1).
        q: ``[..., K]`` the second, over the same K outcomes.

    Examples:
        >>> from fractions import Fraction as F
        >>> kl_divergence([F(1, 2), F(1, 2)], [F(1, 2), F(1, 2)])[()]
        0
    """
    d = _distributions(p=p, q=q)
    out = d.empty(d.shape[:-1])
    for idx in np.ndindex(d.shape[:-1]):
        total: Any = 0
        for i in range(d.shape[-1]):
            p_i, q_i = d.arrays["p"][idx + (i,)], d.arrays["q"][idx + (i,)]
            if p_i == 0:
                continue
            if q_i == 0:
                total = np.inf if d.mode == "float" else sympy.oo
                break
            total = total + p_i * log(p_i / q_i)
        out[idx] = total
    return out


def entropy(p: Array) -> np.ndarray:
    """``H(p) = −Σ_x p(x)·log p(x)`` over the last axis, in nats (``0·log 0 = 0``).

    Shannon (1948).

    Args:
        p: ``[..., K]`` probabilities (each row sums to 1).

    Examples:
        >>> from fractions import Fraction as F
        >>> entropy([F(1), F(0)])[()]
        0
    """
    d = _distributions(p=p)
    out = d.empty(d.shape[:-1])
    for idx in np.ndindex(d.shape[:-1]):
        out[idx] = -sum((_plogq(x, x) for x in d.arrays["p"][idx]), 0)
    return out


def _log_softmax_row(logits: list[Any], mode: str) -> list[Any]:
    """log softmax_i = l_i − log Σ_j exp(l_j), with the maximum m subtracted where it is
    known (floats, exact rationals): log Σ_j exp(l_j) = m + log Σ_j exp(l_j − m) is an
    identity, and it keeps exp(±1e4) out of exact expressions (their evaluation to 30 digits
    was slow); symbols keep the plain form."""
    if mode == "symbolic":
        lse = log(sum(exp(l) for l in logits))
        return [l - lse for l in logits]
    m = max(logits)
    rest = log(sum(exp(k - m) for k in logits))
    return [(l - m) - rest for l in logits]


def entropy_from_logits(logits: Array) -> np.ndarray:
    """Entropy of ``softmax(logits)`` over the last axis: ``H = −Σ_i p_i·log p_i`` with
    ``log p_i = l_i − log Σ_j exp(l_j)``.

    Floats are evaluated with the maximum subtracted (exact algebraically), so logits of
    ±1e4 give the right answer; a probability that underflows contributes its limit 0.
    Shannon (1948).

    Args:
        logits: ``[..., K]`` unnormalised log-probabilities.
    """
    d = prepare_arrays({"logits": logits})
    out = d.empty(d.shape[:-1])
    for idx in np.ndindex(d.shape[:-1]):
        logp = _log_softmax_row(list(d.arrays["logits"][idx]), d.mode)
        out[idx] = -sum((exp(lp) * lp for lp in logp), 0)
    return out


def _estimator(kind: str, log_r: Any) -> Any:
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return log_r**2 / 2
    if kind == "k3":
        return exp(log_r) - 1 - log_r
    raise ValueError(f"kind must be one of {KL_ESTIMATORS}, got {kind!r}")


def kl_estimate(logp: Array, ref_logp: Array, kind: str) -> np.ndarray:
    """Per-sample KL estimators for samples ``x ~ π`` with ``log r = ref_logp − logp``:

    ``k1 = −log r``, ``k2 = (log r)²/2``, ``k3 = exp(log r) − 1 − log r`` (≥ 0 for every
    sample, since e^y ≥ 1 + y). Schulman (2020), "Approximating KL divergence". What each
    estimates and which gradient each gives: see the module docstring.

    Args:
        logp: log π(x) of the samples x ~ π (any shape).
        ref_logp: log π_ref(x) of the same samples.
        kind: the KL estimator: ``"k1"``, ``"k2"`` or ``"k3"`` (Schulman 2020).

    Examples:
        >>> from fractions import Fraction as F
        >>> kl_estimate([F(-1)], [F(-1)], "k3")[0]
        0
    """
    _estimator(kind, 0)  # validates kind before any work
    d = prepare_arrays({"logp": logp, "ref_logp": ref_logp}, min_ndim=0)
    out = d.empty()
    for idx in np.ndindex(d.shape):
        out[idx] = _estimator(kind, d.arrays["ref_logp"][idx] - d.arrays["logp"][idx])
    return out


def importance_weighted_kl_estimate(logp: Array, ref_logp: Array, old_logp: Array,
                                    kind: str) -> np.ndarray:
    """``exp(logp − old_logp)·k`` for the estimator ``k`` of :func:`kl_estimate`: the KL
    penalty of samples that come from π_old (SPEC §7). Both factors carry the gradient.

    Args:
        logp: log π_θ(x) of samples x ~ π_old (any shape).
        ref_logp: log π_ref(x) of the same samples.
        old_logp: log π_old(x), the policy that sampled them.
        kind: the KL estimator: ``"k1"``, ``"k2"`` or ``"k3"`` (Schulman 2020).
    """
    _estimator(kind, 0)
    d = prepare_arrays({"logp": logp, "ref_logp": ref_logp, "old_logp": old_logp},
                       min_ndim=0)
    out = d.empty()
    for idx in np.ndindex(d.shape):
        lp, ref, old = (d.arrays[n][idx] for n in ("logp", "ref_logp", "old_logp"))
        out[idx] = exp(lp - old) * _estimator(kind, ref - lp)
    return out


# --- exact analysis of the estimators -------------------------------------------------------

def _symbolic_policy(K: int):
    theta = sympy.symbols(f"theta0:{K}", real=True)
    log_z = sympy.log(sum(sympy.exp(t) for t in theta))
    logpi = [t - log_z for t in theta]
    return theta, logpi


def _at(expr: Any, theta, p_row) -> Any:
    """Evaluate at θ = log p, where softmax(θ) = p exactly."""
    sub = {t: sympy.log(_rational(x)) for t, x in zip(theta, p_row)}
    return sympy.simplify(sympy.expand_log(expr.subs(sub), force=True))


def _rows(p: Array, q: Array):
    d = _distributions(p=p, q=q)
    for name in ("p", "q"):
        if any(x == 0 for x in d.arrays[name].flat):
            raise ValueError(f"{name} must be strictly positive for the estimator analysis "
                             "(log-probabilities of every action are needed)")
    as_frac = (lambda x: Fraction(x)) if d.mode != "symbolic" else (lambda x: x)
    for idx in np.ndindex(d.shape[:-1]):
        yield idx, d, [as_frac(x) for x in d.arrays["p"][idx]], \
            [as_frac(x) for x in d.arrays["q"][idx]]


def _finish(d, value: Any) -> Any:
    return float(value) if d.mode == "float" else value


KL_WEIGHTS = ("none", "ratio", "detached")


def _behaviour_rows(p: Array, q: Array, behaviour: Array | None):
    """Rows (idx, d, p, q, μ): μ = the behaviour row (None when samples come from π)."""
    if behaviour is None:
        for idx, d, p_row, q_row in _rows(p, q):
            yield idx, d, p_row, q_row, None
        return
    mu = _distributions(behaviour=behaviour, p=p)
    if any(x == 0 for x in mu.arrays["behaviour"].flat):
        raise ValueError("behaviour must be strictly positive (every action is sampled)")
    as_frac = (lambda x: Fraction(x)) if mu.mode != "symbolic" else (lambda x: x)
    for idx, d, p_row, q_row in _rows(p, q):
        yield idx, d, p_row, q_row, [as_frac(x) for x in mu.arrays["behaviour"][idx]]


def _rational(x: Any) -> Any:
    return sympy.Rational(x.numerator, x.denominator) if isinstance(x, Fraction) else x


def kl_estimator_moments(p: Array, q: Array, kind: str, behaviour: Array | None = None, *,
                         weight: str = "none") -> dict[str, np.ndarray]:
    """Exact moments of estimator ``kind`` for π = p, reference π_ref = q (last axis), on
    samples a ~ π (``behaviour=None``) or a ~ μ = ``behaviour`` (π_old, fixed: it does not
    depend on θ), the per-sample estimate being

    * ``weight="none"``: ``k(a)``;
    * ``weight="ratio"``: ``w(a)·k(a)``, ``w = π(a)/μ(a)`` on the gradient path (as
      :func:`importance_weighted_kl_estimate`);
    * ``weight="detached"``: ``sg[w(a)]·k(a)`` (the weight a constant of the gradient).

    Args:
        p: ``[..., K]`` π, the policy (its logits θ = log p are differentiated).
        q: ``[..., K]`` π_ref, the reference.
        kind: the KL estimator: ``"k1"``, ``"k2"`` or ``"k3"`` (Schulman 2020).
        behaviour: ``[..., K]`` μ, the sampling policy of off-policy samples; None: samples from π.
        weight: ``"none"``, ``"ratio"`` (w = π/μ on the gradient path) or ``"detached"`` (sg[w]).

    Returns a dict of arrays:

    * ``"expectation"``: ``E_a[estimate(a)]``;
    * ``"pathwise_gradient"``: ``E_a[∇_θ estimate(a)]`` — what autograd on the mean of
      sampled estimates gives in expectation (samples fixed); shape ``[..., K]``;
    * ``"score_gradient"``: ``E_a[estimate(a)·∇_θ log(sampling density)(a)]`` (0 for a
      fixed behaviour μ);
    * ``"gradient"``: ``∇_θ E_a[estimate(a)]``, the gradient of the expectation itself
      (the detached weight has its value here: it is the same number).

    θ are the logits of π (gradients at θ = log p). Computed by SymPy differentiation of
    ``softmax(θ)``; exact for Fraction inputs (rationals and logs of rationals). Estimators:
    Schulman (2020); the score-function identity: Williams (1992); off-policy estimation of
    the KL gradient: Tang & Munos (2025).
    """
    _estimator(kind, 0)
    if weight not in KL_WEIGHTS:
        raise ValueError(f"weight must be one of {KL_WEIGHTS}, got {weight!r}")
    if weight != "none" and behaviour is None:
        raise ValueError("weight needs a behaviour distribution (the ratio is π/behaviour)")
    out: dict[str, list] = {"expectation": [], "pathwise_gradient": [], "score_gradient": [],
                            "gradient": []}
    shapes = None
    for idx, d, p_row, q_row, mu in _behaviour_rows(p, q, behaviour):
        K = len(p_row)
        theta, logpi = _symbolic_policy(K)
        log_q = [sympy.log(_rational(x)) for x in q_row]
        k = [_estimator(kind, log_q[a] - logpi[a]) for a in range(K)]
        pi = [sympy.exp(lp) for lp in logpi]
        sampler = pi if mu is None else [_rational(x) for x in mu]
        w = [1] * K if weight == "none" else [pi[a] / sampler[a] for a in range(K)]
        w_at = [1] * K if weight == "none" else [_at(x, theta, p_row) for x in w]

        def grad(a, th):  # ∇ of the per-sample estimate, as autograd computes it
            if weight == "detached":
                return w_at[a] * sympy.diff(k[a], th)
            return sympy.diff(w[a] * k[a], th)

        expectation = sum(sampler[a] * w[a] * k[a] for a in range(K))
        score = [sum(sampler[a] * w[a] * k[a] * sympy.diff(logpi[a], th) for a in range(K))
                 if mu is None else sympy.Integer(0) for th in theta]
        values = {
            "expectation": _at(expectation, theta, p_row),
            "pathwise_gradient": [_at(sum(sampler[a] * grad(a, th) for a in range(K)),
                                      theta, p_row) for th in theta],
            "score_gradient": [_at(x, theta, p_row) for x in score],
            "gradient": [_at(sympy.diff(expectation, th), theta, p_row) for th in theta],
        }
        shapes = (d.shape, d)
        for key, v in values.items():
            out[key].append([_finish(d, x) for x in v] if isinstance(v, list)
                            else _finish(d, v))
    shape, d = shapes
    dtype = np.float64 if d.mode == "float" else object
    result = {}
    for key, vals in out.items():
        arr = np.empty(shape if key != "expectation" else shape[:-1], dtype=dtype)
        for n, idx in enumerate(np.ndindex(shape[:-1])):
            arr[idx] = vals[n]
        result[key] = arr
    return result


def kl_divergence_gradient(p: Array, q: Array, direction: str = "reverse") -> np.ndarray:
    """``∇_θ KL(π_θ‖π_ref)`` (``"reverse"``) or ``∇_θ KL(π_ref‖π_θ)`` (``"forward"``) at
    ``π_θ = softmax(θ) = p``, ``π_ref = q``, with respect to the logits θ; shape ``[..., K]``.

    Computed by SymPy differentiation of the definition ``Σ π log(π/π_ref)`` (Kullback &
    Leibler 1951).

    Args:
        p: ``[..., K]`` π_θ = softmax(θ) at which the gradient is taken.
        q: ``[..., K]`` π_ref.
        direction: ``"reverse"`` for KL(π_θ‖π_ref), ``"forward"`` for KL(π_ref‖π_θ).
    """
    if direction not in ("reverse", "forward"):
        raise ValueError(f"direction must be 'reverse' or 'forward', got {direction!r}")
    rows = []
    d = None
    for idx, d, p_row, q_row in _rows(p, q):
        K = len(p_row)
        theta, logpi = _symbolic_policy(K)
        log_q = [sympy.log(_rational(x)) for x in q_row]
        qs = [_rational(x) for x in q_row]
        if direction == "reverse":
            kl = sum(sympy.exp(logpi[a]) * (logpi[a] - log_q[a]) for a in range(K))
        else:
            kl = sum(qs[a] * (log_q[a] - logpi[a]) for a in range(K))
        rows.append([_finish(d, _at(sympy.diff(kl, th), theta, p_row)) for th in theta])
    out = d.empty()
    for n, idx in enumerate(np.ndindex(d.shape[:-1])):
        out[idx] = rows[n]
    return out
