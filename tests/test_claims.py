"""The claims ledger and the API for one's own claims."""

from fractions import Fraction as F

import io

import pytest
import sympy

import refmath
from refmath import claims as C
from refmath.cli import run_claims

LEDGER = C.all_claims()


@pytest.mark.parametrize("claim_id", list(LEDGER))
def test_every_claim_gets_its_recorded_verdict(claim_id):
    c = LEDGER[claim_id]
    v = c.run()
    assert v.status == c.expected, str(v)
    assert v.evidence
    if v.status == C.CONDITIONAL:
        assert v.conditions, "a conditional verdict must say under which conditions"


def test_ledger_covers_the_notes_and_the_papers():
    ids = set(LEDGER)
    for required in ("notes.kl_example", "notes.importance_sampling_example",
                     "notes.ppo_clip_example", "notes.gae_lambda0_is_td",
                     "notes.gae_lambda1_is_mc", "notes.gae_recursive_equals_sum",
                     "notes.baseline_unbiased", "notes.importance_variance_exponential",
                     "notes.trpo_hessian_of_objective", "notes.adaptive_beta_rule",
                     "paper.ppo_gae_truncated", "paper.ppo_adaptive_kl", "paper.trpo_step_size",
                     "blog.k1_unbiased", "blog.k2_biased", "blog.k3_unbiased",
                     "drgrpo.std_upweights_easy_and_hard"):
        assert required in ids


@pytest.mark.parametrize("old, new", [
    ([F(3, 10), F(4, 10), F(3, 10)], [F(5, 10), F(35, 100), F(15, 100)]),
    ([0.3, 0.4, 0.3], [0.5, 0.35, 0.15]),
])
def test_kl_example_verdict_does_not_depend_on_representation(old, new):
    """Fractions (exact) and floats (float64) give the same verdict and the same value to
    float precision: 0.1081 nats, not 0.09."""
    kl = refmath.kl_divergence(old, new)[()]
    v = C.check_value(kl, 0.09, 0.005)
    assert v.status == C.FALSE
    assert abs(float(sympy.N(v.value)) - 0.1081090) < 1e-6


def test_check_value_true_and_alternatives():
    assert C.check_value(F(4, 3), 1.33, 0.005).status == C.TRUE
    assert C.check_value(sympy.Rational(4, 3), "1.33", "0.005").status == C.TRUE
    v = C.check_value(sympy.log(2), 1.0, 0.01, alternatives={"bits": sympy.log(2) / sympy.log(2)})
    assert v.status == C.FALSE and "matches: bits" in v.evidence


def test_check_identity_proves_a_true_identity_in_two_lines():
    v = C.check_identity(lambda r0, r1, v0, v1, b, g, l: refmath.gae([r0, r1], [v0, v1], [v1, b],
                                                                    gamma=g, lam=l),
                         lambda r0, r1, v0, v1, b, g, l: refmath.gae_summed(
                             [r0, r1], [v0, v1], [v1, b], gamma=g, lam=l),
                         assumptions={"g": (0, 1), "l": (0, 1)})
    assert v.status == C.TRUE and "proven symbolically" in v.evidence


def test_check_identity_counterexample_reproduces():
    lhs, rhs = (lambda a, b: (a + b) ** 2), (lambda a, b: a**2 + b**2)
    v = C.check_identity(lhs, rhs)
    assert v.status == C.FALSE
    point = {k: F(x) for k, x in v.counterexample.items()}
    assert lhs(**point) != rhs(**point)


def test_check_identity_finds_the_wrong_exponent_of_ppo_eq_11():
    """The user API reproduces a ledger verdict: PPO eq. (11) with exponent T−t+1."""
    def printed(r0, r1, r2, v0, v1, v2, v3, g, l):
        d = refmath.td_errors([r0, r1, r2], [v0, v1, v2], [v1, v2, v3], gamma=g)
        return d[0] + g * l * d[1] + (g * l) ** (3 - 0 + 1) * d[2]

    def recursion(r0, r1, r2, v0, v1, v2, v3, g, l):
        return refmath.gae([r0, r1, r2], [v0, v1, v2], [v1, v2, v3], gamma=g, lam=l)[0]

    v = C.check_identity(printed, recursion, assumptions={"g": (0, 1), "l": (0, 1)})
    assert v.status == C.FALSE and v.counterexample


def test_claims_command_exit_code(monkeypatch):
    out = io.StringIO()
    assert run_claims(out=out) == 0
    assert "notes.kl_example" in out.getvalue()
    # an expected-true claim that fails makes the command fail
    c = LEDGER["notes.importance_sampling_example"]
    monkeypatch.setitem(LEDGER, c.id, C.Claim(c.id, c.source, c.statement, c.expected,
                                              lambda: C.Verdict(C.FALSE, "broken")))
    assert run_claims(out=io.StringIO()) == 1
    assert run_claims(c.id, out=io.StringIO()) == 1


def test_claims_do_not_import_torch():
    import subprocess
    import sys
    code = ("import sys; from refmath.claims import all_claims; "
            "[c.run() for c in all_claims().values()]; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
