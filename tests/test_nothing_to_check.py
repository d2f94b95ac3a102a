"""Nothing passes by having nothing to check: a kind without checks, an ``--only`` outside
the oracle's domain or that a kind cannot honour, and a run in which every check is not
applicable are usage errors (exit 2), never a PASS; a check none of whose inputs applies is
reported not applicable with the reason, never failed."""

import pytest

import refmath_torch
from refmath import objectives as ob
from refmath.checks import REGISTRY, Check, Context, UsageError, checks_for, run_check
from refmath.checks.specs import SPECS, FunctionSpec
from refmath.cli import main
from refmath.conformance import check


def _returns_123(*args, **kwargs):
    return 123


@pytest.fixture
def row_without_checks(monkeypatch):
    """A spec row whose family registers no check for it (what adding a row and forgetting
    its checks looks like)."""
    monkeypatch.setitem(SPECS, "whiten_copy", FunctionSpec("whiten_copy", "policy", ob.whiten))
    checks_for("whiten")  # the family is loaded: nothing registers the new kind later
    assert "whiten_copy" not in REGISTRY
    return "whiten_copy"


def test_a_kind_with_no_checks_is_a_usage_error(row_without_checks):
    with pytest.raises(UsageError, match="whiten_copy has no check"):
        check(row_without_checks, _returns_123)


def test_a_kind_with_no_checks_exits_2_in_check_and_in_the_main_job(row_without_checks,
                                                                    capsys):
    assert main(["check", row_without_checks, "tests.test_nothing_to_check:_returns_123"]) == 2
    assert main(["--kind", row_without_checks]) == 2
    assert "has no check to run" in capsys.readouterr().err


def test_only_outside_the_oracles_domain_is_a_usage_error():
    """``--only eps=0``: refmath's own oracle rejects it, so it is no option (before any
    example, not as 'a bug in refmath' from inside a check)."""
    with pytest.raises(UsageError, match="eps=0 is outside the domain of group_advantages"):
        check("group_advantages", refmath_torch.group_advantages, only=["eps=0"])
    with pytest.raises(UsageError, match="clip_low=-0.5 is outside the domain"):
        check("policy_loss", refmath_torch.policy_loss, only=["clip_low=-0.5"])


def test_only_inside_the_domain_is_honoured():
    report = check("group_advantages", refmath_torch.group_advantages,
                   only=["eps=0.5", "method=grpo"], checks=["float64"])
    assert report.passed and report.results[0].examples >= 1


def test_only_on_a_kind_that_cannot_honour_it_is_a_usage_error():
    """The §2 checks draw their own γ, λ and flags: an ``--only gamma=0.5`` would be ignored
    silently."""
    with pytest.raises(UsageError, match="cannot be narrowed by option"):
        check("gae", refmath_torch.gae, only=["gamma=0.5"])


def test_a_check_without_an_applicable_input_is_not_applicable_with_the_reason():
    """Batch-wide group statistics (``batch_std``) make rows depend on each other: the
    batch-consistency check has no input to use, and says so instead of failing."""
    (bc,) = [c for c in checks_for("group_advantages")
             if c.id == "group_advantages.batch_consistency"]
    result = run_check(bc, refmath_torch.group_advantages,
                       Context(only={"method": ("batch_std",)}))
    assert result.status == "not applicable", result.message
    assert "a statistic over the whole batch" in result.message


def test_a_run_in_which_every_check_is_not_applicable_is_a_usage_error(row_without_checks,
                                                                      monkeypatch):
    """The kind's only check needs gradients, declared missing: nothing is checked, so the
    run is a usage error, not a PASS of zero checks."""
    def needs_gradients(fn, ctx):
        ctx.tracker.saw()

    monkeypatch.setitem(REGISTRY, row_without_checks, [
        Check(f"{row_without_checks}.gradient", row_without_checks, "a gradient fact",
              needs_gradients, frozenset({"gradients"}))])
    assert check(row_without_checks, refmath_torch.whiten).passed
    with pytest.raises(UsageError, match="nothing was checked.*declared: no gradients"):
        check(row_without_checks, refmath_torch.whiten, convention="no_gradients")


def test_max_examples_lifts_every_cap():
    """``--max-examples 30`` runs 30 examples in a check capped at 15 under ``ci``."""
    (hyg,) = [c for c in checks_for("whiten") if c.id == "whiten.hygiene"]
    capped = run_check(hyg, refmath_torch.whiten, Context(profile="ci"))
    lifted = run_check(hyg, refmath_torch.whiten, Context(profile="ci", max_examples=30))
    assert capped.examples <= 15 < lifted.examples
