"""Every kind of check has a deliberately broken twin that it must reject.

Each mutant below is a real mistake from RL code (or a hygiene failure), built on the correct
implementation; the named registry check must report it as failed. So none of the checks in
``test_registry.py`` can pass vacuously.
"""

import math

import pytest
import torch

import refmath_torch as rt
from refmath.checks import checks_for, run_check


def _check(check_id):
    kind = check_id.split(".")[0]
    (check,) = [c for c in checks_for(kind) if c.id == check_id]
    return check


def done_shifted(rewards, values, next_values, *, gamma, lam, terminated=None,
                 truncated=None, mask=None):
    """terminated[t−1] used at step t (the done flag off by one step)."""
    if terminated is not None:
        terminated = torch.roll(terminated, 1, -1)
        terminated[..., 0] = False
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, terminated=terminated,
                  truncated=truncated, mask=mask)


def truncation_as_termination(rewards, values, next_values, *, gamma, lam, terminated=None,
                              truncated=None, mask=None):
    if truncated is not None:
        terminated = truncated if terminated is None else terminated | truncated
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, terminated=terminated,
                  truncated=truncated, mask=mask)


def padding_in_recursion(rewards, values, next_values, *, gamma, lam, terminated=None,
                         truncated=None, mask=None):
    """Masked steps zeroed but recursed through (the 'other' convention of SPEC §1)."""
    if mask is None:
        return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam,
                      terminated=terminated, truncated=truncated)
    m = mask.to(rewards.dtype)
    out = rt.gae(rewards * m, values * m, next_values * m, gamma=gamma, lam=lam,
                 terminated=terminated, truncated=truncated)
    return out * m


def float32_inside(rewards, values, next_values, **kw):
    args = [x.float() for x in (rewards, values, next_values)]
    if isinstance(kw.get("gamma"), torch.Tensor):
        kw["gamma"] = kw["gamma"].float()
    return rt.gae(*args, **kw).to(rewards.dtype)


def mutates_rewards(rewards, values, next_values, **kw):
    out = rt.gae(rewards, values, next_values, **kw)
    rewards.mul_(2)
    return out


def always_float64(rewards, values, next_values, **kw):
    args = [x.double() for x in (rewards, values, next_values)]
    if isinstance(kw.get("gamma"), torch.Tensor):
        kw["gamma"] = kw["gamma"].double()
    return rt.gae(*args, **kw)


def values_detached(rewards, values, next_values, **kw):
    return rt.gae(rewards, values.detach(), next_values, **kw)


def gamma_clamped(rewards, values, next_values, *, gamma, lam, **kw):
    """Silently clamps a bad gamma instead of raising."""
    if not isinstance(gamma, torch.Tensor):
        gamma = min(max(gamma, 0.0), 1.0)
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=min(max(lam, 0.0), 1.0), **kw)


def multiplies_by_not_done(rewards, values, next_values, *, gamma, lam, terminated=None,
                           truncated=None, mask=None):
    """V'·(1 − terminated) instead of a select: a NaN at a terminated step leaks."""
    if terminated is not None:
        next_values = next_values * (~terminated).to(next_values.dtype)
        truncated = terminated if truncated is None else truncated | terminated
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, truncated=truncated,
                  mask=mask)


def whitened_over_batch(rewards, values, next_values, **kw):
    out = rt.gae(rewards, values, next_values, **kw)
    return (out - out.mean()) / (out.std(unbiased=False) + 1.0)


def cumulative_product_trick(rewards, values, next_values, *, gamma, lam, terminated=None,
                             truncated=None, mask=None):
    """A_t = ρ^{−t}·Σ_{s=t}^{e_t} ρ^s δ_s with ρ^s = exp(s·log ρ): exact on paper, but ρ^s
    underflows for long sequences (0/0)."""
    T = rewards.shape[-1]
    term = torch.zeros_like(rewards, dtype=torch.bool) if terminated is None else terminated
    trunc = torch.zeros_like(term) if truncated is None else truncated
    delta = rewards + gamma * next_values * (~term) - values
    steps = torch.arange(T)
    power = torch.exp(steps.to(rewards.dtype) * math.log(gamma * lam))
    tail = (power * delta).flip(-1).cumsum(-1).flip(-1)
    done = term | trunc
    done[..., -1] = True
    ends = torch.where(done, steps, T).flip(-1).cummin(-1).values.flip(-1)
    after = torch.cat([tail, torch.zeros_like(tail[..., :1])], -1).gather(-1, ends + 1)
    return (tail - after) / power


