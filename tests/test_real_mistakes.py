"""The diagnosis measured on real mistakes from public threads (tests/real_mistakes.py),
written in their projects' styles, apart from the catalogue that recognises them: every one is
rejected, has a where line, and the share whose first named cause is the right one is held to
its floor (the docs report the measurement: benchmarks/results/real-mistakes.md, written by
`python tests/real_mistakes.py`)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from real_mistakes import CATALOGUE, named_right, run  # noqa: E402


@pytest.fixture(scope="module")
def results():
    return [(entry, run(entry)) for entry in CATALOGUE]


def test_every_real_mistake_is_rejected_with_a_where_line(results):
    for entry, result in results:
        assert result.status == "failed", entry.source
        assert result.pattern, (entry.source, result.message)


def test_the_right_cause_is_named_first(results):
    right = [entry.source for entry, result in results if named_right(entry, result)]
    wrong = [(entry.source, entry.cause, result.causes) for entry, result in results
             if not named_right(entry, result)]
    print(f"\nreal mistakes named right: {len(right)} of {len(results)}; not: {wrong}")
    assert len(right) >= len(results) - 1, wrong  # the floor


def test_the_readme_reports_the_measured_share(results):
    """The README's figure is the measurement, not a number typed once."""
    right = sum(named_right(entry, result) for entry, result in results)
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"**{right} of {len(results)}** are named right" in readme
