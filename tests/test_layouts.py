"""The user's function as it is written: each built-in layout on a correct function and on
one with a classic slip, from a temporary directory outside the checkout, in ONE run, with
no adapter; the signature pre-check; waivers; the plugin and the decorator with a layout."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from refmath.cli import main
from refmath.checks import UsageError
from refmath.conformance import binding_from, check, parametrize_with_checks

HERE = Path(__file__).parent
CLEANRL_WAIVER = ("gae.ignored_numbers=CleanRL multiplies the bootstrap by (1 - done): "
                  "a NaN next_value at a terminal step leaks, by design")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    path = tmp_path_factory.mktemp("user_layouts")
    shutil.copy(HERE / "layout_styles.py", path / "styles.py")
    return path


def _cli(args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    return subprocess.run(["refmath", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _short(kind):
    """Every check of the kind but the T = 10^5 one: the styles are Python loops (10^5 steps
    take seconds each), and the CLI test below runs a whole layout, that check included."""
    from refmath.checks import checks_for

    return [c.id for c in checks_for(kind) if not c.id.endswith("long_float32")]


@pytest.mark.parametrize("kind, layout, function, waiver", [
    # the (1 − done) / response-mask multiplications are differences each layout declares
    # (refmath.conformance.differences): the faithful ports pass with no waiver at all
    ("gae", "cleanrl", "cleanrl_gae", None),
    ("gae", "sb3", "sb3_gae", None),
    ("gae", "verl", "verl_gae", None),
    ("gae", "torchrl", "torchrl_gae", None),
    ("lambda_returns", "torchrl", "torchrl_td_lambda", None),
    ("group_advantages", "trl", "trl_grpo",
     "group_advantages.zero_spread=TRL subtracts the computed group mean: a zero-spread group "
     "gets its rounding / (std + 1e-4), ~1e-3 in float32, not 0"),
    ("policy_loss", "verl", "verl_policy_loss", None),
])
def test_a_correct_function_passes_in_its_layout(scratch, monkeypatch, kind, layout, function,
                                                 waiver):
    """In process (the CLI path is the next test's): one run, nothing but the layout."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    report = check(kind, getattr(styles, function), layout=layout, profile="quick",
                   expected_failures=[waiver] if waiver else None, checks=_short(kind))
    assert report.passed, str(report)
    assert ": PASS —" in report.verdict_line() and f"binding {layout}" in report.verdict_line()
    xfails = [r for r in report.results if r.status == "xfail"]
    if waiver:
        assert any(r.waiver == waiver.partition("=")[2] for r in xfails)
    if kind in ("gae", "lambda_returns"):  # the declared difference, named where it applies
        assert len(xfails) == 1 and "(by design in the" in xfails[0].waiver


def test_the_cli_runs_a_layout_with_nothing_else(scratch):
    # one value check and the waived one: the CLI route is the point (the full sb3 suite
    # runs in-process in test_a_correct_function_passes_in_its_layout)
    r = _cli(["check", "gae", "styles:sb3_gae", "--layout", "sb3", "--profile", "quick",
              "--check", "exact_small", "--check", "ignored_numbers"], scratch)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert ": PASS —" in r.stdout and "binding sb3" in r.stdout and "1 XFAIL" in r.stdout
    assert "waived: nan_bootstrap_multiplied (by design in the sb3" in r.stdout


@pytest.mark.parametrize("kind, layout, function, cause", [
    ("gae", "cleanrl", "cleanrl_done_off_by_one", "cleanrl_done_off_by_one"),
    ("gae", "sb3", "sb3_gamma_missing", "gamma_missing_in_carry"),
    ("gae", "verl", "verl_padding_in_recursion", "verl_padding_in_recursion"),
    ("gae", "torchrl", "torchrl_truncation_as_termination", "truncation_as_termination"),
    ("lambda_returns", "torchrl", "torchrl_td_lambda_not_restarted",
     "torchrl_td_lambda_not_restarted"),
    ("group_advantages", "trl", "trl_biased_std", "grpo_biased_std"),
    # verl's own spelling of the slip first: it reproduces verl's clamps on every probe
    ("policy_loss", "verl", "verl_policy_loss_padding_in_mean", "verl_loss_padding_in_mean"),
])
def test_a_classic_slip_fails_with_its_cause_named(scratch, monkeypatch, kind, layout,
                                                   function, cause):
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    report = check(kind, getattr(styles, function), layout=layout, profile="detect",
                   checks=["float64"])
    text = str(report)
    assert not report.passed, text
    assert f"matches known mistake '{cause}'" in text
    assert "WRONG" in text and f"from styles import {function}" in text


