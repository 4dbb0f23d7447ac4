"""Every session-state key that more than one page reads or writes, declared once, with typed get/set.

A page's own widget keys stay in that page (prefixed with the page's name); what crosses pages lives here:

``run``            the selected run's name (the sidebar picker's key; every page follows it)
``explore_point``  the last decoded map point: {"run", "map", "xy", "z"}; Interpolate offers it as an endpoint
``explore_map``    the map Explore shows: {"run", "checkpoint", "key", "split", "size", "method", "file"}
``decode_z``       a latent vector handed to Decode ("Open in Decode" on Explore): a list of floats
``attr_groups``    two selections on the map: {"run", "checkpoint", "split", "A": items, "B": items}
``attr_axis``      the attribute axis Interpolate shows, offered as a slider on Decode:
                   {"run", "checkpoint", "name", "vector"}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from .text import plain

RUN = "run"
MAP_POINT = "explore_point"
SHOWN_MAP = "explore_map"
DECODE_Z = "decode_z"
GROUPS = "attr_groups"
AXIS = "attr_axis"
KEPT = "kept_widgets"  # widget values kept across page visits (keep_widgets)


def switch_page(page: str) -> None:
    """Go to another page of the app. Its widgets bound to the URL fill it in again there; Streamlit's own
    clearing of the old page's parameters refuses bound ones, so they are handed over as none."""
    st.switch_page(page, query_params={})


def check_link(key: str, offered: Sequence[str], what: str) -> None:
    """Say so when the page's link gives widget ``key`` a value it does not offer (Streamlit then drops it from the
    URL and the widget shows its default): a copied link may name a run deleted since, or be mistyped."""
    raw = st.query_params.get(key)
    if raw is not None and raw not in offered:
        asked = f"The link asks for {what} “{plain(raw[:60])}”, which is not here"
        st.toast(f"{asked}; showing {plain(offered[0])} instead." if offered else f"{asked}.")


def check_number_link(key: str, lo: float, hi: float, what: str) -> None:
    """Drop, with a sentence, a link's value for the numeric widget ``key`` that is not a finite number from ``lo``
    to ``hi`` (Streamlit would raise on ``1e400`` before the page could say anything)."""
    raw = st.query_params.get(key)
    if raw is None:
        return
    try:
        ok = lo <= float(raw) <= hi
    except ValueError:
        ok = False
    if not ok:
        st.toast(f"The link asks for {what} “{plain(raw[:60])}”, which is out of range or not a number (it must be "
                 f"from {lo:g} to {hi:g}); showing the default instead.")  # fmt: skip
        del st.query_params[key]


LINK_MAX = 1000.0  # a linked map position or latent coordinate: far beyond any map or prior (codes lie within ±5)


def link_point(key: str = "pin") -> tuple[float, float] | None:
    """The map position a link pins (``?pin=x,y``), or None; a malformed one is dropped with a sentence."""
    raw = st.query_params.get(key)
    if raw is None:
        return None
    try:
        x, y = (float(v) for v in raw.split(","))
        if abs(x) <= LINK_MAX and abs(y) <= LINK_MAX:
            return x, y
    except ValueError:
        pass
    st.toast(f"The link's pinned point “{plain(raw[:60])}” is not two numbers like 0.5,-1.2 (each within "
             f"±{LINK_MAX:g}); nothing is pinned.")  # fmt: skip
    del st.query_params[key]
    return None


def set_link_point(xy: Sequence[float] | None, key: str = "pin") -> None:
    """Keep the pinned map position in the page's URL (or take it out)."""
    if xy is None:
        st.query_params.pop(key, None)
    else:
        value = f"{xy[0]:.6g},{xy[1]:.6g}"
        if st.query_params.get(key) != value:
            st.query_params[key] = value


