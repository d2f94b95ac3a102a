"""Checks for SPEC §5: the expected return of a tabular MDP and its autograd gradient, the
actor-critic losses (the actor sends no gradient into the critic), the Fisher matrix, conjugate
gradient, the natural-gradient step and the backtracking line search."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import sympy
import torch
from hypothesis import given
from hypothesis import strategies as st

from .. import policy_gradient as pg
from .. import trust_region as tr
from .core import LIKELY, CheckFailure, CheckList, Context
from ._common import exceeds, worst_of

U64 = 2.0**-53

__all__ = ["CHECKS"]

CHECKS = CheckList()




@st.composite
def distributions(draw, K: int, positive: bool = True) -> list[Fraction]:
    w = draw(st.lists(st.integers(1 if positive else 0, 8), min_size=K, max_size=K))
    if sum(w) == 0:
        w[0] = 1
    return [Fraction(x, sum(w)) for x in w]


@st.composite
def mdps(draw, max_S: int = 2, max_A: int = 3, max_H: int = 3):
    """Small random finite-horizon MDPs with rational tables, and a positive policy."""
    S, A = draw(st.integers(1, max_S)), draw(st.integers(2, max_A))
    H = draw(st.integers(1, max_H))
    P = [[draw(distributions(S, positive=False)) for _ in range(A)] for _ in range(S)]
    R = [[Fraction(draw(st.integers(-4, 4)), draw(st.sampled_from([1, 2]))) for _ in range(A)]
         for _ in range(S)]
    rho = draw(distributions(S, positive=False))
    gamma = draw(st.sampled_from([Fraction(1), Fraction(1, 2), Fraction(9, 10)]))
    pi = np.array([draw(distributions(A)) for _ in range(S)], dtype=object)
    return pg.TabularMDP(P=P, R=R, rho=rho, H=H, gamma=gamma), pi


def _failure(kind: str, message: str, got, exact, tol, call, ctx: Context,
             where: str | None = None) -> CheckFailure:
    """A value failure of these checks, said like the array checks': a ``where`` line (which
    entries differ, and how: a constant factor, an offset, the sign) and the known mistakes of
    the kind rerun on the same input (``call(fn)``), named where they reproduce it."""
    from .mutants import diagnose
    from .where import pattern

    got, exact = (np.asarray(x, dtype=np.float64) for x in (got, exact))
    bound = np.broadcast_to(np.asarray(tol, dtype=np.float64), exact.shape)
    off = np.abs(got - exact) > bound
    if where is None:
        where = pattern(got, exact, off) if off.any() else ""
    return CheckFailure(message + (f"\n  where          {where}" if where else "") + LIKELY,
                        pattern=where, diagnosis=lambda: diagnose(kind, call, got, bound, ctx,
                                                                  exact=exact))


def _scale(mdp) -> float:
    return float(sum(abs(x) for row in mdp.R for x in row)) * mdp.H + 1


@CHECKS.register("expected_return", "value_and_autograd",
          "J and autograd ∇_θ J (π = softmax(θ), float64) equal the exact enumeration")
def _expected_return(fn, ctx: Context) -> None:
    @ctx.settings(25)
    @given(case=mdps())
    def prop(case):
        mdp, pi = case
        theta = torch.tensor([[math.log(x) for x in row] for row in pi],
                             dtype=torch.float64, requires_grad=True)
        J = fn(mdp, torch.softmax(theta, -1))
        J.backward()
        exact_J = float(pg.expected_return(mdp, pi))
        exact_g = np.vectorize(float)(pg.return_gradient(mdp, pi)).astype(np.float64)
        # sums of ≤ (S·A)^H·H products of ≤ 3H rational factors: error ≤ ~(S·A)^H·H·u·scale
        tol = 64 * (np.prod(pi.shape) ** mdp.H) * mdp.H * U64 * _scale(mdp)
        err = worst_of(abs(float(J.detach()) - exact_J), np.abs(theta.grad.numpy() - exact_g))
        ctx.tracker.saw(err / tol)
        if exceeds(err, tol):
            raise _failure("expected_return", f"expected_return: J = {float(J.detach())} "
                           f"(exact {exact_J}), ∇J = {theta.grad.numpy().tolist()} (exact "
                           f"{exact_g.tolist()})", float(J.detach()), exact_J, tol,
                           lambda f: f(mdp, torch.softmax(theta.detach(), -1)), ctx)

    prop()


@CHECKS.register("critic_loss", "value", "(V − G)² equals the oracle exactly on dyadic inputs")
def _critic_value(fn, ctx: Context) -> None:
    dyadic = st.integers(-64, 64).map(lambda k: Fraction(k, 8))

    @ctx.settings()
    @given(pairs=st.lists(st.tuples(dyadic, dyadic), min_size=1, max_size=8))
    def prop(pairs):
        V, G = (np.array(x, dtype=object) for x in zip(*pairs))
        got = fn(torch.tensor([float(x) for x in V], dtype=torch.float64),
                 torch.tensor([float(x) for x in G], dtype=torch.float64))
        exact = [float(x) for x in pg.critic_loss(V, G)]  # dyadic squares: exact in float64
        ctx.tracker.saw()
        if got.tolist() != exact:
            inputs = [torch.tensor([float(x) for x in a], dtype=torch.float64) for a in (V, G)]
            raise _failure("critic_loss", f"critic_loss({V.tolist()}, {G.tolist()}) = "
                           f"{got.tolist()}, exact {exact}", got.detach(), exact, 0.0,
                           lambda f: f(*inputs), ctx)

    prop()


@CHECKS.register("actor_loss", "no_critic_gradient",
          "−log π·A with A = G − V(s) from a critic: the actor loss sends zero gradient into "
          "the critic, and its value and gradient in log π are the oracle's")
def _actor_detached(fn, ctx: Context) -> None:
    @ctx.settings(20)
    @given(n=st.integers(1, 6), seed=st.integers(0, 2**16))
    def prop(n, seed):
        gen = torch.Generator().manual_seed(seed)
        critic = torch.nn.Linear(3, 1, dtype=torch.float64)
        states = torch.randn(n, 3, generator=gen, dtype=torch.float64)
        logits = torch.randn(n, 4, generator=gen, dtype=torch.float64, requires_grad=True)
        actions = torch.randint(0, 4, (n,), generator=gen)
        returns = torch.randn(n, generator=gen, dtype=torch.float64)
        logp = torch.log_softmax(logits, -1).gather(-1, actions[:, None])[:, 0]
        advantages = returns - critic(states)[:, 0]
        loss = fn(logp, advantages)
        exact = pg.actor_loss(logp.detach().numpy().astype(object),
                              advantages.detach().numpy().astype(object))
        loss.sum().backward()
        ctx.tracker.saw()
        leak = _critic_gradient(critic)
        if bool((leak != 0).any()):
            def rerun(f):  # the critic's gradient through f, on the same numbers
                critic.zero_grad()
                adv = returns - critic(states)[:, 0]
                f(logp.detach(), adv).sum().backward()
                return _critic_gradient(critic)

            raise _failure("actor_loss", "actor_loss sends gradient into the critic (the "
                           f"advantage is not detached): critic grad {leak.tolist()}", leak,
                           np.zeros(leak.shape), 0.0, rerun, ctx,
                           where=f"in the gradient reaching the critic's parameters "
                                 f"({int((leak != 0).sum())} of {leak.numel()} nonzero; "
                                 "exact: 0 everywhere)")
        if not np.allclose(loss.detach().numpy(), exact.astype(np.float64), rtol=0,
                           atol=4 * U64 * float(np.max(np.abs(exact.astype(np.float64))) + 1)):
            raise CheckFailure(f"actor_loss = {loss.tolist()}, exact {exact.tolist()}")

    prop()


def _critic_gradient(critic: torch.nn.Module) -> torch.Tensor:
    """Every parameter's gradient, flattened into one vector (0 where none)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in critic.parameters()]).detach()


