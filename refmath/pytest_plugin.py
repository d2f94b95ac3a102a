"""pytest plugin: run refmath's check set on YOUR implementation.

    pytest --pyargs refmath.suite --refmath-impl gae=mypkg.adv:gae
    pytest --pyargs refmath.suite --refmath-impl "gae=mypkg.adv:gae[time_major,done]"
    pytest --pyargs refmath.suite --refmath-impl "gae=mypkg.adv:gae[cleanrl,arg.rewards=r]"
    REFMATH_IMPL="gae=mypkg.adv:gae" pytest --pyargs refmath.suite
    pytest --pyargs refmath.suite      # every [tool.refmath.check.NAME] of ./pyproject.toml

The bracket holds the implementation's binding in its one text form
(:mod:`refmath.conformance.bindings`): layout, convention flags, ``arg.NAME=YOURS``,
``only.OPTION=V1|V2``, ``xfail=CHECK_ID[:DIFFERENCE]``, ``computes_in=float32``. A waiver
given with ``--refmath-xfail`` (or the ini key) applies to the implementations of the kind its
check id names, so two kinds with a waiver each share one run.

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
                   r"\s*(\[(?P<binding>[^\]]*)\])?\s*$")


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


def implementations(config, configured: bool = False) -> list[tuple[str, str, str]]:
    """(kind, module:function, binding text) for every requested implementation: those
    given with ``--refmath-impl``/``$REFMATH_IMPL``, else (``configured``: only when
    refmath.suite itself is collected) those of the rootdir's pyproject.toml."""
    specs = list(config.getoption("--refmath-impl") or [])
    specs += [s for s in os.environ.get(ENV, "").split(";") if s.strip()]
    out = []
    for spec in specs:
        m = _SPEC.match(spec)
        if m is None:
            import pytest

            raise pytest.UsageError(f"--refmath-impl {spec!r}: expected "
                                    "KIND=module:function[binding]")
        out.append((m["kind"], m["target"], m["binding"] or ""))
    if not out and configured:
        from refmath.checks import UsageError
        from refmath.conformance.config import from_pyproject

        try:
            out = [(c.kind, c.target, c.binding.text())
                   for c in from_pyproject(str(config.rootpath))]
        except UsageError as err:
            import pytest

            raise pytest.UsageError(str(err)) from None
    return out


def waivers_for(kind: str, waivers: list[str]) -> list[str]:
    """The run-wide waivers that name a check of ``kind`` (``KIND.CHECK...``)."""
    return [w for w in waivers if w.split("=", 1)[0].strip().startswith(f"{kind}.")]


def pytest_report_header(config):
    impls = implementations(config)
    if not impls:
        return None
    return ["refmath: checking " + ", ".join(
        f"{kind}={target}" + (f" [{b}]" if b else "") for kind, target, b in impls)]


def pytest_generate_tests(metafunc):
    # only refmath.suite's test; a user's own @parametrize_with_checks test is left alone
    if metafunc.function.__name__ != "test_refmath_conformance":
        return
    impls = implementations(metafunc.config, configured=True)
    if not impls:
        metafunc.parametrize("refmath_check", [None], ids=["no-implementation-given"])
        return
    import pytest

    from refmath.checks import UsageError
    from refmath.conformance import importable, resolve

    importable(os.getcwd())
    params, ids = [], []
    options = run_options(metafunc.config)
    for kind, target, binding in impls:
        waivers = waivers_for(kind, options["expected_failures"])
        try:  # every usage mistake before any check runs, as pytest's own usage error
            selected = resolve(kind, target, None, options["profile"], binding=binding,
                               expected_failures=waivers).checks
        except UsageError as err:
            raise pytest.UsageError(f"refmath: {kind}={target}[{binding}]: {err}") from None
        for c in selected:
            params.append((kind, c.id, target, binding))
            ids.append(c.id if len(impls) == 1 else f"{target}::{c.id}")
    metafunc.parametrize("refmath_check", params, ids=ids)