def test_a_declared_difference_excuses_only_what_it_reproduces(scratch, monkeypatch):
    """CleanRL's (1 − done) multiplication is waived because the check passes once the NaN
    terminal bootstraps are made finite; a CleanRL-style loop that never reads next_done
    fails the same check with those inputs finite too, so it stays a failure."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    # profile detect (not quick): quick's few examples may all have γ = 0, where a read
    # bootstrap is multiplied away too
    kw = dict(layout="cleanrl", profile="detect", checks=["ignored_numbers"])
    faithful = check("gae", styles.cleanrl_gae, **kw)
    assert faithful.passed and faithful.results[0].status == "xfail"
    assert faithful.results[0].waiver.startswith("nan_bootstrap_multiplied")
    buggy = check("gae", styles.cleanrl_next_done_ignored, **kw)
    assert not buggy.passed and buggy.results[0].status == "failed"
    assert "not explained by the declared difference(s) nan_bootstrap_multiplied" in \
        buggy.results[0].message


def test_a_narrow_waiver_names_a_difference(scratch, monkeypatch):
    """Under a convention (no layout), ``CHECK:DIFFERENCE`` waives only what the difference
    reproduces; a plain ``CHECK`` waiver hides the bug too (why the narrow one exists)."""
    monkeypatch.syspath_prepend(str(scratch))
    import refmath_torch

    multiplies = _multiplies

    def reads_terminal_bootstrap(rewards, values, next_values, *, gamma, lam,
                                 terminated=None):
        return refmath_torch.gae(rewards, values, next_values, gamma=gamma, lam=lam)

    kw = dict(convention="no_truncated,no_mask,no_validates_input", profile="ci",
              checks=["ignored_numbers"])
    narrow = "gae.ignored_numbers:nan_bootstrap_multiplied"
    assert check("gae", multiplies, **kw).results[0].status == "failed"
    assert check("gae", multiplies, **kw, expected_failures=[narrow]).passed
    assert not check("gae", reads_terminal_bootstrap, **kw, expected_failures=[narrow]).passed
    assert check("gae", reads_terminal_bootstrap, **kw,
                 expected_failures=["gae.ignored_numbers"]).passed
    with pytest.raises(ValueError, match="unknown difference 'nan_bootstrap'.*did you mean"):
        check("gae", multiplies, **kw, expected_failures=["gae.ignored_numbers:nan_bootstrap"])


def test_renamed_arguments(scratch, monkeypatch):
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    def my_gae(r, v, d, nv, nd, gamma, lam):
        return styles.cleanrl_gae(r, v, d, nv, nd, gamma, lam)

    report = check("gae", my_gae, layout="cleanrl", profile="quick", checks=_short("gae"),
                   arg={"rewards": "r", "values": "v", "dones": "d", "next_value": "nv",
                        "next_done": "nd", "gae_lambda": "lam"})
    assert report.passed, str(report)


def test_signature_mismatch_is_a_usage_error_naming_the_layouts_that_fit(scratch, monkeypatch,
                                                                          capsys):
    monkeypatch.chdir(scratch)
    monkeypatch.syspath_prepend(str(scratch))
    assert main(["check", "gae", "styles:cleanrl_gae"]) == 2  # SPEC's signature expected
    err = capsys.readouterr().err
    assert "cannot be called as the checks call it under binding spec" in err
    assert "(SPEC: gae(" in err and "cleanrl (gae)" in err
    assert main(["check", "gae", "styles:sb3_gae", "--layout", "cleanrl"]) == 2
    err = capsys.readouterr().err
    assert "fn(rewards, values, dones, next_value, next_done, gamma, gae_lambda)" in err
    assert "sb3 (gae)" in err
    assert main(["check", "gae", "styles:cleanrl_gae", "--layout", "cleanrl", "--arg",
                 "reward=r"]) == 2
    assert "did you mean 'rewards'" in capsys.readouterr().err
    assert main(["check", "gae", "styles:cleanrl_gae", "--layout", "clean_rl"]) == 2
    assert "did you mean 'cleanrl'" in capsys.readouterr().err
    assert main(["check", "policy_loss", "styles:verl_policy_loss", "--layout", "verl",
                 "--only", "mode=sum"]) == 2
    assert main(["check", "gae", "styles:cleanrl_gae", "--layout", "cleanrl", "--xfail",
                 "ignored_number"]) == 2


def test_a_function_without_mask_is_told_to_declare_it(capsys):
    import refmath_torch

    def no_mask(rewards, values, next_values, *, gamma, lam, terminated=None, truncated=None):
        return refmath_torch.gae(rewards, values, next_values, gamma=gamma, lam=lam,
                                 terminated=terminated, truncated=truncated)

    with pytest.raises(ValueError, match="declare --convention no_mask"):
        check("gae", no_mask)
    assert check("gae", no_mask, convention="no_mask", profile="quick").passed


def _multiplies(rewards, values, next_values, *, gamma, lam, terminated=None):
    """GAE in SPEC's names whose δ multiplies the bootstrap by (1 − terminated), as CleanRL
    does: δ_t = r_t + γ·(1 − d_t)·V'_t − V_t, then A_t = δ_t + γλ·A_{t+1} cut at terminals."""
    import refmath_torch

    nt = 1.0 - terminated.to(rewards.dtype)
    delta = rewards + gamma * next_values * nt - values
    zeros = torch.zeros_like(rewards)
    return refmath_torch.gae(delta, zeros, zeros, gamma=gamma, lam=lam, terminated=terminated)


