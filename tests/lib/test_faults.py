"""Killed training processes: whatever the moment of a SIGKILL, the last checkpoint loads, the run
says it was interrupted, and resuming continues from that checkpoint."""

import json
import os
import random
import signal
import time

import pytest

from vae.config import DataConfig, TrainConfig
from vae.data import load_dataset
from vae.runs import folder as rf
from vae.runs import jobs
from vae.runs.folder import new_run


def wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def checkpoint_step(run) -> int:
    meta = rf.safetensors_metadata(run / rf.STATE_FILE)
    return int(json.loads(meta["loop"])["step"])


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_the_run(tmp_path):
    rng = random.Random(20261125)
    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    # Tiny epochs (12 steps), so checkpoints are written all the time and kills land mid-write too.
    run = new_run(
        tmp_path,
        "killed",
        ds,
        cfg,
        latent_dim=4,
        hidden=(32,),
        train_cfg=TrainConfig(epochs=5000, batch_size=128, threads=1, log_every=1, grid_size=2),
    )
    last_step = 0
    for trial in range(4):
        pid = jobs.start(run, resume=trial > 0)
        assert wait_for(
            lambda p=pid: rf.read_status(run).get("pid") == p and rf.read_status(run).get("state") == "running"
        )
        if trial == 0:  # from the first checkpoint on (a run killed before it simply starts again)
            assert wait_for(lambda: rf.has_model(run))  # the resume state is written first, then the weights
        else:  # the resumed process carries on from the checkpoint, not from zero
            assert wait_for(lambda s=last_step: rf.read_status(run).get("step", 0) > s), (trial, last_step)
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda p=pid: not jobs.pid_alive(p))
        status = jobs.refresh_status(run)
        assert status["state"] == "interrupted", (trial, status)
        assert (run / rf.STATE_FILE).is_file()
        model = rf.load_model(run)  # the weights the app loads
        assert model.cfg.latent_dim == 4
        step = checkpoint_step(run)  # the full resume state is whole too
        assert step >= last_step, (trial, step, last_step)
        last_step = step
        leftovers = [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
        assert all(name.startswith(".") for name in leftovers)  # only hidden temp files, never a torn real one
    assert last_step > 0
