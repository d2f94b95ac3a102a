"""Diagnosis by fingerprint (refmath/checks/fingerprints.py): a known mistake is named only if
it behaves like the function on the counterexample AND on the probes built from it — other
numbers, γ = 3/4 and λ = 1/2, no flags, terminations and time-limit cuts swapped, the mask
all True, the kind's pinned corners with the same options. Each test below would fail if the
probes were not run, or if their verdict were ignored."""

from fractions import Fraction

import numpy as np
import pytest
import torch

import refmath
import refmath_torch as rt
from refmath.checks.fingerprints import Probe, episode_variants
from refmath.checks.mutants import _resembles, diagnose
from refmath.conformance import check
from refmath.strategies import Episode

SPEC_LOOP = "no_mask,no_batch,no_per_step_gamma,no_validates_input,no_gradients"


def _carry_never_reset(rewards, values, next_values, *, gamma, lam, terminated=None,
                       truncated=None):
    """A reverse loop whose running advantage is never reset (the done flag only in δ):
    bootstraps right, carry across every boundary."""
    nt = 1.0 - (torch.zeros_like(rewards) if terminated is None else terminated.double())
    adv, last = torch.zeros_like(rewards), torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        last = rewards[:, t] + gamma * nt[:, t] * next_values[:, t] - values[:, t] \
            + gamma * lam * last
        adv[:, t] = last
    return adv


def test_the_probes_decide_between_mistakes_the_counterexample_cannot_tell_apart():
    """With a time-limit cut as the only boundary, 'carry never reset' and 'truncation
    ignored' give the same numbers; the probe with terminations in place of the cuts tells
    them apart, and only the right one is named."""
    ep = Episode(np.array([[Fraction(1), Fraction(2), Fraction(-1)]], dtype=object),
                 np.array([[Fraction(1, 2), Fraction(1, 4), Fraction(0)]], dtype=object),
                 np.array([[Fraction(1, 4), Fraction(3), Fraction(1)]], dtype=object),
                 np.zeros((1, 3), bool), np.array([[False, True, False]]), None,
                 Fraction(1, 2), Fraction(1, 2))
    t = ep.tensors()
    kw = dict(gamma=t["gamma"], lam=t["lam"], terminated=t["terminated"],
              truncated=t["truncated"])

    def call(f):
        return f(t["rewards"], t["values"], t["next_values"], **kw)

    exact = np.array(refmath.gae(**ep.oracle_kwargs()), dtype=np.float64)
    got = call(_carry_never_reset).numpy()
    bound = np.full(exact.shape, 1e-14)
    without = [m.name for m in diagnose("gae", call, got, bound, exact=exact)]
    assert {"carry_never_reset", "truncation_ignored"} <= set(without)  # a tie on this input

    result = check("gae", _carry_never_reset, binding=SPEC_LOOP, profile="quick",
                   checks=["exact_small"]).results[0]
    assert result.causes == ["carry_never_reset"], result.message
    assert "matches known mistake 'carry_never_reset'" in result.message


def test_a_mistake_that_misses_a_probe_is_not_named_and_the_report_says_which():
    """The function makes the terminal-bootstrap mistake on the counterexample but is right
    on the probe: the mistake, which would be wrong there, is not named; the likely-cause line
    says it reproduces the counterexample but not that probe."""
    r = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    v = torch.tensor([[0.5, 0.25]], dtype=torch.float64)
    nv = torch.tensor([[3.0, 1.0]], dtype=torch.float64)
    term = torch.tensor([[True, False]])

    def call(f):
        return f(r, v, nv, gamma=0.5, terminated=term)

    exact = rt.td_errors(r, v, nv, gamma=0.5, terminated=term).numpy()
    got = (r + 0.5 * nv - v).numpy()  # the bootstrap kept at the terminated step
    bound = np.full(exact.shape, 1e-14)
    assert [m.name for m in diagnose("td_errors", call, got, bound, exact=exact)] == \
        ["td_bootstrap_at_terminal"]

    r2 = torch.tensor([[-1.0, 0.5]], dtype=torch.float64)
    right = rt.td_errors(r2, v, nv, gamma=0.5, terminated=term).numpy()
    probe = Probe("a probe where the function is right",
                  lambda f: f(r2, v, nv, gamma=0.5, terminated=term), right, right,
                  np.full(right.shape, 1e-14))
    found = diagnose("td_errors", call, got, bound, exact=exact, probes=lambda: [probe])
    assert list(found) == []
    assert [(m.name, label) for m, label in found.near] == \
        [("td_bootstrap_at_terminal", "a probe where the function is right")]

    from refmath.checks.core import likely_causes

    names, line = likely_causes(found)
    assert names == [] and ("'td_bootstrap_at_terminal' reproduces this input but not a probe "
                            "where the function is right") in line


