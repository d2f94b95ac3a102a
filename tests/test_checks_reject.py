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


STEP_TWINS = [
    (float32_inside, "gae.float64"),
    (mutates_rewards, "gae.hygiene"),
    (always_float64, "gae.hygiene"),
    (values_detached, "gae.jacobian"),
    (values_detached, "gae.gradcheck"),
    (gamma_clamped, "gae.bad_input"),
    (multiplies_by_not_done, "gae.ignored_numbers"),
    (whitening_inside_gae, "gae.batch_consistency"),
    (cumulative_product_trick, "gae.long_float32"),
]


@pytest.mark.parametrize("mutant, check_id", STEP_TWINS, ids=lambda x: getattr(x, "__name__", x))
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


# --- a broken twin for EVERY check factory --------------------------------------------------

def ratio_always_float64(logp, old_logp):
    return rt.importance_ratio(logp.double(), old_logp.double())


def ratio_gradient_detached(logp, old_logp):
    return rt.importance_ratio(logp.detach(), old_logp)


def clipped_surrogate_unvalidated(ratio, advantages, *, clip_low=0.2, clip_high=None,
                                  dual_clip=None):
    """The right formula with no input validation (a negative ratio passes silently)."""
    hi = clip_low if clip_high is None else clip_high
    return torch.minimum(ratio * advantages,
                         torch.clamp(ratio, 1 - clip_low, 1 + hi) * advantages)


def k3_gradient_half_detached(logp, ref_logp, kind):
    """Right values, but the −log r term is detached: the gradient is that of e^{log r} − 1."""
    if kind != "k3":
        return rt.kl_estimate(logp, ref_logp, kind)
    log_r = ref_logp - logp
    return torch.expm1(log_r) - log_r.detach()


def kl_from_probability_quotient(logp, ref_logp, kind):
    """Every estimator from the probability ratio exp(ref)/exp(logp): 0/0 = NaN for long
    sequences' log-probs."""
    r = torch.exp(ref_logp) / torch.exp(logp)
    return {"k1": -torch.log(r), "k2": torch.log(r) ** 2 / 2, "k3": r - 1 - torch.log(r)}[kind]


def adaptive_kl_non_strict(beta, kl, *, target, tolerance=1.5, factor=2.0):
    """≤ where the PPO paper's rule has <: the threshold itself changes β."""
    if kl <= target / tolerance:
        return beta / factor
    if kl >= target * tolerance:
        return beta * factor
    return beta


def expected_return_undiscounted(mdp, pi):
    from dataclasses import replace

    return rt.expected_return(replace(mdp, gamma=1), pi)


def critic_loss_with_half(values, returns):
    return 0.5 * rt.critic_loss(values, returns)


def fisher_diagonal_only(p):
    return torch.diag_embed(p)


def cg_ignores_damping(Avp, g, iters, damping=0.0):
    return rt.conjugate_gradient(Avp, g, iters, 0.0)


def natural_step_without_factor_two(g, F, max_kl):
    return rt.natural_gradient_step(g, F, max_kl / 2)


def line_search_accepts_the_full_step(objective, kl, x, full_step, *, max_kl, backtrack=0.5,
                                      max_backtracks=10):
    return x + full_step, 0


def group_std_over_batch(rewards, *, method, eps=1e-6, unbiased=True):
    """GRPO's std taken over the whole batch instead of each group."""
    if method != "grpo":
        return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)
    dev = rewards - rewards.mean(-1, keepdim=True)
    return dev / (rewards.std(unbiased=unbiased) + eps) if rewards.numel() > 1 else dev


def policy_loss_gradient_through_the_clip(logp, old_logp, advantages, mask, **kw):
    """The right loss, but the gradient of the unclipped −r·A everywhere (a clipped token
    still pushes the policy)."""
    loss = rt.policy_loss(logp, old_logp, advantages, mask, **kw)
    agg = {k: v for k, v in kw.items() if k in ("mode", "normalizer")}
    A = advantages if advantages.shape == logp.shape else advantages[..., None].expand_as(logp)
    ratio = torch.exp(torch.where(mask, logp - old_logp, torch.zeros_like(logp)))
    plain = rt.aggregate_loss(-ratio * torch.where(mask, A, torch.zeros_like(A)), mask, **agg)
    return loss.detach() + plain - plain.detach()


