"""Batched Torch objectives, value loss, whitening, aggregation, group advantages (SPEC §4);
twins of :mod:`refmath.objectives`."""

from __future__ import annotations

import torch

from ._inputs import checking
from ._precision import float32_for_half
from ._tensors import finite, flag, mask_of, number, tensors, where0

__all__ = ["clipped_surrogate", "kl_penalized_surrogate", "adaptive_kl_coefficient",
           "value_loss", "whiten", "aggregate_loss", "group_advantages", "policy_loss",
           "kl_shaped_rewards", "overlong_penalty", "cispo_surrogate", "gspo_surrogate",
           "gspo_token_surrogate", "split_aggregate_loss", "remax_advantages"]

VALUE_CLIP_FORMS = ("max_of_squares", "clipped_prediction")
AGGREGATION_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum",
                     "seq-mean-token-sum-norm")
GROUP_METHODS = ("grpo", "dr_grpo", "rloo", "reinforce_pp", "batch_std")


def _product(r: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """r·A, with exactly 0 where A = 0 and r overflowed to inf (the exact ratio is finite, so
    the exact product is 0, not NaN). Gradients are those of r·A."""
    product = r * A
    return torch.where((A == 0) & torch.isinf(r), product.new_zeros(()), product)


@float32_for_half
def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, *, clip_low: float = 0.2,
                      clip_high: float | None = None,
                      dual_clip: float | None = None) -> torch.Tensor:
    """``min(r·A, clip(r, 1 − ε_low, 1 + ε_high)·A)`` per step, to MAXIMISE; with
    ``dual_clip = c`` and A < 0, ``max(that, c·A)`` (Schulman et al. 2017, eq. 7; Ye et al.
    2020). Selected by exact case analysis, so the gradient with respect to the ratio (and
    to logp) is exactly 0 where the clip is active and A (resp. r·A) elsewhere; a ratio on
    the boundary 1 ± ε is not clipped."""
    r, A = tensors(ratio=ratio, advantages=advantages)
    lo = number("clip_low", clip_low, minimum=0.0)
    hi = number("clip_high", clip_high if clip_high is not None else lo, minimum=0.0)
    c = number("dual_clip", dual_clip, minimum=1.0, strict=True, optional=True)
    finite({"ratio": r, "advantages": A}, allow_inf=("ratio",))
    if checking() and bool((r < 0).any()):
        raise ValueError("ratio must be non-negative")
    return _clipped(r, A, lo, hi, c)


def _clipped(r: torch.Tensor, A: torch.Tensor, lo: float, hi: float,
             c: float | None) -> torch.Tensor:
    """The clipped surrogate of validated inputs (r may be +inf: an overflowed ratio)."""
    clip_active = ((A > 0) & (r > 1 + hi)) | ((A < 0) & (r < 1 - lo))
    objective = torch.where(clip_active, torch.clamp(r, 1 - lo, 1 + hi) * A, _product(r, A))
    if c is not None:
        floor = c * A
        objective = torch.where((A < 0) & (floor > objective), floor, objective)
    return objective


@float32_for_half
def kl_penalized_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, kl: torch.Tensor, *,
                           beta: float) -> torch.Tensor:
    """``r·A − β·kl`` per step, to MAXIMISE (Schulman et al. 2017, eq. 8)."""
    r, A, kl = tensors(ratio=ratio, advantages=advantages, kl=kl)
    beta = number("beta", beta, minimum=0.0)
    finite({"ratio": r, "advantages": A, "kl": kl})
    return _product(r, A) - beta * kl


def adaptive_kl_coefficient(beta: float, kl: float, *, target: float, tolerance: float = 1.5,
                            factor: float = 2.0) -> float:
    """PPO's adaptive β (Schulman et al. 2017, §4): ``β/factor`` if ``kl < target/tolerance``,
    ``β·factor`` if ``kl > target·tolerance``, else β (strict inequalities)."""
    beta = number("beta", beta, minimum=0.0)
    kl = number("kl", kl, minimum=0.0)
    target = number("target", target, minimum=0.0, strict=True)
    tolerance = number("tolerance", tolerance, minimum=1.0)
    factor = number("factor", factor, minimum=1.0)
    if kl < target / tolerance:
        return beta / factor
    if kl > target * tolerance:
        return beta * factor
    return beta


