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


def _verl_masked_whiten(x, mask):
    """verl masked_whiten: over every response token of the batch, unbiased variance."""
    n = mask.sum()
    mean = (x * mask).sum() / n
    var = (((x - mean) ** 2) * mask).sum() / n * (n / (n - 1))
    return (x - mean) * torch.rsqrt(var + 1e-8)


def verl_gae(token_level_rewards, values, response_mask, gamma, lam):
    """verl compute_gae_advantage_return, with its final masked whitening."""
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
        advantages = _verl_masked_whiten(advantages, response_mask)
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
    return _verl_masked_whiten(torch.stack(out[::-1], dim=1), response_mask), None


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


def _verl_agg(loss_mat, loss_mask, loss_agg_mode):
    """verl agg_loss's four modes with its defaults (no global counts, loss_scale_factor =
    the response length T), written after verl/trainer/ppo/core_algos.py (b178a3c)."""
    if loss_agg_mode == "token-mean":
        kept = torch.where(loss_mask.bool(), loss_mat, 0.0) * loss_mask
        return kept.sum() / loss_mask.sum()
    row_sums = (loss_mat * loss_mask).sum(-1)
    counts = loss_mask.sum(-1)
    if loss_agg_mode == "seq-mean-token-sum-norm":
        return row_sums.sum() / loss_mask.shape[-1]
    if loss_agg_mode == "seq-mean-token-mean":
        row_sums = row_sums / (counts + 1e-8)
    rows = (counts > 0).float()
    return (torch.where(rows.bool(), row_sums, 0.0) * rows).sum() / rows.sum()


def verl_policy_loss(old_log_prob, log_prob, advantages, response_mask, cliprange=None,
                     cliprange_low=None, cliprange_high=None, clip_ratio_c=3.0,
                     loss_agg_mode="token-mean"):
    """verl compute_policy_loss: clip-higher, the dual clip c, the ±20 log-ratio clamp, and
    agg_loss; returns (loss, clipfrac, kl, clipfrac_lower) as verl does."""
    log_ratio = torch.clamp(log_prob - old_log_prob, min=-20.0, max=20.0)
    ratio = torch.exp(log_ratio)
    low = cliprange if cliprange_low is None else cliprange_low
    high = cliprange if cliprange_high is None else cliprange_high
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - low, 1 + high)
    pessimistic = torch.maximum(unclipped, clipped)
    dual = torch.min(-advantages * clip_ratio_c, pessimistic)
    losses = torch.where(advantages < 0, dual, pessimistic)
    return _verl_agg(losses, response_mask, loss_agg_mode), None, None, None


def verl_policy_loss_padding_in_mean(old_log_prob, log_prob, advantages, response_mask,
                                     cliprange=None, cliprange_low=None, cliprange_high=None,
                                     clip_ratio_c=3.0, loss_agg_mode="token-mean"):
    loss = verl_policy_loss(old_log_prob, log_prob, advantages, response_mask, cliprange,
                            cliprange_low, cliprange_high, clip_ratio_c, loss_agg_mode)[0]
    if loss_agg_mode == "token-mean":
        loss = loss * response_mask.sum() / response_mask.numel()
    return loss, None, None, None


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


def verl_grpo_outcome(token_level_rewards, response_mask, index, epsilon=1e-6,
                      norm_adv_by_std_in_grpo=True):
    """verl compute_grpo_outcome_advantage: scores grouped by index; a lone sample keeps
    mean 0 and std 1; computed under no_grad; (advantages, returns)."""
    from collections import defaultdict

    scores = token_level_rewards.sum(dim=-1)
    groups = defaultdict(list)
    with torch.no_grad():
        for i in range(scores.shape[0]):
            groups[index[i]].append(scores[i])
        stats = {}
        for key, members in groups.items():
            if len(members) == 1:
                stats[key] = (torch.tensor(0.0), torch.tensor(1.0))
            else:
                stacked = torch.stack(members)
                stats[key] = (stacked.mean(), stacked.std())
        for i in range(scores.shape[0]):
            mean, std = stats[index[i]]
            scores[i] = (scores[i] - mean) / (std + epsilon) if norm_adv_by_std_in_grpo \
                else scores[i] - mean
        scores = scores.unsqueeze(-1) * response_mask
    return scores, scores


def verl_grpo_groups_by_position(token_level_rewards, response_mask, index, epsilon=1e-6,
                                 norm_adv_by_std_in_grpo=True):
    """The classic slip: groups taken as contiguous runs of G rows, index ignored."""
    scores = token_level_rewards.sum(dim=-1)
    G = int(np.bincount(np.asarray(index)).max())
    grouped = scores.reshape(-1, G)
    centered = grouped - grouped.mean(-1, keepdim=True)
    if norm_adv_by_std_in_grpo:
        centered = centered / (grouped.std(-1, keepdim=True) + epsilon)
    out = centered.reshape(-1).unsqueeze(-1) * response_mask
    return out, out