BROKEN_TWINS = [  # (check id, twin): the twin must be rejected by that check
    ("policy_loss.gradient", policy_loss_gradient_through_the_clip),
    ("group_advantages.batch_consistency", group_std_over_batch),
    ("importance_ratio.hygiene", ratio_always_float64),
    ("importance_ratio.gradcheck", ratio_gradient_detached),
    ("clipped_surrogate.bad_input", clipped_surrogate_unvalidated),
    ("kl_estimate.gradient", k3_gradient_half_detached),
    ("kl_estimate.extremes", kl_from_probability_quotient),
    ("clipped_surrogate.overflowed_ratio", clipped_surrogate_unvalidated),
    ("adaptive_kl_coefficient.walk", adaptive_kl_non_strict),
    ("expected_return.value_and_autograd", expected_return_undiscounted),
    ("critic_loss.value", critic_loss_with_half),
    ("fisher_matrix.exact_and_kl_hessian", fisher_diagonal_only),
    ("conjugate_gradient.solves", cg_ignores_damping),
    ("natural_gradient_step.quadratic_model", natural_step_without_factor_two),
    ("backtracking_line_search.accepts_only_feasible_improvements",
     line_search_accepts_the_full_step),
]


@pytest.mark.parametrize("check_id, twin", BROKEN_TWINS, ids=lambda x: getattr(x, "__name__", x))
def test_every_factory_rejects_its_broken_twin(check_id, twin):
    result = run_check(_check(check_id), twin, "detect")
    assert result.status == "failed", f"{check_id} let {twin.__name__} pass"


def _gae_summed_squares_lambda(monkeypatch):
    from refmath import advantages

    real = advantages.gae_summed
    monkeypatch.setattr(advantages, "gae_summed",
                        lambda *a, lam, **k: real(*a, lam=lam * lam, **k))


def _gae_pads_inside_the_recursion(monkeypatch):
    """An oracle that zeroes masked steps but recurses through them (not compression)."""
    import numpy as np

    from refmath import advantages

    real = advantages.gae

    def padded(rewards, values, next_values, *, mask=None, **kw):
        if mask is None:
            return real(rewards, values, next_values, **kw)
        out = real(rewards, values, next_values, **kw)
        return np.where(mask, out, 0 * out)

    monkeypatch.setattr(advantages, "gae", padded)


def _rloo_including_self(monkeypatch):
    from refmath import objectives

    real = objectives.group_advantages

    def broken(rewards, *, method, **kw):
        return real(rewards, method="dr_grpo" if method == "rloo" else method, **kw)

    monkeypatch.setattr(objectives, "group_advantages", broken)


ORACLE_TWINS = [  # (identity check, a broken oracle it must reject)
    ("identity.gae_summed", _gae_summed_squares_lambda),
    ("symbolic.gae_summed", _gae_summed_squares_lambda),
    ("symbolic.masked_is_compressed", _gae_pads_inside_the_recursion),
    ("identity.rloo_is_scaled_dr_grpo", _rloo_including_self),
]


@pytest.mark.parametrize("check_id, breakage", ORACLE_TWINS,
                         ids=lambda x: getattr(x, "__name__", x))
def test_identity_checks_reject_a_broken_oracle(monkeypatch, check_id, breakage):
    breakage(monkeypatch)
    (check,) = [c for c in checks_for("identities") if c.id == check_id]
    assert run_check(check, None, "detect").status == "failed"


def _factory(check) -> str:
    return f"{check.func.__module__.rsplit('.', 1)[-1]}:{check.func.__qualname__.split('.')[0]}"


def test_every_check_factory_has_a_broken_twin():
    """Each function that makes checks (a factory, e.g. steps:_value_check) has at least one
    check it made listed above or in the catalogue, rejecting a deliberately broken twin."""
    from refmath.checks import kinds
    from refmath.checks.mutants import CATALOGUE

    rejected = ({cid for cid, _ in BROKEN_TWINS} | {cid for _, cid in STEP_TWINS}
                | {cid for cid, _ in ORACLE_TWINS} | {m.caught_by for m in CATALOGUE}
                | {"clipped_surrogate.gradient"})
    factories: dict[str, set] = {}
    for kind in kinds():
        for check in checks_for(kind):
            factories.setdefault(_factory(check), set()).add(check.id)
    missing = sorted(f for f, ids in factories.items() if not ids & rejected)
    assert not missing, f"check factories without a broken twin: {missing}"
    assert len(factories) >= 30


def fisher_all_nan(p):
    """Every entry NaN: ``err > 1e-12`` is False for NaN, so a NaN-blind check passes it."""
    F = rt.fisher_matrix(p)
    return torch.full_like(F, float("nan"))