@float32_for_half
def value_loss(values: torch.Tensor, returns: torch.Tensor, *,
               old_values: torch.Tensor | None = None, clip: float | None = None,
               clip_form: str = "max_of_squares") -> torch.Tensor:
    """``(V − R)²`` per step; with ``clip``: ``max((V − R)², (V_clip − R)²)``
    (``"max_of_squares"``, PPO2/CleanRL/verl) or ``(V_clip − R)²`` (``"clipped_prediction"``,
    Stable-Baselines3), ``V_clip = V_old + clip(V − V_old, −c, c)``. No factor ½."""
    if clip_form not in VALUE_CLIP_FORMS:
        raise ValueError(f"clip_form must be one of {VALUE_CLIP_FORMS}, got {clip_form!r}")
    if (clip is None) != (old_values is None):
        raise ValueError("clip and old_values must be given together")
    V, R, V_old = tensors(values=values, returns=returns, old_values=old_values)
    finite({"values": V, "returns": R, "old_values": V_old})
    loss = (V - R).square()
    if clip is None:
        return loss
    c = number("clip", clip, minimum=0.0)
    clipped = (V_old + torch.clamp(V - V_old, -c, c) - R).square()
    return torch.maximum(loss, clipped) if clip_form == "max_of_squares" else clipped


