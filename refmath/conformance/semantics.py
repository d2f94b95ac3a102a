"""The libraries' semantics: the row a layout's function is checked against, derived from
refmath's own row by composing exact oracles with explicit options.

A faithful port of a library's function must PASS in that library's layout, and a bug in it
must still fail with its cause named: so where a library computes something other than SPEC's
formula by design (a clamp, whitening after GAE, a compute precision), the layout names a
:class:`Semantics` whose ``derive`` turns the kind's row into the row actually checked — its
oracle a literal composition of refmath's oracles, its bound the composed bound — and every
named check then runs unchanged on the derived row. Each derivation cites the library file and
version it mirrors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Callable

import numpy as np

__all__ = ["Semantics", "clamped", "openrlhf_approx_kl", "openrlhf_policy_loss",
           "openrlhf_reinforce_baseline", "response_lengths",
           "rlax_vtrace", "trl_grpo_loss", "trl_gspo_loss", "verl_gae", "verl_grpo_outcome", "verl_policy_loss"]


@dataclass(frozen=True)
class Semantics:
    """What a library computes for a kind, as a derivation of refmath's row."""

    text: str  # the formula, and the library file and version it mirrors
    derive: Callable[[Any], Any]  # ArrayFunction → ArrayFunction
    # checks of the kind whose assertion the library's formula does not share, with why
    not_applicable: dict[str, str] = field(default_factory=dict)
    computes_in: str | None = None  # the library's declared compute precision
    # an input in SPEC's options → the same input as the library sees it (its fixed choices
    # expressed in SPEC's options, exactly), applied before every call and every oracle
    adjust: Callable[[Any], Any] | None = None
    # a per-step kind's library step after SPEC's function: (exact, bound, mask, u) →
    # (exact, bound) for the value checks (refmath.checks.steps)
    post: Callable[..., tuple[Any, Any]] | None = None


def clamped(oracle: Callable[..., Any], lo: Fraction, hi: Fraction) -> Callable[..., Any]:
    """``min(max(oracle(...), lo), hi)`` elementwise, exactly."""

    @functools.wraps(oracle)
    def clamp(*args: Any, **kwargs: Any) -> np.ndarray:
        out = np.asarray(oracle(*args, **kwargs), dtype=object)
        return np.vectorize(lambda v: min(max(v, lo), hi), otypes=[object])(out)

    return clamp


def _openrlhf_kl(row: Any) -> Any:
    """OpenRLHF 0.11.0 ``compute_approx_kl`` (openrlhf/models/utils.py, OpenRLHF/OpenRLHF at
    3c3be62)::

        log_ratio = log_probs.float() - log_probs_base.float()
        k1: log_ratio;  k2: log_ratio**2 / 2.0;  k3: (-log_ratio).exp() - 1 + log_ratio
        return log_ratio.clamp(min=-10, max=10)

    With SPEC's ``log r = ref_logp − logp`` these are SPEC's k1, k2, k3 exactly, then
    clamped: the derived oracle is ``clamp(refmath.kl_estimate(logp, ref_logp, kind), −10,
    10)``, computed in float32 (declared: float64 inputs get the float32 bound). A clamp is
    1-Lipschitz and exact in floating point, so the unclamped bound holds unchanged."""
    import torch

    from ..checks.arrays import near
    from ..checks.compare import exact_floats

    oracle = clamped(row.oracle, Fraction(-10), Fraction(10))

    def kink(case: Any) -> bool:  # finite differences across the clamp mean nothing
        k = exact_floats(row.call(row.oracle, case.exact_values(torch.float64)))
        return bool(row.kink and row.kink(case)) or near(k, [-10.0, 10.0], 0.05)

    return replace(row, oracle=oracle, kink=kink)


openrlhf_approx_kl = Semantics(
    "clamp(k_kind(log r), −10, 10) computed in float32 — OpenRLHF compute_approx_kl "
    "(openrlhf/models/utils.py)", _openrlhf_kl,
    not_applicable={"gradient": "the ±10 clamp: the gradient is 0 beyond it (the gradcheck "
                                "check still compares autograd with finite differences)",
                    "extremes": "the ±10 clamp: no estimate is ever infinite"},
    computes_in="float32")


