"""Known mistakes of the token-level policy loss, the off-policy returns (SPEC §6) and the
language-model objectives (SPEC §7): the second half of the catalogue of
:mod:`refmath.checks.mutants` (which imports this module, so the catalogue is whole)."""

from __future__ import annotations

import torch

import refmath_torch as rt

from .mutants import _last_present, mutant

__all__: list[str] = []


# --- OpenRLHF 0.11.0 (openrlhf/models/utils.py compute_approx_kl), in its own layout ----------

@mutant("kl_estimate", "kl_estimate.float32",
        "OpenRLHF-style KL direction swapped: log_ratio = log_probs_base − log_probs (the "
        "estimators of KL(π_ref‖π), not KL(π‖π_ref))", layout="openrlhf")
def openrlhf_kl_direction_swapped(log_probs, log_probs_base, kl_estimator="k1"):
    log_ratio = log_probs_base.float() - log_probs.float()
    if kl_estimator == "k2":
        log_ratio = log_ratio**2 / 2.0
    elif kl_estimator == "k3":
        log_ratio = (-log_ratio).exp() - 1 + log_ratio
    return log_ratio.clamp(min=-10, max=10)


# --- the token-level policy loss ------------------------------------------------------------

@mutant("policy_loss", "policy_loss.float64",
        "padding in the mean: token-mean divides by every position B·T, response tokens or "
        "not (the loss shrinks with the padding)")
def policy_loss_padding_in_mean(logp, old_logp, advantages, mask, *, mode="token-mean",
                                **kw):
    if mode != "token-mean":
        return rt.policy_loss(logp, old_logp, advantages, mask, mode=mode, **kw)
    total = rt.policy_loss(logp, old_logp, advantages, mask, mode="token-mean", **kw)
    return total * mask.sum() / mask.numel()


@mutant("policy_loss", "policy_loss.float64",
        "length-biased aggregation: seq-mean-token-mean computed as token-mean, one sum over "
        "the batch's response tokens ÷ their count ((loss·mask).sum() / mask.sum(); "
        "huggingface/trl#2995, verl-project/verl#593)")
def policy_loss_length_biased(logp, old_logp, advantages, mask, *, mode="token-mean", **kw):
    if mode == "seq-mean-token-mean":
        mode = "token-mean"
    return rt.policy_loss(logp, old_logp, advantages, mask, mode=mode, **kw)


@mutant("policy_loss", "policy_loss.float64",
        "the surrogate objective returned instead of the loss: + where a loss to minimise "
        "needs −")
def policy_loss_not_negated(logp, old_logp, advantages, mask, **kw):
    return -rt.policy_loss(logp, old_logp, advantages, mask, **kw)


@mutant("policy_loss", "policy_loss.float64", "verl-style padding in the mean: the masked "
        "token-mean over (loss·mask).sum() / numel", layout="verl")
def verl_loss_padding_in_mean(old_log_prob, log_prob, advantages, response_mask,
                              cliprange=None, cliprange_low=None, cliprange_high=None,
                              clip_ratio_c=3.0, loss_agg_mode="token-mean"):
    low = cliprange if cliprange_low is None else cliprange_low
    high = cliprange if cliprange_high is None else cliprange_high
    ratio = torch.exp(torch.clamp(log_prob - old_log_prob, -20.0, 20.0))
    losses = torch.maximum(-advantages * ratio,
                           -advantages * torch.clamp(ratio, 1 - low, 1 + high))
    losses = torch.where(advantages < 0, torch.minimum(-advantages * clip_ratio_c, losses),
                         losses)
    kept = torch.where(response_mask.bool(), losses, torch.zeros_like(losses))
    if loss_agg_mode == "token-mean":
        return kept.sum() / kept.numel()
    rows = response_mask.sum(-1) > 0
    sums = kept.sum(-1)
    if loss_agg_mode == "seq-mean-token-sum-norm":
        return sums.sum() / response_mask.shape[-1]
    if loss_agg_mode == "seq-mean-token-sum":
        return sums[rows].mean()
    return (sums / response_mask.sum(-1).clamp(min=1))[rows].mean()


# --- off-policy returns (SPEC §6) ---------------------------------------------------------------

