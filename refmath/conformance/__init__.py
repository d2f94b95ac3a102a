"""Validate anyone's implementation against refmath's check registry.

One core, three runners: :func:`check` (this module, no pytest needed), the CLI
``refmath check KIND module:function``, and the pytest plugin
(``pytest --pyargs refmath.suite --refmath-impl gae=mypkg.adv:gae``). All three run the same
registry (``refmath.checks``), with the same exact oracles and derived error bounds.

Conventions are declared, never guessed (:class:`Convention`): a function that puts time
first, takes one ``done`` flag, takes ``values`` of length T+1, has a trailing singleton axis,
or works on NumPy arrays is wrapped by :func:`adapt` into SPEC's layout. What a convention
cannot express (truncation with a single ``done`` flag, a mask, gradients through NumPy) is
declared unsupported, and the checks that need it are reported "not applicable (declared)".
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

import numpy as np

from ..checks import CAPABILITIES, TARGET, Capabilities, CheckResult, checks_for, run_check

__all__ = ["Convention", "Report", "adapt", "check", "load", "parse_convention",
           "parametrize_with_checks"]

STEP_ARGS = {
    "td_errors": ("rewards", "values", "next_values"),
    "discounted_returns": ("rewards",),
    "n_step_returns": ("rewards", "next_values"),
    "gae": ("rewards", "values", "next_values"),
    "lambda_returns": ("rewards", "values", "next_values"),
}


@dataclass(frozen=True)
class Convention:
    """How the function under test differs from SPEC's layout (all False: SPEC itself).

    * ``time_major``: per-step arrays are ``[T, B]`` (time first) instead of ``[B, T]``;
    * ``done``: one ``done=`` flag (a terminal: nothing bootstrapped) instead of
      ``terminated``/``truncated`` — truncation cannot be expressed;
    * ``values_with_bootstrap``: ``values`` has length T+1 (the last entry bootstraps the last
      step) and there is no ``next_values`` — only consistent trajectories, no truncation;
    * ``trailing_singleton``: arrays are ``[..., T, 1]``;
    * ``numpy``: NumPy arrays in and out (no autograd).

    ``unsupported`` names further :class:`refmath.checks.Capabilities` the function lacks
    (e.g. ``("mask", "validates_input")``).
    """

    time_major: bool = False
    done: bool = False
    values_with_bootstrap: bool = False
    trailing_singleton: bool = False
    numpy: bool = False
    unsupported: tuple[str, ...] = ()

    def capabilities(self) -> Capabilities:
        off = set(self.unsupported)
        if self.done or self.values_with_bootstrap:
            off.add("truncated")
        if self.values_with_bootstrap:
            off |= {"inconsistent_values", "mask"}
        if self.time_major:  # exactly [T, B]; a per-step gamma would need its own layout
            off |= {"batch", "per_step_gamma"}
        if self.numpy:
            off.add("gradients")
        unknown = off - set(Capabilities.names())
        if unknown:
            raise ValueError(f"unknown capabilities {sorted(unknown)}; known: "
                             f"{Capabilities.names()}")
        return replace(Capabilities(), **{name: False for name in off})

    def is_spec(self) -> bool:
        return self == Convention()

    def __str__(self) -> str:
        flags = [f.name for f in fields(self) if f.type == "bool" and getattr(self, f.name)]
        flags += [f"no_{u}" for u in self.unsupported]
        return ",".join(flags) or "spec"


def parse_convention(text: str | None) -> Convention:
    """``"time_major,done,no_mask"`` → Convention (``no_X`` declares capability X missing)."""
    if not text or text == "spec":
        return Convention()
    flags, unsupported = {}, []
    names = {f.name for f in fields(Convention)} - {"unsupported"}
    for word in (w.strip() for w in text.split(",") if w.strip()):
        if word.startswith("no_"):
            unsupported.append(word[3:])
        elif word in names:
            flags[word] = True
        else:
            raise ValueError(f"unknown convention flag {word!r}; known: {sorted(names)} and "
                             f"no_<capability> for {Capabilities.names()}")
    return Convention(**flags, unsupported=tuple(unsupported))


def load(target: str) -> Callable:
    """``"package.module:function"`` → the function."""
    if ":" not in target:
        raise ValueError(f"expected module:function, got {target!r}")
    module, _, name = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj


def adapt(fn: Callable, kind: str, convention: Convention) -> Callable:
    """Wrap ``fn`` (written in ``convention``) into SPEC's signature for ``kind``."""
    if convention.is_spec():
        return fn
    import torch

    steps = STEP_ARGS.get(kind)
    if steps is None and (convention.time_major or convention.done
                          or convention.values_with_bootstrap):
        raise ValueError(f"the layout flags apply to the per-step functions "
                         f"{sorted(STEP_ARGS)}, not to {kind!r}")

    def to_user(x: Any) -> Any:
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            return x
        if convention.time_major:
            x = x.movedim(-1, 0)
        if convention.trailing_singleton:
            x = x.unsqueeze(-1)
        return x.detach().cpu().numpy() if convention.numpy else x

    def from_user(y: Any, like: Any) -> Any:
        if convention.numpy:
            y = torch.as_tensor(np.asarray(y))
            if isinstance(like, torch.Tensor):
                y = y.to(like.device)
        if convention.trailing_singleton and y.dim() > 0 and y.shape[-1] == 1:
            y = y.squeeze(-1)
        if convention.time_major and y.dim() > 1:
            y = y.movedim(0, -1)
        return y

    if convention.values_with_bootstrap and (steps is None or "values" not in steps):
        raise ValueError(f"values_with_bootstrap needs a function of values, not {kind!r}")

    def wrapper(*args: Any, **kw: Any) -> Any:
        if steps is None:
            out = fn(*(to_user(a) for a in args), **{k: to_user(v) for k, v in kw.items()})
            return from_user(out, args[0] if args else None)
        named = dict(zip(steps, args))
        if convention.values_with_bootstrap:  # values of length T + 1, no next_values
            named["values"] = torch.cat([named["values"],
                                         named.pop("next_values")[..., -1:]], -1)
        if convention.done:  # one terminal flag; truncation is declared unsupported
            kw.pop("truncated", None)
            done = kw.pop("terminated", None)
            if done is not None:
                kw["done"] = done
        positional = [to_user(named[a]) for a in steps if a in named]
        out = fn(*positional, **{k: to_user(v) for k, v in kw.items()})
        return from_user(out, args[0])

    wrapper.__name__ = getattr(fn, "__name__", "adapted")
    return wrapper


