"""A run may read only built-in data and files in the runs folder's uploads, whatever its config.json says.

Hostile configs arrive two ways: inside a run .zip (refused at import, nothing written) and in a run
folder copied in by hand (refused when the run's data is opened: library, CLI and pages).
"""

import io
import json
import os
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_digits

from vae.config import DataConfig
from vae.data import load_dataset, sources
from vae.runs import folder as rf
from vae.runs.runzip import import_run_zip, run_zip


@pytest.fixture(scope="module")
def digits_csv_bytes() -> bytes:
    """The first 200 of scikit-learn's digits as a CSV with a label column."""
    d = load_digits()
    rows = [
        ",".join(map(str, list(x.astype(int)) + [int(y)])) for x, y in zip(d.data[:200], d.target[:200], strict=True)
    ]
    return (",".join([f"p{i}" for i in range(64)] + ["label"]) + "\n" + "\n".join(rows) + "\n").encode()


@pytest.fixture
def secret(tmp_path, digits_csv_bytes):
    """A CSV outside every runs folder: the file a crafted run must never make the server read."""
    path = tmp_path / "elsewhere" / "secret.csv"
    path.parent.mkdir()
    path.write_bytes(digits_csv_bytes)
    return path


def zip_with_data(src_run, data: dict) -> bytes:
    """A copy of ``src_run``'s zip whose config.json names ``data``."""
    files = {}
    with zipfile.ZipFile(io.BytesIO(run_zip(src_run))) as zf:
        for name in zf.namelist():
            files[name] = zf.read(name)
    cfg = json.loads(files[rf.CONFIG_FILE])
    cfg["data"] = data
    files[rf.CONFIG_FILE] = json.dumps(cfg).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return buf.getvalue()


def hostile_data(secret) -> list[dict]:
    return [
        {"name": "file", "path": str(secret)},
        {"name": "file", "path": str(secret.parent)},
        {"name": "file", "path": "/"},
        {"name": "file", "path": "_uploads/../../elsewhere/secret.csv"},
        {"name": "file", "path": "../elsewhere/secret.csv"},
        {"name": "file", "path": "_uploads"},
        {"name": "fashion-mnist", "root": "/"},
        {"name": "mnist", "root": str(secret.parent)},
        {"name": "digits", "path": str(secret)},
        {"name": "sprites", "root": "/usr"},
        {"name": "no-such-data"},
        {"name": "file", "path": ["a", "b"]},
    ]


def test_each_hostile_zip_is_refused_with_a_sentence_and_writes_nothing(trained_runs, tmp_path, secret):
    root = tmp_path / "runs"
    root.mkdir()
    for data in hostile_data(secret):
        with pytest.raises(ValueError) as err:
            import_run_zip(root, zip_with_data(trained_runs / "digits-small", data), "crafted")
        message = str(err.value)
        assert "\n" not in message and "p0,p1" not in message, message  # a sentence, never the file's text
        assert sorted(os.listdir(root)) == [], data


def test_a_run_folder_copied_in_by_hand_cannot_read_outside(runs, secret):
    run = runs / "digits-small"
    raw = json.loads((run / rf.CONFIG_FILE).read_text())
    for data in hostile_data(secret):
        raw["data"] = data
        (run / rf.CONFIG_FILE).write_text(json.dumps(raw))
        with pytest.raises(ValueError):
            rf.load_data_config(run)


def test_a_symlink_in_the_uploads_leading_out_is_refused(tmp_path, secret):
    root = tmp_path / "runs"
    sources.uploads_dir(root).mkdir(parents=True)
    (sources.uploads_dir(root) / "link.csv").symlink_to(secret)
    with pytest.raises(ValueError, match="outside"):
        sources.checked(DataConfig(name="file", path="_uploads/link.csv"), root)


def test_uploads_and_built_in_data_are_accepted(tmp_path, digits_csv_bytes):
    root = tmp_path / "runs"
    path = sources.store_upload(root, "my digits.csv", digits_csv_bytes)
    assert path.parent == sources.uploads_dir(root) and path.name.startswith("my-digits-")
    assert sources.store_upload(root, "my digits.csv", digits_csv_bytes) == path  # same bytes, same file
    stored = sources.stored_form(DataConfig(name="file", path=str(path)), root)
    assert stored.path == f"_uploads/{path.name}"  # relative: the run folder travels
    assert sources.checked(stored, root).path == str(path.resolve())
    assert sources.checked(DataConfig(name="digits"), root) == DataConfig(name="digits")
    assert (
        len(
            load_dataset(
                sources.checked(stored, root),
            ).x_train
        )
        == 160
    )


def test_a_zip_from_another_machine_opens_with_how_to_supply_its_data(trained_runs, tmp_path, digits_csv_bytes):
    root = tmp_path / "runs"
    name = "digits-0123456789.csv"
    data = {"name": "file", "path": f"/home/someone/latent/checkpoints/_uploads/{name}", "label_column": "label"}
    run = import_run_zip(root, zip_with_data(trained_runs / "digits-small", data), "from-elsewhere")
    assert rf.load_config(run)[2].path == f"_uploads/{name}"
    with pytest.raises(FileNotFoundError) as err:
        rf.load_data_config(run)
    assert "not on this machine" in str(err.value) and "Upload that file on the Train page" in str(err.value)
    (sources.uploads_dir(root)).mkdir(exist_ok=True)
    (sources.uploads_dir(root) / name).write_bytes(digits_csv_bytes)
    assert load_dataset(rf.load_data_config(run)).y_train is not None


def test_creating_a_run_on_data_outside_is_refused(tmp_path, secret):
    from vae.config import ModelConfig, TrainConfig

    with pytest.raises(ValueError, match="outside"):
        rf.create_run(tmp_path / "runs", "x", ModelConfig(), TrainConfig(), DataConfig(name="file", path=str(secret)))


def test_the_cli_keeps_a_users_file_in_the_uploads(tmp_path, secret, capsys):
    from vae.cli.main import main

    root = tmp_path / "runs"
    code = main(["--runs-dir", str(root), "train", "--data", str(secret), "--epochs", "1", "--json", "--name", "mine"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["state"] == "finished", out
    stored = rf.load_config(root / "mine")[2]
    assert stored.name == "file" and stored.path.startswith("_uploads/secret-")
    assert (root / stored.path).read_bytes() == secret.read_bytes()
    assert np.isfinite(out["test_elbo"])