def _pg_weight(log_rhos, kw):
    """min(pg_rho_clip, ρ): V-trace's policy-gradient weight, for the mutants that rebuild
    the advantage."""
    rho = torch.exp(log_rhos) if log_rhos is not None else kw["rhos"]
    clip = kw.get("pg_rho_clip", 1.0)
    return rho if clip is None else rho.clamp(max=clip)


@mutant("vtrace", "vtrace.float64", "the trace c clipped with ρ̄ (rho_clip) instead of c̄ "
        "(c_clip)")
def vtrace_c_clipped_with_rho_bar(rewards, values, next_values, log_rhos=None, **kw):
    kw["c_clip"] = kw.get("rho_clip", 1.0)
    return rt.vtrace(rewards, values, next_values, log_rhos, **kw)


@mutant("vtrace", "vtrace.float64", "ρ̄ and c̄ swapped: the TD term clipped with c̄ "
        "(c_clip) and the trace with ρ̄ (rho_clip)")
def vtrace_clips_swapped(rewards, values, next_values, log_rhos=None, **kw):
    kw["rho_clip"], kw["c_clip"] = kw.get("c_clip", 1.0), kw.get("rho_clip", 1.0)
    return rt.vtrace(rewards, values, next_values, log_rhos, **kw)


@mutant("vtrace", "vtrace.float64", "a clip of None (no clip) read as the default 1.0 "
        "(`rho_clip or 1.0`): ratios above 1 are clipped where SPEC asks for none")
def vtrace_no_clip_as_one(rewards, values, next_values, log_rhos=None, **kw):
    for clip in ("rho_clip", "c_clip", "pg_rho_clip"):
        kw[clip] = kw.get(clip) or 1.0
    return rt.vtrace(rewards, values, next_values, log_rhos, **kw)


@mutant("vtrace", "vtrace.float64", "λ missing from the trace: c_t = min(c̄, ρ_t)")
def vtrace_lambda_missing(rewards, values, next_values, log_rhos=None, **kw):
    kw["lam"] = 1.0
    return rt.vtrace(rewards, values, next_values, log_rhos, **kw)


@mutant("vtrace", "vtrace.float64", "the unclipped ρ in the TD term δ_t (ρ̄ not applied)")
def vtrace_unclipped_rho(rewards, values, next_values, log_rhos=None, **kw):
    kw["rho_clip"] = None
    return rt.vtrace(rewards, values, next_values, log_rhos, **kw)


@mutant("vtrace", "vtrace.float64", "the log-ratio sign flipped: log μ − log π (ρ = μ/π)")
def vtrace_log_ratio_flipped(rewards, values, next_values, log_rhos=None, **kw):
    if log_rhos is not None:
        return rt.vtrace(rewards, values, next_values, -log_rhos, **kw)
    kw["rhos"] = 1 / kw["rhos"].clamp(min=1e-300)
    return rt.vtrace(rewards, values, next_values, **kw)


@mutant("vtrace", "vtrace.float64", "the policy-gradient advantage built from V' instead of "
        "vs: min(ρ̄_pg, ρ)·δ_t, the one-step TD error")
def vtrace_pg_from_values(rewards, values, next_values, log_rhos=None, **kw):
    vs, _ = rt.vtrace(rewards, values, next_values, log_rhos, **kw)
    weight = _pg_weight(log_rhos, kw)
    delta = rt.td_errors(rewards, values, next_values, gamma=kw["gamma"],
                         terminated=kw.get("terminated"))
    keep = kw.get("mask")
    pg = weight * delta
    return vs, pg if keep is None else torch.where(keep, pg, torch.zeros_like(pg))


@mutant("vtrace", "vtrace.float64", "the last step not bootstrapped: the bootstrap value "
        "V(s_T) after the row's last step dropped (taken as 0) though the episode goes on")
def vtrace_last_step_not_bootstrapped(rewards, values, next_values, log_rhos=None, **kw):
    last = _last_present(rewards, kw.get("mask"))
    nv = torch.where(last, torch.zeros_like(next_values), next_values)
    return rt.vtrace(rewards, values, nv, log_rhos, **kw)


