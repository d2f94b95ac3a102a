"""The diagnosis measured on real mistakes from public threads (tests/real_mistakes.py),
written in their projects' styles, apart from the catalogue that recognises them: every one is
rejected, has a where line, and the share whose first named cause is the right one is held to
its floor (the docs report the measurement: benchmarks/results/real-mistakes.md, written by
`python tests/real_mistakes.py`)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from real_mistakes import CATALOGUE, run  # noqa: E402


@pytest.fixture(scope="module")
def results():
    return [(entry, run(entry)) for entry in CATALOGUE]


def test_every_real_mistake_is_rejected_with_a_where_line(results):
    for entry, result in results:
        assert result.status == "failed", entry.source
        assert result.pattern, (entry.source, result.message)


def test_the_right_cause_is_named_first(results):
    right = [entry.source for entry, result in results if result.causes[:1] == [entry.cause]]
    wrong = [(entry.source, entry.cause, result.causes) for entry, result in results
             if result.causes[:1] != [entry.cause]]
    print(f"\nreal mistakes named right: {len(right)} of {len(results)}; not: {wrong}")
    assert len(right) >= len(results) - 1, wrong  # the floor
