"""The documentation (issue #28): every public function of `refmath` documents each of its
parameters in an ``Args:`` section (one entry per parameter, in the signature's order, as
mkdocstrings renders it)."""

from __future__ import annotations

import inspect
import re

import pytest

import refmath

PUBLIC = [n for n in refmath.__all__ if callable(getattr(refmath, n))]


def _documented(doc: str) -> list[str]:
    """The parameter names of a Google-style ``Args:`` section, in order."""
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Args:"), None)
    if start is None:
        return []
    indent = len(lines[start]) - len(lines[start].lstrip()) + 4
    names = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        if len(line) - len(line.lstrip()) == indent:
            match = re.match(r"\s*(\w+): \S", line)
            assert match, f"not a parameter entry: {line!r}"
            names.append(match.group(1))
    return names


@pytest.mark.parametrize("name", PUBLIC)
def test_every_parameter_is_documented(name):
    obj = getattr(refmath, name)
    params = [p for p in inspect.signature(obj).parameters if p != "self"]
    assert _documented(inspect.getdoc(obj) or "") == params
