"""Attribute vectors on the pages (the maths: ``vae.analysis.latent``).

- Explore: a box or lasso selection on the map can be kept as group A or B (``selection_panel``).
- Interpolate: an item moved along a direction, the difference of two mean codes (two classes, or the two map
  groups), decoded as a strip (``attribute_section``); analogies A - B + C between endpoints, test items and
  class means (``analogy_section``).
- Decode: the axis last shown on Interpolate becomes a slider that moves the point along it (``axis_slider``).

Class means are those of the training split's latent means; the groups' of the split they were selected in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from ui import cache, state
from ui.pictures import decode, enlargement, grid_picture, label_name
from vae.analysis.latent import along, analogy, attribute_vector, class_means
from vae.data import Dataset
from vae.models import VAE

from .text import plain

ss = st.session_state


# ---------------------------------------------------------------- Explore: selections kept as groups


def selection_panel(run_dir: Path, checkpoint: str, split: str, items: np.ndarray) -> None:
    """A box or lasso selection of the map's items (``items``: indices into ``split``): keep it as group A or B."""
    st.markdown(f"**{len(items):,} items selected**")
    left, right = st.columns(2)
    for column, name in ((left, "A"), (right, "B")):
        column.button(f"Keep as group {name}", key=f"explore_group_{name}", width="stretch",
                      on_click=state.set_map_group, args=(run_dir, checkpoint, split, name, items))  # fmt: skip
    groups_caption(run_dir, checkpoint)


def groups_caption(run_dir: Path, checkpoint: str) -> None:
    """Which map groups are kept, and where their axis is decoded."""
    groups = state.map_groups(run_dir, checkpoint)
    if not groups:
        st.caption("Select items with the box or lasso tool (top right of the map), then keep them as a group.")
        return
    sizes = ", ".join(f"group {n}: {len(groups[n]):,} items" for n in ("A", "B") if n in groups)
    st.caption(f"Kept on the {groups['split']} split: {sizes}.")
    if "A" in groups and "B" in groups:
        st.page_link("app_pages/interpolate.py", label="Decode the axis from A to B", icon=":material/trending_flat:")


GROUP_COLOURS = {"A": "rgba(214,39,40,0.55)", "B": "rgba(31,119,180,0.55)"}


def group_overlays(run_dir: Path, checkpoint: str, split: str, idx: np.ndarray, layout: np.ndarray) -> list[dict]:
    """The kept groups on the map they were selected in (its split): a coloured halo under each item shown."""
    groups = state.map_groups(run_dir, checkpoint)
    if groups.get("split") != split:
        return []
    out = []
    for name in ("A", "B"):
        shown = np.isin(idx, groups.get(name, []))  # (N,): which of the map's items are in the group
        if shown.any():
            out.append({"name": f"group {name}", "xy": layout[shown].tolist(), "colour": GROUP_COLOURS[name],
                        "size": 10})  # fmt: skip
    return out


# ---------------------------------------------------------------- Interpolate: directions, strips, analogies


def _codes_by_item(run_dir: Path, checkpoint: str, split: str) -> np.ndarray:
    """The split's latent means in item order (N, L)."""
    codes, idx = cache.latent_means(str(run_dir), checkpoint, split, None)
    out = np.empty_like(codes)
    out[idx] = codes
    return out


def class_mean_codes(run_dir: Path, checkpoint: str, ds: Dataset) -> dict[int, np.ndarray]:
    """Each label's mean code over the training split ({} for unlabelled data)."""
    return {} if ds.y_train is None else _class_means(str(run_dir), checkpoint)


@st.cache_data(max_entries=8, show_spinner=False)
def _class_means(path: str, checkpoint: str) -> dict[int, np.ndarray]:
    """Once per checkpoint, not on every rerun of Interpolate (both of its sections read them)."""
    return class_means(_codes_by_item(Path(path), checkpoint, "train"), cache.dataset_for(Path(path)).y_train.numpy())


def directions(run_dir: Path, checkpoint: str, ds: Dataset, means: dict[int, np.ndarray]) -> list[str]:
    """The kinds of direction this run offers: toward a class (labels), the map groups' axis (both kept)."""
    out = ["Toward a class"] if len(means) > 1 else []
    groups = state.map_groups(run_dir, checkpoint)
    if "A" in groups and "B" in groups:
        out.append("Map group A → group B")
    return out


def strip(model: VAE, ds: Dataset, codes: np.ndarray, caption: str, file_name: str, label: str) -> np.ndarray:
    """Decode ``codes`` (T, L) and show them as one picture (or a table), with a download."""
    decoded = decode(model, codes)  # (T, *item_shape)
    if ds.is_image:
        png = grid_picture(decoded, ncol=len(codes), scale=enlargement(ds.item_shape, 64))
        st.image(png, caption=caption, output_format="PNG")
        st.download_button(label, png, file_name=file_name, mime="image/png",
                           icon=":material/download:", key=f"download_{file_name}", on_click="ignore")  # fmt: skip
    else:
        st.dataframe(ds.to_original_units(decoded), width="stretch")
    return decoded


