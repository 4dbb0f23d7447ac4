"""Compare: two runs' latent spaces side by side, on the same items.

Run A is the sidebar's run; B is another run on the same data (the most recent by default). The page says how
alike the two spaces are (linear CKA, neighbours kept, Procrustes disparity, the linear map's R²), draws both
PCA maps of the same items with B's turned onto A's (orthogonal Procrustes), highlights a box or lasso selection
on both, and decodes a clicked item through both models: A's decode of its code, and B's decode of that code
carried into B's space (or the same raw z). Tests read ``compare_pair`` (the two runs' names) and
``compare_decoded`` (the pictures shown).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ui import cache, comparelink, decoder, maps, state
from ui.figures import chart
from ui.pictures import decode, label_name, show_item
from ui.runtime import runs_root
from ui.sidebar import current_run
from ui.text import chart_text, plain
from vae.analysis.compare import (
    MAP_ITEMS,
    check_comparable,
    config_diff,
    fit_linear_map,
    knn_jaccard,
    linear_cka,
    procrustes_disparity,
)
from vae.analysis.evaluate import active_units
from vae.projection.sequence import pca_plane
from vae.runs import folder as rf
from vae.runs import listing

SPLITS = {"test": "test", "train": "train"}
SIZES = (1_000, 2_000, 5_000, 10_000)
CARRY = {
    "linear map": "z carried into B's space by the least-squares linear map fitted on both runs' codes of the same "
    "training items",
    "orthogonal map": "z carried by the best rotation (orthogonal Procrustes) between the two spaces",
    "same raw z": "the same numbers fed to B's decoder: do their latent axes mean the same? (usually not)",
}
ARBITRARY = (
    "Two trained latent spaces are arbitrary up to rotation and more: the same point means nothing alike in both "
    "unless a map carries it across."
)


def same_data_runs(run_a) -> list[dict]:
    """Runs B may be: trained on run A's data, with weights, not A itself; the most recently updated first."""
    data = rf.load_data_config(run_a).to_dict()
    out = []
    for r in listing.list_runs(runs_root()):
        if r["name"] == run_a.name or r["state"] == "broken" or not r["has_model"]:
            continue
        try:
            if rf.load_data_config(r["path"]).to_dict() == data:
                out.append(r)
        except (ValueError, FileNotFoundError, TypeError):
            continue
    return sorted(out, key=lambda r: -r["updated"])


@st.cache_data(max_entries=4, show_spinner="Comparing the two latent spaces…")
def comparison(path_a: str, ckpt_a: str, path_b: str, ckpt_b: str, split: str, max_points: int | None) -> dict:
    """Everything the page shows of two runs' codes of the same items, computed once per (runs, checkpoints,
    items): the codes, the four numbers, each item's neighbours shared, both PCA maps with their inverses (B's turned
    onto A's) and the linear maps from A's space to B's and back (fitted on up to ``MAP_ITEMS`` training items)."""
    a, idx = cache.latent_means(path_a, ckpt_a, split, max_points)  # the same items: one seeded sample of the split
    b, _ = cache.latent_means(path_b, ckpt_b, split, max_points)
    fit_a, _ = cache.latent_means(path_a, ckpt_a, "train", MAP_ITEMS)  # the linear maps' training items
    fit_b, _ = cache.latent_means(path_b, ckpt_b, "train", MAP_ITEMS)
    carry = {"linear map": fit_linear_map(fit_a, fit_b)}
    back = {"linear map": fit_linear_map(fit_b, fit_a)}  # B's codes carried into A's space: pointing at B's map
    if a.shape[1] == b.shape[1]:  # a rotation carries a space only onto one of its own size
        carry["orthogonal map"] = fit_linear_map(fit_a, fit_b, True)
        back["orthogonal map"] = fit_linear_map(fit_b, fit_a, True)
    agreement = knn_jaccard(a, b)  # (N,)
    numbers = {"cka": linear_cka(a, b), "knn_jaccard": float(agreement.mean()),
               "procrustes_disparity": procrustes_disparity(a, b),
               "linear_map_r2": carry["linear map"].r2}  # on training items, as the carried decodes use it  # fmt: skip
    plane_a = pca_plane(a)
    plane_b = pca_plane(b).turned_onto(plane_a.layout)  # B's map turned onto A's, its inverse with it
    return {"a": a, "b": b, "idx": idx, "numbers": numbers, "agreement": agreement, "carry": carry, "back": back,
            "planes": (plane_a, plane_b), "la": plane_a.layout, "lb": plane_b.layout}  # fmt: skip


