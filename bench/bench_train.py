"""Training throughput and quality: our trainer vs the classic reference loop, on Fashion-MNIST.

    python bench/bench_train.py [--epochs 10] [--repeats 2]

The baseline is the PyTorch-examples VAE loop: a per-sample ``Dataset`` (uint8 image -> float
tensor, as torchvision's ``ToTensor`` does) in a ``torch.utils.data.DataLoader`` (batch 128,
shuffled), the 784-400-20-400-784 MLP with a sigmoid output and ``binary_cross_entropy``, Adam 1e-3.
Ours is ``vae.train`` with the same architecture and batch size. Runs alternate A B A B; the table
gives medians. Both use 2 threads. The test negative ELBO (nats, one sample, 10,000 test images) is
reported after the same number of epochs and after the same wall-clock budget (the reference's
time for all its epochs). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae.config import DataConfig, TrainConfig  # noqa: E402
from vae.data import load_dataset  # noqa: E402
from vae.train import new_run, train, write_control  # noqa: E402


class ReferenceVAE(nn.Module):
    """pytorch/examples vae/main.py, verbatim in structure."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def reference_loss(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


class PerSample(torch.utils.data.Dataset):
    """One item at a time from uint8 images, as a torchvision dataset with ToTensor serves them."""

    def __init__(self, images_u8: np.ndarray):
        self.images = images_u8

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i]).float().div(255.0).unsqueeze(0), 0


def run_reference(train_u8, x_test, epochs, seed):
    torch.manual_seed(seed)
    model = ReferenceVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(PerSample(train_u8), batch_size=128, shuffle=True)
    curve, t_train = [], 0.0
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for x, _ in loader:
            opt.zero_grad()
            loss = reference_loss(*_fwd(model, x))
            loss.backward()
            opt.step()
        t_train += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            test = sum(float(reference_loss(*_fwd(model, x_test[i : i + 1000]))) for i in range(0, len(x_test), 1000))
        curve.append((t_train, test / len(x_test)))
    return curve


def _fwd(model, x):
    recon, mu, logvar = model(x)
    return recon, x, mu, logvar


def run_ours(ds, epochs, seed, budget=None):
    """Our trainer; with ``budget`` (seconds of training) it stops once that much time is spent."""
    root = tempfile.mkdtemp(prefix="bench-train-")
    cfg = DataConfig(name="fashion-mnist")
    n_epochs = epochs if budget is None else 1000
    run = new_run(
        root, "ours", ds, cfg, train_cfg=TrainConfig(epochs=n_epochs, batch_size=128, seed=seed, log_every=10_000)
    )
    curve = []

    def on_epoch(kind, rec):
        if kind == "epoch":
            curve.append((rec["elapsed_s"], -rec["test_elbo"]))
            if budget is not None and rec["elapsed_s"] >= budget:
                write_control(run, "stop")

    train(run, dataset=ds, callback=on_epoch)
    return curve


def at_budget(curve, budget):
    """The last test -ELBO reached within ``budget`` seconds of training."""
    within = [v for t, v in curve if t <= budget * 1.02]
    return within[-1] if within else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)
    ds = load_dataset(DataConfig(name="fashion-mnist"))
    train_u8 = (ds.x_train[:, 0].numpy() * 255).round().astype(np.uint8)
    x_test = ds.x_test
    n = len(ds.x_train)
    ref_rates, our_rates, ref_final, our_final, our_budget = [], [], [], [], []
    for r in range(args.repeats):
        ref = run_reference(train_u8, x_test, args.epochs, seed=r)
        ours = run_ours(ds, args.epochs, seed=r)
        budget = ref[-1][0]
        ours_b = run_ours(ds, args.epochs, seed=r, budget=budget)
        ref_rates.append(n * args.epochs / ref[-1][0])
        our_rates.append(n * args.epochs / ours[-1][0])
        ref_final.append(ref[-1][1])
        our_final.append(ours[-1][1])
        our_budget.append(at_budget(ours_b, budget))
        print(
            f"repeat {r + 1}: reference {ref[-1][0]:.1f} s -> {ref[-1][1]:.2f} nats; ours {ours[-1][0]:.1f} s -> "
            f"{ours[-1][1]:.2f} nats; ours within {budget:.1f} s -> {our_budget[-1]:.2f} nats",
            flush=True,
        )
    med = statistics.median
    print()
    print(
        f"Fashion-MNIST, MLP 784-400-20-400-784, batch 128, Adam 1e-3, {args.epochs} epochs, 2 threads, "
        f"median of {args.repeats} (A B A B)"
    )
    print()
    print("| loop | examples/s | test -ELBO after epochs | test -ELBO at the reference's wall-clock |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| reference (DataLoader, per-sample) | {med(ref_rates):,.0f} | {med(ref_final):.2f} | {med(ref_final):.2f} |"
    )
    print(f"| vae.train | {med(our_rates):,.0f} | {med(our_final):.2f} | {med(our_budget):.2f} |")
    print(f"| ratio | {med(our_rates) / med(ref_rates):.2f}× | | |")


if __name__ == "__main__":
    main()