def attribute_section(run_dir: Path, checkpoint: str, model: VAE, ds: Dataset, start: np.ndarray,
                      labels: tuple[int | None, int | None], steps: int) -> None:  # fmt: skip
    """Endpoint A moved along a direction: toward a class (the two class means' difference) or along the map
    groups' axis; ``labels``: the endpoints' labels, the default classes."""
    st.subheader("Move along an attribute")
    means = class_mean_codes(run_dir, checkpoint, ds)
    kinds = directions(run_dir, checkpoint, ds, means)
    if not kinds:
        st.info("Select two groups of points on the Explore map (box or lasso tool, then “Keep as group A / B”): "
                "the direction from one group's mean code to the other's is decoded here.")  # fmt: skip
        return
    kind = st.radio("Direction", kinds, key="attr_kind", horizontal=True)
    if kind == "Toward a class":
        classes = sorted(means)
        name = lambda c: label_name(ds, c)  # noqa: E731
        first = labels[0] if labels[0] in means else classes[0]
        second = labels[1] if labels[1] in means and labels[1] != first else next(c for c in classes if c != first)
        left, right = st.columns(2)
        source = left.selectbox("From class", classes, index=classes.index(first), format_func=name, key="attr_from")
        target = right.selectbox("To class", classes, index=classes.index(second), format_func=name, key="attr_to")
        vector, title = means[target] - means[source], f"{name(source)} → {name(target)}"
    else:
        groups = state.map_groups(run_dir, checkpoint)
        codes = _codes_by_item(run_dir, checkpoint, groups["split"])
        vector = attribute_vector(codes, groups["A"], groups["B"])
        title = f"map group A → group B ({len(groups['A']):,} → {len(groups['B']):,} items)"
    strength = st.slider(
        "Strength", 0.0, 3.0, 1.0, 0.25, key="attr_strength",
        help="t in z + t·(mean of the second group − mean of the first): at 1 the item has moved by the whole "
        "difference between the two means.",
    )  # fmt: skip
    codes = along(start, vector, np.linspace(0.0, strength, steps))  # (steps, L)
    ss["attr_codes"] = codes
    strip(
        model,
        ds,
        codes,
        f"Endpoint A moved {plain(title)}, t = 0 … {strength:g}",
        f"{run_dir.name}-attribute.png",
        "Download attribute strip (PNG)",
    )
    state.set_attribute_axis(run_dir, checkpoint, title, vector)
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.caption(f"The axis {plain(title)} has length {np.linalg.norm(vector):.2f}; Decode offers it as a slider.")
    if right.button("Open the end in Decode", key="attr_open", icon=":material/tune:"):
        state.hand_to_decode(codes[-1])
        state.switch_page("app_pages/decode.py")


def analogy_section(run_dir: Path, checkpoint: str, model: VAE, ds: Dataset, ends: dict[str, np.ndarray],
                    test_codes: np.ndarray, labels: tuple[int | None, int | None]) -> None:  # fmt: skip
    """A - B + C, each an endpoint, a test item or a class mean: "A, without what B has, with what C has"."""
    st.subheader("Analogy: A − B + C")
    means = class_mean_codes(run_dir, checkpoint, ds)
    named = {**ends, **{f"mean of {label_name(ds, c)}": means[c] for c in sorted(means)}}  # choice -> its code
    options = [*ends, "a test item", *list(named)[len(ends) :]]
    defaults = ["endpoint A", "endpoint B", "a test item"]
    if labels[0] in means and labels[1] in means and labels[0] != labels[1]:  # this item, as the other class
        defaults = ["endpoint A", f"mean of {label_name(ds, labels[0])}", f"mean of {label_name(ds, labels[1])}"]
    picked = []
    for column, role, default in zip(st.columns(3), "ABC", defaults, strict=True):
        choice = column.selectbox(role, options, index=options.index(default), key=f"attr_analogy_{role}")
        if choice == "a test item":
            i = column.number_input("Test item", 0, len(test_codes) - 1, 2, key=f"attr_analogy_item_{role}")
            picked.append(test_codes[int(i)])
        else:
            picked.append(named[choice])
    result = analogy(*picked)
    ss["attr_analogy"] = result
    strip(
        model,
        ds,
        np.stack([*picked, result]),
        "A, B, C, then A − B + C",
        f"{run_dir.name}-analogy.png",
        "Download analogy (PNG)",
    )


# ---------------------------------------------------------------- Decode: a slider along the axis


AXIS_LAST = "decode_axis_last"


def axis_slider(run_dir: Path, checkpoint: str, latent_dim: int, point: Callable[[], list[float]],
                move: Callable[[list[float]], None]) -> None:  # fmt: skip
    """A slider along the attribute axis last shown on Interpolate: each step moves the point by the change."""
    axis = state.attribute_axis(run_dir, checkpoint)
    if axis is None or len(axis["vector"]) != latent_dim:
        return
    vector = np.asarray(axis["vector"], dtype=np.float64)
    if ss.get("decode_axis_name") != axis["name"]:  # another axis: its slider starts at 0
        ss["decode_axis_name"], ss[AXIS_LAST], ss["decode_axis"] = axis["name"], 0.0, 0.0

    def moved() -> None:
        t = float(ss["decode_axis"])
        step = t - float(ss.get(AXIS_LAST, 0.0))
        ss[AXIS_LAST] = t
        move([float(v) for v in np.asarray(point(), dtype=np.float64) + step * vector])

    st.slider(
        f"Along {plain(axis['name'])}", -3.0, 3.0, step=0.25, key="decode_axis", on_change=moved,
        help="From Interpolate's attribute section: moving this slider by 1 moves the point by the whole axis.",
    )  # fmt: skip
