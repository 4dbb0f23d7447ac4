"""The Train page through Streamlit's AppTest: the form, starting a real background run, bad data."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import struct
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from apptest import open_app, page_components, shown
from PIL import Image
from specs import array
from streamlit.testing.v1 import AppTest

from ui import livemap, served
from ui.forms import NEW_FORM_KEY
from vae.runs import folder as rf
from vae.runs import jobs

ROOT = Path(__file__).resolve().parents[2]


def open_train(runs: Path) -> AppTest:
    """The Train page with its New run form open (where runs exist, the selected run's panel leads the page)."""
    at = open_app("train", state={NEW_FORM_KEY: True}, timeout=60)  # the form open, as "New run" leaves it
    return at


def errors(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.error]


def picked(at: AppTest) -> str:
    """The run selected in the sidebar's shared picker."""
    return at.sidebar.selectbox(key="run").value


def shown_run(at: AppTest) -> str | None:
    """The run the page's panel shows."""
    return next((h.value.removeprefix("Run: ") for h in at.subheader if h.value.startswith("Run: ")), None)


def test_form_shows_digits_preview_defaults_and_the_selected_run(runs):
    at = open_train(runs)
    assert at.title[0].value == "Train"
    assert at.selectbox(key="train_dataset").value == "digits"
    captions = " ".join(c.value for c in at.caption)
    assert "1,437 training and 360 test images of 1×8×8, 10 classes" in captions
    assert len(at.image) >= 1  # the preview grid
    assert at.number_input(key="train_epochs").value == 40
    assert at.text_input(key="train_hidden").value == "128"
    from vae.distributed import native_bf16

    offered = [t.key for t in at.toggle if t.key == "train_bf16"]
    assert offered == (["train_bf16"] if native_bf16() else []) and (not offered or at.toggle(key="train_bf16").value)
    # the finished run is selected in the sidebar, so its result is shown below the form
    assert picked(at) == shown_run(at) == "digits-small"
    assert any("Training finished: 15 epochs" in s.value for s in at.success)
    assert not errors(at)


@pytest.mark.slow
def test_fashion_mnist_defaults_and_conv_choice(runs, fashion_mnist):
    at = open_train(runs)
    at.selectbox(key="train_dataset").set_value("fashion-mnist").run()
    assert not at.exception
    assert at.number_input(key="train_latent").value == 20
    assert at.text_input(key="train_hidden").value == "400"
    assert at.number_input(key="train_epochs").value == 10
    assert at.number_input(key="train_batch").value == 256  # the default recipe (bench/bench_recipe.py)
    assert at.select_slider(key="train_lr").value == pytest.approx(3e-3)
    assert "652,824 parameters" in " ".join(c.value for c in at.caption)  # 784-400-20 MLP both ways
    at.radio(key="train_arch").set_value("conv").run()
    assert not at.exception and not errors(at)
    assert at.text_input(key="train_channels").value == "32, 64"


def test_conv_is_not_offered_for_8x8_digits_and_bad_widths_get_a_sentence(runs):
    at = open_train(runs)
    assert at.radio(key="train_arch").options == ["MLP"]
    at.text_input(key="train_hidden").set_value("64, lots").run()
    assert not at.exception
    assert errors(at) == [
        "Hidden layer widths must be whole numbers separated by commas, e.g. 512, 256; got '64, lots'."
    ]
    assert at.button(key="train_start").disabled
    at.text_input(key="train_hidden").set_value("5000").run()
    assert "ModelConfig.hidden must be an integer from 1 to 4096; got 5000." in errors(at)


@pytest.mark.slow
def test_starting_a_tiny_digits_run_trains_it_in_the_background(runs):
    at = open_train(runs)
    at.number_input(key="train_epochs").set_value(3)
    at.number_input(key="train_latent").set_value(2)
    at.text_input(key="train_name").set_value("tiny digits")
    at.button(key="train_start").click().run()
    assert not at.exception and not errors(at)
    run_dir = runs / "tiny-digits"
    assert rf.is_run(run_dir)
    model, train, data = rf.load_config(run_dir)
    assert (model.latent_dim, model.hidden, train.epochs, data.name) == (2, (128,), 3, "digits")
    from vae.distributed import native_bf16

    assert train.precision == ("bf16" if native_bf16() else "fp32")  # the faster arithmetic where the CPU has it
    # the new run is selected in the shared picker and watched by the live panel
    assert picked(at) == shown_run(at) == "tiny-digits"
    assert jobs.refresh_status(run_dir)["state"] in ("starting", "running", "finished")
    status = jobs.wait(run_dir, timeout=120)
    assert status["state"] == "finished", status
    assert len([m for m in rf.read_metrics(run_dir) if m["type"] == "epoch"]) == 3
    at.run()  # what a reload shows: the result, read back from the files
    assert not at.exception
    said = [s.value for s in at.success] + [w.value for w in at.warning if w.value.startswith("Training finished, but")]
    assert any("Training finished: 3 epochs" in v or "Training finished, but" in v for v in said), said  # a 3-epoch
    # model of 2 dimensions may well read as collapsing: then the page says so in place of the green box
    assert len(at.image) >= 2  # the run's reconstructions and samples (the form, and its preview, closed on Start)


@pytest.mark.slow
def test_a_second_start_is_refused_with_the_job_limit_sentence_and_pause_stop_work(runs):
    at = open_train(runs)
    at.number_input(key="train_epochs").set_value(2000)
    at.text_input(key="train_name").set_value("long")
    at.button(key="train_start").click().run()
    long_run = runs / "long"
    assert rf.is_run(long_run)
    try:
        at.session_state[NEW_FORM_KEY] = True  # "New run" again, beside the run that trains
        at.run()
        at.text_input(key="train_name").set_value("second")
        at.button(key="train_start").click().run()
        assert not at.exception
        assert any("already running (long)" in e for e in errors(at)), errors(at)
        assert not (runs / "second").exists()  # a refused start leaves no folder behind
        assert picked(at) == shown_run(at) == "long"
        # pause, then stop, through the live panel's buttons
        at.button(key="train_pause").click().run()
        assert not at.exception
        assert jobs.refresh_status(long_run)["state"] in jobs.ACTIVE_STATES
        at.button(key="train_stop").click().run()
        status = jobs.wait(long_run, timeout=60)
        assert status["state"] == "stopped", status
        at.run()
        assert at.button(key="train_continue").label == "Resume training"
    finally:
        jobs.stop(long_run, wait=20)


@pytest.mark.slow
def test_a_bad_csv_upload_shows_the_loader_sentence_and_keeps_the_choices(runs):
    at = open_train(runs)
    at.number_input(key="train_epochs").set_value(7).run()
    at.radio(key="train_source").set_value("Upload a file").run()
    at.file_uploader(key="train_upload").set_value(("bad.csv", b"a,b\n1,x\n2,3\n", "text/csv")).run()
    assert not at.exception
    assert errors(at) == [
        "bad.csv has text ('x', line 2) in column 'b'; expected numbers in every column but the label column."
    ]
    assert "train_start" not in [b.key for b in at.button]
    # a good file brings the model form back with the earlier choice kept
    good = b"f1,f2,label\n0.1,2,a\n0.3,1,b\n0.5,4,a\n0.2,3,b\n0.9,1,a\n"
    at.file_uploader(key="train_upload").set_value(("good.csv", good, "text/csv")).run()
    assert not at.exception and not errors(at)
    assert at.selectbox(key="train_label_col").options == ["(no labels)", "f1", "f2", "label"]
    assert at.selectbox(key="train_label_col").value == "label"  # guessed from its name
    assert at.number_input(key="train_epochs").value == 7
    assert "rows of 2 features, 2 classes" in " ".join(c.value for c in at.caption)
    at.selectbox(key="train_label_col").set_value("(no labels)").run()
    assert errors(at) == [
        "good.csv has text ('a', line 2) in column 'label'; expected numbers in every column but the label column."
    ]
    stored = list((runs / "_uploads").iterdir())
    assert [p.suffix for p in stored] == [".csv", ".csv"]


@pytest.mark.slow
def test_sprites_offer_a_convolutional_model(runs):
    at = open_train(runs)
    at.selectbox(key="train_dataset").set_value("sprites").run()
    at.number_input(key="train_sprite_count").set_value(2000).run()
    assert not at.exception and not errors(at)
    assert at.radio(key="train_arch").options == ["MLP", "Convolutional"]
    assert "1,600 training and 400 test images of 1×32×32, 3 classes." in [c.value for c in at.caption]
    at.radio(key="train_arch").set_value("conv").run()
    assert not at.exception and not errors(at)
    assert at.number_input(key="train_latent").value == 10  # the sprites defaults


def test_a_failed_run_shows_its_message(runs, tmp_path):
    from vae.config import DataConfig, ModelConfig, TrainConfig
    from vae.train import train

    missing = runs / "_uploads" / "gone.csv"  # an upload that is no longer on this machine
    run = rf.create_run(
        runs, "broken", ModelConfig(), TrainConfig(epochs=1), DataConfig(name="file", path=str(missing))
    )
    assert train(run)["state"] == "failed"
    at = open_train(runs)
    at.sidebar.selectbox(key="run").set_value("broken").run()
    assert not at.exception
    assert shown_run(at) == "broken"
    assert any(str(missing) in e and "does not exist" in e for e in errors(at)), errors(at)


@pytest.mark.slow
def test_an_interrupted_run_offers_resume_and_resumes(runs):
    run = runs / "digits-small"
    status = rf.read_status(run)
    status.update(state="running", pid=2**22 + 12345, message="")  # a process that is gone
    rf.write_json(run / rf.STATUS_FILE, status)
    at = open_train(runs)
    assert not at.exception
    warning = at.warning[0].value
    assert warning.startswith("The training process ended without finishing")
    assert "Resume continues from the last checkpoint (epoch 15)." in warning
    at.button(key="train_continue").click().run()
    assert not at.exception and not errors(at)
    assert jobs.wait(run, timeout=120)["state"] == "finished"


def test_an_unavailable_dataset_says_how_to_get_it(runs, tmp_path, monkeypatch):
    from vae.data import available_datasets

    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "no-mnist"))
    monkeypatch.setenv("LATENT_EXPLORER_DATA", str(tmp_path / "no-cache"))
    how = next(d["how_to_get"] for d in available_datasets() if d["name"] == "mnist")
    at = open_train(runs)
    assert "mnist (not available here)" in at.selectbox(key="train_dataset").options
    at.selectbox(key="train_dataset").set_value("mnist").run()
    assert not at.exception
    assert [w.value for w in at.warning] == [how]
    assert "python -m vae datasets --download mnist" in how
    assert "train_start" not in [b.key for b in at.button]