@pytest.mark.parametrize("mutant, check_id", [
    (done_shifted, "gae.exact_small"),
    (truncation_as_termination, "gae.exact_small"),
    (padding_in_recursion, "gae.exact_small"),
    (float32_inside, "gae.float64"),
    (mutates_rewards, "gae.hygiene"),
    (always_float64, "gae.hygiene"),
    (values_detached, "gae.jacobian"),
    (values_detached, "gae.gradcheck"),
    (gamma_clamped, "gae.bad_input"),
    (multiplies_by_not_done, "gae.ignored_numbers"),
    (whitened_over_batch, "gae.batch_consistency"),
    (cumulative_product_trick, "gae.long_float32"),
], ids=lambda x: getattr(x, "__name__", x))
def test_check_rejects_broken_twin(mutant, check_id):
    # detection only: the "detect" profile is ci without shrinking (shrinking is what makes
    # a failure message minimal; test_failure_message_names_the_worst_element covers it)
    result = run_check(_check(check_id), mutant, "detect")
    assert result.status == "failed", f"{check_id} let {mutant.__name__} pass"
    assert result.message


def test_failure_message_names_the_worst_element(profile):
    result = run_check(_check("gae.exact_small"), truncation_as_termination, profile)
    assert "worst element" in result.message and "exact =" in result.message
    assert "WRONG" in result.message or "IMPRECISE" in result.message


def test_identity_check_rejects_a_wrong_oracle(monkeypatch, profile):
    """The identity checks compare two different oracles: break one and they fail."""
    from refmath import advantages

    real = advantages.gae_summed
    monkeypatch.setattr(advantages, "gae_summed",
                        lambda *a, lam, **k: real(*a, lam=lam * lam, **k))
    for check_id in ("symbolic.gae_summed",):
        (check,) = [c for c in checks_for("identities") if c.id == check_id]
        assert run_check(check, None, profile).status == "failed"


# --- SPEC §3–4 broken twins ----------------------------------------------------------------

def kl_wrong_direction(logp, ref_logp, kind):
    """log r = logp − ref_logp: the estimator of the other KL direction."""
    return rt.kl_estimate(ref_logp, logp, kind)


def k3_without_expm1(logp, ref_logp, kind):
    log_r = ref_logp - logp
    if kind == "k3":
        return torch.exp(log_r) - 1 - log_r  # loses all digits of k3 ≈ log_r²/2 near 0
    return rt.kl_estimate(logp, ref_logp, kind)


def ratio_as_quotient(logp, old_logp):
    return torch.exp(logp) / torch.exp(old_logp)


def clip_on_advantage(ratio, advantages, *, clip_low=0.2, clip_high=None, dual_clip=None):
    hi = clip_low if clip_high is None else clip_high
    return torch.minimum(ratio * advantages,
                         ratio * torch.clamp(advantages, 1 - clip_low, 1 + hi))


def dual_clip_for_all_advantages(ratio, advantages, *, clip_low=0.2, clip_high=None,
                                 dual_clip=None):
    out = rt.clipped_surrogate(ratio, advantages, clip_low=clip_low, clip_high=clip_high)
    return out if dual_clip is None else torch.maximum(out, dual_clip * advantages)


def rloo_including_self(rewards, *, method, eps=1e-6, unbiased=True):
    if method == "rloo":
        return rewards - rewards.mean(-1, keepdim=True)
    return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)


def grpo_population_std(rewards, *, method, eps=1e-6, unbiased=True):
    return rt.group_advantages(rewards, method=method, eps=eps, unbiased=False)


def whiten_always_biased(x, mask=None, *, shift_mean=True, unbiased=True, eps=1e-8):
    return rt.whiten(x, mask, shift_mean=shift_mean, unbiased=False, eps=eps)


def seq_mean_as_token_mean(per_step_loss, mask, mode, *, normalizer=None):
    if mode == "seq-mean-token-mean":
        mode = "token-mean"
    return rt.aggregate_loss(per_step_loss, mask, mode, normalizer=normalizer)


def value_loss_with_half(values, returns, **kw):
    return 0.5 * rt.value_loss(values, returns, **kw)


def clip_gradient_leak(ratio, advantages, **kw):
    """The right values, but the clipped branch keeps the ratio's gradient (r·A.detach() style
    mistakes): gradient A everywhere."""
    value = rt.clipped_surrogate(ratio, advantages, **kw)
    return value.detach() + ratio * advantages - (ratio * advantages).detach()


@pytest.mark.parametrize("mutant, check_id", [
    (kl_wrong_direction, "kl_estimate.float64"),
    (k3_without_expm1, "kl_estimate.float32"),
    (ratio_as_quotient, "importance_ratio.extremes"),
    (clip_on_advantage, "clipped_surrogate.float64"),
    (dual_clip_for_all_advantages, "clipped_surrogate.float64"),
    (clip_gradient_leak, "clipped_surrogate.gradient"),
    (rloo_including_self, "group_advantages.float64"),
    (grpo_population_std, "group_advantages.float64"),
    (whiten_always_biased, "whiten.float64"),
    (seq_mean_as_token_mean, "aggregate_loss.float64"),
    (value_loss_with_half, "value_loss.float64"),
], ids=lambda x: getattr(x, "__name__", x))
def test_policy_check_rejects_broken_twin(mutant, check_id):
    result = run_check(_check(check_id), mutant, "detect")
    assert result.status == "failed", f"{check_id} let {mutant.__name__} pass"
