"""Exact oracles for policy objectives, value losses, whitening, aggregation, group
advantages (SPEC §4).

Per-step objectives are to MAXIMISE (``clipped_surrogate``, ``kl_penalized_surrogate``);
losses are to MINIMISE (``value_loss``). Fraction inputs give exact results (SymPy where a
square root appears), floats give float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._arrays import Array, check_bool, check_nonnegative, plain, prepare_arrays, sqrt

__all__ = [
    "clipped_surrogate",
    "clipped_surrogate_ratio_gradient",
    "kl_penalized_surrogate",
    "adaptive_kl_coefficient",
    "value_loss",
    "VALUE_CLIP_FORMS",
    "whiten",
    "aggregate_loss",
    "AGGREGATION_MODES",
    "group_advantages",
    "GROUP_METHODS",
    "policy_loss",
    "kl_shaped_rewards",
    "overlong_penalty",
    "cispo_surrogate",
    "cispo_surrogate_gradient",
    "gspo_surrogate",
    "gspo_token_surrogate",
    "gspo_token_surrogate_gradient",
    "split_aggregate_loss",
    "remax_advantages",
    "BATCH_GROUP_METHODS",
]

VALUE_CLIP_FORMS = ("max_of_squares", "clipped_prediction")
AGGREGATION_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum",
                     "seq-mean-token-sum-norm")
GROUP_METHODS = ("grpo", "dr_grpo", "rloo", "reinforce_pp", "batch_std")
BATCH_GROUP_METHODS = ("reinforce_pp", "batch_std")  # statistics over the whole batch


def _clip_inputs(ratio, advantages, clip_low, clip_high, dual_clip):
    """Validated inputs of the clipped surrogate: (prepared arrays, ε_low, ε_high, c)."""
    p = prepare_arrays({"ratio": ratio, "advantages": advantages},
                       numbers={"clip_low": clip_low, "clip_high": clip_high,
                                "dual_clip": dual_clip}, min_ndim=0, allow_inf=("ratio",))
    return (p, *_clip_ranges(p.scalars))


def _clip_ranges(scalars: dict) -> tuple:
    """(ε_low, ε_high, c): clip_high defaults to clip_low; both ≥ 0; c > 1 or None."""
    lo = scalars["clip_low"]
    hi = scalars.get("clip_high", lo)
    check_nonnegative("clip_low", lo)
    check_nonnegative("clip_high", hi)
    c = scalars.get("dual_clip")
    if c is not None and not c > 1:
        raise ValueError(f"dual_clip must be > 1, got {c}")
    return lo, hi, c


def _clip_case(r: Any, A: Any, lo: Any, hi: Any, c: Any) -> str:
    """Which branch of min(r·A, clip(r)·A) [and of max(·, c·A)] is selected.

    'ratio': r·A; 'clip': the clipped term (clip strictly active); 'dual': c·A. At the
    boundaries r = 1 ± ε exactly, the two terms are equal and the case is 'ratio' (the clip
    range is closed: a ratio ON the boundary is not clipped).
    """
    if A > 0 and r > 1 + hi:
        case = "clip"
    elif A < 0 and r < 1 - lo:
        case = "clip"
    else:
        case = "ratio"
    if c is not None and A < 0:
        value = (min(max(r, 1 - lo), 1 + hi) if case == "clip" else r) * A
        if c * A > value:
            case = "dual"
    return case


def clipped_surrogate(ratio: Array, advantages: Array, *, clip_low: Any = 0.2,
                      clip_high: Any = None, dual_clip: Any = None) -> np.ndarray:
    """PPO's clipped surrogate, per step, to MAXIMISE:

    ``L_t = min(r_t·A_t, clip(r_t, 1 − ε_low, 1 + ε_high)·A_t)``, and with ``dual_clip = c``
    (c > 1) and ``A_t < 0``: ``max(L_t, c·A_t)``. ``clip_high`` defaults to ``clip_low``.
    Schulman et al. (2017), PPO, eq. (7); dual clip: Ye et al. (2020), "Mastering Complex
    Control in MOBA Games", eq. (5); asymmetric ε: Yu et al. (2025), DAPO.

    A ratio that overflowed to ``+inf`` (float input) gives the limit: ``(1 + ε_high)·A``
    for A > 0, ``−inf`` (or ``c·A``) for A < 0, 0 for A = 0.

    Args:
        ratio: ``[..., T]`` importance ratios r_t = π_θ(a_t|s_t)/π_old(a_t|s_t) ≥ 0.
        advantages: ``[..., T]`` advantages A_t.
        clip_low: ε_low: the ratio is clipped below at 1 − ε_low.
        clip_high: ε_high: the ratio is clipped above at 1 + ε_high (default: ``clip_low``).
        dual_clip: c > 1: the dual clip's floor c·A_t where A_t < 0. Default: no dual clip.

    Examples:
        >>> from fractions import Fraction as F
        >>> list(clipped_surrogate([F(3)], [F(4, 5)], clip_low=F(1, 5)))
        [Fraction(24, 25)]
    """
    p, lo, hi, c = _clip_inputs(ratio, advantages, clip_low, clip_high, dual_clip)
    out = p.empty()
    for idx in np.ndindex(p.shape):
        r, A = p.arrays["ratio"][idx], p.arrays["advantages"][idx]
        check_nonnegative("ratio", r)
        product = r * A if A != 0 else A  # r = +inf (an overflowed ratio) and A = 0: 0
        out[idx] = min(product, min(max(r, 1 - lo), 1 + hi) * A)
        if c is not None and A < 0:
            out[idx] = max(out[idx], c * A)
    return out


def clipped_surrogate_ratio_gradient(ratio: Array, advantages: Array, *, clip_low: Any = 0.2,
                                     clip_high: Any = None, dual_clip: Any = None) -> np.ndarray:
    """``∂L_t/∂r_t`` by exact case analysis: ``A_t`` where the term r·A is selected, 0 where
    the clip (or the dual clip) is active. The gradient with respect to ``logp_t`` is
    ``r_t·∂L_t/∂r_t`` (since ∂r/∂logp = r): zero exactly where the clip is active.

    On the boundary r = 1 ± ε the clip is not active (closed clip range): the gradient is A
    there, the left/right derivative on the unclipped side. Schulman et al. (2017), eq. (7).

    Args:
        ratio: ``[..., T]`` importance ratios r_t = π_θ(a_t|s_t)/π_old(a_t|s_t) ≥ 0.
        advantages: ``[..., T]`` advantages A_t.
        clip_low: ε_low: the ratio is clipped below at 1 − ε_low.
        clip_high: ε_high: the ratio is clipped above at 1 + ε_high (default: ``clip_low``).
        dual_clip: c > 1: the dual clip's floor c·A_t where A_t < 0. Default: no dual clip.
    """
    p, lo, hi, c = _clip_inputs(ratio, advantages, clip_low, clip_high, dual_clip)
    out = p.empty()
    for idx in np.ndindex(p.shape):
        r, A = p.arrays["ratio"][idx], p.arrays["advantages"][idx]
        out[idx] = A if _clip_case(r, A, lo, hi, c) == "ratio" else A * 0
    return out


def kl_penalized_surrogate(ratio: Array, advantages: Array, kl: Array, *, beta: Any) -> np.ndarray:
    """PPO's KL-penalized surrogate, per step, to MAXIMISE: ``r_t·A_t − β·kl_t``.

    Schulman et al. (2017), PPO, eq. (8). ``beta ≥ 0``.

    Args:
        ratio: ``[..., T]`` importance ratios r_t = π_θ(a_t|s_t)/π_old(a_t|s_t) ≥ 0.
        advantages: ``[..., T]`` advantages A_t.
        kl: ``[..., T]`` the per-step KL estimate kl_t.
        beta: the KL coefficient β ≥ 0.
    """
    p = prepare_arrays({"ratio": ratio, "advantages": advantages, "kl": kl},
                       numbers={"beta": beta}, min_ndim=0)
    check_nonnegative("beta", p.scalars["beta"])
    out = p.empty()
    for idx in np.ndindex(p.shape):
        a = p.arrays
        out[idx] = a["ratio"][idx] * a["advantages"][idx] - p.scalars["beta"] * a["kl"][idx]
    return out


def adaptive_kl_coefficient(beta: Any, kl: Any, *, target: Any, tolerance: Any = 1.5,
                            factor: Any = 2.0) -> Any:
    """The PPO paper's adaptive KL coefficient (Schulman et al. 2017, §4):

    ``β/factor`` if ``kl < target/tolerance``; ``β·factor`` if ``kl > target·tolerance``;
    else ``β``. Strict inequalities: a KL exactly on a threshold keeps β. (The paper's text
    uses tolerance 1.5 and factor 2.)

    Args:
        beta: the current coefficient β > 0.
        kl: the measured KL of the last update.
        target: the target KL d_targ > 0.
        tolerance: the band's factor (1.5 in the paper): β changes outside [target/tolerance,
            target·tolerance].
        factor: the multiplier (2 in the paper).

    Examples:
        >>> from fractions import Fraction as F
        >>> adaptive_kl_coefficient(F(1), F(1, 100), target=F(1, 100))
        Fraction(1, 1)
    """
    p = prepare_arrays({"kl": [kl]}, numbers={"beta": beta, "target": target,
                                              "tolerance": tolerance, "factor": factor})
    s = p.scalars
    check_nonnegative("beta", s["beta"])
    check_nonnegative("kl", p.arrays["kl"][0])
    check_nonnegative("target", s["target"], strict=True)
    if not s["tolerance"] >= 1:
        raise ValueError(f"tolerance must be >= 1, got {s['tolerance']}")
    if not s["factor"] >= 1:
        raise ValueError(f"factor must be >= 1, got {s['factor']}")
    k = p.arrays["kl"][0]
    if k < s["target"] / s["tolerance"]:
        return s["beta"] / s["factor"]
    if k > s["target"] * s["tolerance"]:
        return s["beta"] * s["factor"]
    return s["beta"]


def value_loss(values: Array, returns: Array, *, old_values: Array | None = None,
               clip: Any = None, clip_form: str = "max_of_squares") -> np.ndarray:
    """Per-step value loss to MINIMISE (no factor ½: that is the caller's).

    Without ``clip``: ``(V − R)²``. With ``clip = c`` and ``old_values``, the clipped
    prediction is ``V_clip = V_old + clip(V − V_old, −c, c)`` and ``clip_form`` names one of
    the two conventions found in the wild:

    * ``"max_of_squares"``: ``max((V − R)², (V_clip − R)²)`` — OpenAI baselines PPO2, the
      "PPO value clipping" of Engstrom et al. (2020), CleanRL, verl;
    * ``"clipped_prediction"``: ``(V_clip − R)²`` — Stable-Baselines3 (``clip_range_vf``).

    Args:
        values: ``[..., T]`` the critic's predictions V_θ(s_t).
        returns: ``[..., T]`` the targets R_t.
        old_values: ``[..., T]`` the predictions at collection time V_old(s_t) (needed with
            ``clip``).
        clip: c > 0: the prediction moves at most c from ``old_values``. Default: no clip.
        clip_form: ``"max_of_squares"`` or ``"clipped_prediction"`` (see above).
    """
    if clip_form not in VALUE_CLIP_FORMS:
        raise ValueError(f"clip_form must be one of {VALUE_CLIP_FORMS}, got {clip_form!r}")
    if (clip is None) != (old_values is None):
        raise ValueError("clip and old_values must be given together")
    p = prepare_arrays({"values": values, "returns": returns, "old_values": old_values},
                       numbers={"clip": clip}, min_ndim=0)
    if clip is not None:
        check_nonnegative("clip", p.scalars["clip"])
    out = p.empty()
    for idx in np.ndindex(p.shape):
        V, R = p.arrays["values"][idx], p.arrays["returns"][idx]
        loss = (V - R) ** 2
        if clip is not None:
            c, V_old = p.scalars["clip"], p.arrays["old_values"][idx]
            clipped = (V_old + min(max(V - V_old, -c), c) - R) ** 2
            loss = max(loss, clipped) if clip_form == "max_of_squares" else clipped
        out[idx] = loss
    return out


def whiten(x: Array, mask: Array | None = None, *, shift_mean: bool = True,
           unbiased: bool = True, eps: Any = 1e-8) -> np.ndarray:
    """Masked whitening over ALL unmasked elements: ``(x − μ)/sqrt(σ² + eps)`` (+ μ back if
    not ``shift_mean``).

    ``μ = Σ m·x / Σ m``, ``σ² = Σ m·(x − μ)² / (n − 1)`` (``unbiased``, Bessel's correction)
    or ``/ n``. Defined results where statistics degenerate: with one unmasked element the
    unbiased variance (0/0) is taken as 0, so that element whitens to 0 (or to μ without
    shift); zero spread gives 0 (or μ). Masked positions of the output are 0. No unmasked
    element at all is a ``ValueError``. As in TRL/verl ``masked_whiten``.

    Args:
        x: the numbers to whiten (any shape; the statistics are over all of them).
        mask: booleans of x's shape, True at the elements that count; default all.
        shift_mean: subtract the mean (True) or add it back after scaling (False, as verl/TRL's
            ``shift_mean=False``).
        unbiased: Bessel's correction (÷(n − 1)) or the biased variance (÷n).
        eps: added to the variance under the square root.
    """
    p = prepare_arrays({"x": x}, flags={"mask": mask}, numbers={"eps": eps})
    check_nonnegative("eps", p.scalars["eps"], strict=True)
    shift_mean, unbiased = check_bool("shift_mean", shift_mean), check_bool("unbiased", unbiased)
    if 0 in p.shape:
        raise ValueError(f"x is empty (shape {p.shape}): whitening is undefined")
    m = p.flags["mask"]
    kept = [p.arrays["x"][idx] for idx in np.ndindex(p.shape) if m[idx]]
    n = len(kept)
    if n == 0:
        raise ValueError("mask has no unmasked element: whitening is undefined")
    mean = sum(kept, p.zero) / n
    squares = sum(((v - mean) ** 2 for v in kept), p.zero)
    var = squares / (n - 1) if unbiased and n > 1 else (squares / n if not unbiased else 0 * mean)
    scale = sqrt(var + p.scalars["eps"])
    out = p.zeros()
    for idx in np.ndindex(p.shape):
        if m[idx]:
            w = (p.arrays["x"][idx] - mean) / scale
            out[idx] = w if shift_mean else w + mean
    return out


def aggregate_loss(per_step_loss: Array, mask: Array, mode: str, *,
                   normalizer: Any = None) -> Any:
    """Reduce a ``[B, T]`` per-step loss to a scalar (Σ over present steps, mask = 1):

    * ``token-mean``: ``Σ_{b,t} m·l / Σ_{b,t} m`` (every token weighs the same);
    * ``seq-mean-token-mean``: mean over sequences of ``Σ_t m·l / Σ_t m``;
    * ``seq-mean-token-sum``: mean over sequences of ``Σ_t m·l``;
    * ``seq-mean-token-sum-norm``: ``(Σ_b Σ_t m·l) / (B'·normalizer)`` with a constant
      ``normalizer`` (e.g. the maximum response length; Liu et al. 2025, Dr. GRPO).

    Sequences with no unmasked step are left out of the sequence means (B' counts the
    others); a batch with no unmasked step is a ``ValueError``. verl ``agg_loss``.

    Args:
        per_step_loss: ``[B, T]`` the loss of every token.
        mask: ``[B, T]`` booleans, True at the response tokens.
        mode: the reduction: ``"token-mean"``, ``"seq-mean-token-mean"``, ``"seq-mean-token-sum"``
            or ``"seq-mean-token-sum-norm"``.
        normalizer: the constant divisor of ``"seq-mean-token-sum-norm"`` (e.g. the maximum
            response length); not read by the other modes.
    """
    if mode not in AGGREGATION_MODES:
        raise ValueError(f"mode must be one of {AGGREGATION_MODES}, got {mode!r}")
    if (normalizer is None) == (mode == "seq-mean-token-sum-norm"):
        raise ValueError("normalizer is required by (and only by) 'seq-mean-token-sum-norm'")
    p = prepare_arrays({"per_step_loss": per_step_loss}, flags={"mask": mask},
                       numbers={"normalizer": normalizer}, min_ndim=2)
    if len(p.shape) != 2:
        raise ValueError(f"per_step_loss must have shape [B, T], got {p.shape}")
    if normalizer is not None:
        check_nonnegative("normalizer", p.scalars["normalizer"], strict=True)
    loss, m = p.arrays["per_step_loss"], p.flags["mask"]
    zero = p.zero
    sums, counts = [], []
    for b in range(p.shape[0]):
        present = [loss[b, t] for t in range(p.shape[1]) if m[b, t]]
        if present:
            sums.append(sum(present, zero))
            counts.append(len(present))
    if not counts:
        raise ValueError("mask has no unmasked step: the loss is undefined")
    if mode == "token-mean":
        return sum(sums, zero) / sum(counts)
    if mode == "seq-mean-token-mean":
        return sum((s / c for s, c in zip(sums, counts)), zero) / len(sums)
    if mode == "seq-mean-token-sum":
        return sum(sums, zero) / len(sums)
    return sum(sums, zero) / (len(sums) * p.scalars["normalizer"])


def _std(values: list, zero: Any, unbiased: bool) -> Any:
    """The standard deviation of a list, ÷(n − 1) if ``unbiased`` (n > 1), else ÷n."""
    n = len(values)
    mean = sum(values, zero) / n
    squares = sum(((x - mean) ** 2 for x in values), zero)
    return sqrt(squares / (n - 1) if unbiased and n > 1 else squares / n)


def group_advantages(rewards: Array, *, method: str, eps: Any = 1e-6,
                     unbiased: bool = True) -> np.ndarray:
    """Outcome advantages for G samples of one prompt, over the last axis ``[..., G]``:

    * ``grpo``: ``(r_i − mean)/(std + eps)`` (Shao et al. 2024, DeepSeekMath, eq. (3));
      ``std`` unbiased (÷(G−1)) by default, as ``torch.std``;
    * ``dr_grpo``: ``r_i − mean`` (Liu et al. 2025, "Understanding R1-Zero-Like Training");
    * ``rloo``: ``r_i − mean_{j≠i} r_j`` (Ahmadian et al. 2024; Kool et al. 2019); needs
      G ≥ 2;
    * ``reinforce_pp``: ``d = r_i − mean``, then whitened over the WHOLE batch (every group):
      ``(d − mean(d))/(std(d) + eps)`` (Hu 2025, REINFORCE++-baseline);
    * ``batch_std``: ``(r_i − mean)/(std of every reward in the batch + eps)`` (Liu et al.
      2025, "Tricks or Traps?", group mean with batch std).

    ``mean`` is the group's. A group of one sample has advantage 0 under grpo and dr_grpo;
    zero spread gives zeros. The two batch methods are not row-wise: a group's advantages
    depend on the other groups.

    Args:
        rewards: ``[..., G]`` one outcome reward per sample, a prompt's G samples on the last axis.
        method: ``"grpo"``, ``"dr_grpo"``, ``"rloo"``, ``"reinforce_pp"`` or ``"batch_std"`` (see
            above).
        eps: added to the standard deviation.
        unbiased: the standard deviation with Bessel's correction (÷(G − 1), as ``torch.std``) or
            without.
    """
    if method not in GROUP_METHODS:
        raise ValueError(f"method must be one of {GROUP_METHODS}, got {method!r}")
    p = prepare_arrays({"rewards": rewards}, numbers={"eps": eps})
    check_nonnegative("eps", p.scalars["eps"], strict=True)
    unbiased = check_bool("unbiased", unbiased)
    G = p.shape[-1]
    if method == "rloo" and G < 2:
        raise ValueError(f"rloo needs at least 2 samples per group (G >= 2), got G = {G}")
    out = p.zeros()
    zero, e = p.zero, p.scalars["eps"]
    groups = list(np.ndindex(p.shape[:-1]))
    for idx in groups:
        r = list(p.arrays["rewards"][idx])
        mean = sum(r, zero) / G
        for i in range(G):
            if method == "rloo":
                out[idx + (i,)] = r[i] - sum((r[j] for j in range(G) if j != i), zero) / (G - 1)
            elif method == "grpo":
                out[idx + (i,)] = (r[i] - mean) / (_std(r, zero, unbiased) + e)
            else:
                out[idx + (i,)] = r[i] - mean
    if method == "reinforce_pp" and groups and G:
        d = [out[idx + (i,)] for idx in groups for i in range(G)]
        mean_d = sum(d, zero) / len(d)
        scale = _std(d, zero, unbiased) + e
        for idx in groups:
            for i in range(G):
                out[idx + (i,)] = (out[idx + (i,)] - mean_d) / scale
    elif method == "batch_std" and groups and G:
        scale = _std([p.arrays["rewards"][idx + (i,)] for idx in groups for i in range(G)],
                     zero, unbiased) + e
        for idx in groups:
            for i in range(G):
                out[idx + (i,)] = out[idx + (i,)] / scale
    return out


def remax_advantages(rewards: Array, greedy_rewards: Array) -> np.ndarray:
    """ReMax (Li et al. 2024, eq. (7)): ``r − r_greedy``, the reward of each sampled response
    minus that of the greedy response to the same prompt, elementwise (same shapes).

    Args:
        rewards: the sampled responses' rewards (any shape).
        greedy_rewards: the greedy response's reward for the same prompts, the same shape.
    """
    p = prepare_arrays({"rewards": rewards, "greedy_rewards": greedy_rewards}, min_ndim=0)
    out = p.empty()
    for idx in np.ndindex(p.shape):
        out[idx] = p.arrays["rewards"][idx] - p.arrays["greedy_rewards"][idx]
    return out


def policy_loss(logp: Array, old_logp: Array, advantages: Array, mask: Array, *,
                clip_low: Any = 0.2, clip_high: Any = None, dual_clip: Any = None,
                mode: str = "token-mean", normalizer: Any = None) -> Any:
    """The token-level PPO/GRPO policy loss to MINIMISE, as RLHF code writes it (verl
    ``compute_policy_loss``, TRL's GRPO loss): per token ``−min(r·A, clip(r, 1 − ε_low,
    1 + ε_high)·A)`` (with ``dual_clip``: ``max(that, c·A)`` for A < 0, before the sign),
    ``r = exp(logp − old_logp)``, reduced by :func:`aggregate_loss` over the response mask::

        L = aggregate_loss(−clipped_surrogate(importance_ratio(logp, old_logp), A), mask, mode)

    ``logp``, ``old_logp``, ``mask``: ``[B, T]``; ``advantages``: per token ``[B, T]`` or per
    sequence ``[B]`` (broadcast over its tokens, as GRPO's outcome advantages). Masked tokens
    are not read. Rows with no response token are left out of the sequence means
    (``seq-mean-*``); ``token-mean`` counts the tokens of the whole batch. Schulman et al.
    (2017), PPO, eq. (7); Shao et al. (2024), GRPO; Yu et al. (2025), DAPO (token-mean).

    Args:
        logp: ``[B, T]`` log π_θ of the response tokens.
        old_logp: ``[B, T]`` log π_old of the same tokens (the sampling policy).
        advantages: ``[B, T]`` per token, or ``[B]`` per sequence (broadcast over its tokens).
        mask: ``[B, T]`` booleans, True at the response tokens.
        clip_low: ε_low: the ratio is clipped below at 1 − ε_low.
        clip_high: ε_high: the ratio is clipped above at 1 + ε_high (default: ``clip_low``).
        dual_clip: c > 1: the dual clip's floor c·A_t where A_t < 0. Default: no dual clip.
        mode: the reduction: ``"token-mean"``, ``"seq-mean-token-mean"``, ``"seq-mean-token-sum"``
            or ``"seq-mean-token-sum-norm"``.
        normalizer: the constant divisor of ``"seq-mean-token-sum-norm"`` (e.g. the maximum
            response length); not read by the other modes.
    """
    from .ratios import importance_ratio

    logp, old_logp, advantages, mask = (plain(n, x) for n, x in (
        ("logp", logp), ("old_logp", old_logp), ("advantages", advantages), ("mask", mask)))
    lp, old, A = (np.asarray(x, dtype=object) for x in (logp, old_logp, advantages))
    if lp.ndim != 2:
        raise ValueError(f"logp must have shape [B, T], got {lp.shape}")
    if lp.shape[-1] == 0:
        raise ValueError("logp has an empty last axis (T = 0)")
    for name, x in (("old_logp", old), ("mask", np.asarray(mask))):
        if x.shape != lp.shape:
            raise ValueError(f"{name} has shape {x.shape}, logp {lp.shape}")
    if A.shape == lp.shape[:-1]:
        A = np.repeat(A[..., None], lp.shape[-1], axis=-1)
    elif A.shape != lp.shape:
        raise ValueError(f"advantages must have shape {lp.shape} (per token) or "
                         f"{lp.shape[:-1]} (per sequence), got {A.shape}")
    keep = np.asarray(mask, dtype=object) == 1
    if not np.all((np.asarray(mask, dtype=object) == 0) | keep):
        raise ValueError("mask must hold only 0/1 (or booleans)")
    first = lp[keep].flat[0] if keep.any() else 0
    zero = first - first  # an exact 0 of the inputs' type, for the positions never read
    lp, old, A = (np.where(keep, x, zero) for x in (lp, old, A))
    per_token = -clipped_surrogate(importance_ratio(lp, old), A, clip_low=clip_low,
                                   clip_high=clip_high, dual_clip=dual_clip)
    return aggregate_loss(per_token, keep, mode, normalizer=normalizer)


def kl_shaped_rewards(rewards: Array, logp: Array, ref_logp: Array, *, beta: Any,
                      kind: str = "k1", mask: Array | None = None) -> np.ndarray:
    """KL in the reward (classic RLHF PPO; SPEC §7): ``r_t − β·k_t`` per token, ``k`` the
    estimator of :func:`refmath.divergences.kl_estimate` with ``log r = ref_logp − logp``;
    ``rewards`` holds the outcome reward at the last response token. Masked tokens: 0, never
    read. Ouyang et al. (2022), eq. (2); Ziegler et al. (2019).

    Args:
        rewards: ``[..., T]`` the reward of each token (the outcome reward at the last response
            token, 0 elsewhere).
        logp: ``[..., T]`` log π_θ(a_t|s_t), the current policy's log-probabilities of the taken
            actions (tokens).
        ref_logp: ``[..., T]`` log π_ref(a_t|s_t), those of the reference policy.
        beta: the KL coefficient β ≥ 0.
        kind: the KL estimator: ``"k1"`` (default), ``"k2"`` or ``"k3"``.
        mask: ``[..., T]`` booleans, True at the response tokens; default all.
    """
    from .divergences import _estimator

    _estimator(kind, 0)
    p = prepare_arrays({"rewards": rewards, "logp": logp, "ref_logp": ref_logp},
                       flags={"mask": mask}, numbers={"beta": beta}, min_ndim=0)
    check_nonnegative("beta", p.scalars["beta"])
    out = p.zeros()
    m = p.flags["mask"]
    for idx in np.ndindex(p.shape):
        if m[idx]:
            a = p.arrays
            out[idx] = a["rewards"][idx] - p.scalars["beta"] * _estimator(
                kind, a["ref_logp"][idx] - a["logp"][idx])
    return out


def overlong_penalty(lengths: Array, *, max_length: Any, cache_length: Any) -> np.ndarray:
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13; SPEC §7), elementwise: 0 for
    ``L ≤ L_max − L_cache``, ``((L_max − L_cache) − L)/L_cache`` up to ``L_max``, −1 beyond.

    Args:
        lengths: the response lengths L (any shape).
        max_length: L_max, the maximum response length.
        cache_length: L_cache, the soft zone's width before L_max (> 0).
    """
    p = prepare_arrays({"lengths": lengths}, numbers={"max_length": max_length,
                                                      "cache_length": cache_length},
                       min_ndim=0)
    top, cache = p.scalars["max_length"], p.scalars["cache_length"]
    check_nonnegative("cache_length", cache, strict=True)
    if not top >= cache:
        raise ValueError(f"max_length must be >= cache_length, got {top} < {cache}")
    out = p.empty()
    for idx in np.ndindex(p.shape):
        L = p.arrays["lengths"][idx]
        if L < 0:
            raise ValueError(f"lengths must be non-negative, got {L}")
        if L <= top - cache:
            out[idx] = L * 0
        elif L <= top:
            out[idx] = ((top - cache) - L) / cache
        else:
            out[idx] = L * 0 - 1
    return out


def _cispo_inputs(logp, old_logp, advantages, mask, clip_low, clip_high):
    p = prepare_arrays({"logp": logp, "old_logp": old_logp, "advantages": advantages},
                       flags={"mask": mask}, numbers={"clip_low": clip_low,
                                                      "clip_high": clip_high}, min_ndim=0)
    lo, hi = p.scalars["clip_low"], p.scalars["clip_high"]
    check_nonnegative("clip_low", lo)
    check_nonnegative("clip_high", hi)
    return p, lo, hi


def _clip_ratio(p, idx, lo, hi):
    from ._arrays import exp

    r = exp(p.arrays["logp"][idx] - p.arrays["old_logp"][idx])
    return min(max(r, 1 - lo), 1 + hi)


def cispo_surrogate(logp: Array, old_logp: Array, advantages: Array, mask: Array, *,
                    clip_low: Any, clip_high: Any) -> np.ndarray:
    """CISPO (MiniMax-M1, 2025), per token to MAXIMISE: ``sg(clip(r, 1 − ε_low, 1 + ε_high))·A·
    logp`` with ``r = exp(logp − old_logp)``; 0 where masked (never read). Its value; the
    gradient is :func:`cispo_surrogate_gradient` (the clipped weight is a constant).

    Args:
        logp: ``[..., T]`` log π_θ(a_t|s_t), the current policy's log-probabilities of the taken
            actions (tokens).
        old_logp: ``[..., T]`` log π_old(a_t|s_t), those of the policy that sampled them.
        advantages: ``[..., T]`` advantages A_t.
        mask: ``[..., T]`` booleans, True at the response tokens.
        clip_low: ε_low: the ratio is clipped below at 1 − ε_low.
        clip_high: ε_high: the weight is clipped above at 1 + ε_high.
    """
    p, lo, hi = _cispo_inputs(logp, old_logp, advantages, mask, clip_low, clip_high)
    out = p.zeros()
    for idx in np.ndindex(p.shape):
        if p.flags["mask"][idx]:
            out[idx] = _clip_ratio(p, idx, lo, hi) * p.arrays["advantages"][idx] * \
                p.arrays["logp"][idx]
    return out


def cispo_surrogate_gradient(logp: Array, old_logp: Array, advantages: Array, mask: Array, *,
                             clip_low: Any, clip_high: Any) -> np.ndarray:
    """``∂L_t/∂logp_t = clip(r_t, 1 − ε_low, 1 + ε_high)·A_t`` (the weight stop-gradiented):
    nonzero where PPO-clip's gradient is zero; 0 where masked. MiniMax (2025), MiniMax-M1,
    eq. (4); SPEC §7.

    Args:
        logp: ``[..., T]`` log π_θ(a_t|s_t), the current policy's log-probabilities of the taken
            actions (tokens).
        old_logp: ``[..., T]`` log π_old(a_t|s_t), those of the policy that sampled them.
        advantages: ``[..., T]`` advantages A_t.
        mask: ``[..., T]`` booleans, True at the response tokens.
        clip_low: ε_low: the ratio is clipped below at 1 − ε_low.
        clip_high: ε_high: the weight is clipped above at 1 + ε_high.
    """
    p, lo, hi = _cispo_inputs(logp, old_logp, advantages, mask, clip_low, clip_high)
    out = p.zeros()
    for idx in np.ndindex(p.shape):
        if p.flags["mask"][idx]:
            out[idx] = _clip_ratio(p, idx, lo, hi) * p.arrays["advantages"][idx]
    return out


def _per_sequence(name: str, advantages: Array, logp: Array, per_token: bool) -> Array:
    """Advantages broadcast over the last (token) axis: given per sequence ``[...]`` (or, if
    ``per_token``, already per token ``[..., T]``)."""
    A, lp = np.asarray(plain("advantages", advantages), dtype=object), np.asarray(
        plain("logp", logp), dtype=object)
    if lp.ndim == 0 or lp.shape[-1] == 0:
        raise ValueError(f"logp must have a non-empty token axis (the last), got shape "
                         f"{lp.shape}")
    if A.shape == lp.shape[:-1]:
        return np.repeat(A[..., None], lp.shape[-1], axis=-1)
    if per_token and A.shape == lp.shape:
        return A
    forms = f"{lp.shape} (per token) or " if per_token else ""
    raise ValueError(f"{name}: advantages must have shape {forms}{lp.shape[:-1]} (per "
                     f"sequence), got {A.shape}")


def _gspo_inputs(name, logp, old_logp, advantages, mask, clip_low, clip_high, per_token):
    A = _per_sequence(name, advantages, logp, per_token)
    p = prepare_arrays({"logp": logp, "old_logp": old_logp, "advantages": A},
                       flags={"mask": mask}, numbers={"clip_low": clip_low,
                                                      "clip_high": clip_high})
    lo, hi, _ = _clip_ranges(p.scalars)
    return p, lo, hi


def _sequence_ratio(p, row) -> tuple[list, Any]:
    """(the row's response positions, GSPO's s = exp(Σ m·(logp − old)/Σ m))."""
    from ._arrays import exp

    steps = [row + (t,) for t in range(p.shape[-1]) if p.flags["mask"][row + (t,)]]
    if not steps:
        return steps, None
    mean = sum((p.arrays["logp"][i] - p.arrays["old_logp"][i] for i in steps), p.zero) / \
        len(steps)
    return steps, exp(mean)


def _gspo_values(name, logp, old_logp, advantages, mask, clip_low, clip_high, per_token):
    """min(s·A_t, clip(s)·A_t) on each response token, s the row's sequence ratio."""
    p, lo, hi = _gspo_inputs(name, logp, old_logp, advantages, mask, clip_low, clip_high,
                             per_token)
    out = p.zeros()
    for row in np.ndindex(p.shape[:-1]):
        steps, s = _sequence_ratio(p, row)
        for idx in steps:
            out[idx] = clipped_surrogate([s], [p.arrays["advantages"][idx]], clip_low=lo,
                                         clip_high=hi)[0]
    return out


def gspo_surrogate(logp: Array, old_logp: Array, advantages: Array, mask: Array, *,
                   clip_low: Any, clip_high: Any = None) -> np.ndarray:
    """GSPO (Zheng et al. 2025, "Group Sequence Policy Optimization", eqs. (5)–(7)), to
    MAXIMISE: per sequence ``min(s·A, clip(s, 1 − ε_low, 1 + ε_high)·A)`` with the sequence
    ratio ``s = exp(Σ_t m_t·(logp_t − old_logp_t) / Σ_t m_t)`` (the geometric mean of the
    token ratios), written to every response token of the sequence, so that
    ``aggregate_loss(·, mask, "seq-mean-token-mean")`` is the paper's objective. ``logp``,
    ``old_logp``, ``mask``: ``[..., T]``; ``advantages``: one per sequence ``[...]``.
    Masked tokens (and rows without a response token) get 0; ``clip_high`` defaults to
    ``clip_low``; a ratio on the boundary is not clipped.

    Args:
        logp: ``[..., T]`` log π_θ(a_t|s_t), the current policy's log-probabilities of the taken
            actions (tokens).
        old_logp: ``[..., T]`` log π_old(a_t|s_t), those of the policy that sampled them.
        advantages: ``[...]`` one advantage per sequence.
        mask: ``[..., T]`` booleans, True at the response tokens.
        clip_low: ε_low: the ratio is clipped below at 1 − ε_low.
        clip_high: ε_high: the ratio is clipped above at 1 + ε_high (default: ``clip_low``).
    """
    return _gspo_values("gspo_surrogate", logp, old_logp, advantages, mask, clip_low,
                        clip_high, per_token=False)


def gspo_token_surrogate(logp: Array, old_logp: Array, advantages: Array, mask: Array, *,
                         clip_low: Any, clip_high: Any = None) -> np.ndarray:
    """GSPO-token (Zheng et al. 2025, eqs. (13)–(14)), to MAXIMISE, per token
    ``min(s_t·A_t, clip(s_t, 1 − ε_low, 1 + ε_high)·A_t)`` with ``s_t = sg[s]·π_θ(y_t)/
    sg[π_θ(y_t)]``: its VALUE is the sequence ratio s of :func:`gspo_surrogate` (so the value
    equals GSPO's), its gradient :func:`gspo_token_surrogate_gradient`. ``advantages`` per
    token ``[..., T]`` or per sequence ``[...]``. Masked tokens get 0.

    Args:
        logp: ``[..., T]`` log π_θ(a_t|s_t), the current policy's log-probabilities of the taken
            actions (tokens).
        old_logp: ``[..., T]`` log π_old(a_t|s_t), those of the policy that sampled them.
        advantages: ``[..., T]`` per token, or ``[...]`` per sequence.
        mask: ``[..., T]`` booleans, True at the response tokens.
        clip_low: ε_low: the ratio is clipped below at 1 − ε_low.
        clip_high: ε_high: the ratio is clipped above at 1 + ε_high (default: ``clip_low``).
    """
    return _gspo_values("gspo_token_surrogate", logp, old_logp, advantages, mask, clip_low,
                        clip_high, per_token=True)


def gspo_token_surrogate_gradient(logp: Array, old_logp: Array, advantages: Array,
                                  mask: Array, *, clip_low: Any,
                                  clip_high: Any = None) -> np.ndarray:
    """``∂(Σ_t L_t)/∂logp_t`` of GSPO-token (Zheng et al. 2025, eq. (17)): ``s·A_t`` where
    the clip is not active for token t (``A_t > 0`` and ``s ≤ 1 + ε_high``, or ``A_t < 0``
    and ``s ≥ 1 − ε_low``), else 0; 0 where masked. With a sequence's advantages equal this
    is also GSPO's gradient (eq. (10)): the identity ``tests/test_objectives.py`` proves.

    Args:
        logp: ``[..., T]`` log π_θ(a_t|s_t), the current policy's log-probabilities of the taken
            actions (tokens).
        old_logp: ``[..., T]`` log π_old(a_t|s_t), those of the policy that sampled them.
        advantages: ``[..., T]`` per token, or ``[...]`` per sequence.
        mask: ``[..., T]`` booleans, True at the response tokens.
        clip_low: ε_low: the ratio is clipped below at 1 − ε_low.
        clip_high: ε_high: the ratio is clipped above at 1 + ε_high (default: ``clip_low``).
    """
    p, lo, hi = _gspo_inputs("gspo_token_surrogate_gradient", logp, old_logp, advantages,
                             mask, clip_low, clip_high, per_token=True)
    out = p.zeros()
    for row in np.ndindex(p.shape[:-1]):
        steps, s = _sequence_ratio(p, row)
        for idx in steps:
            A = p.arrays["advantages"][idx]
            g = clipped_surrogate_ratio_gradient([s], [A], clip_low=lo, clip_high=hi)[0]
            out[idx] = s * g
    return out


def _micro_batches(splits: Any, B: int) -> list[int]:
    """The micro-batch sizes along the batch axis, as ``torch.split``: an int (the chunk
    size, the last chunk smaller) or non-negative sizes summing to B."""
    if isinstance(splits, bool):
        raise TypeError("splits must be an int or a sequence of ints, got a bool")
    if isinstance(splits, (int, np.integer)):
        if splits < 1:
            raise ValueError(f"splits must be a positive chunk size, got {splits}")
        return [min(int(splits), B - i) for i in range(0, B, int(splits))]
    try:
        sizes = [int(x) for x in splits]
    except TypeError:
        raise TypeError(f"splits must be an int or a sequence of ints, got "
                        f"{type(splits).__name__}") from None
    if any(isinstance(x, bool) or x != int(x) or x < 0 for x in splits):
        raise ValueError(f"splits must hold non-negative integers, got {list(splits)}")
    if sum(sizes) != B:
        raise ValueError(f"splits must sum to the batch size {B}, got {sizes} "
                         f"(sum {sum(sizes)})")
    return sizes


def split_aggregate_loss(per_step_loss: Array, mask: Array, mode: str, *, splits: Any,
                         normalizer: Any = None) -> np.ndarray:
    """The :func:`aggregate_loss` of a ``[B, T]`` batch split into micro-batches along B
    (``splits`` as in ``torch.split``), one loss per micro-batch, each normalised by the
    WHOLE batch's count (SPEC §7): for ``token-mean`` ``Σ_{b∈mb} Σ_t m·l / N`` (N the
    batch's response tokens), for ``seq-mean-token-mean`` ``Σ_{b∈mb} (Σ_t m·l/Σ_t m) / B'``,
    for ``seq-mean-token-sum`` ``Σ_{b∈mb} Σ_t m·l / B'``, for ``seq-mean-token-sum-norm``
    that over ``normalizer`` (B' the batch's rows with a response token). Their SUM is the
    full-batch loss, which gradient accumulation needs; normalising each micro-batch by its
    own count (and averaging) is not (the claim ``common.micro_batch_token_mean``).

    Args:
        per_step_loss: ``[B, T]`` the loss of every token.
        mask: ``[B, T]`` booleans, True at the response tokens.
        mode: the reduction: ``"token-mean"``, ``"seq-mean-token-mean"``, ``"seq-mean-token-sum"``
            or ``"seq-mean-token-sum-norm"``.
        splits: the micro-batches along B, as ``torch.split`` takes them: one size (the last
            micro-batch may be smaller) or a list of sizes summing to B.
        normalizer: the constant divisor of ``"seq-mean-token-sum-norm"`` (e.g. the maximum
            response length); not read by the other modes.
    """
    aggregate_loss(per_step_loss, mask, mode, normalizer=normalizer)  # validates the inputs
    p = prepare_arrays({"per_step_loss": per_step_loss}, flags={"mask": mask},
                       numbers={"normalizer": normalizer}, min_ndim=2)
    loss, m, zero = p.arrays["per_step_loss"], p.flags["mask"], p.zero
    rows = [[loss[b, t] for t in range(p.shape[1]) if m[b, t]] for b in range(p.shape[0])]
    N = sum(len(r) for r in rows)
    B_present = sum(1 for r in rows if r)
    if mode == "token-mean":
        row_terms = [sum(r, zero) / N for r in rows]
    elif mode == "seq-mean-token-mean":
        row_terms = [sum(r, zero) / len(r) / B_present if r else zero for r in rows]
    elif mode == "seq-mean-token-sum":
        row_terms = [sum(r, zero) / B_present for r in rows]
    else:
        row_terms = [sum(r, zero) / (B_present * p.scalars["normalizer"]) for r in rows]
    out, start = [], 0
    for size in _micro_batches(splits, p.shape[0]):
        out.append(sum(row_terms[start:start + size], zero))
        start += size
    result = p.empty((len(out),))
    for i, x in enumerate(out):
        result[i] = x
    return result
