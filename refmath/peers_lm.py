"""Adapters for the language-model objectives of verl and TRL (SPEC §7), used by
:mod:`refmath.peers`. Each calls the library's own code, unmodified, and exposes it with
SPEC's signature; where a library returns an aggregated loss, each token's term is read off
a call in which only that token has a nonzero advantage (``token-sum``/``seq-mean-token-sum``
aggregation of one sequence: the loss IS that term), so values and gradients are the
library's own."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any, Callable

__all__ = ["verl_lm", "trl_grpo_loss", "trl_sequence_grpo", "trl_rollout_correction",
           "openrlhf_models_utils"]


def _per_token(loss_of: Callable[[Any, Any], Any], logp, advantages, mask):
    """out[b, t] = the library's objective for token t of row b alone: ``loss_of(b, A)``
    with A one-hot at (b, t) (times the token's advantage), negated (losses → objectives)."""
    import torch

    A = advantages if advantages.shape == logp.shape else advantages.unsqueeze(-1).expand_as(
        logp)
    out = torch.zeros_like(logp)
    parts = {}
    for b, t in mask.nonzero().tolist():
        one = torch.zeros_like(A[b:b + 1])
        one[0, t] = A[b, t]
        parts[b, t] = -loss_of(b, one)
    if not parts:
        return out
    rows, cols = zip(*parts)
    return out.index_put((torch.tensor(rows), torch.tensor(cols)), torch.stack(list(
        parts.values())))


def _verl_config(clip_low, clip_high):
    from verl.workers.config import ActorConfig

    hi = clip_low if clip_high is None else clip_high
    return ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1,
                       clip_ratio=clip_low, clip_ratio_low=clip_low, clip_ratio_high=hi)


def verl_lm(name: str) -> Callable[[], Callable]:
    """verl 0.9's §7 functions (``core_algos``, ``rollout_corr_helper``) in SPEC's
    signatures."""

    def make() -> Callable:
        import torch
        from verl.trainer.ppo import core_algos as ca
        from verl.trainer.ppo import rollout_corr_helper as rc

        def gspo_token_surrogate(logp, old_logp, advantages, mask, *, clip_low,
                                 clip_high=None):
            config = _verl_config(clip_low, clip_high)
            m = mask.to(logp.dtype)
            return _per_token(lambda b, A: ca.compute_policy_loss_gspo(
                old_logp[b:b + 1], logp[b:b + 1], A, m[b:b + 1], "seq-mean-token-sum",
                config)[0], logp, advantages, mask)

        def cispo_surrogate(logp, old_logp, advantages, mask, *, clip_low, clip_high):
            config = _verl_config(clip_low, clip_high)
            m = mask.to(logp.dtype)
            return _per_token(lambda b, A: ca.compute_policy_loss_cispo(
                old_logp[b:b + 1], logp[b:b + 1], A, m[b:b + 1], "seq-mean-token-sum",
                config)[0], logp, advantages, mask)

        def rollout_correction(logp, rollout_logp, mask, *, level="token", mode="truncate",
                               low=None, high=2.0):
            # IcePop's "lower_upper" needs lower > 0: w ≥ 5e-324 keeps every w > 0, as low = 0
            if not bool(mask.any()):  # verl raises on a batch without a response token
                return torch.zeros_like(logp)
            spec = high if mode == "truncate" else f"{low or 5e-324}_{high}"
            w, _ = rc.compute_rollout_correction_weights(logp - rollout_logp, mask.to(
                logp.dtype), rollout_is=level, rollout_is_threshold=spec)
            return w

        def split_aggregate_loss(per_step_loss, mask, mode, *, splits, normalizer=None):
            """agg_loss per micro-batch with the global counts verl's trainer passes
            (``batch_num_tokens``, ``global_batch_size``; dp_size 1)."""
            m = mask.to(per_step_loss.dtype)
            tokens = m.sum()
            sequences = (m.sum(-1) > 0).sum()
            kw = {"loss_scale_factor": normalizer} if normalizer is not None else {}
            parts = [ca.agg_loss(loss, mb, mode, batch_num_tokens=tokens,
                                 global_batch_size=sequences, **kw)
                     for loss, mb in zip(torch.split(per_step_loss, splits),
                                         torch.split(m, splits))]
            return torch.stack(parts)

        def remax_advantages(rewards, greedy_rewards):
            """compute_remax_outcome_advantage on responses of one token (the outcome reward
            at the last token: its reward-to-go is the reward itself)."""
            flat, base = rewards.reshape(-1, 1), greedy_rewards.reshape(-1)
            adv, _ = ca.compute_remax_outcome_advantage(flat, base, torch.ones_like(flat))
            return adv.reshape(rewards.shape)

        return {"gspo_token_surrogate": gspo_token_surrogate,
                "cispo_surrogate": cispo_surrogate, "rollout_correction": rollout_correction,
                "split_aggregate_loss": split_aggregate_loss,
                "remax_advantages": remax_advantages}[name]

    return make


