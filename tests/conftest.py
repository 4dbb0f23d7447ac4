"""Shared pytest setup: the repository root importable (``import vae``), the rooms' markers, shared fixtures.

tests/lib: the library and command line; tests/pages: pages through AppTest (``apptest.open_app``);
tests/e2e: a real Chromium against ``streamlit run`` (marked ``e2e`` here, by folder); tests/house: the
house rules and the benchmarks' smoke runs. ``pytest -m "not slow and not e2e"`` is the fast loop.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# No standby training process (vae/runs/standby.py) wherever a test opens the app on an empty runs folder (here and in
# the servers the tests start): each would load torch beside the test. tests/test_standby.py turns it on.
os.environ.setdefault("LATENT_EXPLORER_STANDBY", "0")
# Idle OpenMP threads sleep instead of spinning (read as torch loads, here and in every process a test starts). The
# suite runs in two workers on two cores, each training with two threads beside a server or a browser: spinning
# threads then take the cores from the threads with work to do (a 6 s training took 40 s beside another; 11 s with
# this).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e/ drives a browser: mark it ``e2e`` by its folder. The whole suite runs in two
    pytest-xdist workers (README's command: ``-n 2``; pyproject.toml sets ``--dist loadgroup``): the browser tests
    share one app server, so they form one group, run one after the other by one worker, while the other worker
    takes the rest (the interaction benchmark's smoke run, which starts servers and a browser of its own, too: run
    beside the other browser tests, it took 120 s instead of 70 and the suite took longer)."""
    e2e = Path(__file__).parent / "e2e"
    for item in items:
        if e2e in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("xdist_group"):
            continue
        # the browser tests in one group; every other file's tests in a group of their own, so that a file's
        # module-scoped fixture (a model trained for its tests) is built once, not once per worker
        item.add_marker(pytest.mark.xdist_group("browser" if item.get_closest_marker("e2e") else item.module.__name__))


@pytest.fixture(scope="session")
def fashion_mnist():
    """Skip where Debian's dataset-fashion-mnist is absent, except in CI (CI=true), where it must exist."""
    from vae.data import DEBIAN_FASHION_MNIST_DIR

    if not any(DEBIAN_FASHION_MNIST_DIR.glob("train-images-idx3-ubyte*")) and not os.environ.get("CI"):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    return DEBIAN_FASHION_MNIST_DIR


def train_small_run(root, name: str, latent_dim: int = 4, hidden=(64,), epochs: int = 15):
    """Train a small MLP VAE on digits into ``root/name`` (a few seconds) and return its folder."""
    from vae.config import DataConfig, TrainConfig
    from vae.data import load_dataset
    from vae.runs.folder import new_run
    from vae.train import train

    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    run = new_run(
        root,
        name,
        ds,
        cfg,
        latent_dim=latent_dim,
        hidden=tuple(hidden),
        train_cfg=TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, threads=1),
    )
    assert train(run, dataset=ds)["state"] == "finished"
    return run


@pytest.fixture(scope="session")
def small_run():
    """``train_small_run`` for tests in sub-folders (tests/e2e), which cannot import this conftest."""
    return train_small_run


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory):
    """A runs folder holding one finished small model on digits, named "digits-small" (latent 4).

    Shared by the page tests: treat it as read-only (the ``runs`` fixture gives a private copy).
    """
    root = tmp_path_factory.mktemp("runs")
    train_small_run(root, "digits-small")
    return root


@pytest.fixture
def runs(trained_runs, tmp_path, monkeypatch):
    """A private copy of ``trained_runs``, made the app's runs folder (LATENT_EXPLORER_RUNS), with no cap on
    trainings from the environment; no training process started in it outlives the test."""
    import shutil

    from vae.runs import jobs

    root = tmp_path / "runs"
    shutil.copytree(trained_runs, root)
    monkeypatch.setenv("LATENT_EXPLORER_RUNS", str(root))
    monkeypatch.delenv("LATENT_EXPLORER_MAX_JOBS", raising=False)
    yield root
    for run in jobs.active_runs(root):  # a training this test started (not a status it wrote naming itself)
        pid = jobs.refresh_status(run).get("pid")
        if pid and pid != os.getpid():
            jobs.stop(run, wait=20)


@pytest.fixture
def run_data(runs):
    """(run folder, model, dataset) of "digits-small", loaded directly rather than through the app."""
    from vae.data import load_dataset
    from vae.runs import folder as rf

    run = runs / "digits-small"
    model = rf.load_model(run)
    model.requires_grad_(False)
    return run, model, load_dataset(rf.load_config(run)[2])


@pytest.fixture
def stop_and_resume():
    """``f(run, dataset, at_step)``: train ``run`` until a logged step reaches ``at_step``, stop it there (as the app's
    Stop does), then resume it to the end; asserts each part ended as it should."""
    from vae.runs.folder import write_control
    from vae.train import train

    def go(run, dataset, at_step: int) -> None:
        def stop_there(kind, rec):
            if kind == "step" and rec["step"] >= at_step:
                write_control(run, "stop")

        assert train(run, dataset=dataset, callback=stop_there)["state"] == "stopped"
        write_control(run, "resume")
        assert train(run, dataset=dataset, resume=True)["state"] == "finished"

    return go
