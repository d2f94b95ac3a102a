"""Functions written the way CleanRL, Stable-Baselines3, verl, TorchRL and TRL write them,
each correct one next to a classic slip: the scratch module of tests/test_layouts.py
(copied into a temporary directory outside the checkout, then checked from there)."""

import numpy as np
import torch


def cleanrl_gae(rewards, values, dones, next_value, next_done, gamma, gae_lambda):
    """CleanRL ppo.py, as published."""
    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = 0
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextnonterminal = 1.0 - next_done
            nextvalues = next_value
        else:
            nextnonterminal = 1.0 - dones[t + 1]
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    return advantages


def cleanrl_done_off_by_one(rewards, values, dones, next_value, next_done, gamma, gae_lambda):
    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = 0
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextnonterminal = 1.0 - next_done
            nextvalues = next_value
        else:
            nextnonterminal = 1.0 - dones[t]          # bug: dones[t] instead of dones[t + 1]
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    return advantages


def cleanrl_next_done_ignored(rewards, values, dones, next_value, next_done, gamma,
                              gae_lambda):
    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = 0
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextnonterminal = torch.ones_like(next_done)  # bug: next_done never read
            nextvalues = next_value
        else:
            nextnonterminal = 1.0 - dones[t + 1]
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    return advantages


def sb3_gae(rewards, values, episode_starts, last_values, dones, gamma, gae_lambda):
    """Stable-Baselines3 RolloutBuffer.compute_returns_and_advantage."""
    buffer_size = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    last_gae_lam = 0
    for step in reversed(range(buffer_size)):
        if step == buffer_size - 1:
            next_non_terminal = 1.0 - dones.astype(np.float32)
            next_values = last_values
        else:
            next_non_terminal = 1.0 - episode_starts[step + 1]
            next_values = values[step + 1]
        delta = rewards[step] + gamma * next_values * next_non_terminal - values[step]
        last_gae_lam = delta + gamma * gae_lambda * next_non_terminal * last_gae_lam
        advantages[step] = last_gae_lam
    return advantages


def sb3_gamma_missing(rewards, values, episode_starts, last_values, dones, gamma, gae_lambda):
    buffer_size = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    last_gae_lam = 0
    for step in reversed(range(buffer_size)):
        if step == buffer_size - 1:
            next_non_terminal = 1.0 - dones.astype(np.float32)
            next_values = last_values
        else:
            next_non_terminal = 1.0 - episode_starts[step + 1]
            next_values = values[step + 1]
        delta = rewards[step] + gamma * next_values * next_non_terminal - values[step]
        last_gae_lam = delta + gae_lambda * next_non_terminal * last_gae_lam   # bug: no gamma
        advantages[step] = last_gae_lam
    return advantages


def verl_gae(token_level_rewards, values, response_mask, gamma, lam):
    """verl compute_gae_advantage_return, without the final whitening."""
    with torch.no_grad():
        nextvalues = 0
        lastgaelam = 0
        advantages_reversed = []
        gen_len = token_level_rewards.shape[-1]
        for t in reversed(range(gen_len)):
            delta = token_level_rewards[:, t] + gamma * nextvalues - values[:, t]
            lastgaelam_ = delta + gamma * lam * lastgaelam
            nextvalues = values[:, t] * response_mask[:, t] + (1 - response_mask[:, t]) * nextvalues
            lastgaelam = lastgaelam_ * response_mask[:, t] + (1 - response_mask[:, t]) * lastgaelam
            advantages_reversed.append(lastgaelam)
        advantages = torch.stack(advantages_reversed[::-1], dim=1)
        returns = advantages + values
    return advantages, returns


