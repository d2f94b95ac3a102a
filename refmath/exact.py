"""Exact comparison of the expressions the oracles produce (SymPy only)."""

from __future__ import annotations

from typing import Any

import sympy

__all__ = ["is_zero"]


def _prime_logs(arg: sympy.Rational) -> sympy.Expr:
    """log(n/d) = Σ e·log p over the prime factors (logs of primes are linearly independent
    over the rationals, so this is a canonical form for sums of logs of rationals)."""
    num = sum((e * sympy.log(q) for q, e in sympy.factorint(arg.p).items()), sympy.Integer(0))
    den = sum((e * sympy.log(q) for q, e in sympy.factorint(arg.q).items()), sympy.Integer(0))
    return num - den


def is_zero(expr: Any) -> bool:
    """Exact zero test for rationals, symbols, and polynomials in logarithms of positive
    rationals. Sound: True only when ``expr`` is 0 (False can also mean "not shown")."""
    expr = sympy.sympify(expr)
    if sympy.expand(expr) == 0:
        return True
    expr = sympy.expand_log(expr, force=True)
    expr = expr.replace(lambda e: isinstance(e, sympy.log) and e.args[0].is_Rational
                        and e.args[0] > 0, lambda e: _prime_logs(e.args[0]))
    return sympy.expand(expr) == 0