def _verl_normalizer(case: Any) -> Any:
    """verl ``agg_loss`` "seq-mean-token-sum-norm" with its default ``loss_scale_factor``:
    ``Σ_b Σ_t m·l / T`` (T = ``loss_mask.shape[-1]``), no mean over sequences — SPEC's mode
    with ``normalizer = T / B'`` (B' the rows with a response token), exactly."""
    if case.kwargs.get("mode") != "seq-mean-token-sum-norm":
        return case
    mask = np.asarray(case.flags["mask"], dtype=bool)
    rows = int(mask.any(axis=-1).sum())
    kwargs = dict(case.kwargs, normalizer=Fraction(mask.shape[-1], rows))
    return type(case)(case.arrays, kwargs, case.flags)


def _row_mean_magnitude(case: Any, f: Any) -> float:
    """The mean over rows with a response token of each row's token mean of an upper bound
    of |loss_t| = |A_t|·(r_t + 1 + ε + c): what a relative change of each row term (the
    1e-8 added to its count) can move the loss by, signs and cancellation aside."""
    keep = np.asarray(case.flags["mask"], dtype=bool)
    lp, old, A = f
    A = np.broadcast_to(A[..., None], lp.shape) if A.shape != lp.shape else A
    kw = case.kwargs
    eps = max(float(kw["clip_low"]), float(kw.get("clip_high") or kw["clip_low"]))
    size = np.abs(A) * (np.exp(np.where(keep, lp - old, 0.0)) + 1 + eps
                        + float(kw.get("dual_clip") or 0))
    counts = keep.sum(-1)
    rows = counts > 0
    per_row = np.where(keep, size, 0.0).sum(-1)[rows] / counts[rows]
    return float(per_row.mean()) if per_row.size else 0.0


def _verl_loss(row: Any) -> Any:
    """verl ``compute_policy_loss`` with ``agg_loss`` (verl/trainer/ppo/core_algos.py,
    volcengine/verl at b178a3c, 0.8.0.dev): the per-token loss is SPEC's (clip-higher
    ``cliprange_low``/``cliprange_high``, the dual clip ``clip_ratio_c`` for A < 0; the
    log-ratio clamped to ±20 before ``exp``, which the checks' inputs, |logp − old_logp| ≤ 4,
    never reach); the aggregation is SPEC's, except:

    * "seq-mean-token-mean" divides each row's sum by ``count + 1e-8``: each row term moves
      by at most 1e-8 of itself (|Σ/n − Σ/(n + ε)| ≤ ε·|Σ/n|), allowed on top of the derived
      bound as 1e-8 × the mean of the rows' magnitudes (:func:`_row_mean_magnitude`);
    * "seq-mean-token-sum-norm" is ``Σ_b Σ_t m·l / T`` (see :func:`_verl_normalizer`)."""
    bound = row.bound

    def verl_bound(case: Any, f: Any, exact: Any, u: float) -> np.ndarray:
        b = bound(case, f, exact, u)
        if case.kwargs.get("mode") == "seq-mean-token-mean":
            b = b + 1e-8 * _row_mean_magnitude(case, f)
        return b

    return replace(row, bound=verl_bound)


verl_policy_loss = Semantics(
    "SPEC's policy loss with verl's dual clip and agg_loss: seq-mean-token-mean ÷ (count + "
    "1e-8), seq-mean-token-sum-norm = Σ_b Σ_t m·l / T — verl compute_policy_loss "
    "(verl/trainer/ppo/core_algos.py)", _verl_loss, adjust=_verl_normalizer)


def _lone_sample_kept(oracle: Callable[..., Any]) -> Callable[..., Any]:
    """SPEC's group advantages, except that a group of ONE keeps its score: ``r/(1 + eps)``
    for GRPO, ``r`` for Dr. GRPO (verl's mean 0, std 1 for a lone sample)."""

    @functools.wraps(oracle)
    def group_advantages(rewards: Any, *, method: str, eps: Any = 1e-6,
                         unbiased: bool = True) -> np.ndarray:
        r = np.asarray(rewards, dtype=object)
        if r.shape[-1] != 1:
            return oracle(rewards, method=method, eps=eps, unbiased=unbiased)
        if method == "grpo":
            return np.vectorize(lambda x: x / (1 + eps), otypes=[object])(r)
        return r.copy()

    return group_advantages