def test_strict_fails_on_xpass_and_fail_on_picks_tiers():
    kw = dict(convention="no_truncated,no_mask,no_validates_input", profile="quick",
              checks=["exact_small", "ignored_numbers"])
    waived = check("gae", _multiplies, **kw,
                   expected_failures={"exact_small": "claimed", "ignored_numbers": "leaks"})
    assert [r.status for r in waived.results] == ["xpass", "xfail"] and waived.passed
    assert not check("gae", _multiplies, **kw, strict=True,
                     expected_failures={"exact_small": "claimed",
                                        "ignored_numbers": "leaks"}).passed
    robust_only_failure = check("gae", _multiplies, **kw, fail_on=["correctness"])
    assert robust_only_failure.passed and robust_only_failure.results[1].status == "failed"
    assert robust_only_failure.results[1].severity == "robustness"
    assert "(1 robustness)" in robust_only_failure.verdict_line()


def test_plugin_two_kinds_each_with_its_binding_and_waiver(scratch):
    """Two implementations of two kinds in one run: the bracket holds each one's binding, and
    an ini waiver applies to the kind its check id names only."""
    (scratch / "pytest.ini").write_text(
        "[pytest]\nrefmath_xfail =\n    group_advantages.zero_spread=TRL's float32 residue\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rxs", "-p", "no:cacheprovider",
                        "--pyargs", "refmath.suite", "--refmath-profile", "quick",
                        "--refmath-impl", "gae=styles:cleanrl_gae[cleanrl]",
                        "--refmath-impl", "group_advantages=styles:trl_grpo[trl]",
                        # the two waived checks and one plain check per kind: the routing
                        # of bindings and waivers is the point, not the full suites
                        "-k", "ignored_numbers or zero_spread or float64"],
                       cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
    (scratch / "pytest.ini").unlink()
    assert r.returncode == 0, r.stdout[-3000:]
    assert "2 xfailed" in r.stdout
    assert "gae.ignored_numbers: nan_bootstrap_multiplied" in r.stdout
    assert "group_advantages.zero_spread: TRL's float32 residue" in r.stdout


def test_pyproject_tables_drive_the_cli_and_the_plugin(scratch):
    (scratch / "pyproject.toml").write_text(
        '[tool.refmath.check.gae]\ntarget = "styles:cleanrl_gae"\nlayout = "cleanrl"\n\n'
        '[tool.refmath.check.grpo]\nkind = "group_advantages"\ntarget = "styles:trl_grpo"\n'
        'layout = "trl"\nxfail = ["group_advantages.zero_spread"]\n\n'
        '[tool.refmath.check.slip]\nkind = "gae"\ntarget = "styles:cleanrl_done_off_by_one"\n'
        'binding = "cleanrl"\n')
    try:
        cli = _cli(["check", "--profile", "quick", "--check", "float64"], scratch)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
        plugin = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 "--pyargs", "refmath.suite", "--refmath-profile", "quick",
                                 "-k", "float64 or zero_spread"], cwd=scratch, env=env,
                                capture_output=True, text=True, timeout=600)
    finally:
        (scratch / "pyproject.toml").unlink()
    assert cli.returncode == 1, cli.stdout[-3000:] + cli.stderr[-2000:]
    heads = [ln for ln in cli.stdout.splitlines() if ln.startswith("== [tool.refmath")]
    assert [h.split("]")[0] for h in heads] == ["== [tool.refmath.check.gae",
                                                "== [tool.refmath.check.grpo",
                                                "== [tool.refmath.check.slip"]
    verdicts = [ln for ln in cli.stdout.splitlines() if ln.startswith("refmath check ")
                and " — " in ln]
    assert [": PASS" in v for v in verdicts] == [True, True, False]
    # the plugin: the same three tables, each its own binding (the slip fails, the TRL
    # zero-spread residue is waived by its table)
    assert plugin.returncode == 1, plugin.stdout[-3000:]
    assert re.search(r"1 failed, 2 passed, \d+ deselected, 1 xfailed", plugin.stdout), \
        plugin.stdout[-3000:]
    assert "styles:cleanrl_done_off_by_one::gae.float64" in plugin.stdout


