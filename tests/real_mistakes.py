"""Real mistakes from public threads, written fresh in the style each thread shows — NOT the
catalogue's mutants (refmath/checks/mutants*.py), which are what the diagnosis recognises
them by. Each entry: the thread, the kind, the binding the function is checked under, the
function, and the known mistake a correct diagnosis names. tests/test_real_mistakes.py holds
the share named right to its floor; `python tests/real_mistakes.py >
benchmarks/results/real-mistakes.md` writes the measurement the docs show.
"""

from dataclasses import dataclass
from typing import Callable

import torch

SPEC_LOOP = "no_mask,no_batch,no_per_step_gamma,no_validates_input,no_gradients"


@dataclass(frozen=True)
class RealMistake:
    source: str  # the public thread: repository and issue / pull request
    kind: str
    binding: str
    fn: Callable
    cause: str  # the known mistake a right diagnosis names
    also: tuple[str, ...] = ()  # other real flaws of the same code the thread shows
    check: str | None = None  # the check that sees it (default: the kind's first value check)


def _loop_gae(rewards, values, next_values, gamma, lam, cut_bootstrap, cut_carry):
    """A plain reverse GAE loop over [B, T]: cut_bootstrap[t] zeroes step t's bootstrap,
    cut_carry[t] stops the carry from t + 1."""
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        keep_b = (~cut_bootstrap[:, t]).to(rewards.dtype)
        keep_c = (~cut_carry[:, t]).to(rewards.dtype)
        delta = rewards[:, t] + gamma * next_values[:, t] * keep_b - values[:, t]
        last = delta + gamma * lam * keep_c * last
        adv[:, t] = last
    return adv


def _flags(rewards, terminated, truncated):
    false = torch.zeros_like(rewards, dtype=torch.bool)
    return (false if terminated is None else terminated,
            false if truncated is None else truncated)


def _skrl_gae(rewards, values, next_values, gamma, lam, not_done):
    """skrl compute_gae's loop: advantage = r − V + γ·not_done·(V' + λ·advantage)."""
    adv = torch.zeros_like(rewards)
    advantage = torch.zeros_like(rewards[:, 0])
    not_done = not_done.to(rewards.dtype)
    for i in reversed(range(rewards.shape[1])):
        advantage = rewards[:, i] - values[:, i] + gamma * not_done[:, i] * (
            next_values[:, i] + lam * advantage)
        adv[:, i] = advantage
    return adv


def skrl_time_limit_not_a_boundary(rewards, values, next_values, *, gamma, lam,
                                   terminated=None, truncated=None):
    """skrl compute_gae, time_limit_bootstrap=False: not_done = ~terminated, so a time-limit
    cut is no boundary at all and the next episode's advantage leaks back through it."""
    term, _ = _flags(rewards, terminated, truncated)
    return _skrl_gae(rewards, values, next_values, gamma, lam, ~term)


def skrl_time_limit_as_terminal(rewards, values, next_values, *, gamma, lam, terminated=None,
                                truncated=None):
    """skrl compute_gae, time_limit_bootstrap=True: not_done = ~(terminated | truncated), a
    time-limit cut bootstraps nothing."""
    term, trunc = _flags(rewards, terminated, truncated)
    return _skrl_gae(rewards, values, next_values, gamma, lam, ~(term | trunc))


def mario_gae_not_reset(rewards, values, next_values, *, gamma, lam, terminated=None,
                        truncated=None):
    """Super-mario-bros-PPO train.py: gae = gae * gamma * tau + delta — the (1 − done) only
    in delta, the running gae never reset at a death."""
    term, trunc = _flags(rewards, terminated, truncated)
    return _loop_gae(rewards, values, next_values, gamma, lam, term, trunc)


def tianshou_unmasked_terminal_bootstrap(rewards, values, next_values, *, gamma, lam,
                                         terminated=None, truncated=None):
    """tianshou _gae_return as in the thread: delta = rew + v_s_ * gamma − v_s with v_s_ not
    masked at a terminal step; discount = (1 − end_flag)·γλ."""
    term, trunc = _flags(rewards, terminated, truncated)
    nothing = torch.zeros_like(term)
    return _loop_gae(rewards, values, next_values, gamma, lam, nothing, term | trunc)


def rlevo_done_read_at_next_step(rewards, values, next_values, *, gamma, lam, terminated=None,
                                 truncated=None):
    """rlevo compute_gae: done_next = terminated[t + 1] || truncated[t + 1] decides step t's
    bootstrap and carry (its last step used its own flag, correctly)."""
    term, trunc = _flags(rewards, terminated, truncated)
    done = term | trunc
    early = torch.cat([done[:, 1:], done[:, -1:]], dim=1)
    return _loop_gae(rewards, values, next_values, gamma, lam, early, early)


