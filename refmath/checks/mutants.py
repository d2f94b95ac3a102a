"""A catalogue of known mistakes seen in real RL code, each implemented as a mutant of the
correct Torch implementation.

They serve twice: as meta-tests (every mutant must be caught by the check set —
``tests/test_mutants.py``), and as the diagnosis of a failure (when a function fails a value
check, each mutant of the same kind runs on the counterexample; a mutant whose output matches
names the likely cause).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

import refmath_torch as rt

from .fingerprints import Probe

__all__ = ["Mutant", "CATALOGUE", "Diagnosis", "mutants_for", "diagnose"]


@dataclass(frozen=True)
class Mutant:
    name: str
    kind: str
    description: str
    fn: Callable[..., Any]
    caught_by: str  # the check id that must reject it
    layout: str | None = None  # written in a built-in layout (refmath.conformance.layouts)
    # "precision": the formula is right and the arithmetic loses digits (a failure it
    # explains is reported in the precision tier, so --fail-on correctness can pass it)
    tier: str = "correctness"


CATALOGUE: list[Mutant] = []


def mutant(kind: str, caught_by: str, description: str, layout: str | None = None,
           tier: str = "correctness"):
    def wrap(fn):
        CATALOGUE.append(Mutant(fn.__name__, kind, description, fn, caught_by, layout, tier))
        return fn

    return wrap


def mutants_for(kind: str, layout: str | None = None) -> list[Mutant]:
    """The SPEC-layout mutants of ``kind``, and those written in ``layout``."""
    return [m for m in CATALOGUE if m.kind == kind and m.layout in (None, layout)]


class Diagnosis(list):
    """The matching known mistakes, best first; ``resembling``: those of them matched by their
    fingerprint only (they deviate where the function does, the same way and by about as
    much, on every probe, but do not reproduce its numbers); ``near``: (mistake, probe label)
    for each one that reproduced the counterexample but not that probe."""

    def __init__(self, matches: list[Mutant] = (), near: list[tuple[Mutant, str]] = (),
                 resembling: list[Mutant] = ()):
        super().__init__(matches)
        self.near = list(near)
        self.resembling = list(resembling)


def diagnose(kind: str, call: Callable[[Callable], Any], got: np.ndarray,
             bound: np.ndarray, ctx: Any = None, exact: np.ndarray | None = None,
             caught_by: str | None = None, probes: Callable[[], list] | None = None
             ) -> Diagnosis:
    """The mutants of ``kind`` whose output on the same input equals ``got`` (within twice
    the check's bound) and, given ``exact``, is itself wrong there (a mutant that agrees with
    the exact answer on this input explains nothing). A run in a built-in layout
    (``ctx.layout``) also tries that layout's own slips, called through the same layout
    adapter as the user's function. ``caught_by``: only the mistakes that check is meant to
    catch (a special input, such as equal rewards, on which many mistakes coincide).

    ``probes()``: the fingerprint's other inputs (:mod:`refmath.checks.fingerprints`). With
    them, a mutant that reproduces the counterexample is named only if it also reproduces
    every probe; and if none does, a mutant whose deviation from the exact answer has the
    function's pattern on the counterexample and on every probe (deviating on the same
    inputs, at about the same elements, the same way, by about as much) is named as
    resembling the function's mistake (``Diagnosis.resembling``)."""
    in_float32 = getattr(ctx, "computes_in", None) == "float32"
    spec_value = _spec_value(kind, call) if getattr(ctx, "derived", False) else None
    tol = _tolerance(got, exact, bound)
    here = None if exact is None else Probe("the counterexample", call, got, exact,
                                              np.broadcast_to(bound, got.shape))
    matches, alike, scores = [], [], {}
    for m in mutants_for(kind, getattr(ctx, "layout", None)):
        if caught_by is not None and m.caught_by != caught_by:
            continue
        fn = _runnable(m, ctx, in_float32)
        out = _output(fn, call, got.shape)
        if out is None or exact is not None and _agrees(out, exact, bound):
            continue
        if m.layout is None and spec_value is not None and spec_value.shape == out.shape and \
                np.allclose(out, spec_value, rtol=1e-12, atol=1e-300, equal_nan=True):
            continue  # against a library's semantics, SPEC's own formula is no mistake
        if _explains(out, got, exact, bound, tol):
            matches.append(m)
            scores[m.name] = _residual(out, got, exact, bound)
        elif here is not None and _resembles(out, here):
            alike.append(m)
    if probes is None:
        return Diagnosis(sorted(matches, key=lambda m: scores[m.name]))
    probes = probes() if matches or alike else []
    matches, near = _fingerprint(matches, probes, ctx, in_float32, scores)
    if matches:
        return Diagnosis(sorted(matches, key=lambda m: scores[m.name]), near)
    alike = _alike(alike + [m for m, _ in near], probes, ctx, in_float32, scores)
    return Diagnosis(alike, [(m, p) for m, p in near if m not in alike], alike)


def _runnable(m: Mutant, ctx: Any, in_float32: bool) -> Callable:
    """The mutant as the function under test is called: through its layout's adapter, in
    float32 if the function computes in float32 by design."""
    fn = m.fn if m.layout is None else ctx.wrap(m.fn)
    return _in_float32(fn) if in_float32 and m.layout is None else fn


def _output(fn: Callable, call: Callable[[Callable], Any], shape: tuple) -> np.ndarray | None:
    """``fn``'s output on the input ``call`` makes, as float64, or None (it cannot run there,
    or returns another shape)."""
    try:
        out = call(fn)
    except Exception:  # noqa: BLE001 - a mutant that cannot run on this input
        return None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(shape):
        return None
    return out.detach().cpu().double().numpy()


def _explains(out: np.ndarray, got: np.ndarray, exact: np.ndarray | None, bound: np.ndarray,
              tol: np.ndarray) -> bool:
    """Whether a mistake's output ``out`` behaves like the function's ``got``: close to it
    everywhere (``tol``), NaN where it is NaN, deviating from ``exact`` the same way."""
    same_nan = np.isnan(out) & np.isnan(got)
    with np.errstate(invalid="ignore"):
        close = np.abs(out - got) <= tol
    return bool(np.all(close | same_nan)) and _same_direction(out, got, exact, bound)


def _fingerprint(matches: list[Mutant], probes: list, ctx: Any, in_float32: bool,
                 scores: dict[str, float]) -> tuple[list[Mutant], list[tuple[Mutant, str]]]:
    """The matches that also reproduce the function on every probe (a probe the mistake
    cannot run on refutes nothing); the others, with the first probe each one missed. A
    kept match's score adds its residuals on the probes."""
    kept, near = [], []
    for m in matches:
        fn, missed = _runnable(m, ctx, in_float32), None
        for p in probes:
            out = _output(fn, p.call, p.got.shape)
            if out is None:
                continue
            if not _explains(out, p.got, p.exact, p.bound, _tolerance(p.got, p.exact, p.bound)):
                missed = p.label
                break
            scores[m.name] += _residual(out, p.got, p.exact, p.bound)
        (kept.append(m) if missed is None else near.append((m, missed)))
    return kept, near


def _alike(candidates: list[Mutant], probes: list, ctx: Any, in_float32: bool,
           scores: dict[str, float]) -> list[Mutant]:
    """The candidates whose deviation has the function's pattern on every probe
    (:func:`_resembles`), best first (the pattern's mean similarity). Without probes there is
    no fingerprint to compare, and nothing resembles."""
    kept = []
    for m in candidates:
        fn, sims = _runnable(m, ctx, in_float32), []
        for p in probes:
            out = _output(fn, p.call, p.got.shape)
            if out is not None:
                sims.append(_resembles(out, p))
        if sims and all(sims):
            kept.append(m)
            scores[m.name] = -float(np.mean([float(s) for s in sims]))
    return sorted(kept, key=lambda m: scores[m.name])