def verl_padding_in_recursion(token_level_rewards, values, response_mask, gamma, lam):
    """Padded tokens zeroed but recursed through."""
    r = token_level_rewards * response_mask
    v = values * response_mask
    nextvalues = 0
    lastgaelam = 0
    out = []
    for t in reversed(range(r.shape[-1])):
        delta = r[:, t] + gamma * nextvalues - v[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        nextvalues = v[:, t]
        out.append(lastgaelam)
    return torch.stack(out[::-1], dim=1), None


def torchrl_gae(gamma, lmbda, state_value, next_state_value, reward, done, terminated):
    """TorchRL generalized_advantage_estimate (loop version), [..., T, 1]."""
    not_done = (~done).to(state_value.dtype)
    not_terminated = (~terminated).to(state_value.dtype)
    T = reward.shape[-2]
    advantage = torch.empty_like(reward)
    prev = torch.zeros_like(reward[..., 0, :])
    for t in reversed(range(T)):
        delta = reward[..., t, :] + gamma * next_state_value[..., t, :] * not_terminated[..., t, :] - state_value[..., t, :]
        prev = delta + gamma * lmbda * not_done[..., t, :] * prev
        advantage[..., t, :] = prev
    return advantage, advantage + state_value


def torchrl_truncation_as_termination(gamma, lmbda, state_value, next_state_value, reward, done, terminated):
    return torchrl_gae(gamma, lmbda, state_value, next_state_value, reward, done, done)


def trl_grpo(rewards, num_generations):
    """TRL GRPOTrainer: group-normalised rewards."""
    mean_grouped = rewards.view(-1, num_generations).mean(dim=1)
    std_grouped = rewards.view(-1, num_generations).std(dim=1)
    mean_grouped = mean_grouped.repeat_interleave(num_generations, dim=0)
    std_grouped = std_grouped.repeat_interleave(num_generations, dim=0)
    return (rewards - mean_grouped) / (std_grouped + 1e-4)


def trl_biased_std(rewards, num_generations):
    g = rewards.view(-1, num_generations)
    adv = (g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True, unbiased=False) + 1e-4)
    return adv.reshape(-1)


def verl_policy_loss(old_log_prob, log_prob, advantages, response_mask, cliprange,
                     loss_agg_mode="token-mean", clip_ratio_c=3.0):
    """verl compute_policy_loss (dual clip c = 3), with masks selected (torch.where) and empty
    rows left out of the sequence means."""
    ratio = torch.exp(log_prob - old_log_prob)
    pg_losses1 = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1 - cliprange, 1 + cliprange)
    clip_pg_losses1 = torch.maximum(pg_losses1, pg_losses2)
    clip_pg_losses2 = torch.min(-advantages * clip_ratio_c, clip_pg_losses1)
    pg_losses = torch.where(advantages < 0, clip_pg_losses2, clip_pg_losses1)
    mask = response_mask.bool()
    kept = torch.where(mask, pg_losses, torch.zeros_like(pg_losses))
    if loss_agg_mode == "token-mean":
        return kept.sum() / mask.sum(), None
    rows = mask.sum(-1) > 0
    if loss_agg_mode == "seq-mean-token-sum":
        return kept.sum(-1)[rows].mean(), None
    return (kept.sum(-1) / mask.sum(-1).clamp(min=1))[rows].mean(), None


def verl_policy_loss_padding_in_mean(old_log_prob, log_prob, advantages, response_mask,
                                     cliprange, loss_agg_mode="token-mean"):
    loss, _ = verl_policy_loss(old_log_prob, log_prob, advantages, response_mask, cliprange,
                               loss_agg_mode)
    if loss_agg_mode == "token-mean":
        loss = loss * response_mask.sum() / response_mask.numel()
    return loss, None


def openrlhf_approx_kl(log_probs, log_probs_base, kl_estimator="k1"):
    """OpenRLHF 0.11.0 openrlhf/models/utils.py compute_approx_kl, as published."""
    log_ratio = log_probs.float() - log_probs_base.float()
    if kl_estimator == "k1":
        pass
    elif kl_estimator == "k2":
        log_ratio = log_ratio**2 / 2.0
    elif kl_estimator == "k3":
        log_ratio = (-log_ratio).exp() - 1 + log_ratio
    else:
        raise ValueError(f"Unknown kl_estimator: {kl_estimator}")
    return log_ratio.clamp(min=-10, max=10)


def openrlhf_kl_direction_swapped(log_probs, log_probs_base, kl_estimator="k1"):
    log_ratio = log_probs_base.float() - log_probs.float()  # bug: the other KL direction
    if kl_estimator == "k2":
        log_ratio = log_ratio**2 / 2.0
    elif kl_estimator == "k3":
        log_ratio = (-log_ratio).exp() - 1 + log_ratio
    return log_ratio.clamp(min=-10, max=10)