def _verl_grpo(row: Any) -> Any:
    """verl ``compute_grpo_outcome_advantage`` (verl/trainer/ppo/core_algos.py, volcengine/verl
    at b178a3c): scores grouped by ``index``; a group of one gets mean 0 and std 1, so its
    advantage is ``score/(1 + epsilon)`` (``norm_adv_by_std_in_grpo``, GRPO) or ``score``
    (Dr. GRPO); larger groups ``(s − mean)/(torch.std + epsilon)`` or ``s − mean``: SPEC's
    ``grpo``/``dr_grpo`` with the unbiased std. The lone sample's bound: a sum and a quotient,
    two roundings, and the rounding of 1 + eps: ≤ 4u·|exact|."""
    bound = row.bound

    def verl_bound(case: Any, f: Any, exact: Any, u: float) -> np.ndarray:
        if np.shape(case.arrays["rewards"])[-1] == 1:
            return 4 * u * np.abs(np.asarray(exact, dtype=np.float64))
        return bound(case, f, exact, u)

    return replace(row, oracle=_lone_sample_kept(row.oracle), bound=verl_bound)


verl_grpo_outcome = Semantics(
    "SPEC's grpo / dr_grpo grouped by index, a lone sample keeping mean 0 and std 1 — verl "
    "compute_grpo_outcome_advantage (verl/trainer/ppo/core_algos.py)", _verl_grpo)


def _rows(case: Any) -> tuple[int, int]:
    """(B, B'): the rows, and those with a response token."""
    mask = np.asarray(case.flags["mask"], dtype=bool)
    return mask.shape[0], int(mask.any(axis=-1).sum())


def _trl_normalizer(case: Any) -> Any:
    """TRL ``dr_grpo``: ``Σ_b Σ_t m·l / (B·max_completion_length)``, with the layout's
    ``max_completion_length = T``: SPEC's seq-mean-token-sum-norm with ``normalizer =
    T·B/B'``, exactly."""
    if case.kwargs.get("mode") != "seq-mean-token-sum-norm":
        return case
    B, kept = _rows(case)
    T = np.asarray(case.flags["mask"]).shape[-1]
    return type(case)(case.arrays, dict(case.kwargs, normalizer=Fraction(T * B, kept)),
                      case.flags)


def _every_row_counted(oracle: Callable[..., Any]) -> Callable[..., Any]:
    """SPEC's loss, except that seq-mean-token-mean averages over ALL B rows (a row with no
    completion token, e.g. emptied by mask_truncated_completions, counts as 0): SPEC's value
    × B'/B."""

    @functools.wraps(oracle)
    def policy_loss(logp: Any, old_logp: Any, advantages: Any, mask: Any, **kw: Any) -> Any:
        out = oracle(logp, old_logp, advantages, mask, **kw)
        if kw.get("mode") != "seq-mean-token-mean":
            return out
        keep = np.asarray(mask, dtype=bool)
        return out * Fraction(int(keep.any(axis=-1).sum()), keep.shape[0])

    return policy_loss


def _trl_loss(row: Any) -> Any:
    """TRL ``GRPOTrainer._compute_loss`` (trl/trainer/grpo_trainer.py, huggingface/trl at
    f2cd577, 1.10.0.dev), ``importance_sampling_level="token"``, no KL term: per token
    ``−min(r·A, clip(r, 1 − ε_low, 1 + ε_high)·A)`` with one advantage per completion, then by
    ``loss_type``: ``grpo`` the mean over all B rows of each row's sum ÷ max(count, 1);
    ``bnpo`` Σ ÷ max(total, 1) (SPEC's token-mean); ``dr_grpo`` Σ ÷ (B·max_completion_length).
    The bound of grpo's B'/B-scaled mean is SPEC's (B'/B ≤ 1)."""
    return replace(row, oracle=_every_row_counted(row.oracle))