# --- TRL ---------------------------------------------------------------------------------------

# TRL's GRPO loss types, by the aggregation of SPEC §4 each one is (GRPOTrainer._compute_loss)
TRL_LOSS_TYPES = {"seq-mean-token-mean": "grpo", "token-mean": "bnpo",
                  "seq-mean-token-sum-norm": "dr_grpo"}


def _trl_stub(loss_type: str, clip_low: float, clip_high: float, level: str,
              max_completion_length: int):
    """The attributes GRPOTrainer._compute_loss reads, for one process, no reference model,
    no vLLM, no entropy terms, one gradient-accumulation step, in training mode."""
    accelerator = SimpleNamespace(gather=lambda x: x, reduce=lambda x, reduction="sum": x,
                                  gather_for_metrics=lambda x: x, num_processes=1,
                                  sync_gradients=True)
    return SimpleNamespace(
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level=level,
        beta=0.0, loss_type=loss_type, epsilon_low=clip_low, epsilon_high=clip_high,
        args=SimpleNamespace(delta=None, use_bias_correction_kl=False, steps_per_generation=1),
        use_vllm=False, vllm_importance_sampling_correction=False,
        model=SimpleNamespace(training=True), current_gradient_accumulation_steps=1,
        max_completion_length=max_completion_length, accelerator=accelerator,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _entropy_bonus_enabled=False, aux_loss_enabled=False)


def _trl_loss(logp, old_logp, advantages, mask, loss_type, clip_low, clip_high, level,
              max_completion_length):
    import torch
    from trl.trainer.grpo_trainer import GRPOTrainer

    hi = clip_low if clip_high is None else clip_high
    stub = _trl_stub(loss_type, clip_low, hi, level, max_completion_length)
    stub._get_per_token_logps_and_entropies = lambda *a, **k: (logp, torch.zeros_like(logp),
                                                               None)
    B, T = logp.shape
    m = mask.to(torch.long)
    inputs = {"prompt_ids": torch.zeros(B, 0, dtype=torch.long),
              "prompt_mask": torch.zeros(B, 0, dtype=torch.long),
              "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": m,
              "advantages": advantages, "old_per_token_logps": old_logp,
              "num_items_in_batch": m.sum().to(logp.dtype)}
    return GRPOTrainer._compute_loss(stub, None, inputs)


def trl_grpo_loss() -> Callable:
    """TRL 1.16's GRPO loss (``GRPOTrainer._compute_loss``, unmodified, on a stub trainer) as
    SPEC's ``policy_loss``: the aggregation mode picks the loss type (grpo, bnpo, dr_grpo with
    ``max_completion_length`` = the normalizer)."""

    def policy_loss(logp, old_logp, advantages, mask, *, clip_low=0.2, clip_high=None,
                    dual_clip=None, mode="token-mean", normalizer=None):
        length = int(normalizer) if normalizer is not None else logp.shape[-1]
        return _trl_loss(logp, old_logp, advantages, mask, TRL_LOSS_TYPES[mode], clip_low,
                         clip_high, "token", length)

    return policy_loss