def history_spec(at: AppTest) -> dict | None:
    """The spec of the Train page's latent-history chart (None when it is not drawn)."""
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec.get("frames"):
            return spec
    return None


def test_a_finished_run_replays_its_latent_map_frame_by_frame(runs):
    at = open_train(runs)
    spec = history_spec(at)
    assert spec is not None, "no latent-history chart"
    assert len(spec["frames"]) == 16  # before training and after each of the 15 epochs
    assert len(spec["layout"]["sliders"][0]["steps"]) == 16 and spec["layout"]["sliders"][0]["active"] == 15
    assert [b["label"] for b in spec["layout"]["updatemenus"][0]["buttons"]] == ["▶ Play", "❚❚ Pause"]
    assert [t["type"] for t in spec["data"]] == ["scatter"] * 10 + ["image"]  # a trace per digit, then the samples
    assert any(b.label == "Download animation (GIF)" for b in at.get("download_button"))
    # the decoder's history: each frame carries that frame's decoded prior samples, which change as it trains
    from vae.analysis import history

    sources = [f["data"][-1]["source"] for f in spec["frames"]]
    assert len(set(sources)) == 16 and all(src.startswith("data:image/jpeg;base64,") for src in sources)
    first = history.frames(runs / "digits-small")[0].samples()
    grid = Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1])))
    assert grid.size[0] >= 8 * first.shape[-1]  # all the samples of the first frame, tiled
    assert spec["layout"]["sliders"][0]["steps"][3]["args"][1]["frame"]["redraw"] is True  # so the image changes