trl_grpo_loss = Semantics(
    "SPEC's policy loss by loss_type: grpo = the mean over all B rows (empty rows count 0), "
    "bnpo = token-mean, dr_grpo = Σ / (B·max_completion_length) — TRL GRPOTrainer._compute_loss "
    "(trl/trainer/grpo_trainer.py)", _trl_loss, adjust=_trl_normalizer,
    not_applicable={"gradient": "grpo's mean over all B rows gives each token the weight "
                                "1/(B·count), not SPEC's 1/(B'·count) (gradcheck still checks "
                                "autograd against finite differences)"})


openrlhf_policy_loss = Semantics(
    "SPEC's policy loss with the ±20 log-ratio clamp (not reached by the checks' inputs); "
    "token_level_loss=False ÷ (count + 1e-8) — OpenRLHF PolicyLoss (openrlhf/models/loss.py, "
    "OpenRLHF/OpenRLHF at 3c3be62, 0.11.0) with aggregate_loss", _verl_loss)


def _whitened(exact: Any, bound: Any, keep: np.ndarray, u: float) -> tuple[Any, np.ndarray]:
    """verl ``masked_whiten`` after the GAE: the exact answer is ``refmath.whiten(A, mask)``
    (unbiased variance, eps = 1e-8, over every response token of the batch); its bound is
    whitening's own rounding (:func:`refmath.bounds.bound_whiten`, at the GAE as computed)
    plus the GAE's error carried through the whitening: to first order, a perturbation δ
    (‖δ‖∞ ≤ d) moves w_i = (x_i − μ)/s by at most (2d + |w_i|·|Δs|)/s with |Δs| ≤ 2√2·d
    (the unbiased std is √(n/(n−1))-Lipschitz), taken with a factor 2 for the second order:
    4d·(1 + 2|w_i|)/s."""
    from .. import bounds as B
    from ..checks.cases import Case
    from ..checks.compare import exact_floats
    from ..objectives import whiten

    x = exact_floats(exact)
    out = whiten(np.asarray(exact, dtype=object), keep, eps=Fraction(1e-8))
    w = exact_floats(out)
    n = int(keep.sum())
    var = float(((x[keep] - x[keep].mean()) ** 2).sum()) / max(n - 1, 1)
    s = float(np.sqrt(var + 1e-8))
    d = float(np.max(np.where(keep, np.asarray(bound, dtype=np.float64), 0.0)))
    case = Case({"x": x}, {"shift_mean": True, "unbiased": True, "eps": 1e-8},
                {"mask": keep})
    own = B.bound_whiten(case, [x], w, u)
    return out, np.where(keep, own + 4 * d * (1 + 2 * np.abs(w)) / s, 0.0)


verl_gae = Semantics(
    "masked_whiten(SPEC's GAE, response_mask) — verl compute_gae_advantage_return "
    "(verl/trainer/ppo/core_algos.py, volcengine/verl at b178a3c): the advantages are "
    "whitened over every response token of the batch (unbiased variance, + 1e-8)",
    lambda row: row, post=_whitened,
    not_applicable={"jacobian": "whitening is not linear",
                    "batch_consistency": "whitening is over the whole batch: a row's advantages "
                                         "depend on the other rows by design",
                    "long_float32": "the T = 10^5 bound is derived for the recursion alone, "
                                    "not for the whitening after it"})


def _rlax_pg_row(rewards, values, next_values, gamma, ratio, vs, terminated, truncated, *,
                 kind, lam, pg_rho_clip):
    """rlax's policy-gradient advantage of one row, given SPEC's ``vs``:
    ``min(c̄_pg, ρ_t)·(r_t + γ_t·(λ·vs_{t+1} + (1 − λ)·V_{t+1}) − V_t)`` inside a segment,
    ``min(c̄_pg, ρ_t)·(r_t + γ_t·nt_t·V'_t − V_t)`` at its end."""
    from ..off_policy import _clipped, _ratio
    from ..returns import _bootstrap, segment_end

    rho = _ratio(ratio, kind)
    pg = []
    for t in range(len(rewards)):
        if segment_end(t, terminated, truncated):
            q = rewards[t] + _bootstrap(t, gamma, next_values, terminated)
        else:
            q = rewards[t] + gamma[t] * (lam * vs[t + 1] + (1 - lam) * values[t + 1])
        pg.append(_clipped(pg_rho_clip, rho[t]) * (q - values[t]))
    return pg


