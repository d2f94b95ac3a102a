"""The plain install works (issue #28): the wheel `python -m build` makes, installed into a
fresh venv outside the checkout, gives `refmath --version`, `import refmath` without torch,
and a `refmath check` that needs torch exits 2 with one line naming the install command;
with torch present (a venv that sees this machine's torch, refmath from the wheel) the same
check PASSES."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("build")


def _run(args: list, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=dict(env, **(env_extra or {})),
                          capture_output=True, text=True, timeout=600)


def _ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, (r.args, r.stdout[-2000:], r.stderr[-2000:])
    return r


def _venv(path: Path, *options: str) -> Path:
    """A venv without pip of its own (seconds saved): this pip installs into it."""
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", *options, path], path.parent))
    return path / "bin"


def _pip_install(venv: Path, *args) -> None:
    _ok(_run([sys.executable, "-m", "pip", "--python", venv / "python", "install", "-q",
              "--no-compile", *args], venv))


def test_the_wheel_installs_into_a_fresh_venv_and_runs(tmp_path):
    dist = tmp_path / "dist"
    _ok(_run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist,
              ROOT], tmp_path))
    (wheel,) = dist.glob("refmath-*.whl")
    away = tmp_path / "elsewhere"  # no checkout on the path: the wheel's files only
    away.mkdir()

    plain = _venv(tmp_path / "plain")  # fresh: numpy, sympy, hypothesis from the wheel's deps
    _pip_install(plain, wheel)
    version = _ok(_run([plain / "refmath", "--version"], away)).stdout
    assert version.strip() == f"refmath {_version()}"
    probe = ("import sys, refmath; print(refmath.__file__); "
             "assert 'torch' not in sys.modules; print(refmath.gae([1.0], [0.0], [0.0], "
             "gamma=0.5, lam=0.5))")
    out = _ok(_run([plain / "python", "-c", probe], away)).stdout
    assert str(tmp_path / "plain") in out.splitlines()[0]  # the installed copy
    no_torch = _run([plain / "refmath", "check", "gae", "refmath_torch:gae"], away)
    assert no_torch.returncode == 2
    assert no_torch.stderr.strip().count("\n") == 0  # one line, no traceback
    assert "torch" in no_torch.stderr and "pip install torch" in no_torch.stderr

    # torch present: this machine's torch (the CPU build CI installs), refmath from the wheel;
    # one process: where refmath_torch comes from, then `refmath check` (the CLI's main), the
    # compiled kernels off (their first compile in a new install is not what this tests)
    seeing = _venv(tmp_path / "with-torch", "--system-site-packages")
    _pip_install(seeing, "--no-deps", wheel)
    run_check = ("import sys, refmath_torch; print(refmath_torch.__file__); "
                 "from refmath.cli import main; sys.exit(main(['check', 'gae', "
                 "'refmath_torch:gae', '--profile', 'quick', '--check', 'exact_small']))")
    out = _ok(_run([seeing / "python", "-c", run_check], away,
                   env_extra={"REFMATH_NO_KERNELS": "1"})).stdout
    assert str(tmp_path / "with-torch") in out.splitlines()[0]  # not the editable checkout
    assert "refmath check gae refmath_torch:gae: PASS" in out


def _version() -> str:
    import refmath
    return refmath.__version__
