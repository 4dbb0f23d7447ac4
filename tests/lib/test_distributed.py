"""Training with several processes through torchrun (gloo on 127.0.0.1), and the device choice.

The runs are real: scikit-learn's digits, a small MLP, one torch thread per process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.serving import free_port
from vae.cli.main import main
from vae.distributed import Ranks, resolve_device
from vae.runs import folder as rf

ROOT = Path(__file__).resolve().parents[2]
MODEL = ["--data", "digits", "--latent", "4", "--hidden", "64", "--threads", "1", "--seed", "3", "--precision", "fp32"]


def torchrun(runs: Path, procs: int, *args: str) -> subprocess.Popen:
    """``torchrun --nproc_per_node=procs -m vae train ...`` on 127.0.0.1, in a session of its own."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", "-m", "vae", "--runs-dir", str(runs), "train", *args, "--json"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, out.decode() + err.decode()


def weights(run: Path) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in rf.load_model(run).state_dict().items()}


def trained_weights(run: Path) -> dict[str, torch.Tensor]:
    """The weights in the training's own precision (the resume state's copy; the app's file is float32)."""
    tensors, _ = rf.load_state(run)
    return {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}


@pytest.mark.slow
def test_two_processes_at_batch_64_train_like_one_at_batch_128(tmp_path, capsys):
    """Same seed, same global permutation and noise, same global batch: after 300 steps (25 epochs of
    1,437 digits, the last batch of each epoch split 15 / 14) the weights agree. 1×128 and 2×64 sum each
    gradient in another order, and Adam amplifies the last bits over 300 steps (in float32 up to 0.0045 on some
    machines), so the two train in float64: what is left is float64 rounding, amplified alike, far below 1e-6."""
    model = [*MODEL[:-1], "fp64"]
    assert main(["--runs-dir", str(tmp_path), "train", *model, "--epochs", "25", "--batch", "128", "--name", "one",
                 "--json"]) == 0  # fmt: skip
    capsys.readouterr()
    code, log = finish(torchrun(tmp_path, 2, *model, "--epochs", "25", "--batch", "64", "--name", "two"))
    assert code == 0, log
    one, two = trained_weights(tmp_path / "one"), trained_weights(tmp_path / "two")
    assert set(one) == set(two) and len(one) > 0
    for k in one:
        assert one[k].dtype == two[k].dtype == torch.float64, k
        np.testing.assert_allclose(two[k].numpy(), one[k].numpy(), rtol=0, atol=1e-6, err_msg=k)
    assert set(weights(tmp_path / "two")) == set(one)  # the app's float32 copy loads
    epochs = [m for m in rf.read_metrics(tmp_path / "two") if m["type"] == "epoch"]
    assert len(epochs) == 25 and epochs[-1]["step"] == 25 * 12  # 12 global batches an epoch, not 23
    base = [m for m in rf.read_metrics(tmp_path / "one") if m["type"] == "epoch"]
    assert abs(epochs[-1]["train_elbo"] - base[-1]["train_elbo"]) < 0.05  # every rank's share counted
    status = rf.read_status(tmp_path / "two")
    assert status["state"] == "finished" and status["processes"] == 2 and status["device"] == "cpu"


