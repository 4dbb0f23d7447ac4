"""The benchmarks: one registry (bench/registry.py), each writing its own section of docs/BENCHMARKS.md.

python -m bench --list               what there is
python -m bench training drag        run these two, write their sections, assemble the report
python -m bench --all [--quick]      every benchmark, one after the other
"""
