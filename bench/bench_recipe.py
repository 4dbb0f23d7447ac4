"""A faster recipe on CPU? bfloat16 autocast, larger batches and a warm-up + cosine schedule, against the default,
on Fashion-MNIST.

    python bench/bench_recipe.py [--quick]

Each arm trains with ``vae.train`` (the same loop the app and the command line use) on all of Fashion-MNIST
(60,000 / 10,000), 2 threads, seed 0, the latent history off; only the batch size, the learning rate (and its
schedule) and ``TrainConfig.precision`` change. After every epoch the trainer measures the test ELBO; an arm reaches the
target when its test −ELBO is at or below ``TARGET`` (the reference PyTorch-examples loop's 10-epoch figure,
docs/BENCHMARKS.md), and the time is the training time up to that epoch (test evaluation excluded).
The conv model is measured over two epochs only (its throughput and ELBO there). Baseline: the default arm
(fp32, batch 128, Adam 1e-3), in the same run. Asserts nothing.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

try:
    from bench import common
except ImportError:  # run as a script: bench/ is on sys.path
    import common

from vae import run as rf
from vae.config import DataConfig, TrainConfig
from vae.data import load_dataset
from vae.train import new_run, train

TITLE = "## A faster recipe on CPU: bfloat16 autocast and larger batches"
TARGET = 244.3  # nats: the reference loop's test -ELBO after 10 epochs


@dataclass(frozen=True)
class Arm:
    name: str
    arch: str
    batch: int
    lr: float
    precision: str
    epochs: int
    schedule: str = "constant"  # TrainConfig.lr_schedule
    warmup: float = 0.0  # TrainConfig.lr_warmup_epochs


ARMS = (
    Arm("MLP, fp32, batch 128, lr 1e-3 (default, baseline)", "mlp", 128, 1e-3, "fp32", 16),
    Arm("MLP, bf16, batch 128, lr 1e-3", "mlp", 128, 1e-3, "bf16", 16),
    Arm("MLP, fp32, batch 256, lr 2e-3", "mlp", 256, 2e-3, "fp32", 16),
    Arm("MLP, bf16, batch 256, lr 2e-3", "mlp", 256, 2e-3, "bf16", 16),
    Arm("MLP, bf16, batch 512, lr 3e-3", "mlp", 512, 3e-3, "bf16", 16),
    Arm(
        "MLP, bf16, batch 128, lr 2e-3, warm-up 0.5 + cosine over 8 epochs", "mlp", 128, 2e-3, "bf16", 8, "cosine", 0.5
    ),
    Arm(
        "MLP, bf16, batch 256, lr 2e-3, warm-up 0.5 + cosine over 10 epochs",
        "mlp",
        256,
        2e-3,
        "bf16",
        10,
        "cosine",
        0.5,
    ),
    Arm("conv, fp32, batch 128, lr 1e-3", "conv", 128, 1e-3, "fp32", 2),
    Arm("conv, bf16, batch 128, lr 1e-3", "conv", 128, 1e-3, "bf16", 2),
)


def run(quick: bool = False, arms: tuple[Arm, ...] = ARMS) -> str:
    if not common.fashion_available():
        return common.no_fashion(TITLE)
    cfg = DataConfig(name="fashion-mnist", max_train=6000 if quick else None, max_test=1000 if quick else None)
    ds = load_dataset(cfg)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-recipe-") as tmp:
        for i, arm in enumerate(arms):
            epochs = 2 if quick else arm.epochs
            common.log(f"recipe: {arm.name}, {epochs} epochs…")
            tc = TrainConfig(epochs=epochs, batch_size=arm.batch, lr=arm.lr, precision=arm.precision, threads=2,
                             lr_schedule=arm.schedule, lr_warmup_epochs=arm.warmup,
                             probe_size=0)  # fmt: skip
            run_dir = new_run(tmp, f"arm-{i}", ds, cfg, arch=arm.arch, latent_dim=20, train_cfg=tc)
            assert train(run_dir, dataset=ds)["state"] == "finished"
            lines = [m for m in rf.read_metrics(run_dir) if m.get("type") == "epoch"]
            reached = next((m for m in lines if -m["test_elbo"] <= TARGET), None)
            speed = common.median([m["examples_per_s"] for m in lines])
            ten = lines[min(9, len(lines) - 1)]
            rows.append([
                arm.name, f"{speed:,.0f}", f"{-ten['test_elbo']:.2f}" if ten["epoch"] == 10 else "–",
                f"{-lines[-1]['test_elbo']:.2f} (epoch {len(lines)})",
                f"{reached['elapsed_s']:.1f} s (epoch {reached['epoch']})" if reached else "not within these epochs",
            ])  # fmt: skip
    return (
        f"{TITLE}\n\n"
        f"Fashion-MNIST{' (6,000 / 1,000, quick)' if quick else ''}, latent 20, 2 threads, `vae.train`; examples/s is "
        "the median over epochs of the trainer's own figure (test evaluation excluded).\n\n"
        + common.table(
            ["arm", "examples/s", "test −ELBO after 10 epochs", "last epoch", f"training time to −ELBO ≤ {TARGET}"],
            rows,
        )  # fmt: skip
        + "\n\nBaseline: the first row, today's default, in the same run.\n\n"
        "Reproduce alone: `python bench/bench_recipe.py [--quick]`.\n"
    )


if __name__ == "__main__":
    common.main(run, __doc__)