def trl_sequence_grpo() -> Callable:
    """TRL's ``importance_sampling_level="sequence"`` (GSPO) with the grpo loss type, as SPEC's
    ``gspo_surrogate``: each row's objective is read off a call on that row alone (its
    seq-mean-token-mean is the row's value) and written to its response tokens."""
    import torch

    def gspo_surrogate(logp, old_logp, advantages, mask, *, clip_low, clip_high=None):
        out = torch.zeros_like(logp)
        for b in range(logp.shape[0]):
            if not bool(mask[b].any()):
                continue
            v = -_trl_loss(logp[b:b + 1], old_logp[b:b + 1], advantages[b:b + 1],
                           mask[b:b + 1], "grpo", clip_low, clip_high, "sequence",
                           logp.shape[-1])
            out = out + torch.where(mask[b:b + 1] & (torch.arange(logp.shape[0])[:, None]
                                                     == b), v, torch.zeros_like(out))
        return out

    return gspo_surrogate


def trl_rollout_correction() -> Callable:
    """TRL 1.16's vLLM importance-sampling correction as published
    (``GRPOTrainer._generate_and_score_completions``, the block after "Compute the importance
    sampling ratio when using vLLM"; inline in a method that needs a model and a vLLM engine,
    so transcribed here line for line). ``vllm_importance_sampling_clip_min`` is left at None
    for truncation (SPEC's TIS has no lower bound). TRL's ratios are 1 at padded positions
    (the loss masks them); SPEC's are 0: this adapter multiplies by the mask at the end, as
    TRL's loss does before using them."""
    import math

    import torch

    def rollout_correction(logp, rollout_logp, mask, *, level="token", mode="truncate",
                           low=None, high=2.0):
        with torch.no_grad():  # TRL computes the ratio in its no-grad generation step
            return _trl_ratio(logp, rollout_logp, mask, f"{level}_{mode}", low, high)

    def _trl_ratio(old_per_token_logps, sampling_per_token_logps, mask, vllm_mode, clip_min,
                   clip_max):
        # --- TRL, as published ---
        per_token_logps_diff = (old_per_token_logps - sampling_per_token_logps) * mask
        per_token_logps_diff = torch.nan_to_num(per_token_logps_diff, nan=0.0)
        sequence_level_is = vllm_mode in ["sequence_mask", "sequence_truncate"]
        if sequence_level_is:
            per_sequence_logps_diff = per_token_logps_diff.sum(dim=-1, keepdim=True)
            logps_diff = per_sequence_logps_diff
        else:
            logps_diff = per_token_logps_diff
        ratio = torch.exp(logps_diff)
        if vllm_mode in ["sequence_truncate", "token_truncate"]:
            ratio = torch.clamp(ratio, min=clip_min, max=clip_max)
        else:
            min_val = clip_min if clip_min is not None else -math.inf
            max_val = clip_max if clip_max is not None else math.inf
            invalid_mis_mask = (ratio < min_val) | (ratio > max_val)
            ratio = ratio.masked_fill(invalid_mis_mask, value=0.0)
        # --- end of TRL's code ---
        return ratio.expand_as(old_per_token_logps) * mask

    return rollout_correction


# --- OpenRLHF ----------------------------------------------------------------------------------

def openrlhf_models_utils() -> Any:
    """OpenRLHF's ``openrlhf/models/utils.py``, loaded from its file (the package's
    ``__init__`` imports flash-attn, which needs CUDA to build)."""
    import importlib.util

    spec = importlib.util.find_spec("openrlhf")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("openrlhf is not installed")
    path = spec.submodule_search_locations[0] + "/models/utils.py"
    loader = importlib.util.spec_from_file_location("openrlhf_models_utils", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module
