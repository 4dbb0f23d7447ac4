"""Training with several processes on this machine: torchrun 2 processes × 1 thread against 1 process × 2 threads.

    python -m bench ddp [--quick]

The same run (Fashion-MNIST, default MLP; quick: digits) trained for a few epochs by `python -m vae train`
with 2 torch threads (the baseline, in the same run), and by `torchrun --nproc_per_node=2 -m vae train` with
1 thread each at half the batch (the same global batch of 128). Each arm runs twice, alternating; examples/s
is the median over epochs of each epoch's training loop (as the run's own metrics record it), and the test
−ELBO after the last epoch shows both train the same model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import common
from harness.serving import free_port
from vae.runs import folder as rf

COMMAND = "python -m bench ddp"


def arm(root: Path, name: str, procs: int, data: str, epochs: int) -> dict:
    """Train one run; its median examples/s over epochs, wall seconds and final test −ELBO."""
    threads, batch = (2, 128) if procs == 1 else (1, 128 // procs)
    args = ["-m", "vae", "--runs-dir", str(root), "train", "--data", data, "--epochs", str(epochs),
            "--batch", str(batch), "--threads", str(threads), "--name", name, "--json"]  # fmt: skip
    if procs > 1:
        args = ["-m", "torch.distributed.run", f"--nproc_per_node={procs}", "--master_addr=127.0.0.1",
                f"--master_port={free_port()}", *args]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(common.ROOT), "OMP_NUM_THREADS": str(threads)}
    seconds, out = common.timed(lambda: subprocess.run([sys.executable, *args], cwd=common.ROOT, env=env,
                                                       capture_output=True, text=True))  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"{name} failed: {out.stderr[-2000:]}")
    epochs_seen = [m for m in rf.read_metrics(root / name) if m.get("type") == "epoch"]
    return {
        "examples_per_s": common.median([m["examples_per_s"] for m in epochs_seen]),
        "wall_s": seconds,
        "neg_elbo": -epochs_seen[-1]["test_elbo"],
    }


def run(quick: bool = False) -> str:
    data, epochs = ("digits", 20) if quick else (common.FASHION, 3)
    if not quick and not common.fashion_available():
        return common.no_fashion("Training with several processes")
    results: dict[str, list[dict]] = {"1 process × 2 threads (baseline)": [], "torchrun 2 processes × 1 thread": []}
    with tempfile.TemporaryDirectory(prefix="le-ddp-") as tmp:
        for r in range(2):
            order = [1, 2] if r % 2 == 0 else [2, 1]
            for procs in order:
                key = list(results)[procs - 1]
                common.log(f"ddp: round {r + 1}, {key}")
                results[key].append(arm(Path(tmp), f"p{procs}-r{r}", procs, data, epochs))
    base = common.median([x["examples_per_s"] for x in results[list(results)[0]]])
    rows = []
    for key, rs in results.items():
        rate = common.median([x["examples_per_s"] for x in rs])
        wall = common.median([x["wall_s"] for x in rs])
        elbo = common.median([x["neg_elbo"] for x in rs])
        rows.append([key, f"{rate:,.0f}", f"{rate / base:.2f}×", common.fmt(wall, 1), common.fmt(elbo, 2)])
    head = ["training", "examples/s (median of epochs)", "vs baseline", "wall s per run", "test −ELBO after"]
    return (
        "## Training with several processes: torchrun × 1 thread vs 1 process × 2 threads\n\n"
        f"{data}, default MLP, {epochs} epochs, global batch 128, 2 runs of each arm alternating, on this "
        "2-core machine. Baseline: one process with 2 torch threads, in the same run.\n\n"
        + common.table(head, rows)
        + f"\n\nReproduce alone: `{COMMAND} [--quick]`\n"
    )


if __name__ == "__main__":
    common.main(run, __doc__)