def _rlax_vtrace(row: Any) -> Any:
    """rlax ``vtrace_td_error_and_advantage`` (rlax/_src/vtrace.py, google-deepmind/rlax at
    0c61fbd)::

        c_tm1 = jnp.minimum(1.0, rho_tm1) * lambda_
        clipped_rhos_tm1 = jnp.minimum(clip_rho_threshold, rho_tm1)
        td_errors = clipped_rhos_tm1 * (r_t + discount_t * v_t - v_tm1)
        err = td_errors[i] + discount_t[i] * c_tm1[i] * err      # backwards
        targets_tm1 = errors + v_tm1
        q_bootstrap = concat([lambda_[:-1] * targets_tm1[1:]
                              + (1 - lambda_[:-1]) * v_tm1[1:], v_t[-1:]])
        q_estimate = r_t + discount_t * q_bootstrap
        pg_advantages = jnp.minimum(clip_pg_rho_threshold, rho_tm1) * (q_estimate - v_tm1)

    ``targets_tm1`` is SPEC's ``vs`` with c̄ = 1 (the layout fixes it) on consistent values,
    no truncation, no mask (declared). The policy-gradient advantage is rlax's own: it
    bootstraps from ``λ·vs_{t+1} + (1 − λ)·V_{t+1}`` where IMPALA (eq. 1, §4.2) and SPEC take
    ``vs_{t+1}``; the two agree at λ = 1. The derived oracle is refmath's ``vtrace`` for vs
    and :func:`_rlax_pg_row` on that vs for the advantage. Bound: refmath's V-trace bound,
    plus ``3u·(|vs| + |V|)`` for vs read back as ``(errors + v_tm1) − v_tm1 + v_tm1`` and
    ``P·γ·6u·(|V'| + S⁺)`` for the mixture's five roundings (two products, 1 − λ, the sum,
    the targets' sum) on terms at most ``|V'_t| + S⁺`` (``S⁺`` the row's largest
    ``|vs| + |V|``; ``V'_t = V_{t+1}`` on consistent values)."""
    from .. import bounds as B
    from .._arrays import map_rows, prepare
    from ..off_policy import _clip

    def oracle(rewards, values, next_values, log_rhos=None, *, gamma, lam=1, rho_clip=1,
               c_clip=1, pg_rho_clip=1, terminated=None, truncated=None, mask=None,
               rhos=None):
        vs, _ = row.oracle(rewards, values, next_values, log_rhos, gamma=gamma, lam=lam,
                           rho_clip=rho_clip, c_clip=c_clip, pg_rho_clip=pg_rho_clip,
                           terminated=terminated, truncated=truncated, mask=mask, rhos=rhos)
        kind = "log_rhos" if rhos is None else "rhos"
        p = prepare({"rewards": rewards, "values": values, "next_values": next_values,
                     kind: log_rhos if rhos is None else rhos, "vs": vs}, gamma=gamma,
                    scalars={"lam": lam},
                    flags={"terminated": terminated, "truncated": truncated, "mask": mask})
        clip = _clip("pg_rho_clip", pg_rho_clip, p.mode)

        def pg_row(**kw: Any) -> list:
            ratio = kw.pop(kind)
            return _rlax_pg_row(ratio=ratio, **kw, kind=kind, lam=p.scalars["lam"],
                                pg_rho_clip=clip)

        pg = map_rows(p, pg_row, ["rewards", "values", "next_values", "gamma", kind, "vs"])
        return vs, pg

    def bound(case, f, exact, u):
        base = np.asarray(B.bound_vtrace(case, f, exact, u), dtype=np.float64)
        r, V, nv, lr = (np.asarray(x, dtype=np.float64) for x in f[:4])
        vs = np.asarray(exact, dtype=np.float64)[..., 0]
        rho = lr if "rhos" in case.arrays else np.exp(lr)
        clip = case.kwargs.get("pg_rho_clip")
        P = rho if clip is None else np.minimum(float(clip), rho)
        s_row = np.max(np.abs(vs) + np.abs(V), axis=-1, keepdims=True) if vs.size else 0.0
        g = float(case.kwargs["gamma"])
        extra_vs = 3 * u * (np.abs(vs) + np.abs(V))
        extra_pg = P * g * 6 * u * (np.abs(nv) + s_row)
        return base + np.stack([extra_vs, extra_pg], axis=-1)

    return replace(row, oracle=oracle, bound=bound)


