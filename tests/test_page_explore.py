"""The Explore page in AppTest: the map is computed and cached, a selected point shows its item, its
label and its reconstruction, and a click on empty space decodes the inverse-projected point.

Plotly charts are unknown elements to AppTest, but a selection can be injected by setting the
chart's key in session state before ``run()``; the figure itself is read from the element's proto.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from vae.projection import LatentProjector

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
RUN = "digits-small"


from ui.maps import CLICK_GRID  # noqa: E402

# ---------------------------------------------------------------- the page in AppTest


def open_explore(method: str = "PCA", **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.session_state["explore_method"] = method
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page("app_pages/explore.py").run()
    assert not at.exception, at.exception
    return at


def figure(at: AppTest) -> dict:
    """The map's plotly spec, with base64 typed arrays decoded to numpy."""
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    for trace in spec["data"]:
        for axis in ("x", "y", "customdata"):
            v = trace.get(axis)
            if isinstance(v, dict) and "bdata" in v:
                trace[axis] = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return spec


def select(at: AppTest, curve: int, index: int) -> AppTest:
    at.session_state[at.session_state["explore_chart_key"]] = {
        "selection": {"points": [{"curve_number": curve, "point_index": index}]}
    }
    at.run()
    assert not at.exception, at.exception
    return at


def decode(model, z) -> np.ndarray:
    with torch.inference_mode():
        return model.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32)).numpy()[0]


def test_pca_map_is_drawn_with_one_trace_per_label_and_cached_on_disk(runs, run_data):
    run, _, ds = run_data
    at = open_explore("PCA")
    shown = at.session_state["explore_map"]
    assert shown["method"] == "pca" and shown["split"] == "test" and shown["size"] == len(ds.x_test)
    assert any(c.value.startswith(f"PCA of {len(ds.x_test)} latent means") for c in at.caption)
    path = run / "projections" / f"{shown['key']}.npz"
    assert path.is_file()
    spec = figure(at)
    names = [t.get("name") for t in spec["data"]]
    assert names == ["map"] + [str(d) for d in range(10)]
    assert len(spec["data"][0]["x"]) == CLICK_GRID**2  # the invisible click grid
    assert spec["data"][0]["hoverinfo"] == "none"  # "skip" would stop its click events
    assert sum(len(t["x"]) for t in spec["data"][1:]) == len(ds.x_test)
    assert at.download_button[0].label == "Download map as CSV"
    assert [i.value for i in at.info] == [
        "Click a point on the map to see the item and its reconstruction, or empty space to decode it."
    ]

    mtime = path.stat().st_mtime_ns  # a new session loads the same map instead of fitting again
    open_explore("PCA")
    assert path.stat().st_mtime_ns == mtime


def test_selecting_a_point_shows_its_label_original_and_reconstruction(runs, run_data):
    _, model, ds = run_data
    at = open_explore("PCA")
    spec = figure(at)
    curve, index = 4, 2  # label 3's trace, its third point
    row = int(spec["data"][curve]["customdata"][index])  # the row of the shown codes (all test items)
    select(at, curve, index)

    assert at.session_state["explore_selected"] == {"split": "test", "index": row, "label": "3"}
    assert int(ds.y_test[row]) == 3
    assert [h.value for h in at.subheader] == ["Label: 3"]
    assert [img.captions for img in at.image] == [["original"], ["reconstruction (decoded mean)"]]
    with torch.inference_mode():
        mu, _ = model.encode(ds.x_test[row : row + 1])
    np.testing.assert_allclose(at.session_state["explore_decoded"], decode(model, mu), atol=1e-5)
    ring = figure(at)["data"][-1]
    assert ring["marker"]["symbol"] == "circle-open"
    proj = LatentProjector.load(runs / RUN / "projections" / f"{at.session_state['explore_map']['key']}.npz")
    np.testing.assert_allclose([ring["x"][0], ring["y"][0]], proj.embedding_[row], atol=1e-5)


