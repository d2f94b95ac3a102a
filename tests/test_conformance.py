"""Checking users' implementations: the check() API, the CLI and the pytest plugin, run from
a scratch directory outside the checkout on a tiny correct and a tiny buggy function."""

import itertools
import os
import subprocess
import sys
import textwrap

import pytest

import refmath_torch
from refmath.checks import checks_for
from refmath.conformance import (Convention, adapt, check, parametrize_with_checks,
                                 parse_convention)

SCRATCH = textwrap.dedent('''
    import numpy as np
    import torch


    def good_gae(rewards, values, next_values, *, gamma, lam, terminated=None, truncated=None):
        """A plain reverse loop over [B, T] (no mask, scalar gamma, no input validation)."""
        B, T = rewards.shape
        term = torch.zeros_like(rewards, dtype=torch.bool) if terminated is None else terminated
        trunc = torch.zeros_like(term) if truncated is None else truncated
        adv, last = torch.zeros_like(rewards), torch.zeros(B, dtype=rewards.dtype)
        for t in reversed(range(T)):
            boot = torch.where(term[:, t], torch.zeros_like(last), next_values[:, t])
            delta = rewards[:, t] + gamma * boot - values[:, t]
            cont = 0.0 if t == T - 1 else (~(term[:, t] | trunc[:, t])).to(rewards.dtype)
            last = delta + gamma * lam * cont * last
            adv[:, t] = last
        return adv


    def buggy_gae(rewards, values, next_values, *, gamma, lam, terminated=None, truncated=None):
        """Treats a time-limit truncation as a termination."""
        if truncated is not None:
            terminated = truncated if terminated is None else terminated | truncated
        return good_gae(rewards, values, next_values, gamma=gamma, lam=lam,
                        terminated=terminated)


    def sb3_style(rewards, values, *, gamma, lam, done):
        """Time-major [T, B] NumPy, values of length T + 1, one done flag."""
        adv, last = np.zeros_like(rewards), 0.0
        for t in reversed(range(rewards.shape[0])):
            nonterminal = 1.0 - done[t]
            delta = rewards[t] + gamma * values[t + 1] * nonterminal - values[t]
            last = delta + gamma * lam * nonterminal * last
            adv[t] = last
        return adv
''')
CONVENTION = "no_mask,no_batch,no_validates_input,no_per_step_gamma"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    path = tmp_path_factory.mktemp("user_project")
    (path / "user_gae.py").write_text(SCRATCH)
    return path


def _run(args, cwd, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    environment.update(env)
    return subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=600)


def test_cli_passes_a_correct_function_outside_the_checkout(scratch):
    # the checks a plain run of a user's function runs (the half-precision ones are the
    # twins'), but long_float32: a Python loop over T = 10^5 steps, seconds of this test for
    # nothing it asserts (the registry runs that check on every twin)
    checks = [a for c in checks_for("gae")
              if c.id.split(".")[1] not in ("long_float32", "float16", "bfloat16")
              for a in ("--check", c.id)]
    r = _run(["refmath", "check", "gae", "user_gae:good_gae", "--convention", CONVENTION,
              "--profile", "quick", *checks], scratch)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout and "2 not applicable (declared)" in r.stdout, r.stdout[-700:]
    assert "declared: no validates input" in r.stdout


