"""Interpolate: decode the path between two latent points, straight (lerp) or spherical (slerp); move an
endpoint along an attribute (toward a class, or along two map selections' axis) and solve analogies
(``ui.attributes``).

Endpoints are test items (their posterior means) or the point last decoded on the Explore map.
The decoded strip is one picture (downloadable); when a map of this run and checkpoint is cached
on disk, the path is drawn on it (PCA places points exactly; a UMAP map loaded from disk places
them approximately, at the mean position of their 10 nearest mapped codes). No map is computed here.
A test item endpoint shows its q(z|x): decoded samples beside its decoded mean and σ per dimension under its
picker (``ui.posterior``), its samples on the path's map.
Tests read ``interp_codes`` (steps, latent_dim), ``interp_decoded`` (steps, *item_shape) and ``interp_A_strip``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from ui import attributes, cache, itempicker, posterior, state
from ui.figures import chart, path_figure
from ui.pictures import decode, enlargement, grid_picture, label_name, picture
from ui.sidebar import current_run
from ui.text import plain
from vae.analysis.latent import interpolate
from vae.projection import find_map
from vae.runs import folder as rf

METHODS = {"Linear": "lerp", "Spherical (slerp)": "slerp"}
CLOUD_COLOURS = {"A": "rgba(68,1,84,0.5)", "B": "rgba(170,150,0,0.6)"}  # Viridis's ends (B's yellow darkened)
LINKED = "query-params"  # the endpoints, method and steps live in the page's URL: a copied link reopens them


def cached_map(run_dir: Path, checkpoint: str) -> Path | None:
    """A map of this run's current checkpoint: the one Explore showed last, else the newest on disk."""
    shown = state.shown_map()
    if shown.get("run") == str(run_dir) and shown.get("checkpoint") == checkpoint and Path(shown["file"]).is_file():
        return Path(shown["file"])
    return find_map(run_dir, checkpoint)


def endpoint(
    column, name: str, ds, model, test_codes: np.ndarray, map_point: dict | None, default: int
) -> tuple[np.ndarray, int | None]:
    """One endpoint picker in ``column``: a test item (its posterior mean) or the last map point; returns the
    code and the test item's index (None for a map point)."""
    with column:
        st.subheader(f"Endpoint {name}")
        source, i = "Test item", None
        if map_point:
            source = st.radio("From", ["Test item", "Map point"], key=f"interp_source_{name}", horizontal=True)
        small = enlargement(ds.item_shape, 96) if ds.is_image else 1
        if source == "Map point":
            z = np.asarray(map_point["z"], dtype=np.float32)
            caption = f"map point ({map_point['xy'][0]:.2f}, {map_point['xy'][1]:.2f})"
            shown = decode(model, z)[0]
        else:
            state.check_number_link(f"interp_index_{name}", 0, len(test_codes) - 1, f"endpoint {name}'s test item")
            itempicker.browse(ds, f"interp_browse_{name}", f"interp_index_{name}")  # by picture: sets the number
            try:
                i = int(st.number_input(
                    "Test item", 0, len(test_codes) - 1, default, key=f"interp_index_{name}",
                    help=f"Index into the {len(test_codes):,} test items.", bind=LINKED,
                ))  # fmt: skip
            except OverflowError:  # ?interp_index_A=1e400: Streamlit fails to read it before the page can
                st.warning("This page's link gives a test item that is not a number; showing item "
                           f"{default}. Open Interpolate from the sidebar to choose again.")  # fmt: skip
                i = default
            z, shown = test_codes[i], ds.x_test[i].numpy()
            y = None if ds.y_test is None else int(ds.y_test[i])
            caption = f"test #{i}" + (f" · label {plain(label_name(ds, y))}" if y is not None else "")
        if ds.is_image:
            st.image(picture(shown, scale=small), caption=caption, width=ds.item_shape[-1] * small, output_format="PNG")
        else:
            st.caption(caption)
    return z, i


# ---------------------------------------------------------------- the page

st.title("Interpolate")
run_dir, model = cache.require_model(current_run())
ds = cache.require_data(run_dir)
checkpoint = rf.checkpoint_id(run_dir)
test_codes, test_logvars, _ = cache.latent_params(str(run_dir), checkpoint, "test", None)  # (N_test, L) each
point = state.map_point(run_dir)
if point is None:  # a link's map-point endpoint (a new session): its code, its place and the map it was pinned on
    linked_z = state.link_vector(model.cfg.latent_dim, key="point_z") if "point_z" in st.query_params else None
    linked_xy = state.link_point("point_xy") if linked_z is not None else None
    if linked_xy is not None:
        point = {"run": str(run_dir), "map": st.query_params.get("point_map"), "xy": list(linked_xy), "z": linked_z}
        state.set_map_point(point)
        for name in st.query_params.get("point_ends", "")[:2]:  # which ends the link made the map point
            if name in "AB":
                st.session_state[f"interp_source_{name}"] = "Map point"
y = None if ds.y_test is None else ds.y_test.numpy()
differs = np.flatnonzero(y != y[0]) if y is not None else []
other = int(differs[0]) if len(differs) else min(1, len(test_codes) - 1)  # default B: another label

