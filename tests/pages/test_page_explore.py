"""The Explore page in AppTest: the map is computed and cached, a selected point shows its item, its
label and its reconstruction, and a click on empty space decodes the inverse-projected point.

Plotly charts are unknown elements to AppTest, but a selection can be injected by setting the
chart's key in session state before ``run()``; the figure itself is read from the element's proto.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from apptest import open_app, page_components
from specs import array, chart_spec
from streamlit.testing.v1 import AppTest

from vae.projection import LatentProjector

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
RUN = "digits-small"


from ui import posterior  # noqa: E402
from ui.maps import CLICK_GRID  # noqa: E402

# ---------------------------------------------------------------- the page in AppTest


def open_explore(method: str = "PCA", browser: bool = False, **state) -> AppTest:
    """Explore in AppTest; the server-drawn chart unless ``browser`` (the component's pixels: tests/e2e)."""
    return open_app("explore", state={"explore_method": method, "explore_browser": browser, **state})


def figure(at: AppTest) -> dict:
    """The map's plotly spec, with base64 typed arrays decoded to numpy."""
    return chart_spec(at.get("plotly_chart")[0])  # the map (the prior's histograms follow, under it)


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
    assert [img.captions for img in at.image][:3] == [
        ["original"], ["reconstruction (decoded mean)"], ["decoded mean (top left), then 8 samples of q(z|x)"]
    ]  # fmt: skip
    assert len(at.image) == 3 + 12  # then its 12 nearest latent neighbours
    with torch.inference_mode():
        mu, _ = model.encode(ds.x_test[row : row + 1])
    np.testing.assert_allclose(at.session_state["explore_decoded"], decode(model, mu), atol=1e-5)
    ring = figure(at)["data"][-1]
    assert ring["marker"]["symbol"] == "circle-open"
    assert [t["name"] for t in figure(at)["data"][11:-1]] == ["q(z|x) samples", "q(z|x) 2σ"]  # under the ring
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


def umap_ready(at: AppTest, timeout: float = 300.0) -> AppTest:
    """Rerun until the UMAP map, fitted in the background, has replaced its PCA stand-in."""
    deadline = time.monotonic() + timeout
    while at.session_state["explore_map"]["method"] != "umap":
        assert time.monotonic() < deadline, "the UMAP map never replaced the PCA stand-in"
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_umap_map_the_default_after_its_pca_stand_in(runs, run_data):
    """UMAP is the default projection; its PCA map stands in while it fits (tens of seconds the first time
    in a process: numba compiles), with a note saying so."""
    run, model, ds = run_data
    at = open_explore("UMAP")
    if at.session_state["explore_map"]["method"] == "pca":  # the usual case: the fit has only just begun
        assert any("being computed in the background" in i.value for i in at.info)
        assert any(c.value.startswith("PCA of") for c in at.caption)
    umap_ready(at)
    shown = at.session_state["explore_map"]
    assert not any("being computed in the background" in i.value for i in at.info)
    assert any(c.value.startswith(f"UMAP of {len(ds.x_test)} latent means") for c in at.caption)
    select(at, 0, 30 * CLICK_GRID + 30)
    proj = LatentProjector.load(run / "projections" / f"{shown['key']}.npz")
    np.testing.assert_allclose(
        at.session_state["explore_point"]["z"], proj.inverse_lookup(at.session_state["explore_point"]["xy"]), atol=1e-6
    )
    np.testing.assert_allclose(
        at.session_state["explore_decoded"], decode(model, at.session_state["explore_point"]["z"]), atol=1e-5
    )


# ---------------------------------------------------------------- the browser-drawn map (its Python side)


def mounts(at: AppTest) -> dict[str, object]:
    """The map component's mounts by role (panel, plotly, weights, map, column): the panel's JSON, the others'
    bytes."""
    out = {}
    for el in page_components(at):
        ends = ("_plotly", "_weights", "_map", "_column")
        role = el.proto.id.rsplit("_", 1)[-1] if el.proto.id.endswith(ends) else "panel"
        out[role] = json.loads(el.proto.json) if role == "panel" else el.proto.bytes
    return out


def pick(at: AppTest, value) -> AppTest:
    """A click in the browser, on the map shown (``value`` names it unless it says otherwise)."""
    if isinstance(value, dict) and "kind" in value:
        value = {"map": mounts(at)["panel"]["map"], **value}
    at.session_state[at.session_state["explore_view_key"]] = {"pick": value}
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_browser_gets_plotly_the_decoder_and_the_map_in_bytes(runs, run_data):
    import plotly

    from vae.web import decoder as webdecoder
    from vae.web import mapgrid as webmap

    run, _, ds = run_data
    at = open_explore("PCA", browser=True)
    m = mounts(at)
    assert set(m) == {"panel", "plotly", "weights", "map"}
    js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    assert m["plotly"] == b"LEPLOTJS" + js  # the installed package's own file: nothing from the network
    assert webdecoder.read_header(m["weights"])["latent_dim"] == 4
    header, arrays = webmap.read_map(m["map"])
    proj = LatentProjector.load(runs / RUN / "projections" / f"{at.session_state['explore_map']['key']}.npz")
    assert header["id"] == m["panel"]["map"] and header["n"] == len(ds.x_test)
    assert [c["name"] for c in header["categories"]] == [str(d) for d in range(10)]
    np.testing.assert_array_equal(arrays["xy"], proj.embedding_[arrays["rows"]])
    np.testing.assert_array_equal(arrays["index"], arrays["rows"])  # all test items: row k is item k
    names = np.array([c["name"] for c in header["categories"]])
    np.testing.assert_array_equal(names[arrays["category"]].astype(int), ds.y_test.numpy()[arrays["rows"]])
    # drawn in a shuffled order, not label after label: no class paints over another
    assert sorted(arrays["rows"].tolist()) == list(range(len(ds.x_test)))
    runs_of_a_label = 1 + np.count_nonzero(np.diff(arrays["category"]))
    assert runs_of_a_label > 200  # label after label would make 10
    np.testing.assert_array_equal(arrays["grid_codes"], proj.grid_codes_)
    np.testing.assert_allclose(arrays["grid_x"], proj.grid_x_, rtol=1e-6)
    want = np.round(ds.x_test.numpy()[arrays["rows"]].reshape(len(ds.x_test), -1) * 255)
    np.testing.assert_array_equal(arrays["pixels"], want)  # the items themselves, for hovering
    assert m["panel"]["pin"] is None and m["panel"]["ring"] is None
    assert [c.value for c in at.caption if "Point anywhere" in c.value]


def test_a_browser_click_on_empty_space_pins_a_star_decoded_by_python(runs, run_data):
    _, model, _ = run_data
    at = pick(open_explore("PCA", browser=True), {"kind": "point", "xy": [0.3, -0.2], "z": [9, 9, 9, 9], "n": 1})
    proj = LatentProjector.load(runs / RUN / "projections" / f"{at.session_state['explore_map']['key']}.npz")
    z = proj.inverse_lookup(np.array([0.3, -0.2]))  # the server's own inverse, not the browser's z
    np.testing.assert_allclose(at.session_state["explore_point"]["z"], z, atol=1e-6)
    np.testing.assert_allclose(at.session_state["decode_z"], z, atol=1e-6)
    np.testing.assert_allclose(at.session_state["explore_decoded"], decode(model, z), atol=1e-5)
    assert [h.value for h in at.subheader] == ["Decoded map point"]
    assert mounts(at)["panel"]["pin"] == [0.3, -0.2]

    pick(at, {"kind": "item", "row": 7, "n": 2})  # then an item: its panel, the ring, the star stays
    assert at.session_state["explore_selected"]["index"] == 7
    panel = mounts(at)["panel"]
    np.testing.assert_allclose(panel["ring"], proj.embedding_[7], atol=1e-5)
    assert panel["pin"] == [0.3, -0.2]


@pytest.mark.parametrize(
    "value",
    [
        {"kind": "item", "row": 10**9, "n": 1},
        {"kind": "item", "row": "3", "n": 1},
        {"kind": "point", "xy": ["a", 1], "n": 1},
        {"kind": "point", "xy": [1.0], "n": 1},
        {"kind": "teleport"},
        {"kind": "item", "row": 3, "n": 1, "map": "another map"},
        {"kind": "selection", "rows": [1, "2"], "n": 1},
        {"kind": "selection", "rows": [1, 10**9], "n": 1},
        {"kind": "selection", "rows": [], "n": 1},
        {"kind": "selection", "rows": [True], "n": 1},
        "nonsense",
    ],
)
@pytest.mark.slow
def test_a_malformed_pick_from_the_browser_is_ignored(runs, value):
    at = pick(open_explore("PCA", browser=True), value)
    assert "explore_selected" not in at.session_state and "explore_point" not in at.session_state
    assert [i.value for i in at.info][-1].startswith("Click a point to pin that item")


def test_a_box_or_lasso_selection_is_kept_as_a_group_for_interpolate(runs, run_data):
    run, _, ds = run_data
    at = pick(open_explore("PCA", browser=True), {"kind": "selection", "rows": [9, 3, 5, 3], "n": 1})
    assert "**3 items selected**" in [m.value for m in at.markdown]
    at.button(key="explore_group_A").click().run()
    pick(at, {"kind": "selection", "rows": [11, 12], "n": 2})
    at.button(key="explore_group_B").click().run()
    groups = at.session_state["attr_groups"]
    assert (groups["split"], groups["A"], groups["B"]) == ("test", [3, 5, 9], [11, 12])  # test items: row = item
    assert any("group A: 3 items, group B: 2 items" in c.value for c in at.caption)
    overlays = {o["name"]: o for o in mounts(at)["panel"]["overlays"]}  # the kept groups drawn on their map
    proj = LatentProjector.load(runs / RUN / "projections" / f"{at.session_state['explore_map']['key']}.npz")
    np.testing.assert_allclose(overlays["group A"]["xy"], proj.embedding_[[3, 5, 9]], atol=1e-5)
    assert len(overlays["group B"]["xy"]) == 2
    at.switch_page("app_pages/interpolate.py").run()
    assert at.radio(key="attr_kind").options[-1] == "Map group A → group B"


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
    at.selectbox(key="explore_colour").set_value("neighbourhood kept").run()
    assert not at.exception
    shares = array(figure(at)["data"][1]["marker"]["color"])
    assert len(shares) == len(figure(at)["data"][1]["x"]) and ((shares >= 0) & (shares <= 1)).all()


def test_both_splits_together_name_each_item_by_its_own_split(runs, run_data):
    _, _, ds = run_data
    n_train = len(ds.x_train)
    at = open_explore("PCA", browser=True, explore_split="all")
    assert at.session_state["explore_map"]["size"] == n_train + len(ds.x_test)
    assert mounts(at)["panel"]["n_train"] == n_train
    pick(at, {"kind": "item", "row": n_train + 5, "n": 1})  # past the train items: test item 5
    assert at.session_state["explore_selected"] == {"split": "test", "index": 5, "label": str(int(ds.y_test[5]))}
    assert any(c.value.startswith("test item #5 at") for c in at.caption)
    pick(at, {"kind": "item", "row": 5, "n": 2})
    assert at.session_state["explore_selected"]["split"] == "train"


# ---------------------------------------------------------------- the encoder's distribution (issue: q(z|x))


def test_a_pinned_item_shows_its_posterior_cloud_strip_and_sigma_bars(runs, run_data):
    from ui.posterior import CLOUD, STRIP

    _, model, ds = run_data
    at = pick(open_explore("PCA", browser=True), {"kind": "item", "row": 11, "n": 1})
    overlays = {o["name"]: np.asarray(o["xy"]) for o in mounts(at)["panel"]["overlays"]}
    assert set(overlays) == {"q(z|x) samples", "q(z|x) 2σ"}
    proj = LatentProjector.load(runs / RUN / "projections" / f"{at.session_state['explore_map']['key']}.npz")
    with torch.inference_mode():
        mu, logvar = model.encode(ds.x_test[11:12])
    cloud = overlays["q(z|x) samples"]
    assert cloud.shape == (CLOUD, 2)
    centre = proj.transform(mu.numpy())[0]
    np.testing.assert_allclose(cloud.mean(axis=0), centre, atol=4 * cloud.std(axis=0).max() / np.sqrt(CLOUD))
    ring = overlays["q(z|x) 2σ"]  # PCA: the ellipse of N(Cμ, C diag(σ²) Cᵀ), around the item's mean
    assert np.allclose(ring[0], ring[-1])  # a closed curve
    np.testing.assert_allclose(ring[:-1].mean(axis=0), centre, atol=1e-4)
    inside = np.mean(np.hypot(*(cloud - centre).T) <= np.hypot(*(ring - centre).T).max())
    assert inside > 0.8  # nearly all samples lie within the 2σ ellipse's reach
    strip = at.session_state["explore_strip"]  # decoded mean, then samples
    assert strip.shape[0] == 1 + STRIP
    np.testing.assert_allclose(strip[0], decode(model, mu.numpy()), atol=1e-5)
    assert not np.allclose(strip[1], strip[0], atol=1e-3)  # samples decode to something other than the mean
    charts = [chart_spec(c) for c in at.get("plotly_chart")]
    (bars,) = [t for c in charts for t in c["data"] if t["type"] == "bar"]  # the σ per dimension
    np.testing.assert_allclose(bars["y"], torch.exp(0.5 * logvar)[0].numpy(), rtol=1e-5)


def test_the_prior_section_measures_and_draws_only_while_open_and_its_samples_stay_on_the_map_when_closed(runs):
    """Closed (as the page opens), the section holds its toggles only: no mismatch measured, no histograms drawn
    (about 170 ms of the server per rerun, and a chart library for the browser to load); prior samples turned on
    stay on the map once the section is closed again."""
    at = open_explore("PCA", browser=True)
    assert not any("moment-matched" in c.value for c in at.caption)
    assert not at.get("plotly_chart")  # the map is the component's; the histograms are the only chart
    at.session_state[posterior.PRIOR_OPEN_KEY] = True
    at.run()
    assert any("moment-matched" in c.value for c in at.caption) and len(at.get("plotly_chart")) == 1
    at.toggle(key="explore_prior").set_value(True).run()
    at.session_state[posterior.PRIOR_OPEN_KEY] = False
    at.run()
    assert not at.exception, at.exception
    assert not any("moment-matched" in c.value for c in at.caption)
    (prior,) = mounts(at)["panel"]["overlays"]
    assert prior["name"] == "prior samples" and len(prior["xy"]) == 1000


def test_the_prior_against_the_codes_with_prior_samples_on_the_map(runs):
    at = open_explore("PCA", browser=True, **{posterior.PRIOR_OPEN_KEY: True})
    line = next(c.value for c in at.caption if "moment-matched" in c.value)
    kl = float(re.search(r"prior: \*\*([\d.]+) nats", line).group(1))
    assert kl > 0 and "holes" in line
    assert not mounts(at)["panel"]["overlays"]
    at.toggle(key="explore_prior").set_value(True).run()
    assert not at.exception, at.exception
    (prior,) = mounts(at)["panel"]["overlays"]
    assert prior["name"] == "prior samples" and len(prior["xy"]) == 1000
    histograms = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert sum(t["type"] == "histogram" for t in histograms["data"]) == 4  # one per latent dimension


# ---------------------------------------------------------------- colouring the browser's map (issue: the map)


def column_of(at: AppTest) -> tuple[dict, np.ndarray]:
    from vae.web import mapgrid as webmap

    m = mounts(at)
    header, arrays = webmap.read_map(m["column"], webmap.COLUMN_MAGIC)
    assert m["panel"]["column"] == header["id"] and header["map"] == m["panel"]["map"]
    return header, arrays["values"]


def test_the_points_are_coloured_by_the_column_chosen_with_its_own_values(runs, run_data):
    from vae.analysis.evaluate import reconstruction_errors

    _, model, ds = run_data
    at = open_explore("PCA", browser=True)
    assert at.selectbox(key="explore_colour").value == "label" and "column" not in mounts(at)  # the default
    offered = at.selectbox(key="explore_colour").options
    assert offered == ["label", "reconstruction error", "KL of the item", "mean σ", "neighbourhood kept"]
    x = ds.x_test  # the map of every test item: row k is item k
    mu, logvar = model.embed(x)
    want = {
        "reconstruction error": reconstruction_errors(model, x),
        "KL of the item": 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(1),
        "mean σ": np.exp(0.5 * logvar).mean(1),
    }
    for name, expected in want.items():
        at.selectbox(key="explore_colour").set_value(name).run()
        assert not at.exception, at.exception
        header, values = column_of(at)
        assert header["name"] == name and header["kind"] == "number"
        np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-5)
        assert header["range"] == pytest.approx([values.min(), values.max()])
        assert [c for _, c in header["scale"]][0] == "#440154"  # Viridis, from dark to light, with a colour bar
        assert any(f"Coloured by {name}:" in c.value for c in at.caption)
    at.selectbox(key="explore_colour").set_value("neighbourhood kept").run()
    header, kept = column_of(at)
    assert ((kept >= 0) & (kept <= 1)).all() and len(kept) == len(x)
    assert header["range"] == [0.0, 1.0]  # a share: its scale runs 0 to 1 whatever this map's values
    assert "yellow (1) all kept" in next(c.value for c in at.caption if "Coloured by" in c.value)


