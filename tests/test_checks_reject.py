"""Every kind of check has a deliberately broken twin that it must reject.

The catalogue of known RL mistakes (``refmath/checks/mutants.py``) is tested in
``test_mutants.py``; the broken twins here are the other failure kinds (precision, hygiene,
gradients, bad input, batch consistency, long sequences), built on the correct
implementation. The named registry check must report each as failed, so none of the checks in
``test_registry.py`` can pass vacuously.
"""

import math

import pytest
import torch

import refmath_torch as rt
from refmath.checks import checks_for, run_check
from refmath.checks.mutants import whitening_inside_gae


def _check(check_id):
    kind = check_id.split(".")[0]
    (check,) = [c for c in checks_for(kind) if c.id == check_id]
    return check


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
    (float32_inside, "gae.float64"),
    (mutates_rewards, "gae.hygiene"),
    (always_float64, "gae.hygiene"),
    (values_detached, "gae.jacobian"),
    (values_detached, "gae.gradcheck"),
    (gamma_clamped, "gae.bad_input"),
    (multiplies_by_not_done, "gae.ignored_numbers"),
    (whitening_inside_gae, "gae.batch_consistency"),
    (cumulative_product_trick, "gae.long_float32"),
], ids=lambda x: getattr(x, "__name__", x))
def test_check_rejects_broken_twin(mutant, check_id):
    # detection only: the "detect" profile is ci without shrinking (shrinking is what makes
    # a failure message minimal; test_failure_message_names_the_worst_element covers it)
    result = run_check(_check(check_id), mutant, "detect")
    assert result.status == "failed", f"{check_id} let {mutant.__name__} pass"
    assert result.message


def test_failure_message_names_the_worst_element(profile):
    from refmath.checks.mutants import truncation_as_termination

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

def clip_gradient_leak(ratio, advantages, **kw):
    """The right values, but the clipped branch keeps the ratio's gradient (r·A.detach() style
    mistakes): gradient A everywhere."""
    value = rt.clipped_surrogate(ratio, advantages, **kw)
    return value.detach() + ratio * advantages - (ratio * advantages).detach()


@pytest.mark.parametrize("mutant, check_id", [
    (clip_gradient_leak, "clipped_surrogate.gradient"),
], ids=lambda x: getattr(x, "__name__", x))
def test_policy_check_rejects_broken_twin(mutant, check_id):
    result = run_check(_check(check_id), mutant, "detect")
    assert result.status == "failed", f"{check_id} let {mutant.__name__} pass"