def label_colours(labels, names, n: int) -> np.ndarray:
    """Each item's label colour (one colour for unlabelled data), as the maps' legend gives them."""
    colours = np.full(n, maps.COLOURS[0], dtype=object)
    for rows, _, c in maps.label_groups(labels, names, n):
        colours[rows] = c
    return colours


def map_figure(layout: np.ndarray, labels, names, colour, title: str, chosen: list[int] | None, ring: int | None):
    import plotly.graph_objects as go

    fig = go.Figure()
    if colour is not None:  # each item's neighbour agreement
        fig.add_trace(go.Scattergl(x=layout[:, 0], y=layout[:, 1], mode="markers", name="items",
                                   marker={"size": 5, "color": colour, "colorscale": "Viridis", "cmin": 0, "cmax": 1,
                                           "colorbar": {"title": {"text": "neighbours shared"}}}))  # fmt: skip
    else:
        order = np.random.default_rng(0).permutation(len(layout))  # drawn shuffled: no class paints over another
        colours = label_colours(labels, names, len(layout))
        fig.add_trace(go.Scattergl(x=layout[order, 0], y=layout[order, 1], mode="markers", name="items",
                                   customdata=order, marker={"size": 5, "color": list(colours[order])},
                                   showlegend=False))  # fmt: skip
        for _, name, c in maps.label_groups(labels, names, len(layout)):  # the legend
            fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name=chart_text(name), marker={"color": c}))
    if colour is not None:
        fig.data[0].customdata = np.arange(len(layout))
    if chosen:
        fig.data[0].selectedpoints = [int(i) for i in np.flatnonzero(np.isin(fig.data[0].customdata, chosen))]
    if ring is not None:
        fig.add_trace(go.Scattergl(x=[layout[ring, 0]], y=[layout[ring, 1]], mode="markers", name="clicked",
                                   marker={"symbol": "circle-open", "size": 18, "color": "black",
                                           "line": {"width": 2}}, hoverinfo="skip"))  # fmt: skip
    fig.update_layout(title=title, height=520, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      legend={"orientation": "h", "y": -0.05}, uirevision=title)  # fmt: skip
    fig.update_xaxes(title_text="PCA 1")
    fig.update_yaxes(title_text="PCA 2")
    return fig


OVERLAY_LINES = 300  # items whose move from A's place to B's is drawn in the overlay


def overlay_figure(la: np.ndarray, lb: np.ndarray, labels, names, name_a: str, name_b: str):
    """Both maps in one: A's items as dots, B's as rings, and a line from each of a sample of items' place in A to
    its place in B (the shorter the lines, the more the spaces agree)."""
    import plotly.graph_objects as go

    rng = np.random.default_rng(0)
    sample = rng.choice(len(la), min(OVERLAY_LINES, len(la)), replace=False)
    xs = np.column_stack([la[sample, 0], lb[sample, 0], np.full(len(sample), np.nan)]).ravel()
    ys = np.column_stack([la[sample, 1], lb[sample, 1], np.full(len(sample), np.nan)]).ravel()
    colours = label_colours(labels, names, len(la))
    fig = go.Figure([
        go.Scattergl(x=xs, y=ys, mode="lines", name=f"moves ({len(sample)} items)", hoverinfo="skip",
                     line={"color": "rgba(120,120,120,0.45)", "width": 1}),
        go.Scattergl(x=la[:, 0], y=la[:, 1], mode="markers", name=f"A: {name_a}", customdata=np.arange(len(la)),
                     marker={"size": 5, "color": list(colours)}),
        go.Scattergl(x=lb[:, 0], y=lb[:, 1], mode="markers", name=f"B: {name_b}", customdata=np.arange(len(lb)),
                     marker={"size": 7, "color": "rgba(0,0,0,0)", "line": {"width": 1, "color": list(colours)}}),
    ])  # fmt: skip
    fig.update_layout(title="A and B on one map: a line from each item's place in A to its place in B", height=620,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend={"orientation": "h", "y": -0.05})  # fmt: skip
    fig.update_xaxes(title_text="PCA 1")
    fig.update_yaxes(title_text="PCA 2")
    return fig