def coursia_done_is_terminated_or_truncated(rewards, values, next_values, *, gamma, lam,
                                            terminated=None, truncated=None):
    """CoursIA rl_6c: dones.append(terminated or truncated) and (1 − dones[t]) masks both the
    bootstrap and the carry: a time limit is a death."""
    term, trunc = _flags(rewards, terminated, truncated)
    return _loop_gae(rewards, values, next_values, gamma, lam, term | trunc, term | trunc)


def embodichain_timeout_from_own_value(rewards, values, next_values, *, gamma, lam,
                                       terminated=None, truncated=None):
    """EmbodiChain common.py (review finding): rewards + gamma * values[:, :-1] * truncated —
    the cut bootstrapped from V(s_t), the state before the action — then the done mask."""
    term, trunc = _flags(rewards, terminated, truncated)
    cut = trunc & ~term
    folded = rewards + gamma * torch.where(cut, values, torch.zeros_like(values))
    return _loop_gae(folded, values, next_values, gamma, lam, term | trunc, term | trunc)


def cleanrl_returns_from_zero_buffer(rewards, values, next_values, *, gamma, lam,
                                     terminated=None, truncated=None):
    """CleanRL ppo_atari_envpool_async_jax (fixed in #337): returns = storage.advantages +
    storage.values, the advantage buffer still at its zeros."""
    storage_advantages = torch.zeros_like(values)
    return storage_advantages + values


def verl_grpo_loss_token_mean(per_step_loss, mask, mode, *, normalizer=None):
    """verl #593: GRPO's loss as masked_mean over every token of the batch, where the paper
    (and mode seq-mean-token-mean) averages each sequence's tokens, then the sequences."""
    m = mask.to(per_step_loss.dtype)
    if mode == "seq-mean-token-mean":
        return (per_step_loss * m).sum() / m.sum()
    raise NotImplementedError(mode)


def roboverse_dones_one_index_late(rewards, values, next_values, *, gamma, lam,
                                   terminated=None, truncated=None):
    """RoboVerse PR #814: the dones buffer held the post-step flag, and the CleanRL loop read
    it at [t + 1] (`nextnonterminal = ~dones[t + 1]`) — every step but the last, whose
    branch read `next_done`, its own flag, correctly."""
    term, _ = _flags(rewards, terminated, truncated)
    T = rewards.shape[1]
    adv = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal = (~term[:, t]).to(rewards.dtype)
        else:
            nextnonterminal = (~term[:, t + 1]).to(rewards.dtype)
        delta = rewards[:, t] + gamma * next_values[:, t] * nextnonterminal - values[:, t]
        adv[:, t] = lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
    return adv


def cartpole_ppo_carry_from_own_step(rewards, values, next_values, *, gamma, lam,
                                     terminated=None, truncated=None):
    """4kasha/CartPole_PPO#1: `advantages[t] = advantages[t] * gae_lambda * gamma *
    (1 - dones[t]) + td_error` — advantages[t] where advantages[t + 1] is meant, read from a
    zero buffer."""
    term, _ = _flags(rewards, terminated, truncated)
    dones = term.to(rewards.dtype)
    td_error = rewards + gamma * next_values * (1 - dones) - values
    advantages = torch.zeros_like(rewards)
    for t in reversed(range(rewards.shape[1])):
        advantages[:, t] = advantages[:, t] * lam * gamma * (1 - dones[:, t]) + td_error[:, t]
    return advantages


def lesson_rollout_end_as_terminal(rewards, values, next_values, *, gamma, lam,
                                   terminated=None, truncated=None):
    """rohitg00/ai-engineering-from-scratch PR #54 (review): `next_v = 0.0 if done else
    (traj[t + 1]["v"] if t + 1 < T else 0.0)` — the rollout's last step bootstraps nothing
    although its episode goes on."""
    term, _ = _flags(rewards, terminated, truncated)
    T = rewards.shape[1]
    adv = torch.zeros_like(rewards)
    gae = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(T)):
        next_v = next_values[:, t] if t + 1 < T else torch.zeros_like(gae)
        next_v = torch.where(term[:, t], torch.zeros_like(next_v), next_v)
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        gae = delta + gamma * lam * (~term[:, t]).to(rewards.dtype) * gae
        adv[:, t] = gae
    return adv