def test_cli_fails_a_buggy_function_with_an_actionable_message(scratch):
    # "detect": no shrinking (the pinned explicit example already fails, small as it is)
    # (the value and diagnosis path only: the 10^5-step Python loop is the passing test's)
    r = _run(["refmath", "check", "gae", "user_gae:buggy_gae", "--convention", CONVENTION,
              "--profile", "detect", "--check", "exact_small", "--check", "float64"], scratch)
    assert r.returncode == 1
    out = r.stdout
    assert "refmath check gae.exact_small FAILED (correctness) for user_gae:buggy_gae" in out
    assert "worst element" in out and "exact =" in out
    assert "matches known mistake 'truncation_as_termination'" in out
    assert "FAIL —" in out and "failed" in out
    # the reproduction snippet runs as printed, calling the user's own function
    # (the snippet is the indented block under "reproduce:"; what Hypothesis prints after
    # it, "Falsifying example" or "Failing explicit example", varies with its version)
    after = out.split("reproduce:\n", 1)[1].splitlines()
    code = textwrap.dedent("\n".join(
        itertools.takewhile(lambda line: line.startswith("        "), after)))
    rerun = _run([sys.executable, "-c", code], scratch)
    assert rerun.returncode == 0 and "tensor" in rerun.stdout, rerun.stderr


@pytest.mark.parametrize("how", ["option", "env"])
def test_pytest_plugin_outside_the_checkout(scratch, how):
    target = f"gae=user_gae:buggy_gae[{CONVENTION}]"
    args = [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "--pyargs",
            "refmath.suite", "--refmath-profile", "detect"]
    # (a Python loop over 10^5 steps: the CLI's passing test runs it once, not here; the
    # env route runs the checks its assertions read, the option route the whole suite)
    args += ["-k", "not long_float32" if how == "option" else
             "exact_small or gradcheck or bad_input"]
    env = {}
    if how == "option":
        args += ["--refmath-impl", target]
    else:
        env["REFMATH_IMPL"] = target
    r = _run(args, scratch, **env)
    assert r.returncode == 1, r.stdout[-2000:]
    assert "refmath: checking gae=user_gae:buggy_gae" in r.stdout  # echoed in the header
    assert "FAILED" in r.stdout and "gae.exact_small" in r.stdout
    assert "2 skipped" in r.stdout  # not applicable (declared), counted, never dropped
    assert "gae.bad_input: not applicable (declared: no validates input)" in r.stdout


def test_plugin_is_inert_without_an_implementation(scratch):
    r = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs",
              "refmath.suite"], scratch)
    assert r.returncode == 0 and "1 skipped" in r.stdout


def test_check_api_on_the_bundled_implementation():
    report = check("gae", refmath_torch.gae, profile="quick")
    assert report.passed and "PASS" in str(report)
    assert report.counts() == (10, 0, 0)


def test_declared_conventions_adapt_a_numpy_time_major_function(scratch, monkeypatch):
    """SB3-style GAE (time-major NumPy, values of length T+1, one done flag) is checked through
    the declared adapter: everything it can express passes; a NaN bootstrap at a terminal step
    (which SPEC says is never read) leaks through its ·(1 − done) — reported, with reason."""
    monkeypatch.syspath_prepend(str(scratch))
    import user_gae

    report = check("gae", user_gae.sb3_style, profile="quick",
                   convention="time_major,values_with_bootstrap,done,numpy,no_validates_input")
    failed = {r.id for r in report.results if r.status == "failed"}
    na = {r.id: r.message for r in report.results if r.status == "not applicable"}
    assert failed == {"gae.ignored_numbers"}
    assert set(na) == {"gae.jacobian", "gae.gradcheck", "gae.bad_input"}
    assert "no gradients" in na["gae.jacobian"]


def test_conventions_are_declared_never_guessed():
    with pytest.raises(ValueError, match="unknown convention flag"):
        parse_convention("timemajor")
    with pytest.raises(ValueError, match="unknown capabilities"):
        Convention(unsupported=("masks",)).capabilities()
    assert parse_convention("time_major,no_mask").capabilities().mask is False
    with pytest.raises(ValueError, match="values_with_bootstrap"):
        adapt(lambda r: r, "discounted_returns", Convention(values_with_bootstrap=True))


@parametrize_with_checks("discounted_returns", refmath_torch.discounted_returns,
                         convention="no_mask", profile="quick")
def test_parametrize_with_checks_decorator(refmath_check):
    """The decorator users put on their own test: one test per check, N/A ones skipped."""
    refmath_check()