def _decorated(scratch):
    sys.path.insert(0, str(scratch))
    import styles

    return styles.cleanrl_gae


def test_decorator_takes_a_layout_and_waivers(scratch):
    fn = _decorated(scratch)
    mark = parametrize_with_checks("gae", fn, layout="cleanrl", profile="quick",
                                   expected_failures={"gae.ignored_numbers": "by design"})
    ids = mark.kwargs.get("ids") or mark.args[2]
    runs = dict(zip(ids, mark.args[1]))
    runs["gae.exact_small"]()  # passes
    with pytest.raises(pytest.xfail.Exception):
        runs["gae.ignored_numbers"]()


def test_discover_probes_through_the_binding(scratch, monkeypatch, capsys):
    """--discover calls the function through its binding: a CleanRL loop is probed in the
    cleanrl layout (nothing left to declare: truncation, masks and batch axes are already
    declared missing by the layout, and not probed); an array kind is probed on its first
    pinned input."""
    monkeypatch.chdir(scratch)
    monkeypatch.syspath_prepend(str(scratch))
    assert main(["check", "gae", "styles:cleanrl_gae", "--layout", "cleanrl",
                 "--discover"]) == 0
    out = capsys.readouterr().out
    assert "suggested: refmath check gae styles:cleanrl_gae (nothing to declare)" in out
    assert "truncated" not in out and "gradients" in out
    assert main(["check", "group_advantages", "styles:trl_grpo", "--layout", "trl",
                 "--discover"]) == 0
    out = capsys.readouterr().out
    assert "base" in out and "agrees with the oracle" in out


def test_a_convention_takes_renames_and_reads_tuples():
    """--arg renames SPEC's keywords under a convention too; a tuple result of a NumPy or
    trailing-singleton function is read element by element (V-trace's (vs, advantages))."""
    import numpy as np
    import refmath_torch

    def np_vtrace(rewards, values, next_values, log_rhos, *, discount, lam=1.0, rho_clip=1.0,
                  c_clip=1.0, pg_rho_clip=1.0, terminated=None, truncated=None, mask=None):
        t = [None if a is None else torch.as_tensor(a)
             for a in (rewards, values, next_values, log_rhos, terminated, truncated, mask)]
        vs, adv = refmath_torch.vtrace(*t[:4], gamma=discount, lam=lam, rho_clip=rho_clip,
                                       c_clip=c_clip, pg_rho_clip=pg_rho_clip,
                                       terminated=t[4], truncated=t[5], mask=t[6])
        return vs.numpy(), np.asarray(adv.numpy())

    report = check("vtrace", np_vtrace, binding="numpy,arg.gamma=discount,no_validates_input",
                   profile="quick")
    assert report.passed, str(report)
    assert "binding numpy,no_validates_input,arg.gamma=discount" in report.verdict_line()


def test_a_function_with_specs_exact_signature_is_never_given_an_extension():
    """SPEC's vtrace takes log_rhos; refmath's oracle also takes rhos. A function written
    with SPEC's signature (no rhos) passes every check, given its inputs as log_rhos; the
    same function called with rhos= would have raised TypeError in half the examples."""
    import refmath_torch

    calls = []

    def spec_vtrace(rewards, values, next_values, log_rhos, *, gamma, lam=1.0, rho_clip=1.0,
                    c_clip=1.0, pg_rho_clip=1.0, terminated=None, truncated=None, mask=None):
        calls.append(log_rhos is not None)
        return refmath_torch.vtrace(rewards, values, next_values, log_rhos, gamma=gamma,
                                    lam=lam, rho_clip=rho_clip, c_clip=c_clip,
                                    pg_rho_clip=pg_rho_clip, terminated=terminated,
                                    truncated=truncated, mask=mask)

    report = check("vtrace", spec_vtrace, profile="quick")
    assert report.passed, str(report)
    assert calls and all(calls)