def torchrl_td_lambda(gamma, lmbda, next_state_value, reward, done, terminated):
    """TorchRL td_lambda_return_estimate (loop version), [..., T, 1]: restarted at every
    done, the bootstrap multiplied by (1 − terminated)."""
    not_done = (~done).to(reward.dtype)
    not_terminated = (~terminated).to(reward.dtype)
    T = reward.shape[-2]
    returns = torch.empty_like(reward)
    g = next_state_value[..., -1, :]
    for t in reversed(range(T)):
        v = next_state_value[..., t, :]
        g = not_done[..., t, :] * g + (1 - not_done[..., t, :]) * v  # restart at a done
        g = reward[..., t, :] + gamma * not_terminated[..., t, :] * ((1 - lmbda) * v + lmbda * g)
        returns[..., t, :] = g
    return returns


def torchrl_td_lambda_not_restarted(gamma, lmbda, next_state_value, reward, done, terminated):
    """The classic slip: the λ-return carried across a done (no restart)."""
    not_terminated = (~terminated).to(reward.dtype)
    T = reward.shape[-2]
    returns = torch.empty_like(reward)
    g = next_state_value[..., -1, :]
    for t in reversed(range(T)):
        v = next_state_value[..., t, :]
        g = reward[..., t, :] + gamma * not_terminated[..., t, :] * ((1 - lmbda) * v + lmbda * g)
        returns[..., t, :] = g
    return returns


def trl_grpo_scaled(rewards, num_generations, scale_rewards="group"):
    """TRL GRPOTrainer (1.10): group mean subtracted; ÷ (group std + 1e-4), ÷ (batch std +
    1e-4) or unscaled, by scale_rewards; unbiased stds."""
    grouped = rewards.view(-1, num_generations)
    mean = grouped.mean(dim=1).repeat_interleave(num_generations, dim=0)
    advantages = rewards - mean
    if scale_rewards == "group":
        std = grouped.std(dim=1).repeat_interleave(num_generations, dim=0)
    elif scale_rewards == "batch":
        std = rewards.std().expand_as(rewards)
    else:
        return advantages
    return advantages / (std + 1e-4)


def trl_batch_scaled_by_group_std(rewards, num_generations, scale_rewards="group"):
    """The slip: scale_rewards="batch" still divides by each group's std."""
    return trl_grpo_scaled(rewards, num_generations,
                           "group" if scale_rewards == "batch" else scale_rewards)


