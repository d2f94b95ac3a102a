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
                     "notes.baseline_unbiased", "notes.reinforce_variance_exponential",
                     "common.importance_product_variance",
                     "notes.importance_sampling_identity", "notes.is_policy_gradient",
                     "notes.is_surrogate_objective", "notes.ppo_clip_bounds_ratio",
                     "notes.mc_vs_td", "notes.lambda_bias_variance",
                     "notes.clip_gradient_at_old", "notes.trpo_monotonic_improvement",
                     "common.discount_weight_dropped", "notes.single_step_is_variance",
                     "notes.ppo_is_off_policy", "notes.advantage_reward_minus_value",
                     "notes.gae_must_be_backward", "notes.medical_group_advantages",
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


def test_claims_command_exit_code(monkeypatch, table_and_json, verdicts):
    assert "notes.kl_example" in table_and_json[0]
    # an expected-true claim that fails makes the command fail
    _replay(monkeypatch, verdicts)
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


# --- evidence that is not the function it judges -------------------------------------------

JUDGING = [cid for cid, c in LEDGER.items() if c.judges]


def test_claims_about_oracles_name_them():
    """The claims whose evidence used to call the function they judge declare it."""
    for cid in ("notes.ppo_clip_cases", "notes.gae_lambda0_is_td", "notes.adaptive_beta_rule",
                "paper.ppo_adaptive_kl", "notes.gae_must_be_backward"):
        assert LEDGER[cid].judges, cid
    assert len(JUDGING) >= 15


@pytest.mark.parametrize("claim_id", JUDGING)
def test_evidence_does_not_call_the_oracle_it_judges(claim_id, monkeypatch):
    """Each oracle a claim judges is replaced by one that raises: the claim still reaches
    its verdict, so its evidence comes from an independent route."""
    import importlib

    c = LEDGER[claim_id]
    for name in c.judges:
        module, fn = name.rsplit(".", 1)
        mod = importlib.import_module(f"refmath.{module}")
        assert callable(getattr(mod, fn)), name

        def refuse(*args, _name=name, **kwargs):
            raise AssertionError(f"{claim_id}: the evidence called {_name}, which it judges")

        monkeypatch.setattr(mod, fn, refuse)
        monkeypatch.setattr(refmath, fn, refuse, raising=False)
    assert c.run().status == c.expected


def test_the_circularity_test_can_fail(monkeypatch):
    """A claim whose evidence calls the oracle it judges is caught."""
    import importlib

    from refmath import objectives as ob

    circular = C.Claim("x.circular", "test", "clip cases", C.TRUE, lambda: C.Verdict(
        C.TRUE, str(ob.clipped_surrogate_ratio_gradient([2], [1]))),
        judges=("objectives.clipped_surrogate_ratio_gradient",))
    mod = importlib.import_module("refmath.objectives")
    monkeypatch.setattr(mod, "clipped_surrogate_ratio_gradient",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("called")))
    with pytest.raises(AssertionError, match="called"):
        circular.run()


def test_every_notes_claim_ships_its_source_text():
    for cid, c in LEDGER.items():
        if c.source.startswith("notes"):
            assert c.excerpt is not None, cid
            original, translation = c.excerpt
            assert original and translation and original != translation


# --- the command ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def verdicts():
    """Every claim's verdict, computed once (each claim's own test computes it again)."""
    return {cid: c.run() for cid, c in LEDGER.items()}


def _replay(mp, verdicts):
    """The ledger with each claim's check replaced by its computed verdict: the command's
    table, JSON and exit code are what these tests read, not the verdicts again."""
    import dataclasses

    for cid, c in list(LEDGER.items()):
        mp.setitem(LEDGER, cid, dataclasses.replace(c, check=lambda v=verdicts[cid]: v))


@pytest.fixture(scope="module")
def table_and_json(verdicts):
    """The command's table and its --json, from one computation of the ledger."""
    table, data = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        _replay(mp, verdicts)
        assert run_claims(out=table) == 0
        assert run_claims(out=data, as_json=True) == 0
    return table.getvalue(), data.getvalue()


def test_claims_table_shows_statement_verdict_and_value(table_and_json):
    text = table_and_json[0]
    header = text.splitlines()[0]
    assert "statement" in header and "verdict" in header and "expected" not in header
    row = next(line for line in text.splitlines() if line.startswith("notes.kl_example "))
    assert "FALSE" in row and "log" in row  # the exact value is in the table itself
    row = next(line for line in text.splitlines() if line.startswith("blog.k3_unbiased"))
    assert "supp" in row  # a conditional verdict shows its condition


