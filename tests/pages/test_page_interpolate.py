"""The Interpolate page in AppTest: the endpoints are the items'
posterior means, the strip has N decoded images, and the path is drawn on a cached map only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from apptest import open_app
from specs import chart_spec
from streamlit.testing.v1 import AppTest

from vae.analysis import latent
from vae.projection import LatentProjector

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
RUN = "digits-small"


# ---------------------------------------------------------------- the page


def open_page(path: str, **state) -> AppTest:
    return open_app(path, state=state)


def means(model, x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return model.encode(x)[0].numpy()


def decode(model, z: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model.decode(torch.as_tensor(z, dtype=torch.float32)).numpy()


def test_strip_runs_between_the_two_items_posterior_means(runs, run_data):
    _, model, ds = run_data
    at = open_page("app_pages/interpolate.py")
    a, b = at.number_input(key="interp_index_A").value, at.number_input(key="interp_index_B").value
    assert (a, b) == (0, 1) and int(ds.y_test[a]) != int(ds.y_test[b])  # default B: another label
    codes, decoded = at.session_state["interp_codes"], at.session_state["interp_decoded"]
    assert codes.shape == (10, 4) and decoded.shape == (10, *ds.item_shape)
    mu = means(model, ds.x_test[[a, b]])
    np.testing.assert_allclose(codes[0], mu[0], atol=1e-6)
    np.testing.assert_allclose(codes[-1], mu[1], atol=1e-6)
    np.testing.assert_allclose(codes, latent.lerp(mu[0], mu[1], np.linspace(0, 1, 10)), atol=1e-6)
    np.testing.assert_allclose(decoded, decode(model, codes), atol=1e-5)
    captions = [img.captions[0] for img in at.image if not img.captions[0].startswith("decoded mean")]
    assert captions[:3] == [
        f"test #0 · label {int(ds.y_test[0])}",
        f"test #1 · label {int(ds.y_test[1])}",
        "10 steps from A (left) to B (right), lerp",
    ]
    assert at.download_button[0].label == "Download strip (PNG)"
    # no map of this run exists yet: say so, compute nothing
    assert any("open Explore to compute the map" in i.value for i in at.info)
    assert not (runs / RUN / "projections").exists()


def test_slerp_with_other_items_and_steps(run_data):
    _, model, ds = run_data
    at = open_page("app_pages/interpolate.py")
    at.number_input(key="interp_index_A").set_value(5)
    at.number_input(key="interp_index_B").set_value(42)
    at.radio(key="interp_method").set_value("Spherical (slerp)")
    at.slider(key="interp_steps").set_value(7).run()
    assert not at.exception
    mu = means(model, ds.x_test[[5, 42]])
    codes = at.session_state["interp_codes"]
    assert codes.shape == (7, 4)
    np.testing.assert_allclose(codes, latent.slerp(mu[0], mu[1], np.linspace(0, 1, 7)), atol=1e-5)
    np.testing.assert_allclose(at.session_state["interp_decoded"], decode(model, codes), atol=1e-5)
    assert "7 steps from A (left) to B (right), slerp" in [c for img in at.image for c in img.captions]


def test_path_is_drawn_on_the_explore_map_and_a_map_point_can_be_an_endpoint(runs, run_data):
    run, _, _ = run_data
    at = open_page("app_pages/explore.py", explore_method="PCA", explore_browser=False)  # the server-drawn chart
    chart = at.session_state["explore_chart_key"]
    at.session_state[chart] = {"selection": {"points": [{"curve_number": 0, "point_index": 1234}]}}
    at.run()
    point_z = np.array(at.session_state["explore_point"]["z"])

    at.switch_page("app_pages/interpolate.py").run()
    assert not at.exception, at.exception
    at.radio(key="interp_source_B").set_value("Map point").run()
    codes = at.session_state["interp_codes"]
    np.testing.assert_allclose(codes[-1], point_z, atol=1e-6)
    proj = LatentProjector.load(run / "projections" / f"{at.session_state['explore_map']['key']}.npz")
    np.testing.assert_allclose(at.session_state["interp_positions"], proj.transform(codes), atol=1e-6)
    assert any("path is projected exactly" in c.value for c in at.caption)
    (path,) = [c for c in map(chart_spec, at.get("plotly_chart")) if any(t.get("name") == "path" for t in c["data"])]
    clouds = [t for t in path["data"] if t.get("name") == "q(z|x) samples"]
    assert len(clouds) == 1  # endpoint A's (a test item); B is the map point, a point without a posterior


def test_test_item_endpoints_show_their_posterior_and_their_samples_on_the_path_map(runs, run_data):
    from ui.posterior import CLOUD, STRIP

    run, model, ds = run_data
    at = open_page("app_pages/interpolate.py")
    charts = [chart_spec(c) for c in at.get("plotly_chart")]
    assert not any(t.get("name") == "q(z|x) samples" for c in charts for t in c["data"])  # no map yet: no cloud
    with torch.inference_mode():
        mu, logvar = (v.numpy() for v in model.encode(ds.x_test[[0, 1]]))
    bars = [t["y"] for c in charts for t in c["data"] if t["type"] == "bar"]  # σ per dimension, A then B
    np.testing.assert_allclose(np.stack(bars), np.exp(0.5 * logvar), rtol=1e-5)
    for name, row in (("A", 0), ("B", 1)):
        strip = at.session_state[f"interp_{name}_strip"]  # the decoded mean, then samples of q(z|x)
        assert strip.shape == (1 + STRIP, *ds.item_shape)
        np.testing.assert_allclose(strip[0], decode(model, mu[row : row + 1])[0], atol=1e-5)
        assert not np.allclose(strip[1], strip[0], atol=1e-3)

    open_page("app_pages/explore.py", explore_method="PCA")  # a map of this checkpoint, for the path
    at = open_page("app_pages/interpolate.py")
    proj = LatentProjector.load(next((run / "projections").glob("*.npz")))
    (path,) = [c for c in map(chart_spec, at.get("plotly_chart")) if any(t.get("name") == "path" for t in c["data"])]
    clouds = [np.stack([t["x"], t["y"]], 1) for t in path["data"] if t.get("name") == "q(z|x) samples"]
    rings = [t for t in path["data"] if t.get("name") == "q(z|x) 2σ"]  # a PCA map: each endpoint's ellipse
    assert len(clouds) == len(rings) == 2
    for cloud, centre in zip(clouds, proj.transform(mu), strict=True):
        assert cloud.shape == (CLOUD, 2)
        np.testing.assert_allclose(cloud.mean(0), centre, atol=4 * cloud.std(0).max() / np.sqrt(CLOUD))


def test_a_map_from_an_earlier_session_is_found_on_disk(runs, run_data):
    open_page("app_pages/explore.py", explore_method="PCA")  # computes and caches the map
    at = open_page("app_pages/interpolate.py")  # a new session: nothing in session state
    assert not at.info
    assert any("The PCA map of 360 codes" in c.value for c in at.caption)


# ---------------------------------------------------------------- attribute vectors and analogies


def train_class_means(model, ds) -> dict[int, np.ndarray]:
    mu = means(model, ds.x_train)
    return {c: mu[ds.y_train.numpy() == c].mean(0) for c in np.unique(ds.y_train.numpy())}


def test_endpoint_a_moves_toward_endpoint_bs_class_and_the_analogy_swaps_its_class(runs, run_data):
    _, model, ds = run_data
    at = open_page("app_pages/interpolate.py")
    mu = means(model, ds.x_test[[0, 1]])
    la, lb = int(ds.y_test[0]), int(ds.y_test[1])
    cm = train_class_means(model, ds)
    assert at.radio(key="attr_kind").value == "Toward a class"
    assert (at.selectbox(key="attr_from").value, at.selectbox(key="attr_to").value) == (la, lb)
    direction = cm[lb] - cm[la]
    np.testing.assert_allclose(at.session_state["attr_codes"], latent.along(mu[0], direction, np.linspace(0, 1, 10)),
                               atol=1e-4)  # fmt: skip
    at.slider(key="attr_strength").set_value(2.0).run()
    np.testing.assert_allclose(at.session_state["attr_codes"][-1], mu[0] + 2 * direction, atol=1e-4)
    # the analogy's defaults: this item, without its class, with B's class
    np.testing.assert_allclose(at.session_state["attr_analogy"], mu[0] - cm[la] + cm[lb], atol=1e-4)
    assert "A, B, C, then A − B + C" in [img.captions[0] for img in at.image]
    assert at.session_state["attr_axis"]["name"] == f"{la} → {lb}"
    at.button(key="attr_open").click().run()  # the moved item, on to Decode
    assert not at.exception
    np.testing.assert_allclose(at.session_state["decode_point"], mu[0] + 2 * direction, atol=1e-4)


def test_decode_offers_the_axis_as_a_slider_that_moves_the_point(runs, run_data):
    _, model, ds = run_data
    at = open_page("app_pages/interpolate.py")
    vector = np.asarray(at.session_state["attr_axis"]["vector"])
    at.switch_page("app_pages/decode.py").run()
    assert not at.exception
    before = np.asarray(at.session_state["decode_point"], dtype=np.float64)
    at.slider(key="decode_axis").set_value(1.0).run()
    np.testing.assert_allclose(at.session_state["decode_point"], before + vector, atol=1e-5)
    at.slider(key="decode_axis").set_value(0.5).run()  # back by half the axis
    np.testing.assert_allclose(at.session_state["decode_point"], before + 0.5 * vector, atol=1e-5)


def test_two_map_groups_give_an_axis_from_the_first_groups_mean_to_the_seconds(runs, run_data):
    run, model, ds = run_data
    from vae.runs import folder as rf

    groups = {"run": str(run), "checkpoint": rf.checkpoint_id(run), "split": "test", "A": [0, 2, 4], "B": [1, 3]}
    at = open_page("app_pages/interpolate.py", attr_groups=groups)
    assert at.radio(key="attr_kind").options == ["Toward a class", "Map group A → group B"]
    at.radio(key="attr_kind").set_value("Map group A → group B").run()
    mu = means(model, ds.x_test[:5])
    axis = mu[[1, 3]].mean(0) - mu[[0, 2, 4]].mean(0)
    np.testing.assert_allclose(at.session_state["attr_codes"][-1], mu[0] + axis, atol=1e-4)
    assert at.session_state["attr_axis"]["name"].startswith("map group A → group B")


@pytest.mark.parametrize(("key", "value"), [("interp_index_A", "1e400"), ("interp_index_A", "-5"),
                                            ("interp_index_B", "abc"), ("interp_steps", "1e400")])  # fmt: skip
def test_a_link_with_a_number_out_of_range_gets_a_sentence_and_the_default(runs, key, value):
    at = open_app("interpolate", query={key: value})
    assert any("out of range or not a number" in t.value for t in at.toast)
    if value == "1e400" and key == "interp_index_A":  # Streamlit cannot seed its widget: the page says so
        assert any("not a number" in w.value for w in at.warning)
    elif key == "interp_index_A":
        assert at.number_input(key="interp_index_A").value == 0


def test_a_map_point_end_sits_on_its_star_and_travels_in_the_link(runs, run_data):
    at = open_page("app_pages/explore.py", explore_method="PCA", explore_browser=False)
    click = {"selection": {"points": [{"curve_number": 0, "point_index": 321}]}}
    at.session_state[at.session_state["explore_chart_key"]] = click
    at.run()
    star = at.session_state["explore_point"]
    at.switch_page("app_pages/interpolate.py").run()
    assert "point_z" not in at.query_params  # no endpoint is the map point yet
    at.radio(key="interp_source_B").set_value("Map point").run()
    assert not at.exception, at.exception
    assert tuple(at.session_state["interp_positions"][-1]) == tuple(star["xy"])  # the B end is the star itself
    link = {k: at.query_params[k] for k in ("point_z", "point_xy", "point_map", "point_ends")}
    assert link["point_map"] == star["map"] and link["point_ends"] == "B"

    fresh = open_app("app_pages/interpolate.py", query=link)  # the link opened in a new session
    assert not fresh.exception, fresh.exception
    assert fresh.radio(key="interp_source_B").value == "Map point"
    np.testing.assert_allclose(fresh.session_state["interp_codes"][-1], star["z"], atol=1e-3)  # 4 digits a value