def _deviation(out: np.ndarray, p: Probe) -> tuple[np.ndarray, np.ndarray]:
    """Where ``out`` deviates from the probe's exact answer beyond the bound and precision
    noise, as (the finite deviation, 0 elsewhere; the NaN positions where exact is a number)."""
    with np.errstate(invalid="ignore"):
        d = np.where(np.isinf(p.exact) & (out == p.exact), 0.0, out - p.exact)
        nan = np.isnan(d) & ~np.isnan(p.exact)
        d = np.clip(np.nan_to_num(d, nan=0.0), -1e150, 1e150)  # (a norm that stays finite)
        d = np.where(np.abs(d) <= p.bound + _noise(p.exact), 0.0, d)
    return d, nan


def _resembles(out: np.ndarray, p: Probe) -> float:
    """How a mistake's deviation from the exact answer on probe ``p`` resembles the
    function's: 0 unless both deviate or both agree, NaN at the same elements, and the finite
    deviations point the same way (cosine ≥ 0.9) with sizes within a factor 1.5 of each
    other; else the cosine (1 where both agree)."""
    mine, mine_nan = _deviation(p.got, p)
    its, its_nan = _deviation(out, p)
    if not np.array_equal(mine_nan, its_nan):
        return 0.0
    a, b = float(np.linalg.norm(mine)), float(np.linalg.norm(its))
    if a == 0.0 or b == 0.0:
        return 1.0 if a == b else 0.0
    cos = float(np.sum((mine / a) * (its / b)))
    return cos if cos >= 0.9 and 1 / 1.5 <= b / a <= 1.5 else 0.0


def _tolerance(got: np.ndarray, exact: np.ndarray | None, bound: np.ndarray) -> np.ndarray:
    """How close a known mistake's output must be to the function's for the mistake to
    explain it: twice the check's bound where the function is right; where it deviates, the
    deviation itself to 5% plus precision noise (10⁻⁵ of the result's scale, the line between
    IMPRECISE and WRONG). So a mistake is recognised by its behaviour — which elements move,
    which way, by about how much — not only when the function reproduces it bit for bit (a
    port that computes in float32, or orders its sums differently, still matches)."""
    strict = 2 * bound + 1e-300
    if exact is None:
        return strict
    with np.errstate(invalid="ignore"):
        dev = np.nan_to_num(np.abs(got - exact), nan=0.0, posinf=0.0)
    return strict + _noise(exact) + 0.05 * dev


def _noise(exact: np.ndarray) -> float:
    """Precision noise: 10⁻⁵ of the exact result's scale (IMPRECISE below it, WRONG above)."""
    finite = np.abs(exact[np.isfinite(exact)])
    return 1e-5 * (float(finite.max()) if finite.size else 0.0)


def _same_direction(out: np.ndarray, got: np.ndarray, exact: np.ndarray | None,
                    bound: np.ndarray) -> bool:
    """Where the function deviates beyond its bound and the precision noise (10⁻⁵ of the
    result's scale), the mistake deviates the same way."""
    if exact is None:
        return True
    with np.errstate(invalid="ignore"):
        off = np.abs(got - exact) > bound + _noise(exact)
        agree = np.sign(out - exact) == np.sign(got - exact)
    return bool(np.all(agree | ~off | np.isnan(got)))


def _residual(out: np.ndarray, got: np.ndarray, exact: np.ndarray | None,
              bound: np.ndarray) -> float:
    """How much of the deviation the mistake leaves unexplained (0: reproduced exactly): the
    ranking of several matching mistakes."""
    if exact is None:
        return 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(out - got) / (np.abs(got - exact) + bound + 1e-300)
    r = r[np.isfinite(r)]
    return float(r.mean()) if r.size else 0.0


def _spec_value(kind: str, call: Callable[[Callable], Any]) -> np.ndarray | None:
    """The bundled twin's (SPEC's formula's) output on the same input, or None."""
    twin = getattr(rt, kind, None)
    try:
        out = call(twin) if twin is not None else None
    except Exception:  # noqa: BLE001 - an input the twin refuses
        return None
    return out.detach().cpu().double().numpy() if isinstance(out, torch.Tensor) else None


def _in_float32(fn: Callable) -> Callable:
    """``fn`` computed in float32 on float64 inputs, its result read back in float64."""
    def cast(x: Any) -> Any:
        return x.float() if isinstance(x, torch.Tensor) and x.dtype == torch.float64 else x

    def call(*args: Any, **kw: Any) -> Any:
        out = fn(*map(cast, args), **{k: cast(v) for k, v in kw.items()})
        return out.double() if isinstance(out, torch.Tensor) and out.is_floating_point() \
            else out

    return call


def _agrees(out: np.ndarray, exact: np.ndarray, bound: np.ndarray) -> bool:
    with np.errstate(invalid="ignore"):
        ok = (np.abs(out - exact) <= bound) | (np.isinf(exact) & (out == exact))
    return bool(np.all(ok))


def _false(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros(x.shape, dtype=torch.bool, device=x.device)


def _shift_done(flags: torch.Tensor | None) -> torch.Tensor | None:
    """``flags[t − 1]`` at step t (False at t = 0)."""
    if flags is None:
        return None
    return torch.cat([_false(flags[..., :1]), flags[..., :-1]], -1)


def _cut_is_death(terminated: torch.Tensor | None,
                  truncated: torch.Tensor | None) -> torch.Tensor | None:
    """``terminated | truncated``: every time-limit cut taken for a termination."""
    if truncated is None:
        return terminated
    return truncated if terminated is None else terminated | truncated


# --- GAE and returns --------------------------------------------------------------------------

@mutant("gae", "gae.exact_small", "the done flag is shifted by one step: terminated[t−1] is "
        "used at step t")
def done_shifted(rewards, values, next_values, *, gamma, lam, terminated=None, truncated=None,
                 mask=None):
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam,
                  terminated=_shift_done(terminated),
                  truncated=truncated, mask=mask)


@mutant("gae", "gae.exact_small", "truncation treated as termination: a time-limit cut "
        "bootstraps nothing (TorchRL's default terminated = done)")
def truncation_as_termination(rewards, values, next_values, *, gamma, lam, terminated=None,
                              truncated=None, mask=None):
    terminated = _cut_is_death(terminated, truncated)
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, terminated=terminated,
                  truncated=truncated, mask=mask)


@mutant("gae", "gae.exact_small", "truncation ignored: the recursion runs across the cut "
        "(and no bootstrap there)")
def truncation_ignored(rewards, values, next_values, *, gamma, lam, terminated=None,
                       truncated=None, mask=None):
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, terminated=terminated,
                  mask=mask)


@mutant("gae", "gae.exact_small", "γ missing from the TD error: δ_t = r_t + V(s_{t+1}) − "
        "V(s_t) (the carry keeps γλ)")
def gamma_missing_in_delta(rewards, values, next_values, *, gamma, lam, terminated=None,
                           truncated=None, mask=None):
    # GAE is linear in its inputs: the mistake adds (1 − γ_t)·V(s_{t+1}) to every δ_t that
    # bootstraps, carried by the same γλ recursion
    kw = dict(gamma=gamma, lam=lam, terminated=terminated, truncated=truncated, mask=mask)
    g = torch.as_tensor(gamma, dtype=rewards.dtype)
    extra = (1 - g) * next_values
    if terminated is not None:
        extra = torch.where(terminated, torch.zeros_like(extra), extra)
    zero = torch.zeros_like(rewards)
    return rt.gae(rewards, values, next_values, **kw) + rt.gae(extra, zero, zero, **kw)


