"""Time refmath_torch.gae against a plain Torch loop, the libraries users would pick instead,
and the memory roofline — in one run, on the same inputs.

    python benchmarks/bench_gae.py                          # the README tables (2 threads)
    python benchmarks/bench_gae.py --sizes 8x128 --repeats 3 --backward   # a quick smoke run
    pip install -e '.[bench]'                               # TorchRL, Stable-Baselines3 (+ tianshou)

Inputs: float32 rewards/values/next_values, ~1 % terminated and ~1 % truncated steps,
γ = 0.99, λ = 0.95. Methods:

* ``copy`` — ``rewards.clone()``: reading and writing one [B, T] tensor, the roofline;
* ``refmath`` — ``refmath_torch.gae``;
* ``torch loop`` — a plain reverse loop over T (:func:`loop_gae`);
* ``torchrl loop`` / ``torchrl vec`` — TorchRL's ``generalized_advantage_estimate`` and
  ``vec_generalized_advantage_estimate`` (terminated passed, [B, T, 1] inputs);
* ``sb3`` — Stable-Baselines3's ``RolloutBuffer.compute_returns_and_advantage`` (NumPy,
  time-major; truncation is handled outside its GAE, so it sees terminal dones only);
* ``tianshou`` — tianshou's numba ``_gae`` on the flattened buffer.

Each peer is timed on inputs already in its own layout (conversion is not timed), and skipped
with the reason when it is not installed. Reported: median [min–max] over ``--repeats`` runs,
the ratio to refmath and to the roofline, the peak extra resident memory (Linux VmHWM after a
reset), and the max error against a float64 evaluation of the same recursion — so a fast but
wrong method is visible.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np
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
    """A consistent batch: next_values[t] = values[t+1] except after a truncation (the value
    of the state the episode was cut at) and at the end (the bootstrap)."""
    gen = torch.Generator().manual_seed(seed)
    r, v, cut = (torch.randn(B, T, generator=gen) for _ in range(3))
    term = torch.rand(B, T, generator=gen) < 0.01
    trunc = torch.rand(B, T, generator=gen) < 0.01
    nv = torch.cat([v[:, 1:], cut[:, -1:]], 1)
    nv = torch.where(trunc, cut, nv)
    return r, v, nv, term, trunc


GAMMA, LAM = 0.99, 0.95


def _peers(r, v, nv, term, trunc) -> dict[str, Callable[[], Any] | str]:
    """Closures that run each peer on inputs already in its layout, or the skip reason."""
    out: dict[str, Callable[[], Any] | str] = {}
    try:
        from torchrl.objectives.value import functional as F

        args = [x.unsqueeze(-1) for x in (v, nv, r, term | trunc)]
        tkw = {"terminated": term.unsqueeze(-1), "time_dim": -2}
        out["torchrl loop"] = lambda: F.generalized_advantage_estimate(
            GAMMA, LAM, *args, **tkw)[0].squeeze(-1)
        out["torchrl vec"] = lambda: F.vec_generalized_advantage_estimate(
            GAMMA, LAM, *args, **tkw)[0].squeeze(-1)
    except ImportError as err:
        out["torchrl"] = f"skipped: {err}"
    try:
        from gymnasium import spaces
        from stable_baselines3.common.buffers import RolloutBuffer

        B, T = r.shape
        buf = RolloutBuffer(T, spaces.Box(-1, 1, (1,)), spaces.Discrete(2), device="cpu",
                            gae_lambda=LAM, gamma=GAMMA, n_envs=B)
        buf.rewards[:] = r.numpy().T
        buf.values[:] = v.numpy().T
        t_np = term.numpy()
        buf.episode_starts[:] = np.concatenate([np.zeros((B, 1), bool), t_np[:, :-1]], 1).T
        last, dones = nv[:, -1].clone(), t_np[:, -1].astype(np.float32)

        def sb3():
            buf.compute_returns_and_advantage(last_values=last, dones=dones)
            return torch.as_tensor(buf.advantages.T.copy())

        out["sb3"] = sb3
    except ImportError as err:
        out["sb3"] = f"skipped: {err}"
    try:
        from tianshou.algorithm.algorithm_base import _gae

        end = (term | trunc).numpy().copy()
        end[:, -1] = True
        flat = [x.numpy().reshape(-1) for x in (v, nv * ~term, r)]
        end_flat = end.reshape(-1)
        out["tianshou"] = lambda: torch.as_tensor(
            _gae(flat[0], flat[1], flat[2], end_flat, GAMMA, LAM).reshape(r.shape))
    except ImportError as err:
        out["tianshou"] = f"skipped: {err}"
    return out


def _time(fn, repeats):
    fn()  # warm-up (numba compiles here)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, min(times) * 1e3, max(times) * 1e3


def _peak_extra_mb(fn) -> float | None:
    """Peak resident memory above the current level while ``fn`` runs (Linux only)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS

        def read(key):
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1]) / 1024

        before = read("VmRSS")
        fn()
        return max(0.0, read("VmHWM") - before)
    except OSError:
        return None