@mutant("off_policy_q_targets", "off_policy_q_targets.float64",
        "the trace indexed at t instead of t+1: G_t = r_t + γ(E_t + c_t·(G_{t+1} − Q_{t+1}))")
def q_trace_index_shifted(rewards, q_values, next_expected_q, traces, **kw):
    shifted = torch.cat([traces[..., :1], traces[..., :-1]], dim=-1)
    return rt.off_policy_q_targets(rewards, q_values, next_expected_q, shifted, **kw)


@mutant("vtrace", "vtrace.float64", "at a truncation the advantage bootstraps from vs_{t+1}, "
        "the NEXT episode's first target, instead of V'_t (the cut state's value)")
def vtrace_bootstrap_across_truncation(rewards, values, next_values, log_rhos=None, **kw):
    vs, pg = rt.vtrace(rewards, values, next_values, log_rhos, **kw)
    truncated = kw.get("truncated")
    if truncated is None:
        return vs, pg
    weight = _pg_weight(log_rhos, kw)
    following = torch.cat([vs[..., 1:], next_values[..., -1:]], dim=-1)
    wrong = weight * (rewards + kw["gamma"] * following - values)
    cut = truncated.clone()
    cut[..., -1] = False
    return vs, torch.where(cut, wrong, pg)


@mutant("trace_coefficients", "trace_coefficients.float64",
        "Retrace's trace without λ: c_t = min(1, ρ_t) (λ dropped from the product)")
def retrace_without_lambda(method, *, lam, log_rhos=None, pi_probs=None, rhos=None):
    return rt.trace_coefficients(method, lam=1.0 if method == "retrace" else lam,
                                 log_rhos=log_rhos, pi_probs=pi_probs, rhos=rhos)


@mutant("trace_coefficients", "trace_coefficients.float64",
        "Retrace's trace with the ratio dropped: c_t = λ (Q(λ)'s trace, unsafe off-policy)")
def retrace_ratio_dropped(method, *, lam, log_rhos=None, pi_probs=None, rhos=None):
    if method == "retrace":
        method = "q_lambda"
    return rt.trace_coefficients(method, lam=lam, log_rhos=log_rhos, pi_probs=pi_probs,
                                 rhos=rhos)


@mutant("vtrace", "vtrace.float64", "the policy-gradient advantage bootstrapped from vs_t, "
        "the step's own target, instead of vs_{t+1}: min(ρ̄_pg, ρ)·(r + γ·vs_t − V)")
def vtrace_pg_from_own_target(rewards, values, next_values, log_rhos=None, *, gamma,
                              lam=1.0, rho_clip=1.0, c_clip=1.0, pg_rho_clip=1.0,
                              terminated=None, truncated=None, mask=None, rhos=None):
    vs, _ = rt.vtrace(rewards, values, next_values, log_rhos, gamma=gamma, lam=lam,
                      rho_clip=rho_clip, c_clip=c_clip, pg_rho_clip=pg_rho_clip,
                      terminated=terminated, truncated=truncated, mask=mask, rhos=rhos)
    rho = rhos if rhos is not None else torch.exp(log_rhos)
    weight = rho if pg_rho_clip is None else torch.clamp(rho, max=pg_rho_clip)
    alive = 1.0 if terminated is None else (~terminated).to(rewards.dtype)
    pg = weight * (rewards + gamma * alive * vs - values)
    return vs, (pg if mask is None else torch.where(mask, pg, torch.zeros_like(pg)))


# --- language-model objectives (SPEC §7) ------------------------------------------------------

@mutant("importance_weighted_kl_estimate", "importance_weighted_kl_estimate.float64",
        "the ratio weight missing from the off-policy KL: k alone on samples from π_old")
def iw_kl_without_ratio(logp, ref_logp, old_logp, kind):
    return rt.kl_estimate(logp, ref_logp, kind)


@mutant("importance_weighted_kl_estimate", "importance_weighted_kl_estimate.float64",
        "the off-policy KL weighted by the SEQUENCE's ratio, exp(mean_t(logp − old_logp)), "
        "broadcast over its tokens, instead of each token's own exp(logp_t − old_logp_t) "
        "(huggingface/trl#6594: coef_1 at importance_sampling_level='sequence')")