def test_resemblance_is_the_same_elements_the_same_way_by_about_as_much():
    exact = np.array([1.0, 2.0, 3.0, 4.0])
    got = exact + np.array([0.0, 1.0, 2.0, 0.0])  # the function's deviation
    p = Probe("p", None, got, exact, np.full(4, 1e-14))
    assert _resembles(got, p) > 1 - 1e-12
    assert _resembles(exact + 1.2 * (got - exact), p) >= 0.9  # 20 % larger: alike
    assert _resembles(exact + 2 * (got - exact), p) == 0.0  # twice as large: not
    assert _resembles(exact - (got - exact), p) == 0.0  # the other way: not
    assert _resembles(exact + np.array([2.0, 0.0, 0.0, 1.0]), p) == 0.0  # elsewhere: not
    assert _resembles(exact, p) == 0.0  # right where the function deviates: not
    right = Probe("q", None, exact, exact, np.full(4, 1e-14))
    assert _resembles(exact, right) == 1.0 and _resembles(got, right) == 0.0


def test_a_port_that_differs_in_details_resembles_its_mistake():
    """An n-step return whose window runs on past a termination (the mistake of
    'n_step_crosses_episode_end'), but whose bootstrap at the window's end reads that step's
    own flag, a detail the mutant does not share: not the same numbers on every probe, the
    same pattern on each — named as resembling."""

    def n_step_window_flag_only(rewards, next_values, *, gamma, n, terminated=None, truncated=None):
        T = rewards.shape[1]
        out = torch.zeros_like(rewards)
        for t in range(T):
            k = min(n, T - t)
            g = sum(gamma ** i * rewards[:, t + i] for i in range(k))
            end = t + k - 1
            nt = 1.0 - terminated[:, end].double() if terminated is not None else 1.0
            out[:, t] = g + gamma ** k * nt * next_values[:, end]
        return out

    result = check("n_step_returns", n_step_window_flag_only, binding=SPEC_LOOP, profile="quick",
                   checks=["exact_small"]).results[0]
    assert result.causes == ["n_step_crosses_episode_end"], result.message
    assert "resembles known mistake 'n_step_crosses_episode_end'" in result.message


def test_the_episode_probes():
    ep = Episode(np.array([[Fraction(0)] * 3], dtype=object),
                 np.array([[Fraction(0)] * 3], dtype=object),
                 np.array([[Fraction(0)] * 3], dtype=object),
                 np.array([[True, False, False]]), np.array([[False, True, False]]), None,
                 Fraction(1), Fraction(0))
    probes = dict(episode_variants(ep, flags=True, truncation=True, consistent=True))
    assert list(probes) == ["the same flags, other numbers", "other numbers, γ = 3/4, λ = 1/2",
                            "no episode flags", "terminations and time-limit cuts swapped"]
    other = probes["the same flags, other numbers"]
    assert all(x != 0 for x in other.rewards.ravel()) and other.gamma == 1
    assert (other.terminated == ep.terminated).all()
    swapped = probes["terminations and time-limit cuts swapped"]
    assert (swapped.terminated == ep.truncated).all() and (swapped.truncated == ep.terminated).all()
    # consistent: inside a segment, next_values[t] = values[t + 1]
    none = probes["no episode flags"]
    assert list(none.next_values[0, :2]) == list(none.values[0, 1:])
    without_truncation = dict(episode_variants(ep, flags=True, truncation=False,
                                               consistent=False))
    assert "terminations and time-limit cuts swapped" not in without_truncation
    assert list(dict(episode_variants(ep, flags=False, truncation=False, consistent=False))) \
        == ["the same flags, other numbers", "other numbers, γ = 3/4, λ = 1/2"]