@dataclass
class Report:
    """The outcome of :func:`check`: ``passed``, per-check ``results``, ``str()`` a table."""

    kind: str
    target: str
    convention: Convention
    profile: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def counts(self) -> tuple[int, int, int]:
        na = sum(r.status == "not applicable" for r in self.results)
        failed = sum(r.status == "failed" for r in self.results)
        return len(self.results) - na, failed, na

    def verdict_line(self) -> str:
        run, failed, na = self.counts()
        return (f"refmath check {self.kind} {self.target}: {'PASS' if self.passed else 'FAIL'}"
                f" — {run} checks run, {failed} failed, {na} not applicable (declared) "
                f"[convention {self.convention}; profile {self.profile}; {_versions()}]")

    def __str__(self) -> str:
        rows = [("check", "status", "examples", "worst err/bound", "note")]
        for r in self.results:
            note = r.message.splitlines()[0][:60] if r.status != "passed" and r.message else ""
            rows.append((r.id, r.status, str(r.examples), f"{r.worst_ratio:.2g}", note))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for r in self.results:
            if r.status == "failed":
                lines += ["", f"refmath check {r.id} FAILED for {self.target}   "
                          f"[profile {self.profile}]", _indent(r.message)]
        lines += ["", self.verdict_line()]
        return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _versions() -> str:
    from .. import __version__

    torch = sys.modules.get("torch")
    return f"refmath {__version__}" + (f", torch {torch.__version__}" if torch else "")


def _target_lines(target: str, kind: str, convention: Convention) -> tuple[str, str]:
    module, _, name = target.partition(":")
    imports = f"from {module} import {name.split('.')[0]}"
    callee = name
    if not convention.is_spec():
        imports += (f"\nfrom refmath.conformance import adapt, parse_convention\n"
                    f"fn = adapt({name}, {kind!r}, parse_convention({str(convention)!r}))")
        callee = "fn"
    return imports, callee


def check(kind: str, fn: Callable | str, *, convention: Convention | str | None = None,
          profile: str = "ci") -> Report:
    """Run every check of ``kind`` on ``fn`` (a callable or ``"module:function"``)."""
    from ..strategies import register_profiles

    register_profiles()
    if isinstance(convention, str) or convention is None:
        convention = parse_convention(convention)
    target = fn if isinstance(fn, str) else f"{getattr(fn, '__module__', '?')}:" \
                                            f"{getattr(fn, '__qualname__', repr(fn))}"
    function = load(fn) if isinstance(fn, str) else fn
    adapted = adapt(function, kind, convention)
    report = Report(kind, target, convention, profile)
    caps_token = CAPABILITIES.set(convention.capabilities())
    target_token = TARGET.set(_target_lines(target, kind, convention))
    try:
        for c in checks_for(kind):
            report.results.append(run_check(c, adapted, profile))
    finally:
        CAPABILITIES.reset(caps_token)
        TARGET.reset(target_token)
    return report


def run_one(kind: str, check_id: str, fn: Callable | str, convention: Convention,
            profile: str = "ci") -> tuple[CheckResult, str]:
    """One check (for the pytest plugin): the result and the target's description."""
    from ..strategies import register_profiles

    register_profiles()
    target = fn if isinstance(fn, str) else getattr(fn, "__qualname__", repr(fn))
    function = load(fn) if isinstance(fn, str) else fn
    (c,) = [c for c in checks_for(kind) if c.id == check_id]
    caps_token = CAPABILITIES.set(convention.capabilities())
    target_token = TARGET.set(_target_lines(target, kind, convention) if isinstance(fn, str)
                              else None)
    try:
        return run_check(c, adapt(function, kind, convention), profile), target
    finally:
        CAPABILITIES.reset(caps_token)
        TARGET.reset(target_token)


def parametrize_with_checks(kind: str, fn: Callable | str, *,
                            convention: Convention | str | None = None,
                            profile: str = "ci"):
    """A pytest decorator (like scikit-learn's ``parametrize_with_checks``): one test per
    check of ``kind``, each a zero-argument callable that raises with the check's message::

        @parametrize_with_checks("gae", my_gae, convention="no_mask")
        def test_my_gae(refmath_check):
            refmath_check()

    A check that is not applicable (declared) is skipped with its reason.
    """
    import pytest

    conv = parse_convention(convention) if not isinstance(convention, Convention) \
        else convention

    def make(check_id: str):
        def run() -> None:
            result, target = run_one(kind, check_id, fn, conv, profile)
            if result.status == "not applicable":
                pytest.skip(f"{check_id}: not applicable ({result.message})")
            if result.status != "passed":
                raise AssertionError(f"refmath check {check_id} FAILED for {target} "
                                     f"[profile {profile}]\n{result.message}")

        return run

    ids = [c.id for c in checks_for(kind)]
    return pytest.mark.parametrize("refmath_check", [make(i) for i in ids], ids=ids)
