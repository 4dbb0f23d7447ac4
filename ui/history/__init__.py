"""One browser-history entry per page visit (history.js): Back returns to the page before, with its view.

Mounted by the frame on every page; it draws nothing and sends nothing back.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

_component = st.components.v2.component(
    "latent_explorer_history", js=(Path(__file__).resolve().parent / "history.js").read_text()
)


def install() -> None:
    """Keep one history entry per page visit in this browser tab (once per tab; later mounts do nothing)."""
    with st.sidebar:
        _component(key="history_entries")