def test_both_splits_can_be_coloured_by_split_and_the_choice_falls_back_when_the_split_changes(runs, run_data):
    _, _, ds = run_data
    at = open_explore("PCA", browser=True, explore_split="all")
    at.selectbox(key="explore_colour").set_value("split").run()
    header, values = column_of(at)
    assert header["kind"] == "category" and [c["name"] for c in header["categories"]] == ["train", "test"]
    size = len(ds.x_train) + len(ds.x_test)
    n = at.session_state["explore_map"]["size"]
    assert n <= size and values.sum() > 0 and (values < 1).sum() > 0  # some of each
    at.radio(key="explore_split").set_value("test").run()  # no split to colour by on one split's map
    assert not at.exception, at.exception
    assert at.selectbox(key="explore_colour").value == "label" and "column" not in mounts(at)


def test_a_link_with_an_unknown_colouring_or_marker_gets_a_sentence_and_the_defaults(runs):
    at = open_app("explore", query={"explore_colour": "favourite colour"},
                  state={"explore_method": "PCA", "explore_browser": True})  # fmt: skip
    assert not at.exception
    assert any("favourite colour" in t.value and "label" in t.value for t in at.toast)
    assert at.selectbox(key="explore_colour").value == "label"
    panel = mounts(at)["panel"]
    assert (panel["size"], panel["opacity"]) == (6, 0.84)  # chosen for 360 points


