"""Time refmath_torch's gae, lambda_returns and discounted_returns against a plain Torch loop,
the libraries users would pick instead, and the memory roofline — in one run, on the same
inputs.

    python benchmarks/bench_advantages.py                    # the README tables (2 threads)
    python benchmarks/bench_advantages.py --backward         # forward+backward (∂/∂rewards)
    python benchmarks/bench_advantages.py --mask             # with right-padding masks
    python benchmarks/bench_advantages.py --sizes 8x128 --repeats 3   # a quick smoke run
    python benchmarks/bench_advantages.py --contention       # with a busy process competing
    python benchmarks/bench_advantages.py --sizes 8x128 --calls 200 --no-peers  # warm, per call
    pip install -e '.[bench]'                               # TorchRL, Stable-Baselines3, tianshou

Inputs: float32 rewards/values/next_values, ~1 % terminated and ~1 % truncated steps,
γ = 0.99, λ = 0.95; with ``--mask``, every row is right-padded (its length drawn uniformly
from [T/2, T]). Methods, per function:

* ``copy inputs`` — a clone of every input tensor (rewards, values, next_values and the
  flags the function reads): the memory roofline, and the ``vs copy`` column's unit — any
  implementation must at least read all of them once and write one [B, T] result;
  ``copy rewards`` — one [B, T] float tensor, for scale;
* ``refmath`` — ``refmath_torch.gae`` / ``lambda_returns`` / ``discounted_returns``;
* ``torch loop`` — a plain reverse loop over T (:func:`loop_gae` and friends);
* TorchRL 0.14 — ``generalized_advantage_estimate`` / ``td_lambda_return_estimate`` /
  ``td1_return_estimate`` (``loop``) and their ``vec_`` versions (``vec``), [B, T, 1] inputs;
* ``sb3`` — Stable-Baselines3's ``RolloutBuffer.compute_returns_and_advantage`` (NumPy,
  time-major; its ``advantages`` and ``returns`` = λ-returns; truncation is handled outside
  its GAE, so it sees terminal dones only);
* ``tianshou`` — tianshou's numba ``_gae`` on the flattened buffer (λ-returns: ``_gae`` + V;
  discounted returns: ``_gae`` with λ = 1, + V).

``--functions vtrace`` times ``refmath_torch.vtrace``'s vs (λ = 1, ρ̄ = c̄ = 1, log-ratios
0.5·N(0, 1)) against the loop and TorchRL's ``vtrace_advantage_estimate`` (a Python loop
over T); no other peer has V-trace.

``--contention`` starts one busy process (a Python spin loop, bounded to 30 minutes and
stopped when the run ends) before the timings, so that it competes for a core with every
timed call — as environment workers and data loaders do in training. ``numba serial`` is a
plain serial numba loop over each row (what tianshou's ``_gae`` is; for V-trace, the same
loop for vs alone, after a NumPy exp of the log-ratios), its segment ends precomputed
outside the timed call, timed where numba is installed: the contention-insensitive
reference.

Each peer is timed on inputs already in its own layout (conversion is not timed), and skipped
with the reason when it is not installed or does not apply. Methods are timed round-robin
(one call of each in turn, ``--repeats`` rounds, in a fresh seeded order each round), so that
a slow phase of a shared machine, and the spinning threads a multithreaded call leaves
behind, hit all of them alike. Reported: median [min–max], the ratio to refmath and to the roofline,
the peak extra resident memory (Linux VmHWM after a reset), and the max error against a
float64 evaluation of the same recursion — so a fast but wrong method is visible.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import random
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np
import torch

import refmath_torch

FUNCTIONS = ("gae", "lambda_returns", "discounted_returns")


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


def loop_lambda_returns(rewards, values, next_values, **kw):
    return loop_gae(rewards, values, next_values, **kw) + values


def loop_discounted_returns(rewards, values, next_values, *, gamma, lam, terminated,
                            truncated):
    """G_t = r_t + γ·(G_{t+1} inside a segment, nt_t·V'_t at its end), one step at a time."""
    B, T = rewards.shape
    out = torch.empty_like(rewards)
    G = torch.zeros(B, dtype=rewards.dtype)
    for t in reversed(range(T)):
        end = terminated[:, t] | truncated[:, t] if t < T - 1 else torch.ones_like(G, dtype=bool)
        boot = torch.where(terminated[:, t], 0.0, next_values[:, t]).to(rewards.dtype)
        G = rewards[:, t] + gamma * torch.where(end, boot, G)
        out[:, t] = G
    return out


@functools.lru_cache(maxsize=None)
def _log_rhos(B: int, T: int) -> torch.Tensor:
    """log π − log μ for ``--functions vtrace``: 0.5·N(0, 1) per step (ρ from ~0.1 to ~10)."""
    return 0.5 * torch.randn(B, T, generator=torch.Generator().manual_seed(2))


def loop_vtrace(rewards, values, next_values, *, gamma, lam, terminated, truncated):
    """V-trace's vs, one step at a time (IMPALA's λ = 1, ρ̄ = c̄ = 1; ``lam`` is ignored)."""
    B, T = rewards.shape
    rho = torch.exp(_log_rhos(B, T).to(rewards.dtype))
    clipped = rho.clamp(max=1.0)
    not_term = (~terminated).to(rewards.dtype)
    cont = (~(terminated | truncated)).to(rewards.dtype)
    delta = clipped * (rewards + gamma * not_term * next_values - values)
    A = torch.empty_like(rewards)
    last = torch.zeros(B, dtype=rewards.dtype)
    for t in reversed(range(T)):
        carry = cont[:, t] if t < T - 1 else torch.zeros_like(last)
        last = delta[:, t] + gamma * clipped[:, t] * carry * last
        A[:, t] = last
    return A + values


LOOPS = {"gae": loop_gae, "lambda_returns": loop_lambda_returns,
         "discounted_returns": loop_discounted_returns, "vtrace": loop_vtrace}


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


def _padding(B, T, seed=1):
    """Right padding: row b keeps its first length_b steps, length_b uniform in [T/2, T]."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint((T + 1) // 2, T + 1, (B, 1), generator=gen)
    return torch.arange(T) < lengths


GAMMA, LAM = 0.99, 0.95


def _refmath(function, r, v, nv, kw):
    f = getattr(refmath_torch, function)
    if function == "vtrace":  # vs; IMPALA's λ = 1, ρ̄ = c̄ = 1
        lr = _log_rhos(*r.shape)
        return lambda: f(r, v, nv, lr, **dict(kw, lam=1.0))[0]
    if function == "discounted_returns":
        return lambda: f(r, next_values=nv, **{k: x for k, x in kw.items() if k != "lam"})
    return lambda: f(r, v, nv, **kw)


def _peers(function, r, v, nv, term, trunc) -> dict[str, Callable[[], Any] | str]:
    """Closures that run each peer on inputs already in its layout, or the skip reason."""
    out: dict[str, Callable[[], Any] | str] = {}
    try:
        from torchrl.objectives.value import functional as F

        done, tkw = (term | trunc).unsqueeze(-1), {"terminated": term.unsqueeze(-1),
                                                   "time_dim": -2}
        v3, nv3, r3 = (x.unsqueeze(-1) for x in (v, nv, r))
        if function == "vtrace":
            lr3 = _log_rhos(*r.shape).unsqueeze(-1)
            zero = torch.zeros_like(lr3)
            out["torchrl loop"] = lambda: F.vtrace_advantage_estimate(
                GAMMA, lr3, zero, v3, nv3, r3, done, **tkw)[1].squeeze(-1)
            return dict(out, sb3="skipped: no V-trace", tianshou="skipped: no V-trace")
        if function == "gae":
            calls = {"loop": lambda: F.generalized_advantage_estimate(
                GAMMA, LAM, v3, nv3, r3, done, **tkw)[0],
                "vec": lambda: F.vec_generalized_advantage_estimate(
                GAMMA, LAM, v3, nv3, r3, done, **tkw)[0]}
        elif function == "lambda_returns":
            calls = {"loop": lambda: F.td_lambda_return_estimate(
                GAMMA, LAM, nv3, r3, done, **tkw),
                "vec": lambda: F.vec_td_lambda_return_estimate(
                GAMMA, LAM, nv3, r3, done, **tkw)}
        else:
            calls = {"loop": lambda: F.td1_return_estimate(GAMMA, nv3, r3, done, **tkw),
                     "vec": lambda: F.vec_td1_return_estimate(GAMMA, nv3, r3, done, **tkw)}
        for kind, call in calls.items():
            out[f"torchrl {kind}"] = (lambda call: lambda: call().squeeze(-1))(call)
    except ImportError as err:
        out["torchrl"] = f"skipped: {err}"
    out["sb3"] = _sb3(function, r, v, nv, term)
    out["tianshou"] = _tianshou(function, r, v, nv, term, trunc)
    return out


def _sb3(function, r, v, nv, term):
    if function == "discounted_returns":
        return "skipped: no discounted-return function (its buffer computes λ-returns)"
    try:
        from gymnasium import spaces
        from stable_baselines3.common.buffers import RolloutBuffer
    except ImportError as err:
        return f"skipped: {err}"
    B, T = r.shape
    buf = RolloutBuffer(T, spaces.Box(-1, 1, (1,)), spaces.Discrete(2), device="cpu",
                        gae_lambda=LAM, gamma=GAMMA, n_envs=B)
    buf.rewards[:] = r.numpy().T
    buf.values[:] = v.numpy().T
    t_np = term.numpy()
    buf.episode_starts[:] = np.concatenate([np.zeros((B, 1), bool), t_np[:, :-1]], 1).T
    last, dones = nv[:, -1].clone(), t_np[:, -1].astype(np.float32)
    field = "advantages" if function == "gae" else "returns"

    def sb3():
        buf.compute_returns_and_advantage(last_values=last, dones=dones)
        return torch.as_tensor(getattr(buf, field).T.copy())

    return sb3


def _tianshou(function, r, v, nv, term, trunc):
    try:
        from tianshou.algorithm.algorithm_base import _gae
    except ImportError as err:
        return f"skipped: {err}"
    end = (term | trunc).numpy().copy()
    end[:, -1] = True
    flat = [x.numpy().reshape(-1) for x in (v, nv * ~term, r)]
    end_flat = end.reshape(-1)
    lam = 1.0 if function == "discounted_returns" else LAM
    plus_v = function != "gae"

    def tianshou():
        adv = _gae(flat[0], flat[1], flat[2], end_flat, GAMMA, lam)
        return torch.as_tensor((adv + flat[0] if plus_v else adv).reshape(r.shape))

    return tianshou


@contextlib.contextmanager
def busy_process(enabled: bool, seconds: int = 1800):
    """One competing CPU-bound process for the duration of the block (bounded: it exits by
    itself after ``seconds``)."""
    if not enabled:
        yield
        return
    spin = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass"
    proc = subprocess.Popen([sys.executable, "-c", spin])
    time.sleep(0.5)  # let it get going
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


@functools.lru_cache(maxsize=None)
def _numba_serial(function: str):
    """A serial numba loop over each row (tianshou's ``_gae`` is one): the reference a
    contended machine barely slows. None without numba."""
    try:
        import numba
    except ImportError:
        return None

    @numba.njit
    def gae(r, v, nv, term, end, gamma, lam, plus_v, out):
        B, T = r.shape
        for b in range(B):
            last = 0.0
            for t in range(T - 1, -1, -1):
                boot = 0.0 if term[b, t] else gamma * nv[b, t]
                delta = r[b, t] + boot - v[b, t]
                last = delta if end[b, t] else delta + gamma * lam * last
                out[b, t] = last + v[b, t] if plus_v else last

    @numba.njit
    def returns(r, nv, term, end, gamma, out):
        B, T = r.shape
        for b in range(B):
            g = 0.0
            for t in range(T - 1, -1, -1):
                if end[b, t]:
                    g = 0.0 if term[b, t] else nv[b, t]
                g = r[b, t] + gamma * g
                out[b, t] = g

    @numba.njit
    def vtrace(r, v, nv, rho, term, end, gamma, out):  # vs only, λ = ρ̄ = c̄ = 1
        B, T = r.shape
        for b in range(B):
            last = 0.0
            for t in range(T - 1, -1, -1):
                boot = 0.0 if term[b, t] else gamma * nv[b, t]
                c = min(1.0, rho[b, t])
                a = c * (r[b, t] + boot - v[b, t])
                last = a if end[b, t] else a + gamma * c * last
                out[b, t] = v[b, t] + last

    return {"discounted_returns": returns, "vtrace": vtrace}.get(function, gae)


def _numba_method(function, r, v, nv, term, trunc):
    kernel = _numba_serial(function)
    if kernel is None:
        return None
    end = (term | trunc).numpy().copy()
    end[:, -1] = True
    rn, vn, nvn, tn = r.numpy(), v.numpy(), nv.numpy(), term.numpy()
    lr = _log_rhos(*r.shape).to(r.dtype).numpy()

    def call():
        out = np.empty_like(rn)
        if function == "discounted_returns":
            kernel(rn, nvn, tn, end, GAMMA, out)
        elif function == "vtrace":  # exp of the log-ratios is part of the work
            kernel(rn, vn, nvn, np.exp(lr), tn, end, GAMMA, out)
        else:
            kernel(rn, vn, nvn, tn, end, GAMMA, LAM, function == "lambda_returns", out)
        return torch.from_numpy(out)

    return call


def _time_round_robin(methods: dict[str, Callable[[], Any]], repeats: dict[str, int],
                      calls: int = 1):
    """median, min, max in ms of each method, timed one call of each in turn (with ``calls``
    > 1: ``calls`` back-to-back calls of each in turn, per call — the warm per-call cost,
    where one cold call after the others mostly measures their eviction of the caches)."""
    for fn in methods.values():
        fn()  # warm-up (numba compiles here)
    times: dict[str, list[float]] = {name: [] for name in methods}
    order = random.Random(0)
    for round_ in range(max(repeats.values())):
        # a fresh order each round: what a method follows matters (after a multithreaded Torch
        # loop the idle pool threads still spin for a while, taking a core from the next call)
        for name in order.sample(list(methods), len(methods)):
            fn = methods[name]
            if round_ < repeats[name]:
                start = time.perf_counter()
                for _ in range(calls):
                    fn()
                times[name].append((time.perf_counter() - start) / calls)
    return {name: (statistics.median(t) * 1e3, min(t) * 1e3, max(t) * 1e3)
            for name, t in times.items()}


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


def _methods(function, r, v, nv, term, trunc, mask, backward, peers):
    kw = dict(gamma=GAMMA, lam=LAM, terminated=term, truncated=trunc)
    loop = LOOPS[function]
    inputs = (r, nv) if function == "discounted_returns" else (r, v, nv)
    inputs += (term, trunc) + (() if mask is None else (mask,))
    methods: dict[str, Callable[[], Any]] = {
        "copy inputs": lambda: [x.clone() for x in inputs],
        "copy rewards": lambda: r.clone()}
    skipped: dict[str, str] = {}
    loop_kw, keep = dict(kw), (lambda y: y)
    if mask is not None:  # right padding: to the loop, the last present step is a time limit
        kw["mask"] = mask
        loop_kw["truncated"] = trunc | (mask & ~torch.roll(mask, -1, 1))
        keep = lambda y: y * mask  # noqa: E731
    loop_call = lambda x: keep(loop(x, v, nv, **loop_kw))  # noqa: E731
    if backward:
        rg = r.clone().requires_grad_()
        ours = _refmath(function, rg, v, nv, kw)
        methods["refmath"] = lambda: ours().sum().backward()
        methods["torch loop"] = lambda: loop_call(rg).sum().backward()
    else:
        methods["refmath"] = _refmath(function, r, v, nv, kw)
        methods["torch loop"] = lambda: loop_call(r)
        serial = _numba_method(function, r, v, nv, term, trunc) if mask is None else None
        if serial is not None:
            methods["numba serial"] = serial
        if peers and mask is None:
            for name, fn in _peers(function, r, v, nv, term, trunc).items():
                if isinstance(fn, str):
                    skipped[name] = fn
                else:
                    methods[name] = fn
        elif peers:
            skipped["peers"] = "skipped with --mask: no peer takes a mask of deleted steps"
    exact = keep(loop(*(x.double() for x in (r, v, nv)), **loop_kw))
    return methods, skipped, exact


def _reference(function, name, r, v, nv, term, exact):
    if name != "sb3":
        return exact
    # sb3 by design: no truncation, V(s_{t+1}) = values[t+1]
    shifted = torch.cat([v[:, 1:], nv[:, -1:]], 1).double()
    return LOOPS[function](r.double(), v.double(), shifted, gamma=GAMMA, lam=LAM,
                           terminated=term, truncated=torch.zeros_like(term))


def run(sizes, repeats, threads, backward=False, peers=True, loop_max_T=None,
        functions=FUNCTIONS, masked=False, contention=False, calls=1):
    torch.set_num_threads(threads)
    mode = "forward+backward (∂/∂rewards)" if backward else "forward"
    from refmath_torch import _kernels

    kernels = "numba kernels" if _kernels.available() else "Torch scan (no numba)"
    print(f"torch {torch.__version__}, {threads} threads, float32, {mode}, γ={GAMMA}, "
          f"λ={LAM}, ~1% terminated, ~1% truncated{', right-padding masks' if masked else ''};"
          f" refmath: {kernels}; {'ONE BUSY PROCESS COMPETING; ' if contention else ''}"
          f"median [min–max] of {repeats} runs (round-robin"
          f"{f', {calls} back-to-back calls each, per call' if calls > 1 else ''}), ms")
    with busy_process(contention):
        return _run_jobs(sizes, repeats, backward, peers, loop_max_T, functions, masked, calls)


def _run_jobs(sizes, repeats, backward, peers, loop_max_T, functions, masked, calls=1):
    rows, skipped = [], {}
    jobs = [(f, size) for f in functions for size in sizes]
    for i, (function, (B, T)) in enumerate(jobs):
        _progress(i, len(jobs), f"{function} {B} x {T}")
        r, v, nv, term, trunc = _inputs(B, T)
        mask = _padding(B, T) if masked else None
        methods, skips, exact = _methods(function, r, v, nv, term, trunc, mask, backward, peers)
        skipped.update({f"{function}: {k}": why for k, why in skips.items()})
        if loop_max_T and T > loop_max_T:
            for name in ("torch loop", "torchrl vec"):
                methods.pop(name, None)
        slow = ("torch loop", "torchrl loop", "sb3")
        counts = {n: max(1, repeats // 3) if n in slow else repeats for n in methods}
        timings = _time_round_robin(methods, counts, calls)
        results = {}
        for name, fn in methods.items():
            err = float("nan")
            if not backward and not name.startswith("copy"):
                ref = _reference(function, name, r, v, nv, term, exact)
                err = float((fn().double() - ref).abs().max())
            results[name] = (timings[name], _peak_extra_mb(fn), err)
        rows.append((function, B, T, results))
    _progress(len(jobs), len(jobs), "done")
    sys.stderr.write("\n")
    _print(rows, skipped)
    return rows


def _print(rows, skipped):
    print(f"{'function':<18} {'B x T':>11}  {'method':<13} {'median [min–max] ms':>26} {'vs refmath':>11} "
          f"{'vs copy':>9} {'peak MB':>8} {'max err vs f64':>15}")
    for function, B, T, results in rows:
        ours = results["refmath"][0][0]
        copy = results["copy inputs"][0][0]
        for name, ((med, lo, hi), mem, err) in results.items():
            mem_s = "n/a" if mem is None else f"{mem:.1f}"
            err_s = "" if err != err else f"{err:.2e}"
            print(f"{function:<18} {B:>5} x {T:<5}  {name:<13} {f'{med:9.4f} [{lo:.3f}–{hi:.3f}]':>26} "
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
    parser.add_argument("--functions", nargs="+", default=list(FUNCTIONS),
                        choices=FUNCTIONS + ("vtrace",))
    parser.add_argument("--mask", action="store_true",
                        help="right-padding masks (refmath and the loop only)")
    parser.add_argument("--loop-max-T", type=int, default=None,
                        help="skip the slow loops above this T")
    parser.add_argument("--contention", action="store_true",
                        help="one busy process competing for a core during the timings")
    parser.add_argument("--calls", type=int, default=1,
                        help="back-to-back calls per timing (the warm per-call cost of small "
                             "sizes; with --no-peers, or the slow loops take that much longer)")
    args = parser.parse_args(argv)
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes]
    run(sizes, args.repeats, args.threads, args.backward, not args.no_peers, args.loop_max_T,
        args.functions, args.mask, args.contention, args.calls)


if __name__ == "__main__":
    main()