@float32_for_half
def whiten(x: torch.Tensor, mask: torch.Tensor | None = None, *, shift_mean: bool = True,
           unbiased: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """``(x − μ)/sqrt(σ² + eps)`` over all unmasked elements (+ μ if not ``shift_mean``);
    one unmasked element: unbiased variance taken as 0; masked outputs 0 (TRL/verl
    ``masked_whiten``)."""
    (x,) = tensors(x=x)
    if x.dim() == 0:
        raise ValueError("x must have at least one axis")
    if x.numel() == 0:
        raise ValueError(f"x is empty (shape {tuple(x.shape)}): whitening is undefined")
    eps = number("eps", eps, minimum=0.0, strict=True)
    shift_mean, unbiased = flag("shift_mean", shift_mean), flag("unbiased", unbiased)
    keep = mask_of(mask, x)
    n = int(keep.sum())
    if n == 0:
        raise ValueError("mask has no unmasked element: whitening is undefined")
    finite({"x": x}, keep)
    # Shifted by a constant c (the first unmasked element): x − c is exactly 0 for a constant
    # x in every dtype, so zero spread whitens to exactly 0 (μ of 30 × 0.9 in float32 is not
    # 0.9; its rounding divided by sqrt(eps) was 1e-3). Same μ and σ², same gradient.
    c = x.detach().reshape(-1)[keep.reshape(-1).view(torch.uint8).argmax()]
    d = where0(keep, x - c)
    mean_d = d.sum() / n
    dev = where0(keep, d - mean_d)
    squares = dev.square().sum()
    var = squares / (n - 1) if unbiased and n > 1 else (
        squares / n if not unbiased else squares * 0)
    w = dev * torch.rsqrt(var + eps)
    return where0(keep, w if shift_mean else w + (mean_d + c))


def _aggregate_inputs(per_step_loss, mask, mode, normalizer):
    """The validated inputs as (per-row sums of unmasked losses, per-row counts, rows with a
    response token, B' = their number, the normalizer or None)."""
    if mode not in AGGREGATION_MODES:
        raise ValueError(f"mode must be one of {AGGREGATION_MODES}, got {mode!r}")
    if (normalizer is None) == (mode == "seq-mean-token-sum-norm"):
        raise ValueError("normalizer is required by (and only by) 'seq-mean-token-sum-norm'")
    (loss,) = tensors(per_step_loss=per_step_loss)
    if loss.dim() != 2:
        raise ValueError(f"per_step_loss must have shape [B, T], got {tuple(loss.shape)}")
    if loss.shape[-1] == 0:
        raise ValueError("per_step_loss has an empty last axis (T = 0)")
    keep = mask_of(mask, loss)
    finite({"per_step_loss": loss}, keep)
    counts = keep.sum(-1)
    rows = counts > 0
    n_rows = int(rows.sum())
    if n_rows == 0:
        raise ValueError("mask has no unmasked step: the loss is undefined")
    norm = None if normalizer is None else number("normalizer", normalizer, minimum=0.0,
                                                  strict=True)
    return where0(keep, loss).sum(-1), counts, rows, n_rows, norm


@float32_for_half
def aggregate_loss(per_step_loss: torch.Tensor, mask: torch.Tensor, mode: str, *,
                   normalizer: float | None = None) -> torch.Tensor:
    """Reduce ``[B, T]`` to a scalar: token-mean, seq-mean-token-mean, seq-mean-token-sum,
    seq-mean-token-sum-norm (÷ B'·normalizer; Dr. GRPO). Rows with no unmasked step are left
    out of the sequence means. verl ``agg_loss``."""
    sums, counts, rows, n_rows, norm = _aggregate_inputs(per_step_loss, mask, mode, normalizer)
    if mode == "token-mean":
        return sums.sum() / counts.sum()
    if mode == "seq-mean-token-mean":
        return where0(rows, sums / counts.clamp(min=1)).sum() / n_rows
    if mode == "seq-mean-token-sum":
        return sums.sum() / n_rows
    return sums.sum() / (n_rows * norm)


def _split_sizes(splits: object, B: int) -> list[int]:
    """Micro-batch sizes along the batch axis, as ``torch.split``: a chunk size or sizes."""
    if isinstance(splits, bool):
        raise TypeError("splits must be an int or a sequence of ints, got a bool")
    if isinstance(splits, int):
        if splits < 1:
            raise ValueError(f"splits must be a positive chunk size, got {splits}")
        return [min(splits, B - i) for i in range(0, B, splits)]
    if not isinstance(splits, (list, tuple)) or not all(
            isinstance(x, int) and not isinstance(x, bool) for x in splits):
        raise TypeError(f"splits must be an int or a list/tuple of ints, got {splits!r}")
    if any(x < 0 for x in splits):
        raise ValueError(f"splits must hold non-negative integers, got {list(splits)}")
    if sum(splits) != B:
        raise ValueError(f"splits must sum to the batch size {B}, got {list(splits)} "
                         f"(sum {sum(splits)})")
    return list(splits)


@float32_for_half
def split_aggregate_loss(per_step_loss: torch.Tensor, mask: torch.Tensor, mode: str, *,
                         splits: int | list[int], normalizer: float | None = None
                         ) -> torch.Tensor:
    """One loss per micro-batch (``splits`` along the batch axis, as ``torch.split``), each
    normalised by the WHOLE batch's count, so that they SUM to :func:`aggregate_loss` (SPEC
    §7: gradient accumulation / data-parallel ranks). Shape ``[number of micro-batches]``."""
    sums, counts, rows, n_rows, norm = _aggregate_inputs(per_step_loss, mask, mode, normalizer)
    sizes = _split_sizes(splits, sums.shape[0])
    if mode == "token-mean":
        terms = sums / counts.sum()
    elif mode == "seq-mean-token-mean":
        terms = where0(rows, sums / counts.clamp(min=1)) / n_rows
    elif mode == "seq-mean-token-sum":
        terms = sums / n_rows
    else:
        terms = sums / (n_rows * norm)
    owner = torch.repeat_interleave(torch.arange(len(sizes), device=terms.device),
                                    torch.tensor(sizes, device=terms.device))
    return terms.new_zeros(len(sizes)).index_add(0, owner, terms)


@float32_for_half
def group_advantages(rewards: torch.Tensor, *, method: str, eps: float = 1e-6,
                     unbiased: bool = True) -> torch.Tensor:
    """Over the last axis ``[..., G]``: grpo ``(r − mean)/(std + eps)`` (Shao et al. 2024),
    dr_grpo ``r − mean`` (Liu et al. 2025), rloo ``r_i − mean_{j≠i} r_j`` (Ahmadian et al.
    2024; needs G ≥ 2); over the whole batch: reinforce_pp ``r − mean`` whitened (Hu 2025,
    REINFORCE++-baseline), batch_std ``(r − mean)/(std of all rewards + eps)`` (Liu et al.
    2025). G = 1 gives 0 under grpo and dr_grpo; zero spread gives zeros."""
    if method not in GROUP_METHODS:
        raise ValueError(f"method must be one of {GROUP_METHODS}, got {method!r}")
    (r,) = tensors(rewards=rewards)
    if r.dim() == 0 or r.shape[-1] == 0:
        raise ValueError("rewards must have a non-empty group axis (the last)")
    eps = number("eps", eps, minimum=0.0, strict=True)
    unbiased = flag("unbiased", unbiased)
    finite({"rewards": r})
    G = r.shape[-1]
    if method == "rloo" and G < 2:
        raise ValueError(f"rloo needs at least 2 samples per group (G >= 2), got G = {G}")
    # Shifted by each group's first reward c: r − c is exactly 0 in a zero-spread group, so
    # its advantages are exactly 0 in every dtype (the rounding of a float32 mean of 30 ×
    # 0.9, divided by std + eps, was −0.151). Same mean and spread, same gradient.
    d = r - r.detach()[..., :1]
    mean = d.mean(-1, keepdim=True)
    if method == "dr_grpo":
        return d - mean
    if method == "rloo":
        return d - (d.sum(-1, keepdim=True) - d) / (G - 1)
    dev = d - mean
    if method == "grpo":
        return dev / (_safe_std(dev, unbiased, -1) + eps)
    if method == "batch_std":  # the std of every reward of the batch (shifted: exact 0 spread)
        flat = r - r.detach().reshape(-1)[:1]
        whole = flat - flat.mean()
        return dev / (_safe_std(whole, unbiased, None) + eps)
    centred = dev - dev.mean()  # reinforce_pp: whitened over the whole batch
    return centred / (_safe_std(centred, unbiased, None) + eps)


def _safe_std(dev: torch.Tensor, unbiased: bool, dim: int | None) -> torch.Tensor:
    """sqrt(Σ dev² / divisor) of deviations from the mean, over ``dim`` (None: all), with
    the gradient of sqrt at 0 (a zero-spread group) taken as 0 (double select, so no
    inf·0 = NaN reaches autograd)."""
    n = dev.numel() if dim is None else dev.shape[dim]
    divisor = n - 1 if unbiased and n > 1 else n
    var = (dev.square().sum() if dim is None else dev.square().sum(dim, keepdim=True)) / divisor
    spread = var > 0
    return where0(spread, torch.sqrt(torch.where(spread, var, torch.ones_like(var))))


@float32_for_half
def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, *, clip_low: float = 0.2, clip_high: float | None = None,
                dual_clip: float | None = None, mode: str = "token-mean",
                normalizer: float | None = None) -> torch.Tensor:
    """The token-level PPO/GRPO loss to MINIMISE: ``aggregate_loss(−clipped_surrogate(
    exp(logp − old_logp), A), mask, mode)``; ``advantages`` per token ``[B, T]`` or per
    sequence ``[B]``; masked tokens never read (verl ``compute_policy_loss``; Schulman et
    al. 2017)."""
    lp, old = tensors(logp=logp, old_logp=old_logp)
    if lp.dim() != 2:
        raise ValueError(f"logp must have shape [B, T], got {tuple(lp.shape)}")
    if lp.shape[-1] == 0:
        raise ValueError("logp has an empty last axis (T = 0)")
    (A,) = tensors(advantages=advantages)
    if A.dtype != lp.dtype or A.device != lp.device:
        raise TypeError(f"advantages must have logp's dtype and device ({lp.dtype}, "
                        f"{lp.device}), got {A.dtype} on {A.device}")
    if tuple(A.shape) == tuple(lp.shape[:-1]):
        A = A.unsqueeze(-1).expand_as(lp)
    elif A.shape != lp.shape:
        raise ValueError(f"advantages must have shape {tuple(lp.shape)} (per token) or "
                         f"{tuple(lp.shape[:-1])} (per sequence), got {tuple(A.shape)}")
    keep = mask_of(mask, lp)
    lo = number("clip_low", clip_low, minimum=0.0)
    hi = number("clip_high", clip_high if clip_high is not None else lo, minimum=0.0)
    c = number("dual_clip", dual_clip, minimum=1.0, strict=True, optional=True)
    finite({"logp": lp, "old_logp": old, "advantages": A}, keep)
    ratio = torch.exp(where0(keep, lp - old))  # masked tokens: never read (select, not ·0)
    per_token = -_clipped(ratio, where0(keep, A), lo, hi, c)  # ratio may overflow to inf
    return aggregate_loss(per_token, keep, mode, normalizer=normalizer)


