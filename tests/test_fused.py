"""The fused no-gradient fast path of gae / lambda_returns / discounted_returns.

With a scalar γ and no gradient wanted, these functions write their inputs
straight into the scan's chunk-major buffers (``FusedScan``). The property checks
draw short sequences (T ≤ 32 never leaves the stepwise scan), so the chunked levels are held
here to the float64 oracle, and to the differentiable path bit for bit, on lengths that are
and are not multiples of the chunk length and that need one, two and three levels.

These are the Torch paths (CUDA's, and the CPU's without numba): the compiled CPU kernels,
taken first where numba is installed, are switched off here and tested in test_kernels.py.
"""

import numpy as np
import pytest
import torch

import refmath
import refmath_torch
from refmath_torch import _scan

@pytest.fixture(autouse=True)
def torch_paths(monkeypatch):
    monkeypatch.setattr("refmath_torch._kernels.available", lambda *tensors: False)


# 1-32: stepwise; 33-512: one chunked level; 513-8192: two; beyond: three.
LENGTHS = [1, 2, 16, 31, 32, 33, 47, 48, 100, 512, 513, 1000, 8200]
FLAGS = [{}, {"terminated": True}, {"truncated": True}, {"terminated": True, "truncated": True}]


def _batch(T, flags, seed=0, shape=(2, 3)):
    gen = torch.Generator().manual_seed(seed)
    x = {n: torch.randn(*shape, T, generator=gen, dtype=torch.float64)
         for n in ("rewards", "values", "next_values")}
    for n in flags:
        x[n] = torch.rand(*shape, T, generator=gen) < 0.05
    return x


def _call(name, x, gamma_steps=False, **kw):
    f = getattr(refmath_torch, name)
    flags = {n: x[n] for n in ("terminated", "truncated") if n in x}
    T = x["rewards"].shape[-1]
    kw["gamma"] = torch.full((T,), 0.97, dtype=torch.float64) if gamma_steps else 0.97
    if name == "discounted_returns":
        return f(x["rewards"], next_values=x["next_values"], **flags, **kw)
    return f(x["rewards"], x["values"], x["next_values"], lam=0.9, **flags, **kw)


def _oracle(name, x):
    a = {n: t.numpy() for n, t in x.items()}
    flags = {n: a[n] for n in ("terminated", "truncated") if n in a}
    if name == "discounted_returns":
        return refmath.discounted_returns(a["rewards"], next_values=a["next_values"],
                                          gamma=0.97, **flags)
    return getattr(refmath, name)(a["rewards"], a["values"], a["next_values"], gamma=0.97,
                                  lam=0.9, **flags)


