"""The `where` line: the pattern of a failure, read off the inputs' own flags (every value
failure has one; every other failure says what differs too), and the honest "no known
mistake" line."""

import numpy as np
import pytest
import torch

import refmath
import refmath_torch as rt
from refmath.checks.where import pattern
from refmath.conformance import check

F, T_ = False, True


def _flags(**kw):
    return {k: torch.tensor([v]) for k, v in kw.items()}


def test_the_places_are_named_from_the_flags():
    exact = np.array([[1.0, 2.0, 3.0, 4.0]])
    flags = _flags(terminated=[F, T_, F, F], truncated=[F, F, F, F])
    # a carry not reset at the termination: the terminated step and the steps before it
    got = exact + np.array([[1.0, 1.0, 0.0, 0.0]])
    text = pattern(got, exact, got != exact, flags, time_axis=True)
    assert text.startswith("exactly at the steps of episodes that terminate (the terminal")
    assert "constant offset: yours = exact + 1" in text and "everything else agrees" in text
    # the bootstrap at the terminated step only
    got = exact * np.array([[1.0, 2.0, 1.0, 1.0]])
    assert pattern(got, exact, got != exact, flags, True).startswith(
        "exactly at the terminated steps (their bootstrap) (1)")
    # a time-limit cut's bootstrap
    cut = _flags(terminated=[F, F, F, F], truncated=[F, F, T_, F])
    got = exact + np.array([[0.0, 0.0, 5.0, 0.0]])
    assert "time-limit (truncated) steps" in pattern(got, exact, got != exact, cut, True)
    # masked positions only
    masked = _flags(mask=[T_, F, T_, F])
    got = exact.copy()
    got[0, 3] = np.nan
    assert pattern(got, exact, np.isnan(got), masked, True).startswith(
        "only at masked (padded) positions (1 of 2); NaN where the exact value is finite")


def test_how_the_values_differ():
    exact = np.array([1.0, -2.0, 4.0])
    off = np.ones(3, bool)
    assert "sign flipped" in pattern(-exact, exact, off)
    assert "constant factor: yours = 0.5 × exact" in pattern(0.5 * exact, exact, off)
    assert "yours is 0 there" in pattern(0 * exact, exact, off)
    assert pattern(np.array(3.0), np.array(2.0), np.array(True)) == \
        "the one value: yours / exact = 1.5"  # a scalar loss: the ratio says e.g. ÷ numel


def test_a_pair_of_outputs_names_the_one_that_differs():
    exact = np.zeros((1, 3, 2)) + 1.0
    got = exact.copy()
    got[0, 1, 1] = 2.0
    text = pattern(got, exact, got != exact, _flags(terminated=[F, F, F]), False,
                   ("vs", "pg_advantages"))
    assert text.startswith("only in pg_advantages; ")


def test_every_value_failure_has_a_where_line_and_says_when_no_mistake_matches():
    def off_by_a_factor(rewards, values, next_values, **kw):
        return 1.5 * rt.gae(rewards, values, next_values, **kw)

    result = check("gae", off_by_a_factor, checks=["exact_small"], profile="quick").results[0]
    assert result.status == "failed"
    assert "constant factor: yours = 1.5 × exact" in result.pattern
    assert "\n  where          " in result.message
    assert result.causes == []
    assert "no known mistake of this kind reproduces it" in result.message


def test_a_mistake_is_recognised_by_its_behaviour_not_bit_for_bit():
    """A real port differs from the catalogue's mutant in incidental details (here: its
    result carries float32-size rounding noise) yet makes the same mistake — the done flag
    read one step late: it is named, first; a function that deviates the other way at the
    same steps is not."""
    from fractions import Fraction

    from refmath.checks.mutants import diagnose, done_shifted

    r = torch.tensor([[1.0, 2.0, 4.0, -1.0]], dtype=torch.float64)
    v = torch.tensor([[0.1, 0.3, 0.7, 0.2]], dtype=torch.float64)
    nv = torch.tensor([[0.3, 0.7, 0.2, 0.9]], dtype=torch.float64)
    term = torch.tensor([[False, True, False, False]])
    kw = dict(gamma=0.9, lam=0.8, terminated=term)

    def call(f):
        return f(r, v, nv, **kw)

    def exact_rows(t):
        return [[Fraction(x) for x in row] for row in t.tolist()]

    exact = np.array(refmath.gae(exact_rows(r), exact_rows(v), exact_rows(nv),
                                 gamma=Fraction(9, 10), lam=Fraction(4, 5),
                                 terminated=term.numpy()), dtype=np.float64)
    bound = np.full(exact.shape, 1e-14)
    noisy = call(done_shifted).numpy() * (1 + 3e-7)  # the mistake, computed in float32
    assert not np.allclose(noisy, call(done_shifted).numpy(), rtol=0, atol=2e-14)
    assert [m.name for m in diagnose("gae", call, noisy, bound, exact=exact)][:1] == \
        ["done_shifted"]
    mirrored = 2 * exact - call(done_shifted).numpy()  # same steps, the other direction
    assert "done_shifted" not in [m.name for m in diagnose("gae", call, mirrored, bound,
                                                           exact=exact)]


