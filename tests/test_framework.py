"""The one check framework against the function under test and against misuse: exit codes,
usage errors before any example, functions that exit, hang, print, return NaN or modify their
inputs, JSON results, reuse of a counterexample, and Hypothesis profiles left alone."""

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import settings

import refmath_torch
from refmath.checks import Check, Context, checks_for, run_check
from refmath.cli import main, run_main_job
from refmath.conformance import check, parametrize_with_checks

USER = textwrap.dedent('''
    import sys
    import time

    import refmath_torch as rt


    def good(rewards, values, next_values, **kw):
        return rt.gae(rewards, values, next_values, **kw)


    def exits(rewards, values, next_values, **kw):
        sys.exit(0)


    def hangs(rewards, values, next_values, **kw):
        while True:
            time.sleep(0.05)


    def chatty(rewards, values, next_values, **kw):
        print("x" * 100_000)
        return rt.gae(rewards, values, next_values, **kw) * 1.5


    def returns_nan(rewards, values, next_values, **kw):
        return rt.gae(rewards, values, next_values, **kw) * float("nan")


    def adds_bootstrap_into_rewards(rewards, values, next_values, *, gamma, lam,
                                    terminated=None, truncated=None, mask=None):
        """SB3's time-limit handling written into the caller's rewards: r += γ·V' at a
        truncation, which is then treated as terminal. The values are right; the caller's
        rewards are not."""
        done = terminated
        if truncated is not None:
            cut = truncated if terminated is None else truncated & ~terminated
            rewards += gamma * next_values * cut
            done = truncated if terminated is None else terminated | truncated
        return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, terminated=done,
                      mask=mask)


    NOT_A_FUNCTION = 3
''')


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    path = tmp_path_factory.mktemp("user_code")
    (path / "user_fns.py").write_text(USER)
    # a file named like an installed package must not shadow it
    (path / "torch.py").write_text("raise ImportError('the local torch.py shadowed torch')\n")
    return path


@pytest.fixture
def user(scratch, monkeypatch):
    monkeypatch.chdir(scratch)
    monkeypatch.syspath_prepend(str(scratch))
    import user_fns

    return user_fns


