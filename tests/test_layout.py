"""Project layout promises: mirrored names and signatures, documented formulas, import
hygiene, installability, and no Python loop over T."""

import inspect
import re
import os
import subprocess
import sys
import tempfile

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import refmath
import refmath_torch


@pytest.mark.parametrize("name", refmath_torch.__all__)
def test_twin_has_same_name_and_keywords(name):
    oracle, impl = getattr(refmath, name), getattr(refmath_torch, name)
    o, i = inspect.signature(oracle).parameters, inspect.signature(impl).parameters
    assert list(o) == list(i), f"{name}: {list(o)} vs {list(i)}"
    for p in o:
        assert o[p].kind == i[p].kind, f"{name}.{p}: {o[p].kind} vs {i[p].kind}"


@pytest.mark.parametrize("module, name", [(refmath, n) for n in refmath.__all__]
                         + [(refmath_torch, n) for n in refmath_torch.__all__])
def test_docstring_has_formula_and_reference(module, name):
    doc = inspect.getdoc(getattr(module, name))
    assert doc and ("=" in doc or "``" in doc), f"{name}: no formula in the docstring"
    # a reference: an author-year citation (or the SPEC / a named library for conventions)
    assert re.search(r"(19|20)\d\d|SPEC|verl|TRL", doc), f"{name}: no reference"


def _run(code: str, cwd: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_import_refmath_does_not_import_torch():
    with tempfile.TemporaryDirectory() as tmp:
        assert _run("import sys, refmath; refmath.gae([1.0], [0.0], [0.0], gamma=0.5, "
                    "lam=0.5); print('torch' in sys.modules)", tmp) == "False"


def test_implementations_import_from_anywhere():
    with tempfile.TemporaryDirectory() as tmp:
        out = _run("import refmath_torch, torch; print(float(refmath_torch.gae("
                   "torch.ones(1), torch.zeros(1), torch.zeros(1), gamma=0.5, lam=0.5)[0]))",
                   tmp)
        assert out == "1.0"


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


_RECURSIONS = ["gae", "lambda_returns", "discounted_returns", "n_step_returns", "td_errors"]


@pytest.mark.parametrize("name", _RECURSIONS)
def test_no_python_loop_over_time(name, monkeypatch):
    """A loop over T dispatches ≥ T tensor ops; the chunked Torch scan dispatches O(√T).
    The compiled kernels are switched off: with numba installed a no-gradient CPU call takes
    the kernel (one op), which would hide a loop in the scan this test guards."""
    from refmath_torch import _kernels

    monkeypatch.setattr(_kernels, "available", lambda *t: False)
    _count_ops_of(name)


@pytest.mark.parametrize("name", ["gae", "lambda_returns", "discounted_returns"])
def test_kernel_path_dispatches_no_op_per_step(name):
    """The kernel path (numba installed): a handful of ops for T = 10^4, whatever T is."""
    pytest.importorskip("numba")
    from refmath_torch import _kernels

    assert _kernels.available()
    assert _count_ops_of(name) < 50


def _count_ops_of(name: str) -> int:
    T = 10_000
    x = torch.randn(2, T)
    flags = dict(terminated=torch.rand(2, T) < 0.01, truncated=torch.rand(2, T) < 0.01,
                 mask=torch.rand(2, T) < 0.9)
    call = {
        "gae": lambda: refmath_torch.gae(x, x, x, gamma=0.9, lam=0.9, **flags),
        "lambda_returns": lambda: refmath_torch.lambda_returns(x, x, x, gamma=0.9, lam=0.9,
                                                               **flags),
        "discounted_returns": lambda: refmath_torch.discounted_returns(
            x, gamma=0.9, next_values=x, **flags),
        "n_step_returns": lambda: refmath_torch.n_step_returns(x, x, gamma=0.9, n=5000,
                                                               **flags),
        "td_errors": lambda: refmath_torch.td_errors(x, x, x, gamma=0.9,
                                                     terminated=flags["terminated"]),
    }[name]
    with _CountOps() as counter:
        call()
    assert counter.count < 1000, f"{name} dispatched {counter.count} ops for T = {T}"
    return counter.count
