"""Validate anyone's implementation against refmath's check registry.

One core, three runners: :func:`check` (this module, no pytest needed), the CLI
``refmath check KIND module:function``, and the pytest plugin
(``pytest --pyargs refmath.suite --refmath-impl gae=mypkg.adv:gae``). All three run the same
registry (``refmath.checks``), with the same exact oracles and derived error bounds.

How a function is written is declared, never guessed, in ONE object: its :class:`Binding`
(:mod:`.bindings`; a built-in layout, a convention, renames, option subsets, waivers, the
compute precision), given as an object, its text form or a ``pyproject.toml`` table. Every
runner builds it with :func:`binding_from` and resolves it here; :func:`bound` wraps the
function into SPEC's layout. What a binding cannot express (truncation with a single ``done``
flag, a mask, gradients through NumPy) is declared unsupported, and the checks that need it
are reported "not applicable (declared)".
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from ..checks import (Capabilities, CheckResult, Context, Target, UsageError, checks_for,
                      family_of, run_check, suggest)
from ..checks.specs import SPECS
from .bindings import Binding, Convention, binding_from, parse_binding, parse_convention

__all__ = ["Binding", "Convention", "Report", "adapt", "binding_from", "bound", "check", "load",
           "parametrize_with_checks", "parse_binding", "parse_convention", "resolve",
           "UsageError", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 60.0  # seconds one call of the function under test may take


def load(target: str) -> Callable:
    """``"package.module:function"`` → the function (a :class:`UsageError` when it cannot be
    found or is not callable)."""
    if ":" not in target:
        raise UsageError(f"expected module:function, got {target!r}")
    module, _, name = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if (err.name or "").partition(".")[0] == "torch":  # the module is there; torch is not
            raise  # (refmath's CLI names the command that installs it)
        raise UsageError(f"cannot import module {module!r} ({err}); run from the directory "
                         "that holds it, or install it") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise UsageError(f"{target}: {module!r} has no attribute {part!r}"
                             f"{suggest(part, names)}") from None
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{target} is not callable (it is a {type(obj).__name__})")
    return obj


def importable(path: str) -> None:
    """Make modules of directory ``path`` importable, after the installed packages (a
    ``torch.py`` there does not shadow torch)."""
    if path not in sys.path:
        sys.path.append(path)


def adapt(fn: Callable, kind: str, convention: Convention,
          renames: dict[str, str] | None = None) -> Callable:
    """Wrap ``fn`` (written in ``convention``, with its own names ``renames`` for SPEC's
    keyword parameters) into SPEC's signature for ``kind``. A tuple or list result is read
    element by element."""
    renames = dict(renames or {})
    if convention.is_spec() and not renames:
        return fn
    import torch

    from . import jax_bridge

    steps = SPECS[kind].positional_arrays if SPECS[kind].family == "steps" else None
    if steps is None and (convention.time_major or convention.done
                          or convention.values_with_bootstrap):
        raise UsageError(f"the layout flags apply to the per-step functions "
                         f"{sorted(k for k, s in SPECS.items() if s.family == 'steps')}, "
                         f"not to {kind!r}")

    def to_user(x: Any) -> Any:
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            return x
        if convention.time_major:
            x = x.movedim(-1, 0)
        if convention.trailing_singleton:
            x = x.unsqueeze(-1)
        if convention.jax:
            return jax_bridge.to_jax(x)
        return x.detach().cpu().numpy() if convention.numpy else x

    def from_user(y: Any, like: Any) -> Any:
        if isinstance(y, (tuple, list)):
            return type(y)(from_user(e, like) for e in y)
        if convention.jax:
            y = jax_bridge.from_jax(y, like)
        elif convention.numpy or not isinstance(y, torch.Tensor):
            y = torch.as_tensor(np.asarray(y))
            if isinstance(like, torch.Tensor):
                y = y.to(like.device)
        if convention.trailing_singleton and y.dim() > 0 and y.shape[-1] == 1:
            y = y.squeeze(-1)
        if convention.time_major and y.dim() > 1:
            y = y.movedim(0, -1)
        return y

    if convention.values_with_bootstrap and (steps is None or "values" not in steps):
        raise UsageError(f"values_with_bootstrap needs a function of values, not {kind!r}")

    def named(kw: dict[str, Any]) -> dict[str, Any]:
        return {renames.get(k, k): to_user(v) for k, v in kw.items()}

    def wrapper(*args: Any, **kw: Any) -> Any:
        if steps is None:
            out = fn(*(to_user(a) for a in args), **named(kw))
            return from_user(out, args[0] if args else None)
        arrays = dict(zip(steps, args))
        if convention.values_with_bootstrap:  # values of length T + 1, no next_values
            arrays["values"] = torch.cat([arrays["values"],
                                          arrays.pop("next_values")[..., -1:]], -1)
        if convention.done:  # one terminal flag; truncation is declared unsupported
            kw.pop("truncated", None)
            done = kw.pop("terminated", None)
            if done is not None:
                kw["done"] = done
        positional = [to_user(arrays[a]) for a in steps if a in arrays]
        out = fn(*positional, **named(kw))
        return from_user(out, args[0])

    wrapper.__name__ = getattr(fn, "__name__", "adapted")
    return wrapper


SEVERITIES = ("correctness", "precision", "robustness", "hygiene", "validation")  # TIERS + precision


@dataclass
class Report:
    """The outcome of :func:`check`: ``passed``, per-check ``results``, ``str()`` a table,
    :meth:`to_dict` the same as data (``refmath check --json``)."""

    kind: str
    target: str
    binding: Binding
    profile: str
    results: list[CheckResult] = field(default_factory=list)
    seed: int | None = None
    strict: bool = False
    fail_on: tuple[str, ...] = SEVERITIES

    @property
    def convention(self) -> Convention:
        return self.binding.convention

    @property
    def layout(self) -> str | None:
        return self.binding.layout

    def failing(self) -> list[CheckResult]:
        """The results that fail the run: failed checks in a ``fail_on`` tier, and XPASS
        under ``strict``."""
        return [r for r in self.results
                if (r.status == "failed" and (r.severity or "correctness") in self.fail_on)
                or (r.status == "xpass" and self.strict)]

    @property
    def passed(self) -> bool:
        return not self.failing()

    def counts(self) -> tuple[int, int, int]:
        na = sum(r.status == "not applicable" for r in self.results)
        failed = sum(r.status == "failed" for r in self.results)
        return len(self.results) - na, failed, na

    def _settings_text(self) -> str:
        seed = f"; seed {self.seed}" if self.seed is not None else ""
        return f"binding {self.binding}; profile {self.profile}{seed}; {_versions()}"

    def verdict_line(self) -> str:
        run, failed, na = self.counts()
        by_tier = {t: sum(r.status == "failed" and r.severity == t for r in self.results)
                   for t in SEVERITIES}
        tiers = ", ".join(f"{n} {t}" for t, n in by_tier.items() if n)
        waived = [f"{sum(r.status == s for r in self.results)} {s.upper()}"
                  for s in ("xfail", "xpass") if any(r.status == s for r in self.results)]
        extra = (f" ({tiers})" if tiers else "") + (", " + ", ".join(waived) if waived else "")
        return (f"refmath check {self.kind} {self.target}: {'PASS' if self.passed else 'FAIL'}"
                f" — {run} checks run, {failed} failed{extra}, {na} not applicable (declared) "
                f"[{self._settings_text()}]")

    def to_dict(self) -> dict[str, Any]:
        run, failed, na = self.counts()
        return {"kind": self.kind, "target": self.target, "binding": self.binding.text(),
                "convention": str(self.convention), "layout": self.layout, "profile": self.profile, "seed": self.seed,
                "passed": self.passed, "strict": self.strict, "fail_on": list(self.fail_on),
                "checks_run": run, "failed": failed, "not_applicable": na,
                "versions": _versions(), "results": [r.to_dict() for r in self.results]}

    def __str__(self) -> str:
        rows = [("check", "status", "examples", "worst err/bound", "seconds", "note")]
        for r in self.results:
            note = r.message.splitlines()[0][:60] if r.status != "passed" and r.message else ""
            if r.status in ("xfail", "xpass"):
                note = f"waived: {r.waiver}"[:60]
            rows.append((r.id, r.status, str(r.examples), f"{r.worst_ratio:.2g}",
                         f"{r.seconds:.1f}", note))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for r in self.results:
            if r.status == "failed":
                lines += ["", f"refmath check {r.id} FAILED ({r.severity}) for {self.target}"
                          f"   [profile {self.profile}]", _indent(failure_text(r))]
            elif r.status in ("xfail", "xpass"):
                lines += ["", f"refmath check {r.id} {r.status.upper()} (expected to fail: "
                          f"{r.waiver})"]
        lines += ["", self.verdict_line()]
        return "\n".join(lines)


def failure_text(r: CheckResult) -> str:
    """A failed check as a person reads it: the message, then what the function printed."""
    text = r.message
    if r.output:
        shown = r.output if len(r.output) <= 1200 else "..." + r.output[-1200:]
        text += "\n  your function printed (last part):\n" + "\n".join(
            "      " + line for line in shown.splitlines())
    return text


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _versions() -> str:
    from .. import __version__

    torch = sys.modules.get("torch")
    return f"refmath {__version__}" + (f", torch {torch.__version__}" if torch else "")


def _describe(fn: Callable | str) -> tuple[str, Target]:
    """``module:qualname`` of the function and how a reproduction imports and calls it."""
    if isinstance(fn, str):
        module, _, name = fn.partition(":")
        return fn, Target(f"from {module} import {name.split('.')[0]}", name)
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    text = f"{module}:{qualname}"
    if "<" in qualname or module in ("?", "__main__"):
        name = getattr(fn, "__name__", "fn")
        return text, Target(f"# {name}: your function ({text}); define or import it here", name)
    return text, Target(f"from {module} import {qualname.split('.')[0]}", qualname)


def _target(fn: Callable | str, kind: str, plan: "Plan") -> tuple[str, Target]:
    text, target = _describe(fn)
    b = plan.binding
    if b.layout is None and b.convention.is_spec() and not b.args:
        return text, target
    imports = (f"{target.imports}\nfrom refmath.conformance import binding_from, bound\n"
               f"fn = bound({target.callee}, {kind!r}, binding_from({b.text()!r}))"
               "  # called in SPEC's layout")
    return text, Target(imports, "fn")


@dataclass
class Plan:
    """Everything :func:`resolve` decided before any example: what to call and how."""

    function: Callable
    binding: Binding
    checks: list
    only: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    expected_failures: dict[str, str] = field(default_factory=dict)
    declined: frozenset[str] = frozenset()  # SPEC extensions the function does not take
    kind: str = ""

    @property
    def convention(self) -> Convention:
        return self.binding.convention

    @property
    def layout(self) -> Any:
        from .layouts import LAYOUTS

        return LAYOUTS[self.binding.layout] if self.binding.layout else None

    @property
    def renames(self) -> dict[str, str]:
        return dict(self.binding.args)

    def computes_in(self, kind: str) -> str | None:
        """The declared compute precision: the binding's, else the layout semantics'."""
        semantics = _semantics(kind, self)
        return self.binding.computes_in or (semantics.computes_in if semantics else None)

    def capabilities(self) -> Capabilities:
        caps = self.convention.capabilities()
        if self.layout is not None:
            off = self.layout.unsupported + self.layout.unsupported_by_kind.get(self.kind, ())
            caps = replace(caps, **{c: False for c in off})
        return caps

    def adapt(self, fn: Callable, kind: str) -> Callable:
        return bound(fn, kind, self.binding)


def bound(fn: Callable, kind: str, binding: Binding) -> Callable:
    """``fn`` as its binding says it is written, wrapped into SPEC's signature for ``kind``
    (what every check calls, and what a reproduction snippet calls)."""
    from .bindings import picked

    if binding.layout is not None:
        from .layouts import LAYOUTS, layout_adapter

        if binding.result is not None and kind in LAYOUTS[binding.layout].constructs:
            raise UsageError("result= picks from a function's value; the layout builds a "
                             "class for this kind")
        call = layout_adapter(picked(fn, binding.result), kind, LAYOUTS[binding.layout],
                              dict(binding.args))
    else:
        call = adapt(picked(fn, binding.result), kind, binding.convention,
                     dict(binding.args))
    if uses_jax(binding):
        from .jax_bridge import bucketed
        from .layouts import LAYOUTS

        lay = LAYOUTS.get(binding.layout)
        return bucketed(call, kind, batch=lay is None or kind not in lay.per_row)
    return call


def uses_jax(binding: Binding) -> bool:
    """Whether the bound function is a JAX function (a ``jax`` convention or layout)."""
    if binding.layout is not None:
        from .layouts import LAYOUTS

        return LAYOUTS[binding.layout].arrays == "jax"
    return binding.convention.jax


def _call_names(kind: str, plan: "Plan") -> tuple[int, list[str]]:
    """How the checks call a function bound by a convention: (number of positional
    arguments, keyword names in the function's own spelling), given what it declares."""
    spec, conv, caps = SPECS[kind], plan.convention, plan.capabilities()
    if spec.family == "steps":
        keywords = [n for n in spec.keyword_only
                    if n not in spec.flags or (getattr(caps, n, True)
                                               and (caps.flags or n == "mask"))]
        positional = len(spec.positional_arrays) - (1 if conv.values_with_bootstrap else 0)
        if conv.done:
            keywords = [n for n in keywords if n not in ("terminated", "truncated")]
            keywords += ["done"] if "terminated" in spec.keyword_only else []
    else:
        positional = len([n for n in spec.positional if n in spec.required])
        keywords = [n for n in spec.parameters
                    if (n not in spec.positional or n not in spec.required)
                    and n not in plan.declined
                    and not (n in ("mask", "truncated") and not getattr(caps, n))]
    return positional, [plan.renames.get(k, k) for k in keywords]


def _declined(kind: str, plan: Plan) -> frozenset[str]:
    """The SPEC extensions of refmath's oracle (``rhos``) the function does not take: the
    checks never pass them (a layout passes only what it names)."""
    from .layouts import takes

    extensions = SPECS[kind].extensions
    if plan.layout is not None:
        return frozenset(extensions)
    return frozenset(e for e in extensions
                     if not takes(plan.function, plan.renames.get(e, e)))


def _signature_text(fn: Callable) -> str:
    import inspect

    try:
        return f"{getattr(fn, '__name__', 'fn')}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return repr(fn)


def _precheck(kind: str, function: Callable, plan: Plan) -> None:
    """Bind the function's signature against the call the checks will make, whatever the
    binding: a mismatch is a usage error naming the expected and the actual signature and
    the layouts its parameter names fit."""
    from .layouts import binds, matching_layouts

    fits = matching_layouts(function, kind)
    hint = f"; layouts that fit your parameter names: {', '.join(fits)}" if fits else ""
    if plan.layout is not None:
        lay = plan.layout
        names = [plan.renames.get(p, p) for p in lay.params[kind]]
        if kind in lay.constructs:  # a class: its constructor, then its forward / __call__
            built = [plan.renames.get(p, p) for p in lay.constructs[kind]]
            call = getattr(function, "forward", None) or getattr(function, "__call__", None)
            if not (isinstance(function, type) and binds(function, built)
                    and binds(call, names, positional=1)):
                raise UsageError(
                    f"your {_signature_text(function)} cannot be built and called as the "
                    f"{lay.name} layout does: {lay.signature(kind)} (by keyword; rename with "
                    f"--arg LAYOUT_NAME=YOUR_NAME)")
            return
        if not binds(function, names):
            raise UsageError(
                f"your function {_signature_text(function)} cannot be called as the "
                f"{lay.name} layout calls it: {lay.signature(kind)} (by keyword; rename with "
                f"--arg LAYOUT_NAME=YOUR_NAME){hint}")
        return
    positional, keywords = _call_names(kind, plan)
    if binds(function, keywords, positional):
        return
    import inspect

    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    missing = [] if takes_any else [k for k in keywords if k not in params]
    advice = ""
    if missing:
        spec_names = {v: k for k, v in plan.renames.items()}
        declare = [f"no_{spec_names.get(m, m)}" for m in missing
                   if spec_names.get(m, m) in Capabilities.names()]
        advice = (f"; it does not take {', '.join(repr(m) for m in missing)}"
                  + (f": declare --convention {','.join(declare)}" if declare else "")
                  + "; rename with --arg SPEC_NAME=YOUR_NAME")
    expected = (f"fn({', '.join(['<array>'] * positional + [k + '=' for k in keywords])})")
    raise UsageError(f"your function {_signature_text(function)} cannot be called as the "
                     f"checks call it under binding {plan.binding}: {expected} "
                     f"(SPEC: {SPECS[kind].describe()}){advice}{hint}")


def resolve(kind: str, fn: Callable | str, convention: Convention | str | None = None,
            profile: str = "ci", checks: list[str] | None = None, *,
            binding: Binding | str | dict | None = None, layout: str | None = None,
            arg: list[str] | dict | None = None, only: list[str] | str | dict | None = None,
            expected_failures: list[str] | dict | None = None,
            xfails_file: str | None = None, computes_in: str | None = None) -> Plan:
    """Every usage mistake, found before any example runs: the kind, the binding (layout,
    convention, renames, option subsets, waivers, precision), the profile, the function and
    its signature, the check ids."""
    from ..profiles import PROFILES, unknown_profile_message

    if kind == "identities":
        raise UsageError("'identities' checks refmath's own oracles, not a function of "
                         "yours: run `refmath --kind identities`; kinds to check a function "
                         f"against: {', '.join(SPECS)}")
    family_of(kind)  # unknown kind: UsageError with a suggestion
    if profile not in PROFILES:
        raise UsageError(unknown_profile_message(profile))
    b = binding_from(binding, convention=convention, layout=layout, arg=arg, only=only,
                     expected_failures=expected_failures, xfails_file=xfails_file,
                     computes_in=computes_in)
    b.convention.capabilities()
    plan = Plan(load(fn) if isinstance(fn, str) else fn, b, [], kind=kind)
    lay = plan.layout
    if lay is not None:
        if kind not in lay.kinds:
            raise UsageError(f"the {lay.name} layout has no {kind!r}; its kinds: "
                             f"{', '.join(lay.kinds)}")
        if b.convention.reshapes():
            raise UsageError("a layout and the layout flags of a convention exclude each "
                             "other (no_<capability> flags may be combined)")
    if not callable(plan.function):
        raise UsageError(f"the function to check is not callable: {plan.function!r}")
    known = lay.params[kind] + lay.constructs.get(kind, ()) if lay is not None else \
        SPECS[kind].parameters + (("done",) if b.convention.done else ())
    for key in b.args:
        if key not in known:
            raise UsageError(f"--arg {key}=...: {key!r} is not a parameter of "
                             f"{'the ' + lay.name + ' layout' if lay else kind}"
                             f"{suggest(key, list(known))}; its parameters: "
                             f"{', '.join(known)}")
    plan.only = _restrictions(kind, lay, dict(b.only), plan.function)
    plan.declined = _declined(kind, plan)
    if lay is None:
        adapt(plan.function, kind, b.convention)  # a convention that does not fit the kind
    _precheck(kind, plan.function, plan)
    plan.checks = _selected(kind, plan, checks)
    plan.expected_failures = _waivers(kind, plan, b.xfail)
    return plan


def _semantics(kind: str, plan: "Plan") -> Any:
    lay = plan.layout
    return lay.semantics.get(kind) if lay is not None else None


def _adjust(kind: str, plan: "Plan") -> Callable | None:
    semantics = _semantics(kind, plan)
    return semantics.adjust if semantics is not None else None


def _derived_checks(kind: str, plan: "Plan") -> list:
    """The kind's checks, run on the row the layout's semantics derive (the library's own
    formula) when it has one: the row's named checks rebuilt on the derived row, and each
    kind-specific check the library's formula does not share reported not applicable with
    why."""
    semantics = _semantics(kind, plan)
    registered = checks_for(kind)
    if semantics is None:
        return registered
    from ..checks import array_row
    from ..checks.arrays import array_checks
    from ..checks.core import Check

    row = array_row(kind)  # (a per-step kind keeps its checks: Semantics.post adapts them)
    derived = {c.id: c for c in array_checks(semantics.derive(row))} if row is not None else {}
    out = []
    for c in registered:
        reason = semantics.not_applicable.get(c.id.rpartition(".")[2])
        if c.id in derived:
            out.append(derived[c.id])
        elif reason is not None:
            out.append(Check(c.id, c.kind, c.summary, _not_applicable(reason), c.requires,
                             c.tier))
        else:
            out.append(c)
    return out


def _not_applicable(reason: str) -> Callable:
    def run(fn: Callable, ctx: Context) -> None:
        ctx.tracker.skip(f"not the library's formula: {reason}")

    return run


def _restrictions(kind: str, lay: Any, only: dict[str, tuple[Any, ...]],
                  function: Callable | None = None) -> dict[str, tuple[Any, ...]]:
    """The option values the checks may use: the layout's fixed ones (widened by each
    optional parameter the function takes), then ``only`` (in SPEC's option names or the
    layout's own)."""
    restrictions = dict(lay.only.get(kind, {})) if lay is not None else {}
    if lay is not None and function is not None:
        from .layouts import takes

        for param, opens in lay.optional.get(kind, {}).items():
            if takes(function, param):
                restrictions.update(opens)
    if not only:
        return restrictions
    own = {v: k for k, v in (lay.option_names.get(kind, {}) if lay is not None else {}).items()}
    only = {own.get(k, k): v for k, v in only.items()}
    values = lay.option_values.get(kind, {}) if lay is not None else {}
    only = {k: tuple(values.get(k, {}).get(x, x) for x in v) for k, v in only.items()}
    for key, values in only.items():
        allowed = SPECS[kind].options.get(key)
        if not SPECS[kind].has(key):
            names = list(SPECS[kind].parameters) + list(own)
            raise UsageError(f"--only {key}=...: {kind} has no option {key!r}"
                             f"{suggest(key, names)}")
        bad = [v for v in values if allowed is not None and v not in allowed]
        if bad:
            raise UsageError(f"--only {key}: {bad} not among {list(allowed)}")
        fixed = restrictions.get(key)
        if fixed is not None and not set(values) <= set(fixed):
            raise UsageError(f"--only {key}: {list(values)} outside what the {lay.name} "
                             f"layout can express: {list(fixed)}")
        restrictions[key] = values
    _check_only(kind, only)
    return restrictions


def _full_id(kind: str, cid: str, ids: list[str], what: str) -> str:
    if cid in ids:
        return cid
    if f"{kind}.{cid}" in ids:
        return f"{kind}.{cid}"
    raise UsageError(f"{what} {cid!r}: no such check for {kind}{suggest(cid, ids)}; its "
                     f"checks: {', '.join(ids)}")


def _selected(kind: str, plan: Plan, checks: list[str] | None) -> list:
    selected = _derived_checks(kind, plan)
    ids = [c.id for c in selected]
    if checks:
        wanted = {_full_id(kind, c, ids, "--check") for c in checks}
        selected = [c for c in selected if c.id in wanted]
    elif not plan.capabilities().half:  # opt-in (Convention.half): not run, not reported
        selected = [c for c in selected if "half" not in c.requires]
    if not selected:  # nothing passes by having nothing to check
        raise UsageError(f"{kind} has no check to run: refmath cannot verify it (a spec row "
                         "without checks is a gap in refmath; please report it)")
    return selected


def _waivers(kind: str, plan: Plan, xfail: dict[str, str]) -> dict[str, str]:
    """``{check id[:difference]: reason}`` with full check ids; a difference must be known."""
    ids = [c.id for c in checks_for(kind)]
    out = {}
    for key, reason in xfail.items():
        cid, _, difference = key.partition(":")
        full = _full_id(kind, cid, ids, "--xfail")
        if difference:
            from .differences import difference_named

            difference_named(difference, kind)
        out[f"{full}:{difference}" if difference else full] = reason
    return out


def _check_only(kind: str, only: dict[str, tuple[Any, ...]]) -> None:
    """``--only`` narrows the options the array checks draw; a kind whose checks choose their
    own inputs cannot honour it, and a value refmath's own oracle rejects is no option."""
    from ..checks import array_row
    from ..checks.arrays import option_domain_error

    row = array_row(kind)
    if row is None:
        raise UsageError(f"--only: the checks of {kind} draw their own inputs and cannot be "
                         "narrowed by option; declare a missing capability with "
                         "--convention no_<capability> instead")
    problem = option_domain_error(row, only)
    if problem:
        raise UsageError(f"--only {problem}")


def _nothing_checked(report: "Report") -> str | None:
    """Why a run checked nothing (every check not applicable), or None."""
    if not report.results or any(r.status != "not applicable" for r in report.results):
        return None
    reasons = sorted({r.message for r in report.results if r.message})
    return (f"nothing was checked: every check of {report.kind} is not applicable ("
            + "; ".join(reasons)[:600] + "); a PASS would prove nothing")


def check(kind: str, fn: Callable | str, *, binding: Binding | str | dict | None = None,
          convention: Convention | str | None = None, profile: str = "ci",
          seed: int | None = None, max_examples: int | None = None,
          timeout: float | None = DEFAULT_TIMEOUT, checks: list[str] | None = None,
          progress: Callable[[CheckResult], None] | None = None, layout: str | None = None,
          arg: list[str] | dict | None = None, only: list[str] | str | dict | None = None,
          expected_failures: list[str] | dict | None = None, xfails_file: str | None = None,
          computes_in: str | None = None, strict: bool = False,
          fail_on: list[str] | tuple[str, ...] | None = None) -> Report:
    """Run every check of ``kind`` (or only ``checks``) on ``fn`` (a callable or
    ``"module:function"``) as its ``binding`` says it is written (a :class:`Binding`, its text
    form ``"cleanrl,arg.rewards=r"`` or a mapping; see :mod:`.bindings`). The separate options
    join the binding: ``convention`` (SPEC's names in another layout), ``layout`` (a built-in
    one: ``refmath list``), ``arg`` (renames), ``only`` (the option values the function
    supports), ``expected_failures`` (``{check id[:difference]: reason}``: reported XFAIL,
    never failing the run; with a difference, only the failures it reproduces), ``computes_in``
    (declared compute precision). ``fail_on`` chooses the severity tiers that fail the run
    (default all); ``strict`` fails it on an XPASS.

    Usage mistakes raise :class:`UsageError` before any example; everything the function
    does (raise, exit, hang past ``timeout`` seconds per call, print) becomes a failed check
    with its fields, never the end of the run."""
    from ..checks.guard import Guarded

    fail_on = tuple(fail_on) if fail_on else SEVERITIES
    unknown = [t for t in fail_on if t not in SEVERITIES]
    if unknown:
        raise UsageError(f"--fail-on {unknown}: the tiers are {', '.join(SEVERITIES)}")
    plan = resolve(kind, fn, convention, profile, checks, binding=binding, layout=layout,
                   arg=arg, only=only, expected_failures=expected_failures,
                   xfails_file=xfails_file, computes_in=computes_in)
    target_text, target = _target(fn, kind, plan)
    guarded = Guarded(plan.function, timeout)
    adapted = plan.adapt(guarded, kind)
    lay = plan.layout
    ctx = Context(capabilities=plan.capabilities(), target=target, profile=profile,
                  seed=seed, max_examples=max_examples, timeout=timeout, only=plan.only,
                  accepts=(lay.accepts if lay is not None else None),
                  layout=lay.name if lay is not None else None,
                  wrap=_layout_wrap(lay, kind), computes_in=plan.computes_in(kind),
                  declined=plan.declined, adjust=_adjust(kind, plan),
                  derived=_semantics(kind, plan) is not None,
                  post=getattr(_semantics(kind, plan), "post", None))
    report = Report(kind, target_text, plan.binding, profile, seed=seed, strict=strict,
                    fail_on=fail_on)
    for c in plan.checks:
        result = run_check(c, adapted, ctx)
        if result.tier == "BINDING":  # the user's binding, found by a call: a usage error
            raise UsageError(result.message)
        output = guarded.take_output()  # what it printed during this check only
        if result.status == "failed":
            result.output = output[-2000:]
            _show_received(result, guarded, plan)
            _explained(result, c, adapted, ctx, plan, kind)
            guarded.take_output()
        _waived(result, plan.expected_failures.get(c.id))
        report.results.append(result)
        if progress is not None:
            progress(result)
    if not checks:  # (one check asked for by id may be not applicable: the plugin skips it)
        empty = _nothing_checked(report)
        if empty:
            raise UsageError(empty)
    return report


def _show_received(result: CheckResult, guarded: Any, plan: Plan) -> None:
    """For a function not in SPEC's layout, the failing call as the function itself received
    it (its names, its layout): the last call, the shrunk counterexample's replay."""
    from ..checks.guard import received

    b = plan.binding
    if result.tier not in ("WRONG", "IMPRECISE") or (b.layout is None and not b.args
                                                     and not b.convention.reshapes()):
        return
    text = received(plan.function, guarded.last_call)
    if text and uses_jax(b):
        lay = plan.layout
        rows = (" (called one row at a time: the last row's call)"
                if lay is not None and plan.kind in lay.per_row else "")
        text += ("\n(JAX: the time axis padded at the front, and a [B, T] batch at the end, "
                 "to bucketed shapes, then cut from the result: the example is the last T "
                 f"steps of the first B rows){rows}")
    if text:
        result.message += "\n  your function received (its own names and layout):\n" + \
            "\n".join("      " + line for line in text.splitlines())


def _differences(check_id: str, plan: Plan, kind: str) -> list[tuple[str, str]]:
    """(difference, reason) that may explain a failure of ``check_id``: the layout's by-design
    ones, then those a waiver names."""
    from .differences import DIFFERENCES

    name = check_id.rpartition(".")[2]
    out = []
    if plan.layout is not None:
        out += [(d, f"by design in the {plan.layout.name} layout")
                for d in plan.layout.differences.get(kind, ())]
    out += [(key.partition(":")[2], reason) for key, reason in plan.expected_failures.items()
            if key.partition(":")[0] == check_id and key.partition(":")[2]]
    return [(d, r) for d, r in out if name in DIFFERENCES[d].checks]


def _explained(result: CheckResult, c: Any, adapted: Callable, ctx: Context, plan: Plan,
               kind: str) -> None:
    """A failure a known difference reproduces is XFAIL with the difference named: the check
    passes again with the inputs that difference excuses made finite. Otherwise it stays a
    failure, and a named difference that did not explain it says so."""
    from .differences import DIFFERENCES, excused

    tried = []
    for name, reason in _differences(c.id, plan, kind):
        again = run_check(c, excused(adapted, kind, DIFFERENCES[name]), ctx)
        if again.status == "passed":
            result.status, result.causes = "xfail", []  # explained: no mistake to name
            result.waiver = f"{name} ({reason}): {DIFFERENCES[name].text}"
            return
        tried.append(name)
    if tried:
        result.message += (f"\n  not explained by the declared difference(s) "
                           f"{', '.join(tried)}: it fails with those inputs made finite too")


def _waived(result: CheckResult, reason: str | None) -> None:
    """A plain waiver (a check id without a difference): any failure is XFAIL."""
    if reason is None or result.status not in ("failed", "passed"):
        return
    result.status, result.waiver = ("xfail" if result.status == "failed" else "xpass"), reason


def _layout_wrap(layout: Any, kind: str) -> Callable | None:
    """Wraps the layout's own mutants (written with the layout's names) for the diagnosis."""
    if layout is None:
        return None
    from .layouts import layout_adapter

    return lambda f: layout_adapter(f, kind, layout)


def run_one(kind: str, check_id: str, fn: Callable | str,
            binding: Binding | str | dict | None = None, profile: str = "ci",
            seed: int | None = None, max_examples: int | None = None,
            timeout: float | None = DEFAULT_TIMEOUT, **options: Any) -> tuple[CheckResult, str]:
    """One check (for the pytest plugin and :func:`parametrize_with_checks`): the result and
    the target's description; the reproduction calls the function under test itself."""
    report = check(kind, fn, binding=binding, profile=profile, seed=seed,
                   max_examples=max_examples, timeout=timeout, checks=[check_id], **options)
    return report.results[0], report.target


def parametrize_with_checks(kind: str, fn: Callable | str, *,
                            binding: Binding | str | dict | None = None,
                            convention: Convention | str | None = None,
                            profile: str = "ci", seed: int | None = None, **options: Any):
    """A pytest decorator (like scikit-learn's ``parametrize_with_checks``): one test per
    check of ``kind``, each a zero-argument callable that raises with the check's message::

        @parametrize_with_checks("gae", my_gae, binding="cleanrl,arg.rewards=r")
        def test_my_gae(refmath_check):
            refmath_check()

    ``binding`` and ``options`` are :func:`check`'s (``layout``, ``arg``, ``only``,
    ``expected_failures``, ``computes_in``, ``strict``, ``fail_on``, ``max_examples``,
    ``timeout``). A check that is not applicable (declared) is skipped with its reason; an
    expected failure is reported as pytest's xfail.
    """
    import pytest

    joined = {k: options.pop(k) for k in ("layout", "arg", "only", "expected_failures",
                                          "xfails_file", "computes_in") if k in options}
    plan = resolve(kind, fn, convention, profile, binding=binding, **joined)

    def make(check_id: str):
        def run() -> None:
            result, target = run_one(kind, check_id, fn, plan.binding, profile, seed,
                                     **options)
            if result.status == "not applicable":
                pytest.skip(f"{check_id}: not applicable ({result.message})")
            if result.status == "xfail":
                pytest.xfail(f"{check_id}: {result.waiver}")
            if result.status == "failed" or (result.status == "xpass"
                                             and options.get("strict")):
                raise AssertionError(f"refmath check {check_id} FAILED for {target} "
                                     f"[profile {profile}]\n{failure_text(result)}")

        return run

    ids = [c.id for c in plan.checks]
    return pytest.mark.parametrize("refmath_check", [make(i) for i in ids], ids=ids)