def tf_agents_value_clip_against_itself(values, returns, *, old_values=None, clip=None,
                                        clip_form="max_of_squares"):
    """tensorflow/agents#352: the value network evaluated twice on the same observations,
    `old_value_preds` the second call, so the clipped error equals the unclipped one."""
    value_estimation_error = (values - returns).square()
    if clip is None:
        return value_estimation_error
    old_value_preds = values.detach()  # should be the rollout's cached prediction
    clipped_value_preds = old_value_preds + torch.clamp(values - old_value_preds, -clip, clip)
    clipped_value_estimation_error = (clipped_value_preds - returns).square()
    return torch.max(value_estimation_error, clipped_value_estimation_error)


def areal_kl_estimator_if_chain(logp, ref_logp, kind):
    """AReaL PR #408 (review): three `if`s, not `if/elif`, each rewriting log_ratio — the k3
    branch runs last whatever kl_estimator asked, written `exp() − 1 − x`."""
    log_ratio = logp.float() - ref_logp.float()
    if kind == "k2":
        log_ratio = log_ratio ** 2 / 2.0
    log_ratio = logp.float() - ref_logp.float()  # "if kind == 'k3'" rewrites it regardless
    log_ratio = -log_ratio
    log_ratio = log_ratio.exp() - 1 - log_ratio
    return log_ratio.to(logp.dtype)


def gem_grpo_normalised_twice(rewards, *, method="grpo", eps=1e-6, unbiased=True):
    """axon-rl/gem PR #113: the actor normalises each group, `(r − group_mean)/group_std`,
    then the learner whitens the advantages again over all transitions with global
    statistics (norm_return=True)."""
    group_mean = rewards.mean(-1, keepdim=True)
    group_std = rewards.std(-1, keepdim=True, unbiased=unbiased)
    adv = (rewards - group_mean) / (group_std + eps)
    return (adv - adv.mean()) / (adv.std() + 1e-8)


def trl_grpo_loss_global_normalisation(per_token_logps, old_per_token_logps, advantages,
                                       completion_mask, epsilon_low=0.2, epsilon_high=0.2,
                                       loss_type="grpo", max_completion_length=None):
    """huggingface/trl#2995: GRPO's loss as `(per_token_loss * completion_mask).sum() /
    completion_mask.sum()` — one normalisation over the batch — where GRPO averages each
    completion's tokens, then the completions."""
    coef_1 = torch.exp(per_token_logps - old_per_token_logps)
    coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    per_token_loss = -torch.min(coef_1 * adv, coef_2 * adv)
    mask = completion_mask.to(per_token_loss.dtype)
    if loss_type == "grpo":
        return (per_token_loss * mask).sum() / mask.sum()
    raise NotImplementedError(loss_type)


def trl_kl_bias_correction_sequence_ratio(logp, ref_logp, old_logp, kind):
    """huggingface/trl#6594: with importance_sampling_level="sequence", the KL's bias
    correction multiplies each token's k3 by coef_1 = exp(sequence-mean log-ratio), broadcast
    over the completion, instead of the token's own ratio."""
    log_ratio = logp - old_logp
    log_importance_weights = log_ratio.mean(-1, keepdim=True)
    coef_1 = torch.exp(log_importance_weights)
    d = ref_logp - logp
    if kind == "k3":
        per_token_kl = torch.expm1(d) - d
    elif kind == "k2":
        per_token_kl = d.square() / 2
    else:
        per_token_kl = -d
    return per_token_kl * coef_1


def verl_rollout_weights_not_detached(logp, rollout_logp, mask, *, level="token",
                                      mode="truncate", low=None, high=2.0):
    """verl-project/verl PR #4105: compute_rollout_correction_weights without `.detach()` —
    in bypass + policy-gradient mode the gradient flows through w = π_θ/π_rollout."""
    log_ratio = (logp - rollout_logp) * mask
    if level == "sequence":
        log_ratio = log_ratio.sum(-1, keepdim=True).expand_as(logp)
    weights = torch.exp(log_ratio).clamp(max=high)
    return weights * mask