def values(v) -> list:
    """A Plotly spec's array as a list."""
    return array(v).tolist()


def test_clicking_an_item_of_the_replay_follows_it_across_the_frames(runs):
    from vae.analysis import history

    at = open_train(runs)
    item = int(history.read_probe(runs / "digits-small")[0][5])
    at.session_state["train_history_follow"] = item
    at.run()
    spec = history_spec(at)
    trail, ring = spec["frames"][7]["data"][10], spec["frames"][7]["data"][11]
    tx, ty, rx, ry = (values(v) for v in (trail["x"], trail["y"], ring["x"], ring["y"]))
    assert len(tx) == 8 and len(rx) == 1  # where it was in frames 0-7, and where it is in frame 7
    assert (tx[-1], ty[-1]) == (rx[0], ry[0])
    trace = next(t for t in spec["frames"][7]["data"][:10] if item in values(t["customdata"]))
    k = values(trace["customdata"]).index(item)
    assert (values(trace["x"])[k], values(trace["y"])[k]) == (rx[0], ry[0])  # the ring sits on the item
    assert any(f"follows item #{item}" in c.value for c in at.caption)


def test_a_run_without_a_history_says_so(runs):

    shutil.rmtree(rf.history_dir(runs / "digits-small"))
    at = open_train(runs)
    assert not at.exception and history_spec(at) is None
    assert any("no recorded latent history" in c.value for c in at.caption)


