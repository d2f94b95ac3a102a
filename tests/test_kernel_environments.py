"""The compiled kernels survive their environment (issue #28): numba absent,
``NUMBA_DISABLE_JIT=1``, a read-only install and two processes compiling into one cache at
once (as pytest-xdist's workers do) each give the exact same results as the default process.
Each runs tests/kernel_probe.py in a fresh process: numba decides its JIT and its cache
locations at import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kernel_probe

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("kernel_probe.py")

pytest.importorskip("numba")


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NUMBA_DISABLE_JIT", "NUMBA_CACHE_DIR",
                        "REFMATH_NO_KERNELS")}
    return dict(env, **extra)


def _start(cwd: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(PROBE), *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-1500:]
    return json.loads(out.strip().splitlines()[-1])


def _read_only_install(tmp: Path) -> tuple[Path, dict]:
    """The twins copied as an installed `refmath_torch` where nothing can be written, even by
    root: every place numba could cache in (the package's __pycache__, NUMBA_CACHE_DIR, the
    user-wide cache under XDG_CACHE_HOME) lies under a regular FILE, so no folder can be made
    there (chmod alone would not stop root)."""
    site = tmp / "site"
    shutil.copytree(ROOT / "implementations", site / "refmath_torch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (site / "refmath_torch" / "__pycache__").write_text("not a folder")
    blocker = tmp / "blocker"
    blocker.write_text("not a folder")
    return site, _env(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1",
                      NUMBA_CACHE_DIR=str(blocker / "numba"),
                      XDG_CACHE_HOME=str(blocker / "cache"))


def test_every_kernel_environment_gives_the_same_bits(tmp_path):
    cwd = tmp_path / "run"
    cwd.mkdir()
    site, read_only = _read_only_install(tmp_path)
    shared = _env(NUMBA_CACHE_DIR=str(tmp_path / "shared-cache"))
    runs = {  # started together: the two "concurrent" runs compile into one empty cache
        "numba absent": _start(cwd, _env(), "--no-numba"),
        "NUMBA_DISABLE_JIT=1": _start(cwd, _env(NUMBA_DISABLE_JIT="1")),
        "read-only install": _start(cwd, read_only),
        "concurrent compile 1": _start(cwd, shared),
        "concurrent compile 2": _start(cwd, shared),
    }
    got = {"default (this process)": kernel_probe.run()}
    got.update((name, _read(process)) for name, process in runs.items())
    got["from the shared cache"] = _read(_start(cwd, shared))  # loads what the two wrote
    assert any((tmp_path / "shared-cache").rglob("*.nbi")), "nothing was cached"
    assert got["read-only install"]["file"].startswith(str(site))  # the copy, not the checkout
    taken = {name: r["kernels"] for name, r in got.items()}
    assert taken == {name: name not in ("numba absent", "NUMBA_DISABLE_JIT=1") for name in got}
    expected = _numbers(got["default (this process)"])
    for name, r in got.items():
        assert _numbers(r) == expected, name


def _numbers(run: dict) -> dict:
    """The results as numbers: equal means IEEE-equal (the Torch scan leaves −0.0 where the
    kernel writes +0.0 at masked steps, the same number)."""
    return {n: [float.fromhex(v) for v in values] for n, values in run["results"].items()}