def test_point_size_and_opacity_follow_the_number_of_points_unless_chosen(runs):
    from ui.mapview import auto_marker

    assert auto_marker(360) == (6, 0.84) and auto_marker(70_000) == (3, 0.57) and auto_marker(737_280) == (2, 0.45)
    sizes = [auto_marker(n)[0] for n in (10, 1_000, 100_000, 10_000_000)]
    assert sizes == sorted(sizes, reverse=True)
    at = open_explore("PCA", browser=True)
    at.select_slider(key="explore_point_size").set_value(9).run()
    assert (mounts(at)["panel"]["size"], mounts(at)["panel"]["opacity"]) == (9, 0.84)
    at.select_slider(key="explore_opacity").set_value(0.3).run()
    assert (mounts(at)["panel"]["size"], mounts(at)["panel"]["opacity"]) == (9, 0.3)


def test_a_pinned_item_shows_its_12_nearest_latent_neighbours_and_one_click_pins_one(runs, run_data):
    from sklearn.neighbors import NearestNeighbors

    _, model, ds = run_data
    at = pick(open_explore("PCA", browser=True), {"kind": "item", "row": 7, "n": 1})
    mu, _ = model.embed(ds.x_test)  # the map of every test item: row k is item k
    rows = NearestNeighbors(n_neighbors=13).fit(mu).kneighbors(mu[7:8], return_distance=False)[0]
    want = [int(r) for r in rows if r != 7][:12]
    shown = [int(b.key.rsplit("_", 1)[1]) for b in at.button if (b.key or "").startswith("explore_neighbour_")]
    assert shown == want
    assert any(m.value == "**Its 12 nearest neighbours in the latent space**" for m in at.markdown)
    at.button(key=f"explore_neighbour_{want[0]}").click().run()
    assert not at.exception, at.exception
    assert at.session_state["explore_selected"]["index"] == want[0]  # that neighbour is pinned now
    proj = LatentProjector.load(runs / RUN / "projections" / f"{at.session_state['explore_map']['key']}.npz")
    np.testing.assert_allclose(mounts(at)["panel"]["ring"], proj.embedding_[want[0]], atol=1e-5)
    pick(at, {"kind": "item", "row": 30, "n": 2})  # the browser's next click wins over the gallery's pin
    assert at.session_state["explore_selected"]["index"] == 30


