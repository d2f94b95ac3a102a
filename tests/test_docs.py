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


def _gen_pages():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "gen_pages.py"
    spec = importlib.util.spec_from_file_location("gen_pages", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_pages_cover_the_code():
    """Every kind and check, layout, known mistake, claim and benchmark output is on its
    generated page (docs/gen_pages.py), so the site cannot fall behind the registry."""
    from refmath.checks import checks_for
    from refmath.checks.mutants import CATALOGUE
    from refmath.checks.specs import SPECS
    from refmath.claims import all_claims
    from refmath.conformance.layouts import LAYOUTS

    gen = _gen_pages()
    kinds = gen.kinds_page()
    for kind in SPECS:
        assert f"## `{kind}`" in kinds
        assert all(f"| `{c.id}` | {c.tier} |" in kinds for c in checks_for(kind))
    layouts = gen.layouts_page()
    assert all(f"## `{name}`" in layouts for name in LAYOUTS)
    mistakes = gen.mistakes_page()
    assert all(f"| `{m.name}` | `{m.kind}` |" in mistakes for m in CATALOGUE)
    claims = gen.claims_page()
    assert all(f"| `{cid}` |" in claims for cid in all_claims())
    results = gen.ROOT / "benchmarks" / "results"
    assert set(gen.RESULTS) == {p.name for p in results.iterdir()}  # each with its command


def test_the_site_builds_strictly(tmp_path):
    """`mkdocs build --strict`: every page, link and API entry resolves (a docstring that
    mkdocstrings cannot parse, a broken link or a parameter documented under a wrong name
    fails the build)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                        str(tmp_path / "site")], cwd=root, capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert r.returncode == 0, r.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("index.html", "api/oracles/index.html", "api/torch/index.html",
                 "generated/kinds/index.html", "generated/claims/index.html",
                 "libraries/cleanrl/index.html"):
        assert (site / page).is_file(), page
    oracles = (site / "api" / "oracles" / "index.html").read_text()
    assert "length_adaptive_gae" in oracles and "next_values" in oracles
