"""A training process started ahead of need (``vae.jobs.prepare_standby``): the next start hands it the run,
it ends by itself when the app does, and a standby that died is passed over."""

import os
import signal

import pytest

from vae import jobs
from vae import run as rf
from vae.config import DataConfig, TrainConfig
from vae.data import load_dataset
from vae.train import new_run


@pytest.fixture
def standby(monkeypatch):
    """A fresh standby for the test; whatever is left of it is ended afterwards (its stdin closed, then waited)."""
    monkeypatch.setenv("LATENT_EXPLORER_STANDBY", "1")
    monkeypatch.setattr(jobs, "_STANDBY", [])
    jobs.prepare_standby()
    proc = jobs._STANDBY[0]
    yield proc
    if proc.stdin and not proc.stdin.closed:
        proc.stdin.close()
    proc.wait(timeout=120)


def tiny_run(root, name="r"):
    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    tc = TrainConfig(epochs=2, batch_size=64, threads=1, log_every=5, grid_size=4)
    return new_run(root, name, ds, cfg, train_cfg=tc, latent_dim=2, hidden=(16,))


def test_the_next_start_is_handed_to_the_standby_which_trains_it(tmp_path, standby):
    assert jobs.is_training_process(standby.pid)  # `python -m vae worker --standby`: stop() may signal it
    jobs.prepare_standby()
    assert jobs._STANDBY == [standby]  # one at a time
    run = tiny_run(tmp_path)
    assert jobs.start(run) == standby.pid
    assert jobs._STANDBY == []  # taken: the next start launches its own process (or a new standby)
    status = jobs.wait(run, timeout=120)
    assert status["state"] == "finished", status
    assert status["pid"] == standby.pid
    assert [m["epoch"] for m in rf.read_metrics(run) if m["type"] == "epoch"] == [1, 2]
    assert standby.wait(timeout=30) == 0


def test_a_standby_ends_by_itself_when_the_app_does(standby):
    standby.stdin.close()  # what the app's end does to the pipe
    assert standby.wait(timeout=120) == 0


def test_a_standby_that_died_is_passed_over(tmp_path, standby):
    os.kill(standby.pid, signal.SIGKILL)
    standby.wait(timeout=30)
    run = tiny_run(tmp_path)
    pid = jobs.start(run)
    assert pid != standby.pid
    assert jobs.wait(run, timeout=120)["state"] == "finished"


def test_no_standby_when_switched_off(monkeypatch):
    monkeypatch.setenv("LATENT_EXPLORER_STANDBY", "0")
    monkeypatch.setattr(jobs, "_STANDBY", [])
    jobs.prepare_standby()
    assert jobs._STANDBY == []