@CHECKS.register("fisher_matrix", "exact_and_kl_hessian",
          "diag(p) − ppᵀ equals the exact Fisher matrix and autograd's Hessian of "
          "KL(π_old‖softmax(θ)) at θ_old, batched")
def _fisher(fn, ctx: Context) -> None:
    @ctx.settings(20)
    @given(rows=st.integers(1, 3).flatmap(
        lambda K: st.lists(distributions(K), min_size=1, max_size=3)))
    def prop(rows):
        p = torch.tensor([[float(x) for x in r] for r in rows], dtype=torch.float64)
        F = fn(p)
        for i, r in enumerate(rows):
            exact = np.array(tr.fisher_matrix(r).tolist(), dtype=object).astype(np.float64)
            old = p[i]

            def kl(theta, old=old):
                return (old * (old.log() - torch.log_softmax(theta, -1))).sum()

            H = torch.autograd.functional.hessian(kl, old.log())
            err = worst_of(np.abs(F[i].numpy() - exact), (H - F[i]).abs().numpy())
            ctx.tracker.saw(err / 1e-12)
            if exceeds(err, 1e-12):  # entries ≤ 1, a few roundings each
                raise _failure("fisher_matrix", f"fisher_matrix({r}) = {F[i].tolist()}, exact "
                               f"{exact.tolist()}, Hessian of the KL {H.tolist()}",
                               F.detach(), np.stack([np.array(tr.fisher_matrix(q).tolist(),
                                                              dtype=object).astype(np.float64)
                                                     for q in rows]), 1e-12,
                               lambda f: f(p), ctx)

    prop()