def test_a_collapsing_run_raises_the_alarm_with_its_kl_heat_strip(runs):
    from vae.config import DataConfig, TrainConfig
    from vae.data import load_dataset
    from vae.runs.folder import new_run
    from vae.train import train

    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    train_cfg = TrainConfig(epochs=20, batch_size=64, lr=3e-3, beta=8.0, threads=1, probe_size=0)
    run = new_run(runs, "collapsed", ds, cfg, latent_dim=8, hidden=(128,), train_cfg=train_cfg)
    assert train(run, dataset=ds)["state"] == "finished"
    for page in ("app_pages/train.py", "app_pages/runs.py"):
        at = open_app(timeout=60)
        at.sidebar.selectbox(key="run").set_value("collapsed").run()
        at.switch_page(page).run()
        assert not at.exception, at.exception
        assert any("latent space is collapsing: 0 of 8" in w.value for w in at.warning), (page, at.warning)
        heat = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
        assert any(d.get("type") == "heatmap" for spec in heat for d in spec["data"]), page
        assert any("collapsed" in c.value for c in at.sidebar.caption)  # the sidebar says so beside the state
        if page.endswith("train.py"):  # said once, at the top of the run's panel, never as a green "finished"
            assert [w.value for w in at.warning if "collapsing" in w.value][0].startswith("Training finished, but")
            assert len([w for w in at.warning if "collapsing" in w.value]) == 1 and not at.success
            loss = next(spec for spec in heat if spec["layout"].get("title", {}).get("text") == "Training objective")
            assert loss["layout"]["yaxis2"]["rangemode"] == "tozero"  # a dead KL reads as dead
        else:
            table = at.dataframe[0].value
            assert table.set_index("run").loc["collapsed", "alarm"] == "collapsed"
            assert table.set_index("run").loc["digits-small", "alarm"] == ""


def test_new_run_starts_from_the_preset_and_copy_takes_the_runs_settings(runs):
    at = open_train(runs)
    at.number_input(key="train_beta").set_value(20.0).run()
    at.button(key="train_new").click().run()
    assert not at.exception and at.number_input(key="train_beta").value == 1.0  # the digits preset, not 20
    assert at.text_input(key="train_name").value == ""
    model, train, _ = rf.load_config(runs / "digits-small")
    at.button(key="train_copy").click().run()
    assert at.number_input(key="train_latent").value == model.latent_dim
    assert at.text_input(key="train_hidden").value == ", ".join(map(str, model.hidden))
    assert at.number_input(key="train_epochs").value == train.epochs