def test_a_gradient_check_probes_the_gradient():
    """A gradient check's fingerprint runs on the same probe inputs as the value checks, each
    judged by the exact gradient: on the bundled GSPO-token every probe agrees with it, and
    the counterexample's other numbers, its mask all True and the pinned corners are there."""
    from refmath.checks.arrays import _gradient_probes
    from refmath.checks.cases import Case
    from refmath.checks.core import Context
    from refmath.checks.lm import ROWS
    from refmath.objectives import gspo_token_surrogate_gradient

    spec = ROWS["gspo_token_surrogate"]
    case = Case({"logp": np.array([[Fraction(-1, 2), Fraction(-1)]], dtype=object),
                 "old_logp": np.array([[Fraction(-1), Fraction(-1)]], dtype=object),
                 "advantages": np.array([Fraction(1)], dtype=object)},
                {"clip_low": Fraction(1, 5)}, {"mask": np.array([[True, False]])})
    probes = _gradient_probes(spec, case, rt.gspo_token_surrogate, Context(),
                              gspo_token_surrogate_gradient)
    labels = [p.label for p in probes]
    assert labels[:3] == ["the same input with other numbers (1)",
                          "the same input with other numbers (2)", "no masked element"]
    assert any(label.startswith("the pinned input") for label in labels)
    for p in probes:
        assert np.all(np.abs(p.got - p.exact) <= p.bound), p.label
        assert np.array_equal(p.call(rt.gspo_token_surrogate).numpy(), p.got)


def _kl_scaled(logp, ref_logp, kind):
    return 1.1 * rt.kl_estimate(logp, ref_logp, kind)


def _whiten_scaled(x, mask=None, *, shift_mean=True, unbiased=True, eps=1e-8):
    return 1.05 * rt.whiten(x, mask, shift_mean=shift_mean, unbiased=unbiased, eps=eps)


def _aggregate_halved(per_step_loss, mask, mode, *, normalizer=None):
    return 0.5 * rt.aggregate_loss(per_step_loss, mask, mode, normalizer=normalizer)


def _gae_lambda_squared(rewards, values, next_values, *, gamma, lam, terminated=None,
                        truncated=None, mask=None):
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam * lam,
                  terminated=terminated, truncated=truncated, mask=mask)


def _gae_half_terminal_bootstrap(rewards, values, next_values, *, gamma, lam, terminated=None,
                                 truncated=None, mask=None):
    """Half of the bootstrap kept at a terminal step: 'bootstrap_at_terminal' goes the same
    way, twice as far — not the same mistake."""
    half = next_values if terminated is None else torch.where(
        terminated, 0.5 * next_values, torch.zeros_like(next_values))
    kept = rt.gae(rewards + gamma * half * (terminated if terminated is not None else 0),
                  values, next_values, gamma=gamma, lam=lam, terminated=terminated,
                  truncated=truncated, mask=mask)
    return kept


@pytest.mark.parametrize("kind, fn, check_id", [
    ("kl_estimate", _kl_scaled, "float64"),
    ("whiten", _whiten_scaled, "float64"),
    ("aggregate_loss", _aggregate_halved, "float64"),
    ("gae", _gae_lambda_squared, "exact_small"),
    ("gae", _gae_half_terminal_bootstrap, "exact_small"),
])
def test_a_mistake_outside_the_catalogue_gets_no_cause(kind, fn, check_id):
    """Mistakes no catalogue entry makes — a stray factor, λ², half a terminal bootstrap —
    are rejected with a where line and 'no known mistake', never given the nearest cause."""
    result = check(kind, fn, profile="quick", checks=[check_id],
                   binding="no_validates_input").results[0]
    assert result.status == "failed" and result.pattern
    assert result.causes == [], result.message
    assert "no known mistake of this kind reproduces it" in result.message
