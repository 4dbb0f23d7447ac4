"""The Runs page through Streamlit's AppTest: the table, evaluation, rename, delete, and run .zip files."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from apptest import open_app, shown
from safetensors.torch import load_file
from streamlit.testing.v1 import AppTest

from vae.runs import folder as rf

ROOT = Path(__file__).resolve().parents[2]
RUN = "digits-small"


def open_runs() -> AppTest:
    return open_app("runs")


def messages(at: AppTest, kind: str = "error") -> list[str]:
    return [e.value for e in getattr(at, kind)]


def run_folders(root: Path) -> list[str]:
    """Every entry of the runs folder, hidden ones included (a half-written import would show here)."""
    return sorted(p.name for p in root.iterdir())


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    return at.file_uploader[0].set_value((name, data, "application/zip")).run()


def test_table_lists_the_finished_run_with_its_config_and_test_elbo(runs):
    at = open_runs()
    table = at.dataframe[0].value
    row = table[table["run"] == RUN].iloc[0]
    assert row["state"] == "finished"
    assert (row["data"], row["model"], row["latent"], row["epochs"]) == ("digits", "MLP 64", 4, "15 / 15")
    last = [m for m in rf.read_metrics(runs / RUN) if m["type"] == "epoch"][-1]
    assert row["test ELBO"] == pytest.approx(last["test_elbo"])
    assert at.multiselect(key="runs_compare").value == [RUN]
    assert [h.value for h in at.subheader][:3] == ["Compare curves", f"Evaluate {RUN}", f"Manage {RUN}"]


def test_evaluate_fills_in_the_numbers_and_the_table(runs):
    at = open_runs()
    assert "Not evaluated yet." in [c.value for c in at.caption]
    at.select_slider(key="runs_iwae_k").set_value(10)
    at.button(key="runs_evaluate").click().run()
    assert not at.exception and not messages(at)
    ev = json.loads((runs / RUN / rf.EVALUATION_FILE).read_text())
    assert ev["iwae_k"] == 10 and ev["n_test"] == 360
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test ELBO"] == f"{ev['test_elbo']:.2f}"
    assert metrics["IWAE log p(x), K=10"] == f"{ev['iwae_ll']:.2f}"
    assert metrics["Active units"] == f"{ev['active_units']} of 4"
    assert metrics["10-NN accuracy"] == f"{100 * ev['knn_accuracy']:.1f} %"
    assert ev["iwae_ll"] >= ev["test_elbo"] - 1.0  # the IWAE bound is the tighter one (up to noise)
    assert 0.5 < ev["knn_accuracy"] <= 1.0  # a 4-d code of the digits keeps most of the class
    at.run()  # a reload still shows the results, and the table has them too
    row = at.dataframe[0].value.iloc[0]
    assert row["IWAE log p(x)"] == pytest.approx(ev["iwae_ll"])
    assert row["active units"] == f"{ev['active_units']} / 4"
    assert row["total correlation"] == pytest.approx(ev["total_correlation"])  # the KL split three ways, per run
    assert row["index-code MI"] == pytest.approx(ev["index_code_mi"]) and "dimension-wise KL" in row
    assert "runs_kl_chart" in [getattr(e, "key", None) for e in at.main]


def test_rename_moves_the_folder_and_keeps_it_selected(runs):
    at = open_runs()
    at.text_input(key=f"runs_new_name_{RUN}").set_value("digits renamed")
    at.button(key="runs_rename").click().run()
    assert not at.exception
    assert messages(at, "success") == [f"Renamed {RUN} to digits-renamed."]
    assert run_folders(runs) == ["digits-renamed"]
    assert at.sidebar.selectbox(key="run").value == "digits-renamed"
    assert at.dataframe[0].value["run"].tolist() == ["digits-renamed"]


def test_rename_to_an_existing_name_is_refused(runs):
    shutil.copytree(runs / RUN, runs / "other")
    at = open_runs()
    at.sidebar.selectbox(key="run").set_value(RUN).run()
    at.text_input(key=f"runs_new_name_{RUN}").set_value("other")
    at.button(key="runs_rename").click().run()
    assert messages(at) == ["A run named 'other' already exists; choose another name."]
    assert run_folders(runs) == [RUN, "other"]


def test_delete_asks_first_and_cancel_keeps_the_run(runs):
    at = open_runs()
    at.button(key="runs_delete").click().run()
    assert [shown(m) for m in messages(at, "warning")] == [f"Delete {RUN} and all its files? This cannot be undone."]
    assert (runs / RUN).is_dir()
    at.button(key="runs_delete_no").click().run()
    assert (runs / RUN).is_dir() and not messages(at, "warning")
    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception
    assert messages(at, "success") == [f"Deleted {RUN}."]
    assert run_folders(runs) == []
    assert "No runs yet" in at.info[0].value


def test_download_then_upload_makes_an_identical_model(runs):
    at = open_runs()
    data = at.session_state["runs_zip"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
    own = sorted(n for n in names if "/" not in n)
    assert own == sorted(["config.json", "metrics.jsonl", "model.safetensors", "status.json",
                          *(p.name for p in (runs / RUN).glob("*.png"))])  # fmt: skip
    assert sorted(n for n in names if "/" in n) == sorted(f"{rf.HISTORY_DIR}/{p.name}"
                                                          for p in rf.history_dir(runs / RUN).iterdir())  # fmt: skip
    upload(at, f"{RUN}.zip", data)
    assert not at.exception and not messages(at)
    assert messages(at, "success") == [f"Imported {RUN}.zip as {RUN}-2; it is now the selected run."]
    assert at.file_uploader[0].value is None  # a fresh uploader, ready for the next zip
    copy = runs / f"{RUN}-2"
    assert run_folders(runs) == [RUN, f"{RUN}-2"]
    assert at.sidebar.selectbox(key="run").value == f"{RUN}-2"
    a, b = load_file(runs / RUN / rf.MODEL_FILE), load_file(copy / rf.MODEL_FILE)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert rf.load_config(copy) == rf.load_config(runs / RUN)
    assert rf.read_metrics(copy) == rf.read_metrics(runs / RUN)
    status = rf.read_status(copy)
    assert status["state"] == "finished" and "pid" not in status
    assert at.dataframe[0].value.set_index("run").loc[f"{RUN}-2", "state"] == "finished"
    assert len(list(rf.history_dir(copy).iterdir())) == len(list(rf.history_dir(runs / RUN).iterdir()))


def _good_members(runs: Path) -> dict[str, bytes]:
    return {n: (runs / RUN / n).read_bytes() for n in ("config.json", "model.safetensors")}


@pytest.mark.parametrize(
    "extra, keep_run_files, expected",
    [
        ({"../evil": b"x"}, True, "The zip holds '../evil', a path; a run .zip holds only plain files"),
        ({"/etc/evil": b"x"}, True, "The zip holds '/etc/evil', a path"),
        ({"runs/config.json": b"{}"}, True, "The zip holds 'runs/config.json', a path"),
        ({"train.log": b"x"}, True, "The zip holds an unexpected file 'train.log'"),
        ({"status.json": b"{}"}, False, "The zip has no config.json or model.safetensors"),
        ({"status.json": b"[1, 2]"}, True, "status.json in the zip is not a JSON object."),
        (
            {"evaluation.json": b'{"test_elbo": "high"}'},
            True,
            "evaluation.json in the zip is not an evaluation: its field 'test_elbo' is not a number.",
        ),
    ],
)
@pytest.mark.slow
def test_a_zip_with_bad_entries_is_refused_and_nothing_is_written(runs, extra, keep_run_files, expected):
    at = open_runs()
    before = run_folders(runs)
    upload(at, "evil.zip", make_zip({**(_good_members(runs) if keep_run_files else {}), **extra}))
    assert not at.exception
    assert len(messages(at)) == 1 and messages(at)[0].startswith("evil.zip was not imported: " + expected)
    assert run_folders(runs) == before


def test_a_corrupt_or_mismatched_safetensors_is_refused(runs):
    at = open_runs()
    before = run_folders(runs)
    weights = (runs / RUN / rf.MODEL_FILE).read_bytes()
    upload(at, "cut.zip", make_zip({**_good_members(runs), "model.safetensors": weights[: len(weights) // 2]}))
    assert messages(at) == [
        "cut.zip was not imported: model.safetensors in the zip is truncated or not a safetensors file "
        + messages(at)[0].split("safetensors file ", 1)[1]
    ]
    # a pickle (what torch.save writes) is never unpickled: it is just not a safetensors file
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    upload(at, "pickle.zip", make_zip({**_good_members(runs), "model.safetensors": buf.getvalue()}))
    assert "is truncated or not a safetensors file" in messages(at)[0]
    # weights of another architecture: refused from the header, before any tensor is allocated
    cfg = json.loads((runs / RUN / rf.CONFIG_FILE).read_text())
    cfg["model"]["latent_dim"] = 6
    upload(at, "other.zip", make_zip({**_good_members(runs), "config.json": json.dumps(cfg).encode()}))
    assert messages(at)[0].startswith("other.zip was not imported: model.safetensors in the zip does not match")
    # a config that fails validation gets the config's own sentence
    cfg["model"]["latent_dim"] = 0
    upload(at, "bad-config.zip", make_zip({**_good_members(runs), "config.json": json.dumps(cfg).encode()}))
    assert "ModelConfig.latent_dim must be an integer from 1 to 128; got 0." in messages(at)[0]
    upload(at, "not-a-zip.zip", b"PK\x03\x04 this is not really a zip")
    assert messages(at) == [
        "not-a-zip.zip was not imported: "
        "This file is not a zip archive; expected a run .zip made by the Download button."
    ]
    assert run_folders(runs) == before


def test_an_oversized_declared_member_is_refused_before_reading(runs):
    at = open_runs()
    before = run_folders(runs)
    big = make_zip({**_good_members(runs), "status.json": b" " * (65 * 1024)})  # compresses to almost nothing
    upload(at, "big.zip", big)
    assert messages(at) == [
        "big.zip was not imported: status.json in the zip is 66,560 bytes, over the 65,536 allowed."
    ]
    assert run_folders(runs) == before


def test_a_training_run_cannot_be_renamed_or_deleted(runs):
    import os

    status = rf.read_status(runs / RUN)
    status.update(state="running", pid=os.getpid())  # a live process: this one
    rf.write_json(runs / RUN / rf.STATUS_FILE, status)
    at = open_runs()
    assert at.dataframe[0].value.iloc[0]["state"] == "running"
    assert at.button(key="runs_rename").disabled and at.button(key="runs_delete").disabled
    assert run_folders(runs) == [RUN]


def test_tags_and_a_note_are_saved_with_the_run_and_shown_in_the_table(runs):
    at = open_runs()
    at.multiselect(key=f"runs_tags_{RUN}").set_value(["baseline", "β sweep"])
    at.text_area(key=f"runs_note_{RUN}").set_value("the first try at 4 dimensions")
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception and not messages(at)
    assert rf.read_notes(runs / RUN) == {"tags": ["baseline", "β sweep"], "note": "the first try at 4 dimensions"}
    table = at.dataframe[0].value
    assert table[table["run"] == RUN].iloc[0]["tags"] == "baseline, β sweep"


def test_curves_of_any_recorded_metric_against_step_or_time_smoothed(runs):
    import json as _json

    at = open_runs()
    curve = at.selectbox(key="runs_curve")
    assert curve.options[:4] == ["test ELBO", "train ELBO", "test reconstruction (−log p(x|z))", "test KL"]
    assert "active units" in curve.options and "epoch seconds" in curve.options  # any recorded number
    at.selectbox(key="runs_curve").set_value("train_loss")
    at.selectbox(key="runs_curve_x").set_value("step")
    at.slider(key="runs_smoothing").set_value(0.6).run()
    assert not at.exception, at.exception
    spec = _json.loads(next(c for c in at.get("plotly_chart") if "train loss" in c.proto.spec).proto.spec)
    raw, smooth = spec["data"][:2]  # the raw curve faint behind, the smoothed one named for the run
    epochs = [m for m in rf.read_metrics(runs / RUN) if m["type"] == "epoch"]
    assert raw["x"] == [m["step"] for m in epochs] and raw["y"] == [m["train_loss"] for m in epochs]
    assert smooth["name"] == RUN and smooth["y"][0] == pytest.approx(epochs[0]["train_loss"])
    assert abs(smooth["y"][-1] - epochs[-1]["train_loss"]) > 0  # an average of the past, not the last value


# ---------------------------------------------------------------- broken entries: the entry itself, never another run


def run_sections(at: AppTest) -> list[str]:
    """The selected run's section headings (Evaluate …, Manage …)."""
    return [shown(h.value) for h in at.subheader if h.value.startswith(("Evaluate", "Manage"))]


