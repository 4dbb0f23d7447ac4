"""The Interpolate page: lerp/slerp maths (unit tests), and in AppTest the endpoints are the items'
posterior means, the strip has N decoded images, and the path is drawn on a cached map only.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from vae import checkpoints as ck
from vae.data import load_dataset
from vae.projection import LatentProjector

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
RUN = "digits-small"


def _page_module():
    """app_pages/interpolate.py imported as a module: its body runs only as a page (``__main__``)."""
    spec = importlib.util.spec_from_file_location("interpolate_page", ROOT / "app_pages" / "interpolate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


page = _page_module()


# ---------------------------------------------------------------- the maths


def test_lerp_is_the_straight_segment():
    a, b = np.array([1.0, -2.0, 0.5]), np.array([3.0, 2.0, -0.5])
    path = page.lerp(a, b, np.array([0.0, 0.25, 0.5, 1.0]))
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_allclose(path[1], 0.75 * a + 0.25 * b)
    np.testing.assert_allclose(path[2], (a + b) / 2)


def test_slerp_hits_both_endpoints_exactly():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=16), rng.normal(size=16)
    path = page.slerp(a, b, np.linspace(0, 1, 9))
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)


def test_slerp_of_orthogonal_unit_vectors_is_the_quarter_circle():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    t = np.linspace(0, 1, 7)
    path = page.slerp(a, b, t)
    np.testing.assert_allclose(path, np.column_stack([np.cos(t * np.pi / 2), np.sin(t * np.pi / 2)]), atol=1e-12)


def test_slerp_keeps_the_norm_of_equal_norm_endpoints_and_moves_at_constant_angle():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=20), rng.normal(size=20)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    path = page.slerp(a, b, np.linspace(0, 1, 11))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-12)
    unit = path / np.linalg.norm(path, axis=1, keepdims=True)
    steps = np.arccos(np.clip((unit[:-1] * unit[1:]).sum(1), -1, 1))
    np.testing.assert_allclose(steps, steps[0], rtol=1e-6)
    # whereas the straight line dips toward the origin in the middle
    assert np.linalg.norm(page.lerp(a, b, np.array([0.5]))[0]) < np.linalg.norm(a)


@pytest.mark.parametrize(
    ("a", "b"),
    [([1.0, 2.0], [2.0, 4.0]), ([1.0, 2.0], [-1.0, -2.0]), ([0.0, 0.0], [1.0, 1.0])],
    ids=["parallel", "opposite", "zero"],
)
def test_slerp_falls_back_to_lerp_where_the_arc_is_undefined(a, b):
    t = np.linspace(0, 1, 5)
    np.testing.assert_allclose(page.slerp(np.array(a), np.array(b), t), page.lerp(np.array(a), np.array(b), t))


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolate_returns_steps_float32_codes(method):
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    codes = page.interpolate(a, b, 6, method)
    assert codes.shape == (6, 3) and codes.dtype == np.float32
    np.testing.assert_allclose(codes[0], a)
    np.testing.assert_allclose(codes[-1], b)


def test_interpolate_rejects_endpoints_of_different_lengths():
    with pytest.raises(ValueError, match="one length"):
        page.interpolate(np.zeros(3), np.zeros(4), 5)


def test_interpolate_rejects_fewer_than_two_steps():
    with pytest.raises(ValueError, match="at least 2"):
        page.interpolate(np.zeros(3), np.ones(3), 1)


def test_interpolate_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="'lerp' or 'slerp'"):
        page.interpolate(np.zeros(3), np.ones(3), 5, "cubic")


# ---------------------------------------------------------------- the page


@pytest.fixture
def runs(trained_runs, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    shutil.copytree(trained_runs, root)
    monkeypatch.setenv("LATENT_EXPLORER_RUNS", str(root))
    return root


@pytest.fixture
def run_data(runs):
    run = runs / RUN
    model = ck.load_model(run)
    model.requires_grad_(False)
    return run, model, load_dataset(ck.load_config(run)[2])


def open_page(path: str, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


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
    np.testing.assert_allclose(codes, page.lerp(mu[0], mu[1], np.linspace(0, 1, 10)), atol=1e-6)
    np.testing.assert_allclose(decoded, decode(model, codes), atol=1e-5)
    captions = [img.captions[0] for img in at.image]
    assert captions == [
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
    np.testing.assert_allclose(codes, page.slerp(mu[0], mu[1], np.linspace(0, 1, 7)), atol=1e-5)
    np.testing.assert_allclose(at.session_state["interp_decoded"], decode(model, codes), atol=1e-5)
    assert at.image[-1].captions == ["7 steps from A (left) to B (right), slerp"]


def test_path_is_drawn_on_the_explore_map_and_a_map_point_can_be_an_endpoint(runs, run_data):
    run, _, _ = run_data
    at = open_page("app_pages/explore.py", explore_method="PCA")
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
    assert len(at.get("plotly_chart")) == 1


def test_a_map_from_an_earlier_session_is_found_on_disk(runs, run_data):
    open_page("app_pages/explore.py", explore_method="PCA")  # computes and caches the map
    at = open_page("app_pages/interpolate.py")  # a new session: nothing in session state
    assert not at.info
    assert any("The PCA map of 360 codes" in c.value for c in at.caption)
