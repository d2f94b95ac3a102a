"""The ``refmath`` command: table, verdict line, exit code."""

import io

import refmath_torch

from refmath.cli import main, run_main_job


def test_main_job_passes_and_prints_a_table(capsys):
    assert main(["--kind", "td_errors"]) == 0
    out = capsys.readouterr().out
    assert "function" in out and "worst err/bound" in out
    # td_errors: exact_small, float64, float32, float16, bfloat16, batch_consistency, hygiene,
    # ignored_numbers, jacobian, gradcheck, bad_input
    assert "refmath verdict: PASS — 11 checks run, 0 failed" in out


def test_main_job_fails_with_exit_code_1_on_a_wrong_implementation(monkeypatch):
    real = refmath_torch.td_errors

    def no_termination(rewards, values, next_values, *, gamma, terminated=None):
        return real(rewards, values, next_values, gamma=gamma)  # ignores terminated

    monkeypatch.setattr(refmath_torch, "td_errors", no_termination)
    out = io.StringIO()
    # "detect": no shrinking (a newer Hypothesis spent 77 s shrinking here under "ci")
    assert run_main_job(["td_errors"], "detect", out=out) == 1
    text = out.getvalue()
    assert "FAILED td_errors.exact_small" in text and "refmath verdict: FAIL" in text