@st.composite
def spd_systems(draw, max_n: int = 6):
    """A = LLᵀ + I with small integer L (exact), and a right-hand side g."""
    n = draw(st.integers(1, max_n))
    L = np.array(draw(st.lists(st.integers(-3, 3), min_size=n * n, max_size=n * n)),
                 dtype=object).reshape(n, n)
    A = L.dot(L.T) + np.eye(n, dtype=int).astype(object)
    g = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n).filter(any))
    return A, g


@CHECKS.register("conjugate_gradient", "solves",
          "n iterations on an n×n SPD system (float64) give the direct solve, within the "
          "condition-number bound; damping adds to the diagonal")
def _cg(fn, ctx: Context) -> None:
    @ctx.settings(25)
    @given(system=spd_systems(), damping=st.sampled_from([0, Fraction(1, 2)]))
    def prop(system, damping):
        A, g = system
        n = len(g)
        At = torch.tensor(A.astype(np.float64))
        x = fn(lambda v: At @ v, torch.tensor(g, dtype=torch.float64), n, float(damping))
        exact = sympy.Matrix(A.tolist()) + damping * sympy.eye(n)
        solution = np.array(exact.LUsolve(sympy.Matrix(g)).tolist(), dtype=object)[:, 0]
        cond = float(np.linalg.cond(At.numpy() + float(damping) * np.eye(n)))
        sol = solution.astype(np.float64)
        err = float(np.max(np.abs(x.numpy() - sol)))
        tol = 1e3 * n * cond * U64 * (float(np.max(np.abs(sol))) + 1)
        ctx.tracker.saw(err / tol)
        if exceeds(err, tol):
            raise _failure("conjugate_gradient", f"conjugate_gradient on A = {A.tolist()}, g = "
                           f"{g}, damping {damping}: {x.tolist()}, exact {sol.tolist()}",
                           x.detach(), sol, tol, lambda f: f(
                               lambda v: At @ v, torch.tensor(g, dtype=torch.float64), n,
                               float(damping)), ctx)

    prop()


@CHECKS.register("natural_gradient_step", "quadratic_model",
          "s = sqrt(2δ/gᵀF⁻¹g)·F⁻¹g: ½ sᵀF s = δ and s equals the exact step (float64)")