def test_the_form_names_the_run_it_will_really_make(runs):
    at = open_train(runs)
    at.text_input(key="train_name").set_value("digits-small").run()
    assert any("Run 'digits-small-2' ('digits-small' is taken)" in c.value for c in at.caption)
    at.button(key="train_start").click().run()
    assert (runs / "digits-small-2").is_dir()
    jobs.stop(runs / "digits-small-2", wait=20)


def test_the_sidebar_and_the_page_read_a_runs_progress_the_same_way(runs):
    status = rf.read_status(runs / "digits-small")
    rf.write_status(runs / "digits-small", {**status, "state": "paused", "epoch": 3, "step": 60, "total_steps": 300,
                                             "pid": os.getpid(), "updated": time.time()})  # fmt: skip
    try:
        at = open_train(runs)
        epochs = rf.load_config(runs / "digits-small")[1].epochs
        said = f"3 of {epochs} epochs done"
        assert any(said in c.value for c in at.sidebar.caption), [c.value for c in at.sidebar.caption]
        panel = mounted(at, "live_panel")  # the progress bar, as the browser draws it
        assert said in panel["first"]["progress"][1], "the progress bar says it the same way"
        for page in ("decode", "explore"):  # the model pages say the run still trains, and which checkpoint they show
            at = open_app(page)
            notice = [i.value for i in at.info if "is training" in i.value]
            assert notice and said in notice[0] and "the checkpoint after epoch" in notice[0], page
    finally:
        rf.write_status(runs / "digits-small", status)


@pytest.mark.slow
def test_processes_are_offered_only_where_the_machine_has_the_cores(runs, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    at = open_train(runs)
    assert "train_procs" not in [n.key for n in at.number_input]  # 2 cores: one process is fastest
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    at = open_train(runs)
    at.number_input(key="train_procs").set_value(2)
    at.number_input(key="train_epochs").set_value(2)
    at.text_input(key="train_name").set_value("two procs")
    at.button(key="train_start").click().run()
    assert not at.exception and not errors(at)
    run_dir = runs / "two-procs"
    assert rf.load_config(run_dir)[1].threads == 4  # the 8 cores shared out between the 2 processes
    status = jobs.wait(run_dir, timeout=180)
    assert status["state"] == "finished" and status["processes"] == 2, status
    at.session_state[NEW_FORM_KEY] = True
    at.run()
    at.number_input(key="train_procs").set_value(7).run()
    assert any("fewer processes may train faster" in c.value for c in at.caption)


@pytest.mark.slow
def test_the_replay_in_umap_fits_its_frames_in_the_background_with_pca_standing_in(runs):
    """The UMAP frames are fitted by the map worker (a process of its own) from the previous frame's layout; until
    every frame has one the PCA frames stand in, with a note; then the replay shows the UMAP frames."""
    import time

    from vae.analysis import history

    at = open_train(runs)
    at.radio(key="train_history_method").set_value("UMAP").run()
    assert not at.exception, at.exception
    n = len(history.frames(runs / "digits-small"))
    deadline = time.monotonic() + 240
    while any(i.value.startswith("UMAP frames:") for i in at.info):  # the PCA frames stand in meanwhile
        assert any("Each frame is a PCA" in c.value for c in at.caption)
        assert time.monotonic() < deadline, [i.value for i in at.info]
        time.sleep(1.0)
        at.run()
    assert any("Each frame is a UMAP" in c.value for c in at.caption)
    layouts = history.umap_layouts(runs / "digits-small", fit_missing=False)
    assert len(layouts) == n and all(lay is not None for lay in layouts)  # every frame kept with the run
    spec = history_spec(at)
    first = spec["frames"][0]["data"]  # the first frame's points: the stored UMAP layout, label by label
    shown = np.concatenate([np.column_stack([values(t["x"]), values(t["y"])]) for t in first[:10]])
    assert np.allclose(np.sort(shown[:, 0]), np.sort(layouts[0][:, 0]), atol=1e-4)


def test_the_vampprior_family_asks_for_its_pseudo_inputs_and_takes_no_free_bits(runs):
    from ui.forms import model_configs
    from vae.config import FAMILY_TEXT
    from vae.data import load_dataset

    at = open_train(runs)
    assert at.number_input(key="train_free_bits")  # offered for the plain VAE
    at.radio(key="train_family").set_value("vampprior").run()
    assert not at.exception and not errors(at)
    assert FAMILY_TEXT["vampprior"] in [c.value for c in at.caption]
    assert at.number_input(key="train_pseudo").value == 500  # Tomczak & Welling's default
    assert "train_free_bits" not in [n.key for n in at.number_input]
    at.number_input(key="train_pseudo").set_value(40).run()
    state = {k: at.session_state[k] for k in ("train_family", "train_pseudo", "train_latent", "train_hidden")}
    model, train, _ = model_configs(
        state | {"train_free_bits": 0.5}, load_dataset(rf.load_data_config(runs / "digits-small"))
    )
    assert (model.family, model.pseudo_inputs, train.free_bits) == ("vampprior", 40, 0.0)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["cvae", "beta-tcvae", "iwae", "vampprior"])
