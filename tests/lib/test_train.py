"""The trainer on real data: one epoch on digits and on a Fashion-MNIST subset, exact resume,
the NaN guard, pause / resume / stop of a background process, and the status of a killed one."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from vae.config import DataConfig, TrainConfig
from vae.data import load_dataset
from vae.runs import fileio, jobs
from vae.runs import folder as rf
from vae.runs.folder import new_run, read_control, write_control
from vae.train import Trainer, train


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(name="digits"))


def make_run(root, dataset, data_cfg, name="r", model=None, **train_kw):
    kw = {"epochs": 1, "batch_size": 64, "threads": 1, "log_every": 5, "grid_size": 4} | train_kw
    model = model or {"latent_dim": 4, "hidden": (32,)}
    return new_run(root, name, dataset, data_cfg, train_cfg=TrainConfig(**kw), **model)


def test_one_epoch_on_digits_writes_everything(tmp_path, digits):
    run = make_run(tmp_path, digits, DataConfig(name="digits"))
    status = train(run, dataset=digits)
    assert status["state"] == "finished", status
    for f in [
        "config.json",
        "model.safetensors",
        "state.safetensors",
        "metrics.jsonl",
        "status.json",
        "recon.png",
        "samples.png",
    ]:
        assert (run / f).is_file(), f
    metrics = rf.read_metrics(run)
    steps = [m for m in metrics if m["type"] == "step"]
    epochs = [m for m in metrics if m["type"] == "epoch"]
    assert len(epochs) == 1 and len(steps) >= 3
    e = epochs[0]
    assert e["test_elbo"] < 0 and e["train_loss"] > 0 and e["examples_per_s"] > 0
    assert abs(e["test_elbo"] + e["test_recon"] + e["test_kl"]) < 1e-3
    assert [m["step"] for m in steps] == sorted(m["step"] for m in steps)
    model = rf.load_model(run)
    assert model.cfg.input_shape == (1, 8, 8)


def test_training_lowers_the_loss_on_digits(tmp_path, digits):
    run = make_run(tmp_path, digits, DataConfig(name="digits"), epochs=5, lr=3e-3)
    train(run, dataset=digits)
    epochs = [m for m in rf.read_metrics(run) if m["type"] == "epoch"]
    assert epochs[-1]["test_elbo"] > epochs[0]["test_elbo"] + 1.0


def test_bfloat16_autocast_trains_to_nearly_the_same_elbo_and_keeps_float32_weights(tmp_path, digits):
    """precision="bf16" runs the forward pass under bfloat16 autocast: the loss still falls, the test ELBO ends
    within 2 % of float32's, and the saved weights stay float32 (the app loads them as before)."""
    ends = {}
    for precision in ("fp32", "bf16"):
        run = make_run(tmp_path, digits, DataConfig(name="digits"), name=precision, epochs=5, lr=3e-3,
                       precision=precision)  # fmt: skip
        assert train(run, dataset=digits)["state"] == "finished"
        epochs = [m for m in rf.read_metrics(run) if m["type"] == "epoch"]
        assert epochs[-1]["test_elbo"] > epochs[0]["test_elbo"] + 1.0
        ends[precision] = epochs[-1]["test_elbo"]
        assert all(p.dtype == torch.float32 for p in rf.load_model(run).parameters())
    assert abs(ends["bf16"] - ends["fp32"]) < 0.02 * abs(ends["fp32"]), ends
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp64; got 'fp16'"):
        TrainConfig(precision="fp16")


def test_float64_training_resumes_exactly_in_float64_and_gives_the_app_float32(tmp_path, digits, stop_and_resume):
    """precision="fp64" (exactness checks) trains in float64 throughout; stopped and resumed, it ends bit for bit
    where an uninterrupted run does; the weights the app loads are the same values in float32."""
    cfg = DataConfig(name="digits")

    def float64_weights(run):
        tensors, _ = rf.load_state(run)
        return {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}

    full = make_run(tmp_path, digits, cfg, name="full", epochs=2, precision="fp64")
    assert train(full, dataset=digits)["state"] == "finished"
    part = make_run(tmp_path, digits, cfg, name="part", epochs=2, precision="fp64")
    stop_and_resume(part, digits, at_step=5)
    a, b = float64_weights(full), float64_weights(part)
    assert a and all(v.dtype == torch.float64 for v in a.values())
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for k, v in rf.load_model(full).state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, a[k].float()), k