def _progress(i: int, n: int, label: str) -> None:
    width = 24
    done = int(width * i / n)
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n} {label:<40}")
    sys.stderr.flush()


def run(sizes, repeats, threads, backward=False, peers=True, loop_max_T=None):
    torch.set_num_threads(threads)
    mode = "forward+backward (∂/∂rewards)" if backward else "forward"
    print(f"torch {torch.__version__}, {threads} threads, float32, {mode}, γ={GAMMA}, "
          f"λ={LAM}, ~1% terminated, ~1% truncated; median [min–max] of {repeats} runs, ms")
    rows, skipped = [], {}
    for i, (B, T) in enumerate(sizes):
        _progress(i, len(sizes), f"{B} x {T}")
        r, v, nv, term, trunc = _inputs(B, T)
        kw = dict(gamma=GAMMA, lam=LAM, terminated=term, truncated=trunc)
        exact = loop_gae(r.double(), v.double(), nv.double(), **kw)
        methods: dict[str, Callable[[], Any]] = {"copy": lambda: r.clone()}
        if backward:
            rg = r.clone().requires_grad_()
            methods["refmath"] = lambda: refmath_torch.gae(rg, v, nv, **kw).sum().backward()
            methods["torch loop"] = lambda: loop_gae(rg, v, nv, **kw).sum().backward()
        else:
            methods["refmath"] = lambda: refmath_torch.gae(r, v, nv, **kw)
            methods["torch loop"] = lambda: loop_gae(r, v, nv, **kw)
            if peers:
                for name, fn in _peers(r, v, nv, term, trunc).items():
                    if isinstance(fn, str):
                        skipped[name] = fn
                    else:
                        methods[name] = fn
        results = {}
        for name, fn in methods.items():
            slow = name in ("torch loop", "torchrl vec") and loop_max_T and T > loop_max_T
            if slow:
                continue
            n = repeats if name not in ("torch loop", "torchrl loop", "sb3") else max(
                1, repeats // 3)
            t = _time(fn, n)
            err = float("nan")
            if not backward and name != "copy":
                out = fn()
                ref = exact
                if name == "sb3":  # by design no truncation, V(s_{t+1}) = values[t+1]
                    shifted = torch.cat([v[:, 1:], nv[:, -1:]], 1).double()
                    ref = loop_gae(r.double(), v.double(), shifted, gamma=GAMMA, lam=LAM,
                                   terminated=term, truncated=torch.zeros_like(trunc))
                err = float((out.double() - ref).abs().max())
            results[name] = (t, _peak_extra_mb(fn), err)
        rows.append((B, T, results))
    _progress(len(sizes), len(sizes), "done")
    sys.stderr.write("\n")
    _print(rows, skipped)
    return rows


def _print(rows, skipped):
    print(f"{'B x T':>11}  {'method':<13} {'median [min–max] ms':>26} {'vs refmath':>11} "
          f"{'vs copy':>9} {'peak MB':>8} {'max err vs f64':>15}")
    for B, T, results in rows:
        ours = results["refmath"][0][0]
        copy = results["copy"][0][0]
        for name, ((med, lo, hi), mem, err) in results.items():
            mem_s = "n/a" if mem is None else f"{mem:.1f}"
            err_s = "" if err != err else f"{err:.2e}"
            print(f"{B:>5} x {T:<5}  {name:<13} {f'{med:9.3f} [{lo:.2f}–{hi:.2f}]':>26} "
                  f"{med / ours:10.2f}x {med / copy:8.1f}x {mem_s:>8} {err_s:>15}")
    for name, reason in skipped.items():
        print(f"{name}: {reason}")
    print("(vs refmath > 1: slower than refmath; sb3's error is against GAE without truncation"
          " and with V(s_t+1) = values[t+1], its design)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+",
                        default=["8x128", "64x1024", "256x4096", "4096x256", "1024x2048"])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backward", action="store_true",
                        help="time forward+backward (gradient with respect to rewards)")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--loop-max-T", type=int, default=None,
                        help="skip the slow loops above this T")
    args = parser.parse_args(argv)
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes]
    run(sizes, args.repeats, args.threads, args.backward, not args.no_peers, args.loop_max_T)


if __name__ == "__main__":
    main()
