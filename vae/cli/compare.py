"""``python -m vae compare RUN_A RUN_B``: how alike two runs' latent spaces are (``vae.analysis.compare``)."""

from __future__ import annotations

from .common import resolve_run


def add_compare_parser(sub) -> None:
    c = sub.add_parser("compare", help="how alike two runs' latent spaces are: CKA, neighbours kept, Procrustes")
    c.add_argument("run_a")
    c.add_argument("run_b")
    c.add_argument("--split", default="test", choices=["train", "test"], help="whose items are compared")
    c.add_argument("--max-points", type=int, default=None, help="at most this many items (a fixed-seed sample)")
    c.add_argument("--json", action="store_true")


def cmd_compare(args) -> dict:
    from ..analysis.compare import compare_runs

    if args.max_points is not None and args.max_points < 11:
        raise ValueError(f"--max-points must be at least 11 (10 neighbours each); got {args.max_points}.")
    run_a, run_b = resolve_run(args, args.run_a), resolve_run(args, args.run_b)
    out = compare_runs(run_a, run_b, args.split, args.max_points)
    return {"run_a": run_a.name, "run_b": run_b.name, **out}


def print_compare(out: dict) -> None:
    print(f"{out['run_a']} against {out['run_b']}, {out['n_items']:,} {out['split']} items:")
    print(f"  linear CKA              {out['cka']:.3f}   (1: the same up to rotation and scale)")
    print(f"  10-NN Jaccard           {out['knn_jaccard']:.3f}   (1: every item keeps its neighbours)")
    print(f"  Procrustes disparity    {out['procrustes_disparity']:.3f}   (0: the same shape)")
    print(f"  linear map A → B, R²    {out['linear_map_r2']:.3f}")
    for field, (a, b) in out["config_diff"].items():
        print(f"  {field}: {a} → {b}")


COMPARE_COMMANDS = {"compare": cmd_compare}
