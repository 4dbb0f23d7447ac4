"""Smoke test of the benchmark sections (bench/): each runs in quick mode on tiny sizes and returns a
markdown section with its heading, a table with the expected rows and finite numbers.

Benchmarks print numbers and tests assert behaviour (STYLE.md 12): nothing here checks a timing.
Needs Fashion-MNIST (skipped without it, except in CI).
"""

from __future__ import annotations

import math
import re

import pytest

from bench import (
    bench_disentanglement,
    bench_history,
    bench_projection,
    bench_quality,
    bench_scaling,
    bench_train,
    run_all,
)
from bench.common import numbers, table_rows

TINY_CODES = {"codes_n_train": 2_000, "codes_epochs": 1}


def check_section(markdown: str, title: str, expected_rows: list[str]) -> list[list[str]]:
    """Heading, a reproduce line, no missing or non-finite values, and a row starting with each expected text."""
    assert markdown.startswith(title + "\n")
    assert "Reproduce alone: `python bench/" in markdown
    assert "Baseline" in markdown
    assert "n/a" not in markdown
    assert not re.search(r"\b(nan|inf)\b", markdown, re.IGNORECASE)
    rows = table_rows(markdown)
    for expected in expected_rows:
        assert any(row[0].startswith(expected) for row in rows), f"no row starting {expected!r} in\n{markdown}"
    for row in rows:
        values = [v for cell in row[1:] for v in numbers(cell)]
        assert values and all(math.isfinite(v) for v in values), row
    return rows


@pytest.mark.usefixtures("fashion_mnist")
def test_training_section():
    s = bench_train.Settings(epochs=1, repeats=1, n_train=2_000, n_test=500)
    md = bench_train.run(quick=True, settings=s)
    rows = check_section(md, bench_train.TITLE, ["reference", "`vae.train`"])
    assert len([r for r in rows if r[0].startswith("`vae.train`")]) == len(s.arms)
    assert [r[1] for r in rows] == ["128"] + [str(b) for b, _ in s.arms]  # batch column


@pytest.mark.usefixtures("fashion_mnist")
def test_quality_section():
    s = bench_quality.Settings(short_s=1.0, long_s=2.0, iwae_k=10, iwae_n=100, n_train=2_000, n_test=500)
    md = bench_quality.run(quick=True, settings=s)
    rows = check_section(md, bench_quality.TITLE, ["MLP", "conv", "raw pixels", "PCA of the pixels"])
    assert len([r for r in rows if r[0].startswith(("MLP", "conv"))]) == 4  # two budgets per model
    assert "K = 10" in md


@pytest.mark.usefixtures("fashion_mnist")
def test_projection_section():
    s = bench_projection.Settings(
        sizes=(800,), cold=False, n_transform=200, trust_n=300, grid=8, clicks=50, **TINY_CODES
    )
    md = bench_projection.run(quick=True, settings=s)
    expected = ["UMAP, cached, 800 codes", "PCA, same process, 800 codes", "umap-learn `inverse_transform`"]
    check_section(md, bench_projection.TITLE, expected + ["our grid lookup", "800"])


@pytest.mark.usefixtures("fashion_mnist")
def test_scaling_section():
    s = bench_scaling.Settings(sizes=(500, 1_000), epochs=2, grid=8, warmup_n=300, **TINY_CODES)
    md = bench_scaling.run(quick=True, settings=s)
    rows = check_section(md, bench_scaling.TITLE, ["500", "1,000"])
    assert len(rows) == 2


def test_run_all_skips_a_missing_optional_section(monkeypatch):
    monkeypatch.setitem(run_all.SECTIONS, "drag", "bench.bench_no_such_module")
    parts, timings, ok = run_all.run_sections(["drag"], quick=True)
    assert ok and timings == []
    assert parts[0].startswith("## Drag\n") and "does not exist" in parts[0]


def test_run_all_header_names_the_machine_and_versions():
    text = run_all.header(quick=True, wall_s=90.0, timings=[("training", 30.0), ("quality", 60.0)], pressure=0.05)
    for needle in ("# Benchmarks", "machine", "RAM", "torch", "numpy", "umap-learn", "streamlit", "commit", "1.5 min"):
        assert needle in text


@pytest.mark.usefixtures("fashion_mnist")
def test_history_section():
    s = bench_history.Settings(epochs=1, repeats=1, n_train=2_000, probe_size=300)
    md = bench_history.run(quick=True, settings=s)
    check_section(md, bench_history.TITLE, ["history off", "history on", "PCA per frame, aligned"])


def test_disentanglement_section():
    s = bench_disentanglement.Settings(count=1200, epochs=1, arms=(("β = 4", 4.0, 0.0),), max_train=200, max_test=150)
    md = bench_disentanglement.run(settings=s)
    rows = check_section(md, bench_disentanglement.TITLE, ["β = 4", "the factors themselves", "the factors, randomly"])
    exact = next(r for r in rows if r[0].startswith("the factors themselves"))
    assert float(exact[-2]) > 0.9  # DCI informativeness of the factors themselves
