"""The reverse linear scan behind every recursion, against a plain loop."""

import pytest
import torch

from refmath_torch._scan import reverse_scan


def loop_scan(x, c):
    """y_t = x_t + c_t·y_{t+1}, y_T = 0: the definition, one step at a time."""
    y = torch.zeros_like(x[:, 0])
    out = []
    for t in reversed(range(x.shape[1])):
        y = x[:, t] + c[:, t] * y
        out.append(y)
    return torch.stack(out[::-1], dim=1)


def _inputs(N, T, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, T, generator=gen, dtype=torch.float64)
    c = torch.rand(N, T, generator=gen, dtype=torch.float64)
    c[torch.rand(N, T, generator=gen) < 0.1] = 0.0  # segment ends
    c[torch.rand(N, T, generator=gen) < 0.1] = 1.0
    return x, c


@pytest.mark.parametrize("T", [1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65, 100, 1000])
def test_scan_equals_loop(T):
    x, c = _inputs(3, T)
    # float64, |c| ≤ 1, |x| ~ 1: both evaluations are within T·u·Σ|x| ≈ 1e3·1e-16·1e3.
    torch.testing.assert_close(reverse_scan(x, c), loop_scan(x, c), rtol=0, atol=1e-10)


@pytest.mark.parametrize("T", [1, 7, 50])
def test_scan_gradients_equal_the_loop_gradients(T):
    x, c = _inputs(2, T, seed=1)
    w = torch.randn(2, T, dtype=torch.float64)
    grads = []
    for f in (reverse_scan, loop_scan):
        xr, cr = x.clone().requires_grad_(), c.clone().requires_grad_()
        (f(xr, cr) * w).sum().backward()
        grads.append((xr.grad, cr.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=0, atol=1e-10)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=0, atol=1e-10)


def test_scan_gradcheck_and_gradgradcheck():
    x, c = _inputs(2, 11, seed=2)
    x.requires_grad_()
    c.requires_grad_()
    assert torch.autograd.gradcheck(reverse_scan, (x, c))
    assert torch.autograd.gradgradcheck(reverse_scan, (x, c))


def test_broken_scan_is_rejected():
    """The comparison above can fail: a scan that drops the last chunk's carry does."""
    x, c = _inputs(1, 100)
    wrong = loop_scan(x, c).clone()
    wrong[:, :50] -= 1e-6
    assert not torch.allclose(reverse_scan(x, c), wrong, rtol=0, atol=1e-10)
