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
