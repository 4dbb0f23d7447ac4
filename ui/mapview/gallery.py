"""Galleries under the Explore map: a pinned item's nearest latent neighbours (click one to pin it), and a sample of
what a box or lasso selection holds, with its label counts; the pins and the clearing they ask for; finding an item
by its number or a label by its name (``find``), and the pinned item kept in the page's URL (``?item=``).

A click in a gallery, or on "Clear selection", cannot set the map component's own value (the browser owns it):
it is kept here against the map's last pick, and holds until the browser sends a newer one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import streamlit as st
from sklearn.neighbors import NearestNeighbors

from ..pictures import grid_picture, picture
from ..text import plain

NEIGHBOURS = 12
SAMPLE = 48
PIN_KEY = "explore_gallery_pin"  # {"map", "row", "base"}: a gallery click pins row while the map's pick is base
CLEARED_KEY = "explore_cleared"  # {"map", "base"}: the selection that "Clear selection" cleared
CLEARS_KEY = "explore_clears"  # how many times a selection was cleared (the browser drops its selection then)


def _same(a: object, b: object) -> bool:
    return repr(a) == repr(b)


def adjust(pick: tuple | None, the_map: str) -> tuple | None:
    """The map's pick once the galleries' clicks are applied: a neighbour pinned from a gallery, or no selection
    after "Clear selection", for as long as the browser's own pick stays the one they were made on."""
    pin = st.session_state.get(PIN_KEY)
    if pin and pin["map"] == the_map and _same(pin["base"], pick):
        return ("item", int(pin["row"]))
    st.session_state.pop(PIN_KEY, None)
    cleared = st.session_state.get(CLEARED_KEY)
    if cleared and cleared["map"] == the_map and _same(cleared["base"], pick):
        return None
    st.session_state.pop(CLEARED_KEY, None)
    return pick


def _pin(the_map: str, row: int, base: tuple | None) -> None:
    st.session_state[PIN_KEY] = {"map": the_map, "row": int(row), "base": base}


def _clear(the_map: str, base: tuple | None) -> None:
    st.session_state[CLEARED_KEY] = {"map": the_map, "base": base}
    st.session_state.pop(PIN_KEY, None)
    st.session_state[CLEARS_KEY] = st.session_state.get(CLEARS_KEY, 0) + 1


@st.cache_resource(max_entries=4, show_spinner=False)
def _index(map_id: str, _codes: np.ndarray) -> NearestNeighbors:
    """The nearest-neighbour index of a map's codes (``map_id`` names the codes)."""
    return NearestNeighbors().fit(_codes)


def nearest(map_id: str, codes: np.ndarray, row: int, k: int = NEIGHBOURS) -> np.ndarray:
    """The rows of the ``k`` codes nearest code ``row`` (Euclidean, in the latent space), nearest first, without
    the item itself."""
    n = min(k + 1, len(codes))
    rows = _index(map_id, codes).kneighbors(codes[row : row + 1], n_neighbors=n, return_distance=False)[0]
    return np.array([r for r in rows if r != row][:k], dtype=np.int64)


def neighbours(map_id: str, codes: np.ndarray, row: int, pick: tuple | None, items: Callable[[np.ndarray], np.ndarray],
               names: Callable[[int], str], is_image: bool) -> np.ndarray:  # fmt: skip
    """The pinned item's 12 nearest latent neighbours as a gallery, each with a button that pins it; returns their
    rows. ``items(rows)`` gives their data, ``names(row)`` their caption."""
    rows = nearest(map_id, codes, row)
    st.markdown(f"**Its {len(rows)} nearest neighbours in the latent space**")
    if not is_image:
        st.dataframe({"item": [names(r) for r in rows]}, hide_index=True)
        return rows
    data = items(rows)
    per_row = 6
    for start in range(0, len(rows), per_row):
        cells = st.columns(per_row)
        for cell, r, x in zip(cells, rows[start : start + per_row], data[start : start + per_row], strict=False):
            with cell:
                show_item_small(x)
                cell.button(names(r), key=f"explore_neighbour_{r}", width="stretch",
                            on_click=_pin, args=(map_id, r, pick), help="Pin this item")  # fmt: skip
    return rows