def test_claims_json_has_the_fields(table_and_json):
    import json

    data = json.loads(table_and_json[1])
    assert len(data) == len(LEDGER)
    for entry in data:
        assert {"id", "source", "statement", "verdict", "evidence"} <= set(entry)
    kl = next(e for e in data if e["id"] == "notes.kl_example")
    assert kl["verdict"] == C.FALSE and "log" in kl["value"]


def test_claim_id_shows_the_source_text():
    out = io.StringIO()
    assert run_claims("notes.adaptive_beta_rule", out=out) == 0
    text = out.getvalue()
    assert "自適應(yīng)" in text and "translation" in text and "Adaptive β" in text
    assert run_claims("notes.kl_exampel", out=io.StringIO()) == 2


# --- check_identity on the divergence oracles ---------------------------------------------------

def test_check_identity_proves_kl_of_a_bernoulli_family():
    v = C.check_identity(lambda p, q: refmath.kl_divergence([p, 1 - p], [q, 1 - q]),
                         lambda p, q: p * sympy.log(p / q) + (1 - p) * sympy.log((1 - p) / (1 - q)),
                         assumptions={"p": (0, 1), "q": (0, 1)})
    assert v.status == C.TRUE and "proven symbolically" in v.evidence


def test_check_identity_says_when_a_function_is_not_symbolic():
    v = C.check_identity(lambda a: float(a) * 2, lambda a: a + a)
    assert "does not accept SymPy symbols" in v.evidence
    assert v.status in (C.FALSE, C.UNPROVEN)


def test_check_identity_falls_back_to_rational_points_when_a_side_refuses_symbols():
    """A side that raises on SymPy symbols (here an AttributeError, as kl_estimator_moments
    once did) is decided at exact rational points: FALSE with a counterexample for a wrong
    identity, UNPROVEN for a right one — never a raw exception."""
    from refmath.claims import FALSE, UNPROVEN, check_identity

    def refuses(a):
        return a.numerator * 0 + a  # Fraction/Rational have .numerator; a Symbol has not

    wrong = check_identity(refuses, lambda a: a + 1, ["a"], trials=20)
    assert wrong.status == FALSE and wrong.counterexample
    right = check_identity(refuses, lambda a: a, ["a"], trials=20)
    assert right.status == UNPROVEN and "does not accept SymPy symbols" in right.evidence


def test_k3_is_unbiased_proven_on_symbolic_two_point_distributions():
    """E_π[k3] = KL(π‖π_ref) for π = (a, 1 − a), π_ref = (b, 1 − b), a, b in (0, 1): the
    oracles take SymPy symbols, the logs of products are split (expand_log(force=True)) and
    every log argument (a/b, 1 − a, (1 − a)/(1 − b), …) is shown positive on the intervals:
    TRUE. E[k2] = KL is FALSE with a counterexample."""
    from refmath import divergences as dv
    from refmath.claims import FALSE, TRUE, check_identity

    def kl(a, b):
        return dv.kl_divergence([a, 1 - a], [b, 1 - b])

    def expectation(kind):
        return lambda a, b: dv.kl_estimator_moments([a, 1 - a], [b, 1 - b], kind)[
            "expectation"]

    interval = {"a": (0, 1), "b": (0, 1)}
    assert check_identity(expectation("k3"), kl, ["a", "b"], interval, trials=20).status == TRUE
    wrong = check_identity(expectation("k2"), kl, ["a", "b"], interval, trials=20)
    assert wrong.status == FALSE and wrong.counterexample


def test_a_log_split_is_proven_only_where_its_arguments_are_positive():
    """log(xy) = log x + log y: FALSE for real x, y (a counterexample with both negative),
    TRUE for positive ones; with positivity not shown for every log argument the verdict is
    TRUE UNDER CONDITIONS, naming them."""
    import sympy

    from refmath import divergences as dv
    from refmath.claims import CONDITIONAL, FALSE, TRUE, check_identity

    def split(x, y):
        return sympy.log(x) + sympy.log(y)

    def joint(x, y):
        return sympy.log(x * y)

    assert check_identity(joint, split, ["x", "y"], trials=50).status == FALSE
    positive = {"x": "positive", "y": "positive"}
    assert check_identity(joint, split, ["x", "y"], positive, trials=20).status == TRUE
    k3 = check_identity(lambda a, b: dv.kl_estimator_moments(
        [a, 1 - a], [b, 1 - b], "k3")["expectation"],
        lambda a, b: dv.kl_divergence([a, 1 - a], [b, 1 - b]), ["a", "b"],
        {"a": "positive", "b": "positive"}, trials=20)
    assert k3.status == CONDITIONAL and "1 - a > 0" in k3.conditions
