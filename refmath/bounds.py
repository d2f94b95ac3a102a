"""Forward-error bounds for float implementations of the recursions (CONFORMANCE.md).

A fixed rtol/atol both fails correct float32 code (cancellation) and hides real bugs. For a
backward recursion ``y_t = x_t + c_t·y_{t+1}`` with ``0 ≤ c_t ≤ 1`` evaluated in floating
point with unit roundoff ``u``, every term ``w_{ts}·x_s`` of the exact sum
``y_t = Σ_s w_{ts}·x_s`` (``w_{ts} = Π_{j=t}^{s−1} c_j``) is computed with a relative error of
at most ``k·u`` (to first order), where ``k`` counts the roundings on its path:

* the inputs: ``γ`` and ``λ`` rounded to the dtype (1 each), their product (1), so each
  factor ``c_j`` carries ≤ 3 roundings and ``w_{ts}`` ≤ ``3(s − t)`` plus ``s − t``
  multiplications: ≤ ``4T``;
* ``x_s`` itself: ``δ_s = r_s + γ·V'_s − V_s`` has ≤ 3 roundings;
* the additions: at most ``T`` in any association order (sequential, chunked or tree).

Hence ``|ŷ_t − y_t| ≤ (5T + 10)·u·S_t + floor`` with the *condition term*
``S_t = Σ_s w_{ts}·|x|_s``, where ``|x|_s`` bounds the terms of ``x_s`` in absolute value
(``|r_s| + γ|V'_s| + |V_s|`` for GAE). ``S_t`` is the same recursion run on absolute values,
so it is computed by the oracles themselves on absolute-valued inputs. ``floor`` covers
gradual underflow: each of the ≤ ``5T + 10`` operations may lose up to the smallest normal
number times the largest magnitude involved.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import objectives as ob

__all__ = ["unit_roundoff", "smallest_normal", "roundings", "recursion_bound", "HALF_DTYPES",
           "rounded_once", "expected_with_overflow"]  # and bound_*: SPEC §3–4

_UNIT = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}
_TINY = {"float64": 2.2250738585072014e-308, "float32": 1.1754943508222875e-38,
         "bfloat16": 1.1754943508222875e-38, "float16": 6.103515625e-05}


HALF_DTYPES = ("float16", "bfloat16")
_SUBNORMAL = {"float16": 2.0**-24, "bfloat16": 2.0**-133}
_LARGEST = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38}


def _name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def unit_roundoff(dtype: Any) -> float:
    """u = 2^-p for a floating dtype given as a torch/NumPy dtype or its name."""
    return _UNIT[_name(dtype)]


def smallest_normal(dtype: Any) -> float:
    return _TINY[_name(dtype)]


def roundings(T: int) -> int:
    """The rounding count ``5T + 10`` of the derivation above."""
    return 5 * T + 10


def recursion_bound(condition: np.ndarray, T: int, dtype: Any,
                    magnitude: float | None = None) -> np.ndarray:
    """``(5T + 10)·u·S + floor`` elementwise, for the condition term ``S`` (float64 array)."""
    k = roundings(T)
    S = np.asarray(condition, dtype=np.float64)
    top = float(np.max(S)) if magnitude is None and S.size else (magnitude or 0.0)
    floor = k * smallest_normal(dtype) * max(top, 1.0)
    return k * unit_roundoff(dtype) * S + floor


# --- half precision: computed in float32, rounded once ---------------------------------------
#
# SPEC §1: float16/bfloat16 inputs are computed in float32 and the result rounded once to the
# input dtype. The inputs are half-precision numbers, exact in float32, so the float32
# result ŷ obeys the float32 bound b₃₂ of the function; the one rounding fl_h adds at most
# u_h·|ŷ| (normal range) or half the subnormal spacing s_h (gradual underflow):
#
#     |fl_h(ŷ) − y| ≤ b₃₂ + u_h·(|y| + b₃₂) + s_h/2.
#
# A computation run in the half dtype itself (γ = 0.99 rounded to 0.98828125 in bfloat16, a
# sum of 40 terms with 8 significant bits) errs by many u_h and is caught.

def rounded_once(bound32: Any, exact: Any, dtype: Any) -> np.ndarray:
    """The bound above for a half ``dtype``, from the float32 bound and the exact result."""
    name = _name(dtype)
    b = np.asarray(bound32, dtype=np.float64)
    y = np.abs(np.asarray(exact, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return b + _UNIT[name] * (np.where(np.isfinite(y), y, 0.0) + b) + _SUBNORMAL[name] / 2


def expected_with_overflow(exact: Any, bound32: Any, got: Any, dtype: Any) -> np.ndarray:
    """The exact result, with ±inf where rounding it to the half ``dtype`` overflows for
    certain (|y| − b₃₂ beyond the rounding threshold max + ulp/2), and the function's own
    result where either is possible (|y| within b₃₂ of the threshold)."""
    name = _name(dtype)
    threshold = _LARGEST[name] * (1 + _UNIT[name])
    y = np.asarray(exact, dtype=np.float64).copy()
    b = np.broadcast_to(np.asarray(bound32, dtype=np.float64), y.shape)
    g = np.broadcast_to(np.asarray(got, dtype=np.float64), y.shape)
    sure = np.abs(y) - b > threshold
    either = ~sure & (np.abs(y) + b > threshold) & np.isinf(g)
    y[sure] = np.sign(y[sure]) * np.inf
    y[either] = g[either]
    return y


# --- SPEC §3–4: per-function forward-error bounds --------------------------------------------
#
# Each takes (case, f, exact, u): the input case (its flags and keyword options), the float
# inputs as the function saw them, the exact result, and the unit roundoff u of the dtype.

def _abs(x):
    return np.abs(np.asarray(x, dtype=np.float64))


def bound_ratio(case, f, exact, u):
    # d = logp − old: one rounding (|δd| ≤ u|d|); exp adds ≤ 4u relative: |δr| ≤ |r|(u|d| + 4u).
    d = _abs(f[0] - f[1])
    return 2 * u * np.abs(exact) * (d + 4)


def _masked_terms(case, f):
    m = case.flags.get("mask", np.ones(f[0].shape, dtype=bool))
    return np.where(m, _abs(f[0]) + _abs(f[1]), 0.0), m


def bound_sequence(case, f, exact, u):
    # Σ of T differences: each term one rounding, the sum T − 1 more.
    terms, _ = _masked_terms(case, f)
    return 2 * u * (f[0].shape[-1] + 2) * terms.sum(-1)


def bound_geometric(case, f, exact, u):
    # mean of T rounded differences (T + 2 roundings on Σ|terms|/n), then exp (4u relative).
    terms, m = _masked_terms(case, f)
    n = np.maximum(m.sum(-1), 1)
    return 2 * u * np.abs(exact) * ((f[0].shape[-1] + 3) * terms.sum(-1) / n + 4)


def bound_truncation(case, f, exact, u):
    # min is exact; only the cap is rounded to the dtype.
    return 2 * u * float(case.kwargs["cap"]) * np.ones_like(exact)


def _plogs(p, q):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * (np.abs(np.log(np.where(p > 0, p, 1)))
                                    + np.abs(np.log(np.where(q > 0, q, 1))) + 1), 0.0)


def bound_kl(case, f, exact, u):
    # Σ_x p(log p − log q): each log ≤ 4u relative, products and the K-term sum K + 2 more.
    K = f[0].shape[-1]
    return 2 * u * (K + 8) * _plogs(f[0], f[1]).sum(-1)


def bound_entropy(case, f, exact, u):
    K = f[0].shape[-1]
    return 2 * u * (K + 8) * _plogs(f[0], f[0]).sum(-1)


def bound_entropy_logits(case, f, exact, u):
    # log p_i = l_i − lse: error ≤ (K + 8)u(|l_i| + |lse| + 1); H = −Σ p log p then errs by
    # ≤ Σ p_i(1 + |log p_i|)·δ(log p_i) + (K + 2)u·Σ p_i|log p_i|.
    l = f[0]
    m = l.max(-1, keepdims=True)
    lse = m + np.log(np.exp(l - m).sum(-1, keepdims=True))
    logp = l - lse
    p = np.exp(logp)
    K = l.shape[-1]
    dlogp = (K + 8) * u * (np.abs(l) + np.abs(lse) + 1)
    return 2 * ((p * (1 + np.abs(logp)) * dlogp).sum(-1)
                + (K + 2) * u * (p * np.abs(logp)).sum(-1))


def bound_kl_estimate(case, f, exact, u):
    x = f[1] - f[0]
    dx = u * (np.abs(f[0]) + np.abs(f[1]))  # one rounding of the difference
    kind = case.kwargs["kind"]
    if kind == "k1":
        return 2 * dx
    if kind == "k2":
        return 2 * (np.abs(x) * dx + 2 * u * x * x)
    # k3 = expm1(x) − x: the rounding of x propagates with dk3/dx = e^x − 1; expm1 itself
    # ≤ 4u relative; the final subtraction 1u of its operands.
    em1 = np.abs(np.expm1(x))
    return 2 * (em1 * dx + 4 * u * em1 + u * (em1 + np.abs(x)))


def bound_clip(case, f, exact, u):
    # r·A one rounding; the clip bounds 1 ± ε rounded to the dtype (the surrogate is
    # continuous in r, so a boundary decided differently moves the value by ≤ u(1+ε)|A|);
    # c·A one rounding.
    kw = case.kwargs
    eps = max(float(kw["clip_low"]), float(kw.get("clip_high", kw["clip_low"])))
    c = float(kw.get("dual_clip", 0))
    return 4 * u * np.abs(f[1]) * (np.abs(f[0]) + 1 + eps + c)


def bound_penalized(case, f, exact, u):
    beta = float(case.kwargs["beta"])
    return 4 * u * (np.abs(f[0] * f[1]) + 2 * beta * np.abs(f[2]))


def bound_value(case, f, exact, u):
    # (Σ of ≤ 3 rounded terms of size ≤ M)²: ≤ 12u·M², M = |V| + |R| + |V_old| + c.
    M = np.abs(f[0]) + np.abs(f[1]) + (np.abs(f[2]) + float(case.kwargs["clip"])
                                       if len(f) > 2 else 0)
    return 12 * u * M * M


def _mean_error(S: float, n: int, u: float) -> float:
    """The error of μ = c + Σ(x − c)/n over n elements of size ≤ S (c one of them)."""
    return 2 * (n + 2) * u * S


def _whitening_error(x, keep, mean, var, eps, u, n, divisor, scale_on_std):
    """Bound on the error of (x − μ)/s, s = sqrt(var + eps) (or std + eps), per element.

    The twins shift by one element c of x (exact zero spread): d = x − c has |d| ≤ 2S and
    one rounding (2uS); μ_d = Σd/n then errs by ≤ 2(n + 2)uS (:func:`_mean_error`); the
    deviation d − μ_d adds those two and one rounding of size ≤ |x| + |μ| ≤ 2(S + |μ|)."""
    S = np.max(np.abs(x[keep])) if keep.any() else 0.0
    d_mean = _mean_error(S, n, u)
    dev = np.abs(x - mean)
    d_dev = d_mean + 2 * u * S + 2 * u * (S + abs(mean))
    D = np.max(dev[keep]) if keep.any() else 0.0
    d_var = (2 * D * d_dev * n + (n + 3) * u * float(np.sum(dev[keep] ** 2))) / divisor
    if scale_on_std:
        std = math.sqrt(var)
        s = std + eps
        d_s = (d_var / (2 * std) if std > 0 else math.sqrt(d_var)) + 2 * u * s
    else:
        s = math.sqrt(var + eps)
        d_s = (d_var + u * (var + eps)) / (2 * s) + 4 * u * s
    if d_s >= s:
        return np.full(x.shape, np.inf)  # too ill-conditioned to promise anything
    w = dev / s
    return 2 * (d_dev / (s - d_s) + w * d_s / (s - d_s) + u * w)


def bound_whiten(case, f, exact, u):
    x = f[0]
    keep = case.flags.get("mask", np.ones(x.shape, dtype=bool))
    n = int(keep.sum())
    mean = float(x[keep].mean())
    unbiased = case.kwargs["unbiased"]
    divisor = n - 1 if unbiased and n > 1 else n
    var = float(((x[keep] - mean) ** 2).sum()) / divisor if not (unbiased and n == 1) else 0.0
    err = _whitening_error(x, keep, mean, var, float(case.kwargs["eps"]), u, n, divisor, False)
    if not case.kwargs["shift_mean"]:  # + μ: its error, and two more roundings
        S = float(np.max(np.abs(x[keep])))
        err = err + _mean_error(S, n, u) + 4 * u * (abs(mean) + np.abs(exact))
    return np.where(keep, err, 0.0)


def bound_aggregate(case, f, exact, u):
    # All modes are positive-weighted sums: ≤ (B·T + 4) roundings on the same aggregate of |l|.
    kw = {k: v for k, v in case.kwargs.items()}
    mode = kw.pop("mode")
    S = float(ob.aggregate_loss(np.abs(f[0]), case.flags["mask"], mode, **kw))
    return 2 * u * (f[0].size + 4) * S * np.ones_like(exact)


def bound_group(case, f, exact, u):
    r = f[0]
    method, eps = case.kwargs["method"], float(case.kwargs["eps"])
    G = r.shape[-1]
    if method in ob.BATCH_GROUP_METHODS:
        return _bound_batch_group(r, method, eps, case.kwargs["unbiased"], u)
    out = np.zeros(r.shape)
    for idx in np.ndindex(r.shape[:-1]):
        row = r[idx]
        S = float(np.max(np.abs(row)))
        if method in ("dr_grpo", "rloo"):
            # shifted by r_0 (exact zero spread): d = r − r_0 (|d| ≤ 2S, 2uS), its mean
            # 2(G + 2)uS, the difference one rounding of ≤ 2(|r| + S): ≤ 2u(G + 5)(|r| + S)
            out[idx] = 2 * u * (G + 5) * (np.abs(row) + S)
            continue
        mean = float(row.mean())
        divisor = G - 1 if case.kwargs["unbiased"] and G > 1 else G
        var = float(((row - mean) ** 2).sum()) / divisor
        keep = np.ones(G, dtype=bool)
        out[idx] = _whitening_error(row, keep, mean, var, eps, u, G, divisor, True)
    return out


def _std_error(x: np.ndarray, unbiased: bool, eps: float, u: float) -> tuple[float, float]:
    """(s, a bound on its error) for s = std(x) + eps over all elements, computed as the
    twins do (two passes): the pieces of :func:`_whitening_error`."""
    n = x.size
    mean = float(x.mean())
    divisor = n - 1 if unbiased and n > 1 else n
    dev = np.abs(x - mean)
    var = float((dev ** 2).sum()) / divisor
    S = float(np.max(np.abs(x)))
    d_dev = _mean_error(S, n, u) + 2 * u * S + 2 * u * (S + abs(mean))
    d_var = (2 * float(dev.max()) * d_dev * n + (n + 3) * u * float((dev ** 2).sum())) / divisor
    std = math.sqrt(var)
    s = std + eps
    return s, (d_var / (2 * std) if std > 0 else math.sqrt(d_var)) + 2 * u * s


def _bound_batch_group(r, method, eps, unbiased, u):
    """The two batch methods: y = n/s with n = r − group mean (dr_grpo's error e_n per
    element) and s = std + eps over the whole batch, of r (batch_std) or of n (reinforce_pp,
    whose n is also centred on the batch mean first). Perturbing the N inputs of a std by
    ≤ E moves it by ≤ 2E·sqrt(N/divisor); |ŷ − y| ≤ (e_num + |y|·e_s)/(s − e_s) + 2u|y|."""
    if r.size == 0:
        return np.zeros(r.shape)
    G, N = r.shape[-1], r.size
    S = np.max(np.abs(r), axis=-1, keepdims=True)
    # r − group mean: exactly 0 for a group of one (its mean is itself)
    e_n = 2 * u * (G + 5) * (np.abs(r) + S) if G > 1 else np.zeros(r.shape)
    n = r - r.mean(-1, keepdims=True)
    divisor = N - 1 if unbiased and N > 1 else N
    if method == "batch_std":
        s, e_s = _std_error(r, unbiased, eps, u)
        e_num = e_n
    else:
        E = float(e_n.max())
        s, e_s = _std_error(n, unbiased, eps, u)
        e_s += 2 * E * math.sqrt(N / divisor)
        e_num = 2 * E + _mean_error(float(np.abs(n).max()), N, u) + 2 * u * np.abs(n)
    if e_s >= s:
        return np.full(r.shape, np.inf)  # too ill-conditioned to promise anything
    y = np.abs(n - (n.mean() if method == "reinforce_pp" else 0.0)) / s
    return 2 * ((e_num + y * e_s) / (s - e_s) + 2 * u * y)


def bound_policy_loss(case, f, exact, u):
    # per token: the ratio (one rounding of the difference, exp 4u: 2u·r·(|d| + 4)) times |A|,
    # the clip (bound_clip's 4u·|A|·(r + 1 + ε + c)); then the aggregation, a positive-weighted
    # sum: ≤ (B·T + 4) roundings on the aggregate of |l|.
    keep = case.flags["mask"]
    lp, old, A = f
    A = np.broadcast_to(A[..., None], lp.shape) if A.shape != lp.shape else A
    d = np.where(keep, lp - old, 0.0)
    r = np.exp(d)
    kw = case.kwargs
    eps = max(float(kw["clip_low"]), float(kw.get("clip_high") or kw["clip_low"]))
    c = float(kw.get("dual_clip") or 0)
    per_token = np.where(keep, np.abs(A) * (2 * u * r * (np.abs(d) + 4)
                                            + 4 * u * (r + 1 + eps + c)), 0.0)
    size = np.abs(A) * (r + 1 + eps + c)
    agg = {k: v for k, v in kw.items() if k in ("mode", "normalizer")}
    total = float(ob.aggregate_loss(per_token, keep, **agg))
    scale = float(ob.aggregate_loss(np.where(keep, size, 0.0), keep, **agg))
    return np.asarray(2 * (total + 2 * u * (lp.size + 4) * scale))


# --- SPEC §6: off-policy returns -------------------------------------------------------------

def _numpy_dtype(u: float) -> Any:
    """The NumPy dtype of a unit roundoff (float32 for half precision, computed in it)."""
    return np.float64 if u == _UNIT["float64"] else np.float32


def _dtype_of(u: float) -> str:
    """The computing dtype of a unit roundoff (half precision computes in float32)."""
    return next(name for name, unit in _UNIT.items() if unit == u)


def _vtrace_float_kwargs(case) -> dict:
    kw = {k: (None if v is None else float(v)) for k, v in case.kwargs.items()}
    kw.update({k: v for k, v in case.flags.items()})
    return kw


def vtrace_roundings(T: int) -> int:
    """Roundings on the path of one term of V-trace's sum: each factor γ·λ·min(c̄, ρ_j) has
    γ and λ rounded, their product, exp (4 ulps), and the products (≤ 8); δ_s has its three
    operations, exp and the product with ρ̄ (≤ 8); at most T additions: ≤ 9T + 12."""
    return 9 * T + 12


def bound_vtrace(case, f, exact, u):
    """[..., T, 2]: the bound of vs and of the policy-gradient advantage.

    vs_t = V_t + A_t errs by ≤ k·u·S_t + u·|vs_t|, with S_t the V-trace sum run on absolute
    values (the oracle on |r|, −|V|, |V'|: its A part) and k = :func:`vtrace_roundings`. The
    policy-gradient advantage P_t·(r_t + γ·v'_t − V_t), v'_t = V'_t + A_{t+1}, errs by
    ≤ P_t·(γ·k·u·S⁺ + 8u·(|r_t| + γ|V'_t| + γ·S⁺ + |V_t|)), S⁺ the largest S of the row
    (A_{t+1} is the next PRESENT step's), P_t = min(pg_rho_clip, ρ_t)."""
    from . import off_policy as op

    r, V, nv, lr = (np.asarray(x, dtype=np.float64) for x in f[:4])
    kw = _vtrace_float_kwargs(case)
    T = r.shape[-1]
    ratio = {"rhos": lr} if "rhos" in case.arrays else {"log_rhos": lr}
    vs_abs, _ = op.vtrace(np.abs(r), -np.abs(V), np.abs(nv), **ratio, **kw)
    keep = case.flags.get("mask", np.ones(r.shape, dtype=bool))
    S = np.where(keep, np.asarray(vs_abs, dtype=np.float64) + np.abs(V), 0.0)
    k = vtrace_roundings(T)
    top = float(np.max(S)) if S.size else 0.0
    floor = k * smallest_normal(_dtype_of(u)) * max(top, 1.0)
    vs = np.asarray(exact, dtype=np.float64)[..., 0]
    b_vs = k * u * S + u * np.abs(vs) + floor
    rho = lr if "rhos" in case.arrays else np.exp(lr)
    clip = kw.get("pg_rho_clip")
    P = rho if clip is None else np.minimum(clip, rho)
    g = float(kw["gamma"])
    S_row = np.max(S, axis=-1, keepdims=True) if S.size else S
    b_pg = P * (g * k * u * S_row + 8 * u * (np.abs(r) + g * np.abs(nv) + g * S_row
                                              + np.abs(V))) + floor
    return np.stack([np.where(keep, b_vs, 0.0), np.where(keep, b_pg, 0.0)], axis=-1)


def bound_q_targets(case, f, exact, u):
    """The Q target is the recursion y_t = x_t + a_t·y_{t+1} with a_t = γ·c_{t+1} and
    x_t = r_t + γ·nt·E_t − a_t·Q_{t+1}: ≤ 6 roundings in x, 3 per factor, T additions,
    within the (5T + 10)·u·S of :func:`recursion_bound`; S is the oracle on |r|, −|Q|, |E|,
    |c| (every term taken positive)."""
    from . import off_policy as op

    r, Q, E, c = (np.asarray(x, dtype=np.float64) for x in f[:4])
    kw = _vtrace_float_kwargs(case)
    S = np.asarray(op.off_policy_q_targets(np.abs(r), -np.abs(Q), np.abs(E), np.abs(c), **kw),
                   dtype=np.float64)
    return recursion_bound(S, r.shape[-1], _dtype_of(u))


def bound_traces(case, f, exact, u):
    """λ·min(1, exp(x)): exp 4 ulps, λ rounded to the dtype, one product: ≤ 8u·(|c| + λ)."""
    return 8 * u * (np.abs(np.asarray(exact, dtype=np.float64)) + float(case.kwargs["lam"]))


# --- SPEC §7 ---------------------------------------------------------------------------------

def bound_iw_kl(case, f, exact, u):
    """r·k with r = exp(logp − old_logp) (bound_ratio) and k the estimator
    (bound_kl_estimate): |r̂k̂ − rk| ≤ |r|·b_k + |k|·b_r + b_r·b_k + u·|r·k|."""
    lp, ref, old = (np.asarray(x, dtype=np.float64) for x in f)
    r = np.exp(lp - old)
    b_r = bound_ratio(case, [lp, old], r, u)
    x = ref - lp
    k = {"k1": -x, "k2": x * x / 2, "k3": np.expm1(x) - x}[case.kwargs["kind"]]
    b_k = bound_kl_estimate(case, [lp, ref], k, u)
    return np.abs(r) * b_k + np.abs(k) * b_r + b_r * b_k + 2 * u * np.abs(r * k)


def bound_shaped_rewards(case, f, exact, u):
    """r − β·k: β rounded, one product, one subtraction, and the estimator's own error."""
    rew, lp, ref = (np.asarray(x, dtype=np.float64) for x in f)
    beta = float(case.kwargs["beta"])
    x = ref - lp
    k = {"k1": -x, "k2": x * x / 2, "k3": np.expm1(x) - x}[case.kwargs["kind"]]
    b = 2 * beta * bound_kl_estimate(case, [lp, ref], k, u) + 4 * u * (np.abs(rew)
                                                                       + beta * np.abs(k))
    keep = case.flags.get("mask", np.ones(rew.shape, dtype=bool))
    return np.where(keep, b, 0.0)


def bound_overlong(case, f, exact, u):
    """((L_max − L_cache) − L)/L_cache: integer-valued operands, one division: ≤ u·|y|;
    allowed 4u·(|y| + 1)."""
    return 4 * u * (np.abs(np.asarray(exact, dtype=np.float64)) + 1)


def bound_cispo(case, f, exact, u):
    """clip(exp(logp − old))·A·logp: the weight errs like a ratio (2u·w·(|d| + 4), the clip
    bounds rounded to the dtype adding u·(1 + ε)), then two products."""
    lp, old, A = (np.asarray(x, dtype=np.float64) for x in f)
    d = lp - old
    lo, hi = float(case.kwargs["clip_low"]), float(case.kwargs["clip_high"])
    w = np.clip(np.exp(d), 1 - lo, 1 + hi)
    keep = case.flags["mask"]
    b = 2 * u * np.abs(A * lp) * (w * (np.abs(d) + 4) + 3 * (1 + hi))
    return np.where(keep, b, 0.0)


def _masked_mean_log_ratio(lp, other, keep):
    """Per row [..., 1]: the mean masked log-ratio μ, its count n, and Σ|d|/n (for errors)."""
    d = np.where(keep, lp - other, 0.0)
    n = np.maximum(keep.sum(-1, keepdims=True), 1)
    return d.sum(-1, keepdims=True) / n, n, np.abs(d).sum(-1, keepdims=True) / n, d


def bound_rollout(case, f, exact, u):
    """w = exp(x): x = d_t (one rounding) or Σ_t m·d_t (n roundings of the differences, n of
    the sum: ≤ 2(n + 1)u·Σ|d|); exp adds 4 ulps: |ŵ − w| ≤ 2w·(e_x + 4u). min(w, high) is
    1-Lipschitz. MIS (mode="mask") is discontinuous at low and high: within that error of
    either (plus the edge's own rounding to the dtype), 0 and w are both right answers, so
    the bound there is |w| + the error; a weight computed exactly (w = exp(0) = 1) on an
    exactly representable edge is decided: kept, since low ≤ w ≤ high is inclusive."""
    lp, ro = (np.asarray(x, dtype=np.float64) for x in f)
    keep = case.flags["mask"]
    kw = case.kwargs
    d = np.where(keep, lp - ro, 0.0)
    if kw.get("level", "token") == "token":
        x, e_x = d, u * np.abs(d)
    else:
        n = keep.sum(-1, keepdims=True)
        x = np.broadcast_to(d.sum(-1, keepdims=True), d.shape)
        e_x = np.broadcast_to(2 * (n + 1) * u * np.abs(d).sum(-1, keepdims=True), d.shape)
    with np.errstate(over="ignore"):
        w = np.exp(x)
        # exp of an exact 0 is exactly 1 (IEEE 754; every libm and Torch kernel): no ulps
        b = 2 * w * (e_x + np.where((x == 0) & (e_x == 0), 0.0, 4 * u))
    high = float(kw.get("high", 2.0))
    if kw.get("mode", "truncate") == "truncate":  # beyond high + the error: exactly high
        with np.errstate(invalid="ignore"):
            b = np.where(np.isinf(w) | (w - b > high), 2 * u * high, b)
    else:
        edges = [float(kw.get("low") or 0.0), high]
        near = np.zeros(w.shape, dtype=bool)
        for e in edges:  # the edge as the function compares it: rounded to its dtype
            tol = 2 * b + abs(e - float(np.float64(e).astype(_numpy_dtype(u))))
            near |= (np.abs(w - e) <= tol) & (tol > 0)  # w and the edge exact: decided
        with np.errstate(invalid="ignore"):
            outside = np.isinf(w) | (w - b > high) | (w + b < edges[0])  # exactly 0
        b = np.where(near, np.abs(w) + b, np.where(outside, 0.0, b))
    return np.where(keep, b, 0.0)


def bound_gspo(case, f, exact, u):
    """min(s·A, clip(s)·A), s = exp(μ), μ the mean of n masked log-ratios: μ errs by
    ≤ 2(n + 2)u·Σ|d|/n + u|μ|; s by ≤ 2s(e_μ + 4u); the clip bounds rounded to the dtype
    add u·(1 + ε); min is 1-Lipschitz in s; one product: |A|·(e_s + 3u(1 + ε)) + 2u|s·A|."""
    lp, old, A = (np.asarray(x, dtype=np.float64) for x in f)
    keep = case.flags["mask"]
    A = np.broadcast_to(A[..., None], lp.shape) if A.shape != lp.shape else A
    mu, n, mean_abs, _ = _masked_mean_log_ratio(lp, old, keep)
    e_mu = 2 * (n + 2) * u * mean_abs + u * np.abs(mu)
    with np.errstate(over="ignore"):
        s = np.exp(mu)
        e_s = 2 * s * (e_mu + 4 * u)
    kw = case.kwargs
    hi = float(kw.get("clip_high") if kw.get("clip_high") is not None else kw["clip_low"])
    with np.errstate(invalid="ignore", over="ignore"):
        b = 2 * np.abs(A) * (e_s + 3 * u * (1 + hi)) + 2 * u * np.abs(s * A)
    return np.where(keep, np.nan_to_num(b, nan=np.inf), 0.0)


def bound_split_aggregate(case, f, exact, u):
    """Each micro-batch's loss is a positive-weighted sum of its rows' terms: no more
    roundings than the whole batch's (:func:`bound_aggregate`), on the same aggregate of
    |l|, plus the one division of each row term."""
    kw = {k: v for k, v in case.kwargs.items() if k != "splits"}
    mode = kw.pop("mode")
    S = float(ob.aggregate_loss(np.abs(f[0]), case.flags["mask"], mode, **kw))
    return 2 * u * (f[0].size + 6) * S * np.ones_like(np.asarray(exact, dtype=np.float64))


def bound_remax(case, f, exact, u):
    """r − r_greedy: one rounding of the difference."""
    r, g = (np.abs(np.asarray(x, dtype=np.float64)) for x in f)
    return 2 * u * (r + g)
