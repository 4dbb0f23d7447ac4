"""Explore: a 2-D map (UMAP or PCA) of the latent means of a split.

The browser draws the map and decodes whatever lies under the pointer (``ui.mapview``); a click pins an item
(its original and reconstruction appear beside the map) or a spot (★), decoded through the map's inverse and
handed to Decode and Interpolate. Models the browser cannot decode keep the server-drawn chart, where a click
decodes (``ui.maps``). Maps are cached on disk per checkpoint and parameters; a UMAP map is fitted in the
background while its PCA map stands in (``ui.cache.fitted_projector``). Tests read ``explore_view_key`` /
``explore_chart_key``, ``explore_decoded`` (the last decoded array) and ``explore_selected``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui import attributes, cache, conditional, maps, mapview, notice, posterior, state
from ui import codes as codes_job
from ui.figures import chart, map_figure
from ui.mapview import columns, film, gallery
from ui.pictures import decode, label_name, show_item
from ui.sidebar import current_run
from ui.text import plain
from vae.analysis.fidelity import K
from vae.data import Dataset
from vae.projection import LatentProjector, projection_key
from vae.runs import folder as rf

LINKED = "query-params"  # these choices live in the page's URL: a copied link opens the same view
METHODS = {"UMAP": "umap", "PCA": "pca"}
SPLITS = {"test": "test", "train": "train", "all": "train + test"}  # "all": train then test, each row naming its own
SIZES = (2_000, 5_000, 10_000)  # subsample sizes offered, plus "all"
KEPT = (
    "explore_method",
    "explore_split",
    "explore_backdrop",
    "explore_colour",
    "explore_point_size",
    "explore_opacity",
    "explore_browser",
)
BROWSER_FAILED = "explore_browser_failed"  # why the browser could not draw the map (then the server does)
BROWSER_HELP = (
    "Your browser decodes whatever lies under the pointer, on points and between them. Off: the server draws "
    "the map and decodes where you click."
)
MAX_KEPT = 20_000  # items scored one by one for the neighbourhood colouring
POINT_SIZES = ["auto", *range(1, 13)]
DENSITY_LABELS_HELP = (
    "A contour of each label's points (each category the points are coloured by) in its colour: where each class lies "
    "thickest, even under the others' points."
)
DENSITY_HELP = (
    "Contours of where the points lie thickest, under them: on a large map, where the mass is (dots drawn over "
    "one another hide it)."
)
FIND_HELP = (
    "An item's number pins it (#12; a plain 12 where no label is called 12); a label's name shows only that label, "
    "the others in grey."
)
OPACITIES = ["auto", *(round(0.1 * k, 1) for k in range(1, 11))]
COLOUR_HELP = (
    "The label, the split, or a number per item (a colour bar shows its scale): how well it is reconstructed, "
    "how far its posterior is from the prior, how sure the encoder is, how well the map kept its neighbours."
)
FIDELITY_HELP = (
    "Trustworthiness: are the map's neighbours true neighbours (1 = no false neighbours)? Continuity: are true "
    "neighbours kept close (1 = nothing torn apart)? Neighbourhoods kept: the share of each item's 10 nearest "
    "latent neighbours that are among its 10 nearest on the map. Far clusters' distances mean little either way."
)  # choices that survive a visit to another page


@dataclass(frozen=True)
class Display:
    """The Display popover's choices: the decoded backdrop, what colours the points, their size and opacity
    (None: chosen by the number of points), whether the browser decodes under the pointer, and the density contours
    (None, "all" points or one per "label")."""

    backdrop: bool
    colour: str
    marker: tuple[int, float] | None
    browser: bool
    density: str | None = None


def controls(ds: Dataset) -> tuple[str, str, int | None, Display]:
    """The widgets above the map: method, split, subsample size (None: all) and the Display popover."""
    c1, c2, c3, c5, c4 = st.columns([1.2, 1, 1.1, 1.1, 1.1])
    state.check_link("explore_method", list(METHODS), "the projection")
    state.check_link("explore_split", list(SPLITS.values()), "the split")
    method = METHODS[c1.radio("Projection", list(METHODS), key="explore_method", horizontal=True, bind=LINKED)]
    split = c2.radio("Split", SPLITS, key="explore_split", horizontal=True, format_func=SPLITS.get, bind=LINKED)
    n_split = ds.split_size(split)
    sizes = [n for n in SIZES if n < n_split] + [n_split]
    label = lambda n: f"all ({n:,})" if n == n_split else f"{n:,}"  # noqa: E731
    state.check_link(f"explore_points_{split}", [label(n) for n in [sizes[min(1, len(sizes) - 1)], *sizes]],
                     "a number of points")  # fmt: skip
    size = c3.selectbox(
        "Points", sizes, index=min(1, len(sizes) - 1), key=f"explore_points_{split}",
        format_func=label, bind=LINKED,
    )  # fmt: skip
    c5.text_input("Find", key=gallery.FIND_KEY, placeholder="item # or label", help=FIND_HELP)
    labelled = ds.split_labels(split) is not None
    offered = columns.offered(ds, split, labelled, size, MAX_KEPT)
    state.check_link("explore_colour", offered, "a colouring")
    if st.session_state.get("explore_colour") not in (None, *offered):  # e.g. "split" after leaving train + test
        del st.session_state["explore_colour"]
    with c4.popover("Display", icon=":material/tune:", width="stretch"):  # one compact bar above the map
        colour = st.selectbox("Colour by", offered, key="explore_colour", help=COLOUR_HELP, bind=LINKED)
        point = st.select_slider("Point size", POINT_SIZES, value="auto", key="explore_point_size",
                                 help="In pixels; auto: smaller as the map holds more points.")  # fmt: skip
        opacity = st.select_slider("Opacity", OPACITIES, value="auto", key="explore_opacity",
                                   help="Auto: fainter as the map holds more points.")  # fmt: skip
        density = st.toggle("Density", key="explore_density", help=DENSITY_HELP)
        by_label = st.toggle("One density per label", key="explore_density_labels", help=DENSITY_LABELS_HELP,
                             disabled=not density or not labelled)  # fmt: skip
        density = ("label" if by_label and labelled else "all") if density else None
        backdrop = st.toggle("Decoded backdrop", key="explore_backdrop", help="Tile decoded images under the points.")
        browser = st.toggle("Decode under the pointer", key="explore_browser", value=True, help=BROWSER_HELP,
                            bind=LINKED)  # fmt: skip
    marker = None
    if point != "auto" or opacity != "auto":
        auto_size, auto_opacity = mapview.auto_marker(size)
        marker = (auto_size if point == "auto" else int(point), auto_opacity if opacity == "auto" else float(opacity))
    return method, split, None if size == n_split else size, Display(backdrop, colour, marker, browser, density)


@st.fragment(run_every=0.5)  # the UMAP map replaces the PCA stand-in within half a second
def refining(run_dir, checkpoint: str, key: str, n: int) -> None:
    """While UMAP fits in the background: a note with its progress; the page reruns once the map is ready."""
    if cache.fit_done(run_dir, checkpoint, key):
        st.rerun()
    fraction, message = cache.fit_progress(run_dir, checkpoint, key)
    st.info(f"The UMAP map of {n:,} codes is being computed in the background ({fraction:.0%}: {message}); "
            "the PCA map stands in until it is ready.", icon=":material/hourglass_top:")  # fmt: skip


def fidelity_caption(run_dir, key: str, codes: np.ndarray, layout: np.ndarray) -> None:
    """One line saying how far to trust the map (scored on a fixed subsample, cached per map)."""
    if len(codes) <= 2 * K:
        return
    f = cache.map_fidelity_of(str(run_dir), key, codes, layout)
    st.caption(
        f"How far to trust it ({f['k']} neighbours, {f['n']:,} items): trustworthiness {f['trustworthiness']:.2f} · "
        f"continuity {f['continuity']:.2f} · neighbourhoods kept {f['knn_preservation']:.0%}.", help=FIDELITY_HELP,
    )  # fmt: skip


def open_in_decode(z: np.ndarray, key: str) -> None:
    if st.button("Open in Decode", key=key, icon=":material/tune:"):
        state.hand_to_decode(z)
        state.switch_page("app_pages/decode.py")


def item_panel(ds, model, split, row, code, xy) -> None:
    split, index = ds.item_part(split, row)  # "all" holds train then test: name the item by its own split
    x = ds.split_items(split, [index])[0].numpy()
    y = None if ds.y_test is None else int((ds.y_test if split == "test" else ds.y_train)[index])
    recon = decode(model, code, y)[0]  # a conditional VAE's reconstruction is given the item's own class
    name = label_name(ds, y)
    st.session_state["explore_decoded"] = recon
    st.session_state["explore_selected"] = {"split": split, "index": int(index), "label": name}
    st.subheader(f"Label: {plain(name)}" if name else f"Item #{index}")
    st.caption(f"{split} item #{index} at ({xy[0]:.2f}, {xy[1]:.2f}) on the map")
    left, right = st.columns(2)
    with left:
        show_item(ds, x, "original", pixels=150)  # two side by side in the narrow column
    with right:
        show_item(ds, recon, "reconstruction (decoded mean)", pixels=150)
    open_in_decode(code, "explore_item_decode")


def point_panel(ds, model, proj: LatentProjector, point: dict) -> None:
    decoded = decode(model, np.asarray(point["z"], dtype=np.float32))[0]
    st.session_state["explore_decoded"] = decoded
    st.subheader("Decoded map point")
    st.caption(f"the star at ({point['xy'][0]:.2f}, {point['xy'][1]:.2f}), inverted through the map")
    if proj.method == "umap" and maps.far_from_items(proj, point["xy"]):
        st.caption("Far from every item: UMAP's inverse blends the codes of distant items here (or of the "
                   "map's edge), so expect a blurry mixture.")  # fmt: skip
    show_item(ds, decoded, "decoded")
    st.caption("latent vector z: " + ", ".join(f"{v:.2f}" for v in point["z"]))
    open_in_decode(np.asarray(point["z"]), "explore_point_decode")


# ---------------------------------------------------------------- the page

state.keep_widgets(KEPT)
st.title("Explore the latent map")
run_dir, model = cache.require_model(current_run())
ds = cache.require_data(run_dir)
checkpoint = rf.checkpoint_id(run_dir)
method, split, size, display = controls(ds)
in_browser = display.browser
try:
    if codes_job.pending(run_dir, model, ds, checkpoint, split, size):  # a large map: encoded in the background
        codes_job.progress(run_dir, checkpoint, split, size or ds.split_size(split))
        st.stop()
except MemoryError:
    st.error("Encoding every item of this map ran out of memory: choose fewer points.")
    st.stop()
codes, logvars, idx = cache.latent_params(str(run_dir), checkpoint, split, size)  # (N, L), (N, L), (N,) rows
key = projection_key(checkpoint, {"method": method}, len(codes), split)
following = notice.follow_training(run_dir, checkpoint)
key, start = maps.continued(state.shown_map(), str(run_dir), checkpoint, split, len(codes), method, key, following)
try:
    proj = cache.fitted_projector(run_dir, checkpoint, key, codes, method, split, wait=False, start=start)
    stand_in = proj is None
    if stand_in:  # UMAP is being fitted in the background: the PCA map stands in meanwhile
        refining(run_dir, checkpoint, key, len(codes))
        key = projection_key(checkpoint, {"method": "pca"}, len(codes), split)
        proj = cache.fitted_projector(run_dir, checkpoint, key, codes, "pca", split)
except ValueError as e:
    st.error(str(e))
    st.stop()
if unsaved := cache.map_folder(run_dir)[1]:
    st.caption(f"This map is not saved with the run ({unsaved}): it is kept until the app stops.")
y_all = ds.split_labels(split)
labels = None if y_all is None else y_all[idx]
names = [label_name(ds, y) for y in range(int(labels.max()) + 1)] if labels is not None else None
state.set_shown_map({"run": str(run_dir), "checkpoint": checkpoint, "key": key, "split": split, "size": len(codes),
                     "method": proj.method, "file": str(cache.map_file(run_dir, key))})  # fmt: skip

groups = maps.label_groups(labels, names, len(codes))
view_key = st.session_state["explore_view_key"] = "explore_view"  # one for every map: the browser keeps Plotly
chart_key = st.session_state["explore_chart_key"] = f"explore_chart_{key}"
why_not = mapview.unsupported(model, proj) or st.session_state.get(BROWSER_FAILED)
browser = in_browser and not why_not
if browser:
    pick = mapview.pick(view_key, mapview.map_id(run_dir, checkpoint, key), len(codes))
else:
    pick = maps.last_pick(st.session_state.get(chart_key), [None] + [rows for rows, _, _ in groups])
new_session = state.map_point(run_dir) is None
linked = state.link_point() if new_session else None  # a new session: a link may pin a point
if pick is None and linked and not stand_in:
    pick = ("xy", linked)
linked_row = gallery.linked_item(idx) if new_session and pick is None and not stand_in else None
if linked_row is not None:  # ... or an item
    pick = ("item", linked_row)
the_map = mapview.map_id(run_dir, checkpoint, key)
found = gallery.find(st.session_state.get(gallery.FIND_KEY, ""), idx, ds.split_size(split),
                     [name for _, name, _ in groups] if labels is not None else None)  # fmt: skip
gallery.pin_found(the_map, found, pick)
clicked, pick = pick, gallery.adjust(pick, the_map)  # a neighbour pinned from the gallery or found, a cleared selection
point = maps.marked_point(pick, proj, run_dir, key)
if not stand_in:  # the link keeps the star of the map it asks for, not of its stand-in
    state.set_link_point(point["xy"] if point else None)
item = pick[1] if pick and pick[0] == "item" else None  # a row of codes / idx
if not stand_in:
    gallery.set_linked_item(None if item is None else int(idx[item]))
selection = pick[1] if pick and pick[0] == "selection" else None  # rows of codes / idx (box or lasso)

if proj.method == "pca":
    ratio = proj.explained_variance_ratio_.sum()
    st.caption(f"PCA of {len(codes):,} latent means: the two axes explain {ratio:.0%} of their variance.")
else:
    st.caption(f"UMAP of {len(codes):,} latent means: distances between far clusters mean little.")
if model.conditional:
    st.caption(conditional.STYLE_NOTE + " What the decoder draws here is the class chosen in the sidebar.")
fidelity_caption(run_dir, key, codes, proj.embedding_)
kept = None  # the share of each item's neighbours the map kept, when the points are coloured by it
if display.colour == columns.KEPT and len(codes) > 2 * K:
    kept = cache.neighbourhoods_kept(str(run_dir), key, codes, proj.embedding_)  # (N,)
column = None  # the label colours the points unless another column is chosen
if display.colour != columns.LABEL and (display.colour != columns.KEPT or kept is not None):
    column = columns.values(
        display.colour, ds=ds, split=split, idx=idx, logvars=logvars, codes=codes,
        recon=lambda: cache.reconstruction_errors_of(str(run_dir), checkpoint, split, size), kept=lambda: kept,
    )  # fmt: skip
cloud = None if item is None else posterior.item_cloud(proj, codes[item], logvars[item], seed=int(idx[item]))
prior_xy = posterior.prior_positions(proj, model) if st.session_state.get("explore_prior") else None
components_xy = posterior.component_positions(proj, model) if st.session_state.get("explore_components") else None
extra = posterior.overlays(cloud, prior_xy, components_xy)
extra += attributes.group_overlays(run_dir, checkpoint, split, idx, proj.embedding_)  # the kept groups A and B
map_col = st.container()  # the map takes the page's width; the pinned item's or spot's panel sits under it
side = st.container()
with side:  # filled first: its pictures reach the browser before the map's redraw
    pictures = (lambda rows: ds.split_items(split, idx[rows]).numpy()) if ds.is_image else None  # noqa: E731
    if browser and (spots := film.drawn(view_key, the_map)) is not None:  # a path drawn on the map: its film
        film.panel(model, proj, spots, run_dir.name)
    if selection is not None:
        attributes.selection_panel(run_dir, checkpoint, split, idx[selection])
        gallery.selection(the_map, selection, clicked, pictures, None if labels is None else labels[selection], names)
    elif item is not None:
        item_panel(ds, model, split, int(idx[item]), codes[item], proj.embedding_[item])
        kl = cache.kl_by_dimension(str(run_dir), checkpoint)
        label = None if labels is None else int(labels[item])  # a conditional VAE decodes the item's own class
        posterior.show_item_posterior(model, codes[item], logvars[item], cloud, kl, y=label)
        caption = lambda r: f"#{idx[r]}" + (f" · {names[labels[r]]}" if labels is not None else "")  # noqa: E731
        gallery.neighbours(the_map, codes, item, clicked, pictures, caption, ds.is_image)
    elif point:
        point_panel(ds, model, proj, point)
    elif browser:
        st.info("Click a point to pin that item, or empty space to pin that spot (★) and open it in Decode.")
        attributes.groups_caption(run_dir, checkpoint)
    else:
        st.info("Click a point on the map to see the item and its reconstruction, or empty space to decode it.")
    st.download_button(
        "Download map as CSV",
        lambda: maps.table_csv(split, idx, labels, names, proj.embedding_, codes, len(ds.x_train)),
        file_name=f"{run_dir.name}-{key}.csv", mime="text/csv", icon=":material/download:", on_click="ignore",
    )  # fmt: skip
with map_col:
    backdrop = maps.backdrop_uri(proj, model, ds) if display.backdrop and ds.is_image else None
    ring = None if item is None else proj.embedding_[item]
    if browser:
        mapview.show(
            run_dir, checkpoint, key, proj, idx, groups, pictures,
            item_shape=ds.item_shape if ds.is_image else (), split=split, n_train=len(ds.x_train),
            labelled=labels is not None, axis=proj.method.upper(),
            pin=point["xy"] if point else None, ring=ring, backdrop=backdrop, overlays=extra,
            panel_key=view_key, column=column, marker=display.marker,
            only=found[1] if found and found[0] == "label" and column is None else None,
            clears=st.session_state.get(gallery.CLEARS_KEY, 0), density=display.density,
            on_failed=lambda: st.session_state.__setitem__(BROWSER_FAILED, mapview.failure(view_key)),
        )  # fmt: skip
        st.caption("Point anywhere to see what the decoder draws there. Click to pin; drag to pan, scroll to zoom; "
                   "the box and lasso tools select groups of items; draw a path (the pencil in the map's tools) to "
                   "watch the decoder's pictures along it as a film. "
                   f"Coloured by {display.colour}: {columns.help_text(display.colour)}")  # fmt: skip
    else:
        if in_browser and why_not:
            st.caption(f"Decoded on the server: {why_not}.")
        if column is not None and kept is None:
            st.caption(f"The server-drawn map colours by label or neighbourhood kept only, not by {display.colour}.")
        fig = map_figure(proj, groups, point["xy"] if point else None, ring, backdrop, proj.method.upper(), kept, extra)
        chart(fig, on_select="rerun", selection_mode="points", key=chart_key)
        st.caption("Click a point to see that item; click empty space to decode that spot (★). Drag to pan.")
posterior.prior_section(run_dir, key, codes, logvars, proj, model)
