"""The report: each benchmark's section file (docs/benchmarks/NAME.md, stamped with its date, machine, versions
and commit) and docs/BENCHMARKS.md assembled from them, so re-running one never touches another's figures."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from bench.registry import BENCHMARKS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SECTIONS = "benchmarks"  # docs/benchmarks/NAME.md
REPORT = "BENCHMARKS.md"
GENERATED = "<!-- Written by `python -m bench {name}`; do not edit by hand. -->"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def cpu_pressure_total() -> float | None:
    """Microseconds some task waited for a CPU since boot (Linux PSI), or None where unavailable."""
    try:
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some"):
                return float(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_commit() -> str:
    """The short hash of HEAD, with "+ local changes" when the tree differs (read-only git calls)."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=ROOT, env=env, capture_output=True)
        return head + (" + local changes" if dirty.returncode == 1 else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def stamp(wall_s: float, pressure: float | None) -> str:
    """One line: when, where, with what and at which commit a section was measured."""
    cpus = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    versions = ", ".join(
        f"{name} {version(dist)}"
        for name, dist in (("torch", "torch"), ("numpy", "numpy"), ("umap-learn", "umap-learn"),
                           ("streamlit", "streamlit"), ("scikit-learn", "scikit-learn"))
    )  # fmt: skip
    busy = f"; CPU contention {100 * pressure:.0f} % (Linux PSI, near 0 when quiet)" if pressure is not None else ""
    return (
        f"_Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {cpu_model()}, {cpus} CPUs ({usable} usable), "
        f"{ram_gib()} RAM, Python {platform.python_version()}; {versions}; commit {git_commit()}; "
        f"{wall_s / 60:.1f} min{busy}._"
    )


def section_text(name: str, markdown: str, wall_s: float, pressure: float | None) -> str:
    """The section file: a generated-by line, the heading, the stamp, then the benchmark's own markdown."""
    heading, _, body = markdown.strip().partition("\n")
    return f"{GENERATED.format(name=name)}\n{heading}\n\n{stamp(wall_s, pressure)}\n{body.rstrip()}\n"


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_section(name: str, markdown: str, wall_s: float, pressure: float | None, docs: Path = DOCS) -> Path:
    path = docs / SECTIONS / f"{name}.md"
    atomic_write(path, section_text(name, markdown, wall_s, pressure))
    return path


def assemble(docs: Path = DOCS) -> Path:
    """docs/BENCHMARKS.md: a contents list, then every section file in the registry's order, byte for byte."""
    parts, contents = [], []
    for b in BENCHMARKS:
        path = docs / SECTIONS / f"{b.name}.md"
        if path.is_file():
            text = path.read_text(encoding="utf-8")
        else:
            text = f"## {b.about.capitalize()}\n\nNot measured yet: `python -m bench {b.name}`.\n"
        parts.append(text.rstrip("\n") + "\n")
        contents.append(f"- `{b.name}`: {b.about} ([section]({SECTIONS}/{b.name}.md))")
    head = (
        "# Benchmarks\n\n"
        f"Assembled by `python -m bench` from the section files in `docs/{SECTIONS}/`, one per benchmark, each "
        "stamped with when, where and at which commit it was measured; do not edit by hand. "
        "`python -m bench NAME` re-runs one section and leaves the others as they are.\n\n" + "\n".join(contents) + "\n"
    )
    out = docs / REPORT
    atomic_write(out, head + "\n" + "\n".join(parts))
    return out