def iw_kl_sequence_ratio(logp, ref_logp, old_logp, kind):
    weight = torch.exp((logp - old_logp).mean(-1, keepdim=True))
    return weight * rt.kl_estimate(logp, ref_logp, kind)


@mutant("overlong_penalty", "overlong_penalty.float64",
        "the overlong penalty off by the cache window: the ramp starts at L_max, not "
        "L_max − L_cache")
def overlong_from_max_length(lengths, *, max_length, cache_length):
    return rt.overlong_penalty(lengths, max_length=max_length + cache_length,
                               cache_length=cache_length).clamp(min=-1.0)


@mutant("overlong_penalty", "overlong_penalty.float64",
        "the overlong penalty not capped: the ramp ((L_max − L_cache) − L)/L_cache continues "
        "below −1 beyond L_max")
def overlong_not_capped(lengths, *, max_length, cache_length):
    start = max_length - cache_length
    ramp = (start - lengths) / cache_length
    return torch.where(lengths > start, ramp, torch.zeros_like(ramp))


@mutant("cispo_surrogate", "cispo_surrogate.gradient",
        "CISPO's clipped weight left on the gradient path (not detached): the clip's own "
        "derivative leaks in, and clipped tokens lose the weight's stop-gradient")
def cispo_weight_not_detached(logp, old_logp, advantages, mask, *, clip_low, clip_high):
    keep = mask.bool()
    weight = torch.clamp(torch.exp(torch.where(keep, logp - old_logp, torch.zeros_like(logp))),
                         1 - clip_low, 1 + clip_high)
    return torch.where(keep, weight * advantages * logp, torch.zeros_like(logp))


@mutant("rollout_correction", "rollout_correction.no_gradient",
        "the TIS weight not stop-gradiented: min(exp(logp − rollout_logp), C) left on the "
        "gradient path, so the correction also rescales the policy gradient's direction")
def tis_weight_not_detached(logp, rollout_logp, mask, *, level="token", mode="truncate",
                            low=None, high=2.0):
    keep = mask.bool()
    d = torch.where(keep, logp - rollout_logp, torch.zeros_like(logp))
    if level == "sequence":
        d = d.sum(-1, keepdim=True).expand_as(d)
    return torch.where(keep, _weight_rule(torch.exp(d), mode, low, high), torch.zeros_like(d))


def _weight_rule(w, mode, low, high):
    """SPEC's rule on a rollout-correction weight: TIS ``min(w, high)``; MIS ``w`` inside
    ``[low, high]`` (low defaults to 0), else 0."""
    lo = 0.0 if low is None else low
    return torch.clamp(w, max=high) if mode == "truncate" else torch.where(
        (w >= lo) & (w <= high), w, torch.zeros_like(w))


@mutant("cispo_surrogate", "cispo_surrogate.float64", "CISPO's clip on the wrong side: "
        "the bounds swapped, clip(r, 1 − ε_high, 1 + ε_low)")
def cispo_clip_bounds_swapped(logp, old_logp, advantages, mask, *, clip_low, clip_high):
    return rt.cispo_surrogate(logp, old_logp, advantages, mask, clip_low=clip_high,
                              clip_high=clip_low)


@mutant("rollout_correction", "rollout_correction.float64", "the weight from the wrong "
        "log-probabilities: exp(rollout_logp − logp), the engine's over the trainer's, where "
        "π_θ/π_rollout is meant")
def rollout_ratio_inverted(logp, rollout_logp, mask, **kw):
    return rt.rollout_correction(rollout_logp, logp, mask, **kw)


@mutant("rollout_correction", "rollout_correction.float64", "the sequence-level weight from the "
        "MEAN token log-ratio (a geometric mean, GSPO's ratio) where the product of the token "
        "ratios, exp(Σ_t (logp_t − rollout_logp_t)), is meant")
