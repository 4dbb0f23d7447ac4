"""``python -m bench``: list the benchmarks, run some or all, and assemble docs/BENCHMARKS.md.

    python -m bench --list
    python -m bench NAME [NAME ...] [--baseline REV] [--trials N]
    python -m bench --all
    python -m bench --quick NAME        tiny budgets: prints the section, writes nothing (a smoke check)

Benchmarks run one after the other (never two heavy things at once on 2 cores). Each writes its section file
(docs/benchmarks/NAME.md) as soon as it ends, and the report is assembled from every section file, so a run
that fails or is stopped half-way keeps what it measured and never erases another benchmark's figures.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import sys
import time
import traceback
from pathlib import Path

from bench import common, report
from bench.registry import BENCHMARKS, BY_NAME


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.strip().splitlines()[0])
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (see --list)")
    p.add_argument("--list", action="store_true", help="name every benchmark and what it measures")
    p.add_argument("--all", action="store_true", help="run every benchmark, in the report's order")
    p.add_argument("--quick", action="store_true", help="tiny budgets: print the sections, write nothing")
    p.add_argument("--baseline", help="A/B benchmarks (first_map, fit_stall): also time the app at this revision")
    p.add_argument("--trials", type=int, help="A/B benchmarks: trials per app")
    p.add_argument("--docs", type=Path, default=report.DOCS, help="where the section files and report go")
    return p


def run_one(name: str, quick: bool, **extra) -> tuple[str, float, float | None]:
    """Run benchmark ``name``: its markdown, wall seconds and CPU contention (a share of the wall time, or None)."""
    module = importlib.import_module(BY_NAME[name].module)
    accepted = inspect.signature(module.run).parameters
    kwargs = {k: v for k, v in extra.items() if v is not None and k in accepted}
    t0, p0 = time.perf_counter(), report.cpu_pressure_total()
    with contextlib.redirect_stdout(sys.stderr):  # only markdown reaches stdout
        markdown = module.run(quick=quick, **kwargs)
    wall = time.perf_counter() - t0
    p1 = report.cpu_pressure_total()
    pressure = (p1 - p0) / 1e6 / wall if p0 is not None and p1 is not None and wall > 0 else None
    if not markdown.lstrip().startswith("## "):
        raise ValueError(f"{name}: a section must start with a '## ' heading")
    return markdown, wall, pressure


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for b in BENCHMARKS:
            print(f"{b.name:16} {b.about}{' (Chromium)' if b.browser else ''}")
        return 0
    names = [b.name for b in BENCHMARKS] if args.all else args.names
    unknown = [n for n in names if n not in BY_NAME]
    if unknown or not names:
        parser.error(f"name benchmarks among {', '.join(BY_NAME)} (or --all, --list); got {', '.join(unknown)}")
    ok = True
    for name in names:
        common.log(f"{name}: starting")
        try:
            markdown, wall, pressure = run_one(name, args.quick, baseline=args.baseline, trials=args.trials)
        except Exception:  # one failed benchmark must not lose the others' sections
            ok = False
            traceback.print_exc()
            common.log(f"{name}: failed; its section is left as it was")
            continue
        common.log(f"{name}: {wall:.0f} s")
        if args.quick:
            print(markdown)
        else:
            common.log(f"wrote {report.write_section(name, markdown, wall, pressure, args.docs)}")
    if not args.quick:
        common.log(f"wrote {report.assemble(args.docs)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