def _natural(fn, ctx: Context) -> None:
    @ctx.settings(25)
    @given(system=spd_systems(max_n=4), delta=st.sampled_from([Fraction(1, 100),
                                                                Fraction(1, 2)]))
    def prop(system, delta):
        A, g = system
        F = torch.tensor(A.astype(np.float64))
        s = fn(torch.tensor(g, dtype=torch.float64), F, float(delta))
        exact = np.array(tr.natural_gradient_step(g, A.tolist(), delta).tolist(),
                         dtype=object)[:, 0]
        exact = np.array([float(sympy.N(x, 30)) for x in exact])
        model = float(0.5 * s @ F @ s)
        cond = float(np.linalg.cond(F.numpy()))
        tol = 1e3 * cond * U64
        err = worst_of(abs(model - float(delta)) / float(delta),
                       np.abs(s.numpy() - exact) / (float(np.max(np.abs(exact))) + 1e-300))
        ctx.tracker.saw(err / tol)
        if exceeds(err, tol):
            scale = float(np.max(np.abs(exact))) + 1e-300
            raise _failure("natural_gradient_step", f"natural_gradient_step(g = {g}, F = "
                           f"{A.tolist()}, δ = {delta}) = {s.tolist()} (½sᵀFs = {model}), exact "
                           f"{exact.tolist()}", s.detach(), exact, tol * scale, lambda f: f(
                               torch.tensor(g, dtype=torch.float64), F, float(delta)), ctx)

    prop()


def _step(k: int | None) -> str:
    return "none (x unchanged)" if k is None else f"backtrack^{k}·full_step"


@CHECKS.register("backtracking_line_search", "accepts_only_feasible_improvements",
          "the full step violates KL ≤ δ: the search backtracks to the oracle's step; a step "
          "without improvement is never accepted")
def _line_search(fn, ctx: Context) -> None:
    @ctx.settings(25)
    @given(system=spd_systems(max_n=3), scale=st.sampled_from([1, 2, 3, 8]),
           sign=st.sampled_from([1, -1]))
    def prop(system, scale, sign):
        A, g = system
        delta = Fraction(1, 50)
        step = tr.natural_gradient_step(g, A.tolist(), delta)
        full = [sign * scale * x for x in step]  # exact: nsimplify would change the value
        Fm = sympy.Matrix(A.tolist())

        def objective_exact(x):
            return sum(a * b for a, b in zip(g, x))

        def kl_exact(x):
            v = sympy.Matrix(x)
            return (v.T * Fm * v)[0] / 2

        x0 = [0] * len(g)
        _, k_exact = tr.backtracking_line_search(objective_exact, kl_exact, x0, full,
                                                 max_kl=delta)
        Ft = torch.tensor(A.astype(np.float64))
        gt = torch.tensor(g, dtype=torch.float64)
        full_t = torch.tensor([float(sympy.N(x, 30)) for x in full], dtype=torch.float64)
        x_new, k = fn(lambda x: gt @ x, lambda x: 0.5 * x @ Ft @ x, torch.zeros_like(gt),
                      full_t, max_kl=float(delta))
        ctx.tracker.saw()
        # the accepted fraction 2^-k puts the KL at (scale·2^-k)²·δ: exactly δ at the
        # boundary k = log2(scale), where float rounding may decide either way
        on_boundary = k_exact is not None and scale == 2**k_exact
        if k != k_exact and not (on_boundary and k == k_exact + 1):
            def accepted(f):  # the k f accepts on the same problem (−1: none)
                _, k_f = f(lambda x: gt @ x, lambda x: 0.5 * x @ Ft @ x, torch.zeros_like(gt),
                           full_t, max_kl=float(delta))
                return torch.tensor(-1.0 if k_f is None else float(k_f))

            raise _failure("backtracking_line_search", f"backtracking_line_search accepted k = "
                           f"{k}, exact {k_exact} (full step = {scale}× the δ-step, sign "
                           f"{sign})", -1.0 if k is None else float(k),
                           -1.0 if k_exact is None else float(k_exact), 0.0, accepted, ctx,
                           where=f"the step accepted: yours {_step(k)}, exact {_step(k_exact)}"
                                 f" (the full step {'lowers' if sign < 0 else 'raises'} the "
                                 f"objective: gᵀ·full_step {'<' if sign < 0 else '>'} 0)")
        if k is None:
            if not torch.equal(x_new, torch.zeros_like(gt)):
                raise CheckFailure("no step was accepted but x changed")
            return
        if not (float(gt @ x_new) > 0 and float(0.5 * x_new @ Ft @ x_new) <= float(delta)
                * (1 + 1e-12)):
            raise CheckFailure(f"accepted a step with KL {float(0.5 * x_new @ Ft @ x_new)} or "
                               f"improvement {float(gt @ x_new)}")

    prop()
