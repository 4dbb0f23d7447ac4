"""Explore: a 2-D map (UMAP or PCA) of the latent means of a split.

Click a point to see the item, its reconstruction and its label; click empty space to decode the
latent point that the inverse projection gives for that spot. Plotly only reports clicks on points,
so an invisible, clickable grid of points covers the map: a click on it is a click "on the map".
Maps are cached on disk per checkpoint and parameters (``<run>/projections/<key>.npz``, inverse grid
included) and the fitted projector stays in memory per (run, checkpoint, projection).

Session state shared with other pages: ``decode_z`` (the latent vector the Decode page opens with),
``explore_point`` (the last decoded map point: run, map key, position, code) and ``explore_map``
(the map on screen: run, checkpoint, key, file, split, size, method) for the Interpolate page.
Tests read ``explore_chart_key``, ``explore_decoded`` (the last decoded array) and ``explore_selected``,
and import the pure functions (the page body runs only as a page, ``__name__ == "__main__"``).
"""

from __future__ import annotations

import base64
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

import ui
from vae import run as rf
from vae.data import Dataset
from vae.images import make_grid, png_bytes
from vae.projection import LatentProjector, cached_projection, projection_key

METHODS = {"UMAP": "umap", "PCA": "pca"}
SIZES = (2_000, 5_000, 10_000)  # subsample sizes offered, plus "all"
INVERSE_GRID = 48  # resolution of the inverse grid saved with each map
CLICK_GRID = 60  # invisible clickable points per side
TILES = 10  # decoded backdrop: TILES x TILES images
PROJECTIONS = "projections"
COLOURS = qualitative.Plotly + qualitative.Alphabet
POINT, MAP, DECODE_Z = "explore_point", "explore_map", "decode_z"


# ---------------------------------------------------------------- the projection


@st.cache_resource(max_entries=8, show_spinner=False)
def _projection_slot(run_path: str, checkpoint: str, key: str) -> dict:
    """The state of one (run, checkpoint, projection), shared by sessions: its fitting job and result.

    Keys: "lock"; "job" (a Future of the fit) and "progress" (fraction, message) while UMAP fits;
    "projector" once done. Only this page writes here; a projector, once set, is never changed.
    """
    return {"lock": threading.Lock(), "progress": (0.0, "starting")}