def test_a_selection_shows_every_label_count_a_sample_of_48_and_clears(runs, run_data):
    _, _, ds = run_data
    at = pick(open_explore("PCA", browser=True), {"kind": "selection", "rows": list(range(60)), "n": 1})
    values, counts = np.unique(ds.y_test.numpy()[:60], return_counts=True)
    line = next(c.value for c in at.caption if c.value.startswith("Label counts: "))
    assert sorted(re.findall(r"(\d): (\d+)", line)) == sorted(
        (str(v), str(c)) for v, c in zip(values, counts, strict=True)
    )
    assert "The selection: a sample of 48." in [c for image in at.image for c in image.captions]
    at.button(key="explore_clear_selection").click().run()
    assert not at.exception, at.exception
    assert not any("items selected" in m.value for m in at.markdown)  # the selection went
    assert mounts(at)["panel"]["clears"] == 1  # ... and the browser drops its box or lasso
    pick(at, {"kind": "selection", "rows": [1, 2], "n": 2})  # selecting again works at once
    assert "**2 items selected**" in [m.value for m in at.markdown]
    assert "The selection: all of them." in [c for image in at.image for c in image.captions]


def test_find_pins_an_item_by_number_keeps_it_in_the_url_and_shows_only_a_label_by_name(runs, run_data):
    run, _, ds = run_data
    at = open_explore("PCA", browser=True)
    at.text_input(key="explore_find").set_value("#7").run()
    assert not at.exception, at.exception
    assert at.session_state["explore_selected"]["index"] == 7
    assert at.query_params["item"] == "7"  # a copied link reopens it
    proj = LatentProjector.load(runs / RUN / "projections" / f"{at.session_state['explore_map']['key']}.npz")
    np.testing.assert_allclose(mounts(at)["panel"]["ring"], proj.embedding_[7], atol=1e-5)
    pick(at, {"kind": "item", "row": 30, "n": 1})  # a click on the map takes over from the Find box
    assert at.session_state["explore_selected"]["index"] == 30 and at.query_params["item"] == "30"
    at.text_input(key="explore_find").set_value("4").run()  # a label's name: only its points, the rest grey
    assert mounts(at)["panel"]["only"] == 4
    at.text_input(key="explore_find").set_value("#5000").run()
    assert any("There is no item #5000" in c.value for c in at.caption)
    at.text_input(key="explore_find").set_value("sandal").run()
    assert any("Nothing is called “sandal”" in c.value for c in at.caption) and not at.exception