def test_a_failure_seen_only_in_the_gradient_is_diagnosed():
    """GSPO-token written verl's way (the sequence ratio as exp of the masked mean, the
    token ratio as s·π/sg[π]) but with sg[s] forgotten: the values are right, only the
    gradient check fails — and it names the mistake and says where, in the gradient (before,
    a failure seen only by a gradient check never got a cause)."""

    def gspo_token_no_stopgrad(logp, old_logp, advantages, mask, *, clip_low, clip_high=None):
        m = mask.to(logp.dtype)
        seq = ((logp - old_logp) * m).sum(-1) / m.sum(-1).clamp(min=1)
        s = torch.exp(seq)[..., None] * torch.exp(logp - logp.detach())  # sg[s] forgotten
        A = advantages if advantages.shape == logp.shape else advantages[..., None]
        hi = clip_low if clip_high is None else clip_high
        out = torch.minimum(s * A, torch.clamp(s, 1 - clip_low, 1 + hi) * A)
        return torch.where(mask, out, torch.zeros_like(out))

    report = check("gspo_token_surrogate", gspo_token_no_stopgrad, profile="quick",
                   checks=["float64", "gradient"], binding="no_validates_input")
    value, gradient = report.results
    assert value.status == "passed" and gradient.status == "failed"
    assert gradient.causes[:1] == ["gspo_token_sequence_not_stopped"], gradient.message
    assert gradient.pattern.startswith("in the gradient")


def test_without_flags_whole_rows_and_everywhere_are_said_as_such():
    """A kind without episode flags (group advantages, a loss per sequence): whole rows
    differing are "every element of k of the n rows", all of it "everywhere", a lone element
    its ratio; only scattered elements fall back to a list of positions."""
    exact = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    row = exact + np.array([[0.0] * 3, [0.5] * 3])
    text = pattern(row, exact, row != exact)
    assert text.startswith("every element of 1 of the 2 rows") and "rows [(1,)]" in text
    assert "constant offset: yours = exact + 0.5" in text
    assert pattern(2 * exact, exact, np.ones_like(exact, bool)).startswith("everywhere")
    lone = exact.copy()
    lone[0, 1] = 3.0
    assert "yours / exact = 1.5" in pattern(lone, exact, lone != exact)
    scattered = exact + np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    assert pattern(scattered, exact, scattered != exact).startswith("at 2 of 6 positions")


@pytest.mark.parametrize("mistake, check_id, says", [
    ("gamma_missing_in_delta", "jacobian", "in the Jacobian d out[t] / d"),
    ("truncation_as_termination", "bad_input", "on the bad input"),
    ("whitening_inside_gae", "batch_consistency", "against the same row alone"),
    ("padded_output_multiplied", "ignored_numbers", "changed by the ignored numbers: exactly "
                                                    "at the masked (padded) positions"),
    ("surrogate_sign_through_min", "gradient", "in the gradient d/d ratio"),
    ("rloo_including_self", "zero_spread", "where the exact answer is exactly 0"),
    ("grpo_whitened_over_batch", "hygiene", "NaN at"),
    ("kl_wrong_direction", "extremes", "= inf"),
    ("done_shifted", "ignored_numbers", "nothing to compare: the function raised ValueError"),
])
def test_every_failure_has_a_where_line(mistake, check_id, says):
    """Not only value checks: a Jacobian, a bad input, a row of a batch, ignored numbers, a
    gradient, a zero spread, hygiene, extremes, a function that raised — each failure says
    what differs, in its where line (the result's pattern, and a line of the message)."""
    from refmath.checks.mutants import CATALOGUE

    (m,) = [m for m in CATALOGUE if m.name == mistake]
    result = check(m.kind, m.fn, profile="quick", checks=[check_id]).results[0]
    assert result.status == "failed"
    assert says in result.pattern, result.pattern
    assert "\n  where          " in result.message or result.pattern in \
        result.message.splitlines()[0]


@pytest.mark.parametrize("mistake", ["clip_on_log_ratio", "dual_clip_for_positive_advantages",
                                     "kl_wrong_direction", "k2_without_half"])
def test_the_ratio_and_kl_gradient_checks_name_their_cause(mistake):
    """The clipped surrogate's ∂L/∂ratio check and the KL estimators' ∂k/∂logp check
    diagnose a failure like a value check does: the gradient of each known mistake on the
    same input, matched against the function's."""
    from refmath.checks.mutants import CATALOGUE

    (m,) = [m for m in CATALOGUE if m.name == mistake]
    result = check(m.kind, m.fn, profile="quick", checks=["gradient"]).results[0]
    assert result.status == "failed"
    assert result.causes[:1] == [mistake], result.message
    assert result.pattern.startswith("in the gradient")