def test_each_family_trains_on_fashion_mnist_through_the_train_page(runs, fashion_mnist, family):
    """The form's family choice reaches the background training on Fashion-MNIST (one small epoch), and the
    finished run's panel shows that family's own parts: β-TCVAE's three KL terms, the samples' caption."""
    from ui.training import samples_caption

    at = open_train(runs)
    at.selectbox(key="train_dataset").set_value("fashion-mnist").run()
    at.radio(key="train_family").set_value(family).run()
    assert not at.exception and not errors(at)
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_latent").set_value(4)
    at.text_input(key="train_hidden").set_value("64")
    if family == "vampprior":
        at.number_input(key="train_pseudo").set_value(50)
    at.text_input(key="train_name").set_value(f"fashion {family}")
    at.button(key="train_start").click().run()
    assert not at.exception and not errors(at)
    run_dir = runs / f"fashion-{family}"
    model, train, data = rf.load_config(run_dir)
    assert (model.family, model.latent_dim, model.hidden, data.name, train.epochs) == (
        family, 4, (64,), "fashion-mnist", 1
    )  # fmt: skip
    assert model.classes == (10 if family == "cvae" else 0)  # the label goes in for the conditional VAE only
    if family == "vampprior":
        assert model.pseudo_inputs == 50
    status = jobs.wait(run_dir, timeout=300)
    assert status["state"] == "finished", status
    (epoch,) = [m for m in rf.read_metrics(run_dir) if m["type"] == "epoch"]
    assert np.isfinite(epoch["test_elbo"]) and epoch["test_elbo"] < 0
    at.run()
    assert not at.exception and not errors(at)
    assert shown_run(at) == f"fashion-{family}"
    captions = [c for image in at.image for c in image.captions]
    assert samples_caption(run_dir) in captions, captions
    charts = at.get("plotly_chart")
    parts = [json.loads(c.proto.spec) for c in charts if "three parts" in c.proto.spec]
    if family == "beta-tcvae":  # its three KL terms, each a curve with a finite value per logging window
        (spec,) = parts
        assert [t["name"] for t in spec["data"]] == [
            "index-code mutual information", "total correlation", "dimension-wise KL"
        ]  # fmt: skip
        assert all(t["y"] and all(np.isfinite(v) for v in t["y"]) for t in spec["data"])
    else:
        assert parts == []


def mounted(at: AppTest, name: str) -> dict | None:
    """The JSON a component of the page (``latent_explorer_live_panel``, ``..._live_map``) was mounted with."""
    for el in page_components(at):
        if el.proto.component_name.endswith(name) and el.proto.WhichOneof("data") == "json":
            return json.loads(el.proto.json)
    return None