def test_clicking_empty_space_decodes_the_inverse_projection_and_marks_it(runs, run_data):
    _, model, _ = run_data
    at = open_explore("PCA")
    k = 17 * CLICK_GRID + 42  # row 17, column 42 of the click grid
    select(at, 0, k)

    proj = LatentProjector.load(runs / RUN / "projections" / f"{at.session_state['explore_map']['key']}.npz")
    x = np.linspace(proj.grid_x_[0], proj.grid_x_[-1], CLICK_GRID)[k % CLICK_GRID]
    y = np.linspace(proj.grid_y_[0], proj.grid_y_[-1], CLICK_GRID)[k // CLICK_GRID]
    z = proj.inverse_lookup(np.array([x, y]))
    point = at.session_state["explore_point"]
    np.testing.assert_allclose(point["xy"], [x, y])
    np.testing.assert_allclose(point["z"], z, atol=1e-6)
    np.testing.assert_allclose(at.session_state["decode_z"], z, atol=1e-6)
    np.testing.assert_allclose(at.session_state["explore_decoded"], decode(model, z), atol=1e-5)
    # PCA's inverse is exact: the grid lookup lands within interpolation error of it
    np.testing.assert_allclose(z, proj.inverse_transform(np.array([[x, y]]))[0], atol=1e-4)
    assert [h.value for h in at.subheader] == ["Decoded map point"]
    star = figure(at)["data"][-1]
    assert star["marker"]["symbol"] == "star"
    np.testing.assert_allclose([star["x"][0], star["y"][0]], [x, y])

    at.button(key="explore_point_decode").click().run()  # "Open in Decode" switches page, keeps z
    assert not at.exception
    assert at.title[0].value == "Decode"
    np.testing.assert_allclose(at.session_state["decode_z"], z, atol=1e-6)


def test_star_stays_when_a_data_point_is_picked_after_it(runs):
    at = open_explore("PCA")
    select(at, 0, 5 * CLICK_GRID + 5)
    star_xy = at.session_state["explore_point"]["xy"]
    select(at, 1, 0)
    symbols = [t["marker"].get("symbol") for t in figure(at)["data"][-2:]]
    assert symbols == ["circle-open", "star"]
    assert at.session_state["explore_point"]["xy"] == star_xy
    assert [h.value for h in at.subheader] == ["Label: 0"]


def test_train_split_and_backdrop(runs, run_data):
    _, _, ds = run_data
    at = open_explore("PCA", explore_split="train", explore_backdrop=True)
    assert at.session_state["explore_map"]["size"] == len(ds.x_train)
    spec = figure(at)
    (image,) = spec["layout"]["images"]
    assert image["source"].startswith("data:image/png;base64,")
    assert image["xref"] == "x" and image["layer"] == "below"


@pytest.mark.slow
def test_umap_map_the_default(runs, run_data):
    """UMAP is the default projection (tens of seconds the first time in a process: numba compiles)."""
    run, model, ds = run_data
    at = open_explore("UMAP")
    shown = at.session_state["explore_map"]
    assert shown["method"] == "umap"
    assert any(c.value.startswith(f"UMAP of {len(ds.x_test)} latent means") for c in at.caption)
    select(at, 0, 30 * CLICK_GRID + 30)
    proj = LatentProjector.load(run / "projections" / f"{shown['key']}.npz")
    np.testing.assert_allclose(
        at.session_state["explore_point"]["z"], proj.inverse_lookup(at.session_state["explore_point"]["xy"]), atol=1e-6
    )
    np.testing.assert_allclose(
        at.session_state["explore_decoded"], decode(model, at.session_state["explore_point"]["z"]), atol=1e-5
    )


def test_a_run_naming_a_file_outside_the_uploads_shows_a_sentence_not_the_file(runs, tmp_path):
    """A run folder copied in by hand whose config.json names a CSV elsewhere on the disk: the page
    refuses it in one sentence and never reads the file (its first line once showed up in an error)."""
    secret = tmp_path / "secret.csv"
    secret.write_text("password,hunter2\n1,2\n")
    cfg_path = runs / RUN / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["data"] = {"name": "file", "path": str(secret)}
    cfg_path.write_text(json.dumps(cfg))
    at = open_explore()
    errors = [e.value for e in at.error]
    assert any("outside" in e and "uploaded to this app" in e for e in errors), errors
    shown = " ".join(str(getattr(el, "value", "")) for el in at.main)
    assert "hunter2" not in shown and "password" not in shown


def test_the_map_says_how_far_to_trust_it_and_colours_by_neighbourhood_kept(runs):
    at = open_explore()
    line = next(c.value for c in at.caption if c.value.startswith("How far to trust it"))
    values = [float(v) for v in re.findall(r"(?:trustworthiness|continuity) (\d\.\d\d)", line)]
    assert len(values) == 2 and all(0.5 < v <= 1.0 for v in values), line
    assert re.search(r"neighbourhoods kept \d+%", line)
    assert isinstance(figure(at)["data"][1]["marker"]["color"], str)  # one colour per label
    at.toggle(key="explore_kept").set_value(True).run()
    assert not at.exception
    colours = figure(at)["data"][1]["marker"]["color"]  # typed array: {"dtype", "bdata"}
    shares = np.frombuffer(base64.b64decode(colours["bdata"]), dtype=np.dtype(colours["dtype"]))
    assert len(shares) == len(figure(at)["data"][1]["x"]) and ((shares >= 0) & (shares <= 1)).all()
