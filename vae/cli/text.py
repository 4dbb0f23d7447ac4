"""How the command line prints a command's result for a person (``--json`` prints the same data as JSON)."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # escapes, newlines: a folder name must not drive the terminal


def shown(value: object) -> str:
    """``value`` as text a terminal prints as it is: control characters (ESC, newline...) as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def print_table(rows: list[dict], cols: list[str]) -> None:
    cells = [
        [("" if r.get(c) is None else f"{r[c]:.2f}" if isinstance(r.get(c), float) else shown(r[c])) for c in cols]
        for r in rows
    ]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def print_human(command: str, out) -> None:
    if command == "compare":
        from .compare import print_compare

        print_compare(out)
    elif command == "runs":
        if out:
            print_table(out, ["name", "state", "dataset", "arch", "latent_dim", "epoch", "epochs", "test_elbo"])
            for r in out:
                if r["state"] == "broken":
                    print(f"{shown(r['name'])} is broken: {shown(r['message'])}")
        else:
            print("No runs yet: `python -m vae train` makes one.")
    elif command == "datasets" and isinstance(out, list):
        for d in out:
            mark = "yes" if d["available"] else "no "
            print(f"{d['name']:<14} {mark}  {d['description']}")
            print(f"{'':<14}      {d['where'] if d['available'] else d.get('how_to_get', '')}")
    elif command == "history":
        print(f"{out['run']}: {len(out['frames'])} frames of {out['probe_items']:,} {out['split']} items "
              f"({out['method'].upper()} layouts; disparity: against the previous frame, 0 = only turned)")  # fmt: skip
        for f in out["frames"]:
            elbo = f"{f['test_elbo']:.2f}" if f["test_elbo"] is not None else "—"
            moved = f"{f['disparity']:.4f}" if f.get("disparity") is not None else "—"
            print(f"  epoch {f['epoch']:7.2f}  step {f['step']:>8,}  test ELBO {elbo}  disparity {moved}")
        if out.get("gif"):
            print(f"animation written to {out['gif']}")
    elif command == "posterior":
        label = "" if out["label"] is None else f" (label {out['label']})"
        print(f"{out['run']}: q(z|x) of {out['split']} item #{out['item']}{label}")
        rows = [{"dim": f"z{d}", "μ": m, "σ": s} for d, (m, s) in enumerate(zip(out["mu"], out["sigma"], strict=True))]
        print_table(rows, ["dim", "μ", "σ"])
        print(f"{len(out['samples'])} samples of it: --json prints them")
    elif command == "evaluate":
        print(f"run {out['run']} on {out['n_test']} test items:")
        print(
            f"  test -ELBO            {-out['test_elbo']:.2f} nats "
            f"(recon {out['test_recon']:.2f}, KL {out['test_kl']:.2f})"
        )
        if "iwae_ll" in out:
            print(f"  IWAE -log p(x), K={out['iwae_k']:<4} {-out['iwae_ll']:.2f} nats")
        print(f"  active units          {out['active_units']} of {out['latent_dim']}")
        print(f"  reconstruction MSE    {out['recon_mse']:.3f}")
        if "knn_accuracy" in out:
            print(f"  {out['knn_k']}-NN accuracy (latent means) {100 * out['knn_accuracy']:.1f} %")
        if "disentanglement" in out:
            from ..analysis.disentanglement import KEYS

            scores = out["disentanglement"]
            print(f"  disentanglement ({', '.join(scores['factors'])}; 0 to 1, higher is better):")
            for key in KEYS:
                value = scores.get(key)
                print(f"    {key:<22} {'—' if value is None else f'{value:.3f}'}")
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