NAMES = ["gae", "lambda_returns", "discounted_returns"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("T", LENGTHS)
def test_fused_path_equals_the_oracle_and_the_differentiable_path(name, T):
    for flags in FLAGS:
        x = _batch(T, flags, seed=T)
        fast = _call(name, x)
        x_grad = dict(x, rewards=x["rewards"].clone().requires_grad_())
        slow = _call(name, x_grad).detach()
        assert torch.equal(fast, slow), (name, T, flags)
        # float64 against exact-in-float64 loops: ~(5T+10)·u·S with S ≲ 3·Σγ^k ≲ 100
        np.testing.assert_allclose(fast.numpy(), np.asarray(_oracle(name, x), dtype=float),
                                   rtol=0, atol=(5 * T + 10) * 2.0**-53 * 100)


@pytest.mark.parametrize("name", NAMES)
def test_fused_path_is_taken_and_leaves_the_inputs_alone(name, monkeypatch):
    calls = []
    real = _scan.FusedScan

    def spy(*args, **kwargs):
        calls.append(args[:2])
        return real(*args, **kwargs)

    for module in ("advantages", "returns"):
        monkeypatch.setattr(f"refmath_torch.{module}.FusedScan", spy)
    x = _batch(100, ["terminated", "truncated"])
    before = {n: t.clone() for n, t in x.items()}
    _call(name, x)
    assert calls == [(6, 100)]
    for n, t in x.items():
        assert torch.equal(t, before[n]), n
    _call(name, x, mask=torch.rand(2, 3, 100) < 0.5)  # masks: the fused path too
    assert calls == [(6, 100)] * 2
    x_grad = dict(x, rewards=x["rewards"].clone().requires_grad_())
    _call(name, x_grad)  # gradients wanted: the differentiable path
    _call(name, x, gamma_steps=True)  # a per-step γ: the general path
    assert len(calls) == 2


@pytest.mark.parametrize("name", NAMES)
def test_fused_path_ignores_nan_where_next_values_is_not_read(name):
    """The fast path multiplies by 0/1; a NaN there is caught and the call redone sanitized."""
    x = _batch(200, ["terminated"], seed=3)
    x["terminated"][:, :, 150] = True
    clean = _call(name, x)
    x["next_values"][:, :, 150] = float("nan")
    np.testing.assert_array_equal(_call(name, x).numpy(), clean.numpy())
    x["rewards"][0, 1, 7] = float("inf")
    with pytest.raises(ValueError, match="rewards"):
        _call(name, x)


def test_fused_path_in_float32_is_within_the_derived_bound():
    x = {n: t.float() if t.is_floating_point() else t
         for n, t in _batch(4096, ["terminated", "truncated"], seed=5, shape=(4,)).items()}
    got = _call("gae", x).double().numpy()
    exact = np.asarray(_oracle("gae", {n: t.double() if t.is_floating_point() else t
                                       for n, t in x.items()}), dtype=float)
    a = {n: t.double().abs().numpy() for n, t in x.items() if t.is_floating_point()}
    flags = {n: x[n].numpy() for n in ("terminated", "truncated")}
    S = refmath.gae(a["rewards"], -a["values"], a["next_values"], gamma=0.97, lam=0.9,
                    **flags)  # the condition term: the recursion on |r| + γ|V'| + |V|
    bound = refmath.bounds.recursion_bound(S, 4096, "float32")
    assert np.all(np.abs(got - exact) <= bound)


MASKS = {
    "right padding": lambda gen, shape, T: torch.arange(T) < torch.randint(
        0, T + 1, shape + (1,), generator=gen),
    "holes": lambda gen, shape, T: torch.rand(*shape, T, generator=gen) < 0.7,
    "none present": lambda gen, shape, T: torch.zeros(*shape, T, dtype=torch.bool),
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("T", [1, 5, 33, 100, 1000])
@pytest.mark.parametrize("pattern", list(MASKS))
def test_fused_masks_equal_the_oracle(name, T, pattern):
    """Masked steps pass the recursion through instead of being moved (compression); the
    oracle deletes them. Flags on masked steps must be ignored, as must NaN there."""
    gen = torch.Generator().manual_seed(T)
    x = _batch(T, ["terminated", "truncated"], seed=T, shape=(4,))
    mask = MASKS[pattern](gen, (4,), T)
    a = {n: t.numpy() for n, t in x.items()}
    kw = dict(gamma=0.97, terminated=a["terminated"], truncated=a["truncated"],
              mask=mask.numpy())
    if name == "discounted_returns":
        want = refmath.discounted_returns(a["rewards"], next_values=a["next_values"], **kw)
    else:
        want = getattr(refmath, name)(a["rewards"], a["values"], a["next_values"], lam=0.9,
                                      **kw)
    got = _call(name, x, mask=mask)
    np.testing.assert_allclose(got.numpy(), np.asarray(want, dtype=float), rtol=0,
                               atol=(5 * T + 10) * 2.0**-53 * 100)
    assert torch.all(got[~mask] == 0)
    for n in ("rewards", "values", "next_values"):
        x[n] = x[n].masked_fill(~mask, float("nan"))
    torch.testing.assert_close(_call(name, x, mask=mask), got, rtol=0,
                               atol=(5 * T + 10) * 2.0**-53 * 100)


@pytest.mark.parametrize("name", NAMES)
def test_fused_path_takes_any_layout_and_batch_shape(name):
    """Time-major data viewed as [B, T] (non-contiguous), one row without a batch axis, and
    an empty batch give what the contiguous inputs give."""
    x = _batch(300, ["terminated", "truncated"], seed=7, shape=(5,))
    strided = {n: t.t().contiguous().t() for n, t in x.items()}
    assert not strided["rewards"].is_contiguous()
    assert torch.equal(_call(name, strided), _call(name, x))
    row = {n: t[2] for n, t in x.items()}
    assert torch.equal(_call(name, row), _call(name, x)[2])
    empty = {n: t[:0] for n, t in x.items()}
    assert _call(name, empty).shape == (0, 300)