def trl_grpo_loss(per_token_logps, old_per_token_logps, advantages, completion_mask,
                  epsilon_low, epsilon_high, loss_type, max_completion_length,
                  importance_sampling_level="token", sequence_ratio_from_sum=False):
    """TRL GRPOTrainer._compute_loss (no KL), per loss_type and importance_sampling_level
    (sequence: the mean log-ratio of the completion, one ratio per row [B, 1])."""
    log_ratio = per_token_logps - old_per_token_logps
    if importance_sampling_level == "sequence":
        summed = (log_ratio * completion_mask).sum(-1)
        count = 1.0 if sequence_ratio_from_sum else completion_mask.sum(-1).clamp(min=1.0)
        log_ratio = (summed / count).unsqueeze(-1)
    coef_1 = torch.exp(log_ratio)
    coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
    advantages = advantages.unsqueeze(1)
    per_token_loss = -torch.min(coef_1 * advantages, coef_2 * advantages)
    masked = per_token_loss * completion_mask
    if loss_type == "grpo":
        return (masked.sum(-1) / completion_mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return masked.sum() / completion_mask.sum().clamp(min=1.0)
    return masked.sum() / (per_token_loss.size(0) * max_completion_length)


def trl_grpo_loss_empty_rows_left_out(per_token_logps, old_per_token_logps, advantages,
                                      completion_mask, epsilon_low, epsilon_high, loss_type,
                                      max_completion_length):
    """The slip (for TRL): grpo's mean taken over the non-empty rows only."""
    if loss_type != "grpo":
        return trl_grpo_loss(per_token_logps, old_per_token_logps, advantages,
                             completion_mask, epsilon_low, epsilon_high, loss_type,
                             max_completion_length)
    coef_1 = torch.exp(per_token_logps - old_per_token_logps)
    coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
    a = advantages.unsqueeze(1)
    per_token = -torch.min(coef_1 * a, coef_2 * a) * completion_mask
    rows = completion_mask.sum(-1) > 0
    return (per_token.sum(-1)[rows] / completion_mask.sum(-1)[rows]).mean()


class PolicyLoss(torch.nn.Module):
    """OpenRLHF 0.11.0 openrlhf/models/loss.py PolicyLoss (policy_loss_type "ppo", no vLLM
    correction), with its aggregate_loss and masked_mean."""

    def __init__(self, clip_eps_low=0.2, clip_eps_high=0.2, dual_clip=None,
                 token_level_loss=True):
        super().__init__()
        self.clip_eps_low, self.clip_eps_high = clip_eps_low, clip_eps_high
        self.dual_clip, self.token_level_loss = dual_clip, token_level_loss

    def forward(self, log_probs, old_log_probs, advantages, action_mask=None):
        ratio = (log_probs - old_log_probs).clamp(min=-20.0, max=20.0).exp()
        surr1 = ratio * advantages
        surr2 = ratio.clamp(1 - self.clip_eps_low, 1 + self.clip_eps_high) * advantages
        clip1 = torch.min(surr1, surr2)
        if self.dual_clip is None:
            loss = -clip1
        else:
            loss = -torch.where(advantages < 0, torch.max(clip1, self.dual_clip * advantages),
                                clip1)
        if self.token_level_loss:
            total = (loss * action_mask).sum() / action_mask.sum()
        else:
            counts = action_mask.sum(dim=-1)
            per_seq = (loss * action_mask).sum(dim=-1) / (counts + 1e-8)
            rows = (counts > 0).float()
            total = (per_seq * rows).sum() / rows.sum()
        return total, None, None, None


class PolicyLossDualClipEverywhere(PolicyLoss):
    """The slip: the dual clip's bound applied to positive advantages too."""

    def forward(self, log_probs, old_log_probs, advantages, action_mask=None):
        if self.dual_clip is None:
            return super().forward(log_probs, old_log_probs, advantages, action_mask)
        ratio = (log_probs - old_log_probs).clamp(min=-20.0, max=20.0).exp()
        clip1 = torch.min(ratio * advantages,
                          ratio.clamp(1 - self.clip_eps_low, 1 + self.clip_eps_high) * advantages)
        loss = -torch.max(clip1, self.dual_clip * advantages)
        return (loss * action_mask).sum() / action_mask.sum() if self.token_level_loss else \
            super().forward(log_probs, old_log_probs, advantages, action_mask)[0], None


def trl_gspo_ratio_from_sum(per_token_logps, old_per_token_logps, advantages, completion_mask,
                            epsilon_low, epsilon_high, loss_type, max_completion_length,
                            importance_sampling_level="token"):
    """The slip (for TRL's sequence level): the sequence ratio from the SUM of the token
    log-ratios (the product of the token ratios), not their mean."""
    return trl_grpo_loss(per_token_logps, old_per_token_logps, advantages, completion_mask,
                         epsilon_low, epsilon_high, loss_type, max_completion_length,
                         importance_sampling_level, sequence_ratio_from_sum=True)


def _openrlhf_returns(rewards, action_mask, n_samples_per_prompt):
    """r − group mean on the last action token (compute_reward), γ = 1 returns."""
    r = rewards.reshape(-1, n_samples_per_prompt)
    r = (r - r.mean(-1, keepdim=True)).reshape(-1)
    eos = action_mask.size(1) - 1 - action_mask.long().fliplr().argmax(dim=1, keepdim=True)
    token_rewards = torch.zeros(action_mask.shape, dtype=r.dtype).scatter_(1, eos, r[:, None])
    return token_rewards.flip(-1).cumsum(-1).flip(-1) * action_mask


def openrlhf_reinforce_baseline(rewards, action_mask, n_samples_per_prompt):
    """OpenRLHF 0.11.0's REINFORCE++-baseline (experience_maker.py), kl_coef 0: r − group
    mean on the last action token, γ = 1 returns, whitened over every action token of the
    batch in float32 (biased variance, rsqrt of var clamped at 1e-8)."""
    returns = _openrlhf_returns(rewards, action_mask, n_samples_per_prompt)
    flat, m = returns.flatten().float(), action_mask.flatten()
    mean = (flat * m).sum() / m.sum()
    var = ((flat - mean).pow(2) * m).sum() / m.sum()
    return (returns - mean) * var.clamp(min=1e-8).rsqrt()


def openrlhf_reinforce_baseline_whitened_with_padding(rewards, action_mask,
                                                      n_samples_per_prompt):
    """The slip: the whitening's mean and variance over every position, padding included."""
    returns = _openrlhf_returns(rewards, action_mask, n_samples_per_prompt)
    flat = returns.flatten().float()
    return (returns - flat.mean()) * flat.var(unbiased=False).clamp(min=1e-8).rsqrt()


def openrlhf_reinforce_baseline_per_completion(rewards, action_mask, n_samples_per_prompt):
    """The slip: whitened over the completions (each once), not over the action tokens."""
    r = rewards.reshape(-1, n_samples_per_prompt)
    d = (r - r.mean(-1, keepdim=True)).reshape(-1).float()
    A = (d - d.mean()) * d.var(unbiased=False).clamp(min=1e-8).rsqrt()
    return A[:, None] * action_mask
