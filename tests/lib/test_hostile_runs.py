"""One bad run breaks nothing else; races and limits hold; wrong input gets a sentence (CLI, library, pages).

Each test is one hostile case found by trying the app as an outside tester would. The run folders are copies
of a real model trained on scikit-learn's digits (``trained_runs`` in conftest).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from apptest import open_app
from streamlit.testing.v1 import AppTest

from vae.cli.main import main
from vae.config import DataConfig
from vae.data import load_dataset
from vae.runs import folder as rf
from vae.runs import jobs, listing
from vae.runs.runzip import import_run_zip, run_zip

ROOT = Path(__file__).resolve().parents[2]
RUN = "digits-small"


def cli(capsys, root: Path, *args: str) -> tuple[int, dict | list]:
    code = main(["--runs-dir", str(root), *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def break_config(run: Path, **changes) -> None:
    raw = json.loads((run / rf.CONFIG_FILE).read_text())
    for section, value in changes.items():
        raw[section] = value
    (run / rf.CONFIG_FILE).write_text(json.dumps(raw))


def open_page(page: str) -> AppTest:
    return open_app(page or None, check=False)


# ---------------------------------------------------------------- one bad run breaks nothing else


def test_a_run_whose_config_is_not_a_config_is_listed_as_broken_and_the_rest_still_list(runs, capsys):
    shutil.copytree(runs / RUN, runs / "bad")
    break_config(runs / "bad", model=[1, 2])
    code, listed = cli(capsys, runs, "runs")
    by_name = {r["name"]: r for r in listed}
    assert code == 0 and set(by_name) == {RUN, "bad"}
    assert by_name["bad"]["state"] == "broken" and "config.json in bad" in by_name["bad"]["message"]
    assert by_name[RUN]["state"] == "finished"


def test_the_runs_page_shows_a_broken_run_and_deletes_it(runs):
    shutil.copytree(runs / RUN, runs / "bad")
    break_config(runs / "bad", model=[1, 2])
    at = open_page("runs")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert dict(zip(table["run"], table["state"], strict=True))["bad"] == "broken"
    at.sidebar.selectbox(key="run").set_value("bad").run()
    assert not at.exception, at.exception
    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception and not (runs / "bad").exists() and (runs / RUN).is_dir()


@pytest.mark.slow
@pytest.mark.parametrize("page", ["explore", "decode", "interpolate", "train"])
def test_every_page_says_a_broken_run_in_a_sentence(runs, page):
    break_config(runs / RUN, model={"input_shape": [3, 10**9, 10**9]})
    at = open_page(page)
    assert not at.exception, at.exception
    shown = [e.value for e in at.error] + [c.value for c in at.caption] + [c.value for c in at.sidebar.caption]
    assert any("input_shape" in text for text in shown), shown


def test_a_zip_declaring_an_absurd_input_shape_is_refused_before_anything_is_sized(trained_runs, tmp_path):
    members = {}
    with zipfile.ZipFile(io.BytesIO(run_zip(trained_runs / RUN))) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    raw = json.loads(members[rf.CONFIG_FILE])
    raw["model"]["input_shape"] = [1, 2**31, 2**31]
    members[rf.CONFIG_FILE] = json.dumps(raw).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    with pytest.raises(ValueError, match="at most 4,194,304 values per item"):
        import_run_zip(tmp_path / "runs", buf.getvalue(), "huge")


def test_a_failed_resume_leaves_the_runs_status_as_it_was(runs, capsys):
    run = runs / RUN
    before = rf.read_status(run)
    (run / rf.STATE_FILE).write_bytes((run / rf.STATE_FILE).read_bytes()[:300])  # truncated
    code, out = cli(capsys, runs, "train", "--resume", RUN)
    assert code == 2 and "cannot be resumed" in out["error"]
    assert rf.read_status(run) == before
    (run / rf.STATE_FILE).unlink()
    code, out = cli(capsys, runs, "train", "--resume", RUN)
    assert code == 2 and "no resume state" in out["error"]
    assert rf.read_status(run) == before
    with pytest.raises(FileNotFoundError, match="no resume state"):
        jobs.start(run, resume=True)  # the app's Resume button: refused before the status changes
    assert rf.read_status(run) == before


def test_a_tab_whose_run_was_deleted_elsewhere_falls_back_with_a_note(runs):
    shutil.copytree(runs / RUN, runs / "other")
    at = open_page("explore")
    at.sidebar.selectbox(key="run").set_value("other").run()
    assert not at.exception
    rf.delete_run(runs, "other")  # another tab deletes it
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="run").value == RUN
    assert any("other is gone" in t.value for t in at.toast)


# ---------------------------------------------------------------- races and limits


RACER = """
import sys
from vae.runs import jobs
print("ready", flush=True)
sys.stdin.readline()  # every racer clicks Start at the same instant: when the test says go
try:
    jobs.start(sys.argv[1])
    print("started")