@st.cache_resource(show_spinner=False)
def _fitting_thread() -> ThreadPoolExecutor:
    """One background worker for UMAP fits: a fit survives reruns and page switches, and fits queue."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="explore-umap")


def _fit(run_dir: Path, key: str, codes: np.ndarray, method: str, progress=None) -> LatentProjector:
    return cached_projection(
        run_dir / PROJECTIONS, key, codes, {"method": method}, progress, grid_resolution=INVERSE_GRID
    )


def fitted_projector(run_dir: Path, checkpoint: str, key: str, codes: np.ndarray, method: str) -> LatentProjector:
    """The map of ``codes``: from memory, else the disk cache, else fitted (UMAP in the background).

    PCA takes milliseconds and is fitted here. A UMAP fit runs in a worker thread that reports into the
    slot (no Streamlit calls there) while this run shows its progress; changing a widget meanwhile
    reruns the page at once instead of waiting, and the finished map still lands in the disk cache.
    """
    slot = _projection_slot(str(run_dir), checkpoint, key)
    if "projector" in slot:
        return slot["projector"]
    if method != "umap":
        slot["projector"] = _fit(run_dir, key, codes, method)
        return slot["projector"]
    with slot["lock"]:
        if "job" not in slot:
            slot["cold"] = "umap" not in sys.modules
            report = lambda f, m: slot.__setitem__("progress", (min(max(f, 0.0), 1.0), m))  # noqa: E731
            slot["job"] = _fitting_thread().submit(_fit, run_dir, key, codes, method, report)
    job = slot["job"]
    if not job.done():
        note = " The server's first UMAP map compiles code first: up to ~45 s on 2 cores." if slot["cold"] else ""
        with st.status(f"Computing the UMAP map of {len(codes):,} codes…", expanded=True) as status:
            bar = st.progress(0.0, text="starting")
            while not job.done():
                fraction, message = slot["progress"]
                bar.progress(fraction, text=f"{message}…{note}")
                time.sleep(0.2)
            status.update(label="UMAP map ready", state="complete", expanded=False)
    try:
        slot["projector"] = job.result()
    finally:
        if "projector" not in slot:
            slot.pop("job", None)  # failed: the next run tries again
    return slot["projector"]


def map_box(proj: LatentProjector) -> tuple[float, float, float, float]:
    """The area the inverse grid covers (the map's bounding box plus a margin): x0, x1, y0, y1."""
    return float(proj.grid_x_[0]), float(proj.grid_x_[-1]), float(proj.grid_y_[0]), float(proj.grid_y_[-1])


def click_positions(proj: LatentProjector) -> np.ndarray:
    """Map positions of the invisible click grid, (CLICK_GRID**2, 2); point k is column k % R, row k // R."""
    x0, x1, y0, y1 = map_box(proj)
    xx, yy = np.meshgrid(np.linspace(x0, x1, CLICK_GRID), np.linspace(y0, y1, CLICK_GRID))
    return np.column_stack([xx.ravel(), yy.ravel()])


# ---------------------------------------------------------------- the figure


def backdrop_uri(proj: LatentProjector, model, ds: Dataset) -> str:
    """A TILES x TILES picture of what the decoder draws across the map (top row = top of the map)."""
    x0, x1, y0, y1 = map_box(proj)
    xx, yy = np.meshgrid(np.linspace(x0, x1, TILES), np.linspace(y1, y0, TILES))
    codes = proj.inverse_lookup(np.column_stack([xx.ravel(), yy.ravel()]))  # (TILES**2, latent_dim)
    tiles = make_grid(ui.decode(model, codes), TILES, pad=1, fill=0.5)  # grey seams between tiles
    png = png_bytes(tiles, scale=max(1, 280 // tiles.shape[-1]))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def label_groups(labels: np.ndarray | None, names: list[str] | None, n: int) -> list[tuple[np.ndarray, str, str]]:
    """One (rows, name, colour) per label (in label order), or a single group when there are no labels."""
    if labels is None:
        return [(np.arange(n), "items", COLOURS[0])]
    return [(np.flatnonzero(labels == y), names[y], COLOURS[int(y) % len(COLOURS)]) for y in np.unique(labels)]


def map_figure(proj, groups, point_xy, ring_xy, backdrop, axis_title) -> go.Figure:
    """The map: the click grid (trace 0), one trace per label group (1..G), then the ring and star markers."""
    emb = proj.embedding_  # (N, 2)
    grid = click_positions(proj).astype(np.float32)  # float32 halves what each rerun sends
    hidden = dict(marker=dict(opacity=0.0))
    fig = go.Figure()
    fig.add_trace(
        go.Scattergl(
            x=grid[:, 0], y=grid[:, 1], mode="markers", name="map", showlegend=False, hoverinfo="none",
            marker=dict(size=6, opacity=0.0), selected=hidden, unselected=hidden,
        )
    )  # fmt: skip
    for rows, name, colour in groups:
        fig.add_trace(
            go.Scattergl(
                x=emb[rows, 0], y=emb[rows, 1], mode="markers", name=name, customdata=rows,
                hovertemplate=f"{name}<br>#%{{customdata}}<extra></extra>",
                marker=dict(size=6, color=colour, opacity=0.8),
                selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=0.8)),
            )
        )  # fmt: skip
    for xy, symbol, size, colour in ((ring_xy, "circle-open", 18, "black"), (point_xy, "star", 20, "gold")):
        if xy is not None:
            fig.add_trace(
                go.Scattergl(
                    x=[xy[0]], y=[xy[1]], mode="markers", showlegend=False, hoverinfo="skip",
                    marker=dict(symbol=symbol, size=size, color=colour, line=dict(width=2, color="black")),
                )
            )  # fmt: skip
    x0, x1, y0, y1 = map_box(proj)
    fig.update_layout(
        height=560, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="label", uirevision="map",
        xaxis=dict(range=[x0, x1], title=f"{axis_title} 1", zeroline=False),
        yaxis=dict(range=[y0, y1], title=f"{axis_title} 2", zeroline=False),
    )  # fmt: skip
    if backdrop:
        fig.update_xaxes(showgrid=False).update_yaxes(showgrid=False)
        fig.add_layout_image(
            source=backdrop, xref="x", yref="y", x=x0, y=y1, sizex=x1 - x0, sizey=y1 - y0,
            sizing="stretch", opacity=0.6, layer="below",
        )  # fmt: skip
    return fig


def last_pick(event, traces: list) -> tuple[str, int] | None:
    """The last clicked point: ("item", row) or ("grid", click-grid index); None when nothing is picked.

    ``traces[c]`` is None for the click grid, else the rows that trace ``c`` shows.
    """
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for p in reversed(points or []):
        curve, index = p.get("curve_number", 0), p.get("point_index", p.get("point_number"))
        if index is None or not 0 <= curve < len(traces):
            continue
        if traces[curve] is None:
            return ("grid", int(index)) if 0 <= index < CLICK_GRID**2 else None
        if 0 <= index < len(traces[curve]):
            return "item", int(traces[curve][index])
    return None


# ---------------------------------------------------------------- the side panel


def scale_for(ds: Dataset, pixels: int) -> int:
    """The whole-number enlargement that makes an image about ``pixels`` wide (at least 2x)."""
    return max(2, pixels // ds.item_shape[-1]) if ds.is_image else 1


def show_item(ds: Dataset, x: np.ndarray, caption: str, pixels: int = 224) -> None:
    """An image, enlarged; a vector as a bar chart in its original units."""
    if ds.is_image:
        scale = scale_for(ds, pixels)  # a fixed width: a long caption would otherwise stretch the picture
        st.image(ui.picture(x, scale=scale), caption=caption, width=ds.item_shape[-1] * scale)
    else:
        names = ds.feature_names or [f"x{i}" for i in range(len(x))]
        st.caption(caption)
        st.bar_chart(pd.Series(ds.to_original_units(x), index=names), height=200)


def open_in_decode(z: np.ndarray, key: str) -> None:
    if st.button("Open in Decode", key=key, icon=":material/tune:"):
        st.session_state[DECODE_Z] = [float(v) for v in z]
        st.switch_page("app_pages/decode.py")


def item_panel(ds, model, split, index, code, xy) -> None:
    x = (ds.x_test if split == "test" else ds.x_train)[index].numpy()
    recon = ui.decode(model, code)[0]
    y = None if ds.y_test is None else int((ds.y_test if split == "test" else ds.y_train)[index])
    name = ui.label_name(ds, y)
    st.session_state["explore_decoded"] = recon
    st.session_state["explore_selected"] = {"split": split, "index": int(index), "label": name}
    st.subheader(f"Label: {name}" if name else f"Item #{index}")
    st.caption(f"{split} item #{index} at ({xy[0]:.2f}, {xy[1]:.2f}) on the map")
    left, right = st.columns(2)
    with left:
        show_item(ds, x, "original", pixels=150)  # two side by side in the narrow column
    with right:
        show_item(ds, recon, "reconstruction (decoded mean)", pixels=150)
    open_in_decode(code, "explore_item_decode")


def far_from_items(proj: LatentProjector, xy) -> bool:
    """Whether a map position is farther than 5 % of the map's extent from every mapped item."""
    gap = np.hypot(*(proj.embedding_ - np.asarray(xy, dtype=np.float32)).T).min()
    return bool(gap > 0.05 * float(np.ptp(proj.embedding_, axis=0).max()))


def point_panel(ds, model, proj: LatentProjector, point: dict) -> None:
    decoded = ui.decode(model, np.asarray(point["z"], dtype=np.float32))[0]
    st.session_state["explore_decoded"] = decoded
    st.subheader("Decoded map point")
    st.caption(f"the star at ({point['xy'][0]:.2f}, {point['xy'][1]:.2f}), inverted through the map")
    if proj.method == "umap" and far_from_items(proj, point["xy"]):
        st.caption("Far from every item: UMAP's inverse blends the codes of distant items here (or of the "
                   "map's edge), so expect a blurry mixture.")  # fmt: skip
    show_item(ds, decoded, "decoded")
    st.caption("latent vector z: " + ", ".join(f"{v:.2f}" for v in point["z"]))
    open_in_decode(np.asarray(point["z"]), "explore_point_decode")


def table_csv(split, idx, labels, names, emb, codes) -> bytes:
    """Map coordinates, labels and latent means of the shown items, as CSV."""
    df = pd.DataFrame({"split": split, "index": idx, "x": emb[:, 0], "y": emb[:, 1]})
    if labels is not None:
        df.insert(2, "label", labels)
        df.insert(3, "label_name", [names[y] for y in labels])
    for d in range(codes.shape[1]):
        df[f"z{d}"] = codes[:, d]
    return df.to_csv(index=False).encode()


# ---------------------------------------------------------------- the page


def controls(ds: Dataset) -> tuple[str, str, int | None, bool]:
    """The widgets above the map: method, split, subsample size (None: all) and the backdrop toggle."""
    c1, c2, c3, c4 = st.columns([1.2, 1, 1.2, 1.4])
    method = METHODS[c1.radio("Projection", list(METHODS), key="explore_method", horizontal=True)]
    split = c2.radio("Split", ["test", "train"], key="explore_split", horizontal=True)
    n_split = len(ds.x_test if split == "test" else ds.x_train)
    sizes = [n for n in SIZES if n < n_split] + [n_split]
    size = c3.selectbox(
        "Points", sizes, index=min(1, len(sizes) - 1), key=f"explore_points_{split}",
        format_func=lambda n: f"all ({n:,})" if n == n_split else f"{n:,}",
    )  # fmt: skip
    backdrop = c4.toggle("Decoded backdrop", key="explore_backdrop", help="Tile decoded images under the points.")
    return method, split, None if size == n_split else size, backdrop


def marked_point(pick, proj: LatentProjector, run_dir: Path, key: str) -> dict | None:
    """The star: a new click on empty space (decoded through the map and kept for Decode and
    Interpolate) or the last one on this map; None if there is none."""
    if pick and pick[0] == "grid":
        xy = click_positions(proj)[pick[1]]
        z = proj.inverse_lookup(xy)  # (latent_dim,)
        point = {"run": str(run_dir), "map": key, "xy": [float(v) for v in xy], "z": [float(v) for v in z]}
        st.session_state[POINT] = point
        st.session_state[DECODE_Z] = point["z"]
    point = st.session_state.get(POINT)
    return point if point and point.get("map") == key and point.get("run") == str(run_dir) else None


def main() -> None:
    st.title("Explore the latent map")
    run_dir, model = ui.require_model()
    ds = ui.require_data(run_dir)
    checkpoint = rf.checkpoint_id(run_dir)
    method, split, size, backdrop_on = controls(ds)
    codes, idx = ui.latent_means(str(run_dir), checkpoint, split, size)  # (N, latent_dim), (N,) split indices
    key = projection_key(checkpoint, {"method": method}, len(codes), split)
    try:
        proj = fitted_projector(run_dir, checkpoint, key, codes, method)
    except ValueError as e:
        st.error(str(e))
        st.stop()
    y_all = ds.y_test if split == "test" else ds.y_train
    labels = None if y_all is None else y_all.numpy()[idx]
    names = [ui.label_name(ds, y) for y in range(int(labels.max()) + 1)] if labels is not None else None
    st.session_state[MAP] = {
        "run": str(run_dir), "checkpoint": checkpoint, "key": key, "split": split, "size": len(codes),
        "method": method, "file": str(run_dir / PROJECTIONS / f"{key}.npz"),
    }  # fmt: skip

    chart_key = st.session_state["explore_chart_key"] = f"explore_chart_{key}"
    groups = label_groups(labels, names, len(codes))
    pick = last_pick(st.session_state.get(chart_key), [None] + [rows for rows, _, _ in groups])
    point = marked_point(pick, proj, run_dir, key)
    item = pick[1] if pick and pick[0] == "item" else None  # a row of codes / idx

    if method == "pca":
        ratio = proj.explained_variance_ratio_.sum()
        st.caption(f"PCA of {len(codes):,} latent means: the two axes explain {ratio:.0%} of their variance.")
    else:
        st.caption(f"UMAP of {len(codes):,} latent means: distances between far clusters mean little.")
    map_col, side = st.columns([5, 3])
    with side:  # filled first: its pictures reach the browser before the map's redraw
        if item is not None:
            item_panel(ds, model, split, int(idx[item]), codes[item], proj.embedding_[item])
        elif point:
            point_panel(ds, model, proj, point)
        else:
            st.info("Click a point on the map to see the item and its reconstruction, or empty space to decode it.")
        st.download_button(
            "Download map as CSV", lambda: table_csv(split, idx, labels, names, proj.embedding_, codes),
            file_name=f"{run_dir.name}-{key}.csv", mime="text/csv", icon=":material/download:",
        )  # fmt: skip
    with map_col:
        backdrop = backdrop_uri(proj, model, ds) if backdrop_on and ds.is_image else None
        ring = None if item is None else proj.embedding_[item]
        fig = map_figure(proj, groups, point["xy"] if point else None, ring, backdrop, method.upper())
        st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=chart_key)
        st.caption("Click a point to see that item; click empty space to decode that spot (★). Drag to zoom.")


if __name__ == "__main__":  # as a Streamlit page; tests import the functions above
    main()
