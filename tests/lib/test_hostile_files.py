"""A run folder that no hostile file can break (issue: planted links, special files, typed-wrong fields, two
writers, reused pids). The runs are copies of a real model trained on scikit-learn's digits (``trained_runs``).

Each security rule has a mutation check in the same test where it is cheap: the same read with the guard
switched off (``guard.read_bytes`` replaced by a plain read) does follow the link.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from apptest import open_app

from vae.cli.main import main
from vae.runs import folder as rf
from vae.runs import guard, jobs, listing
from vae.runs.fileio import read_json
from vae.runs.runzip import run_zip

RUN = "digits-small"
SECRET = b"-----BEGIN OPENSSH PRIVATE KEY----- not for a zip\n"


def cli(capsys, root: Path, *args: str) -> tuple[int, object]:
    code = main(["--runs-dir", str(root), *args, "--json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else out.err)


def within(seconds: float, fn, *args):
    """``fn(*args)`` in a thread that must finish within ``seconds`` (a FIFO would block it for ever)."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except Exception as e:  # noqa: BLE001 - raised again in the test's own thread
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} blocked"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture
def evil(runs, tmp_path) -> Path:
    """A finished run copied in by hand as ``evil``, beside a secret file outside the runs folder."""
    shutil.copytree(runs / RUN, runs / "evil")
    (tmp_path / "secret").write_bytes(SECRET)
    return runs / "evil"


# ---------------------------------------------------------------- planted links are never followed


@pytest.mark.parametrize("name", [rf.EVALUATION_FILE, rf.METRICS_FILE, rf.STATUS_FILE])
def test_a_linked_run_file_never_reaches_a_zip(evil, tmp_path, name, monkeypatch):
    (evil / name).unlink(missing_ok=True)
    (evil / name).symlink_to(tmp_path / "secret")
    with pytest.raises(ValueError, match="symbolic link"):
        run_zip(evil)
    monkeypatch.setattr("vae.runs.runzip.read_bytes", lambda path, cap: Path(path).read_bytes())  # the guard off
    with zipfile.ZipFile(BytesIO(run_zip(evil))) as zf:
        assert zf.read(name) == SECRET  # what the guard stops


def test_export_of_a_run_with_a_linked_file_is_a_sentence_and_writes_nothing(evil, tmp_path, capsys):
    (evil / rf.EVALUATION_FILE).symlink_to(tmp_path / "secret")
    out = tmp_path / "evil.zip"
    code, err = cli(capsys, evil.parent, "export", "evil", "--out", str(out))
    assert code == 2 and "symbolic link" in str(err) and not out.exists()


def test_a_linked_config_makes_the_run_broken_and_it_can_be_deleted(evil, tmp_path, capsys):
    (tmp_path / "config.json").write_bytes((evil / rf.CONFIG_FILE).read_bytes())
    (evil / rf.CONFIG_FILE).unlink()
    (evil / rf.CONFIG_FILE).symlink_to(tmp_path / "config.json")
    code, listed = cli(capsys, evil.parent, "runs")
    by_name = {r["name"]: r for r in listed}
    assert by_name["evil"]["state"] == "broken" and "symbolic link" in by_name["evil"]["message"]
    assert by_name[RUN]["state"] == "finished"
    with pytest.raises(ValueError, match="symbolic link"):
        rf.load_model(evil)
    rf.delete_run(evil.parent, "evil")
    assert not evil.exists() and (tmp_path / "config.json").exists()  # the link went, not its target


def test_a_run_folder_that_is_a_link_is_broken_and_deleting_it_removes_only_the_link(runs, tmp_path, capsys):
    outside = tmp_path / "outside"
    shutil.copytree(runs / RUN, outside)
    (runs / "linked").symlink_to(outside, target_is_directory=True)
    code, listed = cli(capsys, runs, "runs")
    linked = next(r for r in listed if r["name"] == "linked")
    assert linked["state"] == "broken" and "symbolic link" in linked["message"]
    rf.delete_run(runs, "linked")
    assert not (runs / "linked").exists() and (outside / rf.MODEL_FILE).is_file()


