"""Smoke test of the benchmark sections (bench/): each runs in quick mode on tiny sizes and returns a
markdown section with its heading, a table with the expected rows and finite numbers.

Benchmarks print numbers and tests assert behaviour (STYLE.md 12): nothing here checks a timing.
Needs Fashion-MNIST (skipped without it, except in CI).
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest

import bench.__main__ as runner
from bench import (
    bench_disentanglement,
    bench_families,
    bench_history,
    bench_projection,
    bench_quality,
    bench_scaling,
    bench_train,
    report,
)
from bench.common import numbers, table_rows
from bench.registry import BENCHMARKS

TINY_CODES = {"codes_n_train": 2_000, "codes_epochs": 1}


def check_section(markdown: str, title: str, expected_rows: list[str]) -> list[list[str]]:
    """Heading, a reproduce line, no missing or non-finite values, and a row starting with each expected text."""
    assert markdown.startswith(title + "\n")
    assert "Reproduce alone: `python -m bench " in markdown
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


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_training_section():
    s = bench_train.Settings(epochs=1, repeats=1, n_train=2_000, n_test=500)
    md = bench_train.run(quick=True, settings=s)
    rows = check_section(md, bench_train.TITLE, ["reference", "`vae.train`"])
    assert len([r for r in rows if r[0].startswith("`vae.train`")]) == len(s.arms)
    assert [r[1] for r in rows] == ["128"] + [str(b) for b, _ in s.arms]  # batch column


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_quality_section():
    s = bench_quality.Settings(short_s=1.0, long_s=2.0, iwae_k=10, iwae_n=100, n_train=2_000, n_test=500)
    md = bench_quality.run(quick=True, settings=s)
    rows = check_section(md, bench_quality.TITLE, ["MLP", "conv", "raw pixels", "PCA of the pixels"])
    assert len([r for r in rows if r[0].startswith(("MLP", "conv"))]) == 4  # two budgets per model
    assert "K = 10" in md


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_projection_section():
    s = bench_projection.Settings(
        sizes=(800,), cold=False, n_transform=200, trust_n=300, grid=8, clicks=50, **TINY_CODES
    )
    md = bench_projection.run(quick=True, settings=s)
    expected = ["UMAP, cached, 800 codes", "PCA, same process, 800 codes", "umap-learn `inverse_transform`"]
    check_section(md, bench_projection.TITLE, expected + ["our grid lookup", "800"])


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_scaling_section():
    s = bench_scaling.Settings(sizes=(500, 1_000), epochs=2, grid=8, warmup_n=300, **TINY_CODES)
    md = bench_scaling.run(quick=True, settings=s)
    rows = check_section(md, bench_scaling.TITLE, ["500", "1,000"])
    assert len(rows) == 2


def test_the_registry_names_every_benchmark_module_once(capsys):
    """Every bench/bench_*.py is registered (so `python -m bench --all` regenerates the whole report), once."""
    files = {f"bench.{p.stem}" for p in Path(runner.__file__).parent.glob("bench_*.py")}
    modules = [b.module for b in BENCHMARKS]
    assert sorted(modules) == sorted(files) and len(set(modules)) == len(modules)
    assert runner.main(["--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [b.name for b in BENCHMARKS]


def fake_section(title: str, figure: str):
    markdown = f"## {title}\n\n| what | value |\n| --- | ---: |\n| x | {figure} |\n"
    return lambda name, quick, **extra: (markdown, 2.0, 0.01)


def test_regenerating_one_section_leaves_every_other_byte_identical(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    shutil.copytree(report.DOCS / report.SECTIONS, docs / report.SECTIONS)
    before = {p.name: p.read_bytes() for p in (docs / report.SECTIONS).glob("*.md")}
    assert len(before) == len(BENCHMARKS)
    monkeypatch.setattr(runner, "run_one", fake_section("Training throughput", "123"))
    assert runner.main(["training", "--docs", str(docs)]) == 0
    after = {p.name: p.read_bytes() for p in (docs / report.SECTIONS).glob("*.md")}
    assert {k for k in before if before[k] != after[k]} == {"training.md"}
    training = after["training.md"].decode()
    assert "| x | 123 |" in training and "_Measured " in training and "commit " in training
    assembled = (docs / report.REPORT).read_text()
    positions = [assembled.index(after[f"{b.name}.md"].decode()) for b in BENCHMARKS]  # each section, whole
    assert positions == sorted(positions)  # in the registry's order


def test_a_failed_benchmark_keeps_its_old_section_and_the_exit_status_says_so(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    monkeypatch.setattr(runner, "run_one", fake_section("Drag", "7"))
    assert runner.main(["drag", "--docs", str(docs)]) == 0
    old = (docs / report.SECTIONS / "drag.md").read_bytes()

    def broken(name, quick, **extra):
        raise RuntimeError("no browser")

    monkeypatch.setattr(runner, "run_one", broken)
    assert runner.main(["drag", "training", "--docs", str(docs)]) == 1
    assert (docs / report.SECTIONS / "drag.md").read_bytes() == old
    assert "Not measured yet: `python -m bench training`" in (docs / report.REPORT).read_text()


def test_the_stamp_names_the_machine_versions_and_commit():
    text = report.stamp(wall_s=90.0, pressure=0.05)
    for needle in ("Measured", "CPUs", "RAM", "torch", "numpy", "umap-learn", "streamlit", "commit", "1.5 min"):
        assert needle in text


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_history_section():
    s = bench_history.Settings(epochs=1, repeats=1, n_train=2_000, probe_size=300)
    md = bench_history.run(quick=True, settings=s)
    check_section(
        md, bench_history.TITLE, ["history off", "history on", "PCA per frame, aligned", "UMAP per frame, started"]
    )


@pytest.mark.slow
def test_disentanglement_section():
    s = bench_disentanglement.Settings(
        count=1200,
        epochs=1,
        arms=(("β-TCVAE, β = 6", 6.0, 0.0, "beta-tcvae"),),
        seeds=(0,),
        max_train=200,
        max_test=150,
        dci_trees=10,
    )
    md = bench_disentanglement.run(settings=s)
    names = ["β-TCVAE, β = 6", "the factors themselves", "the factors, randomly"]
    rows = check_section(md, bench_disentanglement.TITLE, names)
    exact = next(r for r in rows if r[0].startswith("the factors themselves"))
    assert float(exact[-2]) > 0.9  # DCI informativeness of the factors themselves


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_families_section():
    s = bench_families.Settings(epochs=1, seeds=(0,), n_train=2_000, subset=100, eval_k=10)
    md = bench_families.run(settings=s)
    names = ["VAE (baseline)", "IWAE training, K = 5", "β-TCVAE, β = 6", "VampPrior, 500 pseudo-inputs"]
    rows = check_section(md, bench_families.TITLE, names)
    iwae_bound, elbo = (float(v) for v in rows[0][1:3])
    assert iwae_bound <= elbo + 1e-6  # the K-sample bound is at least as tight as the ELBO on the same model
