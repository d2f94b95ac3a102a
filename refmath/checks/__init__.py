"""The check registry: every property refmath verifies, as data, run by one pipeline.

A :class:`Check` has a stable id (``gae.float32``, ``gae.jacobian``, ``identity.gae_summed``),
the kind of function it applies to (``gae``, ``discounted_returns``, … or ``identities`` for
checks of refmath's own oracles), a one-line summary, a tier, and a function ``func(fn, ctx)``
that raises :class:`CheckFailure` when ``fn`` violates the property. :func:`run_check` turns
that into a :class:`CheckResult` (fields, JSON-serialisable). The machinery is in
:mod:`refmath.checks.core`; everything a check needs travels in one explicit
:class:`Context` (no global state, no global Hypothesis profile: see
:mod:`refmath.profiles`).

The registry is built here, by one explicit call per family (:func:`checks_for`): each family
module (``steps``, ``policy``, ``trust``, ``identities``, ``lm``, ``off_policy``) only fills its
own ``CHECKS`` list from :mod:`refmath.checks.core`, and never imports this package's
registry back. Only the family of the requested kind is built (``checks_for("gae")`` never
builds the §3–4 checks). :func:`get` finds a check (and so its function) by id.

The tests of the bundled Torch implementations, the ``refmath`` command, ``refmath check``,
the pytest plugin and ``refmath peers`` all run this one registry.
"""

from __future__ import annotations

from typing import Any

from .core import (TIERS, Capabilities, Check, CheckFailure, CheckList, CheckResult, Context,
                   NotApplicable, Target, Tracker, UsageError, _as_context, run_check, suggest)

__all__ = ["Check", "CheckList", "CheckResult", "CheckFailure", "Context", "Capabilities",
           "Target", "Tracker", "NotApplicable", "UsageError", "TIERS", "checks_for", "get",
           "run_check", "run_checks", "kinds", "family_of", "suggest", "IDENTITIES",
           "array_row"]

IDENTITIES = "identities"

# kind → its checks, filled one family at a time by _build (never by an import)
REGISTRY: dict[str, list[Check]] = {}
_BUILT: set[str] = set()


def _family_module(family: str):
    """The family module itself (imported here and nowhere else)."""
    if family == "steps":
        from . import steps as module
    elif family == "policy":
        from . import policy as module
    elif family == "lm":
        from . import lm as module
    elif family == "off_policy":
        from . import off_policy as module
    elif family == "trust":
        from . import trust as module
    elif family == IDENTITIES:
        from . import identities as module
    else:
        raise UsageError(f"unknown check family {family!r}")
    return module


def array_row(kind: str) -> Any:
    """The row (:class:`refmath.checks.arrays.ArrayFunction`) of an array function, or None
    for a kind whose checks draw their own inputs (SPEC §2, §5, the identities)."""
    return getattr(_family_module(family_of(kind)), "ROWS", {}).get(kind)


def _build(family: str) -> None:
    if family in _BUILT:
        return
    for check in _family_module(family).CHECKS:
        REGISTRY.setdefault(check.kind, []).append(check)
    _BUILT.add(family)


def family_of(kind: str) -> str:
    """The check module of ``kind`` (``steps``, ``policy``, ``trust``, ``identities``, …)."""
    from .specs import SPECS

    if kind == IDENTITIES:
        return IDENTITIES
    if kind not in SPECS:
        raise UsageError(f"unknown kind {kind!r}{suggest(kind, kinds())}; known: "
                         f"{', '.join(kinds())}")
    return SPECS[kind].family


def kinds() -> list[str]:
    """Every kind with checks: the functions of SPEC (in SPEC's order), then identities."""
    from .specs import SPECS

    return list(SPECS) + [IDENTITIES]


def checks_for(kind: str) -> list[Check]:
    """The checks of ``kind``; a kind with a spec row and no check is a usage error, never an
    empty list (a run of nothing would print PASS)."""
    _build(family_of(kind))
    found = list(REGISTRY.get(kind, ()))
    if not found:
        raise UsageError(f"{kind} has no check to run: refmath cannot verify it (a spec row "
                         "without checks is a gap in refmath; please report it)")
    return found


def get(check_id: str) -> Check:
    """The check with id ``check_id`` (``gae.float32``, ``identity.gae_summed``): its
    ``func`` is the code a maintainer opens. An id that names no check is a usage error."""
    kind = check_id.split(".", 1)[0]
    candidates = (checks_for(kind) if kind in kinds() else checks_for(IDENTITIES))
    for check in candidates:
        if check.id == check_id:
            return check
    ids = [c.id for c in candidates]
    raise UsageError(f"no check {check_id!r}{suggest(check_id, ids)}")


def run_checks(kind: str, fn: Any = None, ctx: "Context | str | None" = None
               ) -> list[CheckResult]:
    ctx = _as_context(ctx)
    return [run_check(c, fn, ctx) for c in checks_for(kind)]