def fetched(url: str, **params) -> served.Answer:
    """What the app's server answers the browser's ``GET url&params`` (``ui.served``'s feed, without HTTP)."""
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    return served.feed({**query, **{k: str(v) for k, v in params.items()}})


def frames_of(data: bytes) -> dict:
    """The live map's bytes (``ui.livemap.frames_bytes``): the JSON, and the layouts as an array (frames, items, 2)."""
    assert data[:8] == livemap.MAGIC
    (length,) = struct.unpack("<I", data[8:12])
    meta = json.loads(data[12 : 12 + length])
    start = 12 + length + (-(12 + length) % 4)
    meta["layouts"] = np.frombuffer(data[start:], dtype="<f4").reshape(-1, len(meta["ids"]), 2)
    return meta


def training_now(run: Path) -> dict:
    """Make the run's status say it trains (paused, by this process, at epoch 3); its status before."""
    status = rf.read_status(run)
    rf.write_status(run, {**status, "state": "paused", "epoch": 3, "step": 60, "total_steps": 300,
                          "pid": os.getpid(), "updated": time.time()})  # fmt: skip
    return status


def test_while_training_the_browser_polls_the_runs_feed_and_a_frame_is_sent_only_when_one_lands(runs):
    """While the run trains, the page mounts the live panel and the live map once, with the run's feed; the browser
    polls it (no page reruns). The feed's map holds every frame so far; asked with the stamp of what the browser
    holds, it answers nothing (204) until a frame lands, then every frame with the new one."""
    import shutil as sh

    from vae.analysis import history

    run = runs / "digits-small"
    status = training_now(run)
    paths = sorted(rf.history_dir(run).glob("frame-*.safetensors"))
    landed = paths[-1].with_name(f"frame-{len(paths):06d}.safetensors")
    try:
        at = open_train(runs)
        assert history_spec(at) is None and not at.get("plotly_chart")  # no Plotly while training: the browser draws
        shown = mounted(at, "live_map")
        assert shown is not None and shown["follow"] is None and "part=map&method=pca" in shown["feed"]
        reply = fetched(shown["feed"], have="")
        assert reply.status == 200 and reply.media_type == "application/octet-stream"
        drawn = frames_of(reply.body)
        assert drawn["layouts"].shape == (16, 360, 2) and drawn["note"] is None
        frames, (indices, labels, split) = history.frames(run), history.read_probe(run)
        expected = history.align(history.frame_layouts(frames))
        np.testing.assert_array_equal(drawn["layouts"], np.stack(expected).astype(np.float32))
        assert drawn["ids"] == indices.tolist() and split == "test"
        assert [drawn["groups"][g]["name"] for g in drawn["labels"]] == [str(y) for y in labels]  # digits: 0-9
        assert drawn["axis"] == "aligned PCA" and drawn["method"] == "pca"
        assert len(drawn["captions"]) == 16 and len(drawn["pictures"]) == 16
        picture = fetched(drawn["pictures"][3])  # each frame's prior samples, by URL, asked when shown
        assert picture.status == 200 and Image.open(io.BytesIO(picture.body)).format == "JPEG"
        assert picture.body == history.sample_jpegs([frames[3]])[0]
        assert fetched(drawn["pictures"][3], frame="99").status == 400
        stamp = reply.headers["X-Stamp"]
        assert fetched(shown["feed"], have=stamp).status == 204  # nothing new: nothing sent
        sh.copyfile(paths[-1], landed)  # a frame lands
        reply = fetched(shown["feed"], have=stamp)
        assert reply.status == 200 and reply.headers["X-Stamp"] != stamp
        after = frames_of(reply.body)
        assert after["layouts"].shape == (17, 360, 2)
        np.testing.assert_array_equal(after["layouts"][:16], drawn["layouts"])  # the frames before stay put
        assert fetched(shown["feed"], have="", method="tsne").status == 400
    finally:
        landed.unlink(missing_ok=True)
        rf.write_status(run, status)


