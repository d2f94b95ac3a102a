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
)

# each kind's first value check: the one whose counterexample the diagnosis reads
FIRST_VALUE_CHECK = {"gae": "exact_small", "lambda_returns": "exact_small",
                     "aggregate_loss": "float64"}


def run(entry: RealMistake):
    """The entry's first value check, through its binding: the failure and its diagnosis."""
    from refmath.conformance import check

    report = check(entry.kind, entry.fn, binding=entry.binding, profile="quick",
                   checks=[FIRST_VALUE_CHECK[entry.kind]])
    return report.results[0]


def measure() -> str:
    """The measurement as a Markdown table and a last line with the share named right."""
    rows = ["| thread | kind | rejected | where line | first named cause | right |",
            "| --- | --- | --- | --- | --- | --- |"]
    right = 0
    for entry in CATALOGUE:
        result = run(entry)
        named = result.causes[:1] == [entry.cause]
        right += named
        first = f"`{result.causes[0]}`" if result.causes else "none (no known mistake matched)"
        rows.append(f"| {entry.source} | `{entry.kind}` | {result.status == 'failed'} | "
                    f"{bool(result.pattern)} | {first} | "
                    f"{'yes' if named else 'no: `' + entry.cause + '`'} |")
    rows += ["", f"{right} of {len(CATALOGUE)} named right first."]
    return "\n".join(rows)


if __name__ == "__main__":  # python tests/real_mistakes.py > benchmarks/results/real-mistakes.md
    print(measure())