def test_a_linked_training_log_is_not_shown(evil, tmp_path):
    (evil / rf.LOG_FILE).unlink(missing_ok=True)
    (evil / rf.LOG_FILE).symlink_to(tmp_path / "secret")
    shown = rf.read_log(evil)
    assert SECRET.decode() not in shown and "symbolic link" in shown


def test_a_linked_history_folder_is_never_written_through(evil, tmp_path):
    from vae.analysis import history

    target = tmp_path / "elsewhere"
    target.mkdir()
    shutil.rmtree(evil / rf.HISTORY_DIR, ignore_errors=True)
    (evil / rf.HISTORY_DIR).symlink_to(target, target_is_directory=True)
    assert history.frames(evil) == [] and history.read_probe(evil) is None
    with pytest.raises(ValueError, match="symbolic link"):
        rf.history_dir(evil)
    assert list(target.iterdir()) == []


def test_a_linked_maps_folder_is_never_written_through_and_the_map_is_kept_unsaved(evil, tmp_path):
    import numpy as np

    from ui import cache
    from vae.projection.cache import unusable

    target = tmp_path / "elsewhere"
    target.mkdir()
    shutil.rmtree(rf.projections_dir(evil), ignore_errors=True)
    rf.projections_dir(evil).symlink_to(target, target_is_directory=True)
    assert "symbolic link" in unusable(rf.projections_dir(evil))
    folder, reason = cache.map_folder(evil)
    assert folder != rf.projections_dir(evil) and "symbolic link" in reason
    codes = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    proj = cache._fit(evil, "ck", "test", "pca-k", codes, "pca")
    assert proj.embedding_.shape == (50, 2) and list(target.iterdir()) == []


def test_a_linked_uploads_folder_lets_no_config_name_a_file_through_it(runs, tmp_path):
    from vae.config import DataConfig
    from vae.data import sources

    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (runs / sources.UPLOADS).symlink_to(tmp_path, target_is_directory=True)
    cfg = DataConfig(name="file", path=str(runs / sources.UPLOADS / "data.csv"))
    with pytest.raises(ValueError):
        sources.checked(cfg, runs)
    with pytest.raises(ValueError, match="symbolic link"):
        sources.store_upload(runs, "x.csv", b"a\n1\n")


# ---------------------------------------------------------------- pipes, devices and sizes


@pytest.mark.parametrize("name", [rf.STATUS_FILE, rf.METRICS_FILE, rf.EVALUATION_FILE, rf.CONTROL_FILE])
def test_a_pipe_as_a_run_file_never_blocks_the_listing_or_the_runs_page(evil, name):
    (evil / name).unlink(missing_ok=True)
    os.mkfifo(evil / name)
    listed = within(10, listing.list_runs, evil.parent)
    assert {r["name"] for r in listed} == {RUN, "evil"}
    reads = {rf.STATUS_FILE: rf.read_status, rf.METRICS_FILE: rf.read_metrics, rf.EVALUATION_FILE: rf.read_evaluation,
             rf.CONTROL_FILE: rf.read_control}  # fmt: skip
    assert not within(10, reads[name], evil)  # nothing read, nothing waited for
    assert within(10, jobs.refresh_status, evil).get("state") not in jobs.ACTIVE_STATES
    if name != rf.CONTROL_FILE:  # the control file is not carried by a zip
        with pytest.raises(ValueError, match="not a regular file"):
            within(10, run_zip, evil)


def test_the_runs_page_opens_beside_runs_whose_files_are_pipes(runs):
    for name in (rf.STATUS_FILE, rf.METRICS_FILE, rf.EVALUATION_FILE, rf.CONTROL_FILE):
        shutil.copytree(runs / RUN, runs / f"pipe-{name.split('.')[0]}")
        (runs / f"pipe-{name.split('.')[0]}" / name).unlink(missing_ok=True)
        os.mkfifo(runs / f"pipe-{name.split('.')[0]}" / name)
    at = within(60, open_app, "runs")
    assert not at.exception and len(at.dataframe[0].value) == 5


