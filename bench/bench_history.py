"""The latent map's history: what recording it costs the training, and how still the aligned frames are.

    python -m bench history [--quick]

Training: ``vae.train`` with the default MLP (784-400-20, batch 128, Adam 1e-3, 2 threads) on Fashion-MNIST,
with the history on (``probe_size`` 2,000: a frame before training and after each epoch) and off
(``probe_size`` 0), alternating (on, off, on, off, ...) so the machine's drift falls on both; examples/s is the
run's own per-epoch figure, median over epochs and repeats. Alignment: on the frames the history-on runs wrote,
the mean distance an item moves between consecutive frames as a fraction of the map's diameter, PCA per frame
aligned by orthogonal Procrustes (what the Train page shows) against PCA per frame fitted independently, and the
same for UMAP: each frame started from the previous layout (the Train page's UMAP replay) against each frame
fitted on its own. Asserts nothing.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import common

TITLE = "## The latent map's history: its cost to training, and aligned frames"


@dataclass(frozen=True)
class Settings:
    """What the section runs; ``QUICK`` and the smoke test use smaller ones."""

    epochs: int = 5
    repeats: int = 3
    n_train: int | None = None
    probe_size: int = 2000


FULL = Settings()
QUICK = Settings(epochs=2, repeats=1, n_train=10_000)


def train_once(root: Path, name: str, s: Settings, probe: int, ds, data_cfg) -> tuple[list[float], float, Path]:
    """One training; its per-epoch examples/s and the wall seconds it took."""
    from vae.config import TrainConfig
    from vae.runs import folder as rf
    from vae.runs.folder import new_run
    from vae.train import train

    run = new_run(root, name, ds, data_cfg, train_cfg=TrainConfig(epochs=s.epochs, probe_size=probe))
    t = time.perf_counter()
    status = train(run, dataset=ds)
    seconds = time.perf_counter() - t
    if status.get("state") != "finished":
        raise RuntimeError(f"the benchmark training did not finish: {status.get('message')}")
    rates = [m["examples_per_s"] for m in rf.read_metrics(run) if m.get("type") == "epoch"]
    return rates, seconds, run


def umap_rows(run_dir: Path, codes: list, moves: dict, seconds: dict) -> None:
    """The history's UMAP frames from the previous layout (``history.umap_layouts``) and fitted independently."""
    from vae.analysis import history
    from vae.projection import sequence

    sequence.umap_layout(codes[0][:300], sequence.pca2(codes[0][:300]))  # compile umap's code first, untimed
    t = time.perf_counter()
    moves["umap"].append(history.mean_displacement(history.umap_layouts(run_dir)))
    seconds["umap"].append((time.perf_counter() - t) / len(codes))
    t = time.perf_counter()
    moves["umap independent"].append(
        history.mean_displacement([sequence.umap_layout(c, sequence.pca2(c)) for c in codes])
    )
    seconds["umap independent"].append((time.perf_counter() - t) / len(codes))


def run(quick: bool = False, settings: Settings | None = None) -> str:
    """The section as markdown."""
    from vae.analysis import history

    s = settings or (QUICK if quick else FULL)
    if not common.fashion_available():
        return common.no_fashion(TITLE)
    ds, data_cfg = common.fashion(s.n_train)
    rates: dict[str, list[float]] = {"on": [], "off": []}
    walls: dict[str, list[float]] = {"on": [], "off": []}
    moves = {"aligned": [], "independent": [], "umap": [], "umap independent": []}
    seconds: dict[str, list[float]] = {k: [] for k in moves}
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        for rep in range(s.repeats):
            for arm, probe in (("on", s.probe_size), ("off", 0)):
                common.log(f"history: repeat {rep + 1}/{s.repeats}, history {arm}, {s.epochs} epochs")
                r, wall, run_dir = train_once(Path(tmp), f"{arm}-{rep}", s, probe, ds, data_cfg)
                rates[arm] += r
                walls[arm].append(wall)
                if arm == "on":
                    codes = [f.codes() for f in history.frames(run_dir)]
                    t = time.perf_counter()
                    moves["aligned"].append(history.mean_displacement(history.aligned_layouts(codes)))
                    seconds["aligned"].append((time.perf_counter() - t) / len(codes))
                    t = time.perf_counter()
                    moves["independent"].append(history.mean_displacement(history.independent_layouts(codes)))
                    seconds["independent"].append((time.perf_counter() - t) / len(codes))
                    if rep == 0:
                        first = (run_dir, codes)
        # UMAP once, after every training arm (its compiled code's threads must not share the CPU with them)
        umap_rows(*first, moves, seconds)
    on, off = common.median(rates["on"]), common.median(rates["off"])
    wall_on, wall_off = common.median(walls["on"]), common.median(walls["off"])
    rows = [
        ["history off (baseline)", common.fmt(off, 0), "—", common.fmt(wall_off, 1), "—"],
        [f"history on ({s.probe_size:,} test items a frame)", common.fmt(on, 0), f"{on / off:.3f}×",
         common.fmt(wall_on, 1), f"{wall_on / wall_off:.3f}×"],
    ]  # fmt: skip
    names = {
        "aligned": "PCA per frame, aligned to the previous (orthogonal Procrustes)",
        "independent": "PCA per frame, fitted independently (baseline)",
        "umap": "UMAP per frame, started from the previous layout and aligned to it",
        "umap independent": "UMAP per frame, each from its own PCA (baseline for UMAP)",
    }
    align = [[names[k], f"{common.median(moves[k]):.3f}", common.fmt(1000 * common.median(seconds[k]), 1)]
             for k in names if moves[k]]  # fmt: skip
    n = len(ds.x_train)
    return "\n".join(
        [
            TITLE,
            "",
            f"Fashion-MNIST, {n:,} training images, default MLP, {common.plural(s.epochs, 'epoch')}, "
            f"{common.plural(s.repeats, 'repeat')} of each arm, alternating.",
            "",
            common.table(["training", "examples/s (median of epochs)", "vs off", "wall s per run", "vs off"], rows),
            "",
            common.table(
                ["frames", "mean move between frames (fraction of the map's diameter)", "ms a frame"], align
            ),  # fmt: skip
            "",
            "Examples/s times each epoch's loop; the wall time includes the frames (encoding the probe set, "
            "decoding the prior samples, writing the file). Baseline: the same training with the history off; "
            "for alignment, the same frames fitted independently "
            "(a PCA's axes can flip sign or swap from one frame to the next). The UMAP rows (the Train page's "
            "UMAP replay, fitted by the map worker) are measured once, on the first repeat's frames, after every "
            "training arm, in this process once UMAP's code is compiled.",
            "",
            "Reproduce alone: `python -m bench history [--quick]`",
            "",
        ]
    )


if __name__ == "__main__":
    common.main(run, __doc__)