except ValueError as e:
    print(e)
"""


@pytest.mark.slow
def test_three_simultaneous_starts_admit_only_one_when_the_limit_is_one(runs):
    import subprocess
    import sys

    names = []
    for i in range(3):
        shutil.copytree(runs / RUN, runs / f"race-{i}")
        names.append(str(runs / f"race-{i}"))
    env = {**os.environ, "LATENT_EXPLORER_MAX_JOBS": "1", "PYTHONPATH": str(ROOT)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, n], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )  # fmt: skip
        for n in names
    ]
    try:
        assert [p.stdout.readline().strip() for p in racers] == ["ready"] * 3  # each has imported what it needs
        for p in racers:
            p.stdin.write("go\n")
        for p in racers:
            p.stdin.flush()
        results = [p.communicate(timeout=120)[0].strip() for p in racers]
        assert results.count("started") == 1, results
        assert all("this machine allows 1 at once" in r for r in results if r != "started"), results
    finally:
        for n in names:
            jobs.stop(n, wait=20)


@pytest.mark.slow
@pytest.mark.parametrize("state", ["finished", "running"])
def test_stop_never_signals_a_process_that_is_not_the_runs_training(runs, state):
    """A status file's pid outlives its process; the number may since belong to any other program."""
    import subprocess
    import sys

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        status = rf.read_status(runs / RUN)
        status.update(state=state, pid=other.pid)  # finished long ago, or killed and its pid reused
        rf.write_json(runs / RUN / rf.STATUS_FILE, status)
        jobs.stop(runs / RUN, wait=1.0)
        assert other.poll() is None, "stop() signalled a process that is not this run's training"
        assert rf.read_control(runs / RUN) == "stop"  # a training process would still read the request
    finally:
        other.kill()
        other.wait()


def test_a_refused_background_start_leaves_no_empty_run(runs, capsys, monkeypatch):
    monkeypatch.setattr(jobs, "max_jobs", lambda: 0)  # as if another training held the only place
    code, out = cli(capsys, runs, "train", "--background", "--epochs", "1", "--name", "refused")
    assert code == 2 and "allows 0 at once" in out["error"]
    assert not (runs / "refused").exists()


def test_a_run_cannot_take_the_uploads_folders_name(runs):
    with pytest.raises(ValueError, match="uploaded data files"):
        rf.rename_run(runs, RUN, "_uploads")
    assert (runs / RUN).is_dir()


def test_the_run_zip_uploader_states_the_servers_own_limit(runs):
    at = open_page("runs")
    assert at.get("file_uploader")[0].proto.max_upload_size_mb == 200  # .streamlit/config.toml


# ---------------------------------------------------------------- wrong input gets a sentence


@pytest.mark.parametrize("points", ["-3", "0"])
def test_embed_refuses_a_number_of_points_below_one(runs, capsys, points):
    code, out = cli(capsys, runs, "embed", RUN, "--method", "pca", "--max-points", points)
    assert code == 2 and "--max-points must be a whole number of at least 1" in out["error"]