def test_a_call_the_function_cannot_take_is_the_users_binding_error():
    """A TypeError from Python refusing the call (not raised inside the function) is a usage
    error naming the function's signature and the call, never 'a bug in refmath'; a
    TypeError raised inside the function is that function's failure."""
    import refmath_torch

    def strict_names(rewards, values, next_values, *, gamma, lam, **kw):
        if kw:  # takes anything, then refuses what it does not know, as Python would
            raise TypeError(f"unexpected {sorted(kw)}")
        return refmath_torch.gae(rewards, values, next_values, gamma=gamma, lam=lam)

    report = check("gae", strict_names, profile="quick", checks=["float64"])
    assert not report.passed and report.results[0].tier == "ERROR"
    assert "a bug in refmath" not in report.results[0].message

    def positional_only(rewards, values, next_values, gamma, lam, /):
        return refmath_torch.gae(rewards, values, next_values, gamma=gamma, lam=lam)

    with pytest.raises(ValueError, match=r"positional_only\(rewards.*cannot be called"):
        check("gae", positional_only, profile="quick",
              convention="no_truncated,no_mask,no_validates_input")


def test_the_guard_tells_a_refused_call_from_a_typeerror_inside():
    from refmath.checks.guard import CallMismatch, Guarded

    def two(a, b):
        raise TypeError("inside")

    with pytest.raises(CallMismatch, match=r"two\(a, b\) cannot be called .*fn\(<array>, c=\)"):
        Guarded(two)(1, c=2)
    with pytest.raises(TypeError, match="inside") as info:
        Guarded(two)(1, 2)
    assert not isinstance(info.value, CallMismatch)


def test_openrlhf_kl_is_checked_against_its_own_semantics(scratch, monkeypatch):
    """OpenRLHF's compute_approx_kl (float32, clamped to ±10) against the derived oracle
    clamp(k, −10, 10) with float32 bounds: the faithful port fails only in the precision
    tier, on its real flaw (k3 without expm1), named; the KL direction swapped fails as a
    correctness bug, named; k1 and k2 alone (--only in OpenRLHF's option name) pass."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    faithful = check("kl_estimate", styles.openrlhf_approx_kl, layout="openrlhf")
    failed = [r for r in faithful.results if r.status == "failed"]
    assert failed and {r.severity for r in failed} == {"precision"}
    assert all(r.causes == ["k3_without_expm1"] for r in failed)
    assert not any("runs in float32" in r.message for r in failed)
    assert check("kl_estimate", styles.openrlhf_approx_kl, layout="openrlhf",
                 fail_on=["correctness"], checks=[r.id for r in failed]).passed
    assert check("kl_estimate", styles.openrlhf_approx_kl, layout="openrlhf",
                 only={"kl_estimator": ["k1", "k2"]}).passed
    swapped = check("kl_estimate", styles.openrlhf_kl_direction_swapped, layout="openrlhf",
                    fail_on=["correctness"])
    assert not swapped.passed
    # the layout's own slip ranked first (it reproduces the clamp and the float32 too; the
    # SPEC-layout 'kl_wrong_direction' is the same mistake, matched by behaviour)
    assert any(r.causes[:1] == ["openrlhf_kl_direction_swapped"] for r in swapped.failing())
    unclamped = check("kl_estimate", _unclamped, layout="openrlhf",
                      only={"kl_estimator": ["k1"]}, checks=["float64"])
    assert not unclamped.passed  # the clamp is part of what is checked


def _unclamped(log_probs, log_probs_base, kl_estimator):
    return log_probs.float() - log_probs_base.float()


def test_every_layout_is_listed_and_documented(capsys):
    """`refmath list` and the layout table of docs/bindings.md show every built-in layout, its kinds and
    its by-design differences; every difference a layout declares exists."""
    from refmath.conformance.differences import DIFFERENCES
    from refmath.conformance.layouts import LAYOUTS

    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    readme = (HERE.parent / "docs" / "bindings.md").read_text()
    for lay in LAYOUTS.values():
        assert f"  {lay.name}: " in listed
        assert f"| `{lay.name}` |" in readme
        for kind in lay.kinds:
            assert f"{kind}: {lay.signature(kind)}" in listed
        for kind, names in lay.differences.items():
            assert kind in lay.kinds and set(names) <= set(DIFFERENCES)
            for name in names:
                assert name in readme


def test_verl_policy_loss_every_mode_with_verls_semantics(scratch, monkeypatch):
    """verl's compute_policy_loss + agg_loss in all four modes, with clip-higher and the dual
    clip: seq-mean-token-sum-norm is Σ_b Σ_t m·l / T in verl (no mean over sequences), and
    --only takes verl's own option name; a port that also averages over sequences fails."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    norm = {"loss_agg_mode": ["seq-mean-token-sum-norm"]}
    assert check("policy_loss", styles.verl_policy_loss, layout="verl", only=norm,
                 checks=["float64", "gradient"]).passed

    def mean_over_sequences(old_log_prob, log_prob, advantages, response_mask, cliprange=None,
                            cliprange_low=None, cliprange_high=None, clip_ratio_c=3.0,
                            loss_agg_mode="token-mean"):
        loss = styles.verl_policy_loss(old_log_prob, log_prob, advantages, response_mask,
                                       cliprange, cliprange_low, cliprange_high, clip_ratio_c,
                                       loss_agg_mode)[0]
        return loss / (response_mask.sum(-1) > 0).sum(), None

    report = check("policy_loss", mean_over_sequences, layout="verl", only=norm,
                   checks=["float64"])
    assert not report.passed and report.results[0].tier == "WRONG"