rlax_vtrace = Semantics(
    "rlax vtrace_td_error_and_advantage (rlax/_src/vtrace.py, google-deepmind/rlax at "
    "0c61fbd): vs = SPEC's V-trace target with c̄ = 1; the policy-gradient advantage "
    "min(c̄_pg, ρ_t)·(r_t + γ_t·(λ·vs_{t+1} + (1 − λ)·V_{t+1}) − V_t) inside a segment "
    "(IMPALA's and SPEC's use vs_{t+1}: equal at λ = 1)", _rlax_vtrace)


def _trl_sequence_loss(row: Any) -> Any:
    """TRL ``GRPOTrainer._compute_loss`` (trl/trainer/grpo_trainer.py, huggingface/trl at
    f2cd577) with ``importance_sampling_level="sequence"`` and ``loss_type="grpo"``::

        log_importance_weights = (log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
        coef_1 = exp(log_importance_weights).unsqueeze(-1)           # [B, 1]
        per_token_loss = -min(coef_1 * A, clamp(coef_1, 1 - ε_low, 1 + ε_high) * A)
        loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()

    i.e. ``−(1/B)·Σ_b g_b`` with ``g_b`` GSPO's sequence surrogate (refmath's
    ``gspo_surrogate``, written on each of row b's response tokens) and 0 for a row with no
    response token (the mean is over ALL B rows). Bound: GSPO's per-token bound at the row's
    tokens, plus ``(n_b + 2)·u·|g_b|`` for the row's masked sum of n_b copies and its division,
    plus ``B·u·max|g_b|`` for the mean."""

    def rows(g: Any, keep: np.ndarray) -> list:
        return [g[b][keep[b]][0] if keep[b].any() else 0 for b in range(keep.shape[0])]

    def oracle(logp, old_logp, advantages, mask, *, clip_low, clip_high=None):
        g = np.asarray(row.oracle(logp, old_logp, advantages, mask, clip_low=clip_low,
                                  clip_high=clip_high), dtype=object)
        keep = np.asarray(mask, dtype=bool)
        return np.asarray(-sum(rows(g, keep)) / keep.shape[0], dtype=object)

    def bound(case, f, exact, u):
        keep = np.asarray(case.flags["mask"], dtype=bool)
        per_token = np.asarray(row.bound(case, f, None, u), dtype=np.float64)
        g = np.asarray(row.oracle(*f, keep, **case.kwargs), dtype=np.float64)
        n = keep.sum(axis=-1)
        own = np.where(keep, per_token, 0.0).max(axis=-1)
        mag = np.abs(np.asarray(rows(g, keep), dtype=np.float64))
        B = keep.shape[0]
        total = float(np.sum(own + (n + 2) * u * mag)) / B + B * u * float(mag.max(initial=0))
        return np.asarray(total)

    return replace(row, oracle=oracle, bound=bound, reduces_batch=True)


trl_gspo_loss = Semantics(
    "−(mean over all B rows of GSPO's sequence surrogate, 0 for an empty row) — TRL "
    "GRPOTrainer._compute_loss with importance_sampling_level='sequence', loss_type='grpo' "
    "(trl/trainer/grpo_trainer.py)", _trl_sequence_loss,
    not_applicable={"batch_consistency": "the loss is one number, a mean over the batch"})


def response_lengths(n: int) -> list[int]:
    """The response lengths the openrlhf layout gives n completions: ``1 + i mod 3`` tokens,
    so that a token-level statistic weighs completions unequally (checked, not assumed)."""
    return [1 + i % 3 for i in range(n)]