def picked(event) -> list[int]:
    """The items (rows of the codes) a chart event picked: a click or a box or lasso selection."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    return sorted({int(p["customdata"]) for p in points or [] if p.get("curve_number") == 0 and "customdata" in p})


# ---------------------------------------------------------------- the page

state.keep_widgets(("compare_b", "compare_split", "compare_points", "compare_colour", "compare_carry", "compare_view"))
st.title("Compare two runs")
run_a, model_a = cache.require_model(current_run())
ds = cache.require_data(run_a)
others = same_data_runs(run_a)
if not others:
    st.info(f"No other run on {plain(rf.data_label(rf.load_data_config(run_a)))} to compare {plain(run_a.name)} "
            "with: train a second one on the same data (New run with these settings on the Train page).")  # fmt: skip
    st.stop()
names = [r["name"] for r in others]
c1, c2, c3, c4 = st.columns([1.4, 1, 1, 1.4])
c1.markdown(f"**A**: {plain(run_a.name)}")
state.check_link("compare_b", names, "run B")
name_b = c1.selectbox("B", names, key="compare_b", bind="query-params", help="Runs on the same data only.")
split = c2.radio("Split", list(SPLITS), key="compare_split", horizontal=True)
n_split = ds.split_size(split)
sizes = [n for n in SIZES if n < n_split] + [n_split]
size = c3.selectbox("Points", sizes, index=min(1, len(sizes) - 1), key="compare_points",
                    format_func=lambda n: f"all ({n:,})" if n == n_split else f"{n:,}")  # fmt: skip
view = c2.radio(
    "View",
    ["side by side", "overlay"],
    key="compare_view",
    horizontal=True,
    help="Overlay: both maps in one, with a line from each of 300 items' place in A to its place in B.",
)
colour = c4.radio("Colour", ["label", "neighbours shared"], key="compare_colour", horizontal=True,
                  help="Neighbours shared: the share (Jaccard) of each item's 10 nearest latent neighbours the two "
                       "runs agree on.")  # fmt: skip
run_b = rf.run_path(runs_root(), name_b)
try:
    check_comparable(run_a, run_b)
    model_b = cache.model_for(run_b)
except (ValueError, FileNotFoundError) as e:
    st.error(str(e))
    st.stop()
st.session_state["compare_pair"] = (run_a.name, run_b.name)
ckpt_a, ckpt_b = rf.checkpoint_id(run_a), rf.checkpoint_id(run_b)
max_points = None if size == n_split else size
shown = comparison(str(run_a), ckpt_a, str(run_b), ckpt_b, split, max_points)
a, b, idx, numbers, la, lb = (shown[k] for k in ("a", "b", "idx", "numbers", "la", "lb"))
m1, m2, m3, m4 = st.columns(4)
m1.metric("Linear CKA", f"{numbers['cka']:.2f}", help="1: the same up to rotation and scale (Kornblith et al. 2019).")
m2.metric("10 neighbours shared", f"{numbers['knn_jaccard']:.0%}", help="Mean Jaccard of each item's neighbours.")
m3.metric("Procrustes disparity", f"{numbers['procrustes_disparity']:.2f}", help="0: one is the other turned.")
m4.metric("Linear map R²", f"{numbers['linear_map_r2']:.2f}", help="How well a linear map carries A's codes to B's.")
st.caption(f"On the same {len(idx):,} {split} items. {ARBITRARY}")

labels_all = ds.split_labels(split)
labels = None if labels_all is None else labels_all[idx]
label_names = [label_name(ds, y) for y in range(int(labels.max()) + 1)] if labels is not None else None
agreement = shown["agreement"] if colour != "label" else None
events = {side: st.session_state.get(f"compare_chart_{side}") for side in ("A", "B")}
last = st.session_state.get("compare_last")  # the map selected on last (each keeps its own selection)
chosen = picked(events[last]) if last in events else picked(events["A"]) or picked(events["B"])
ring = chosen[0] if len(chosen) == 1 else None
offered = [k for k in CARRY if k in shown["carry"] or (k == "same raw z" and a.shape[1] == b.shape[1])]
carry = st.radio("Into the other run's space", offered, key="compare_carry", horizontal=True,
                 help=ARBITRARY + ("" if len(offered) > 1 else " Their latent sizes differ: only a linear map "
                                   "carries one space into the other."))  # fmt: skip
st.caption(f"Decoded through both: {CARRY[carry]}.")
if view == "overlay":
    chart(overlay_figure(la, lb, labels, label_names, run_a.name, run_b.name), key="compare_overlay")
else:
    left, right = st.columns(2)
    for column, side, layout, name in ((left, "A", la, run_a.name), (right, "B", lb, run_b.name)):
        with column:
            fig = map_figure(layout, labels, label_names, agreement, f"{side}: {name}", chosen or None, ring)
            chart(fig, key=f"compare_chart_{side}", selection_mode=("points", "box", "lasso"),
                  on_select=lambda side=side: st.session_state.__setitem__("compare_last", side))  # fmt: skip
    why_not = decoder.unsupported(model_a) or decoder.unsupported(model_b)
    across = (None, None) if carry == "same raw z" else (shown["carry"][carry], shown["back"][carry])
    both = None if why_not else comparelink.decoding((run_a, run_b), shown["planes"], across, carry)
    comparelink.link(("compare_chart_A", "compare_chart_B"), both)  # hover: ring on the other, decode through both
    if why_not:
        st.caption(f"Pointing on the maps decodes nothing here: {why_not}. Click an item to decode it on the server.")
st.caption("B's map is turned onto A's (orthogonal Procrustes), so the same items sit in the same places where the "
           "spaces agree. Point anywhere on either map to see what both decoders draw there (and, on an item, to "
           "ring it on the other map); select with the box or lasso to see those items on both; click an item to "
           "decode its own code through both models.")  # fmt: skip

if ring is not None:
    row = int(ring)
    z_a = a[row]
    z_b = z_a if carry == "same raw z" else shown["carry"][carry](z_a)
    x = ds.split_items(split, [int(idx[row])])[0].numpy()
    pictures = {"original": x, "A's decode": decode(model_a, z_a)[0], f"B's decode ({carry})": decode(model_b, z_b)[0],
                "B's own reconstruction": decode(model_b, b[row])[0]}  # fmt: skip
    st.session_state["compare_decoded"] = pictures
    st.subheader(f"{split} item #{idx[row]}" + (f" · {plain(label_names[labels[row]])}" if labels is not None else ""))
    for column, (caption, picture) in zip(st.columns(len(pictures)), pictures.items(), strict=True):
        with column:
            show_item(ds, picture, caption, pixels=150)
elif chosen:
    counts = pd.Series(labels[chosen]).map(lambda y: label_names[y]).value_counts() if labels is not None else None
    st.markdown(f"**{len(chosen):,} items selected**, highlighted on both maps.")
    if counts is not None:
        st.caption("Label counts: " + ", ".join(f"{k}: {v:,}" for k, v in counts.items()) + ".")

st.subheader("The two runs")
kl_a, kl_b = cache.kl_by_dimension(str(run_a), ckpt_a), cache.kl_by_dimension(str(run_b), ckpt_b)
side_by_side = pd.DataFrame({
    "": ["active units", "latent dimensions", "KL per item (nats)", "largest KL of a dimension"],
    "A": [active_units(a)[0], a.shape[1], float(kl_a.sum()), float(kl_a.max())],
    "B": [active_units(b)[0], b.shape[1], float(kl_b.sum()), float(kl_b.max())],
})  # fmt: skip
st.dataframe(side_by_side, hide_index=True)
configs = [dict(zip(("model", "train", "data"), (c.to_dict() for c in rf.load_config(r)), strict=True))
           for r in (run_a, run_b)]  # fmt: skip
diff = config_diff(*configs)
if diff:
    st.markdown("**What differs**")
    st.dataframe(pd.DataFrame([{"setting": k, "A": str(v[0]), "B": str(v[1])} for k, v in diff.items()]),
                 hide_index=True)  # fmt: skip
else:
    st.caption("Their settings are the same (a second seed would differ in `train.seed`).")