def test_adam_uses_the_runs_beta2_and_a_run_recorded_before_it_keeps_0_999(tmp_path, digits):
    """``TrainConfig.adam_beta2`` reaches the optimiser (and changes the weights); a config.json written before
    the field existed (an earlier run, resumed here) trains with torch's default 0.999, as it did."""
    weights = {}
    for beta2 in (0.95, 0.999):
        run = make_run(tmp_path, digits, DataConfig(name="digits"), name=f"b{beta2}", adam_beta2=beta2)
        trainer = Trainer(run, dataset=digits)
        assert trainer.run()["state"] == "finished"
        assert trainer.opt.param_groups[0]["betas"] == (0.9, beta2)
        weights[beta2] = rf.load_model(run).state_dict()
    assert any(not torch.equal(weights[0.95][k], weights[0.999][k]) for k in weights[0.95])
    config = run / rf.CONFIG_FILE  # the 0.999 run, as an earlier revision recorded it, given a second epoch
    raw = json.loads(config.read_text())
    del raw["train"]["adam_beta2"]
    raw["train"]["epochs"] = 2
    config.write_text(json.dumps(raw))
    trainer = Trainer(run, dataset=digits)
    assert trainer.run(resume=True)["state"] == "finished"
    assert trainer.opt.param_groups[0]["betas"] == (0.9, 0.999)
    assert [m["epoch"] for m in rf.read_metrics(run) if m["type"] == "epoch"] == [1, 2]


@pytest.mark.slow
def test_one_epoch_on_a_fashion_mnist_subset(tmp_path, fashion_mnist):
    cfg = DataConfig(name="fashion-mnist", max_train=6000, max_test=1000)
    ds = load_dataset(cfg)
    assert ds.item_shape == (1, 28, 28) and len(ds.x_train) == 6000
    run = make_run(tmp_path, ds, cfg, model={"latent_dim": 20, "hidden": (400,)}, batch_size=128, threads=1)
    status = train(run)  # loads the data itself, as the background worker does
    assert status["state"] == "finished", status
    e = [m for m in rf.read_metrics(run) if m["type"] == "epoch"][0]
    # An untrained Bernoulli decoder starts near 784 * log 2 = 543 nats; one epoch must learn something.
    assert -e["test_elbo"] < 400


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_equals_uninterrupted_training(tmp_path, digits, schedule):
    """Also with a learning-rate schedule: the rate is a function of the step, so a resume continues it."""
    cfg = DataConfig(name="digits")
    kw = dict(epochs=3, lr=1e-3, lr_schedule=schedule, lr_warmup_epochs=1.0 if schedule == "cosine" else 0.0)
    full = make_run(tmp_path, digits, cfg, name="full", **kw)
    train(full, dataset=digits)
    lrs = [m["lr"] for m in rf.read_metrics(full) if m["type"] == "step"]  # each logged step's rate
    if schedule == "constant":
        assert set(lrs) == {1e-3}
    else:  # up during the first epoch, then down to nearly nothing
        assert lrs[0] < lrs[1] and max(lrs) == pytest.approx(1e-3, rel=0.05) and lrs[-1] < 0.2 * max(lrs)

    part = make_run(tmp_path, digits, cfg, name="part", **kw)
    stop_at = {"step": 0}

    def stop_mid_epoch(kind, rec):
        if kind == "step" and rec["step"] >= 30 and not stop_at["step"]:  # epoch 2 of 3, mid-way
            stop_at["step"] = rec["step"]
            write_control(part, "stop")

    status = train(part, dataset=digits, callback=stop_mid_epoch)
    assert status["state"] == "stopped" and 0 < status["step"] < 3 * 23
    write_control(part, "resume")
    status = train(part, dataset=digits, resume=True)
    assert status["state"] == "finished"
    a, b = rf.load_model(full).state_dict(), rf.load_model(part).state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ea = [m["test_elbo"] for m in rf.read_metrics(full) if m["type"] == "epoch"]
    eb = [m["test_elbo"] for m in rf.read_metrics(part) if m["type"] == "epoch"]
    assert ea == eb


