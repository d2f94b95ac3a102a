"""The `where` line: the pattern of a failure, read off the inputs' own flags (every value
failure has one), and the honest "no known mistake" line."""

import numpy as np
import torch

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