def rollout_sequence_weight_from_mean(logp, rollout_logp, mask, *, level="token",
                                      mode="truncate", low=None, high=2.0):
    if level != "sequence":
        return rt.rollout_correction(logp, rollout_logp, mask, level=level, mode=mode, low=low,
                                     high=high)
    keep = mask.bool()
    d = torch.where(keep, logp - rollout_logp, torch.zeros_like(logp))
    w = torch.exp(d.sum(-1, keepdim=True) / keep.sum(-1, keepdim=True).clamp(min=1))
    w = _weight_rule(w.expand_as(d), mode, low, high)
    return torch.where(keep, w, torch.zeros_like(w)).detach()


def _masked_mean_log_ratio(logp, old_logp, mask):
    keep = mask.bool()
    d = torch.where(keep, logp - old_logp, torch.zeros_like(logp))
    return d.sum(-1, keepdim=True), keep.sum(-1, keepdim=True).clamp(min=1).to(d.dtype), keep


def _gspo_clipped(s, advantages, keep, clip_low, clip_high):
    """GSPO's per-token ``min(s·A, clip(s, 1 − ε_low, 1 + ε_high)·A)`` (0 where masked),
    ``advantages`` per token or per sequence, for the mutants that rebuild the ratio s."""
    hi = clip_low if clip_high is None else clip_high
    A = advantages if advantages.shape == s.shape else advantages.unsqueeze(-1).expand_as(s)
    out = torch.minimum(s * A, torch.clamp(s, 1 - clip_low, 1 + hi) * A)
    return torch.where(keep, out, torch.zeros_like(out))


@mutant("gspo_surrogate", "gspo_surrogate.float64",
        "GSPO's sequence ratio from the SUM of the token log-ratios (the plain product of "
        "ratios) instead of their mean: its length normalisation lost")
def gspo_ratio_from_sum(logp, old_logp, advantages, mask, *, clip_low, clip_high=None):
    total, _, keep = _masked_mean_log_ratio(logp, old_logp, mask)
    return _gspo_clipped(torch.exp(total).expand_as(logp), advantages, keep, clip_low,
                         clip_high)


@mutant("gspo_token_surrogate", "gspo_token_surrogate.gradient",
        "GSPO-token's sequence ratio left on the gradient path (no sg[s]): each token's "
        "gradient becomes s·A_t/|y| summed over the sequence instead of s·A_t")
def gspo_token_ratio_not_detached(logp, old_logp, advantages, mask, *, clip_low,
                                  clip_high=None):
    total, n, keep = _masked_mean_log_ratio(logp, old_logp, mask)
    return _gspo_clipped(torch.exp(total / n).expand_as(logp), advantages, keep, clip_low,
                         clip_high)


@mutant("gspo_token_surrogate", "gspo_token_surrogate.gradient",
        "GSPO-token's s_t = sg[s]·π_t/sg[π_t] with the sg on s forgotten (verl's "
        "log_prob − log_prob.detach() + seq_log_ratio.detach() without the second detach): "
        "each token's gradient is s·A_t plus its sequence's Σ s·A/|y|")
def gspo_token_sequence_not_stopped(logp, old_logp, advantages, mask, *, clip_low,
                                    clip_high=None):
    total, n, keep = _masked_mean_log_ratio(logp, old_logp, mask)
    s = torch.exp(total / n + (logp - logp.detach()))  # sg[s] missing
    return _gspo_clipped(s, advantages, keep, clip_low, clip_high)


@mutant("split_aggregate_loss", "split_aggregate_loss.float64",
        "each micro-batch normalised by its own token (or sequence) count and the results "
        "averaged over the micro-batches (loss / grad_accum_steps): not the full-batch loss "
        "unless every micro-batch has the same count")
def micro_batches_self_normalised(per_step_loss, mask, mode, *, splits, normalizer=None):
    parts = []
    chunks = list(zip(torch.split(per_step_loss, splits), torch.split(mask, splits)))
    for loss, m in chunks:
        if m.numel() == 0 or not m.bool().any():
            parts.append(per_step_loss.new_zeros(()))
        else:
            parts.append(rt.aggregate_loss(loss, m, mode, normalizer=normalizer) / len(chunks))
    return torch.stack(parts)


@mutant("group_advantages", "group_advantages.float64",
        "REINFORCE++-baseline whitened within each group (GRPO's normalisation) instead of "
        "over the whole batch")