@mutant("gae", "gae.exact_small", "bootstraps the last step from V(s_{T−1}) (values[-1]) "
        "instead of V(s_T) (next_values[-1])")
def bootstrap_from_last_value(rewards, values, next_values, *, gamma, lam, terminated=None,
                              truncated=None, mask=None):
    nv = torch.cat([next_values[..., :-1], values[..., -1:]], -1)
    return rt.gae(rewards, values, nv, gamma=gamma, lam=lam, terminated=terminated,
                  truncated=truncated, mask=mask)


@mutant("gae", "gae.exact_small", "bootstraps from a terminal state: γ·V'(s_{t+1}) is added "
        "even when step t terminated (the recursion still stops)")
def bootstrap_at_terminal(rewards, values, next_values, *, gamma, lam, terminated=None,
                          truncated=None, mask=None):
    if terminated is not None:
        truncated = terminated if truncated is None else truncated | terminated
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, truncated=truncated,
                  mask=mask)


@mutant("gae", "gae.exact_small", "padding inside the recursion: masked steps are zeroed but "
        "still recursed through (the discount jumps one step per hole)")
def padding_in_recursion(rewards, values, next_values, *, gamma, lam, terminated=None,
                         truncated=None, mask=None):
    if mask is None:
        return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam,
                      terminated=terminated, truncated=truncated)
    m = mask.to(rewards.dtype)
    clean = [torch.where(mask, x, torch.zeros_like(x)) for x in (rewards, values, next_values)]
    return rt.gae(*clean, gamma=gamma, lam=lam, terminated=terminated,
                  truncated=truncated) * m


@mutant("gae", "gae.ignored_numbers", "padded outputs written as 0·values (to keep the "
        "autograd graph) instead of selected: a NaN or inf value at a padded step becomes a NaN "
        "advantage there")
def padded_output_multiplied(rewards, values, next_values, *, gamma, lam, terminated=None,
                             truncated=None, mask=None):
    out = rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, terminated=terminated,
                 truncated=truncated, mask=mask)
    return out if mask is None else torch.where(mask, out, 0 * values)


@mutant("gae", "gae.exact_small", "the mask applied twice in the carry: a masked step stops "
        "the recursion instead of being skipped")
def mask_stops_recursion(rewards, values, next_values, *, gamma, lam, terminated=None,
                         truncated=None, mask=None):
    if mask is None:
        return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam,
                      terminated=terminated, truncated=truncated)
    before_hole = torch.cat([~mask[..., 1:], _false(mask[..., :1])], -1) & mask
    truncated = before_hole if truncated is None else truncated | before_hole
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, terminated=terminated,
                  truncated=truncated, mask=mask)


@mutant("gae", "gae.exact_small", "advantages whitened inside the GAE function")
def whitening_inside_gae(rewards, values, next_values, **kw):
    A = rt.gae(rewards, values, next_values, **kw)
    return (A - A.mean()) / (A.std(unbiased=False) + 1e-8)


@mutant("gae", "gae.exact_small", "γ missing from the carry: A_t = δ_t + λ·A_{t+1}")
def gamma_missing_in_carry(rewards, values, next_values, *, gamma, lam, terminated=None,
                           truncated=None, mask=None):
    delta = rt.td_errors(rewards, values, next_values, gamma=gamma, terminated=terminated)
    zero = torch.zeros_like(rewards)
    # GAE of (δ, 0, 0) with γ = 1: the TD errors themselves, carried with λ alone
    return rt.gae(delta, zero, zero, gamma=1.0, lam=lam, terminated=terminated,
                  truncated=truncated, mask=mask)


@mutant("gae", "gae.exact_small", "the done flag read one step EARLY: terminated[t+1] "
        "decides step t's bootstrap and carry, so every boundary cuts a step too soon and "
        "the terminal step keeps its bootstrap (the flag stored with observation t read as "
        "'the next step ended')")
def done_read_one_step_early(rewards, values, next_values, *, gamma, lam, terminated=None,
                             truncated=None, mask=None):
    def early(flag):
        if flag is None:
            return None
        return torch.cat([flag[..., 1:], flag[..., -1:]], -1)

    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam,
                  terminated=early(terminated), truncated=early(truncated), mask=mask)


@mutant("gae", "gae.exact_small", "a time-limit cut bootstrapped from the value of the state "
        "BEFORE the last action, V(s_t), instead of the state it was cut in, V(s_{t+1})")
def truncation_bootstraps_own_value(rewards, values, next_values, *, gamma, lam,
                                    terminated=None, truncated=None, mask=None):
    if truncated is not None:
        cut = truncated if terminated is None else truncated & ~terminated
        next_values = torch.where(cut, values, next_values)
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, terminated=terminated,
                  truncated=truncated, mask=mask)


@mutant("gae", "gae.exact_small", "the carry not reset at a termination: the bootstrap is "
        "zeroed but A_{t+1} of the next episode is still added (A_t = δ_t + γλ·A_{t+1} across "
        "the boundary)")
def carry_not_reset(rewards, values, next_values, *, gamma, lam, terminated=None,
                    truncated=None, mask=None):
    return _deltas_carried(rewards, values, next_values, gamma, lam, terminated, truncated,
                           mask)


def _deltas_carried(rewards, values, next_values, gamma, lam, terminated, cuts, mask):
    """The TD errors (bootstrapped right) carried with γλ across every termination, and
    stopped only at ``cuts``: GAE of (δ, 0, 0) with no terminations."""
    delta = rt.td_errors(rewards, values, next_values, gamma=gamma, terminated=terminated)
    zero = torch.zeros_like(rewards)
    return rt.gae(delta, zero, zero, gamma=gamma, lam=lam, truncated=cuts, mask=mask)


@mutant("gae", "gae.exact_small", "the carry never reset at an episode's end, a termination "
        "or a time-limit cut: each bootstrap is right (zero at a termination, V(s_{t+1}) at a "
        "cut), but A_{t+1} of the next episode is added across every boundary (the done flag "
        "only in δ_t: Super-mario-bros-PPO-pytorch#21's `gae = gae·γ·τ + δ`)")
def carry_never_reset(rewards, values, next_values, *, gamma, lam, terminated=None,
                      truncated=None, mask=None):
    return _deltas_carried(rewards, values, next_values, gamma, lam, terminated, None, mask)


@mutant("gae", "gae.exact_small", "the end of the rollout taken for an episode's end: the "
        "last step bootstraps nothing (`next_v = 0 if done else (V[t + 1] if t + 1 < T else "
        "0)`) where its next_values[T − 1] continues the episode")
def rollout_end_not_bootstrapped(rewards, values, next_values, *, gamma, lam, terminated=None,
                                 truncated=None, mask=None):
    end = _last_present(rewards, mask)
    terminated = end if terminated is None else terminated | end
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, terminated=terminated,
                  truncated=truncated, mask=mask)


@mutant("gae", "gae.exact_small", "the carry read before it is written: A_t = δ_t + γλ·(1 − "
        "d_t)·advantages[t], where advantages[t] is still the buffer's 0, so A_t = δ_t — λ as "
        "0 (4kasha/CartPole_PPO#1: advantages[t] for advantages[t + 1])")
def carry_read_before_written(rewards, values, next_values, *, gamma, lam, terminated=None,
                              truncated=None, mask=None):
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=0.0, terminated=terminated,
                  truncated=truncated, mask=mask)


@mutant("discounted_returns", "discounted_returns.exact_small",
        "truncation treated as termination in the returns")