def test_the_live_panel_gets_the_rows_it_has_not_drawn_and_the_pictures(runs):
    """The live panel is mounted with what it draws now (every row); its polls get only the rows past those it
    holds, the pictures by their stamps, and a sentence for a malformed ask."""
    run = runs / "digits-small"
    status = training_now(run)
    try:
        at = open_train(runs)
        panel = mounted(at, "live_panel")
        assert panel is not None and panel["state"] == "paused" and panel["every_ms"] == 2000
        metrics = rf.read_metrics(run)
        steps = [m for m in metrics if m["type"] == "step"]
        done = [m for m in metrics if m["type"] == "epoch"]
        first = panel["first"]
        assert len(first["steps"]["rows"]) == len(steps) > 0 and len(first["epochs"]["rows"]) == len(done) > 0
        assert [r[1] for r in first["steps"]["rows"]] == [m["loss"] for m in steps]
        assert [r[2] for r in first["epochs"]["rows"]] == [m["test_elbo"] for m in done]
        assert first["epochs"]["kl"][-1] == done[-1]["test_kl_per_dim"]
        assert first["progress"][1].startswith("Paused · 3 of") and first["progress"][0] == 0.2
        later = json.loads(fetched(panel["feed"], part="panel", steps=len(steps) - 2, epochs=len(done)).body)
        assert later["steps"]["from"] == len(steps) - 2 and later["steps"]["rows"] == first["steps"]["rows"][-2:]
        assert later["epochs"]["rows"] == [] and later["epochs"]["kl"] == []
        restarted = json.loads(fetched(panel["feed"], part="panel", steps=len(steps) + 5, epochs=0).body)
        assert restarted["steps"]["from"] == 0 and len(restarted["steps"]["rows"]) == len(steps)  # rows start again
        png = fetched(panel["feed"], part="picture", file="recon", v=first["pictures"]["recon"])
        assert png.status == 200 and Image.open(io.BytesIO(png.body)).size[0] >= 320
        for bad in ({"part": "panel", "steps": "-1"}, {"part": "picture", "file": "../config"}, {"part": "x"}):
            reply = fetched(panel["feed"], **bad)
            assert reply.status == 400 and isinstance(reply.body, str), bad
        assert served.feed({"id": "run-unknown"}).status == 404
    finally:
        rf.write_status(run, status)


def test_while_some_umap_frames_wait_the_live_map_shows_those_fitted_so_far(runs, monkeypatch):
    """In UMAP while training, the frames whose UMAP is fitted are what the live map shows (gliding to each as it
    lands), with a note of how many wait; not every frame in PCA, which it would have to swap for UMAP's places
    whenever the fits catch up."""
    from ui import cache
    from vae.analysis import history

    run = runs / "digits-small"
    status = training_now(run)
    n = len(history.frames(run))
    pca = history.align(history.frame_layouts(history.frames(run)))
    fitted = [10.0 * layout + k for k, layout in enumerate(pca[:5])]  # stand-ins for the first 5 frames' UMAP
    monkeypatch.setattr(history, "umap_layouts", lambda *a, **k: fitted + [None] * (n - 5))
    monkeypatch.setattr(cache, "_start_history_umap", lambda *a, **k: (0.3, "UMAP of frame 6"))  # no real fit
    try:
        at = open_train(runs)
        at.radio(key="train_history_method").set_value("UMAP").run()
        assert not at.exception, at.exception
        feed = mounted(at, "live_map")["feed"]
        assert "method=umap" in feed
        drawn = frames_of(fetched(feed, have="").body)
        assert drawn["method"] == "umap" and drawn["axis"] == "UMAP"
        np.testing.assert_array_equal(drawn["layouts"], np.stack(fitted).astype(np.float32))
        assert len(drawn["captions"]) == len(drawn["pictures"]) == 5
        note = drawn["note"]  # the note above the map
        assert note.startswith(f"UMAP frames: 5 of {n} fitted") and "the map shows those so far" in note, note
        assert any("Each frame is a UMAP" in c.value for c in at.caption)
    finally:
        rf.write_status(run, status)
