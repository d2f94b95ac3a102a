"""The user's function as it is written: each built-in layout on a correct function and on
one with a classic slip, from a temporary directory outside the checkout, in ONE run, with
no adapter; the signature pre-check; waivers; the plugin and the decorator with a layout."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from refmath.cli import main
from refmath.conformance import check, parametrize_with_checks

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


@pytest.mark.parametrize("kind, layout, function, waiver", [
    ("gae", "cleanrl", "cleanrl_gae", CLEANRL_WAIVER),
    ("gae", "sb3", "sb3_gae", "gae.ignored_numbers=SB3 multiplies by (1 - done), by design"),
    # verl carries the recursion through padded tokens by multiplying with the response mask
    # (core_algos.compute_gae_advantage_return): a NaN value at a padded token leaks; the
    # pinned right-padded row of gae.ignored_numbers shows it on every run
    ("gae", "verl", "verl_gae", "gae.ignored_numbers=verl multiplies by the response mask: a "
     "NaN value at a padded token leaks, by design"),
    ("gae", "torchrl", "torchrl_gae",
     "gae.ignored_numbers=the loop multiplies by not_terminated, by design"),
    ("group_advantages", "trl", "trl_grpo",
     "group_advantages.zero_spread=TRL subtracts the computed group mean: a zero-spread group "
     "gets its rounding / (std + 1e-4), ~1e-3 in float32, not 0"),
    ("policy_loss", "verl", "verl_policy_loss", None),
])
def test_a_correct_function_passes_in_its_layout(scratch, kind, layout, function, waiver):
    args = ["check", kind, f"styles:{function}", "--layout", layout, "--profile", "quick"]
    if waiver:
        args += ["--xfail", waiver]
    r = _cli(args, scratch)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert ": PASS —" in r.stdout and f"layout {layout}" in r.stdout
    if waiver:
        assert "1 XFAIL" in r.stdout and "XFAIL (expected to fail:" in r.stdout


@pytest.mark.parametrize("kind, layout, function, cause", [
    ("gae", "cleanrl", "cleanrl_done_off_by_one", "cleanrl_done_off_by_one"),
    ("gae", "sb3", "sb3_gamma_missing", "gamma_missing_in_carry"),
    ("gae", "verl", "verl_padding_in_recursion", "verl_padding_in_recursion"),
    ("gae", "torchrl", "torchrl_truncation_as_termination", "truncation_as_termination"),
    ("group_advantages", "trl", "trl_biased_std", "grpo_biased_std"),
    ("policy_loss", "verl", "verl_policy_loss_padding_in_mean", "policy_loss_padding_in_mean"),
])
def test_a_classic_slip_fails_with_its_cause_named(scratch, kind, layout, function, cause):
    r = _cli(["check", kind, f"styles:{function}", "--layout", layout, "--profile", "detect",
              "--check", "float64"], scratch)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert f"matches known mistake '{cause}'" in r.stdout
    assert "WRONG" in r.stdout and f"from styles import {function}" in r.stdout


def test_the_published_cleanrl_loop_fails_without_its_waiver_and_on_that_check_only(scratch):
    r = _cli(["check", "gae", "styles:cleanrl_gae", "--layout", "cleanrl", "--profile",
              "quick"], scratch)
    assert r.returncode == 1
    failed = [line.split()[0] for line in r.stdout.splitlines() if "  failed  " in line]
    assert failed == ["gae.ignored_numbers"]


def test_renamed_arguments(scratch, monkeypatch):
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    def my_gae(r, v, d, nv, nd, gamma, lam):
        return styles.cleanrl_gae(r, v, d, nv, nd, gamma, lam)

    report = check("gae", my_gae, layout="cleanrl", profile="quick",
                   arg={"rewards": "r", "values": "v", "dones": "d", "next_value": "nv",
                        "next_done": "nd", "gae_lambda": "lam"},
                   expected_failures={"gae.ignored_numbers": "by design"})
    assert report.passed, str(report)


def test_signature_mismatch_is_a_usage_error_naming_the_layouts_that_fit(scratch, monkeypatch,
                                                                          capsys):
    monkeypatch.chdir(scratch)
    monkeypatch.syspath_prepend(str(scratch))
    assert main(["check", "gae", "styles:cleanrl_gae"]) == 2  # SPEC's signature expected
    err = capsys.readouterr().err
    assert "cannot be called as SPEC's gae(" in err and "cleanrl (gae)" in err
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


def test_strict_fails_on_xpass_and_fail_on_picks_tiers(scratch, monkeypatch):
    monkeypatch.syspath_prepend(str(scratch))
    import styles

    kw = dict(layout="cleanrl", profile="quick", checks=["exact_small", "ignored_numbers"])
    waived = check("gae", styles.cleanrl_gae, **kw,
                   expected_failures={"exact_small": "claimed", "ignored_numbers": "leaks"})
    assert [r.status for r in waived.results] == ["xpass", "xfail"] and waived.passed
    assert not check("gae", styles.cleanrl_gae, **kw, strict=True,
                     expected_failures={"exact_small": "claimed",
                                        "ignored_numbers": "leaks"}).passed
    robust_only_failure = check("gae", styles.cleanrl_gae, **kw, fail_on=["correctness"])
    assert robust_only_failure.passed and robust_only_failure.results[1].status == "failed"
    assert robust_only_failure.results[1].severity == "robustness"
    assert "(1 robustness)" in robust_only_failure.verdict_line()


def test_plugin_with_a_layout_and_an_ini_waiver(scratch):
    (scratch / "pytest.ini").write_text("[pytest]\nrefmath_xfail =\n    " + CLEANRL_WAIVER + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rxs", "-p", "no:cacheprovider",
                        "--pyargs", "refmath.suite", "--refmath-profile", "quick",
                        "--refmath-impl", "gae=styles:cleanrl_gae[cleanrl]"],
                       cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
    (scratch / "pytest.ini").unlink()
    assert r.returncode == 0, r.stdout[-3000:]
    assert "1 xfailed" in r.stdout and "[gae.ignored_numbers]" in r.stdout


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
