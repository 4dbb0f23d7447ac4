"""Run zips at the library level: export -> import round trip, and refusals that write nothing."""

import io
import zipfile

import numpy as np
import pytest
import torch

from vae.runs import folder as rf
from vae.runs.runzip import import_run_zip, run_zip


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return buf.getvalue()


def entries(root):
    return sorted(p.name for p in root.iterdir())


def test_round_trip_gives_the_same_weights(trained_runs, tmp_path):
    src = trained_runs / "digits-small"
    new = import_run_zip(tmp_path, run_zip(src), "file", name="copy")
    a, b = rf.load_model(src).state_dict(), rf.load_model(new).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert rf.read_status(new)["state"] == "finished" and "pid" not in rf.read_status(new)
    assert import_run_zip(tmp_path, run_zip(src), "file", name="copy").name == "copy-2"


@pytest.mark.parametrize(
    ("member", "match"),
    [
        ("../evil.json", "a path"),
        ("/etc/passwd", "a path"),
        ("sub/config.json", "a path"),
        ("notes.txt", "unexpected file"),
    ],
)
def test_paths_and_strangers_are_refused(trained_runs, tmp_path, member, match):
    files = {n: (trained_runs / "digits-small" / n).read_bytes() for n in ("config.json", "model.safetensors")}
    files[member] = b"{}"
    with pytest.raises(ValueError, match=match):
        import_run_zip(tmp_path, zip_of(files), "bad")
    assert entries(tmp_path) == []


def test_truncated_weights_are_refused(trained_runs, tmp_path):
    src = trained_runs / "digits-small"
    weights = (src / "model.safetensors").read_bytes()
    data = zip_of({"config.json": (src / "config.json").read_bytes(), "model.safetensors": weights[:-100]})
    with pytest.raises(ValueError, match="truncated or not a safetensors file"):
        import_run_zip(tmp_path, data, "cut")
    assert entries(tmp_path) == []


def test_a_pickle_in_place_of_weights_is_never_unpickled(trained_runs, tmp_path):
    import pickle  # the test builds the hostile payload; the library never unpickles

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    src = trained_runs / "digits-small"
    data = zip_of({"config.json": (src / "config.json").read_bytes(), "model.safetensors": pickle.dumps(Payload())})
    root = tmp_path / "runs"
    with pytest.raises(ValueError, match="not a safetensors file"):
        import_run_zip(root, data, "evil")
    assert not marker.exists()
    assert not root.exists() or entries(root) == []


def test_a_run_zip_carries_the_whole_run_and_its_name(trained_runs, tmp_path):
    """Pictures and the latent map's history travel with the run, and the import keeps the run's own name (the
    zip's file name was used before: "run"), taking the next free one when it is taken."""
    from vae.analysis import history

    src = trained_runs / "digits-small"
    data = run_zip(src)
    root = tmp_path / "runs"
    first = import_run_zip(root, data, "run")  # "run": what a browser calls a downloaded file
    second = import_run_zip(root, data, "run")
    assert (first.name, second.name) == ("digits-small", "digits-small-2")
    for name in rf.PICTURES.values():
        assert (first / name).read_bytes() == (src / name).read_bytes()
    frames, copied = history.frames(src), history.frames(first)
    assert len(copied) == len(frames) > 1 and history.read_probe(first)[2] == history.read_probe(src)[2]
    np.testing.assert_array_equal(copied[-1].codes(), frames[-1].codes())


@pytest.mark.parametrize("member", ["latent-history/../evil.safetensors", "latent-history/frame-1.safetensors",
                                    "latent-history/notes.txt", "other/probe.safetensors"])  # fmt: skip
def test_a_zip_with_a_history_member_outside_the_pattern_is_refused(trained_runs, tmp_path, member):
    buf = io.BytesIO(run_zip(trained_runs / "digits-small"))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(member, b"x")
    with pytest.raises(ValueError, match="path|unexpected"):
        import_run_zip(tmp_path / "runs", buf.getvalue(), "x")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_runs_tags_and_note_are_kept_checked_and_carried_by_its_zip(trained_runs, tmp_path):
    import os
    import shutil

    src = tmp_path / "src"
    shutil.copytree(trained_runs / "digits-small", src)
    assert rf.read_notes(src) == {"tags": [], "note": ""}
    rf.write_notes(src, {"tags": ["β sweep", "  β   sweep ", "baseline"], "note": "the first try"})
    assert rf.read_notes(src) == {"tags": ["β sweep", "baseline"], "note": "the first try"}  # trimmed, once each
    for bad in ({"tags": "baseline"}, {"tags": ["x" * 41]}, {"note": "x" * 4001}, {"colour": "red"}, ["a"]):
        with pytest.raises(ValueError, match="run"):
            rf.write_notes(src, bad)
    copy = import_run_zip(tmp_path / "runs", run_zip(src), "run")
    assert rf.read_notes(copy) == rf.read_notes(src)
    assert rf.NOTES_FILE in zipfile.ZipFile(io.BytesIO(run_zip(src))).namelist()
    forged = zip_of({**{n: (src / n).read_bytes() for n in (rf.CONFIG_FILE, rf.MODEL_FILE)},
                     rf.NOTES_FILE: b'{"tags": [1, 2]}'})  # fmt: skip
    with pytest.raises(ValueError, match="tags are a list of words"):
        import_run_zip(tmp_path / "runs", forged, "forged")
    (src / rf.NOTES_FILE).unlink()
    os.symlink("/etc/passwd", src / rf.NOTES_FILE)  # planted: never followed
    assert rf.read_notes(src) == {"tags": [], "note": ""}
