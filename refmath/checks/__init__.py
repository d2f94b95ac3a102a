"""The check registry: every property refmath verifies, as data.

A :class:`Check` has a stable id (``gae.float32``, ``gae.jacobian``, ``identity.gae_summed``),
the kind of function it applies to (``gae``, ``discounted_returns``, … or ``identities`` for
checks of refmath's own oracles), a one-line summary, and a callable that takes the function
under test and a Hypothesis profile name and returns a :class:`CheckResult`.

The tests of the bundled Torch implementations, the ``refmath`` command and (later) the
checks of users' own functions all run this one registry; nothing is written twice.
Importing this package imports torch and hypothesis; ``import refmath`` does not.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field, fields
from typing import Any, Callable

__all__ = ["Check", "CheckResult", "CheckFailure", "REGISTRY", "register", "checks_for",
           "run_check", "run_checks", "kinds", "Capabilities", "CAPABILITIES", "TARGET"]


class CheckFailure(AssertionError):
    """Raised inside a check when the function under test violates the property."""


@dataclass(frozen=True)
class Capabilities:
    """What the function under test declares it supports (all True for refmath's own).

    A check that needs an undeclared capability is reported "not applicable (declared)";
    the random inputs of the other checks are drawn without the undeclared features
    (no truncation flags, no masks, one scalar gamma, consistent next_values, [B, T] only).
    """

    truncated: bool = True  # distinguishes truncation from termination
    mask: bool = True  # takes a mask (compression semantics)
    per_step_gamma: bool = True  # gamma may be a per-step array
    batch: bool = True  # any number of leading batch axes (else exactly [B, T])
    inconsistent_values: bool = True  # reads next_values (else only values[t + 1])
    gradients: bool = True  # differentiable with torch autograd
    validates_input: bool = True  # raises on bad input (SPEC §1)

    def missing(self, required: frozenset[str]) -> list[str]:
        return [r for r in sorted(required) if not getattr(self, r)]

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


CAPABILITIES: contextvars.ContextVar[Capabilities] = contextvars.ContextVar(
    "refmath_capabilities", default=Capabilities())
# How to call the function under test in a reproduction snippet: (import lines, callee).
TARGET: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "refmath_target", default=None)


@dataclass
class CheckResult:
    id: str
    status: str  # "passed", "failed", "not applicable"
    examples: int = 0
    worst_ratio: float = 0.0  # worst error / allowed bound seen (value checks), else 0
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status != "failed"


@dataclass
class Tracker:
    """What a check saw across its examples."""

    examples: int = 0
    worst_ratio: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def saw(self, ratio: float = 0.0) -> None:
        self.examples += 1
        self.worst_ratio = max(self.worst_ratio, float(ratio))


@dataclass(frozen=True)
class Check:
    id: str
    kind: str
    summary: str
    func: Callable[[Any, Tracker, str], None]
    requires: frozenset[str] = frozenset()

    def __call__(self, fn: Any = None, profile: str = "ci") -> CheckResult:
        return run_check(self, fn, profile)


REGISTRY: dict[str, list[Check]] = {}


def register(kind: str, name: str, summary: str, requires: tuple[str, ...] = ()):
    """Decorator: register ``func(fn, tracker, profile)`` as check ``{kind}.{name}``
    (or as ``name`` itself when it already has a dotted prefix, e.g. ``identity.gae_summed``).
    ``requires`` names the :class:`Capabilities` the check cannot run without."""

    def wrap(func):
        check_id = name if "." in name else f"{kind}.{name}"
        REGISTRY.setdefault(kind, []).append(
            Check(check_id, kind, summary, func, frozenset(requires)))
        return func

    return wrap


def profile_settings(profile: str, cap: int | None = None):
    """The Hypothesis settings of ``profile`` (registered by refmath), at most ``cap``
    examples when given."""
    from hypothesis import settings

    from ..strategies import register_profiles

    register_profiles()
    parent = settings.get_profile(profile)
    return settings(parent) if cap is None else settings(
        parent, max_examples=min(parent.max_examples, cap))


def _load() -> None:
    from . import steps, policy, trust, identities  # noqa: F401  (registration, in order)


def kinds() -> list[str]:
    _load()
    return list(REGISTRY)


def checks_for(kind: str) -> list[Check]:
    _load()
    if kind not in REGISTRY:
        raise KeyError(f"no checks for {kind!r}; known kinds: {', '.join(REGISTRY)}")
    return list(REGISTRY[kind])


def run_check(check: Check, fn: Any = None, profile: str = "ci") -> CheckResult:
    missing = CAPABILITIES.get().missing(check.requires)
    if missing:
        return CheckResult(check.id, "not applicable", 0, 0.0,
                           "declared: no " + ", no ".join(m.replace("_", " ") for m in missing))
    tracker = Tracker()
    try:
        check.func(fn, tracker, profile)
    except NotApplicable as na:
        return CheckResult(check.id, "not applicable", tracker.examples, 0.0, str(na))
    except Exception as err:  # noqa: BLE001 - any failure of the function under test
        notes = "\n".join(getattr(err, "__notes__", []))
        text = f"{type(err).__name__}: {err}" if not isinstance(err, CheckFailure) else str(err)
        return CheckResult(check.id, "failed", tracker.examples, tracker.worst_ratio,
                           (text + ("\n" + notes if notes else "")).strip())
    return CheckResult(check.id, "passed", tracker.examples, tracker.worst_ratio)


def run_checks(kind: str, fn: Any = None, profile: str = "ci") -> list[CheckResult]:
    return [run_check(c, fn, profile) for c in checks_for(kind)]


class NotApplicable(Exception):
    """Raised by a check that does not apply (declared capability missing)."""