def returns_truncation_as_termination(rewards, *, gamma, next_values=None, terminated=None,
                                      truncated=None, mask=None):
    terminated = _cut_is_death(terminated, truncated)
    return rt.discounted_returns(rewards, gamma=gamma, next_values=next_values,
                                 terminated=terminated, truncated=truncated, mask=mask)


@mutant("discounted_returns", "discounted_returns.exact_small",
        "no bootstrap: the return ends with the data even when the episode did not")
def returns_without_bootstrap(rewards, *, gamma, next_values=None, terminated=None,
                              truncated=None, mask=None):
    return rt.discounted_returns(rewards, gamma=gamma, terminated=terminated,
                                 truncated=truncated, mask=mask)


@mutant("td_errors", "td_errors.exact_small",
        "the TD target bootstraps from the terminal state (terminated ignored)")
def td_bootstrap_at_terminal(rewards, values, next_values, *, gamma, terminated=None):
    return rt.td_errors(rewards, values, next_values, gamma=gamma)


@mutant("n_step_returns", "n_step_returns.exact_small",
        "n-step window off by one: n + 1 rewards before the bootstrap")
def n_step_off_by_one(rewards, next_values, *, gamma, n, **kw):
    return rt.n_step_returns(rewards, next_values, gamma=gamma, n=n + 1, **kw)


@mutant("n_step_returns", "n_step_returns.exact_small", "the reward of a terminal step "
        "dropped: Σ γ^i·(1 − d_{t+i})·r_{t+i} (thu-ml/tianshou#135's documented formula), so "
        "the step that ends the episode contributes nothing")
def n_step_terminal_reward_dropped(rewards, next_values, *, gamma, n, terminated=None, **kw):
    if terminated is not None:
        rewards = torch.where(terminated, torch.zeros_like(rewards), rewards)
    return rt.n_step_returns(rewards, next_values, gamma=gamma, n=n, terminated=terminated,
                             **kw)