def reinforce_pp_whitened_per_group(rewards, *, method, eps=1e-6, unbiased=True):
    if method == "reinforce_pp":
        return rt.group_advantages(rewards, method="grpo", eps=eps, unbiased=unbiased)
    return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)


@mutant("group_advantages", "group_advantages.float64",
        "GRPO's mean taken over the whole batch (every prompt's samples) instead of each "
        "prompt's group")
def grpo_mean_over_batch(rewards, *, method, eps=1e-6, unbiased=True):
    G = rewards.shape[-1]
    if method != "grpo" or G < 2:
        return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)
    std = rewards.std(-1, keepdim=True, unbiased=unbiased)
    return (rewards - rewards.mean()) / (std + eps)


@mutant("group_advantages", "group_advantages.float64",
        "GRPO's std taken over the whole batch (TRL's scale_rewards='batch') where each "
        "prompt's group std is asked for")
def grpo_std_over_batch(rewards, *, method, eps=1e-6, unbiased=True):
    if method == "grpo" and rewards.shape[-1] > 1:
        method = "batch_std"
    return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)


@mutant("group_advantages", "group_advantages.float64",
        "REINFORCE++ whitened over the batch without subtracting each group's mean first "
        "(REINFORCE++ without its baseline)")
def reinforce_pp_without_group_mean(rewards, *, method, eps=1e-6, unbiased=True):
    if method != "reinforce_pp" or rewards.numel() < 2:
        return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)
    return (rewards - rewards.mean()) / (rewards.std(unbiased=unbiased) + eps)


# --- VAPO's length-adaptive GAE (Yue et al. 2025) ----------------------------------------------

def _one_lambda(rewards, values, next_values, mask, lam, *, gamma=1.0, terminated=None,
                truncated=None):
    """gae row by row, every row with the same λ (a slow reference for the mutants below)."""
    T = rewards.shape[-1]
    rows = []
    flat = [x.reshape(-1, T) if x is not None else None
            for x in (rewards, values, next_values, mask, terminated, truncated)]
    for i in range(flat[0].shape[0]):
        r, v, nv, m, term, trunc = (None if x is None else x[i:i + 1] for x in flat)
        rows.append(rt.gae(r, v, nv, gamma=gamma, lam=lam, terminated=term, truncated=trunc,
                           mask=m))
    return torch.cat(rows).reshape(rewards.shape)


def _lam(alpha, l):
    return 1 - 1 / (alpha * l) if alpha * l > 1 else 0.0


@mutant("length_adaptive_gae", "length_adaptive_gae.float64",
        "the response length l counted over every position of the row (padding included, "
        "l = T) instead of the response tokens (the mask's sum)")
def vapo_length_with_padding(rewards, values, next_values, mask, *, alpha, **kw):
    return _one_lambda(rewards, values, next_values, mask, _lam(alpha, rewards.shape[-1]), **kw)


@mutant("length_adaptive_gae", "length_adaptive_gae.float64",
        "one λ for the whole batch, from the mean response length, instead of one per "
        "sequence")
def vapo_lambda_from_mean_length(rewards, values, next_values, mask, *, alpha, **kw):
    mean_l = float(mask.reshape(-1, rewards.shape[-1]).sum(-1).double().mean())
    return _one_lambda(rewards, values, next_values, mask, _lam(alpha, mean_l), **kw)


# --- thresholds written at the wrong place -----------------------------------------------------

@mutant("rollout_correction", "rollout_correction.float64",
        "MIS's bounds exclusive (low < w < high): a weight exactly on a bound is dropped, "
        "where SPEC keeps it (low ≤ w ≤ high)")
def rollout_bounds_exclusive(logp, rollout_logp, mask, *, level="token", mode="truncate",
                             low=None, high=2.0):
    if mode != "mask":
        return rt.rollout_correction(logp, rollout_logp, mask, level=level, mode=mode,
                                     low=low, high=high)
    keep = mask.bool()
    d = torch.where(keep, logp - rollout_logp, torch.zeros_like(logp))
    if level == "sequence":
        d = d.sum(-1, keepdim=True).expand_as(logp)
    w = torch.exp(d)
    inside = (w > (0.0 if low is None else low)) & (w < high)
    return torch.where(keep & inside, w, torch.zeros_like(w)).detach()