def show_item_small(x: np.ndarray) -> None:
    """One neighbour's picture, about 64 px wide whatever its size."""
    st.image(picture(x, scale=max(1, 64 // max(x.shape[-2:]))), width="stretch")


def selection(map_id: str, rows: Sequence[int], pick: tuple | None, items: Callable[[np.ndarray], np.ndarray] | None,
              labels: np.ndarray | None, names: list[str] | None) -> np.ndarray:  # fmt: skip
    """What a selection holds: every label's count, and a sample of at most 48 of its items (fixed seed) drawn as one
    picture; a button clears the selection. Returns the sampled rows."""
    rows = np.asarray(rows)
    if labels is not None and names is not None:
        values, counts = np.unique(labels, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        st.caption("Label counts: " + ", ".join(f"{names[int(values[i])]}: {counts[i]:,}" for i in order) + ".")
    sample = rows if len(rows) <= SAMPLE else np.sort(np.random.default_rng(0).choice(rows, SAMPLE, replace=False))
    if items is not None:
        what = "all of them" if len(sample) == len(rows) else f"a sample of {len(sample)}"
        st.image(grid_picture(items(sample), min(12, len(sample)), scale=2), caption=f"The selection: {what}.")
    st.button("Clear selection", key="explore_clear_selection", icon=":material/deselect:", on_click=_clear,
              args=(map_id, pick))  # fmt: skip
    return sample


FIND_KEY = "explore_find"  # the Find box's text
FOUND_KEY = "explore_found"  # the text last acted on (a pin is made once per text, then clicks take over)
ITEM_LINK = "item"  # the pinned item's number in the URL


def find(text: str, idx: np.ndarray, split_size: int, names: Sequence[str] | None) -> tuple[str, int] | None:
    """What the Find box asks for: ("label", place among ``names``) for a label's name (any case), ("item", row of
    the map) for an item number among the map's items ``idx`` (``#3``: item 3 even where a label is called "3"), or
    None after saying why not."""
    text = text.strip()
    numbered = text.startswith("#")  # "#3" is item 3 even where "3" is also a label's name
    text = text.lstrip("#").strip()
    if not text:
        return None
    if names and not numbered:
        lowered = [n.lower() for n in names]
        if text.lower() in lowered:
            return "label", lowered.index(text.lower())
    if text.isdigit():
        number = int(text)
        if number >= split_size:
            st.caption(f"There is no item #{number}: this split has {split_size:,} items (0 to {split_size - 1:,}).")
            return None
        rows = np.flatnonzero(np.asarray(idx) == number)
        if not len(rows):
            st.caption(f"Item #{number} is not among the {len(idx):,} points this map shows: choose all the points.")
            return None
        return "item", int(rows[0])
    known = f" or a label ({', '.join(names[:12])}{', …' if len(names) > 12 else ''})" if names else ""
    st.caption(f"Nothing is called “{text[:40]}”: type an item number{known}.")
    return None


def pin_found(the_map: str, found: tuple[str, int] | None, base: tuple | None) -> None:
    """Pin the item the Find box names, once per new text (the map's clicks take over after that)."""
    text = st.session_state.get(FIND_KEY, "")
    if found and found[0] == "item" and st.session_state.get(FOUND_KEY) != (the_map, text):
        _pin(the_map, found[1], base)
    st.session_state[FOUND_KEY] = (the_map, text)


def linked_item(idx: np.ndarray) -> int | None:
    """The row of the item a link pins (``?item=N``), or None; a value that names no item shown is dropped with a
    sentence."""
    raw = st.query_params.get(ITEM_LINK)
    if raw is None:
        return None
    rows = np.flatnonzero(np.asarray(idx) == int(raw)) if raw.isdigit() else []
    if len(rows):
        return int(rows[0])
    st.toast(f"The link's pinned item “{plain(raw[:40])}” is not on this map; nothing is pinned.")
    del st.query_params[ITEM_LINK]
    return None


def set_linked_item(number: int | None) -> None:
    """Keep the pinned item's number in the page's URL (or take it out)."""
    if number is None:
        st.query_params.pop(ITEM_LINK, None)
    elif st.query_params.get(ITEM_LINK) != str(number):
        st.query_params[ITEM_LINK] = str(number)