@float32_for_half
def kl_shaped_rewards(rewards: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor, *,
                      beta: float, kind: str = "k1",
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """``r_t − β·k_t`` per token (KL in the reward; SPEC §7), 0 where masked (never read)."""
    from .divergences import KL_ESTIMATORS, _estimate

    if kind not in KL_ESTIMATORS:
        raise ValueError(f"kind must be one of {KL_ESTIMATORS}, got {kind!r}")
    r, lp, ref = tensors(rewards=rewards, logp=logp, ref_logp=ref_logp)
    beta = number("beta", beta, minimum=0.0)
    keep = mask_of(mask, r)
    finite({"rewards": r, "logp": lp, "ref_logp": ref}, keep)
    shaped = r - beta * _estimate(kind, where0(keep, ref - lp))
    return where0(keep, shaped)


def overlong_penalty(lengths: torch.Tensor, *, max_length: float,
                     cache_length: float) -> torch.Tensor:
    """DAPO's soft overlong punishment, elementwise (Yu et al. 2025, eq. 13): 0 up to
    ``L_max − L_cache``, ``((L_max − L_cache) − L)/L_cache`` up to ``L_max``, −1 beyond.
    Integer lengths give the default float dtype; float lengths keep theirs (float16 and
    bfloat16 computed in float32)."""
    if not isinstance(lengths, torch.Tensor):
        raise TypeError(f"lengths must be a torch.Tensor, got {type(lengths).__name__}")
    if lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must hold integers or real numbers, got {lengths.dtype}")
    out_dtype = lengths.dtype if lengths.is_floating_point() else torch.get_default_dtype()
    (L,) = tensors(lengths=lengths.to(torch.float32 if out_dtype in (torch.float16,
                                                                      torch.bfloat16)
                                      else out_dtype))
    top = number("max_length", max_length)
    cache = number("cache_length", cache_length, minimum=0.0, strict=True)
    if top < cache:
        raise ValueError(f"max_length must be >= cache_length, got {top:g} < {cache:g}")
    finite({"lengths": L})
    if checking() and bool((L < 0).any()):
        raise ValueError("lengths must be non-negative")
    start = top - cache
    ramp = (start - L) / cache
    out = torch.where(L <= start, torch.zeros_like(L), torch.where(L <= top, ramp,
                                                                    -torch.ones_like(L)))
    return out.to(out_dtype)


@float32_for_half
def cispo_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                    mask: torch.Tensor, *, clip_low: float, clip_high: float) -> torch.Tensor:
    """``sg(clip(r, 1 − ε_low, 1 + ε_high))·A·logp`` per token (MiniMax-M1, 2025): the clipped
    ratio is detached, so the gradient is ``clip(r)·A`` — nonzero where PPO-clip's is 0."""
    lp, old, A = tensors(logp=logp, old_logp=old_logp, advantages=advantages)
    lo = number("clip_low", clip_low, minimum=0.0)
    hi = number("clip_high", clip_high, minimum=0.0)
    keep = mask_of(mask, lp)
    finite({"logp": lp, "old_logp": old, "advantages": A}, keep)
    weight = torch.clamp(torch.exp(where0(keep, lp - old)), 1 - lo, 1 + hi).detach()
    return where0(keep, weight * A * lp)


