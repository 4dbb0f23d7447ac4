"""A training process started ahead of need (``vae.standby``): the next start hands it the run, it ends by
itself when the app does, a standby that died is passed over, and the app starts one on a new install only."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vae import jobs, places, standby
from vae import run as rf
from vae.config import DataConfig, TrainConfig
from vae.data import load_dataset
from vae.train import new_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def waiting(monkeypatch):
    """A fresh standby process for the test; whatever is left of it is ended afterwards (stdin closed, waited)."""
    monkeypatch.setenv("LATENT_EXPLORER_STANDBY", "1")
    monkeypatch.setattr(standby, "_WAITING", [])
    standby.prepare()
    proc = standby._WAITING[0]
    yield proc
    if proc.stdin and not proc.stdin.closed:
        proc.stdin.close()
    proc.wait(timeout=120)


def tiny_run(root, name="r"):
    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    tc = TrainConfig(epochs=2, batch_size=64, threads=1, log_every=5, grid_size=4)
    return new_run(root, name, ds, cfg, train_cfg=tc, latent_dim=2, hidden=(16,))


def test_the_next_start_is_handed_to_the_standby_which_trains_it(tmp_path, waiting):
    assert jobs.is_training_process(waiting.pid)  # `python -m vae worker --standby`: stop() may signal it
    standby.prepare()
    assert standby._WAITING == [waiting]  # one at a time
    run = tiny_run(tmp_path)
    assert jobs.start(run) == waiting.pid
    assert standby._WAITING == []  # taken: the next start launches its own process (or a new standby)
    status = jobs.wait(run, timeout=120)
    assert status["state"] == "finished", status
    assert status["pid"] == waiting.pid
    assert [m["epoch"] for m in rf.read_metrics(run) if m["type"] == "epoch"] == [1, 2]
    assert waiting.wait(timeout=30) == 0


def test_a_standby_ends_by_itself_when_the_app_does(waiting):
    waiting.stdin.close()  # what the app's end does to the pipe
    assert waiting.wait(timeout=120) == 0


def test_a_standby_that_died_is_passed_over(tmp_path, waiting):
    os.kill(waiting.pid, signal.SIGKILL)
    waiting.wait(timeout=30)
    run = tiny_run(tmp_path)
    pid = jobs.start(run)
    assert pid != waiting.pid
    assert jobs.wait(run, timeout=120)["state"] == "finished"


def test_no_standby_when_switched_off(monkeypatch):
    monkeypatch.setenv("LATENT_EXPLORER_STANDBY", "0")
    monkeypatch.setattr(standby, "_WAITING", [])
    standby.prepare()
    assert standby._WAITING == []


def test_the_app_starts_one_before_loading_torch_on_a_new_install_only(tmp_path):
    """app.py's first lines: a standby where the runs folder holds no run, none where it does; and the modules
    they import load no torch (so the standby starts seconds before the server has torch itself)."""
    code = ("import sys; from vae import places, standby; assert 'torch' not in sys.modules; "
            "print(places.has_runs())")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LATENT_EXPLORER_RUNS": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert not places.has_runs(tmp_path) and not places.has_runs(tmp_path / "missing")
    (tmp_path / ".uploads").mkdir()  # hidden folders and folders without a config are not runs
    (tmp_path / "notes").mkdir()
    assert not places.has_runs(tmp_path)
    tiny_run(tmp_path)
    assert places.has_runs(tmp_path) and rf.run_names(tmp_path) == ["r"]


def test_the_app_prepares_one_on_a_new_install_and_not_where_runs_exist(tmp_path, monkeypatch, trained_runs):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LATENT_EXPLORER_STANDBY", "1")
    for root, expected in ((tmp_path / "new", 1), (trained_runs, 0)):
        monkeypatch.setenv("LATENT_EXPLORER_RUNS", str(root))
        monkeypatch.setattr(standby, "_WAITING", [])
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
        assert not at.exception
        waiting = list(standby._WAITING)
        assert len(waiting) == expected, root
        for proc in waiting:
            proc.stdin.close()
            assert proc.wait(timeout=120) == 0
