"""pytest plugin: run refmath's check set on YOUR implementation.

    pytest --pyargs refmath.suite --refmath-impl gae=mypkg.adv:gae
    pytest --pyargs refmath.suite --refmath-impl "gae=mypkg.adv:gae[time_major,done]"
    REFMATH_IMPL="gae=mypkg.adv:gae" pytest --pyargs refmath.suite

Registered through the ``pytest11`` entry point, so the options work with ``--pyargs`` (a
package conftest's options would be ignored: pytest issue 1596). With plugin autoload
disabled, add ``-p refmath.pytest_plugin``. Inert and import-light: nothing is imported and
nothing runs unless ``--refmath-impl`` or ``REFMATH_IMPL`` is given. The header echoes what
is checked, so a typo cannot silently test nothing.
"""

from __future__ import annotations

import os
import re

__all__ = ["pytest_addoption", "pytest_report_header", "pytest_generate_tests"]

ENV = "REFMATH_IMPL"
_SPEC = re.compile(r"^\s*(?P<kind>[a-z_0-9]+)\s*=\s*(?P<target>[\w.]+:[\w.]+)"
                   r"\s*(\[(?P<convention>[\w,\s]*)\])?\s*$")


def pytest_addoption(parser):
    group = parser.getgroup("refmath", "refmath: check an implementation against the exact "
                                       "oracles")
    group.addoption("--refmath-impl", action="append", default=[], metavar="KIND=MOD:FN[FLAGS]",
                    help="implementation to check (repeatable), e.g. "
                         "gae=mypkg.adv:gae or 'gae=mypkg.adv:gae[time_major,done]'; "
                         f"also ${ENV} (separate several with ';')")
    group.addoption("--refmath-profile", default=None,
                    help="Hypothesis profile for the checks: ci (default), quick, detect, "
                         "random or thorough (refmath's own settings: the profile of your "
                         "other tests is untouched)")
    group.addoption("--refmath-seed", type=int, default=None,
                    help="random seed for the checks (randomized, reproducible by the seed)")
    group.addoption("--refmath-max-examples", type=int, default=None,
                    help="examples per check (overrides the profile)")
    group.addoption("--refmath-timeout", type=float, default=None,
                    help="seconds one call of the function may take (default 60)")
    group.addoption("--refmath-xfail", action="append", default=[], metavar="CHECK_ID=REASON",
                    help="an expected failure (a by-design difference): reported as xfail "
                         "(repeatable; also the ini key refmath_xfail, one per line)")
    parser.addini("refmath_xfail", "refmath expected failures, CHECK_ID=REASON per line",
                  type="linelist", default=[])


def run_options(config) -> dict:
    """The run settings the plugin's options give (profile, seed, examples, timeout)."""
    from refmath.conformance import DEFAULT_TIMEOUT

    timeout = config.getoption("--refmath-timeout")
    return {"profile": config.getoption("--refmath-profile") or os.environ.get(
                "REFMATH_PROFILE") or "ci",
            "seed": config.getoption("--refmath-seed"),
            "max_examples": config.getoption("--refmath-max-examples"),
            "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
            "expected_failures": list(config.getini("refmath_xfail"))
            + list(config.getoption("--refmath-xfail") or [])}


def split_flags(flags: str) -> tuple[str | None, str]:
    """``"cleanrl,no_mask"`` → (layout ``cleanrl``, convention ``no_mask``): a bracket token
    that names a built-in layout selects it; the others are convention flags."""
    from refmath.conformance.layouts import LAYOUTS

    words = [w.strip() for w in (flags or "").split(",") if w.strip()]
    layouts = [w for w in words if w in LAYOUTS]
    return (layouts[0] if layouts else None), ",".join(w for w in words if w not in LAYOUTS)


def implementations(config) -> list[tuple[str, str, str]]:
    """(kind, module:function, convention) for every requested implementation."""
    specs = list(config.getoption("--refmath-impl") or [])
    specs += [s for s in os.environ.get(ENV, "").split(";") if s.strip()]
    out = []
    for spec in specs:
        m = _SPEC.match(spec)
        if m is None:
            import pytest

            raise pytest.UsageError(f"--refmath-impl {spec!r}: expected "
                                    "KIND=module:function[flags]")
        out.append((m["kind"], m["target"], m["convention"] or ""))
    return out


def pytest_report_header(config):
    impls = implementations(config)
    if not impls:
        return None
    return ["refmath: checking " + ", ".join(
        f"{kind}={target}" + (f" [{conv}]" if conv else "") for kind, target, conv in impls)]


def pytest_generate_tests(metafunc):
    # only refmath.suite's test; a user's own @parametrize_with_checks test is left alone
    if metafunc.function.__name__ != "test_refmath_conformance":
        return
    impls = implementations(metafunc.config)
    if not impls:
        metafunc.parametrize("refmath_check", [None], ids=["no-implementation-given"])
        return
    import pytest

    from refmath.checks import UsageError
    from refmath.conformance import importable, resolve

    importable(os.getcwd())
    params, ids = [], []
    for kind, target, convention in impls:
        layout, flags = split_flags(convention)
        options = run_options(metafunc.config)
        try:  # every usage mistake before any check runs, as pytest's own usage error
            selected = resolve(kind, target, flags, options["profile"], layout=layout,
                               expected_failures=options["expected_failures"]).checks
        except UsageError as err:
            raise pytest.UsageError(f"--refmath-impl {kind}={target}: {err}") from None
        for c in selected:
            params.append((kind, c.id, target, convention))
            ids.append(c.id if len(impls) == 1 else f"{target}::{c.id}")
    metafunc.parametrize("refmath_check", params, ids=ids)