def test_metrics_linked_to_an_endless_device_read_as_none(evil):
    (evil / rf.METRICS_FILE).unlink()
    (evil / rf.METRICS_FILE).symlink_to("/dev/zero")
    assert within(10, rf.read_metrics, evil) == []


def test_an_oversized_metrics_file_is_not_read(evil, monkeypatch):
    monkeypatch.setattr("vae.runs.fileio.MAX_JSONL", 100)
    assert rf.read_metrics(evil) == []


def test_a_pipe_as_the_admission_lock_refuses_with_a_sentence(runs):
    os.mkfifo(runs / jobs.ADMISSION_LOCK)
    with pytest.raises(ValueError, match="admission.lock"):
        within(10, jobs.admit_here, runs / RUN)


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_an_atomic_write_never_replaces_what_is_not_a_regular_file(tmp_path, kind, capsys, runs):
    target = tmp_path / "out.zip"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(tmp_path / "elsewhere")
    code, err = cli(capsys, runs, "export", RUN, "--out", str(target))
    assert code == 2 and "not a regular file" in str(err) and ".out.zip." not in str(err)
    assert target.is_fifo() if kind == "fifo" else target.is_symlink()
    assert not list(tmp_path.glob(".out.zip.*"))


def test_a_huge_picture_is_not_shown(evil):
    png = (evil / rf.PICTURES["recon"]).read_bytes()
    huge = png[:16] + (20000).to_bytes(4, "big") + (20000).to_bytes(4, "big") + png[24:]
    (evil / rf.PICTURES["recon"]).write_bytes(huge)
    assert rf.picture_path(evil, "recon") is None and rf.picture_path(evil, "samples") is not None


def test_the_guard_reads_a_regular_file_and_refuses_the_rest(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert guard.read_bytes(tmp_path / "f", 10) == b"abc"
    with pytest.raises(guard.UnsafeFile, match="MB"):
        guard.read_bytes(tmp_path / "f", 2)
    (tmp_path / "l").symlink_to(tmp_path / "f")
    with pytest.raises(guard.UnsafeFile, match="symbolic link"):
        guard.read_bytes(tmp_path / "l", 10)
    with pytest.raises(FileNotFoundError):
        guard.read_bytes(tmp_path / "missing", 10)
    assert read_json(tmp_path / "l", default="d") == "d"


# ---------------------------------------------------------------- every field typed wrong


BAD_STATUS = {
    "pid": ["12x", 1.5, 10**30, [1], -4, True],
    "updated": ["soon", None, 1e400, 1e20, float("nan"), -1e12],
    "epoch": ["3", -1, 1.5, 10**40],
    "state": [7, "exploded", None],
    "message": [["a"], 3],
}


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, vs in BAD_STATUS.items() for v in vs])
def test_a_status_field_of_the_wrong_type_or_range_is_left_out(evil, field, value, capsys):
    status = json.loads((evil / rf.STATUS_FILE).read_text())
    status[field] = value
    (evil / rf.STATUS_FILE).write_text(json.dumps(status))  # 1e400 and NaN as JSON's Infinity / NaN
    read = rf.read_status(evil)
    assert field not in read or read[field] != value
    assert jobs.refresh_status(evil).get("state") not in jobs.ACTIVE_STATES
    code, listed = cli(capsys, evil.parent, "runs")
    assert code == 0 and {r["name"] for r in listed} == {RUN, "evil"}
    assert jobs.stop(evil).get("state") not in jobs.ACTIVE_STATES  # never signals anyone


def test_a_config_nested_ten_thousand_deep_is_a_broken_run(evil, capsys):
    (evil / rf.CONFIG_FILE).write_text("[" * 10_000 + "]" * 10_000)
    code, listed = cli(capsys, evil.parent, "runs")
    assert code == 0 and next(r for r in listed if r["name"] == "evil")["state"] == "broken"


