"""A training process started ahead of need (``vae.runs.standby``): the next start hands it the run, it ends by
itself when the app does, a standby that died is passed over, and the app starts one on a new install only."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from apptest import open_app

from vae.config import DataConfig, TrainConfig
from vae.data import load_dataset
from vae.runs import folder as rf
from vae.runs import jobs, listing, places, standby
from vae.runs.folder import new_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def start_standby(monkeypatch):
    """``standby.prepare`` for the test to call (within the test itself: pytest's own variable names the phase,
    and a standby is only used under the environment it started in); started processes are ended afterwards."""
    monkeypatch.setenv("LATENT_EXPLORER_STANDBY", "1")
    monkeypatch.setattr(standby, "_WAITING", [])
    started = []

    def prepare():
        standby.prepare()
        started.append(standby._WAITING[0][0])
        return started[-1]

    yield prepare
    for proc in started:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
        proc.wait(timeout=120)


def tiny_run(root, name="r"):
    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    tc = TrainConfig(epochs=2, batch_size=64, threads=1, log_every=5, grid_size=4)
    return new_run(root, name, ds, cfg, train_cfg=tc, latent_dim=2, hidden=(16,))


@pytest.mark.slow
def test_the_next_start_is_handed_to_the_standby_which_trains_it(tmp_path, start_standby):
    run = tiny_run(tmp_path)
    proc = start_standby()
    deadline = time.time() + 30  # once it has exec'd (a moment after Popen returns)
    while not jobs.is_training_process(proc.pid) and time.time() < deadline:
        time.sleep(0.05)
    assert jobs.is_training_process(proc.pid)  # `python -m vae worker --standby`: stop() may signal it
    standby.prepare()
    assert [p for p, _ in standby._WAITING] == [proc]  # one at a time
    assert jobs.start(run) == proc.pid
    assert standby._WAITING == []  # taken: the next start launches its own process (or a new standby)
    status = jobs.wait(run, timeout=120)
    assert status["state"] == "finished", status
    assert status["pid"] == proc.pid
    assert [m["epoch"] for m in rf.read_metrics(run) if m["type"] == "epoch"] == [1, 2]
    assert proc.wait(timeout=30) == 0


@pytest.mark.slow
def test_a_standby_that_died_is_passed_over(tmp_path, start_standby):
    run = tiny_run(tmp_path)
    proc = start_standby()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    pid = jobs.start(run)
    assert pid != proc.pid
    assert jobs.wait(run, timeout=120)["state"] == "finished"


@pytest.mark.slow
def test_the_standby_trains_under_the_apps_environment_at_the_start(tmp_path, start_standby, monkeypatch):
    """Variables read at run time (here: where Fashion-MNIST lives) go with the run; a standby started under
    other values of those read as libraries load (thread pools) is not used, and ends by itself."""
    from test_data import write_idx

    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    proc = start_standby()  # started where "fashion-mnist" means Debian's 28x28 images (or nothing)
    write_idx(tmp_path / "fm", n_train=60, n_test=20, side=6)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "fm"))
    cfg = DataConfig(name="fashion-mnist")
    tc = TrainConfig(epochs=1, batch_size=16, threads=1, log_every=2, grid_size=2, probe_size=0)
    run = new_run(tmp_path / "runs", "fm", load_dataset(cfg), cfg, train_cfg=tc, latent_dim=2, hidden=(8,))
    assert jobs.start(run) == proc.pid
    status = jobs.wait(run, timeout=120)
    assert status["state"] == "finished", status  # it read the 6x6 images the app names now
    assert status["total_steps"] == 4  # 60 items at batch 16

    proc = start_standby()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a thread pool's size: read as torch loads
    run = tiny_run(tmp_path / "runs", "other")
    pid = jobs.start(run)
    assert pid != proc.pid
    assert proc.wait(timeout=120) == 0  # told nothing, it ends by itself once its stdin closes (as when the app ends)
    assert jobs.wait(run, timeout=120)["state"] == "finished"


def test_no_standby_when_switched_off(monkeypatch):
    monkeypatch.setenv("LATENT_EXPLORER_STANDBY", "0")
    monkeypatch.setattr(standby, "_WAITING", [])
    standby.prepare()
    assert standby._WAITING == []


def test_the_app_starts_one_before_loading_torch_on_a_new_install_only(tmp_path):
    """app.py's first lines: a standby where the runs folder holds no run, none where it does; and the modules
    they import load no torch (so the standby starts seconds before the server has torch itself)."""
    code = ("import sys; from vae.runs import places, standby; assert 'torch' not in sys.modules; "
            "print(places.has_runs())")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LATENT_EXPLORER_RUNS": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert not places.has_runs(tmp_path) and not places.has_runs(tmp_path / "missing")
    (tmp_path / ".uploads").mkdir()  # hidden folders and folders without a config are not runs
    (tmp_path / "notes").mkdir()
    assert not places.has_runs(tmp_path)
    tiny_run(tmp_path)
    assert places.has_runs(tmp_path) and listing.run_names(tmp_path) == ["r"]


@pytest.mark.slow
def test_the_app_prepares_one_on_a_new_install_and_not_where_runs_exist(tmp_path, monkeypatch, trained_runs):

    monkeypatch.setenv("LATENT_EXPLORER_STANDBY", "1")
    for root, expected in ((tmp_path / "new", 1), (trained_runs, 0)):
        monkeypatch.setenv("LATENT_EXPLORER_RUNS", str(root))
        monkeypatch.setattr(standby, "_WAITING", [])
        open_app(timeout=60)
        waiting = [p for p, _ in standby._WAITING]
        assert len(waiting) == expected, root
        for _, env in standby._WAITING:  # what the app's own start-up set since (torch, numba's cache) keeps it usable
            assert standby._read_at_load(env) == standby._read_at_load(standby.worker_env())
        for proc in waiting:
            proc.stdin.close()
            assert proc.wait(timeout=120) == 0
