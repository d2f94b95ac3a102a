"""Checks for the off-policy returns of SPEC §6: V-trace, the general off-policy Q return,
the trace coefficients. They run through the same factories, comparison and failure anatomy
as SPEC §3–4 (:func:`refmath.checks.arrays.array_checks`); V-trace's two outputs are
compared as one array with ``(vs, pg_advantages)`` on a new last axis."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st

from .. import bounds as B
from .. import off_policy as op
from .arrays import array_checks, array_row, rows
from .cases import Case, T, _arrays, _grid, _mask, _numbers, bad
from .core import CheckList

__all__ = ["ROWS", "CHECKS"]

_CLIPS = st.sampled_from([Fraction(1), Fraction(1, 2), Fraction(2), None])


@st.composite
def _flags(draw, shape):
    term = _mask(draw, shape, "terminated") & (np.arange(shape[-1]) % 3 == 1)
    trunc = _mask(draw, shape, "truncated") & (np.arange(shape[-1]) % 4 == 2)
    flags = {"terminated": term, "truncated": trunc & ~term}
    if draw(st.booleans(), label="masked"):
        flags["mask"] = _mask(draw, shape)
    return flags


@st.composite
def _vtrace_cases(draw):
    use_rhos = draw(st.booleans(), label="rhos instead of log_rhos")
    ratio = "rhos" if use_rhos else "log_rhos"
    elements = {"rewards": _numbers(4), "values": _numbers(4), "next_values": _numbers(4),
                ratio: _grid(3, 8).map(abs) if use_rhos else _numbers(2)}
    a = draw(_arrays(("rewards", "values", "next_values", ratio), elements, min_ndim=1))
    shape = a["rewards"].shape
    unit = st.one_of(st.sampled_from([Fraction(0), Fraction(1)]), _grid(1, 64).map(abs))
    kwargs = {"gamma": draw(unit, label="gamma"), "lam": draw(unit, label="lam"),
              "rho_clip": draw(_CLIPS, label="rho_clip"),
              "c_clip": draw(st.sampled_from([Fraction(1), Fraction(1, 2), None]),
                             label="c_clip"),
              "pg_rho_clip": draw(_CLIPS, label="pg_rho_clip")}
    return Case(a, kwargs, draw(_flags(shape)))


@st.composite
def _q_cases(draw):
    elements = {"rewards": _numbers(4), "q_values": _numbers(4),
                "next_expected_q": _numbers(4), "traces": _grid(2, 16).map(abs)}
    a = draw(_arrays(("rewards", "q_values", "next_expected_q", "traces"), elements,
                     min_ndim=1))
    gamma = draw(st.one_of(st.sampled_from([Fraction(0), Fraction(1)]), _grid(1, 64).map(abs)),
                 label="gamma")
    return Case(a, {"gamma": gamma}, draw(_flags(a["rewards"].shape)))


@st.composite
def _trace_cases(draw):
    method = draw(st.sampled_from(op.TRACE_METHODS), label="method")
    name = "pi_probs" if method == "tree_backup" else draw(
        st.sampled_from(["log_rhos", "rhos"]), label="ratio")
    element = {"pi_probs": _grid(1, 64).map(abs), "rhos": _grid(4, 16).map(abs),
               "log_rhos": _numbers(3)}[name]
    a = draw(_arrays((name,), {name: element}))
    lam = draw(st.one_of(st.sampled_from([Fraction(0), Fraction(1)]), _grid(1, 64).map(abs)),
               label="lam")
    return Case(a, {"method": method, "lam": lam})


def _vec(*xs):
    return np.array([[Fraction(x) for x in xs]], dtype=object)


# ratios on both sides of every clip, a termination, a truncation and a hole: the pinned
# corner every value check tries first (a wrong clip or a wrong trace index shows here)
_VTRACE_PINNED = (
    Case({"rewards": _vec(1, 2, 4, -1), "values": _vec("1/8", "1/4", "3/8", "1/2"),
          "next_values": _vec("1/4", "3/8", "1/2", 1),
          "rhos": _vec("1/2", 3, "3/2", "1/4")},
         {"gamma": Fraction(3, 4), "lam": Fraction(1, 2), "rho_clip": Fraction(2),
          "c_clip": Fraction(1), "pg_rho_clip": Fraction(1)},
         {"terminated": np.array([[0, 0, 0, 0]], bool),
          "truncated": np.array([[0, 0, 0, 0]], bool)}),
    Case({"rewards": _vec(1, 2, 4, -1, 3), "values": _vec("1/8", "1/4", "3/8", "1/2", 0),
          "next_values": _vec("1/4", "3/8", "1/2", 1, 2),
          "rhos": _vec(2, "1/2", 3, "3/4", 2)},
         {"gamma": Fraction(1, 2), "lam": Fraction(3, 4), "rho_clip": Fraction(1),
          "c_clip": Fraction(1, 2), "pg_rho_clip": None},
         {"terminated": np.array([[0, 1, 0, 0, 0]], bool),
          "truncated": np.array([[0, 0, 0, 1, 0]], bool),
          "mask": np.array([[1, 1, 0, 1, 1]], bool)}),
)
_Q_PINNED = (
    Case({"rewards": _vec(1, 2, -1, 3), "q_values": _vec("1/2", "1/4", 2, 1),
          "next_expected_q": _vec(1, "3/4", "1/2", 2), "traces": _vec("1/4", "1/2", 1, "3/2")},
         {"gamma": Fraction(1, 2)},
         {"terminated": np.array([[0, 0, 0, 0]], bool),
          "truncated": np.array([[0, 0, 0, 0]], bool)}),
)

_ONES = T([[1.0, 1.0, 1.0]])
_NANS = T([[math.nan] * 3])

ROWS = rows(
    array_row("vtrace", op.vtrace, _vtrace_cases, B.bound_vtrace, differentiable=(0, 1, 2),
              pinned=_VTRACE_PINNED, bad_inputs=(
                  bad("log_rhos", _ONES, _ONES, _ONES, T([[1.0, 1.0]]), gamma=0.9),
                  bad("rhos", _ONES, _ONES, _ONES, gamma=0.9, rhos=T([[-1.0, -1.0, -1.0]])),
                  bad("rho_clip", _ONES, _ONES, _ONES, _ONES, gamma=0.9, rho_clip=0.0),
                  bad("c_clip", _ONES, _ONES, _ONES, _ONES, gamma=0.9, c_clip=-1.0),
                  bad("lam", _ONES, _ONES, _ONES, _ONES, gamma=0.9, lam=1.5),
                  bad("gamma", _ONES, _ONES, _ONES, _ONES, gamma=1.5),
                  bad("log_rhos", _ONES, _ONES, _ONES, _NANS, gamma=0.9))),
    array_row("off_policy_q_targets", op.off_policy_q_targets, _q_cases, B.bound_q_targets,
              differentiable=(0, 1, 2, 3), pinned=_Q_PINNED, bad_inputs=(
                  bad("traces", _ONES, _ONES, _ONES, T([[1.0, 1.0]]), gamma=0.9),
                  bad("gamma", _ONES, _ONES, _ONES, _ONES, gamma=-0.1),
                  bad("q_values", _ONES, _NANS, _ONES, _ONES, gamma=0.9))),
    array_row("trace_coefficients", op.trace_coefficients, _trace_cases, B.bound_traces,
              differentiable=(), bad_inputs=(
                  bad("method", "vtrace", lam=0.5, log_rhos=_ONES),
                  bad("pi_probs", "tree_backup", lam=0.5),
                  bad("lam", "retrace", lam=2.0, log_rhos=_ONES),
                  bad("pi_probs", "tree_backup", lam=0.5, pi_probs=T([[2.0, 2.0, 2.0]])))),
)
CHECKS = CheckList(check for row in ROWS.values() for check in array_checks(row))