@mutant("truncated_importance_weight", "truncated_importance_weight.float64",
        "the ratio clipped to [1/cap, cap] (both sides, as PPO clips) instead of truncated "
        "above only: min(r, cap)")
def truncation_clipped_below(ratio, cap):
    return torch.clamp(ratio, min=1 / cap, max=cap)


# --- verl's GRPO outcome advantage, in its own layout -------------------------------------------

@mutant("group_advantages", "group_advantages.float64",
        "verl-style GRPO groups taken as contiguous runs of G responses, the index ignored "
        "(right only when a prompt's responses happen to be adjacent)", layout="verl")
def verl_grpo_groups_by_position(token_level_rewards, response_mask, index, epsilon=1e-6,
                                 norm_adv_by_std_in_grpo=True):
    import numpy as np

    scores = token_level_rewards.sum(dim=-1)
    G = int(np.bincount(np.asarray(index)).max())
    grouped = scores.reshape(-1, G)
    centered = grouped - grouped.mean(-1, keepdim=True)
    if norm_adv_by_std_in_grpo:
        centered = centered / (grouped.std(-1, keepdim=True) + epsilon)
    out = centered.reshape(-1).unsqueeze(-1) * response_mask
    return out, out


# --- TRL's GRPO advantages (scale_rewards), in its own layout ------------------------------------

@mutant("group_advantages", "group_advantages.float64",
        "TRL-style scale_rewards='batch' dividing by each group's std instead of the batch's "
        "(the 'batch' scaling silently the 'group' one)", layout="trl")
def trl_batch_scaled_by_group_std(rewards, num_generations, scale_rewards="group"):
    grouped = rewards.view(-1, num_generations)
    advantages = rewards - grouped.mean(dim=1).repeat_interleave(num_generations, dim=0)
    if scale_rewards == "none":
        return advantages
    std = grouped.std(dim=1).repeat_interleave(num_generations, dim=0)
    return advantages / (std + 1e-4)


@mutant("policy_loss", "policy_loss.float64",
        "TRL-style grpo loss averaged over the non-empty completions only: TRL's mean counts "
        "every row, a completion emptied by mask_truncated_completions too", layout="trl")
def trl_grpo_empty_rows_left_out(per_token_logps, old_per_token_logps, advantages,
                                 completion_mask, epsilon_low, epsilon_high, loss_type,
                                 max_completion_length):
    coef_1 = torch.exp(per_token_logps - old_per_token_logps)
    coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
    a = advantages.unsqueeze(1)
    per_token = -torch.min(coef_1 * a, coef_2 * a) * completion_mask
    if loss_type == "bnpo":
        return per_token.sum() / completion_mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        return per_token.sum() / (per_token.size(0) * max_completion_length)
    rows = completion_mask.sum(-1) > 0
    return (per_token.sum(-1)[rows] / completion_mask.sum(-1)[rows]).mean()


@mutant("gspo_surrogate", "gspo_surrogate.float64",
        "TRL-style sequence-level ratio from the SUM of the token log-ratios (the product of "
        "the ratios) instead of their masked mean", layout="trl")
def trl_gspo_ratio_from_sum(per_token_logps, old_per_token_logps, advantages, completion_mask,
                            epsilon_low, epsilon_high, loss_type, max_completion_length,
                            importance_sampling_level="sequence"):
    summed = ((per_token_logps - old_per_token_logps) * completion_mask).sum(-1)
    coef_1 = torch.exp(summed).unsqueeze(-1)
    coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
    a = advantages.unsqueeze(1)
    per_token = -torch.min(coef_1 * a, coef_2 * a) * completion_mask
    return (per_token.sum(-1) / completion_mask.sum(-1).clamp(min=1.0)).mean()


# --- OpenRLHF's REINFORCE++-baseline, in its own layout ----------------------------------------

def _openrlhf_returns(rewards, action_mask, n_samples_per_prompt):
    """r − group mean on the last action token, γ = 1 returns over the action tokens."""
    r = rewards.reshape(-1, n_samples_per_prompt)
    r = (r - r.mean(-1, keepdim=True)).reshape(-1)
    eos = action_mask.size(1) - 1 - action_mask.long().fliplr().argmax(dim=1, keepdim=True)
    last = torch.zeros(action_mask.shape, dtype=r.dtype).scatter_(1, eos, r[:, None])
    return last.flip(-1).cumsum(-1).flip(-1) * action_mask