def _rows(x: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if x is None else torch.as_tensor(x).expand_as(like).reshape(-1, like.shape[-1])


@mutant("n_step_returns", "n_step_returns.exact_small", "the bootstrap discounted by γ^n even "
        "where the window was cut short by the episode's end after k < n steps (γ^k meant)")
def n_step_discount_not_shortened(rewards, next_values, *, gamma, n, terminated=None,
                                  truncated=None, mask=None):
    out = rt.n_step_returns(rewards, next_values, gamma=gamma, n=n, terminated=terminated,
                            truncated=truncated, mask=mask).clone()
    flat, nv = out.reshape(-1, rewards.shape[-1]), _rows(next_values, rewards)
    g = _rows(torch.as_tensor(gamma, dtype=rewards.dtype), rewards)
    flags = [_rows(f, rewards) for f in (terminated, truncated, mask)]
    for b in range(flat.shape[0]):
        present = [t for t in range(flat.shape[1]) if flags[2] is None or bool(flags[2][b, t])]
        for i, t in enumerate(present):
            for k in range(1, n + 1):  # the window's last step: k rewards in
                e = present[i + k - 1] if i + k - 1 < len(present) else None
                if e is None:
                    break
                ends = (flags[0] is not None and bool(flags[0][b, e])) or \
                    (flags[1] is not None and bool(flags[1][b, e])) or e == present[-1]
                if k < n and ends:
                    if flags[0] is None or not bool(flags[0][b, e]):
                        disc = torch.prod(g[b, [present[i + j] for j in range(k)]])
                        flat[b, t] += (disc * g[b, e] ** (n - k) - disc) * nv[b, e]
                    break
    return out


@mutant("discounted_returns", "discounted_returns.exact_small", "γ applied to the reward too: "
        "G_t = γ·(r_t + G_{t+1}), so every return is γ·G_t")
def returns_reward_discounted(rewards, *, gamma, next_values=None, terminated=None,
                              truncated=None, mask=None):
    G = rt.discounted_returns(rewards, gamma=gamma, next_values=next_values,
                              terminated=terminated, truncated=truncated, mask=mask)
    return torch.as_tensor(gamma, dtype=G.dtype) * G


@mutant("lambda_returns", "lambda_returns.exact_small", "the λ-returns as advantages plus "
        "next_values (A_t + V(s_{t+1})) where A_t + V(s_t) is meant")
def lambda_returns_plus_next_values(rewards, values, next_values, *, mask=None, **kw):
    A = rt.gae(rewards, values, next_values, mask=mask, **kw)
    out = A + next_values
    return out if mask is None else torch.where(mask.bool(), out, torch.zeros_like(out))


@mutant("lambda_returns", "lambda_returns.exact_small", "the returns built from an advantage "
        "buffer still at its zeros: returns = values (the advantages never added)")
def lambda_returns_are_values(rewards, values, next_values, **kw):
    return values.clone()


@mutant("lambda_returns", "lambda_returns.exact_small",
        "λ-returns returned without adding the values back (the advantages)")
def lambda_returns_are_advantages(rewards, values, next_values, **kw):
    return rt.gae(rewards, values, next_values, **kw)


def _last_present(like: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``[..., T]`` booleans: the last present step of each row."""
    present = torch.ones_like(like, dtype=torch.bool) if mask is None else mask.bool()
    idx = torch.arange(like.shape[-1], device=like.device)
    last = torch.where(present, idx, torch.full_like(idx, -1)).amax(-1, keepdim=True)
    return present & (idx == last)


@mutant("gae", "gae.exact_small", "the last step left out of the loop (`for t in "
        "reversed(range(T − 1))` over a zero buffer): the last step's advantage stays 0 and "
        "the step before it gets no carry")
def last_step_left_out(rewards, values, next_values, *, gamma, lam, terminated=None,
                       truncated=None, mask=None):
    present = torch.ones_like(rewards, dtype=torch.bool) if mask is None else mask.bool()
    kept = present & ~_last_present(rewards, mask)
    return rt.gae(rewards, values, next_values, gamma=gamma, lam=lam, terminated=terminated,
                  truncated=truncated, mask=kept)


@mutant("td_errors", "td_errors.exact_small", "the TD target bootstraps from the current "
        "state's value: r_t + γ·V(s_t) − V(s_t) (values[t] where V(s_{t+1}) is meant)")
def td_target_from_own_value(rewards, values, next_values, *, gamma, terminated=None):
    return rt.td_errors(rewards, values, values, gamma=gamma, terminated=terminated)


@mutant("discounted_returns", "discounted_returns.exact_small", "the running return not reset "
        "at a termination: G_t = r_t + γ·G_{t+1} across the episode's end (done ignored)")
def returns_carry_not_reset(rewards, *, gamma, next_values=None, terminated=None,
                            truncated=None, mask=None):
    return rt.discounted_returns(rewards, gamma=gamma, next_values=next_values,
                                 truncated=truncated, mask=mask)


@mutant("discounted_returns", "discounted_returns.exact_small", "the done flag shifted by one "
        "step: terminated[t−1] used at step t")
def returns_done_shifted(rewards, *, gamma, next_values=None, terminated=None, truncated=None,
                         mask=None):
    return rt.discounted_returns(rewards, gamma=gamma, next_values=next_values,
                                 terminated=_shift_done(terminated), truncated=truncated,
                                 mask=mask)


@mutant("n_step_returns", "n_step_returns.exact_small", "the n-step window not cut at the "
        "episode's end: rewards after a termination or a time limit summed in (the flags "
        "ignored)")
def n_step_crosses_episode_end(rewards, next_values, *, gamma, n, terminated=None,
                               truncated=None, mask=None):
    return rt.n_step_returns(rewards, next_values, gamma=gamma, n=n, mask=mask)


@mutant("lambda_returns", "lambda_returns.exact_small", "truncation treated as termination: "
        "a time-limit cut bootstraps nothing")
def lambda_returns_truncation_as_termination(rewards, values, next_values, *, gamma, lam,
                                             terminated=None, truncated=None, mask=None):
    terminated = _cut_is_death(terminated, truncated)
    return rt.lambda_returns(rewards, values, next_values, gamma=gamma, lam=lam,
                             terminated=terminated, truncated=truncated, mask=mask)


# --- KL, ratios, objectives -------------------------------------------------------------------

@mutant("clipped_surrogate", "clipped_surrogate.float64",
        "a sign distributed through the min: −min(−r·A, −clip(r)·A) = max(r·A, clip(r)·A), "
        "the optimistic bound")
def surrogate_sign_through_min(ratio, advantages, *, clip_low=0.2, clip_high=None,
                               dual_clip=None):
    high = clip_low if clip_high is None else clip_high
    clipped = torch.clamp(ratio, 1 - clip_low, 1 + high)
    return torch.maximum(ratio * advantages, clipped * advantages)


@mutant("clipped_surrogate", "clipped_surrogate.float64",
        "the clip range applied to the log-ratio: exp(clip(log r, −ε, ε)), a ratio kept in "
        "[e^−ε, e^ε] instead of [1 − ε, 1 + ε]")
def clip_on_log_ratio(ratio, advantages, *, clip_low=0.2, clip_high=None, dual_clip=None):
    import math

    high = clip_low if clip_high is None else clip_high
    clipped = torch.clamp(ratio, math.exp(-clip_low), math.exp(high))
    out = torch.minimum(ratio * advantages, clipped * advantages)
    if dual_clip is not None:
        out = torch.where(advantages < 0, torch.maximum(out, dual_clip * advantages), out)
    return out


@mutant("kl_divergence", "kl_divergence.float64",
        "the KL direction swapped: KL(q‖p) for KL(p‖q)")
def kl_divergence_swapped(p, q):
    return rt.kl_divergence(q, p)


@mutant("entropy_from_logits", "entropy_from_logits.float64", "the logits used as "
        "log-probabilities: −Σ softmax(l)·l, log Σ exp(l) never subtracted (log_softmax "
        "forgotten)")
def entropy_logits_as_logp(logits):
    return -(torch.softmax(logits, -1) * logits).sum(-1)


@mutant("entropy_from_logits", "entropy_from_logits.float64", "the softmax taken as "
        "exp(l)/Σ exp(l) without subtracting the maximum: exp overflows for logits near 1e3 "
        "and the entropy is NaN")
def entropy_naive_softmax(logits):
    e = torch.exp(logits)
    p = e / e.sum(-1, keepdim=True)
    return -(p * torch.log(p)).sum(-1)


@mutant("critic_loss", "critic_loss.value", "a factor ½ in the critic loss: ½(V − G)² where "
        "(V − G)² is meant")
def critic_loss_with_half(values, returns):
    return 0.5 * rt.critic_loss(values, returns)


@mutant("entropy", "entropy.float64", "the entropy in bits (log₂) where nats (ln) are meant")
def entropy_in_bits(p):
    return rt.entropy(p) / torch.log(torch.tensor(2.0, dtype=p.dtype))


@mutant("kl_penalized_surrogate", "kl_penalized_surrogate.float64",
        "the KL penalty's sign flipped: r·A + β·KL (the penalty rewarded)")
def kl_penalty_sign_flipped(ratio, advantages, kl, *, beta):
    return ratio * advantages + beta * kl


@mutant("kl_estimate", "kl_estimate.float64",
        "wrong KL direction: log r = logp − ref_logp (estimates KL(π_ref‖π)'s integrand)")
def kl_wrong_direction(logp, ref_logp, kind):
    return rt.kl_estimate(ref_logp, logp, kind)


@mutant("kl_estimate", "kl_estimate.float32",
        "k3 as exp(log r) − 1 − log r without expm1: all digits lost near r = 1", tier="precision")
def k3_without_expm1(logp, ref_logp, kind):
    log_r = ref_logp - logp
    if kind == "k3":
        return torch.exp(log_r) - 1 - log_r
    return rt.kl_estimate(logp, ref_logp, kind)


@mutant("kl_estimate", "kl_estimate.float64",
        "every estimator computed as k3: the branches on the estimator's name are `if`s, not "
        "`elif`s, so the k3 branch runs last whatever was asked (AReaL PR #408's review)")
def kl_estimators_fall_through(logp, ref_logp, kind):
    return rt.kl_estimate(logp, ref_logp, "k3")


@mutant("kl_estimate", "kl_estimate.float64", "k2 without the factor ½")
def k2_without_half(logp, ref_logp, kind):
    out = rt.kl_estimate(logp, ref_logp, kind)
    return out * 2 if kind == "k2" else out


@mutant("importance_ratio", "importance_ratio.extremes",
        "ratio as exp(logp)/exp(old_logp): 0/0 for long sequences' log-probs")
def ratio_as_quotient(logp, old_logp):
    return torch.exp(logp) / torch.exp(old_logp)


@mutant("clipped_surrogate", "clipped_surrogate.float64",
        "the clip applied to the advantage instead of the ratio")
def clip_on_advantage(ratio, advantages, *, clip_low=0.2, clip_high=None, dual_clip=None):
    hi = clip_low if clip_high is None else clip_high
    return torch.minimum(ratio * advantages,
                         ratio * torch.clamp(advantages, 1 - clip_low, 1 + hi))


@mutant("clipped_surrogate", "clipped_surrogate.float64",
        "the asymmetric clip range swapped: clip(r, 1 − ε_high, 1 + ε_low) (clip-higher's "
        "ε_high applied below 1)")
def clip_range_swapped(ratio, advantages, *, clip_low=0.2, clip_high=None, dual_clip=None):
    hi = clip_low if clip_high is None else clip_high
    return rt.clipped_surrogate(ratio, advantages, clip_low=hi, clip_high=clip_low,
                                dual_clip=dual_clip)


@mutant("clipped_surrogate", "clipped_surrogate.float64",
        "the dual clip applied for positive advantages too")
def dual_clip_for_positive_advantages(ratio, advantages, *, clip_low=0.2, clip_high=None,
                                      dual_clip=None):
    out = rt.clipped_surrogate(ratio, advantages, clip_low=clip_low, clip_high=clip_high)
    return out if dual_clip is None else torch.maximum(out, dual_clip * advantages)


@mutant("clipped_surrogate", "clipped_surrogate.float64",
        "clip(r)·A without the min: no pessimistic bound (improvement beyond 1 − ε rewarded)")
def clip_without_min(ratio, advantages, *, clip_low=0.2, clip_high=None, dual_clip=None):
    hi = clip_low if clip_high is None else clip_high
    return torch.clamp(ratio, 1 - clip_low, 1 + hi) * advantages


@mutant("adaptive_kl_coefficient", "adaptive_kl_coefficient.walk",
        "the lower threshold written target·(2 − tolerance) instead of target/tolerance "
        "(0.5·target for tolerance 1.5, not 0.667·target): β is kept where it should halve")
def adaptive_kl_lower_threshold_mirrored(beta, kl, *, target, tolerance=1.5, factor=2.0):
    if kl < target * (2 - tolerance):
        return beta / factor
    if kl > target * tolerance:
        return beta * factor
    return beta


@mutant("adaptive_kl_coefficient", "adaptive_kl_coefficient.walk",
        "the thresholds written with the tolerance as a margin (target ± tolerance·target/3) "
        "that equals the rule only at the PPO paper's tolerance 1.5")
def adaptive_kl_margin_thresholds(beta, kl, *, target, tolerance=1.5, factor=2.0):
    margin = (tolerance - 1) * 2 / 3 * target  # = target/3 at tolerance 1.5: low = 2/3·target
    if kl < target - margin:
        return beta / factor
    if kl > target + 3 * margin / 2:  # = 1.5·target at tolerance 1.5
        return beta * factor
    return beta


@mutant("group_advantages", "group_advantages.float64",
        "RLOO's leave-one-out mean includes the sample itself")
def rloo_including_self(rewards, *, method, eps=1e-6, unbiased=True):
    if method == "rloo":
        return rewards - rewards.mean(-1, keepdim=True)
    return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)


@mutant("group_advantages", "group_advantages.float64",
        "GRPO's std biased (÷G) where the unbiased one (÷(G−1)) is asked for")
def grpo_biased_std(rewards, *, method, eps=1e-6, unbiased=True):
    return rt.group_advantages(rewards, method=method, eps=eps, unbiased=False)


@mutant("group_advantages", "group_advantages.float64",
        "GRPO's advantages normalised twice: per group, then whitened again over the whole "
        "batch ((A − mean)/(std + 1e-8)), which rescales every group by the batch's spread "
        "(axon-rl/gem PR #113)")
def grpo_whitened_over_batch(rewards, *, method, eps=1e-6, unbiased=True):
    a = rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)
    std = a.std() if a.numel() > 1 else a.new_tensor(float("nan"))  # (torch's, unwarned)
    return (a - a.mean()) / (std + 1e-8)


@mutant("group_advantages", "group_advantages.zero_spread",
        "the group mean subtracted as computed in floating point: the mean of G equal rewards "
        "(30 × 0.9 in float32) is not exactly the reward, and its rounding ÷ (std + eps) is "
        "not small (−0.151). Any float mean does this — over the wrong set too: the value "
        "checks say whether the statistics are taken over the right set", tier="precision")
def group_mean_rounding(rewards, *, method, eps=1e-6, unbiased=True):
    G = rewards.shape[-1]
    mean = rewards.mean(-1, keepdim=True)
    if method == "dr_grpo":
        return rewards - mean
    if method == "rloo":
        return rewards - (rewards.sum(-1, keepdim=True) - rewards) / (G - 1)
    if method == "batch_std":  # TRL's scale_rewards="batch": the batch's std
        std = rewards.std(unbiased=unbiased) if rewards.numel() > 1 else torch.zeros(())
        return (rewards - mean) / (std + eps)
    if method != "grpo":  # (only the group mean is this mistake's: the rest as it should be)
        return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)
    std = rewards.std(-1, keepdim=True, unbiased=unbiased and G > 1) if G > 1 else \
        torch.zeros_like(mean)
    return (rewards - mean) / (std + eps)


@mutant("whiten", "whiten.zero_spread",
        "the mean subtracted as computed: a constant x whitens to its mean's rounding error "
        "÷ sqrt(eps) (156 × 0.7 in float32: 1.2e-3), not to 0", tier="precision")
def whiten_mean_rounding(x, mask=None, *, shift_mean=True, unbiased=True, eps=1e-8):
    keep = torch.ones_like(x, dtype=torch.bool) if mask is None else mask.bool()
    n = keep.sum()
    xs = torch.where(keep, x, torch.zeros_like(x))
    mean = xs.sum() / n
    dev = torch.where(keep, x - mean, torch.zeros_like(x))
    var = dev.square().sum() / (n - 1 if unbiased and n > 1 else n)
    w = dev * torch.rsqrt(var + eps)
    return torch.where(keep, w if shift_mean else w + mean, torch.zeros_like(x))


@mutant("gae", "gae.bfloat16",
        "half precision computed in the half dtype itself: γ rounded to 8 bits (0.99 → "
        "0.98828125) and every sum with 8 significant bits, instead of float32 rounded once", tier="precision")
def half_precision_throughout(rewards, values, next_values, **kw):
    return rt.gae.in_input_dtype(rewards, values, next_values, **kw)


@mutant("discounted_returns", "discounted_returns.float16",
        "half precision computed in the half dtype itself (γ and the running sum in float16)", tier="precision")
def returns_in_half_precision(rewards, **kw):
    return rt.discounted_returns.in_input_dtype(rewards, **kw)


@mutant("whiten", "whiten.float64", "whitening always with the biased variance")
def whiten_biased_variance(x, mask=None, *, shift_mean=True, unbiased=True, eps=1e-8):
    return rt.whiten(x, mask, shift_mean=shift_mean, unbiased=False, eps=eps)


@mutant("aggregate_loss", "aggregate_loss.float64",
        "length-biased aggregation: seq-mean-token-mean computed as token-mean")
def length_biased_aggregation(per_step_loss, mask, mode, *, normalizer=None):
    if mode == "seq-mean-token-mean":
        mode = "token-mean"
    return rt.aggregate_loss(per_step_loss, mask, mode, normalizer=normalizer)


@mutant("aggregate_loss", "aggregate_loss.float64",
        "padding counted in the mean: the masked loss averaged over every position, padded "
        "tokens as zeros ((loss·mask).mean() for token-mean; each row's sum ÷ T, the padded "
        "length, for seq-mean-token-mean)")
def aggregate_padding_in_mean(per_step_loss, mask, mode, *, normalizer=None):
    kept = torch.where(mask, per_step_loss, torch.zeros_like(per_step_loss))
    if mode == "token-mean":
        return kept.mean()
    if mode == "seq-mean-token-mean":
        return kept.mean(-1).mean()
    return rt.aggregate_loss(per_step_loss, mask, mode, normalizer=normalizer)


@mutant("whiten", "whiten.float64",
        "the mean taken over every position, padding included as zeros ((x·mask).mean()), then "
        "the variance over the kept elements around that mean")
def whiten_mean_over_padding(x, mask=None, *, shift_mean=True, unbiased=True, eps=1e-8):
    if mask is None:
        return rt.whiten(x, mask, shift_mean=shift_mean, unbiased=unbiased, eps=eps)
    m = mask.to(x.dtype)
    mean = torch.where(mask, x, torch.zeros_like(x)).mean()
    n = m.sum()
    squares = torch.where(mask, (x - mean).square(), torch.zeros_like(x)).sum()
    var = squares / (n - 1) if unbiased and n > 1 else squares / n.clamp(min=1)
    w = (x - mean) * torch.rsqrt(var + eps)
    w = w if shift_mean else w + mean
    return torch.where(mask, w, torch.zeros_like(w))


@mutant("value_loss", "value_loss.float64", "a factor ½ inside the value loss")
def value_loss_with_half(values, returns, **kw):
    return 0.5 * rt.value_loss(values, returns, **kw)


@mutant("value_loss", "value_loss.float64",
        "value clipping with the clipped prediction where the max of two squares is asked for")
def value_clip_wrong_form(values, returns, *, old_values=None, clip=None,
                          clip_form="max_of_squares"):
    form = "clipped_prediction" if clip_form == "max_of_squares" else clip_form
    return rt.value_loss(values, returns, old_values=old_values, clip=clip, clip_form=form)


@mutant("value_loss", "value_loss.float64",
        "value clipping against the CURRENT prediction instead of the rollout's old values: "
        "V_clip = V + clip(V − V, −ε, ε) = V, so the clip never acts and the loss is (V − R)² "
        "(tensorflow/agents#352)")
def value_clip_against_current(values, returns, *, old_values=None, clip=None,
                               clip_form="max_of_squares"):
    return rt.value_loss(values, returns, old_values=None if clip is None else values.detach(),
                         clip=clip, clip_form=clip_form)


@mutant("value_loss", "value_loss.float64",
        "the clip taken around the RETURNS instead of the old values: R + clip(V − R, −ε, ε), "
        "so the 'clipped' error is the error itself clipped to ε (kscalelabs/ksim PR #3's "
        "review)")
def value_clip_around_returns(values, returns, *, old_values=None, clip=None,
                              clip_form="max_of_squares"):
    if clip is None:
        return rt.value_loss(values, returns)
    clipped = returns + (values - returns).clamp(-clip, clip)
    if clip_form == "clipped_prediction":
        return (clipped - returns).square()
    return torch.maximum((values - returns).square(), (clipped - returns).square())


@mutant("whiten", "whiten.float64", "ε added to the standard deviation, (x − μ)/(σ + ε), where "
        "SPEC adds it to the variance, (x − μ)/sqrt(σ² + ε): a difference of the order of "
        "ε/σ (SB3's and many codebases' normalisation; a by-design difference if you mean it)",
        tier="precision")
def whiten_eps_added_to_std(x, mask=None, *, shift_mean=True, unbiased=True, eps=1e-8):
    keep = torch.ones_like(x, dtype=torch.bool) if mask is None else mask.bool()
    n = keep.sum()
    mean = torch.where(keep, x, torch.zeros_like(x)).sum() / n.clamp(min=1)
    squares = torch.where(keep, (x - mean).square(), torch.zeros_like(x)).sum()
    var = squares / (n - 1) if unbiased and n > 1 else squares / n.clamp(min=1)
    std = var.sqrt()
    out = torch.where(std > 0, (x - mean) / (std + eps), torch.zeros_like(x))
    out = out if shift_mean else out + mean
    return torch.where(keep, out, torch.zeros_like(out))


@mutant("value_loss", "value_loss.float64",
        "the min of the two squares where PPO2 takes the max: max((V − R)², (V_clip − R)²) "
        "read as a pessimistic bound the wrong way (ray-project/ray#10430, "
        "leggedrobotics/rsl_rl#152 ask for it)")
def value_clip_min_of_squares(values, returns, *, old_values=None, clip=None,
                              clip_form="max_of_squares"):
    if clip is None or clip_form != "max_of_squares":
        return rt.value_loss(values, returns, old_values=old_values, clip=clip,
                             clip_form=clip_form)
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return torch.minimum((values - returns).square(), (clipped - returns).square())


@mutant("actor_loss", "actor_loss.no_critic_gradient",
        "the advantage not detached: the actor loss trains the critic")
def advantage_not_detached(logp, advantages):
    return -logp * advantages


@mutant("expected_return", "expected_return.value_and_autograd", "the discount counted "
        "from 1: Σ_t γ^{t+1} r_t (the first reward already discounted), γ·J")
def return_discounted_from_one(mdp, pi):
    return float(mdp.gamma) * rt.expected_return(mdp, pi)


@mutant("fisher_matrix", "fisher_matrix.exact_and_kl_hessian", "the Fisher matrix of a "
        "softmax as diag(p) alone: the −ppᵀ term (the score's mean, Σ_a π(a)·∇log π(a)) "
        "forgotten")
def fisher_diagonal_only(p):
    return torch.diag_embed(p)


@mutant("conjugate_gradient", "conjugate_gradient.solves", "the damping ignored: A x = g "
        "solved where (A + damping·I) x = g is asked for")
def cg_damping_ignored(Avp, g, iters, damping=0.0):
    return rt.conjugate_gradient(Avp, g, iters, 0.0)


@mutant("natural_gradient_step", "natural_gradient_step.quadratic_model", "the step length "
        "without the 2: sqrt(δ/gᵀF⁻¹g)·F⁻¹g, so ½sᵀFs = δ/2 (the KL model's ½ dropped)")
def natural_step_without_two(g, F, max_kl):
    return rt.natural_gradient_step(g, F, max_kl) / 2**0.5


@mutant("natural_gradient_step", "natural_gradient_step.quadratic_model", "the step along the "
        "plain gradient g, scaled to the KL radius, where the natural direction F⁻¹g is meant")
def natural_step_along_gradient(g, F, max_kl):
    return torch.sqrt(2 * max_kl / (g @ F @ g)) * g


@mutant("backtracking_line_search", "backtracking_line_search.accepts_only_feasible_improvements",
        "the line search accepts the first step within the KL radius, improvement or not")
def line_search_ignores_improvement(objective, kl, x, full_step, *, max_kl, backtrack=0.5,
                                    max_backtracks=10):
    for k in range(max_backtracks):
        candidate = x + backtrack**k * full_step
        if bool(kl(candidate) <= max_kl):
            return candidate, k
    return x.clone(), None


# --- masks multiplied instead of selected (NaN·0 = NaN leaks from masked positions) ---------

def _count(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.to(like.dtype)


@mutant("sequence_log_ratio", "sequence_log_ratio.ignored_numbers",
        "the mask multiplied into the log-ratios instead of selecting them: NaN at a padded "
        "token leaks (NaN·0 = NaN)")
def sequence_log_ratio_mask_multiplied(logp, old_logp, mask=None):
    m = torch.ones_like(logp) if mask is None else _count(mask, logp)
    return ((logp - old_logp) * m).sum(-1)


@mutant("geometric_mean_ratio", "geometric_mean_ratio.ignored_numbers",
        "the masked mean of the log-ratios by multiplication: NaN at a padded token leaks")
def geometric_mean_mask_multiplied(logp, old_logp, mask=None):
    m = torch.ones_like(logp) if mask is None else _count(mask, logp)
    return torch.exp(((logp - old_logp) * m).sum(-1) / m.sum(-1).clamp(min=1))


@mutant("whiten", "whiten.ignored_numbers",
        "masked whitening by multiplication (x·mask): NaN or inf at a masked position leaks "
        "into the mean and every output")
def whiten_mask_multiplied(x, mask=None, *, shift_mean=True, unbiased=True, eps=1e-8):
    m = torch.ones_like(x) if mask is None else _count(mask, x)
    n = m.sum()
    mean = (x * m).sum() / n
    squares = ((x - mean) * m).square().sum()
    var = squares / (n - 1) if unbiased and n > 1 else (squares / n if not unbiased
                                                         else squares * 0)
    w = (x - mean) * torch.rsqrt(var + eps)
    return (w if shift_mean else w + mean) * m


@mutant("aggregate_loss", "aggregate_loss.ignored_numbers",
        "the loss mask multiplied into the per-token loss: NaN or inf at a padded token "
        "makes the loss NaN")
def aggregate_mask_multiplied(per_step_loss, mask, mode, *, normalizer=None):
    m = _count(mask, per_step_loss)
    sums = (per_step_loss * m).sum(-1)
    counts = m.sum(-1)
    rows = counts > 0
    if mode == "token-mean":
        return sums.sum() / counts.sum()
    if mode == "seq-mean-token-mean":
        return (sums / counts.clamp(min=1))[rows].mean()
    if mode == "seq-mean-token-sum":
        return sums[rows].mean()
    return sums[rows].mean() / normalizer


# --- singletons, one-pass variance, normalisation ------------------------------------------

@mutant("group_advantages", "group_advantages.float64",
        "the unbiased std of a group of one sample is NaN (÷(G − 1) = ÷0): GRPO advantages "
        "NaN instead of 0 for G = 1")
def group_singleton_nan(rewards, *, method, eps=1e-6, unbiased=True):
    if method != "grpo":
        return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)
    mean = rewards.mean(-1, keepdim=True)
    G = rewards.shape[-1]
    var = (rewards - mean).square().sum(-1, keepdim=True) / (G - 1 if unbiased else G)
    return (rewards - mean) / (var.sqrt() + eps)  # 0/0 = NaN for G = 1


@mutant("whiten", "whiten.float64",
        "the unbiased variance of one element is NaN (÷(n − 1) = ÷0): whitening a single "
        "unmasked value gives NaN")
def whiten_singleton_nan(x, mask=None, *, shift_mean=True, unbiased=True, eps=1e-8):
    keep = torch.ones_like(x, dtype=torch.bool) if mask is None else mask.bool()
    kept = x[keep]
    mean = kept.mean()
    n = kept.numel()
    var = (kept - mean).square().sum() / (n - 1 if unbiased else n)  # 0/0 = NaN for n = 1
    w = (x - mean) * torch.rsqrt(var + eps)
    out = w if shift_mean else w + mean
    return torch.where(keep, out, torch.zeros_like(out))


def _one_pass_var(x: torch.Tensor, keep: torch.Tensor, unbiased: bool, dim=None):
    n = keep.sum() if dim is None else keep.sum(dim, keepdim=True)
    n = n.to(x.dtype)
    xs = torch.where(keep, x, torch.zeros_like(x))
    s1 = xs.sum() if dim is None else xs.sum(dim, keepdim=True)
    s2 = xs.square().sum() if dim is None else xs.square().sum(dim, keepdim=True)
    var = (s2 - s1 * s1 / n).clamp(min=0)  # E[x²] − E[x]²: cancels catastrophically
    divisor = torch.where((n > 1) & torch.tensor(unbiased), n - 1, n)
    return s1 / n, var / divisor


@mutant("whiten", "whiten.float32",
        "one-pass variance E[x²] − E[x]²: all digits cancel for values with a large mean and "
        "a small spread", tier="precision")
def whiten_one_pass_variance(x, mask=None, *, shift_mean=True, unbiased=True, eps=1e-8):
    keep = torch.ones_like(x, dtype=torch.bool) if mask is None else mask.bool()
    mean, var = _one_pass_var(x, keep, unbiased)
    if unbiased and int(keep.sum()) == 1:
        var = var * 0
    w = (x - mean) * torch.rsqrt(var + eps)
    out = w if shift_mean else w + mean
    return torch.where(keep, out, torch.zeros_like(out))


@mutant("group_advantages", "group_advantages.float32",
        "GRPO's std by the one-pass variance E[r²] − E[r]²: wrong for rewards with a large "
        "mean and a small spread", tier="precision")
def group_one_pass_variance(rewards, *, method, eps=1e-6, unbiased=True):
    if method != "grpo":
        return rt.group_advantages(rewards, method=method, eps=eps, unbiased=unbiased)
    keep = torch.ones_like(rewards, dtype=torch.bool)
    mean, var = _one_pass_var(rewards, keep, unbiased, dim=-1)
    return (rewards - mean) / (var.sqrt() + eps)


@mutant("aggregate_loss", "aggregate_loss.float64",
        "seq-mean-token-sum-norm without the mean over sequences: Σ over ALL sequences of the "
        "token sums ÷ normalizer (the loss grows with the batch size)")
def sum_norm_without_sequence_mean(per_step_loss, mask, mode, *, normalizer=None):
    if mode != "seq-mean-token-sum-norm":
        return rt.aggregate_loss(per_step_loss, mask, mode, normalizer=normalizer)
    kept = torch.where(mask.bool(), per_step_loss, torch.zeros_like(per_step_loss))
    return kept.sum() / normalizer


# --- slips of the built-in layouts, written as the real code is -----------------------------

@mutant("gae", "gae.exact_small", "CleanRL-style done off by one: nextnonterminal = 1 − "
        "dones[t] instead of 1 − dones[t + 1] (dones[t] belongs to observation t: it says the "
        "PREVIOUS step ended)", layout="cleanrl")
def cleanrl_done_off_by_one(rewards, values, dones, next_value, next_done, gamma, gae_lambda):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nonterminal, next_v = 1.0 - next_done, next_value
        else:
            nonterminal, next_v = 1.0 - dones[t], values[t + 1]
        delta = rewards[t] + gamma * next_v * nonterminal - values[t]
        advantages[t] = last = delta + gamma * gae_lambda * nonterminal * last
    return advantages


@mutant("gae", "gae.exact_small", "CleanRL-style carry not reset at a done: the recursion "
        "multiplies the bootstrap by 1 − done but carries lastgaelam across the episode "
        "boundary", layout="cleanrl")
def cleanrl_carry_not_reset(rewards, values, dones, next_value, next_done, gamma, gae_lambda):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nonterminal, next_v = 1.0 - next_done, next_value
        else:
            nonterminal, next_v = 1.0 - dones[t + 1], values[t + 1]
        delta = rewards[t] + gamma * next_v * nonterminal - values[t]
        advantages[t] = last = delta + gamma * gae_lambda * last
    return advantages


@mutant("gae", "gae.exact_small", "SB3-style episode_starts not shifted: 1 − "
        "episode_starts[step] where SB3 reads episode_starts[step + 1]", layout="sb3")
def sb3_episode_starts_not_shifted(rewards, values, episode_starts, last_values, dones, gamma,
                                   gae_lambda):
    T = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    last = 0.0
    for step in reversed(range(T)):
        if step == T - 1:
            nonterminal, next_v = 1.0 - dones.astype(np.float64), last_values
        else:
            nonterminal, next_v = 1.0 - episode_starts[step], values[step + 1]
        delta = rewards[step] + gamma * next_v * nonterminal - values[step]
        last = delta + gamma * gae_lambda * nonterminal * last
        advantages[step] = last
    return advantages


@mutant("gae", "gae.exact_small", "verl-style padding inside the recursion: padded tokens are "
        "zeroed (r·mask, V·mask) but the recursion runs through them", layout="verl")
def verl_padding_in_recursion(token_level_rewards, values, response_mask, gamma, lam):
    r, v = token_level_rewards * response_mask, values * response_mask
    next_v = torch.zeros_like(r[:, 0])
    last = torch.zeros_like(r[:, 0])
    out = []
    for t in reversed(range(r.shape[-1])):
        last = r[:, t] + gamma * next_v - v[:, t] + gamma * lam * last
        next_v = v[:, t]
        out.append(last)
    adv = torch.stack(out[::-1], dim=1)
    n = response_mask.sum()  # verl then whitens over every response token (masked_whiten)
    mean = (adv * response_mask).sum() / n
    var = (((adv - mean) ** 2) * response_mask).sum() / (n - 1)
    return (adv - mean) * torch.rsqrt(var + 1e-8)


@mutant("lambda_returns", "lambda_returns.exact_small", "TorchRL-style TD(λ) return not "
        "restarted at a done: G_{t+1} carried across the episode boundary instead of "
        "restarting from the bootstrap V'_t", layout="torchrl")
def torchrl_td_lambda_not_restarted(gamma, lmbda, next_state_value, reward, done, terminated):
    not_terminated = (~terminated).to(reward.dtype)
    returns = torch.empty_like(reward)
    g = next_state_value[..., -1, :]
    for t in reversed(range(reward.shape[-2])):
        v = next_state_value[..., t, :]
        g = reward[..., t, :] + gamma * not_terminated[..., t, :] * ((1 - lmbda) * v + lmbda * g)
        returns[..., t, :] = g
    return returns


from . import mutants_lm  # noqa: E402,F401 - the second half of the catalogue (SPEC §4's
# token-level policy loss, §6, §7): imported here, so CATALOGUE is whole on import