def test_embed_into_a_folder_and_train_into_an_unwritable_runs_folder_say_why(runs, capsys, tmp_path):
    code, out = cli(capsys, runs, "embed", RUN, "--method", "pca", "--out", str(tmp_path))
    assert code == 2 and "is a folder" in out["error"]
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    code, out = cli(capsys, not_a_folder, "train", "--epochs", "1")
    assert code == 2 and "can be written" in out["error"], out


def test_a_runs_zip_is_the_same_bytes_whatever_the_clock_says(runs, monkeypatch):
    """Each member carries its file's time, not the moment of the export (two exports a second apart differed)."""
    import time

    first = run_zip(runs / RUN)
    later = time.time() + 3600.0
    monkeypatch.setattr(time, "time", lambda: later)
    assert run_zip(runs / RUN) == first


def test_a_file_dated_before_1980_or_after_2107_still_exports(runs):
    """A zip member's time runs from 1980 to 2107: a file touched to the epoch, or far ahead, carries the nearest."""
    os.utime(runs / RUN / "config.json", (0, 0))
    os.utime(runs / RUN / "status.json", (2**33, 2**33))  # the year 2242
    with zipfile.ZipFile(io.BytesIO(run_zip(runs / RUN))) as zf:
        assert zf.getinfo("config.json").date_time == (1980, 1, 1, 0, 0, 0)
        assert zf.getinfo("status.json").date_time == (2107, 12, 31, 23, 59, 58)


def test_export_then_import_from_the_command_line(runs, capsys, tmp_path):
    out_zip = tmp_path / "copy.zip"
    code, out = cli(capsys, runs, "export", RUN, "--out", str(out_zip))
    assert code == 0 and out_zip.read_bytes() == run_zip(runs / RUN)
    code, out = cli(capsys, runs, "import", str(out_zip), "--name", "copy")
    assert code == 0 and out["run"] == "copy"
    assert rf.load_model(runs / "copy").state_dict().keys() == rf.load_model(runs / RUN).state_dict().keys()
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    code, out = cli(capsys, runs, "import", str(tmp_path / "junk.zip"))
    assert code == 2 and "not a zip archive" in out["error"]


def npz(tmp_path: Path, x: np.ndarray) -> Path:
    path = tmp_path / f"x-{x.dtype}.npz"
    np.savez(path, x=x)
    return path


def test_arrays_are_scaled_by_what_they_are(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits().images[:40]  # (40, 8, 8), values 0..16
    cases = {
        "bool": (digits > 8, lambda v: v.astype(np.float32)),
        "uint8": ((digits * 15).astype(np.uint8), lambda v: v / 255),
        "int64 0/1": ((digits > 8).astype(np.int64), lambda v: v.astype(np.float32)),
        "uint16": ((digits * 4000).astype(np.uint16), lambda v: v / 65535),
    }
    for name, (x, expected) in cases.items():
        ds = load_dataset(DataConfig(name="file", path=str(npz(tmp_path, x)), test_fraction=0.5, split_seed=0))
        seen = np.sort(np.unique(np.concatenate([ds.x_train.numpy().ravel(), ds.x_test.numpy().ravel()])))
        np.testing.assert_allclose(seen, np.sort(np.unique(expected(x))), rtol=1e-6, err_msg=name)


def test_values_beyond_float32_are_refused_not_turned_into_infinities(tmp_path):
    x = np.ones((10, 3)) * 1e300
    with pytest.raises(ValueError, match="beyond what 32-bit floats hold"):
        load_dataset(DataConfig(name="file", path=str(npz(tmp_path, x))))


def test_the_admission_lock_is_hidden_from_the_run_list(runs):
    jobs_lock = runs / jobs.ADMISSION_LOCK
    jobs_lock.touch()
    assert listing.run_names(runs) == [RUN] and os.path.basename(jobs_lock).startswith(".")
