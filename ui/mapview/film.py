"""Draw a path, get a film: the Explore map's path tool (film.js in the browser plays the decoder's pictures along
the drawn path); here the path's spots come back from the browser (the state value ``film``) and the same frames,
decoded by torch at the inverse grid's codes, are offered as a GIF."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from vae.images import gif_bytes
from vae.models import VAE
from vae.projection import LatentProjector

from ..pictures import decode, enlargement, grid_picture

MOST_FRAMES = 256  # a path's spots accepted from the browser (film.js sends 32)
FPS = 8  # as film.js plays it


def drawn(panel_key: str, the_map: str) -> np.ndarray | None:
    """The spots (N, 2) of the path last drawn on map ``the_map``, or None (none, another map's, or malformed: the
    value comes from the browser)."""
    state = st.session_state.get(panel_key)
    value = state.get("film") if hasattr(state, "get") else None
    if not isinstance(value, dict) or value.get("map") != the_map:
        return None
    xy = value.get("xy")
    if not isinstance(xy, list) or not 2 <= len(xy) <= MOST_FRAMES:
        return None
    ok = all(isinstance(p, list) and len(p) == 2 and all(_finite(v) for v in p) for p in xy)
    return np.asarray(xy, dtype=np.float64) if ok else None


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def frames(model: VAE, proj: LatentProjector, spots: np.ndarray) -> np.ndarray:
    """The decoder's pictures (N, C, H, W) in [0, 1] at ``spots`` (N, 2) of the map: the inverse grid's codes there,
    as the browser looks them up (a conditional VAE: the class chosen in the sidebar)."""
    return decode(model, proj.inverse_lookup(spots, method="grid"))


def panel(model: VAE, proj: LatentProjector, spots: np.ndarray, name: str) -> None:
    """The film of the drawn path: its frames as a strip and a GIF to download."""
    pictures = frames(model, proj, spots)
    st.markdown(f"**Along your path**: {len(spots)} frames, from the path's start to its end.")
    st.image(grid_picture(pictures, ncol=min(len(pictures), 16), scale=enlargement(pictures.shape[2:], 48)),
             width="stretch")  # fmt: skip
    gif = lambda: gif_bytes(pictures, enlargement(pictures.shape[2:], 160), FPS)  # noqa: E731 - made on download
    st.download_button("Download the film (GIF)", gif, file_name=f"{name}-path.gif", mime="image/gif",
                       icon=":material/movie:", on_click="ignore")  # fmt: skip
