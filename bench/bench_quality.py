"""Model quality under a wall-clock budget: the app's default MLP and conv VAEs on Fashion-MNIST.

    python -m bench quality [--quick]

Each model is trained once with ``vae.train`` (the Train page's Fashion-MNIST defaults: latent 20,
batch 128, Adam 1e-3, beta 1; MLP hidden 400, conv channels 32, 64) until the long budget is spent;
its weights are also snapshotted when the short budget is reached, so both rows of a model come from
the same run. Budgets are wall-clock seconds from the start of training (data already in memory),
the trainer's per-epoch test evaluation and checkpoints included. Each snapshot is measured with
``vae.analysis.evaluate``: test negative ELBO (all test images), IWAE negative log-likelihood on a fixed test
subset, active units and the 10-NN accuracy of the latent means; the baselines are 10-NN accuracy
on raw pixels and on PCA of the pixels with as many dimensions as the latent space. Asserts nothing.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch

from bench import common
from vae.analysis import evaluate
from vae.config import DataConfig, ModelConfig, TrainConfig
from vae.models import build_model, count_parameters
from vae.runs.folder import new_run
from vae.train import Trainer

TITLE = "## Model quality under a time budget: default MLP and conv VAEs"
LATENT = ModelConfig().latent_dim  # the default latent size (vae/config.py): 20


@dataclass(frozen=True)
class Settings:
    """What the section runs; ``QUICK`` and the smoke test use smaller ones."""

    short_s: float = 120.0
    long_s: float = 300.0
    iwae_k: int = 1000
    iwae_n: int = 1000  # fixed test subset for IWAE
    n_train: int | None = None  # None: all 60,000
    n_test: int | None = None  # None: all 10,000
    archs: tuple[str, ...] = ("mlp", "conv")
    knn_k: int = 10


FULL = Settings()
QUICK = Settings(short_s=5.0, long_s=10.0, iwae_k=100, iwae_n=200, n_train=10_000, n_test=2_000)


def train_with_snapshots(ds, data_cfg: DataConfig, arch: str, budgets: tuple[float, float]) -> list[dict]:
    """Train ``arch`` until ``budgets[-1]`` wall-clock seconds; snapshot the weights at each budget.

    Returns one dict per budget: ``state`` (a state dict), ``seconds`` (when taken), ``epochs`` (fractional).
    The check runs whenever the trainer logs (every 50 optimiser steps, as in the app, and after each epoch),
    so a snapshot lands up to 50 steps late; the table gives the time it was taken.
    """
    snaps: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as root:
        cfg = TrainConfig(epochs=10_000, batch_size=128, lr=1e-3, beta=1.0)  # the app's log_every (50)
        run = new_run(
            root, arch, ds, data_cfg, arch=arch, latent_dim=LATENT, hidden=(400,), channels=(32, 64), train_cfg=cfg
        )
        trainer = Trainer(run, dataset=ds)
        t0 = time.perf_counter()

        def on_record(kind: str, rec: dict) -> None:
            if kind not in ("step", "epoch") or len(snaps) == len(budgets):
                return
            now = time.perf_counter() - t0
            if now >= budgets[len(snaps)]:
                state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
                snaps.append({"state": state, "seconds": now, "epochs": float(rec["epoch"])})
                if len(snaps) == len(budgets):
                    trainer.stop_requested = True

        trainer.callback = on_record
        status = trainer.run()
    if len(snaps) < len(budgets):
        raise RuntimeError(f"Training the {arch} model ended early: {status.get('message')}")
    for snap in snaps:
        snap["model_cfg"] = trainer.model_cfg
    return snaps


def measure(model_cfg: ModelConfig, state: dict, ds, subset: np.ndarray, s: Settings) -> dict:
    """The evaluation numbers of one snapshot (nats are negated: lower is better)."""
    model = build_model(model_cfg)
    model.load_state_dict(state, strict=True)
    model.eval()
    t = time.perf_counter()
    x_test = ds.x_test.float()
    out = {"params": count_parameters(model)}
    out["neg_elbo"] = -evaluate.elbo(model, x_test, seed=0)["elbo"]
    x_sub = x_test[torch.from_numpy(subset)]
    out["neg_elbo_sub"] = -evaluate.elbo(model, x_sub, seed=0)["elbo"]
    out["neg_iwae"] = -evaluate.iwae_log_likelihood(model, x_sub, k=s.iwae_k, seed=0)  # batches sized by memory
    mu_test, _ = model.embed(x_test)
    out["active"] = evaluate.active_units(mu_test)[0]
    mu_train, _ = model.embed(ds.x_train.float())
    out["knn"] = evaluate.knn_accuracy(mu_train, ds.y_train.numpy(), mu_test, ds.y_test.numpy(), s.knn_k)
    out["eval_s"] = time.perf_counter() - t
    return out


def baselines(ds, dims: int, k: int) -> list[tuple[str, int, float]]:
    """(name, dimensions, k-NN accuracy) on raw pixels and on PCA of the pixels."""
    from sklearn.decomposition import PCA

    x_tr = ds.x_train.flatten(1).numpy()
    x_te = ds.x_test.flatten(1).numpy()
    y_tr, y_te = ds.y_train.numpy(), ds.y_test.numpy()
    out = [("raw pixels", x_tr.shape[1], evaluate.knn_accuracy(x_tr, y_tr, x_te, y_te, k))]
    pca = PCA(n_components=dims, random_state=0).fit(x_tr)
    acc = evaluate.knn_accuracy(pca.transform(x_tr), y_tr, pca.transform(x_te), y_te, k)
    out.append(("PCA of the pixels (fit on the training images)", dims, acc))
    return out


def run(quick: bool = False, settings: Settings | None = None) -> str:
    """The quality section as markdown."""
    s = settings or (QUICK if quick else FULL)
    if not common.fashion_available():
        return common.no_fashion(TITLE)
    ds, data_cfg = common.fashion(s.n_train, s.n_test)
    subset = np.sort(np.random.default_rng(0).choice(len(ds.x_test), min(s.iwae_n, len(ds.x_test)), replace=False))
    rows = []
    for arch in s.archs:
        common.log(f"quality: training {arch} for {s.long_s:.0f} s (snapshot at {s.short_s:.0f} s)")
        snaps = train_with_snapshots(ds, data_cfg, arch, (s.short_s, s.long_s))
        for budget, snap in zip((s.short_s, s.long_s), snaps, strict=True):
            common.log(f"quality: evaluating {arch} at {budget:.0f} s")
            rows.append((arch, budget, snap, measure(snap["model_cfg"], snap["state"], ds, subset, s)))
    common.log("quality: baselines (k-NN on pixels and PCA)")
    base = baselines(ds, LATENT, s.knn_k)
    return _markdown(s, ds, rows, base, len(subset))


def _budget(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _markdown(s: Settings, ds, rows: list, base: list, n_sub: int) -> str:
    names = {"mlp": "MLP 784-400-20", "conv": "conv 32-64, latent 20"}
    table_rows = []
    for arch, budget, snap, m in rows:
        when = "same run, snapshot" if budget == s.short_s else "same run, end"
        table_rows.append(
            [
                f"{names[arch]} ({m['params']:,} parameters)",
                f"{_budget(budget)} ({when} at {snap['seconds']:.0f} s)",
                f"{snap['epochs']:.1f}",
                common.fmt(m["neg_elbo"]),
                common.fmt(m["neg_elbo_sub"]),
                common.fmt(m["neg_iwae"]),
                f"{m['active']} of {LATENT}",
                common.fmt(100 * m["knn"], 1, " %"),
                common.fmt(m["eval_s"], 0, " s"),
            ]
        )
    headers = [
        "model",
        "wall-clock budget",
        "epochs",
        f"test −ELBO ({len(ds.x_test):,} images)",
        f"−ELBO on the IWAE subset ({n_sub:,})",
        f"IWAE −log p(x), K = {s.iwae_k:,} (same subset)",
        "active units",
        f"{s.knn_k}-NN accuracy of latent means",
        "evaluation time",
    ]
    base_rows = [[name, f"{dims:,}", common.fmt(100 * acc, 1, " %")] for name, dims, acc in base]
    best = max((m["knn"] for *_, m in rows), default=float("nan"))
    base_rows.append(["best VAE above (latent means)", f"{LATENT}", common.fmt(100 * best, 1, " %")])
    return "\n".join(
        [
            TITLE,
            "",
            f"Fashion-MNIST ({len(ds.x_train):,} training images, {len(ds.x_test):,} test images). Each model is "
            f"one `vae.train` run with the Train page's defaults (batch 128, Adam 1e-3, β 1, 2 threads) stopped "
            f"at {_budget(s.long_s)} of wall-clock (per-epoch test evaluation and checkpoints included); its "
            f"{_budget(s.short_s)} row is a snapshot of the same run, not a separate run. Nats per image, lower "
            f"is better; IWAE on a fixed random subset of {n_sub:,} test images (seed 0); active units: "
            f"Cov(E[z|x]) > 0.01 over the test set (Burda et al. 2015); {s.knn_k}-NN: classifier fitted on the "
            f"training set's latent means, scored on the test set's.",
            "",
            common.table(headers, table_rows),
            "",
            common.table(["representation", "dimensions", f"{s.knn_k}-NN accuracy (test set)"], base_rows),
            "",
            f"Baselines: for {s.knn_k}-NN accuracy, raw pixels and PCA of the pixels with the latent size, on the "
            f"same split (second table); for −ELBO and IWAE, the other model and budget in the same table (the "
            f"reference loop's −ELBO is in the training section).",
            "",
            "Reproduce alone: `python -m bench quality`",
            "",
        ]
    )


if __name__ == "__main__":
    common.main(run, __doc__)