def test_verl_grpo_outcome_advantage_by_index(scratch, monkeypatch):
    """verl's GRPO outcome advantage, as written (grouped by index, the groups interleaved in
    the batch; a lone sample keeps mean 0 / std 1; computed under no_grad): it fails only
    its real flaw, the float zero-spread residue (precision, named); grouping by position
    fails correctness, named; a lone sample given SPEC's 0 fails, as verl keeps its score."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    faithful = check("group_advantages", styles.verl_grpo_outcome, layout="verl")
    failed = faithful.failing()
    assert [r.id for r in failed] == ["group_advantages.zero_spread"], str(faithful)
    assert failed[0].severity == "precision" and failed[0].causes == ["group_mean_rounding"]
    assert check("group_advantages", styles.verl_grpo_outcome, layout="verl",
                 fail_on=["correctness"]).passed
    slip = check("group_advantages", styles.verl_grpo_groups_by_position, layout="verl",
                 checks=["float64"], fail_on=["correctness"])
    assert not slip.passed and "verl_grpo_groups_by_position" in slip.results[0].causes

    def lone_sample_zero(token_level_rewards, response_mask, index, epsilon=1e-6,
                         norm_adv_by_std_in_grpo=True):
        out, _ = styles.verl_grpo_outcome(token_level_rewards, response_mask, index, epsilon,
                                          norm_adv_by_std_in_grpo)
        lone = np.bincount(np.asarray(index))[np.asarray(index)] == 1
        out[torch.as_tensor(lone)] = 0.0
        return out, out

    assert not check("group_advantages", lone_sample_zero, layout="verl",
                     checks=["float64"]).passed


def test_trl_scale_rewards_every_scaling(scratch, monkeypatch):
    """A TRL-style advantage function that takes scale_rewards is checked in all three
    scalings (group: grpo, batch: batch_std, none: dr_grpo); one without it in group only.
    The faithful one fails only the zero-spread residue (precision, named); dividing the
    'batch' scaling by the group std fails correctness, named."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    from refmath.conformance import resolve

    assert resolve("group_advantages", styles.trl_grpo_scaled, layout="trl").only["method"] \
        == ("grpo", "batch_std", "dr_grpo")
    assert resolve("group_advantages", styles.trl_grpo, layout="trl").only["method"] == \
        ("grpo",)
    faithful = check("group_advantages", styles.trl_grpo_scaled, layout="trl")
    assert [(r.id, r.severity, r.causes) for r in faithful.failing()] == [
        ("group_advantages.zero_spread", "precision", ["group_mean_rounding"])]
    assert check("group_advantages", styles.trl_grpo_scaled, layout="trl",
                 only={"method": ["batch_std"]}, fail_on=["correctness"]).passed
    slip = check("group_advantages", styles.trl_batch_scaled_by_group_std, layout="trl",
                 checks=["float64"])
    assert not slip.passed and slip.results[0].severity == "correctness"
    assert "trl_batch_scaled_by_group_std" in slip.results[0].causes