def test_divergence_fails_with_a_message_and_keeps_the_last_checkpoint(tmp_path, digits):
    # Adam at 1e-3 with beta2 0.999, then rate 1: diverges within a few epochs (beta2 0.95 keeps its steps bounded)
    run = make_run(tmp_path, digits, DataConfig(name="digits"), epochs=3, lr=1e-3, adam_beta2=0.999)
    train(run, dataset=digits)  # a good checkpoint first
    good = rf.load_model(run).state_dict()
    raw = json.loads((run / "config.json").read_text())
    raw["train"]["lr"] = 1.0
    raw["train"]["epochs"] = 200
    (run / "config.json").write_text(json.dumps(raw))
    status = train(run, dataset=digits, resume=True)
    assert status["state"] == "failed"
    assert "diverged" in status["message"] and "learning rate 1" in status["message"]
    after = rf.load_model(run).state_dict()
    assert all(torch.isfinite(v).all() for v in after.values())
    assert set(after) == set(good)


def test_shape_mismatch_between_model_and_data_fails_clearly(tmp_path, digits):
    cfg = DataConfig(name="digits")
    run = make_run(tmp_path, digits, cfg)
    raw = json.loads((run / "config.json").read_text())
    raw["model"]["input_shape"] = [1, 28, 28]
    (run / "config.json").write_text(json.dumps(raw))
    status = train(run, dataset=digits)
    assert status["state"] == "failed" and "shape" in status["message"]


def wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_background_job_pause_resume_stop(tmp_path, digits):
    run = make_run(tmp_path, digits, DataConfig(name="digits"), epochs=2000, log_every=1)
    pid = jobs.start(run)
    assert pid > 0
    assert wait_for(lambda: rf.read_status(run).get("state") == "running" and rf.read_status(run).get("step", 0) > 0)
    with pytest.raises(ValueError, match="already training"):
        jobs.start(run)
    jobs.pause(run)
    assert wait_for(lambda: rf.read_status(run).get("state") == "paused")
    step = rf.read_status(run)["step"]
    time.sleep(0.5)
    assert rf.read_status(run)["step"] == step  # paused means no progress
    jobs.resume(run)
    assert wait_for(lambda: rf.read_status(run).get("step", 0) > step)
    assert read_control(run) == "resume"
    status = jobs.stop(run, wait=30)
    assert status["state"] == "stopped", status
    assert not jobs.pid_alive(pid)
    rf.load_model(run)  # the checkpoint written on stop loads
    # what every page's poll calls: the ended process is collected, no zombie is left
    assert wait_for(lambda: (jobs.refresh_status(run), pid not in jobs._CHILDREN)[1])
    assert not Path(f"/proc/{pid}").exists()


@pytest.mark.slow
def test_job_limit_refuses_a_second_training(tmp_path, digits, monkeypatch):
    monkeypatch.setenv("LATENT_EXPLORER_MAX_JOBS", "1")
    a = make_run(tmp_path, digits, DataConfig(name="digits"), name="a", epochs=2000)
    b = make_run(tmp_path, digits, DataConfig(name="digits"), name="b")
    jobs.start(a)
    try:
        assert wait_for(lambda: rf.read_status(a).get("state") == "running")
        with pytest.raises(ValueError, match="allows 1 at once"):
            jobs.start(b)
    finally:
        jobs.stop(a, wait=30)


@pytest.mark.slow
def test_killed_process_is_reported_interrupted_and_resumes(tmp_path, digits):
    run = make_run(tmp_path, digits, DataConfig(name="digits"), epochs=2000, log_every=1)
    pid = jobs.start(run)
    assert wait_for(lambda: rf.has_model(run))  # a whole checkpoint: the resume state is written first, then weights
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not jobs.pid_alive(pid))
    status = jobs.refresh_status(run)
    assert status["state"] == "interrupted" and "Resume continues" in status["message"]
    rf.load_model(run)
    jobs.resume(run)  # restarts from the checkpoint
    assert wait_for(lambda: rf.read_status(run).get("state") == "running")
    jobs.stop(run, wait=30)
    assert rf.read_status(run)["state"] == "stopped"