def delete_selected(at: AppTest) -> AppTest:
    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception, at.exception
    return at


def test_a_link_listed_as_a_run_is_deleted_itself_and_the_run_it_names_is_untouched(runs):
    (runs / "symrun").symlink_to(runs / RUN)
    at = open_runs()
    at.sidebar.selectbox(key="run").set_value("symrun").run()
    assert run_sections(at) == ["Manage symrun"]  # no "Evaluate digits-small"
    assert shown(at.caption[-1].value).endswith(
        "is a symbolic link; it is never followed or written into. It can only be deleted."
    )
    delete_selected(at)
    assert [shown(m) for m in messages(at, "success")] == ["Deleted symrun."]
    assert run_folders(runs) == [RUN] and rf.is_run(runs / RUN)
    with pytest.raises(ValueError, match="is a link"):
        (runs / "again").symlink_to(runs / RUN)
        rf.run_path(runs, "again")  # the command line never follows one either


def test_an_odd_named_folder_is_its_own_entry_not_the_run_its_name_cleans_to(runs):
    shutil.copytree(runs / RUN, runs / "with-space")
    (runs / "with space").mkdir()
    shutil.copy(runs / RUN / "config.json", runs / "with space" / "config.json")
    with pytest.raises(ValueError, match="is not a run name"):
        rf.run_path(runs, "with space")
    at = open_runs()
    at.sidebar.selectbox(key="run").set_value("with space").run()
    assert run_sections(at) == ["Manage with space"]
    delete_selected(at)
    assert run_folders(runs) == [RUN, "with-space"]  # the odd one went; the run it cleans to stayed


def test_tags_and_link_values_are_shown_as_text_never_fetched(runs):
    rf.write_notes(runs / RUN, {"tags": ["![](http://127.0.0.1:9/tag.png)", "**bold**"], "note": ""})
    at = open_runs()
    (label,) = [e.label for e in at.expander if e.label.startswith("Tags and note")]
    assert "![](" not in label and shown(label) == "Tags and note · ![](http://127.0.0.1:9/tag.png), **bold**"
    at = open_app(query={"run": "![](http://127.0.0.1:9/toast.png)"})
    (toast,) = [t.value for t in at.toast]
    assert "![](" not in toast and "![](http://127.0.0.1:9/toast.png)" in shown(toast)