def test_a_link_with_a_pinned_item_opens_with_it_pinned_and_a_bad_one_gets_a_sentence(runs, run_data):
    at = open_app("explore", query={"item": "12"}, state={"explore_method": "PCA", "explore_browser": True})
    assert not at.exception, at.exception
    assert at.session_state["explore_selected"]["index"] == 12
    bad = open_app("explore", query={"item": "ninety"}, state={"explore_method": "PCA", "explore_browser": True})
    assert not bad.exception and any("ninety" in t.value for t in bad.toast)
    assert "explore_selected" not in bad.session_state


def test_the_density_toggle_asks_the_browser_for_contours_under_the_points_of_all_or_one_per_label(runs):
    at = open_explore("PCA", browser=True)
    assert mounts(at)["panel"]["density"] is None
    assert at.toggle(key="explore_density_labels").disabled  # only with the density on
    at.toggle(key="explore_density").set_value(True).run()
    assert not at.exception and mounts(at)["panel"]["density"] == "all"
    at.toggle(key="explore_density_labels").set_value(True).run()
    assert not at.exception and mounts(at)["panel"]["density"] == "label"
    at.toggle(key="explore_density").set_value(False).run()
    assert not at.exception and mounts(at)["panel"]["density"] is None


def test_a_vampprior_run_shows_its_pseudo_inputs_and_its_components_and_samples_its_own_prior(runs):
    from vae.config import DataConfig, TrainConfig
    from vae.data import load_dataset
    from vae.runs import folder as rf
    from vae.runs.folder import new_run
    from vae.train import train

    digits = load_dataset(DataConfig(name="digits"))
    train_cfg = TrainConfig(epochs=2, threads=1, grid_size=2)
    run = new_run(runs, "digits-vamp", digits, DataConfig(name="digits"), latent_dim=4, hidden=(32,),
                  family="vampprior", pseudo_inputs=12, train_cfg=train_cfg)  # fmt: skip
    assert train(run, dataset=digits)["state"] == "finished"
    at = open_explore("PCA", browser=True, **{posterior.PRIOR_OPEN_KEY: True})  # the newest run: this one
    assert not at.exception, at.exception
    assert any("The first 12 of 12 learned pseudo-inputs" in c.value for c in at.caption)
    at.toggle(key="explore_prior").set_value(True)
    at.toggle(key="explore_components").set_value(True).run()
    assert not at.exception, at.exception
    overlays = {o["name"]: o for o in mounts(at)["panel"]["overlays"]}
    model = rf.load_model(run)
    mu, _ = model.embed(model.pseudo_inputs().detach())
    assert len(overlays["prior components"]["xy"]) == 12
    assert len(overlays["prior samples"]["xy"]) == 1000
    # on a PCA map (an affine map of the codes) the crosses are the components' means placed as codes are: an
    # affine fit from the 12 means to the 12 crosses is exact
    xy = np.asarray(overlays["prior components"]["xy"], dtype=np.float64)
    design = np.hstack([mu.astype(np.float64), np.ones((12, 1))])  # (12, 5)
    fit = design @ np.linalg.lstsq(design, xy, rcond=None)[0]
    np.testing.assert_allclose(fit, xy, atol=1e-4 * (1 + np.abs(xy).max()))
    assert np.ptp(xy, axis=0).min() > 0