if not point:
    st.caption("Endpoints are test items; click empty space on the Explore map to add that point as a choice.")
col_a, col_b, col_c = st.columns([1, 1, 1.2])
a, item_a = endpoint(col_a, "A", ds, model, test_codes, point, 0)
b, item_b = endpoint(col_b, "B", ds, model, test_codes, point, other)
with col_c:
    st.subheader("Path")
    method = METHODS[st.radio("Interpolation", list(METHODS), key="interp_method", bind=LINKED)]
    state.check_number_link("interp_steps", 5, 20, "steps")
    steps = st.slider("Steps", 5, 20, 10, key="interp_steps", help="Images in the strip, endpoints included.",
                      bind=LINKED)  # fmt: skip
    st.caption("Slerp keeps to the arc between the two codes: a straight line cuts through the "
               "low-density middle of the Gaussian prior when the endpoints are far apart.")  # fmt: skip

from_point = [n for n in ("A", "B") if point and st.session_state.get(f"interp_source_{n}") == "Map point"]
if from_point:  # the link carries the map point: its code, its place, its map and the ends it is
    state.set_link_vector(point["z"], "point_z")
    state.set_link_point(point["xy"], "point_xy")
    st.query_params.update({"point_ends": "".join(from_point), **({"point_map": point["map"]} if point["map"] else {})})
else:
    for key in ("point_z", "point_xy", "point_map", "point_ends"):
        st.query_params.pop(key, None)

codes = interpolate(a, b, steps, method)  # (steps, latent_dim)
decoded = decode(model, codes)  # (steps, *item_shape)
st.session_state["interp_codes"], st.session_state["interp_decoded"] = codes, decoded
st.subheader("Decoded path")
if ds.is_image:
    png = grid_picture(decoded, ncol=steps, scale=enlargement(ds.item_shape, 64))
    st.image(png, caption=f"{steps} steps from A (left) to B (right), {method}", output_format="PNG")
    st.download_button("Download strip (PNG)", png, file_name=f"{run_dir.name}-{method}-{steps}.png",
                       mime="image/png", icon=":material/download:", on_click="ignore")  # fmt: skip
else:
    st.dataframe(ds.to_original_units(decoded), width="stretch")


def endpoint_label(name: str, default: int) -> int | None:
    """The label of endpoint ``name`` when it is a test item of labelled data."""
    if y is None or st.session_state.get(f"interp_source_{name}", "Test item") != "Test item":
        return None
    return int(y[int(st.session_state.get(f"interp_index_{name}", default))])


ends_labels = (endpoint_label("A", 0), endpoint_label("B", other))
attributes.attribute_section(run_dir, checkpoint, model, ds, a, ends_labels, steps)
attributes.analogy_section(run_dir, checkpoint, model, ds, {"endpoint A": a, "endpoint B": b}, test_codes, ends_labels)

path = cached_map(run_dir, checkpoint)
proj = None if path is None else cache.load_projector(path)
extra = []  # a test item endpoint's q(z|x): its strip and σ under its picker, its samples on the path map
kl = cache.kl_by_dimension(str(run_dir), checkpoint)
for col, name, i in ((col_a, "A", item_a), (col_b, "B", item_b)):
    if i is not None:
        cloud = posterior.item_cloud(proj, test_codes[i], test_logvars[i], seed=i)
        colour = CLOUD_COLOURS[name]  # the path's own colour at that end
        extra += [{**o, "colour": colour} for o in posterior.overlays(cloud, None)]
        with col, st.expander("Its posterior q(z|x)"):
            strip_only = {**cloud, "xy": None}  # the path map's own caption says what its coloured dots are
            own = None if y is None else int(y[i])  # a conditional VAE decodes the item's own class
            posterior.show_item_posterior(model, test_codes[i], test_logvars[i], strip_only, kl, f"interp_{name}", own)

st.subheader("Path on the map")
if proj is None:
    st.info("No map of this model yet: open Explore to compute the map, then come back.")
    st.page_link("app_pages/explore.py", label="Open Explore", icon=":material/scatter_plot:")
    st.stop()
positions = proj.transform(codes)  # (steps, 2)
shown = state.shown_map()
if point and point.get("map") and point["map"] == shown.get("key") and str(path) == shown.get("file"):
    for name in from_point:  # a pinned star's end sits on the star (a UMAP map places codes only approximately)
        positions[0 if name == "A" else -1] = point["xy"]
st.session_state["interp_positions"] = positions
how = "placed approximately (10 nearest codes)" if proj.transform_is_approximate_ else "projected exactly"
st.caption(f"The {proj.method.upper()} map of {len(proj.embedding_):,} codes from Explore; the path is {how}.")
chart(path_figure(proj, positions, extra), key="interp_map")
if extra:
    how = ", the ring its 2σ ellipse." if proj.method == "pca" else ", placed by their nearest codes."
    st.caption(f"Dots around an endpoint (in its colour): samples of that item's q(z|x){how}")