CATALOGUE = (
    RealMistake("Toni-SM/skrl#449 (time_limit_bootstrap=False)", "gae", SPEC_LOOP,
                skrl_time_limit_not_a_boundary, "truncation_ignored"),
    RealMistake("Toni-SM/skrl#449 (time_limit_bootstrap=True)", "gae", SPEC_LOOP,
                skrl_time_limit_as_terminal, "truncation_as_termination"),
    RealMistake("vietnh1009/Super-mario-bros-PPO-pytorch#21", "gae", SPEC_LOOP,
                mario_gae_not_reset, "carry_not_reset"),
    RealMistake("thu-ml/tianshou#869", "gae", SPEC_LOOP,
                tianshou_unmasked_terminal_bootstrap, "bootstrap_at_terminal"),
    RealMistake("anthonytorlucci/rlevo#342", "gae", SPEC_LOOP,
                rlevo_done_read_at_next_step, "done_read_one_step_early"),
    RealMistake("jsboige/CoursIA#7825", "gae", SPEC_LOOP,
                coursia_done_is_terminated_or_truncated, "truncation_as_termination"),
    RealMistake("DexForce/EmbodiChain#612", "gae", SPEC_LOOP,
                embodichain_timeout_from_own_value, "truncation_bootstraps_own_value"),
    RealMistake("vwxyzjn/cleanrl#337", "lambda_returns", SPEC_LOOP,
                cleanrl_returns_from_zero_buffer, "lambda_returns_are_values"),
    RealMistake("verl-project/verl#593", "aggregate_loss",
                "no_validates_input,only.mode=seq-mean-token-mean",
                verl_grpo_loss_token_mean, "length_biased_aggregation"),
    RealMistake("RoboVerseOrg/RoboVerse PR #814", "gae", SPEC_LOOP + ",no_truncated",
                roboverse_dones_one_index_late, "done_read_one_step_early"),
    RealMistake("4kasha/CartPole_PPO#1", "gae", SPEC_LOOP + ",no_truncated",
                cartpole_ppo_carry_from_own_step, "carry_read_before_written"),
    RealMistake("rohitg00/ai-engineering-from-scratch PR #54", "gae",
                SPEC_LOOP + ",no_truncated", lesson_rollout_end_as_terminal,
                "rollout_end_not_bootstrapped"),
    RealMistake("tensorflow/agents#352", "value_loss", "no_batch,no_validates_input",
                tf_agents_value_clip_against_itself, "value_clip_against_current"),
    RealMistake("areal-project/AReaL PR #408", "kl_estimate",
                "no_validates_input,computes_in=float32",
                areal_kl_estimator_if_chain, "kl_estimators_fall_through",
                also=("k3_without_expm1",)),
    RealMistake("axon-rl/gem PR #113", "group_advantages",
                "no_batch,no_validates_input,only.method=grpo", gem_grpo_normalised_twice,
                "grpo_whitened_over_batch"),
    RealMistake("huggingface/trl#2995", "policy_loss", "trl,only.loss_type=grpo",
                trl_grpo_loss_global_normalisation, "policy_loss_length_biased"),
    RealMistake("huggingface/trl#6594", "importance_weighted_kl_estimate",
                "no_batch,no_validates_input", trl_kl_bias_correction_sequence_ratio,
                "iw_kl_sequence_ratio"),
    RealMistake("verl-project/verl PR #4105", "rollout_correction",
                "no_validates_input,only.mode=truncate", verl_rollout_weights_not_detached,
                "tis_weight_not_detached", check="no_gradient"),
)

# each kind's first value check: the one whose counterexample the diagnosis reads
FIRST_VALUE_CHECK = {"gae": "exact_small", "lambda_returns": "exact_small"}  # else float64


def run(entry: RealMistake):
    """The entry's first value check, through its binding: the failure and its diagnosis."""
    from refmath.conformance import check

    report = check(entry.kind, entry.fn, binding=entry.binding, profile="quick",
                   checks=[entry.check or FIRST_VALUE_CHECK.get(entry.kind, "float64")])
    return report.results[0]


def named_right(entry: RealMistake, result) -> bool:
    """The first named cause is the thread's mistake, or another real flaw the same code
    shows (``entry.also``)."""
    return bool(result.causes) and result.causes[0] in (entry.cause, *entry.also)


def measure() -> str:
    """The measurement as a Markdown table and a last line with the share named right."""
    rows = ["| thread | kind | rejected | where line | first named cause | right |",
            "| --- | --- | --- | --- | --- | --- |"]
    right = 0
    for entry in CATALOGUE:
        result = run(entry)
        named = named_right(entry, result)
        right += named
        first = f"`{result.causes[0]}`" if result.causes else "none (no known mistake matched)"
        rows.append(f"| {entry.source} | `{entry.kind}` | {result.status == 'failed'} | "
                    f"{bool(result.pattern)} | {first} | "
                    f"{'yes' if named else 'no: `' + entry.cause + '`'} |")
    rows += ["", f"{right} of {len(CATALOGUE)} named right first."]
    return "\n".join(rows)


if __name__ == "__main__":  # python tests/real_mistakes.py > benchmarks/results/real-mistakes.md
    print(measure())
