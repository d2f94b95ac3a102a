"""Time refmath_torch.gae against a plain Torch reverse loop and the memory roofline.

    python benchmarks/bench_gae.py                 # the README table (2 threads, float32)
    python benchmarks/bench_gae.py --sizes 8x128 --repeats 3    # a quick smoke run

Inputs: float32 rewards/values/next_values, ~1 % terminated and ~1 % truncated steps,
γ = 0.99, λ = 0.95. "copy" is ``rewards.clone()``: reading and writing one [B, T] tensor, the
least any GAE must do (the memory roofline). Reports the median over ``--repeats`` runs (and
the min–max spread), and the ratios loop/refmath and refmath/copy. Also prints the max
error of each method against the float64 oracle-equivalent loop, so a fast wrong method
would be visible.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import refmath_torch


def loop_gae(rewards, values, next_values, *, gamma, lam, terminated, truncated):
    """The reference reverse loop: one Python iteration per time step."""
    B, T = rewards.shape
    not_term = (~terminated).to(rewards.dtype)
    cont = (~(terminated | truncated)).to(rewards.dtype)
    adv = torch.empty_like(rewards)
    last = torch.zeros(B, dtype=rewards.dtype)
    for t in reversed(range(T)):
        delta = rewards[:, t] + gamma * next_values[:, t] * not_term[:, t] - values[:, t]
        carry = cont[:, t] if t < T - 1 else torch.zeros_like(last)
        last = delta + gamma * lam * carry * last
        adv[:, t] = last
    return adv


def _inputs(B, T, seed=0):
    gen = torch.Generator().manual_seed(seed)
    r, v, nv = (torch.randn(B, T, generator=gen) for _ in range(3))
    term = torch.rand(B, T, generator=gen) < 0.01
    trunc = torch.rand(B, T, generator=gen) < 0.01
    return r, v, nv, term, trunc


def _time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, min(times) * 1e3, max(times) * 1e3


def run(sizes, repeats, threads, backward=False):
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} threads, float32, γ=0.99, λ=0.95, "
          f"~1% terminated, ~1% truncated; median [min–max] of {repeats} runs, ms")
    header = (f"{'B x T':>12} {'copy':>16} {'refmath gae':>18} {'torch loop':>18} "
              f"{'loop/refmath':>13} {'refmath/copy':>13} {'max err vs f64':>15}")
    print(header)
    rows = []
    for B, T in sizes:
        r, v, nv, term, trunc = _inputs(B, T)
        kw = dict(gamma=0.99, lam=0.95, terminated=term, truncated=trunc)
        if backward:
            rg = r.clone().requires_grad_()
            ours = lambda: refmath_torch.gae(rg, v, nv, **kw).sum().backward()  # noqa: E731
        else:
            ours = lambda: refmath_torch.gae(r, v, nv, **kw)  # noqa: E731
        t_copy = _time(lambda: r.clone(), repeats)
        t_ours = _time(ours, repeats)
        t_loop = _time(lambda: loop_gae(r, v, nv, **kw), max(1, repeats // 3))
        exact = loop_gae(r.double(), v.double(), nv.double(), **kw)
        err = (refmath_torch.gae(r, v, nv, **kw).double() - exact).abs().max().item()
        row = (B, T, t_copy, t_ours, t_loop)
        rows.append(row)
        fmt = lambda t: f"{t[0]:8.3f} [{t[1]:.2f}–{t[2]:.2f}]"  # noqa: E731
        print(f"{B:>5} x {T:<5} {fmt(t_copy):>16} {fmt(t_ours):>18} {fmt(t_loop):>18} "
              f"{t_loop[0] / t_ours[0]:12.1f}x {t_ours[0] / t_copy[0]:12.1f}x {err:15.2e}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["8x128", "256x4096", "4096x256"])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backward", action="store_true",
                        help="time forward+backward (gradient with respect to rewards)")
    args = parser.parse_args(argv)
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes]
    run(sizes, args.repeats, args.threads, args.backward)


if __name__ == "__main__":
    main()