_RSTD_FLOOR = Fraction(1, 10**8)  # OpenRLHF: var.clamp(min=1e-8).rsqrt()


def _openrlhf_rpp_oracle(rewards: Any, *, method: str = "reinforce_pp", eps: Any = 1e-6,
                         unbiased: bool = True) -> np.ndarray:
    """d = refmath's ``group_advantages(rewards, method="dr_grpo")`` (r − group mean); each
    completion's d on every one of its ``response_lengths`` action tokens (γ = 1 returns of a
    reward on the last token, no KL term); then over ALL action tokens of the batch
    ``(x − μ)/sqrt(max(σ², 1e-8))``, μ and σ² (÷ n, biased) token-weighted. ``eps`` and
    ``unbiased`` are not OpenRLHF's: fixed by the layout."""
    from .._arrays import sqrt
    from ..objectives import group_advantages

    d = np.asarray(group_advantages(rewards, method="dr_grpo"), dtype=object)
    flat = d.reshape(-1)
    if flat.size == 0:
        return d
    weights = response_lengths(flat.size)
    n = sum(weights)
    mean = sum((w * x for w, x in zip(weights, flat)), 0 * flat[0]) / n
    var = sum((w * (x - mean) ** 2 for w, x in zip(weights, flat)), 0 * flat[0]) / n
    floor = _RSTD_FLOOR if not isinstance(var, float) else float(_RSTD_FLOOR)
    scale = sqrt(max(var, floor))
    return np.asarray([(x - mean) / scale for x in flat], dtype=object).reshape(d.shape)


def _openrlhf_rpp_bound(case: Any, f: Any, exact: Any, u: float) -> np.ndarray:
    """As refmath's bound of the batch methods (:func:`refmath.bounds._bound_batch_group`),
    on the action tokens: d = r − group mean errs by e ≤ 2u(G + 5)(|r| + S) (E its largest);
    the token-weighted std by its two-pass error plus 2E (the std of N inputs each moved by
    ≤ E, biased: √(N/N) = 1) plus 4u·s for rsqrt; max(·, 1e-4) is 1-Lipschitz, so the floor
    adds nothing; then ``|ŷ − y| ≤ 2((e_num + |y|·e_s)/(s − e_s) + 2u|y|)``."""
    from .. import bounds as B

    r = np.asarray(f[0], dtype=np.float64)
    if r.size == 0:
        return np.zeros(r.shape)
    G = r.shape[-1]
    S = np.max(np.abs(r), axis=-1, keepdims=True)
    e_n = (2 * u * (G + 5) * (np.abs(r) + S) if G > 1 else np.zeros(r.shape)).reshape(-1)
    d = (r - r.mean(-1, keepdims=True)).reshape(-1)
    tokens = np.repeat(d, response_lengths(d.size))
    E = float(e_n.max())
    std, e_s = B._std_error(tokens, False, 0.0, u)
    s, e_s = max(std, 1e-4), e_s + 2 * E + 4 * u * max(std, 1e-4)
    if e_s >= s:
        return np.full(r.shape, np.inf)  # too ill-conditioned to promise anything
    e_num = 2 * E + B._mean_error(float(np.abs(tokens).max()), tokens.size, u) + 2 * u * np.abs(d)
    y = np.abs(d - tokens.mean()) / s
    return (2 * ((e_num + y * e_s) / (s - e_s) + 2 * u * y)).reshape(r.shape)


openrlhf_reinforce_baseline = Semantics(
    "REINFORCE++-baseline — OpenRLHF 0.11.0 (openrlhf/trainer/ppo_utils/experience_maker.py "
    "compute_advantages_and_returns, OpenRLHF/OpenRLHF at 3c3be62): r − group mean, on the "
    "last action token (compute_reward), γ = 1 returns, then whitened over every action token "
    "of the batch: (A − μ)·rsqrt(max(σ², 1e-8)), σ² biased, in float32",
    lambda row: replace(row, oracle=_openrlhf_rpp_oracle, bound=_openrlhf_rpp_bound,
                        reduces_batch=True),
    computes_in="float32",
    not_applicable={"batch_consistency": "the whitening is over every action token of the "
                                         "batch: a group's advantages depend on the others"})