def wait_state(run: Path, states: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = rf.read_status(run)
        if status.get("state") in states:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{run.name} never reached {states}: {rf.read_status(run)}")


@pytest.mark.slow
def test_two_processes_pause_resume_stop_and_resume_from_the_checkpoint(tmp_path):
    run = tmp_path / "ctl"
    proc = torchrun(tmp_path, 2, *MODEL, "--epochs", "400", "--batch", "32", "--name", "ctl")
    wait_state(run, {"running"})
    while rf.read_status(run).get("step", 0) < 50:
        time.sleep(0.1)
    rf.write_control(run, "pause")
    paused = wait_state(run, {"paused"})
    time.sleep(1.0)
    assert rf.read_status(run)["step"] == paused["step"]  # both ranks hold still
    rf.write_control(run, "resume")
    while rf.read_status(run).get("step", 0) <= paused["step"] + 20:
        assert proc.poll() is None, finish(proc)[1]
        time.sleep(0.1)
    rf.write_control(run, "stop")
    code, log = finish(proc)
    stopped = rf.read_status(run)
    assert code == 0 and stopped["state"] == "stopped", log
    rf.clear_control(run)
    proc = torchrun(tmp_path, 2, "--resume", "ctl", "--threads", "1")  # on from the checkpoint the stop wrote
    while rf.read_status(run).get("step", 0) <= stopped["step"] + 10:
        assert proc.poll() is None, finish(proc)[1]
        time.sleep(0.1)
    rf.write_control(run, "stop")
    code, log = finish(proc)
    assert code == 0 and rf.read_status(run)["state"] == "stopped", log
    steps = [m["step"] for m in rf.read_metrics(run) if m["type"] == "step"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # one history, no step twice


@pytest.mark.slow
def test_resuming_with_another_number_of_processes_says_how(tmp_path, capsys):
    code, log = finish(torchrun(tmp_path, 2, *MODEL, "--epochs", "1", "--batch", "64", "--name", "w2"))
    assert code == 0, log
    assert main(["--runs-dir", str(tmp_path), "train", "--resume", "w2", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert "trained by 2 process(es)" in err and "torchrun --nproc_per_node" in err


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_with_a_sentence(tmp_path):
    run = tmp_path / "dies"
    proc = torchrun(tmp_path, 2, *MODEL, "--epochs", "400", "--batch", "32", "--name", "dies")
    wait_state(run, {"running"})
    while rf.read_status(run).get("epoch", 0) < 1:  # a checkpoint exists
        time.sleep(0.1)
    rank0 = rf.read_status(run)["pid"]
    victim = next(p for p in _descendants(proc.pid) if _is_worker(p) and p != rank0)  # rank 1
    os.kill(victim, signal.SIGKILL)
    code, log = finish(proc)
    status = rf.read_status(run)
    assert code != 0
    assert status["state"] in {"failed", "stopped"}, status
    if status["state"] == "failed":
        assert "processes" in status["message"] and "Traceback" not in status["message"]
    assert rf.has_model(run)  # the last checkpoint loads
    rf.load_model(run)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc: no `ps` needed)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def _is_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"vae" in cmdline and b"torch.distributed.run" not in cmdline


def test_cuda_asked_for_on_a_machine_without_it_is_one_sentence(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
    code = main(["--runs-dir", str(tmp_path), "train", *MODEL, "--epochs", "1", "--device", "cuda", "--json"])
    assert code == 2 and "no CUDA GPU" in json.loads(capsys.readouterr().out)["error"]
    assert not list(tmp_path.iterdir())  # nothing was created


@pytest.mark.parametrize(("n", "world"), [(29, 2), (128, 2), (7, 3), (2, 4)])
def test_shards_cover_a_global_batch_once(n, world):
    parts = [Ranks(rank=r, world=world).shard(n) for r in range(world)]
    rows = np.concatenate([np.arange(n)[p] for p in parts])
    assert np.array_equal(rows, np.arange(n))
    sizes = [p.stop - p.start for p in parts]
    assert max(sizes) - min(sizes) <= 1


def listening_addresses(pids: list[int]) -> set[str]:
    """The local addresses (IP as text) of the listening TCP sockets ``pids`` hold (from /proc)."""
    import ipaddress

    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                raw = bytes.fromhex(fields[1].split(":")[0])
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word little-endian
                found.add(str(ipaddress.ip_address(words)))
    return found


def rank_pids(launcher: int) -> list[int]:
    """The launcher's child processes (the ranks)."""
    kids = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    return [int(k) for k in kids]


@pytest.mark.slow
def test_the_apps_background_training_runs_in_two_processes_and_stops_from_the_app(tmp_path):
    """``jobs.start(procs=2)`` (what the Train page launches on a machine with the cores): two ranks whose sockets
    listen on 127.0.0.1 only (torchrun's store listened on every interface), rank 0's pid in the status, the run
    trains as two processes, and the app's Stop (SIGTERM to that pid) ends both."""
    from vae.config import DataConfig, TrainConfig
    from vae.data import load_dataset
    from vae.runs import jobs
    from vae.runs.folder import new_run

    cfg = DataConfig(name="digits")
    run = new_run(tmp_path, "two", load_dataset(cfg), cfg, latent_dim=4, hidden=(64,),
                  train_cfg=TrainConfig(epochs=400, batch_size=32, threads=1, probe_size=0))  # fmt: skip
    launcher = jobs.start(run, procs=2)
    while rf.read_status(run).get("step", 0) < 30:
        assert jobs.refresh_status(run)["state"] in jobs.ACTIVE_STATES, rf.log_path(run).read_text()[-2000:]
        time.sleep(0.1)
    status = rf.read_status(run)
    assert status["processes"] == 2 and status["state"] == "running"
    ranks = rank_pids(launcher)
    assert len(ranks) == 2 and status["pid"] in ranks
    listening = listening_addresses([launcher, *ranks])
    assert listening and listening <= {"127.0.0.1", "::1"}, listening  # the store and gloo: loopback only
    assert status["pid"] and status["pid"] != os.getpid()
    final = jobs.stop(run, wait=60)
    assert final["state"] == "stopped", final
    assert rf.has_state(run)  # it saved a checkpoint on the way out
    jobs.resume(run)  # the app's Resume: as many processes as the run had
    while rf.read_status(run).get("step", 0) <= final["step"] + 10:
        assert jobs.refresh_status(run)["state"] in jobs.ACTIVE_STATES, rf.log_path(run).read_text()[-2000:]
        time.sleep(0.1)
    assert rf.read_status(run)["processes"] == 2
    assert jobs.stop(run, wait=60)["state"] == "stopped"
    with pytest.raises(ValueError, match="processes must be from 1"):
        jobs.start(run, procs=10_000)
