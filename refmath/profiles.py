"""The Hypothesis settings refmath's checks run under, as plain settings objects.

Library code never registers or loads a global Hypothesis profile: each check applies its own
``settings`` object (built here from Hypothesis' built-in ``default`` profile, so a profile the
user loaded neither leaks into refmath's checks nor is changed by them). The project's own
``tests/conftest.py`` registers these under the same names, deliberately, for its tests.

* ``ci``: derandomized, no deadline, no example database, 40 examples: the same examples on
  every run, never flaky.
* ``quick``: ``ci`` with 10 examples (a smoke run).
* ``detect``: ``ci`` without the shrink phase (meta-tests that only need detection).
* ``thorough``: randomized, 2000 examples, every per-check cap lifted.
* ``random``: randomized, ``ci``'s example counts (what ``--seed`` runs under).
"""

from __future__ import annotations

import difflib
from typing import Any

from hypothesis import HealthCheck, Phase, settings

__all__ = ["PROFILES", "settings_for", "unknown_profile_message"]

_COMMON: dict[str, Any] = dict(
    deadline=None, database=None, print_blob=False, report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])

PROFILES: dict[str, dict[str, Any]] = {
    "ci": dict(_COMMON, derandomize=True, max_examples=40),
    "quick": dict(_COMMON, derandomize=True, max_examples=10),
    "detect": dict(_COMMON, derandomize=True, max_examples=40,
                   phases=[Phase.explicit, Phase.reuse, Phase.generate]),
    "thorough": dict(_COMMON, derandomize=False, max_examples=2000),
    "random": dict(_COMMON, derandomize=False, max_examples=40),
    "dev": dict(_COMMON, derandomize=False, max_examples=40),
}
UNCAPPED = {"thorough"}  # profiles under which the per-check caps (e.g. 15 examples) lift


def unknown_profile_message(name: str) -> str:
    close = difflib.get_close_matches(name, list(PROFILES), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown profile {name!r}{hint}; known: {', '.join(PROFILES)}"


def settings_for(profile: str, *, cap: int | None = None, max_examples: int | None = None,
                 derandomize: bool | None = None, shrink: bool = True) -> settings:
    """A settings object for one check: ``profile``'s values on top of Hypothesis' built-in
    defaults, at most ``cap`` examples (unless the profile lifts caps), ``max_examples``
    overriding the profile's count and lifting every cap (``--max-examples 300`` runs 300
    examples in every check, not 300 in the uncapped ones only)."""
    if profile not in PROFILES:
        raise ValueError(unknown_profile_message(profile))
    values = dict(PROFILES[profile])
    if max_examples is not None:
        values["max_examples"] = max_examples
    elif cap is not None and profile not in UNCAPPED:
        values["max_examples"] = min(values["max_examples"], cap)
    if derandomize is not None:
        values["derandomize"] = derandomize
    if not shrink:  # the first failing input is the message (hygiene: which input changed)
        values["phases"] = tuple(p for p in values.get("phases", tuple(Phase))
                                 if p is not Phase.shrink)
    return settings(settings.get_profile("default"), **values)
