"""Run zips at the library level: export -> import round trip, and refusals that write nothing."""

import io
import zipfile

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
    new = import_run_zip(tmp_path, run_zip(src), "copy")
    a, b = rf.load_model(src).state_dict(), rf.load_model(new).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert rf.read_status(new)["state"] == "finished" and "pid" not in rf.read_status(new)
    assert import_run_zip(tmp_path, run_zip(src), "copy").name == "copy-2"


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
