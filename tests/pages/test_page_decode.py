"""The Decode page through Streamlit's AppTest: sliders, start points, Random/Reset, traversal, no runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from apptest import open_app, page_components
from streamlit.testing.v1 import AppTest

from vae.config import DataConfig
from vae.data import load_dataset
from vae.runs import folder as rf

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "app_pages/decode.py"
RUN = "digits-small"


@pytest.fixture
def open_decode(monkeypatch):
    """Open the Decode page of app.py on a runs folder, with optional session state set first.

    Server decoding (Streamlit sliders) unless ``browser=True``: the in-browser decoder's own sliders
    live in JS, which AppTest does not run (tests/e2e/test_browser_decode.py drives them).
    """

    def _open(runs: Path, state: dict | None = None, browser: bool = False) -> AppTest:
        monkeypatch.setenv("LATENT_EXPLORER_RUNS", str(runs))
        return open_app(PAGE, state={"decode_prefer_browser": browser, **(state or {})}, timeout=60)

    return _open


@pytest.fixture(scope="module")
def model(trained_runs):
    return rf.load_model(trained_runs / RUN)


def torch_decode(model, z) -> np.ndarray:
    with torch.inference_mode():
        return model.decode(torch.tensor(np.asarray(z, dtype=np.float32)[None]))[0].numpy()


def dim_sliders(at) -> list:
    """The latent dimensions' sliders (the prior samples' temperature slider left out)."""
    return [s for s in at.slider if s.key.startswith("decode_dim_")]


def point(at) -> np.ndarray:
    return np.asarray(at.session_state["decode_point"], dtype=np.float64)


def test_renders_one_slider_per_latent_dimension(open_decode, trained_runs, model):
    at = open_decode(trained_runs)
    assert at.title[0].value == "Decode"
    dims = [s for s in at.slider if s.key.startswith("decode_dim_")]
    assert sorted(s.key for s in dims) == [f"decode_dim_{d}" for d in range(4)]
    assert all(s.min == -3.0 and s.max == 3.0 and s.value == 0.0 for s in dims)
    assert all(" · KL " in s.label for s in dims)
    assert at.session_state["decode_last"].shape == (1, 8, 8)
    np.testing.assert_allclose(at.session_state["decode_last"], torch_decode(model, np.zeros(4)), atol=1e-6)
    assert len(at.get("download_button")) == 2  # decoded image and traversal grid


def test_slider_step_decodes_the_new_point(open_decode, trained_runs, model):
    at = open_decode(trained_runs)
    before = at.session_state["decode_last"].copy()
    at.slider(key="decode_dim_1").set_value(1.5).run()
    assert not at.exception
    np.testing.assert_allclose(point(at), [0.0, 1.5, 0.0, 0.0])
    after = at.session_state["decode_last"]
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, torch_decode(model, [0.0, 1.5, 0.0, 0.0]), atol=1e-6)


def test_random_changes_and_reset_restores(open_decode, trained_runs, model):
    at = open_decode(trained_runs)
    at.slider(key="decode_dim_2").set_value(-1.0).run()
    moved_image = at.session_state["decode_last"].copy()
    np.testing.assert_allclose(at.session_state["decode_start"], 0.0)  # moving a slider keeps the start (zero)
    at.button[1].click().run()  # Random
    assert at.button[1].label == "Random"
    sample = point(at)
    assert not np.allclose(sample, [0.0, 0.0, -1.0, 0.0])
    np.testing.assert_allclose(at.session_state["decode_last"], torch_decode(model, sample), atol=1e-6)
    assert [s.value for s in dim_sliders(at)] == pytest.approx([float(np.clip(sample[d], -3, 3)) for d in _order(at)])
    at.button[0].click().run()  # Reset
    assert at.button[0].label == "Reset"
    np.testing.assert_array_equal(point(at), 0.0)
    np.testing.assert_allclose(at.session_state["decode_last"], torch_decode(model, np.zeros(4)), atol=1e-6)
    assert not np.allclose(at.session_state["decode_last"], moved_image)  # the slider move is undone too
    assert all(s.value == 0.0 for s in dim_sliders(at))


def _order(at) -> list[int]:
    """Latent index of each slider, in page order."""
    return [int(s.key.rsplit("_", 1)[1]) for s in dim_sliders(at)]


def test_data_item_start_fills_the_sliders_with_its_posterior_mean(open_decode, trained_runs, model):
    at = open_decode(trained_runs)
    at.radio(key="decode_mode").set_value("item").run()
    at.number_input(key="decode_index").set_value(7).run()
    assert not at.exception
    ds = load_dataset(DataConfig(name="digits"))
    mu, _ = model.embed(ds.x_test[7:8])
    np.testing.assert_allclose(point(at), mu[0], atol=1e-6)
    np.testing.assert_allclose(at.session_state["decode_last"], torch_decode(model, mu[0]), atol=1e-6)
    assert any(f"Label: **{int(ds.y_test[7])}**" in c.value for c in at.caption)
    at.button[1].click().run()  # Random, then Reset returns to the item's mean
    at.button[0].click().run()
    np.testing.assert_allclose(point(at), mu[0], atol=1e-6)


def test_a_point_from_another_page_is_the_start(open_decode, trained_runs, model):
    z = [0.5, -1.0, 2.0, 3.5]
    at = open_decode(trained_runs, state={"decode_z": z})
    np.testing.assert_allclose(point(at), z)
    assert at.radio(key="decode_mode").value == "handoff"
    assert any("Explore page" in i.value for i in at.info)
    assert at.slider(key="decode_dim_3").value == 3.0  # shown clipped, decoded exactly
    assert any("z3 = 3.50" in c.value for c in at.caption)
    np.testing.assert_allclose(at.session_state["decode_last"], torch_decode(model, z), atol=1e-6)
    at.slider(key="decode_dim_0").set_value(-2.0).run()  # a rerun does not re-apply the same point
    np.testing.assert_allclose(point(at), [-2.0, -1.0, 2.0, 3.5])


def test_the_point_survives_a_page_switch(open_decode, trained_runs):
    at = open_decode(trained_runs)
    at.slider(key="decode_dim_1").set_value(-2.5).run()
    at.switch_page("app_pages/home.py").run()
    at.switch_page(PAGE).run()
    assert not at.exception
    np.testing.assert_allclose(point(at), [0.0, -2.5, 0.0, 0.0])
    assert at.slider(key="decode_dim_1").value == -2.5


def test_traversal_grid_sweeps_each_dimension(open_decode, trained_runs, model):
    at = open_decode(trained_runs)
    at.slider(key="decode_dim_0").set_value(0.5).run()
    assert any(h.value == "Traversal" for h in at.subheader)
    assert len(at.image) == 2 + 16  # decoded image and grid, then the 16 samples of the prior
    urls = [url for image in at.image for url in image.value]
    assert urls and all(url.endswith(".png") for url in urls), urls  # sent as made, never re-encoded as JPEG
    items = at.session_state["decode_traversal"]
    assert items.shape == (4 * 9, 1, 8, 8)
    order = _order(at)
    for row, d in enumerate(order):
        z = np.array([0.5, 0.0, 0.0, 0.0])
        z[d] = 3.0  # last column
        np.testing.assert_allclose(items[row * 9 + 8], torch_decode(model, z), atol=1e-6)


def test_large_latent_gets_16_sliders_and_holds_the_rest(open_decode, tmp_path):
    from vae.models import build_model
    from vae.runs.folder import new_run

    cfg = DataConfig(name="digits")
    run = new_run(tmp_path, "wide", load_dataset(cfg), cfg, latent_dim=20, hidden=(32,))
    rf.save_model(run, build_model(rf.load_config(run)[0]))
    at = open_decode(tmp_path)
    assert len(dim_sliders(at)) == 16
    held = [c.value for c in at.caption if c.value.startswith("Held")]
    assert held and held[0].count("= 0.00") == 4
    assert at.session_state["decode_traversal"].shape[0] == 16 * 9


def test_vector_data_shows_a_table_in_original_units(open_decode, tmp_path):
    from vae.data.sources import store_upload
    from vae.models import build_model
    from vae.runs.folder import new_run

    rng = np.random.default_rng(0)
    rows = np.c_[rng.normal(170, 10, 60), rng.normal(70, 8, 60), rng.integers(20, 60, 60)]
    text = "height,weight,age\n" + "\n".join(",".join(f"{v:.2f}" for v in r) for r in rows)
    runs = tmp_path / "runs"
    csv = store_upload(runs, "people.csv", text.encode())  # as the Train page keeps an upload
    cfg = DataConfig(name="file", path=str(csv))
    ds = load_dataset(cfg)
    run = new_run(runs, "people", ds, cfg, latent_dim=2, hidden=(8,))
    model = build_model(rf.load_config(run)[0])
    rf.save_model(run, model)
    at = open_decode(runs)
    assert not at.image
    table = at.dataframe[0].value
    assert list(table.index) == ["height", "weight", "age"]
    expected = ds.to_original_units(torch_decode(rf.load_model(run), [0.0, 0.0])[None])[0]
    np.testing.assert_allclose(table["decoded"].to_numpy(), expected, rtol=1e-6)
    assert 150 < table["decoded"]["height"] < 190  # original units, not standardised
    at.slider(key="decode_dim_0").set_value(2.0).run()
    assert not at.exception


def test_no_runs_gives_a_friendly_message(open_decode, tmp_path):
    at = open_decode(tmp_path)
    assert at.title[0].value == "Decode"
    assert any("train one on the Train page" in i.value for i in at.info)
    assert not dim_sliders(at)


def test_browser_decoding_replaces_the_server_sliders(open_decode, trained_runs, model):
    at = open_decode(trained_runs, browser=True)
    assert at.toggle(key="decode_in_browser").value is True
    assert not dim_sliders(at)  # the sliders are the component's, drawn in the browser
    components = page_components(at)
    assert len(components) == 2  # the panel (JSON) and the decoder's weights (bytes, sent once)
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download PNG of the released point", "Download grid PNG"]
    np.testing.assert_allclose(at.session_state["decode_last"], torch_decode(model, np.zeros(4)), atol=1e-6)
    at.toggle(key="decode_in_browser").set_value(False).run()  # off: Streamlit sliders, decoded on the server
    assert sorted(s.key for s in dim_sliders(at)) == [f"decode_dim_{d}" for d in range(4)]
    assert not page_components(at)


def test_a_decoder_the_browser_cannot_run_falls_back_to_the_server(open_decode, trained_runs):
    state = {"decode_browser_failed": "out of memory", "decode_prefer_browser": False}
    at = open_decode(trained_runs, state=state, browser=False)
    assert "The browser could not run this decoder (out of memory)" in at.warning[0].value
    assert at.toggle(key="decode_in_browser").value is False
    assert len(dim_sliders(at)) == 4


def test_samples_of_the_prior_decode_and_one_opens_as_the_point(open_decode, trained_runs, model):
    at = open_decode(trained_runs)
    z = at.session_state["decode_prior_samples"]  # (16, 4): N(0, I) at temperature 1
    assert z.shape == (16, 4) and 0.5 < z.std() < 1.6
    at.slider(key="decode_temperature").set_value(0.5).run()
    half = at.session_state["decode_prior_samples"]
    np.testing.assert_allclose(half, 0.5 * z, rtol=1e-5)  # the same ε, scaled
    at.button(key="decode_new_samples").click().run()
    assert not np.allclose(at.session_state["decode_prior_samples"], half)  # new ε
    chosen = at.session_state["decode_prior_samples"][5].copy()
    at.button(key="decode_prior_open_5").click().run()
    assert not at.exception, at.exception
    np.testing.assert_allclose(point(at), chosen, atol=1e-6)  # sample 5 is now the point decoded above
    np.testing.assert_allclose(at.session_state["decode_last"], torch_decode(model, chosen), atol=1e-6)


def test_a_link_gives_the_point_and_a_malformed_one_a_sentence(open_decode, trained_runs, monkeypatch):
    """``?z=`` holds the point (Decode writes it on every run); a new session opened with it starts there."""
    monkeypatch.setenv("LATENT_EXPLORER_RUNS", str(trained_runs))
    at = open_app(PAGE, query={"z": "0.5,-1.25,2,0"}, timeout=60)
    np.testing.assert_allclose(point(at), [0.5, -1.25, 2.0, 0.0])
    assert at.query_params["z"] == "0.5,-1.25,2,0"
    bad = open_app(PAGE, query={"z": "1,2"}, timeout=60)  # four numbers are needed
    np.testing.assert_allclose(point(bad), [0.0] * 4)
    assert any("is not 4 numbers" in t.value for t in bad.toast)
    huge = open_app(PAGE, query={"z": "1e308,1e308,1e308,1e308"}, timeout=60)  # finite, and past any code
    np.testing.assert_allclose(point(huge), [0.0] * 4)
    assert any("each within ±1000" in t.value for t in huge.toast)


def test_a_conditional_vae_decodes_the_class_chosen_in_the_sidebar_and_every_class_of_a_style(open_decode, tmp_path):
    import json

    from vae.config import TrainConfig
    from vae.runs.folder import new_run
    from vae.train import train
    from vae.web import decoder as webdecoder

    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    run = new_run(tmp_path, "cvae", ds, cfg, latent_dim=3, hidden=(32,), family="cvae",
                  train_cfg=TrainConfig(epochs=2, threads=1, grid_size=2))  # fmt: skip
    assert train(run, dataset=ds)["state"] == "finished"
    model = rf.load_model(run)
    at = open_decode(tmp_path, browser=True)
    picker = at.sidebar.selectbox(key="cvae_class")
    assert picker.options == [str(i) for i in range(10)] and picker.value == 0
    every = at.session_state["decode_every_class"]  # z = 0 given each class in turn
    np.testing.assert_allclose(every, model.decode_numpy(np.zeros((10, 3)), np.arange(10)), atol=1e-6)
    np.testing.assert_allclose(at.session_state["decode_last"], every[0], atol=1e-6)
    picker.set_value(7).run()
    assert not at.exception, at.exception
    np.testing.assert_allclose(at.session_state["decode_last"], every[7], atol=1e-6)  # the server's decode
    panel, weights = page_components(at)  # the browser's decoder is class 7's, named for it
    assert json.loads(panel.proto.json)["id"] == webdecoder.read_header(weights.proto.bytes)["id"]
    assert json.loads(panel.proto.json)["id"].endswith("#class7")
