"""Scaling with the number of examples: training time per epoch and map time, 5k -> 70k.

    python -m bench scaling [--quick]

Training: ``vae.train`` with the default MLP (784-400-20, batch 128, Adam 1e-3, 2 threads) on the
first N Fashion-MNIST images (training images, then test images past 60,000); the time per epoch is
the median over the epochs after the first. Projection: in one fresh process whose umap kernels are
compiled first (a warm server), a seeded UMAP fit of N latent means (the default MLP VAE after 3
epochs), the inverse grid the Explore page builds with each map, and PCA. Asserts nothing.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass

import numpy as np

from bench import common

TITLE = "## Scaling: training time per epoch and map time vs number of examples"


@dataclass(frozen=True)
class Settings:
    """What the section runs; ``QUICK`` and the smoke test use smaller ones."""

    sizes: tuple[int, ...] = (5_000, 10_000, 30_000, 70_000)
    epochs: int = 3
    grid: int | None = 48  # ui/cache.py INVERSE_GRID; None: no inverse grid
    codes_n_train: int | None = None
    codes_epochs: int = 3
    warmup_n: int = 4_096  # >= 4,096 compiles umap's approximate-neighbour path too


FULL = Settings()
QUICK = Settings(sizes=(2_000, 5_000, 10_000), epochs=2, grid=16, codes_n_train=10_000)


def epoch_seconds(n: int, epochs: int) -> float:
    """Median seconds per epoch of ``vae.train`` on the first ``n`` images, after the first epoch."""
    import torch

    from vae.config import DataConfig, TrainConfig
    from vae.runs.folder import new_run
    from vae.train import Trainer

    ds = common.load_fashion()
    x = torch.cat([ds.x_train, ds.x_test])[:n]  # (n, 1, 28, 28)
    y = torch.cat([ds.y_train, ds.y_test])[:n]
    sub = dataclasses.replace(ds, x_train=x, y_train=y, x_test=ds.x_test[:1000], y_test=ds.y_test[:1000])
    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as root:
        cfg = TrainConfig(epochs=epochs, batch_size=128, lr=1e-3)
        trainer = Trainer(new_run(root, "scale", sub, DataConfig(name=common.FASHION), train_cfg=cfg), dataset=sub)
        trainer.callback = lambda kind, rec: seconds.append(rec["epoch_seconds"]) if kind == "epoch" else None
        status = trainer.run()
    if len(seconds) < epochs:
        raise RuntimeError(f"Training on {n:,} images failed: {status.get('message')}")
    return common.median(seconds[1:] or seconds)


def child(spec: dict) -> dict:
    """In a fresh process: compile umap once, then time a fit (and grid) per size, and PCA."""
    from vae import projection
    from vae.projection import LatentProjector

    Z = np.load(spec["codes"])

    def warm_up() -> None:  # import and compile umap's kernels once, as a running server has
        projection.import_umap()
        LatentProjector(method="umap", n_epochs=20).fit(Z[: spec["warmup_n"]])

    warmup_s, _ = common.timed(warm_up)
    out: dict = {"warmup_s": warmup_s, "sizes": {}}
    for n in spec["sizes"]:
        out["sizes"][str(n)] = map_times(Z[:n], spec.get("grid"))
    return out


def map_times(codes: np.ndarray, grid: int | None) -> dict:
    """Seconds of a seeded UMAP fit of ``codes``, its inverse grid (when ``grid``) and a PCA fit (median of 5)."""
    from vae.projection import LatentProjector

    r: dict = {}
    r["umap_s"], proj = common.timed(lambda: LatentProjector(method="umap", random_state=0).fit(codes))
    if grid:
        r["grid_s"], _ = common.timed(lambda: proj.fit_inverse_grid(grid))
    r["pca_s"] = common.median_time(lambda: LatentProjector(method="pca").fit(codes))
    return r


def run(quick: bool = False, settings: Settings | None = None) -> str:
    """The scaling section as markdown."""
    s = settings or (QUICK if quick else FULL)
    if not common.fashion_available():
        return common.no_fashion(TITLE)
    train_s = {}
    for n in s.sizes:
        common.log(f"scaling: training on {n:,} images, {s.epochs} epochs")
        train_s[n] = epoch_seconds(n, s.epochs)
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        common.log("scaling: latent codes")
        codes = str(common.save_codes(tmp, s.codes_n_train, s.codes_epochs))
        n_codes = len(np.load(codes, mmap_mode="r"))
        sizes = [n for n in s.sizes if n <= n_codes]
        common.log(f"scaling: projections of {', '.join(f'{n:,}' for n in sizes)} codes (one fresh process)")
        spec = {"codes": codes, "sizes": sizes, "grid": s.grid, "warmup_n": s.warmup_n}
        proj = common.spawn_child(__file__, spec)
    return _markdown(s, train_s, proj)


def _markdown(s: Settings, train_s: dict, proj: dict) -> str:
    d = common.duration
    rows = []
    for n, sec in train_s.items():
        p = proj["sizes"].get(str(n), {})
        umap_s, grid_s = p.get("umap_s"), p.get("grid_s")
        ready = umap_s + grid_s if umap_s is not None and grid_s is not None else None
        rows.append(
            [
                f"{n:,}",
                d(sec),
                common.fmt(n / sec, 0),
                d(umap_s),
                d(grid_s),
                d(ready),
                d(p.get("pca_s")),
            ]
        )
    grid = f"{s.grid}×{s.grid}" if s.grid else "none"
    headers = [
        "examples N",
        "training, s per epoch",
        "examples/s",
        "UMAP fit (warm process)",
        f"inverse grid {grid}",
        "map ready (fit + grid)",
        "PCA fit",
    ]
    return "\n".join(
        [
            TITLE,
            "",
            f"Training: `vae.train`, default MLP, batch 128, 2 threads, median epoch after the first of "
            f"{s.epochs}. Maps: seeded UMAP with default parameters (umap-learn uses 500 epochs up to 10,000 points "
            f"and 200 above, hence the bend), in one process after a warm-up fit "
            f"({d(proj['warmup_s'])} including import), plus the inverse grid the Explore page builds.",
            "",
            common.table(headers, rows),
            "",
            "Baselines: the smallest N in the same table (time should grow about linearly in N); PCA in the same "
            "process for the maps.",
            "",
            "Reproduce alone: `python -m bench scaling`",
            "",
        ]
    )


if __name__ == "__main__":
    common.main(run, __doc__, child)