@mutant("group_advantages", "group_advantages.float64",
        "OpenRLHF-style REINFORCE++-baseline whitened over every position of the [B, T] "
        "tensor, padding included (mean/var of the padded tensor, not of the action tokens)",
        layout="openrlhf")
def openrlhf_whitening_over_padding(rewards, action_mask, n_samples_per_prompt):
    returns = _openrlhf_returns(rewards, action_mask, n_samples_per_prompt)
    flat = returns.flatten().float()
    return (returns - flat.mean()) * flat.var(unbiased=False).clamp(min=1e-8).rsqrt()


@mutant("group_advantages", "group_advantages.float64",
        "OpenRLHF-style REINFORCE++-baseline whitened per completion (each counted once), "
        "where OpenRLHF whitens over the action tokens (a completion weighted by its length)",
        layout="openrlhf")
def openrlhf_whitening_per_completion(rewards, action_mask, n_samples_per_prompt):
    returns = _openrlhf_returns(rewards, action_mask, n_samples_per_prompt)
    per = returns[:, :1].float()
    mean, var = per.mean(), per.var(unbiased=False)
    return (returns - mean) * var.clamp(min=1e-8).rsqrt() * action_mask


# --- OpenRLHF's PolicyLoss (an nn.Module built from the options), in its own layout -----------

class OpenRLHFDualClipEverywhere(torch.nn.Module):
    """OpenRLHF-style PolicyLoss whose dual clip bounds positive advantages too."""

    def __init__(self, clip_eps_low=0.2, clip_eps_high=0.2, dual_clip=None,
                 token_level_loss=True):
        super().__init__()
        self.low, self.high, self.c, self.token = (clip_eps_low, clip_eps_high, dual_clip,
                                                   token_level_loss)

    def forward(self, log_probs, old_log_probs, advantages, action_mask=None):
        ratio = (log_probs - old_log_probs).clamp(min=-20.0, max=20.0).exp()
        clip1 = torch.min(ratio * advantages,
                          ratio.clamp(1 - self.low, 1 + self.high) * advantages)
        loss = -clip1 if self.c is None else -torch.max(clip1, self.c * advantages)
        if self.token:
            return (loss * action_mask).sum() / action_mask.sum()
        counts = action_mask.sum(-1)
        rows = (counts > 0).to(loss.dtype)
        return ((loss * action_mask).sum(-1) / (counts + 1e-8) * rows).sum() / rows.sum()


mutant("policy_loss", "policy_loss.float64",
       "OpenRLHF-style dual clip applied to positive advantages too: max(min(r·A, clip·A), "
       "c·A) for every A, where dual-clip PPO bounds only A < 0", layout="openrlhf"
       )(OpenRLHFDualClipEverywhere)


# --- KL in the reward and ReMax ------------------------------------------------------------------

@mutant("kl_shaped_rewards", "kl_shaped_rewards.float64",
        "the KL penalty added instead of subtracted: r_t + β·k_t")
def kl_penalty_added(rewards, logp, ref_logp, *, beta, kind="k1", mask=None):
    out = rewards + beta * rt.kl_estimate(logp, ref_logp, kind)
    return out if mask is None else torch.where(mask, out, torch.zeros_like(out))


@mutant("kl_shaped_rewards", "kl_shaped_rewards.float64",
        "the KL direction swapped in the reward: log r = logp − ref_logp (KL(π_ref‖π)'s "
        "estimators)")
def kl_shaped_direction_swapped(rewards, logp, ref_logp, *, beta, kind="k1", mask=None):
    return rt.kl_shaped_rewards(rewards, ref_logp, logp, beta=beta, kind=kind, mask=mask)


@mutant("remax_advantages", "remax_advantages.float64",
        "ReMax's baseline subtracted the wrong way round: r_greedy − r")
def remax_reversed(rewards, greedy_rewards):
    return rt.remax_advantages(greedy_rewards, rewards)
