"""The user's own configuration: ``[tool.refmath.check.NAME]`` tables of ``pyproject.toml``,
one per implementation, read by ``refmath check`` (with no KIND and TARGET) and by the pytest
plugin (``pytest --pyargs refmath.suite`` with no ``--refmath-impl``)::

    [tool.refmath.check.gae]
    target = "mypkg.adv:compute_gae"
    layout = "cleanrl"

    [tool.refmath.check.loss]
    kind = "policy_loss"                 # the table's name when omitted
    target = "mypkg.loss:policy_loss"
    layout = "verl"
    only = { loss_agg_mode = ["token-mean"] }
    xfail = ["policy_loss.ignored_numbers:nan_padding_multiplied"]

Every key but ``kind`` and ``target`` is a :class:`~refmath.conformance.bindings.Binding`
key (``layout``, ``convention``, ``arg``, ``only``, ``xfail``, ``computes_in``, or
``binding`` in the text form).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..checks import UsageError
from .bindings import Binding, binding_from

__all__ = ["Configured", "from_pyproject"]


@dataclass(frozen=True)
class Configured:
    name: str  # the table's name
    kind: str
    target: str
    binding: Binding


def from_pyproject(directory: str = ".") -> list[Configured]:
    """The implementations ``directory/pyproject.toml`` configures (none: an empty list)."""
    import tomllib

    path = os.path.join(directory, "pyproject.toml")
    if not os.path.exists(path):
        return []
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"{path}: {err}") from None
    tables = data.get("tool", {}).get("refmath", {}).get("check", {})
    out = []
    for name, table in tables.items():
        if not isinstance(table, dict) or "target" not in table:
            raise UsageError(f"{path} [tool.refmath.check.{name}]: needs target = "
                             "\"module:function\"")
        xfail = table.get("xfail")
        if isinstance(xfail, list):
            table = {**table, "xfail": {k: "declared in pyproject.toml" for k in xfail}}
        binding = binding_from({k: v for k, v in table.items() if k not in ("kind", "target")})
        out.append(Configured(name, table.get("kind", name), table["target"], binding))
    return out