def test_following_a_training_shows_each_new_checkpoints_map_started_from_the_one_shown(runs):
    import hashlib
    import os

    from vae.projection import sequence
    from vae.runs import folder as rf

    run = runs / "digits-small"
    status = rf.read_status(run)
    rf.write_status(run, {**status, "state": "running", "pid": os.getpid(), "updated": time.time()})
    try:
        at = open_explore("PCA", browser=True)
        assert at.toggle(key="explore_follow").value is False  # offered while the run trains
        at.toggle(key="explore_follow").set_value(True).run()
        shown = dict(at.session_state["explore_map"])
        before = LatentProjector.load(shown["file"]).embedding_.astype(np.float64)
        model = rf.load_model(run)
        with torch.no_grad():  # a newer checkpoint lands, its codes turned: an independent PCA would differ
            first = model.encoder.net[0].weight
            first.mul_(-1.0)
            model.encoder.net[-1].weight.mul_(-1.0)
            first.add_(0.01 * torch.randn(first.shape, generator=torch.Generator().manual_seed(0)))
        rf.save_model(run, model)
        at.run()
        assert not at.exception, at.exception
        now = at.session_state["explore_map"]
        started = "-f" + hashlib.sha256(shown["key"].encode()).hexdigest()[:8]  # a key of its own: from that map
        assert now["checkpoint"] != shown["checkpoint"] and now["key"].endswith(started)
        after = LatentProjector.load(now["file"])
        np.testing.assert_allclose(after.embedding_, sequence.turned_onto(sequence.pca2(after.codes_), before),
                                   atol=1e-3)  # fmt: skip  # the new PCA, turned onto the map shown
        at.toggle(key="explore_follow").set_value(False).run()  # stays on the map it shows
        assert at.session_state["explore_map"]["key"] == now["key"]
    finally:
        rf.write_status(run, status)