def _cli(args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    return subprocess.run(["refmath", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_a_function_that_exits_fails_with_exit_code_1(scratch):
    r = _cli(["check", "gae", "user_fns:exits", "--check", "exact_small"], scratch)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "SystemExit(0)" in r.stdout and "user_fns.py" in r.stdout
    assert "FAIL —" in r.stdout


def test_a_hanging_function_times_out_and_fails_fast(scratch):
    r = _cli(["check", "gae", "user_fns:hangs", "--timeout", "2"], scratch)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "did not return within 2 s" in r.stdout
    assert "timed out earlier in this run" in r.stdout  # later checks do not wait again
    assert "hint:" not in r.stdout  # probes of a hanging function would suggest nonsense


def test_a_local_torch_py_does_not_shadow_torch(scratch):
    r = _cli(["check", "gae", "user_fns:good", "--check", "exact_small", "--profile", "quick"],
             scratch)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("args, words", [
    (["check", "gea", "user_fns:good"], "did you mean 'gae'"),
    (["check", "gae", "user_fns:nope"], "no attribute 'nope'"),
    (["check", "gae", "user_fns:NOT_A_FUNCTION"], "is not callable"),
    (["check", "gae", "no_such_module:f"], "cannot import module 'no_such_module'"),
    (["check", "gae", "user_fns"], "expected module:function"),
    (["check", "identities", "user_fns:good"], "refmath's own oracles"),
    (["check", "gae", "user_fns:good", "--profile", "cii"], "did you mean 'ci'"),
    (["check", "gae", "user_fns:good", "--check", "exact_smal"], "did you mean 'gae.exact_small'"),
    (["check", "gae", "user_fns:good", "--convention", "time_majr"],
     "did you mean 'time_major'"),
    (["--kind", "gea"], "did you mean 'gae'"),
], ids=lambda x: "-".join(x) if isinstance(x, list) else None)
def test_usage_errors_exit_2_before_any_example(user, capsys, args, words):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert words in captured.err and "usage error" in captured.err
    assert "examples" not in captured.err  # no check ran


def test_json_gives_the_fields_of_every_check(user, capsys):
    assert main(["check", "gae", "user_fns:returns_nan", "--json", "--profile", "detect",
                 "--check", "exact_small", "--check", "hygiene"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False and data["checks_run"] == 2
    by_id = {r["id"]: r for r in data["results"]}
    value = by_id["gae.exact_small"]
    assert value["status"] == "failed" and value["tier"] == "WRONG"
    assert value["yours"] == "NaN" and value["exact"] and value["worst"].startswith("batch=")
    assert "user_fns" in value["reproduction"] and value["counterexample"].startswith("Episode")
    assert "returned NaN" in by_id["gae.hygiene"]["message"]  # named as NaN, not "not
    # deterministic"


def test_the_users_output_is_captured_and_truncated(user):
    report = check("gae", user.chatty, profile="detect", checks=["exact_small"])
    (result,) = report.results
    assert result.status == "failed" and result.output.startswith("x")
    assert len(str(report)) < 10_000  # 100 KB printed per call does not reach the report


def test_inputs_are_copied_before_the_call(user):
    """A function that adds the time-limit bootstrap into the caller's rewards is judged on
    what it was given: its values are right; hygiene names the modified input."""
    report = check("gae", user.adds_bootstrap_into_rewards, profile="quick",
                   convention="no_per_step_gamma,no_gradients",
                   checks=["exact_small", "float64", "float32", "batch_consistency",
                           "hygiene"])
    status = {r.id: r for r in report.results}
    for cid in ("gae.exact_small", "gae.float64", "gae.float32", "gae.batch_consistency"):
        assert status[cid].status == "passed", status[cid].message
    assert status["gae.hygiene"].status == "failed"
    assert "modified its input 'rewards'" in status["gae.hygiene"].message


def test_a_counterexample_is_found_once_and_reused(profile):
    """Once one value check has a counterexample, the later value checks of the run try it
    first (no new search, no new shrinking)."""
    from refmath.checks.mutants import truncation_as_termination

    report = check("gae", truncation_as_termination, profile=profile,
                   checks=["exact_small", "float64", "float32"])
    assert [r.status for r in report.results] == ["failed"] * 3
    assert all(r.examples == 1 for r in report.results[1:])  # the known input failed first
    assert len({r.counterexample for r in report.results}) == 1
    assert all(r.causes == ["truncation_as_termination"] for r in report.results)


def test_a_check_that_ran_no_example_fails():
    empty = Check("gae.nothing", "gae", "sees no example", lambda fn, ctx: None)
    result = run_check(empty, refmath_torch.gae, Context())
    assert result.status == "failed" and result.tier == "NO EXAMPLES"


def test_the_users_hypothesis_profiles_are_untouched(profile):
    """A user's own profile named like refmath's (``ci``) stays what the user made it."""
    from refmath.strategies import register_profiles

    settings.register_profile("ci", max_examples=300)
    settings.load_profile("ci")
    try:
        check("gae", refmath_torch.gae, profile="quick", checks=["exact_small"], seed=3)
        check("whiten", refmath_torch.whiten, profile="ci", checks=["float64"])
        assert settings.default.max_examples == 300
        assert settings.get_profile("ci").max_examples == 300
    finally:
        register_profiles()  # the suite's own profiles, as conftest registered and loaded them
        settings.load_profile(profile)


def test_a_seed_randomizes_and_reproduces(capsys):
    runs = [check("gae", refmath_torch.gae, profile="random", seed=s,
                  checks=["exact_small"]).results[0] for s in (1, 1, 2)]
    assert all(r.status == "passed" for r in runs)
    assert runs[0].examples == runs[1].examples


def test_only_the_requested_family_is_built():
    code = ("import sys; from refmath.checks import checks_for; checks_for('gae'); "
            "print(sorted(m for m in sys.modules if m.startswith('refmath.checks.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "refmath.checks.steps" in out
    assert "refmath.checks.policy" not in out and "refmath.checks.identities" not in out


def test_main_job_rejects_an_unknown_profile():
    out = io.StringIO()
    assert run_main_job(["gae"], "thorogh", out=out) == 2


@parametrize_with_checks("gae", refmath_torch.gae, profile="quick")
def test_decorator_ids_are_the_check_ids(refmath_check, request):
    assert request.node.callspec.id in {c.id for c in checks_for("gae")}
    refmath_check()


def test_decorator_reproduction_calls_the_users_function(user):
    """The decorator's failure message reproduces with the user's function, not refmath's."""
    from _pytest.mark.structures import get_unpacked_marks

    mark = parametrize_with_checks("gae", user.returns_nan, profile="detect")

    @mark
    def test(refmath_check):
        refmath_check()

    (param,) = [m for m in get_unpacked_marks(test) if m.name == "parametrize"]
    runs = dict(zip(param.kwargs.get("ids") or param.args[2], param.args[1]))
    with pytest.raises(AssertionError) as err:
        runs["gae.exact_small"]()
    text = str(err.value)
    assert "from user_fns import returns_nan" in text and "print(returns_nan(" in text
    assert "from refmath_torch import gae" not in text


def test_discover_suggests_the_convention_never_assumes_it(user, capsys):
    """One tiny exact probe per capability: a function without mask, per-step γ, batch axes
    or validation gets the --convention line to copy; the checks still run as declared."""
    from refmath.conformance.discover import discover, suggestion

    def loop_gae(rewards, values, next_values, *, gamma, lam, terminated=None,
                 truncated=None):
        B, T = rewards.shape  # [B, T] only
        out, last = rewards.new_zeros(B, T), rewards.new_zeros(B)
        term = terminated if terminated is not None else rewards.new_zeros(B, T).bool()
        trunc = truncated if truncated is not None else rewards.new_zeros(B, T).bool()
        for t in reversed(range(T)):
            boot = next_values[:, t] * (~term[:, t])
            cont = 0.0 if t == T - 1 else (~(term[:, t] | trunc[:, t])).to(rewards.dtype)
            last = rewards[:, t] + gamma * boot - values[:, t] + gamma * lam * cont * last
            out[:, t] = last
        return out

    found = discover("gae", loop_gae)
    assert {c for c, (ok, _) in found.items() if not ok} == {
        "mask", "per_step_gamma", "batch", "validates_input"}
    assert suggestion(found) == "--bind no_mask,no_per_step_gamma,no_batch,no_validates_input"
    assert all(ok for _, (ok, _) in discover("gae", refmath_torch.gae).items())
    assert main(["check", "gae", "user_fns:good", "--discover"]) == 0
    assert "(nothing to declare)" in capsys.readouterr().out
