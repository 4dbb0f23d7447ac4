"""The Compare page's two maps linked in the browser (link.js): a point hovered on one run's map is ringed on the
other's, and pointing anywhere on either map decodes that spot through both runs' decoders, in the browser.

Nothing is sent back to Python: the link lives in the browser, between Streamlit's two Plotly charts. The decoders
travel as the Decode page's do (one mount each, bytes that Streamlit sends once per checkpoint); the spot's code is
the PCA map's exact inverse, carried into the other run's space by the map the page chose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from vae.projection.sequence import Plane
from vae.runs import folder as rf

from ..decoder import model_id, module, weights

FRONTEND = Path(__file__).resolve().parent

_component = st.components.v2.component(
    "latent_explorer_compare_link",
    js=module(FRONTEND / "link.js"),
    css=(FRONTEND / "link.css").read_text(),
    isolate_styles=False,  # the ring and the pictures sit in the charts' own elements, styled from the page
)


def link(charts: tuple[str, str], both: dict | None = None) -> None:
    """Link the hover of the two charts keyed ``charts`` (their items' rows in the first trace's customdata) and,
    with ``both`` (from ``decoding``), decode under the pointer through both runs."""
    _component(data={"charts": list(charts), "both": both}, key="compare_link")


def decoding(runs: tuple[Path, Path], planes: tuple[Plane, Plane], across: tuple, carried: str) -> dict:
    """What the browser needs to decode a spot of either map through both runs, and the two decoders sent to it:
    each side's run, its map's inverse and ``across`` its map into the other's space (an object with ``weight``
    (Dthis, Dother) and ``bias``, or None for the same raw z); ``carried`` names that map in the captions."""
    sides = []
    for side, run_dir, plane, into in zip("AB", runs, planes, across, strict=True):
        checkpoint = rf.checkpoint_id(run_dir)
        _component(data=weights(str(run_dir), checkpoint), key=f"compare_link_weights_{side}")
        dim = plane.basis.shape[1]
        weight, bias = (np.eye(dim), np.zeros(dim)) if into is None else (into.weight, into.bias)
        across_map = {"weight": _floats(weight), "bias": _floats(bias)}
        sides.append({"name": side, "id": model_id(run_dir, checkpoint), "origin": _floats(plane.origin),
                      "basis": _floats(plane.basis), "across": across_map})  # fmt: skip
    return {"sides": sides, "carried": carried}


def _floats(a) -> list:
    return np.asarray(a, dtype=np.float64).tolist()
