"""Run folders: names, atomic files, save -> load round trips and clear errors for bad files."""

import json
import re

import pytest
import torch

from vae.config import DataConfig, ModelConfig, TrainConfig
from vae.models import build_model
from vae.runs import folder as rf
from vae.runs import listing

MODEL = ModelConfig(input_shape=(1, 28, 28), arch="conv", latent_dim=3, channels=(4, 8))


@pytest.fixture
def run(tmp_path):
    path = rf.create_run(tmp_path, "demo", MODEL, TrainConfig(epochs=1), DataConfig())
    torch.manual_seed(0)
    model = build_model(MODEL)
    rf.save_model(path, model)
    return path, model


def test_save_load_round_trip_compares_every_tensor(run):
    path, model = run
    loaded = rf.load_model(path)
    ref, got = model.state_dict(), loaded.state_dict()
    assert ref.keys() == got.keys()
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    assert not loaded.training
    assert loaded.cfg == MODEL


def test_configs_round_trip(run):
    path, _ = run
    m, t, d = rf.load_config(path)
    assert (m, t, d) == (MODEL, TrainConfig(epochs=1), DataConfig())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("my run", "my-run"),
        ("../../etc/passwd", "etc-passwd"),
        ("a/b\\c", "a-b-c"),
        ("x\x00\x1b[31m", "x-31m"),
        ("." * 5 + "hidden", "hidden"),
        ("é-ok_1.2", "ok_1.2"),
    ],
)
def test_run_names_are_sanitised(tmp_path, name, expected):
    assert rf.sanitize_run_name(name) == expected
    assert rf.run_path(tmp_path, expected) == tmp_path.resolve() / expected
    with pytest.raises(ValueError, match=f"is not a run name .*'{re.escape(expected)}' would be"):
        rf.run_path(tmp_path, name)  # never another run's folder: the name must be a run name already


def test_long_and_empty_names(tmp_path):
    assert len(rf.sanitize_run_name("a" * 10_000)) == rf.MAX_NAME
    for bad in ["", "../..", "///", "\x00\x01"]:
        with pytest.raises(ValueError, match="no usable characters"):
            rf.sanitize_run_name(bad)


def test_create_run_never_overwrites(tmp_path):
    a = rf.create_run(tmp_path, "same", MODEL, TrainConfig(), DataConfig())
    b = rf.create_run(tmp_path, "same", MODEL, TrainConfig(), DataConfig())
    assert a != b and a.name == "same" and b.name == "same-2"


def test_truncated_weights_give_a_clear_error(run):
    path, _ = run
    data = (path / rf.MODEL_FILE).read_bytes()
    (path / rf.MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or not a safetensors file"):
        rf.load_model(path)


def test_foreign_file_gives_a_clear_error(run):
    path, _ = run
    (path / rf.MODEL_FILE).write_bytes(b"PK\x03\x04 this is a zip, not weights")
    with pytest.raises(ValueError, match="truncated or not a safetensors file"):
        rf.load_model(path)


def test_weights_that_do_not_match_the_config(run):
    path, _ = run
    other = build_model(MODEL.replace(latent_dim=5))
    rf.save_model(path, other)
    with pytest.raises(ValueError, match="does not match config.json|implies"):
        rf.load_model(path)


def test_missing_tensor_is_named(run):
    path, model = run
    sd = dict(model.state_dict())
    sd.pop("decoder.fc.bias")
    rf.save_tensors(path / rf.MODEL_FILE, sd)
    with pytest.raises(ValueError, match="missing \\['decoder.fc.bias'\\]"):
        rf.load_model(path)


def test_unknown_config_version(run):
    path, _ = run
    raw = json.loads((path / rf.CONFIG_FILE).read_text())
    raw["version"] = 99
    (path / rf.CONFIG_FILE).write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="version 99"):
        rf.load_config(path)


def test_unknown_config_fields(run):
    path, _ = run
    raw = json.loads((path / rf.CONFIG_FILE).read_text())
    raw["model"]["attention_heads"] = 4
    (path / rf.CONFIG_FILE).write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="attention_heads"):
        rf.load_config(path)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        rf.load_config(tmp_path)


def test_atomic_write_leaves_no_temp_files_and_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "status.json"
    rf.write_json(target, {"a": 1})

    class Boom:
        pass

    with pytest.raises(TypeError):
        rf.write_json(target, {"a": Boom()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_jsonl_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rf.append_jsonl(path, {"step": 1})
    rf.append_jsonl(path, {"step": 2})
    with open(path, "a") as f:
        f.write('{"step": 3, "lo')
    assert [r["step"] for r in rf.read_jsonl(path)] == [1, 2]


def test_list_rename_delete(run, tmp_path):
    path, _ = run
    runs = listing.list_runs(tmp_path)
    assert [r["name"] for r in runs] == ["demo"] and runs[0]["has_model"]
    assert listing.run_names(tmp_path) == ["demo"]
    new = rf.rename_run(tmp_path, "demo", "renamed")
    assert new.name == "renamed" and rf.is_run(new)
    rf.create_run(tmp_path, "other", MODEL, TrainConfig(), DataConfig())
    with pytest.raises(ValueError, match="already exists"):
        rf.rename_run(tmp_path, "renamed", "other")
    rf.delete_run(tmp_path, "renamed")
    assert [r["name"] for r in listing.list_runs(tmp_path)] == ["other"]
    with pytest.raises(FileNotFoundError, match="no run named"):
        rf.delete_run(tmp_path, "renamed")


def test_delete_cannot_escape_the_runs_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    root = tmp_path / "runs"
    root.mkdir()
    with pytest.raises(FileNotFoundError):
        rf.delete_run(root, "../outside")
    assert (outside / "keep.txt").exists()


def test_the_project_root_is_the_repository_so_runs_default_to_its_checkpoints_folder(monkeypatch):
    from vae.runs import places

    assert (places.PROJECT_ROOT / "app.py").is_file() and (places.PROJECT_ROOT / "vae" / "__init__.py").is_file()
    monkeypatch.delenv("LATENT_EXPLORER_RUNS", raising=False)
    assert places.default_root() == places.PROJECT_ROOT / "checkpoints"
