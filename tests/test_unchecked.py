"""``refmath_torch.unchecked()``: no host synchronisation, same numbers, ignored numbers still
ignored. A host synchronisation is a read of a tensor's value on the host (``bool(t)``,
``t.item()``), which dispatches ``aten._local_scalar_dense``: counted here on CPU, on the
Torch paths (the ones CUDA takes; the compiled CPU kernels, taken first where numba is
installed, run on the host and read nothing back: they are switched off here)."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import refmath_torch
from refmath_torch import unchecked


@pytest.fixture(autouse=True)
def torch_paths(monkeypatch):
    monkeypatch.setattr("refmath_torch._kernels.available", lambda *tensors: False)


class HostReads(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _batch(T, seed=0):
    gen = torch.Generator().manual_seed(seed)
    r, v, nv = (torch.randn(3, T, generator=gen) for _ in range(3))
    term, trunc = (torch.rand(3, T, generator=gen) < 0.1 for _ in range(2))
    mask = torch.rand(3, T, generator=gen) < 0.8
    return r, v, nv, term, trunc, mask


def _calls(r, v, nv, term, trunc, mask):
    kw = dict(gamma=0.99, terminated=term, truncated=trunc, mask=mask)
    return [refmath_torch.gae(r, v, nv, lam=0.9, **kw),
            refmath_torch.lambda_returns(r, v, nv, lam=0.9, **kw),
            refmath_torch.discounted_returns(r, next_values=nv, **kw)]


@pytest.mark.parametrize("T", [5, 100])
@pytest.mark.parametrize("masked", [False, True])
def test_no_host_synchronisation_and_the_same_numbers(T, masked):
    r, v, nv, term, trunc, mask = _batch(T)
    args = (r, v, nv, term, trunc, mask if masked else None)
    with HostReads() as checked:
        expected = _calls(*args)
    assert checked.count > 0  # the detector sees the finite check's read
    with unchecked(), HostReads() as reads:
        got = _calls(*args)
    assert reads.count == 0
    for g, e in zip(got, expected):
        assert torch.equal(g, e)


def test_ignored_numbers_are_still_ignored_and_bad_read_numbers_propagate():
    r, v, nv, term, trunc, mask = _batch(100, seed=1)
    with unchecked():
        clean = _calls(r, v, nv, term, trunc, mask)
        dirty = [x.clone() for x in (r, v, nv)]
        for x in dirty:
            x[~mask] = float("nan")  # masked steps: never read
        dirty[2][term] = float("inf")  # next_values of terminated steps: never read
        for g, e in zip(_calls(*dirty, term, trunc, mask), clean):
            assert torch.equal(g, e)
        r_bad = r.clone()
        r_bad[0, int(mask[0].nonzero()[0])] = float("nan")  # a reward that is read
        out = refmath_torch.gae(r_bad, v, nv, gamma=0.99, lam=0.9, mask=mask)
        assert not torch.isfinite(out).all()  # documented: no error inside unchecked()
    with pytest.raises(ValueError, match="rewards"):
        refmath_torch.gae(r_bad, v, nv, gamma=0.99, lam=0.9, mask=mask)


def test_unchecked_is_scoped_and_still_checks_shapes():
    r, v, nv, *_ = _batch(10)
    with unchecked():
        with pytest.raises(ValueError, match="values"):
            refmath_torch.gae(r, v[:, :5], nv, gamma=0.9, lam=0.9)
        assert refmath_torch.gae(r, v, nv, gamma=0.9, lam=0.9,
                                 terminated=torch.full_like(r, 0.5)).shape == r.shape
    with pytest.raises(ValueError, match="terminated"):
        refmath_torch.gae(r, v, nv, gamma=0.9, lam=0.9, terminated=torch.full_like(r, 0.5))
