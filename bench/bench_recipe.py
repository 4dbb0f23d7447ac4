"""A faster recipe on CPU: bfloat16 autocast, a larger batch and Adam's β2, against the reference loop and
the earlier default, on Fashion-MNIST.

    python -m bench recipe [--quick]

Each of our arms trains with ``vae.train`` (the same loop the app and the command line use) on all of
Fashion-MNIST (60,000 / 10,000), 2 threads, seed 0, the latent history off; only the batch size, the learning
rate (and its schedule), Adam's β2 and ``TrainConfig.precision`` change. After every epoch the trainer measures
the test ELBO; an arm reaches the target when its test −ELBO is at or below ``TARGET`` (the reference
PyTorch-examples loop's 10-epoch figure), and the time is the training time up to that epoch (test evaluation
excluded). The reference loop itself (``bench_train.run_reference``) runs first, in the same process, timed
the same way. The conv model is measured over two epochs only (its throughput and ELBO there). Baseline: the
reference loop, and the earlier default (fp32, batch 128, Adam 1e-3, β2 0.999), in the same run. Asserts
nothing.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np

from bench import bench_train, common
from vae.config import LEGACY_ADAM_BETA2, DataConfig, TrainConfig
from vae.data import load_dataset
from vae.runs import folder as rf
from vae.runs.folder import new_run
from vae.train import train

TITLE = "## A faster recipe on CPU: bfloat16 autocast, a larger batch, Adam's β2"
TARGET = 244.3  # nats: the reference loop's test -ELBO after 10 epochs
REFERENCE = "reference loop (PyTorch examples: fp32, batch 128, Adam 1e-3; baseline)"


@dataclass(frozen=True)
class Arm:
    name: str
    arch: str
    batch: int
    lr: float
    precision: str
    epochs: int
    beta2: float = TrainConfig.adam_beta2  # TrainConfig.adam_beta2
    schedule: str = "constant"  # TrainConfig.lr_schedule
    warmup: float = 0.0  # TrainConfig.lr_warmup_epochs


OLD = LEGACY_ADAM_BETA2
ARMS = (
    Arm("MLP, fp32, batch 128, lr 1e-3, β2 0.999 (the earlier default, baseline)", "mlp", 128, 1e-3, "fp32", 12, OLD),
    Arm("MLP, bf16, batch 256, lr 2e-3, β2 0.999 (the earlier best)", "mlp", 256, 2e-3, "bf16", 12, OLD),
    Arm("MLP, bf16, batch 256, lr 2e-3, β2 0.999, warm-up 0.5 + cosine over 10 epochs", "mlp", 256, 2e-3, "bf16", 10,
        OLD, "cosine", 0.5),
    Arm("MLP, bf16, batch 256, lr 4e-3, β2 0.99", "mlp", 256, 4e-3, "bf16", 12, 0.99),
    Arm("**MLP, fp32, batch 256, lr 3e-3, β2 0.95 (the new default)**", "mlp", 256, 3e-3, "fp32", 12),
    Arm("**MLP, bf16, batch 256, lr 3e-3, β2 0.95 (the new default, bf16)**", "mlp", 256, 3e-3, "bf16", 12),
    Arm("conv, fp32, batch 128, lr 1e-3, β2 0.999", "conv", 128, 1e-3, "fp32", 2, OLD),
    Arm("conv, bf16, batch 256, lr 3e-3, β2 0.95", "conv", 256, 3e-3, "bf16", 2),
)  # fmt: skip


def reference_row(ds, epochs: int) -> list[str]:
    """The reference loop's row: its examples/s, −ELBO after 10 epochs, last epoch, time to the target."""
    train_u8 = (ds.x_train[:, 0].numpy() * 255).round().astype(np.uint8)
    curve = bench_train.run_reference(train_u8, ds.x_test, epochs, seed=0)  # [(training s so far, test -ELBO)]
    lines = [{"epoch": i + 1, "elapsed_s": t, "test_elbo": -v} for i, (t, v) in enumerate(curve)]
    return _row(REFERENCE, len(ds.x_train) * len(curve) / curve[-1][0], lines)


def _row(name: str, speed: float, lines: list[dict]) -> list[str]:
    reached = next((m for m in lines if -m["test_elbo"] <= TARGET), None)
    ten = lines[min(9, len(lines) - 1)]
    return [
        name, f"{speed:,.0f}", f"{-ten['test_elbo']:.2f}" if ten["epoch"] == 10 else "–",
        f"{-lines[-1]['test_elbo']:.2f} (epoch {len(lines)})",
        f"{reached['elapsed_s']:.1f} s (epoch {reached['epoch']})" if reached else "not within these epochs",
    ]  # fmt: skip


def run(quick: bool = False, arms: tuple[Arm, ...] = ARMS, reference: bool = True) -> str:
    if not common.fashion_available():
        return common.no_fashion(TITLE)
    cfg = DataConfig(name="fashion-mnist", max_train=6000 if quick else None, max_test=1000 if quick else None)
    ds = load_dataset(cfg)
    rows = []
    if reference:
        epochs = 2 if quick else 12
        common.log(f"recipe: the reference loop, {epochs} epochs…")
        rows.append(reference_row(ds, epochs))
    with tempfile.TemporaryDirectory(prefix="bench-recipe-") as tmp:
        for i, arm in enumerate(arms):
            epochs = 2 if quick else arm.epochs
            common.log(f"recipe: {arm.name}, {epochs} epochs…")
            tc = TrainConfig(epochs=epochs, batch_size=arm.batch, lr=arm.lr, precision=arm.precision, threads=2,
                             adam_beta2=arm.beta2, lr_schedule=arm.schedule, lr_warmup_epochs=arm.warmup,
                             probe_size=0)  # fmt: skip
            run_dir = new_run(tmp, f"arm-{i}", ds, cfg, arch=arm.arch, latent_dim=20, train_cfg=tc)
            assert train(run_dir, dataset=ds)["state"] == "finished"
            lines = [m for m in rf.read_metrics(run_dir) if m.get("type") == "epoch"]
            rows.append(_row(arm.name, common.median([m["examples_per_s"] for m in lines]), lines))
    return (
        f"{TITLE}\n\n"
        f"Fashion-MNIST{' (6,000 / 1,000, quick)' if quick else ''}, latent 20, 2 threads; examples/s is the median "
        "over epochs of the trainer's own figure (the reference's: all its epochs over its training time; test "
        "evaluation excluded).\n\n"
        + common.table(
            ["arm", "examples/s", "test −ELBO after 10 epochs", "last epoch", f"training time to −ELBO ≤ {TARGET}"],
            rows,
        )  # fmt: skip
        + "\n\nBaselines: the reference loop and the earlier default (the first two rows), in the same run.\n\n"
        "Reproduce alone: `python -m bench recipe [--quick]`.\n"
    )


if __name__ == "__main__":
    common.main(run, __doc__)