def link_vector(length: int, key: str = "z") -> list[float] | None:
    """The latent point a link gives (``?z=0.5,-1,...``, ``length`` numbers), or None; one that does not fit is
    dropped with a sentence."""
    raw = st.query_params.get(key)
    if raw is None:
        return None
    try:
        values = [float(v) for v in raw.split(",")]
        if len(values) == length and all(abs(v) <= LINK_MAX for v in values):
            return values
    except ValueError:
        pass
    st.toast(f"The link's point “{plain(raw[:60])}” is not {length} numbers separated by commas (each within "
             f"±{LINK_MAX:g}); starting from zero.")  # fmt: skip
    del st.query_params[key]
    return None


def set_link_vector(values: Sequence[float], key: str = "z") -> None:
    """Keep a latent point in the page's URL (4 significant digits a coordinate)."""
    value = ",".join(f"{float(v):.4g}" for v in values)
    if st.query_params.get(key) != value:
        st.query_params[key] = value


def keep_widgets(keys: Sequence[str]) -> None:
    """Keep the values of a page's widgets while the user is on another page.

    Streamlit forgets a widget's value when the widget is not drawn in a run (another page is shown). A copy
    of each value is kept and written back only for keys Streamlit dropped: writing every value back on every
    run would also push it to the browser each time, overwriting what a person is typing meanwhile.
    """
    saved = st.session_state.setdefault(KEPT, {})
    for key in keys:
        if key in st.session_state:
            saved[key] = st.session_state[key]
        elif key in saved:
            st.session_state[key] = saved[key]


def selected_run_name() -> str | None:
    return st.session_state.get(RUN)


def select_run(name: str | None) -> None:
    """Make ``name`` the selected run on every page (call before the picker draws: in a callback)."""
    st.session_state[RUN] = name


def map_point(run_dir: Path) -> dict | None:
    """The last point decoded on this run's map, or None."""
    point = st.session_state.get(MAP_POINT)
    return point if isinstance(point, dict) and point.get("run") == str(run_dir) else None


def set_map_point(point: dict) -> None:
    st.session_state[MAP_POINT] = point


def shown_map() -> dict:
    """The map Explore showed last ({} before any)."""
    return st.session_state.get(SHOWN_MAP) or {}


def set_shown_map(info: dict) -> None:
    st.session_state[SHOWN_MAP] = info


def hand_to_decode(z: Sequence[float]) -> None:
    """Leave a latent vector for the Decode page to start from."""
    st.session_state[DECODE_Z] = [float(v) for v in z]


def decode_handoff() -> object:
    """What another page left for Decode (unchecked: Decode checks it fits its model)."""
    return st.session_state.get(DECODE_Z)


def map_groups(run_dir: Path, checkpoint: str) -> dict:
    """The map selections kept as groups A and B for this run's checkpoint ({} when none)."""
    groups = st.session_state.get(GROUPS)
    ok = isinstance(groups, dict) and groups.get("run") == str(run_dir) and groups.get("checkpoint") == checkpoint
    return groups if ok else {}


def set_map_group(run_dir: Path, checkpoint: str, split: str, name: str, items: Sequence[int]) -> None:
    """Keep ``items`` (indices into ``split``) as group ``name`` ("A" or "B"); another split starts afresh."""
    groups = map_groups(run_dir, checkpoint)
    if groups.get("split") != split:
        groups = {"run": str(run_dir), "checkpoint": checkpoint, "split": split}
    st.session_state[GROUPS] = {**groups, name: [int(i) for i in items]}


def attribute_axis(run_dir: Path, checkpoint: str) -> dict | None:
    """The attribute axis last shown on Interpolate for this run's checkpoint, or None."""
    axis = st.session_state.get(AXIS)
    ok = isinstance(axis, dict) and axis.get("run") == str(run_dir) and axis.get("checkpoint") == checkpoint
    return axis if ok else None


def set_attribute_axis(run_dir: Path, checkpoint: str, name: str, vector: Sequence[float]) -> None:
    st.session_state[AXIS] = {"run": str(run_dir), "checkpoint": checkpoint, "name": name,
                              "vector": [float(v) for v in vector]}  # fmt: skip
