"""The Train page's latent map while its run trains, drawn by the browser (livemap.js beside this file).

Mounted inside the live panel's fragment (which polls the run folder every 2 s) with the frames so far as
bytes (``frames_bytes``): they change only when a frame lands or the UMAP frames are fitted, and Streamlit sends
an unchanged element once, so between frames neither the server nor the browser does anything for the map. On a
new frame the browser glides the items to their new places; the slider and Play replay the frames; a click
follows an item, which comes back as the state value ``follow``. After training the page draws the Plotly replay
(``ui.figures.history_figure``), following the same item.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import streamlit as st

from ..maps import label_groups

FRONTEND = Path(__file__).resolve().parent
MAGIC = b"LELIVEMP"

_component = st.components.v2.component(
    "latent_explorer_live_map",
    js=(FRONTEND / "livemap.js").read_text(),
    css=(FRONTEND / "livemap.css").read_text(),
)


def frames_bytes(view: dict, names: list[str] | None, follow: int | None) -> bytes:
    """A history view's frames for livemap.js: MAGIC, a uint32 JSON length, the JSON, padding to 4 bytes, float32
    layouts (frames, items, 2)."""
    ids = np.asarray(view["indices"])
    groups = label_groups(view["labels"], names, len(ids))
    group_of = np.zeros(len(ids), dtype=np.int64)
    for g, (rows, _, _) in enumerate(groups):
        group_of[rows] = g
    axis = "UMAP" if view["method"] == "umap" else "aligned PCA"
    meta = {
        "ids": ids.astype(int).tolist(),
        "labels": None if view["labels"] is None else group_of.tolist(),
        "groups": [{"name": name, "colour": colour} for _, name, colour in groups],
        "captions": list(view["captions"]),
        "pictures": view["pictures"],
        "axis": axis,
        "method": view["method"],
        "follow": None if follow is None else int(follow),
    }
    text = json.dumps(meta, separators=(",", ":")).encode()
    head = MAGIC + struct.pack("<I", len(text)) + text
    layouts = np.stack([np.asarray(layout, dtype=np.float32) for layout in view["layouts"]])
    return head + bytes(-len(head) % 4) + np.ascontiguousarray(layouts, dtype="<f4").tobytes()


@st.cache_resource(max_entries=4, show_spinner=False)
def _bytes(path: str, stamp: tuple, method: str, names: tuple, follow: int | None, _view: dict) -> bytes:
    """``frames_bytes`` once per new frame (the live panel asks at every poll)."""
    return frames_bytes(_view, list(names) or None, follow)


def show(run_dir: Path, view: dict, names: list[str] | None, follow: int | None, key: str) -> int | None:
    """Draw the live map of ``view`` (``ui.cache.history_view``) under ``key``; the item the person follows on it
    now (its id), or ``follow`` when they have not clicked it."""
    data = _bytes(str(run_dir), view["stamp"], view["method"], tuple(names or ()), follow, view)
    _component(data=data, key=key, default={"follow": follow}, on_follow_change=lambda: None)
    return followed(key, view["indices"], follow)


def followed(key: str, ids, follow: int | None) -> int | None:
    """The item followed on the live map under ``key``: an id of ``ids`` from the browser, None when the person
    clicked away from every item, ``follow`` before any click. Anything malformed is ignored."""
    state = st.session_state.get(key)
    if not hasattr(state, "get") or "follow" not in state:
        return follow
    value = state.get("follow")
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and int(value) in set(map(int, ids)):
        return int(value)
    return follow