TEXT_NUMBERS = [("train", "lr", "0.001"), ("train", "beta", True), ("model", "sigma", "1"), ("train", "epochs", "10")]


@pytest.mark.parametrize(("section", "field", "value"), TEXT_NUMBERS)
def test_config_numbers_written_as_text_make_the_run_broken(evil, capsys, section, field, value):
    raw = json.loads((evil / rf.CONFIG_FILE).read_text())
    raw[section][field] = value
    (evil / rf.CONFIG_FILE).write_text(json.dumps(raw))
    code, listed = cli(capsys, evil.parent, "runs")
    broken = next(r for r in listed if r["name"] == "evil")
    assert broken["state"] == "broken" and field in broken["message"]


def test_a_config_that_would_allocate_gigabytes_is_refused_before_any_layer_exists(evil):
    raw = json.loads((evil / rf.CONFIG_FILE).read_text())
    raw["model"].update(input_shape=[4_000_000], hidden=[4096])
    (evil / rf.CONFIG_FILE).write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="weights"):
        rf.load_model(evil)


BAD_LINES = [{"type": "epoch"}, {"type": "epoch", "epoch": 3, "step": "x"},
             {"type": "epoch", "epoch": 1, "step": 9, "test_elbo": "high"},
             {"type": "epoch", "epoch": 1, "step": 9, "test_kl_per_dim": [1, "a"]}, [1, 2], "x"]  # fmt: skip


def test_metrics_lines_without_epoch_or_with_wrong_types_break_nothing(evil, capsys, monkeypatch):
    good = rf.read_metrics(evil)
    with open(evil / rf.METRICS_FILE, "a") as f:
        f.writelines(json.dumps(bad) + "\n" for bad in BAD_LINES)
    records = rf.read_metrics(evil)
    assert len(records) == len(good) + 2  # the two lines with an epoch and a step stay, their bad fields dropped
    assert all(isinstance(m["step"], int) and isinstance(m.get("test_elbo", 0.0), float | int) for m in records)
    assert all(all(isinstance(v, float | int) for v in m.get("test_kl_per_dim", [])) for m in records)
    code, listed = cli(capsys, evil.parent, "runs")
    assert code == 0 and next(r for r in listed if r["name"] == "evil")["state"] == "finished"
    monkeypatch.setitem(os.environ, "LATENT_EXPLORER_RUNS", str(evil.parent))
    at = open_app()
    at.sidebar.selectbox(key="run").set_value("evil").run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception


@pytest.mark.parametrize("change", [{"time": 1e20}, {"test_elbo": "good"}, {"active_units": 99},
                                    {"disentanglement": {"mig": "x"}}])  # fmt: skip
def test_an_evaluation_typed_wrong_is_named_not_shown(evil, change):
    from vae.runs.schema import evaluation_problem

    ev = {"test_elbo": -40.0, "test_recon": 30.0, "test_kl": 10.0, "active_units": 3, "latent_dim": 4,
          "n_test": 360, "kl_per_dim": [1.0] * 4, "mean_variance": [1.0] * 4}  # fmt: skip
    assert evaluation_problem(ev) is None
    assert evaluation_problem({**ev, **change})


def test_a_garbage_history_frame_is_skipped(runs):
    from vae.analysis import history

    run = runs / RUN
    frames = history.frames(run)
    assert frames
    frames[0].path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    (rf.history_dir(run) / "frame-999999.safetensors").mkdir()
    assert [f.path for f in history.frames(run)] == [f.path for f in frames[1:]]


# ---------------------------------------------------------------- one run, one writer; a pid is not a process


def test_a_foreground_train_of_a_run_that_trains_in_the_background_is_refused(runs, capsys):
    run = runs / RUN
    status = rf.read_status(run)
    status.update(state="running", pid=os.getpid(), updated=time.time())  # this process: alive, and started before
    rf.write_status(run, status)
    try:
        code, err = cli(capsys, runs, "train", "--resume", RUN)
        assert code == 2 and "already training" in str(err)
    finally:
        rf.write_status(run, {**status, "state": "finished"})


