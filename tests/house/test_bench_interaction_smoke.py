"""Smoke test of bench/bench_interaction.py: a tiny quick run (digits, 1 interaction, 2 concurrent sessions)
returns its markdown section with every table filled with finite numbers.

Benchmarks print numbers and tests assert behaviour (STYLE.md 12): no timing is checked here. Needs
Debian's Chromium (skipped without it, except in CI, where it must exist).
"""

from __future__ import annotations

import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench import bench_interaction
from bench.common import numbers, table_rows

pytestmark = pytest.mark.e2e

TITLE = "## Interaction in headless Chromium"


@pytest.fixture(scope="module")
def markdown() -> str:
    if not Path(bench_interaction.CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    # In a thread of its own: the benchmark runs asyncio, and the e2e tests' sync Playwright may hold this
    # thread's event loop when both run in one pytest session.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(bench_interaction.run, quick=True, interactions=1, contexts=2).result()


def test_quick_run_fills_every_table(markdown):
    assert markdown.startswith(TITLE + "\n")
    assert "Reproduce alone: `python -m bench interaction [--quick]`" in markdown
    assert markdown.count("Baseline:") == 3  # one per table
    assert not re.search(r"\b(nan|inf)\b", markdown, re.IGNORECASE)
    rows = table_rows(markdown)
    firsts = [row[0] for row in rows]
    for expected in ("open Explore in a new tab", "then, in that tab, choose", "click a point", "Decode: slider step"):
        assert any(f.startswith(expected) for f in firsts), f"no row starting {expected!r} in\n{markdown}"
    assert any(f.startswith("2, each in its own browser context") for f in firsts)
    assert any(f.startswith("the same 2, decoding in the browser") for f in firsts)
    for row in rows:
        values = [v for cell in row[1:] for v in numbers(cell)]
        assert values and all(math.isfinite(v) for v in values), row
        assert "–" not in row, f"a row without measurements: {row}"


def test_quick_run_counts_what_it_asked_for(markdown):
    rows = {row[0]: row for row in table_rows(markdown)}
    page_load = next(row for first, row in rows.items() if first.startswith("open Explore"))
    assert page_load[2] == "1"  # n: the one page load asked for was timed (the first, untimed, warms the caches)
    load = next(row for first, row in rows.items() if first.startswith("2, each"))
    assert 1 <= int(load[2]) <= 2  # two sessions x one step (a step that shows no new picture is not timed)
    in_browser = next(row for first, row in rows.items() if first.startswith("the same 2, decoding"))
    assert int(in_browser[2]) == 2  # every in-browser step redraws
