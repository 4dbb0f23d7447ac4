"""Every session-state key that more than one page reads or writes, declared once, with typed get/set.

A page's own widget keys stay in that page (prefixed with the page's name); what crosses pages lives here:

``run``            the selected run's name (the sidebar picker's key; every page follows it)
``explore_point``  the last decoded map point: {"run", "map", "xy", "z"}; Interpolate offers it as an endpoint
``explore_map``    the map Explore shows: {"run", "checkpoint", "key", "split", "size", "method", "file"}
``decode_z``       a latent vector handed to Decode ("Open in Decode" on Explore): a list of floats
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

RUN = "run"
MAP_POINT = "explore_point"
SHOWN_MAP = "explore_map"
DECODE_Z = "decode_z"
KEPT = "kept_widgets"  # widget values kept across page visits (keep_widgets)


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