def _sequence_advantages(lp: torch.Tensor, advantages: torch.Tensor,
                         per_token: bool) -> torch.Tensor:
    """Advantages per token ``[..., T]``: given per sequence ``[...]`` (broadcast over the
    tokens) or, if ``per_token``, already ``[..., T]``."""
    (A,) = tensors(advantages=advantages)
    if A.dtype != lp.dtype or A.device != lp.device:
        raise TypeError(f"advantages must have logp's dtype and device ({lp.dtype}, "
                        f"{lp.device}), got {A.dtype} on {A.device}")
    if tuple(A.shape) == tuple(lp.shape[:-1]):
        return A.unsqueeze(-1).expand_as(lp)
    if per_token and A.shape == lp.shape:
        return A
    forms = f"{tuple(lp.shape)} (per token) or " if per_token else ""
    raise ValueError(f"advantages must have shape {forms}{tuple(lp.shape[:-1])} (per "
                     f"sequence), got {tuple(A.shape)}")


def _gspo(logp, old_logp, advantages, mask, clip_low, clip_high, per_token):
    """(validated A, keep, the mean masked log-ratio per sequence [..., 1], ε_low, ε_high)."""
    lp, old = tensors(logp=logp, old_logp=old_logp)
    if lp.dim() == 0 or lp.shape[-1] == 0:
        raise ValueError(f"logp must have a non-empty token axis (the last), got shape "
                         f"{tuple(lp.shape)}")
    A = _sequence_advantages(lp, advantages, per_token)
    lo = number("clip_low", clip_low, minimum=0.0)
    hi = number("clip_high", clip_high if clip_high is not None else lo, minimum=0.0)
    keep = mask_of(mask, lp)
    finite({"logp": lp, "old_logp": old, "advantages": A}, keep)
    d = where0(keep, lp - old)
    mean = d.sum(-1, keepdim=True) / keep.sum(-1, keepdim=True).clamp(min=1).to(d.dtype)
    return lp, where0(keep, A), keep, mean, lo, hi


