"""The compiled CPU kernels (implementations/_kernels.py, numba): the no-gradient path of gae,
lambda_returns, discounted_returns and vtrace where numba is installed. They are held to the
oracles within the derived bound (every registry check of those functions runs them too),
to the Torch path within float64 roundoff, and to the same NaN policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import refmath
import refmath_torch as rt
from refmath import bounds
from refmath_torch import _kernels

pytestmark = pytest.mark.skipif(not _kernels.available(), reason="numba is not installed")

NAMES = ["gae", "lambda_returns", "discounted_returns"]


def _batch(shape, T, dtype=torch.float64, seed=0, mask=False):
    gen = torch.Generator().manual_seed(seed)
    x = {n: torch.randn(*shape, T, generator=gen, dtype=dtype)
         for n in ("rewards", "values", "next_values")}
    x["terminated"] = torch.rand(*shape, T, generator=gen) < 0.05
    x["truncated"] = torch.rand(*shape, T, generator=gen) < 0.05
    if mask:
        x["mask"] = torch.rand(*shape, T, generator=gen) < 0.7
    return x


def _call(name, x, **kw):
    flags = {n: x[n] for n in ("terminated", "truncated", "mask") if n in x}
    if name == "discounted_returns":
        return rt.discounted_returns(x["rewards"], gamma=0.97, next_values=x["next_values"],
                                     **flags, **kw)
    return getattr(rt, name)(x["rewards"], x["values"], x["next_values"], gamma=0.97,
                             lam=0.9, **flags, **kw)


def _oracle(name, x):
    a = {n: t.double().numpy() if t.is_floating_point() else t.numpy() for n, t in x.items()}
    flags = {n: a[n] for n in ("terminated", "truncated", "mask") if n in a}
    if name == "discounted_returns":
        return np.asarray(refmath.discounted_returns(a["rewards"], gamma=0.97,
                                                     next_values=a["next_values"], **flags))
    return np.asarray(getattr(refmath, name)(a["rewards"], a["values"], a["next_values"],
                                             gamma=0.97, lam=0.9, **flags))


def _condition(name, x):
    """S of refmath.bounds.recursion_bound: the recursion on absolute values."""
    a = {n: (t.double().abs().numpy() if t.is_floating_point() else t.numpy())
         for n, t in x.items()}
    flags = {n: a[n] for n in ("terminated", "truncated", "mask") if n in a}
    return np.asarray(refmath.gae(a["rewards"], -a["values"], a["next_values"], gamma=0.97,
                                  lam=1.0 if name == "discounted_returns" else 0.9, **flags)
                      ) + (a["values"] if name == "lambda_returns" else 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("masked", [False, True])
def test_kernels_are_taken_and_within_the_derived_bound(name, dtype, masked, monkeypatch):
    calls = []
    for k in ("gae_rows", "returns_rows"):
        real = getattr(_kernels, k)
        monkeypatch.setattr(_kernels, k, (lambda real: lambda *a, **kw: (
            calls.append(1), real(*a, **kw))[1])(real))
    T = 700
    x = _batch((3, 2), T, dtype, seed=T, mask=masked)
    got = _call(name, x).double().numpy()
    assert calls, "the kernel was not taken"
    S = _condition(name, x)
    bound = bounds.recursion_bound(S, T, "float32" if dtype == torch.float32 else "float64")
    assert np.all(np.abs(got - _oracle(name, x)) <= bound)


@pytest.mark.parametrize("name", NAMES)
def test_kernels_agree_with_the_torch_path_to_float64_roundoff(name, monkeypatch):
    x = _batch((4,), 3000, seed=1, mask=True)
    fast = _call(name, x)
    monkeypatch.setattr(_kernels, "available", lambda *t: False)
    scan = _call(name, x)
    assert torch.allclose(fast, scan, rtol=0, atol=3000 * 2.0**-52 * 100)


@pytest.mark.parametrize("name", ["gae", "discounted_returns"])  # the two row kernels
def test_serial_and_parallel_kernels_give_the_same_bits(name, monkeypatch):
    """Rows are independent: one thread or two, the same result, bit for bit (lambda_returns
    runs gae's kernel; a parallel variant compiles for seconds, so each kernel once)."""
    x = _batch((64,), 1024, seed=2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        serial = _call(name, x)
        monkeypatch.setattr(_kernels, "PARALLEL_FROM", 1)
        parallel = _call(name, x)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(parallel, serial)


@pytest.fixture(params=["in the loop", "by one NumPy pass"])
def finite_check(request, monkeypatch):
    """Where V-trace checks the given ratios: in its loop at small sizes, by one vectorized
    pass first from CHECK_IN_LOOP_BELOW steps; both, here."""
    monkeypatch.setattr(_kernels, "CHECK_IN_LOOP_BELOW",
                        10**12 if request.param == "in the loop" else 0)


@pytest.mark.parametrize("name", NAMES)
def test_kernels_never_read_ignored_numbers_and_name_bad_ones(name):
    x = _batch((2, 3), 200, seed=3, mask=True)
    clean = _call(name, x)
    dirty = {n: t.clone() for n, t in x.items()}
    dirty["rewards"][~x["mask"]] = float("nan")
    dirty["values"][~x["mask"]] = float("inf")
    dirty["next_values"][x["terminated"] | ~x["mask"]] = float("nan")
    assert torch.equal(_call(name, dirty), clean)
    read = (x["mask"] & ~x["terminated"]).nonzero()[0].tolist()
    dirty["next_values"][tuple(read)] = float("nan")  # read by SPEC: a named error
    with pytest.raises(ValueError, match="next_values"):
        _call(name, dirty)


def test_vtrace_kernel_within_float64_roundoff_of_the_oracle_and_names_a_nan_ratio():
    x = _batch((3,), 300, seed=4, mask=True)
    lr = 0.5 * torch.randn(3, 300, generator=torch.Generator().manual_seed(5),
                           dtype=torch.float64)
    kw = dict(gamma=0.97, lam=0.9, rho_clip=1.0, c_clip=1.0, pg_rho_clip=2.0,
              terminated=x["terminated"], truncated=x["truncated"], mask=x["mask"])
    vs, pg = rt.vtrace(x["rewards"], x["values"], x["next_values"], lr, **kw)
    a = {n: t.numpy() for n, t in x.items()}
    evs, epg = refmath.vtrace(a["rewards"], a["values"], a["next_values"], lr.numpy(),
                              **{k: (v.numpy() if isinstance(v, torch.Tensor) else v)
                                 for k, v in kw.items()})
    # (9T + 12) roundings per term (refmath.bounds.vtrace_roundings) on terms of size ≲ 10
    tol = (9 * 300 + 12) * 2.0**-53 * 10
    assert np.allclose(vs.numpy(), evs, rtol=0, atol=tol)
    assert np.allclose(pg.numpy(), epg, rtol=0, atol=tol)
    lr[1, int(x["mask"][1].nonzero()[0])] = float("nan")
    with pytest.raises(ValueError, match="log_rhos"):
        rt.vtrace(x["rewards"], x["values"], x["next_values"], lr, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_a_call_needing_conversion_gives_the_plain_calls_bits(name):
    """The plain fast path (:func:`refmath_torch._kernels.plain`) skips validation; a call it
    declines (0/1 float flags, a 0-dim γ, a NumPy γ) is validated, then run by the same
    kernel, and a tensor it cannot read where it lies (a negative-bit view, a strided or
    offset view) is copied first: the same bits."""
    x = _batch((2, 3), 50, seed=6, mask=True)
    plain = _call(name, x)
    as_numbers = dict(x, **{n: x[n].double() for n in ("terminated", "truncated", "mask")})
    assert torch.equal(_call(name, as_numbers), plain)
    neg = dict(x, rewards=torch._neg_view(-x["rewards"]))  # its memory holds -rewards
    assert neg["rewards"].is_neg() and torch.equal(_call(name, neg), plain)
    flat = {n: t.reshape(6, 50) for n, t in x.items()}
    assert torch.equal(_call(name, flat), plain.reshape(6, 50))
    # every other element of a wider tensor: not contiguous, so not readable at its address
    strided = {n: torch.stack([t, torch.zeros_like(t)], -1)[..., 0] for n, t in x.items()}
    assert not strided["rewards"].is_contiguous() and not strided["mask"].is_contiguous()
    assert torch.equal(_call(name, strided), plain)
    offset = {n: torch.cat([t, t], -1)[..., 50:] for n, t in x.items()}  # offset, strided rows
    assert torch.equal(_call(name, offset), plain)
    for gamma in (torch.tensor(0.97, dtype=torch.float64), np.float64(0.97)):
        kw = {n: x[n] for n in ("terminated", "truncated", "mask")}
        if name == "discounted_returns":
            got = rt.discounted_returns(x["rewards"], gamma=gamma,
                                        next_values=x["next_values"], **kw)
        else:
            got = getattr(rt, name)(x["rewards"], x["values"], x["next_values"], gamma=gamma,
                                    lam=0.9, **kw)
        assert torch.equal(got, plain)


@pytest.mark.parametrize("kind", ["log_rhos", "rhos"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("compiled", [True, False])
def test_vtrace_names_a_bad_ratio_that_the_clips_would_hide(kind, bad, compiled,
                                                            monkeypatch, finite_check):
    """Without a mask every ratio is checked (in the kernel's loop, or by one vectorized pass
    first; see finite_check): an inf log-ratio would be clipped to ρ̄ (a finite, wrong-looking-right result), a -inf one
    gives ρ = 0; both are bad input, named, as on the Torch path. Masked, the present steps
    only are checked (a negative ρ too: SPEC never reads a masked step), on both paths."""
    if not compiled:
        monkeypatch.setattr(_kernels, "available", lambda *t: False)
    x = _batch((3,), 40, seed=7)
    ratio = 0.5 * torch.randn(3, 40, generator=torch.Generator().manual_seed(8),
                              dtype=torch.float64)
    if kind == "rhos":
        ratio = ratio.exp()
    kw = dict(gamma=0.97, terminated=x["terminated"], truncated=x["truncated"])
    if kind == "rhos" and bad == -float("inf"):
        bad, match = -1.0, "non-negative"
    else:
        match = kind
    dirty = ratio.clone()
    dirty[1, 17] = bad
    with pytest.raises(ValueError, match=match):
        rt.vtrace(x["rewards"], x["values"], x["next_values"], **{kind: dirty}, **kw)
    mask = torch.ones(3, 40, dtype=torch.bool)
    mask[1, 17] = False
    clean = rt.vtrace(x["rewards"], x["values"], x["next_values"], **{kind: ratio}, mask=mask,
                      **kw)
    got = rt.vtrace(x["rewards"], x["values"], x["next_values"], **{kind: dirty}, mask=mask,
                    **kw)
    assert all(torch.equal(a, b) for a, b in zip(got, clean))
    mask[1, 17], mask[2, 3] = True, False
    with pytest.raises(ValueError, match=match):
        rt.vtrace(x["rewards"], x["values"], x["next_values"], **{kind: dirty}, mask=mask,
                  **kw)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("arg", ["rewards", "terminated"])
@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_a_sparse_tensor_is_named(name, arg, layout):
    """A sparse tensor has no strided memory: the plain path declines it, validation names it."""
    x = _batch((2,), 20, seed=9)
    x[arg] = x[arg].to_sparse() if layout == "coo" else x[arg].to_sparse_csr()
    with pytest.raises(TypeError, match=f"{arg} is a torch.sparse_{layout} tensor"):
        _call(name, x)


@pytest.mark.parametrize("name", NAMES)
def test_a_zero_tensor_takes_the_torch_path(name, monkeypatch):
    """A ZeroTensor (autograd's memoryless zeros) has no memory at its address: the plain path
    declines it, and the call gives the Torch path's values for real zeros (it used to raise
    NumPy's conversion error)."""
    x = _batch((2,), 30, seed=10)
    zero = dict(x, next_values=torch._efficientzerotensor(x["next_values"].shape,
                                                          dtype=x["next_values"].dtype))
    got = _call(name, zero)
    monkeypatch.setattr(_kernels, "available", lambda *t: False)
    assert torch.equal(got, _call(name, dict(x, next_values=torch.zeros_like(x["rewards"]))))


def test_the_kernel_cache_is_never_shared_between_two_import_names(tmp_path):
    """The reproduction of the cache poisoning: the twins imported as
    `implementations` from the repository root and as `refmath_torch` from elsewhere each
    keep working (before: the first wrote a numba cache entry that imports `implementations`,
    and every later `refmath_torch` process failed with ModuleNotFoundError)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("numba")
    root = Path(__file__).resolve().parents[1]
    call = ("import torch, {0} as T; print(float(T.gae(torch.ones(2, 5), torch.zeros(2, 5), "
            "torch.zeros(2, 5), gamma=0.9, lam=0.9)[0, 0]), T._kernels._CACHE)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # both orders: `implementations` then `refmath_torch`, then `implementations` again
    runs = [("implementations", root), ("refmath_torch", tmp_path), ("implementations", root)]
    outs = [subprocess.run([sys.executable, "-c", call.format(name)], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=300) for name, cwd in runs]
    for (name, _), out in zip(runs, outs):
        assert out.returncode == 0, (name, out.stderr[-800:])
    values = [out.stdout.split()[0] for out in outs]
    assert len(set(values)) == 1  # the same number every time
    # the installed name keeps its cache; any other compiles afresh
    assert [out.stdout.split()[1] for out in outs] == ["False", "True", "False"]
