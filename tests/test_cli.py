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


def test_without_torch_a_command_says_what_to_install_and_exits_2():
    """A plain install has no torch: `refmath check` is one line naming the install command,
    exit 2, no traceback (torch blocked in a fresh interpreter)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; from refmath.cli import main; "
            "sys.exit(main(['check', 'gae', 'refmath_torch:gae']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stderr[-1500:]
    assert "needs torch, which is not installed: pip install torch" in r.stderr
    assert "Traceback" not in r.stderr


def test_python_dash_m_refmath_and_one_version():
    import subprocess
    import sys

    import refmath

    r = subprocess.run([sys.executable, "-m", "refmath", "--version"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == f"refmath {refmath.__version__}"
    from importlib.metadata import version

    assert version("refmath") == refmath.__version__  # the package's version is that one