@float32_for_half
def gspo_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                   mask: torch.Tensor, *, clip_low: float,
                   clip_high: float | None = None) -> torch.Tensor:
    """GSPO (Zheng et al. 2025): per sequence ``min(s·A, clip(s, 1 − ε_low, 1 + ε_high)·A)``,
    ``s = exp(masked mean of logp − old_logp)``, on each of its response tokens (0 where
    masked); ``advantages`` per sequence ``[...]``. The gradient flows through s."""
    _, A, keep, mean, lo, hi = _gspo(logp, old_logp, advantages, mask, clip_low, clip_high,
                                     per_token=False)
    s = torch.exp(mean)
    return where0(keep, _clipped(s.expand_as(A), A, lo, hi, None))


@float32_for_half
def gspo_token_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                         mask: torch.Tensor, *, clip_low: float,
                         clip_high: float | None = None) -> torch.Tensor:
    """GSPO-token (Zheng et al. 2025, eq. 13): the token ratio ``s_t = sg[s]·π(y_t)/sg[π(y_t)]
    = exp(logp_t − sg[logp_t] + sg[log s])`` has the value s and the gradient ``s·∇logp_t``;
    ``advantages`` per token ``[..., T]`` or per sequence ``[...]``; 0 where masked."""
    lp, A, keep, mean, lo, hi = _gspo(logp, old_logp, advantages, mask, clip_low, clip_high,
                                      per_token=True)
    s_t = torch.exp(where0(keep, lp - lp.detach()) + mean.detach())
    return where0(keep, _clipped(s_t, A, lo, hi, None))


@float32_for_half
def remax_advantages(rewards: torch.Tensor, greedy_rewards: torch.Tensor) -> torch.Tensor:
    """ReMax (Li et al. 2024): ``r − r_greedy`` elementwise."""
    r, g = tensors(rewards=rewards, greedy_rewards=greedy_rewards)
    finite({"rewards": r, "greedy_rewards": g})
    return r - g