def test_trl_policy_loss_by_loss_type(scratch, monkeypatch):
    """TRL's GRPO loss, one advantage per completion, in each loss_type against TRL's own
    semantics: grpo averages over ALL rows (an emptied completion counts 0), dr_grpo divides
    by B·max_completion_length; the faithful port passes (its mask multiplication declared);
    grpo averaged over the non-empty rows only fails, named as the TRL-style mistake and not
    as a SPEC-layout one (SPEC's formula is no mistake against TRL's semantics)."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    faithful = check("policy_loss", styles.trl_grpo_loss, layout="trl")
    assert faithful.passed, str(faithful)
    assert check("policy_loss", styles.trl_grpo_loss, layout="trl",
                 only={"loss_type": ["dr_grpo"]}, checks=["float64"]).passed
    slip = check("policy_loss", styles.trl_grpo_loss_empty_rows_left_out, layout="trl",
                 checks=["float64"])
    assert not slip.passed
    assert slip.results[0].causes == ["trl_grpo_empty_rows_left_out"]
    assert "as the library computes it" in slip.results[0].message


def test_trl_sequence_level_is_gspo_against_trls_semantics(scratch, monkeypatch):
    """importance_sampling_level="sequence" (GSPO in TRL): the same TRL loss function, checked
    as kind gspo_surrogate, is −(mean over ALL rows of GSPO's sequence surrogate); the faithful
    port passes with nothing but the layout, the ratio from the SUM of the log-ratios fails
    named; a function that does not take importance_sampling_level is told so before any
    example."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    faithful = check("gspo_surrogate", styles.trl_grpo_loss, layout="trl", profile="quick")
    assert faithful.passed, str(faithful)
    assert {r.id for r in faithful.results if r.status == "passed"} >= {
        "gspo_surrogate.float64", "gspo_surrogate.float32", "gspo_surrogate.gradcheck"}
    slip = check("gspo_surrogate", styles.trl_gspo_ratio_from_sum, layout="trl",
                 checks=["float64"], profile="quick")
    assert not slip.passed and slip.results[0].causes == ["trl_gspo_ratio_from_sum"]

    def ignores_the_level(per_token_logps, old_per_token_logps, advantages, completion_mask,
                          epsilon_low, epsilon_high, loss_type, max_completion_length,
                          importance_sampling_level="token"):  # always token-level ratios
        return styles.trl_grpo_loss(per_token_logps, old_per_token_logps, advantages,
                                    completion_mask, epsilon_low, epsilon_high, loss_type,
                                    max_completion_length)

    assert not check("gspo_surrogate", ignores_the_level, layout="trl", checks=["float64"],
                     profile="quick").passed
    with pytest.raises(UsageError, match="importance_sampling_level"):
        check("gspo_surrogate", styles.trl_grpo_loss_empty_rows_left_out, layout="trl")


def test_openrlhf_reinforce_baseline_token_level(scratch, monkeypatch):
    """OpenRLHF's REINFORCE++-baseline: r − group mean on the last action token, γ = 1
    returns, whitened over every ACTION TOKEN of the batch (completions of 1, 2, 3 tokens, so
    the token weights matter) in float32: the faithful port passes with nothing but the
    layout; the whitening over the padded tensor and the per-completion whitening (refmath's
    own reinforce_pp, unweighted) fail with the layout's mistake named; a completion whose
    tokens disagree is refused with the reason."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    faithful = check("group_advantages", styles.openrlhf_reinforce_baseline, layout="openrlhf",
                     profile="quick")
    assert faithful.passed, str(faithful)
    for slip, cause in ((styles.openrlhf_reinforce_baseline_whitened_with_padding,
                         "openrlhf_whitening_over_padding"),
                        (styles.openrlhf_reinforce_baseline_per_completion,
                         "openrlhf_whitening_per_completion")):
        report = check("group_advantages", slip, layout="openrlhf", checks=["float64"],
                       profile="quick")
        assert not report.passed and cause in report.results[0].causes, str(report)

    def last_token_only(rewards, action_mask, n_samples_per_prompt):  # no γ = 1 return
        A = styles.openrlhf_reinforce_baseline(rewards, action_mask, n_samples_per_prompt)
        eos = action_mask.long().cumsum(-1) == action_mask.sum(-1, keepdim=True)
        return A * eos

    report = check("group_advantages", last_token_only, layout="openrlhf", checks=["float64"],
                   profile="quick")
    assert "differ across their action tokens" in report.results[0].message


def test_openrlhf_policy_loss_a_class_built_from_the_options(scratch, monkeypatch):
    """OpenRLHF's PolicyLoss is an nn.Module: the layout builds it from the options the kind
    varies (clip_eps_low/high, dual_clip, token_level_loss) and calls it; the faithful one
    passes (its mask multiplication declared), the dual clip on positive advantages fails,
    named; a class whose constructor does not fit is a usage error before any example."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    faithful = check("policy_loss", styles.PolicyLoss, layout="openrlhf")
    assert faithful.passed, str(faithful)
    assert check("policy_loss", styles.PolicyLoss, layout="openrlhf",
                 only={"token_level_loss": [False]}, checks=["float64"]).passed
    # (a fixed seed whose search shrinks in about a second: the derandomized one, seeded from
    # the check's source, takes ~10 s to shrink this loss; the cause named is what is read)
    slip = check("policy_loss", styles.PolicyLossDualClipEverywhere, layout="openrlhf",
                 checks=["float64"], seed=3)
    assert not slip.passed
    assert "OpenRLHFDualClipEverywhere" in slip.results[0].causes

    class WrongConstructor(torch.nn.Module):
        def __init__(self, eps=0.2):
            super().__init__()

    with pytest.raises(ValueError, match=r"cannot be built and called .*Cls\(clip_eps_low"):
        check("policy_loss", WrongConstructor, layout="openrlhf")


def test_the_binding_text_form_round_trips_and_names_its_mistakes():
    """One text form: parsed, joined with the separate options, printed back the same; an
    unknown word is a usage error with a suggestion; a string `only` is one OPTION=VALUES
    (parametrize_with_checks(only="c_clip=1") used to parse as --only 'c')."""
    from refmath.conformance import binding_from, parse_binding

    text = ("verl,no_validates_input,arg.response_mask=mask,only.mode=token-mean|seq-mean-token-"
            "mean,xfail=policy_loss.ignored_numbers:nan_padding_multiplied,computes_in=float32")
    b = parse_binding(text)
    assert b.layout == "verl" and b.args == {"response_mask": "mask"}
    assert b.only == {"mode": ("token-mean", "seq-mean-token-mean")}
    assert b.computes_in == "float32" and b.convention.unsupported == ("validates_input",)
    assert parse_binding(b.text()) == b
    joined = binding_from(text, arg=["values=v"], only="clip_low=0.2")
    assert joined.args == {"response_mask": "mask", "values": "v"}
    assert joined.only["clip_low"] == (0.2,)
    assert binding_from({"layout": "trl", "only": {"loss_type": ["grpo"]}}).text() == \
        "trl,only.loss_type=grpo"
    for bad, hint in (("clean_rl", "did you mean 'cleanrl'"), ("only.mode", "expected"),
                      ("computes_in=float16", "float32"), ("cleanrl,sb3", "two layouts")):
        with pytest.raises(ValueError, match=hint):
            parse_binding(bad)
    mark = parametrize_with_checks("vtrace", __import__("refmath_torch").vtrace,
                                   only="c_clip=1", profile="quick")
    assert mark.args[0] == "refmath_check"


def test_verl_gae_is_checked_with_its_whitening(scratch, monkeypatch):
    """verl's compute_gae_advantage_return whitens its advantages over every response token
    (masked_whiten): the faithful port passes against whiten(GAE); the same loop without
    the whitening fails, as it is not verl's function."""
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    def unwhitened(token_level_rewards, values, response_mask, gamma, lam):
        with torch.no_grad():
            out, nxt, last = [], 0, 0
            for t in reversed(range(token_level_rewards.shape[-1])):
                delta = token_level_rewards[:, t] + gamma * nxt - values[:, t]
                step = delta + gamma * lam * last
                m = response_mask[:, t]
                nxt, last = values[:, t] * m + (1 - m) * nxt, step * m + (1 - m) * last
                out.append(last)
            return torch.stack(out[::-1], dim=1), None

    faithful = check("gae", styles.verl_gae, layout="verl", profile="quick")
    assert faithful.passed, str(faithful)
    na = {r.id: r.message for r in faithful.results if r.status == "not applicable"}
    assert "whole batch" in na["gae.batch_consistency"]
    report = check("gae", unwhitened, layout="verl", profile="quick", checks=["float64"])
    assert not report.passed and report.results[0].tier == "WRONG"


def test_result_picks_the_part_of_the_value_to_check(scratch, monkeypatch):
    """`result=` in the binding: a dict key, a tuple index, with a layout too; a value
    without that part is the binding's error (exit 2 material), not the function's."""
    import refmath_torch as rt

    monkeypatch.syspath_prepend(str(scratch))
    import styles

    def as_dict(rewards, values, next_values, **kw):
        adv = rt.gae(rewards, values, next_values, **kw)
        return {"returns": adv + values, "advantages": adv}

    def returns_first(*args, **kw):  # CleanRL's (returns, advantages) order
        adv = styles.cleanrl_gae(*args, **kw)
        return adv, adv  # (the first is what _first would take: checked through result=1)

    fast = dict(checks=["exact_small"], profile="quick")
    assert check("gae", as_dict, binding="result=advantages", **fast).passed
    assert not check("gae", as_dict, binding="result=returns", **fast).passed
    assert check("gae", lambda *a, **k: tuple(as_dict(*a, **k).values()),
                 binding="result=1", **fast).passed
    assert check("gae", returns_first, binding="cleanrl,result=1", **fast).passed
    with pytest.raises(UsageError, match="no part 'advantage'"):
        check("gae", as_dict, binding="result=advantage", **fast)
    assert binding_from("cleanrl,result=1").text() == "cleanrl,result=1"