def test_a_path_drawn_in_the_browser_becomes_a_film_to_download_and_bad_paths_are_ignored(runs, run_data):
    """The browser sends the spots along a drawn path (the state value ``film``): the page shows the decoder's
    pictures there, torch's decodes of the inverse grid's codes, and offers them as a GIF; anything malformed, or
    a path of another map, shows nothing and breaks nothing."""
    import io

    from PIL import Image

    from ui.mapview.film import frames
    from vae.images import gif_bytes

    run, model, _ = run_data
    at = open_explore("PCA", browser=True)
    the_map = mounts(at)["panel"]["map"]
    proj = LatentProjector.load(runs / RUN / "projections" / f"{at.session_state['explore_map']['key']}.npz")
    (x0, y0), (x1, y1) = proj.embedding_.min(0), proj.embedding_.max(0)
    spots = np.column_stack([np.linspace(x0, x1, 32), np.linspace(y0, y1, 32)])
    view = at.session_state["explore_view_key"]
    for bad in ([[0.0, 0.0]], [[0, 0], [1, "x"]], [[0, 0], [float("nan"), 1]], "M0,0L1,1", [[0, 0, 0], [1, 1, 1]],
                [[0, 0]] * 300):  # fmt: skip
        at.session_state[view] = {"film": {"map": the_map, "xy": bad}}
        at.run()
        assert not at.exception, at.exception
        assert not any("Along your path" in m.value for m in at.markdown), bad
    at.session_state[view] = {"film": {"map": "another-run@1/pca", "xy": spots.tolist()}}
    at.run()
    assert not any("Along your path" in m.value for m in at.markdown)
    at.session_state[view] = {"film": {"map": the_map, "xy": spots.tolist(), "n": 1}}
    at.run()
    assert not at.exception, at.exception
    assert any("Along your path" in m.value and "32 frames" in m.value for m in at.markdown)
    assert [b.label for b in at.get("download_button") if "film" in b.label] == ["Download the film (GIF)"]
    pictures = frames(model, proj, spots)
    want = model.decode_numpy(proj.inverse_lookup(spots, method="grid"))
    np.testing.assert_allclose(pictures, want, atol=1e-6)
    gif = Image.open(io.BytesIO(gif_bytes(pictures, scale=2)))
    assert gif.n_frames == 32 and gif.size == (2 * want.shape[-1], 2 * want.shape[-2])
    for k in (0, 17, 31):
        gif.seek(k)
        got = np.asarray(gif.convert("L"))[::2, ::2]
        assert np.abs(got.astype(int) - np.round(np.clip(want[k, 0], 0, 1) * 255).astype(int)).max() <= 1
