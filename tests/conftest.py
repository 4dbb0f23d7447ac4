"""Shared pytest setup: make the repository root importable (``import vae``)."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def fashion_mnist():
    """Skip where Debian's dataset-fashion-mnist is absent, except in CI (CI=true), where it must exist."""
    from vae.data import DEBIAN_FASHION_MNIST_DIR

    if not any(DEBIAN_FASHION_MNIST_DIR.glob("train-images-idx3-ubyte*")) and not os.environ.get("CI"):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    return DEBIAN_FASHION_MNIST_DIR


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory):
    """A runs folder holding one finished small model on digits, named "digits-small" (latent 4).

    Shared by the page tests: treat it as read-only (copy it with shutil.copytree to change it).
    """
    from vae.config import DataConfig, TrainConfig
    from vae.data import load_dataset
    from vae.train import new_run, train

    root = tmp_path_factory.mktemp("runs")
    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    run = new_run(
        root,
        "digits-small",
        ds,
        cfg,
        latent_dim=4,
        hidden=(64,),
        train_cfg=TrainConfig(epochs=15, batch_size=64, lr=3e-3, threads=1),
    )
    assert train(run, dataset=ds)["state"] == "finished"
    return root