def test_a_fresh_start_replaces_earlier_metrics(tmp_path, digits):
    run = make_run(tmp_path, digits, DataConfig(name="digits"), epochs=2)
    train(run, dataset=digits)
    first = rf.read_metrics(run)
    train(run, dataset=digits)  # started again from scratch (no resume)
    again = rf.read_metrics(run)
    assert len(again) == len(first)
    assert [m["step"] for m in again] == [m["step"] for m in first]


def test_a_full_disk_while_saving_fails_clearly_and_keeps_the_last_checkpoint(tmp_path, digits, monkeypatch):
    import errno

    import safetensors.torch

    run = make_run(tmp_path, digits, DataConfig(name="digits"), epochs=4)
    real_save = safetensors.torch.save_file
    saves = {"n": 0}

    def save_until_the_disk_fills(tensors, filename, metadata=None):
        checkpoint = rf.MODEL_FILE in str(filename) or rf.STATE_FILE in str(filename)
        saves["n"] += checkpoint  # history frames are saved too; the count is of checkpoint files
        if saves["n"] > 4:  # epochs 1 and 2 save (state + model each); epoch 3 finds the disk full
            with open(filename, "wb") as f:
                f.write(b"half a file")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", save_until_the_disk_fills)
    monkeypatch.setattr(fileio, "save_file", save_until_the_disk_fills)
    status = train(run, dataset=digits)
    assert status["state"] == "failed"
    assert "No space left on device" in status["message"] and "free some disk space" in status["message"]
    monkeypatch.undo()
    model = rf.load_model(run)  # the epoch-2 checkpoint, whole
    assert rf.safetensors_metadata(run / rf.MODEL_FILE)["epoch"] == "2"
    assert model.cfg.latent_dim == 4
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]  # the torn temp file was removed


@pytest.mark.slow
def test_a_finished_background_training_leaves_no_zombie_once_the_app_polls(tmp_path, digits):
    """The server starts trainings as its children: one that ends by itself must be collected (it stayed a zombie
    for as long as the server ran); the pages' polls of a run's status collect it."""
    run = make_run(tmp_path, digits, DataConfig(name="digits"), epochs=1)
    pid = jobs.start(run)
    assert wait_for(lambda: rf.read_status(run).get("state") == "finished", timeout=120)

    def polled_and_gone() -> bool:
        jobs.refresh_status(run)  # what the sidebar and the Train page call every second
        return not Path(f"/proc/{pid}").exists()

    assert wait_for(polled_and_gone, timeout=30) and pid not in jobs._CHILDREN


def test_a_kill_right_after_a_checkpoint_never_loses_that_epochs_record(tmp_path, digits, monkeypatch):
    """A SIGKILL between the checkpoint and the epoch's record lost the record for good (epochs 1, 3, 4 …):
    the record is written first, so after any kill the record and the checkpoint agree."""

    class Killed(BaseException):  # like SIGKILL: nothing of the trainer runs after it
        pass

    run = make_run(tmp_path, digits, DataConfig(name="digits"), epochs=3)
    original, calls = Trainer.save_pictures, []

    def killed_after_the_second_checkpoint(self):
        calls.append(1)
        if len(calls) == 2:  # epoch 2's checkpoint is on disk, nothing after it ran
            raise Killed
        original(self)

    monkeypatch.setattr(Trainer, "save_pictures", killed_after_the_second_checkpoint)
    with pytest.raises(Killed):
        train(run, dataset=digits)
    assert json.loads(rf.safetensors_metadata(run / rf.STATE_FILE)["loop"])["epoch"] == 2
    monkeypatch.setattr(Trainer, "save_pictures", original)
    assert train(run, dataset=digits, resume=True)["state"] == "finished"
    assert [m["epoch"] for m in rf.read_metrics(run) if m["type"] == "epoch"] == [1, 2, 3]
