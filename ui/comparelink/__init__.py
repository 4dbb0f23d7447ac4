"""Linked hover on the Compare page: a point hovered on one run's map is ringed on the other's (link.js).

Nothing is sent back to Python: the link lives in the browser, between Streamlit's two Plotly charts.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

FRONTEND = Path(__file__).resolve().parent

_component = st.components.v2.component(
    "latent_explorer_compare_link",
    js=(FRONTEND / "link.js").read_text(),
    css=(FRONTEND / "link.css").read_text(),
    isolate_styles=False,  # the ring sits in the charts' own elements, styled from the page
)


def link(charts: tuple[str, str]) -> None:
    """Link the hover of the two charts keyed ``charts`` (their items' rows in the first trace's customdata)."""
    _component(data={"charts": list(charts)}, key="compare_link")