class _NanBackward(torch.autograd.Function):
    """The identity forward; a NaN gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.full_like(grad, float("nan"))


def gae_nan_gradient(rewards, values, next_values, **kw):
    """Right values, NaN ∂/∂rewards."""
    return rt.gae(_NanBackward.apply(rewards), values, next_values, **kw)


NAN_TWINS = [  # a NaN is a failure in every comparison (never 'not greater than the bound')
    ("fisher_matrix.exact_and_kl_hessian", fisher_all_nan),
    ("gae.jacobian", gae_nan_gradient),
]


@pytest.mark.parametrize("check_id, twin", NAN_TWINS, ids=lambda x: getattr(x, "__name__", x))
def test_a_nan_result_never_passes_a_comparison(check_id, twin):
    result = run_check(_check(check_id), twin, "detect")
    assert result.status == "failed", f"{check_id} let {twin.__name__} pass"


_HALF = (torch.float16, torch.bfloat16)


def wrong_only_in_half(fn):
    """``fn`` off by 1/32 (relative and absolute) for float16/bfloat16 inputs, exact in
    float32/float64: far beyond one half-precision rounding (2⁻⁸ relative at worst), far
    below the scale of most results."""
    def shifted(x):
        return x + (x.abs() + 1) / 32 if isinstance(x, torch.Tensor) else x

    def twin(*args, **kwargs):
        out = fn(*args, **kwargs)
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        if not any(t.dtype in _HALF for t in tensors):
            return out
        return tuple(shifted(x) for x in out) if isinstance(out, tuple) else shifted(out)

    return twin


def _half_checks():
    from refmath.checks import kinds

    return [c for k in kinds() if k != "identities" for c in checks_for(k)
            if "half" in c.requires]


@pytest.mark.parametrize("check", _half_checks(), ids=lambda c: c.id)
def test_half_checks_reject_a_function_wrong_only_in_half(check):
    """The float16/bfloat16 checks hold the result to the float32 bound plus one rounding:
    with the bound and the expected value swapped (the bound grows to ~|exact|), a function
    wrong only in half precision would pass."""
    twin = wrong_only_in_half(getattr(rt, check.kind))
    assert run_check(check, twin, "detect").status == "failed", check.id


def rloo_sum_minus_self_float64_only(rewards, *, method, eps=1e-6, unbiased=True):
    """RLOO written as r − (Σr − r)/(G − 1), correct otherwise and computed in float64: a
    group of equal non-dyadic rewards gets a rounding residue of ~1e-16, not exactly 0."""
    if method != "rloo":
        return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)
    x = rewards.double()
    G = x.shape[-1]
    return (x - (x.sum(-1, keepdim=True) - x) / (G - 1)).to(rewards.dtype)


def zero_spread_gives_a_half(rewards, *, method, eps=1e-6, unbiased=True):
    """Right everywhere but on a group of equal rewards, where it answers 1/2."""
    out = rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)
    flat = (rewards == rewards[..., :1]).all(-1, keepdim=True)
    return torch.where(flat, torch.full_like(out, 0.5), out)


def grpo_mean_subtracted_in_float32(rewards, *, method, eps=1e-6, unbiased=True):
    """GRPO written (r − mean)/(std + eps) with the mean as computed: in float32 a group of
    30 × 0.9 gets its mean's rounding ÷ (std + eps) ≈ −0.15, not 0."""
    if method != "grpo" or rewards.dtype != torch.float32:
        return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)
    G = rewards.shape[-1]
    mean = rewards.mean(-1, keepdim=True)
    std = rewards.std(-1, keepdim=True, unbiased=unbiased) if G > 1 else torch.zeros_like(mean)
    return (rewards - mean) / (std + eps)


def test_zero_spread_grades_a_rounding_residue_imprecise_and_an_amplified_one_wrong():
    from refmath.conformance import check

    residue = check("group_advantages", rloo_sum_minus_self_float64_only,
                    checks=["zero_spread"], only=["method=rloo"])
    (r,) = residue.results
    assert r.status == "failed" and r.tier == "IMPRECISE" and r.severity == "precision", \
        r.message
    assert "rounding residue" in r.message
    assert check("group_advantages", rloo_sum_minus_self_float64_only, checks=["zero_spread"],
                 only=["method=rloo"], fail_on=["correctness"]).passed

    # amplified far beyond a rounding residue, and explained by a known PRECISION mistake
    # (the computed mean subtracted: verl's and TRL's code): precision, its cause named
    amplified = check("group_advantages", grpo_mean_subtracted_in_float32,
                      checks=["zero_spread"], only=["method=grpo"])
    (w,) = amplified.results
    assert w.status == "failed" and w.severity == "precision", w.message
    assert w.causes == ["group_mean_rounding"] and "far beyond a rounding residue" in w.message
    # amplified and explained by no known precision mistake: WRONG, correctness
    unexplained = check("group_advantages", zero_spread_gives_a_half, checks=["zero_spread"],
                        only=["method=grpo"])
    (u,) = unexplained.results
    assert u.status == "failed" and u.tier == "WRONG" and u.severity == "correctness", \
        u.message