def test_a_foreground_train_counts_against_the_job_limit(runs, capsys, monkeypatch):
    shutil.copytree(runs / RUN, runs / "other")
    status = rf.read_status(runs / "other")
    status.update(state="running", pid=os.getpid(), updated=time.time())
    rf.write_status(runs / "other", status)
    monkeypatch.setenv("LATENT_EXPLORER_MAX_JOBS", "1")
    try:
        code, err = cli(capsys, runs, "train", "--data", "digits", "--epochs", "1", "--name", "third")
        assert code == 2 and "already running" in str(err) and not (runs / "third").exists()
    finally:
        rf.write_status(runs / "other", {**status, "state": "finished"})


def test_a_pid_given_to_another_process_after_the_status_was_written_is_not_the_run(runs):
    run = runs / RUN
    # a process whose command line is this package's (python ... -m vae), sleeping; and one that is not
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "-m", "vae"])
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)
        status = rf.read_status(run)
        status.update(state="running", pid=other.pid, updated=time.time() - 3600)  # written before it started
        rf.write_status(run, status)
        assert jobs.refresh_status(run)["state"] == "interrupted"
        assert other.poll() is None  # and nobody was signalled
        status.update(state="running", pid=other.pid, updated=time.time())
        rf.write_status(run, status)
        assert jobs.refresh_status(run)["state"] == "running"  # a live training that started before: believed
        for pid in (stranger.pid, 1):  # alive and started before, but no training of ours: never the run's
            status.update(state="running", pid=pid, updated=time.time())
            rf.write_status(run, status)
            assert jobs.refresh_status(run)["state"] == "interrupted"
        assert stranger.poll() is None
        rf.write_status(run, {**status, "state": "finished"})
    finally:
        other.kill()
        stranger.kill()
        other.wait()


# ---------------------------------------------------------------- full disks and read-only folders


def test_a_full_disk_while_saving_weights_is_the_disk_sentence(evil, monkeypatch):
    from safetensors import SafetensorError

    from vae.config import TrainConfig
    from vae.data import load_dataset
    from vae.runs import fileio
    from vae.train import train

    def full(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "x" })')

    monkeypatch.setattr(fileio, "save_file", full)
    with pytest.raises(OSError) as caught:
        fileio.save_tensors(evil / "x.safetensors", {})
    assert caught.value.errno == 28 and not list(evil.glob(".x.safetensors.*"))
    cfg = rf.load_data_config(evil)
    ds = load_dataset(cfg)
    run = rf.new_run(evil.parent, "full", ds, cfg, latent_dim=2, hidden=(16,),
                     train_cfg=TrainConfig(epochs=1, threads=1, probe_size=0))  # fmt: skip
    status = train(run, dataset=ds)
    assert status["state"] == "failed" and "free some disk space" in status["message"]
    assert "SafetensorError" not in status["message"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_run_whose_status_claims_a_dead_pid_lists_without_writing(evil, capsys):
    status = rf.read_status(evil)
    rf.write_status(evil, {**status, "state": "running", "pid": 2**22 - 1, "updated": time.time()})
    evil.chmod(0o555)
    try:
        code, listed = cli(capsys, evil.parent, "runs")
        assert code == 0 and next(r for r in listed if r["name"] == "evil")["state"] == "interrupted"
    finally:
        evil.chmod(0o755)


def test_a_read_only_status_write_failure_is_not_raised_by_the_listing(evil, monkeypatch, capsys):
    status = rf.read_status(evil)
    rf.write_status(evil, {**status, "state": "running", "pid": 2**22 - 1, "updated": time.time()})

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(evil / rf.STATUS_FILE))

    monkeypatch.setattr(rf, "write_status", read_only)
    assert jobs.refresh_status(evil)["state"] == "interrupted"
    code, listed = cli(capsys, evil.parent, "runs")
    assert code == 0
