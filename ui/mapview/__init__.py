"""The Explore map in the browser: Plotly's own JavaScript draws it, and the browser decodes under the pointer.

A Streamlit v2 component (map.js beside this file, after the shared decoder core.js). Three of its mounts carry
bytes that do not change while the map stays: plotly.min.js from the installed plotly package (nothing is
fetched from the network), the decoder (vae/web/decoder.py) and the map (vae/web/mapgrid.py); Streamlit sends an
unchanged element once; a fifth carries the column the points are coloured by, when it is not the label
(``columns``). The panel mount carries JSON: which map, decoder and column, the points' size and opacity, the
pinned star, the ringed item, the backdrop. A click comes back as the state value ``pick``, a path drawn with the
mode bar's path tool as ``film`` (film.js, ``film.py``); a large map's points are drawn by a WebGL layer of its own
under Plotly's axes (points.js, ``layer_at``); a map the browser cannot draw fires ``failed`` with the
reason, and the page falls back to the server-drawn chart.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import plotly
import streamlit as st

from vae.models import VAE
from vae.projection import LatentProjector
from vae.web import decoder as webdecoder
from vae.web import mapgrid as webmap

from .. import decoder, served
from ..maps import map_box
from .columns import VIRIDIS, Column

FRONTEND = Path(__file__).resolve().parent
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
PLOTLY_MAGIC = b"LEPLOTJS"

JS_PARTS = ("film.js", "items.js", "sprites.js", "points.js")  # after map.js: a path's film, whole pictures, sprites,
# a large map's points
_component = st.components.v2.component(
    "latent_explorer_map",
    js="\n".join([decoder.module(FRONTEND / "map.js"), *((FRONTEND / f).read_text() for f in JS_PARTS)]),
    css=(FRONTEND / "map.css").read_text(),
    isolate_styles=False,  # Plotly styles its plots from the page's head, which a shadow root would keep out
)


def unsupported(model: VAE, proj: LatentProjector) -> str | None:
    """Why this map is drawn by the server instead (a sentence), or None when the browser can draw it."""
    if not PLOTLY_JS.is_file():
        return "the installed plotly package has no plotly.min.js"
    if not hasattr(proj, "grid_codes_"):
        return "this map has no inverse grid"
    return webdecoder.browser_unsupported(model)


@st.cache_resource(show_spinner=False)
def _plotly_bytes() -> bytes:
    return PLOTLY_MAGIC + PLOTLY_JS.read_bytes()


@st.cache_resource(max_entries=4, show_spinner="Packing the map for the browser…")
def _map_bytes(map_id: str, _proj: LatentProjector, _index, _groups, _pixels: Callable[[], np.ndarray] | None) -> bytes:
    """The map blob of ``map_id`` (run, checkpoint and map key name it; the other arguments follow from it). The
    items' pixels are read only when the blob is built (70,000 items: a 220 MB copy, 0.14 s, not on every rerun)."""
    return webmap.pack_map(
        map_id, _proj.embedding_, _index, _groups, _proj.grid_x_, _proj.grid_y_, _proj.grid_codes_,
        None if _pixels is None else _pixels(), whole_up_to=pictures_up_to(),
    )  # fmt: skip


def layer_at() -> int:
    """Maps of more points than this have them drawn by the map's own WebGL layer (points.js) instead of Plotly's
    scattergl, which redraws 70,000 points 5-6 times a second and 737,280 about once in software WebGL (``python -m
    bench renderers``; in the app 10,000 points pan at 12 frames/s with Plotly, 70,000 at 55 with the layer:
    ``python -m bench mapview``): ``$LATENT_EXPLORER_POINTS_LAYER_AT``, default 5,000; 0 never."""
    return _count_setting("LATENT_EXPLORER_POINTS_LAYER_AT", 5_000)


def pictures_up_to() -> int:
    """Maps of at most this many items carry their items' whole pixels; larger ones carry thumbnails (or nothing)
    and the browser asks the server for the whole pictures it shows (``ui.served``):
    ``$LATENT_EXPLORER_PICTURES_UP_TO``, default 10,000."""
    return _count_setting("LATENT_EXPLORER_PICTURES_UP_TO", webmap.MAX_PIXEL_ITEMS)


def _count_setting(name: str, default: int) -> int:
    """A count from the environment variable ``name`` (``default`` when unset or not a whole number)."""
    try:
        return max(0, int(os.environ.get(name, str(default))))
    except ValueError:
        return default


def map_id(run_dir: Path, checkpoint: str, key: str) -> str:
    return f"{run_dir.name}@{checkpoint}/{key}"


def auto_marker(n: int) -> tuple[int, float]:
    """Point size (px) and opacity for a map of ``n`` points: smaller and fainter as the map fills, so that dense
    regions read as dense rather than as one blot (6 px at 0.84 for 360 points, 3 px at 0.57 for 70,000)."""
    decades = math.log10(max(n, 1))
    return int(min(8, max(2, round(9 - 1.3 * decades)))), round(min(0.9, max(0.35, 1.15 - 0.12 * decades)), 2)


def column_bytes(the_map: str, column: Column) -> bytes:
    """The blob of ``column`` for map ``the_map`` (its id names the map and the column)."""
    return webmap.pack_column(
        the_map, f"{the_map}#{column.name}", column.name, column.values,
        categories=column.categories, scale=None if column.categories else VIRIDIS, value_range=column.range,
    )  # fmt: skip


def show(
    run_dir: Path,
    checkpoint: str,
    key: str,
    proj: LatentProjector,
    index: np.ndarray,
    groups: Sequence[tuple[np.ndarray, str, str]],
    pictures: Callable[[np.ndarray], np.ndarray] | None,
    *,
    item_shape: Sequence[int] = (),
    split: str,
    n_train: int,
    labelled: bool,
    axis: str,
    pin: Sequence[float] | None,
    ring: Sequence[float] | None,
    backdrop: str | None,
    overlays: list[dict],
    panel_key: str,
    on_failed: Callable[[], None],
    column: Column | None = None,
    marker: tuple[int, float] | None = None,
    clears: int = 0,
    only: int | None = None,
    density: str | None = None,
    height: int | str = "auto",
) -> None:
    """Draw map ``key`` of a run in the browser; ``pictures(rows)`` gives those rows' items' pixels, of ``item_shape``
    (sent whole with small maps, as thumbnails with large ones: ``vae.web.mapgrid.thumbnail_scale``; past 10,000
    items the browser asks the server for the whole pictures of the items it points at: ``ui.served``). The
    map takes the whole width; its ``height`` (px) "auto" fills most of the window. ``column`` colours the points
    (None: by label); ``marker`` is their size and opacity (None: ``auto_marker``); a new ``clears`` count drops
    the browser's box or lasso selection (the page's "Clear selection"); ``only`` shows one label's points over
    the others in grey (as a click on its legend entry does), when it changes; ``density`` draws the points'
    density as contours under them: of all points ("all") or one per label in its colour ("label").

    Every mount keeps its key from map to map, so the browser keeps its Plotly and its decoder: Streamlit
    re-sends an element whose key or content changed (a new key would re-send Plotly's 4.8 MB each time).
    """
    the_map = map_id(run_dir, checkpoint, key)
    n = len(index)
    scale = None if pictures is None else webmap.thumbnail_scale(n, item_shape, pictures_up_to())
    whole = None if scale is None else lambda: pictures(np.arange(n))  # noqa: E731
    blob = _map_bytes(the_map, proj, index, groups, whole)
    items = None  # the server's path for whole pictures, when the blob lacks them
    if pictures is not None and scale != 1:
        items = served.offer(the_map, n, lambda rows: webmap.picture_bytes(pictures(rows)))
    size, opacity = marker or auto_marker(len(index))
    _component(
        data={
            "map": the_map,
            "model": decoder.model_id(run_dir, checkpoint),
            "split": split,
            "n_train": n_train,
            "labelled": labelled,
            "axis": axis,
            "box": list(map_box(proj)),
            "pin": None if pin is None else [float(v) for v in pin],
            "ring": None if ring is None else [float(v) for v in ring],
            "backdrop": backdrop,
            "overlays": overlays,
            "column": None if column is None else f"{the_map}#{column.name}",
            "size": size,
            "opacity": opacity,
            "clears": clears,
            "only": only,
            "density": density,
            "height": height,
            "layer_at": layer_at(),
            "items": items,
        },
        key=panel_key,
        default={"pick": None, "film": None},
        on_pick_change=lambda: None,
        on_film_change=lambda: None,
        on_failed_change=on_failed,
    )
    # the bytes after the panel: its JSON is small, so the panel appears at once and fills in as these land
    _component(data=_plotly_bytes(), key=f"{panel_key}_plotly")
    _component(data=decoder.weights(str(run_dir), checkpoint), key=f"{panel_key}_weights")
    _component(data=blob, key=f"{panel_key}_map")
    if column is not None:
        _component(data=column_bytes(the_map, column), key=f"{panel_key}_column")


def preload_plotly() -> None:
    """Load Plotly's JavaScript in this browser tab now (it stays across pages), so that the first map a page
    draws does not wait for 4.8 MB to arrive and compile: the Home page does this while its demo trains."""
    if PLOTLY_JS.is_file():  # without it the maps are drawn by the server (``unsupported``)
        _component(data=_plotly_bytes(), key="mapview_plotly_preload")


def pick(panel_key: str, the_map: str, n_rows: int) -> tuple[str, object] | None:
    """The browser's last click on map ``the_map`` (``map_id``): ("item", row), ("xy", (x, y)) or, from the box
    and lasso tools, ("selection", rows); None when there is none, or when it was on another map (the panel's
    key stays the same from map to map).

    The value comes from the browser: anything malformed is ignored.
    """
    state = st.session_state.get(panel_key)
    value = state.get("pick") if hasattr(state, "get") else None
    if not isinstance(value, dict) or value.get("map") != the_map:
        return None
    if value.get("kind") == "item":
        row = value.get("row")
        return ("item", int(row)) if isinstance(row, int) and 0 <= row < n_rows else None
    rows = value.get("rows")
    if value.get("kind") == "selection" and isinstance(rows, list) and rows:
        ok = all(isinstance(r, int) and not isinstance(r, bool) and 0 <= r < n_rows for r in rows)
        return ("selection", sorted(set(rows))) if ok else None
    xy = value.get("xy")
    if value.get("kind") == "point" and isinstance(xy, list) and len(xy) == 2:
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in xy):
            return "xy", (float(xy[0]), float(xy[1]))
    return None


def failure(panel_key: str) -> str | None:
    """The reason the browser gave for not drawing the map, if it just did."""
    state = st.session_state.get(panel_key)
    value = state.get("failed") if hasattr(state, "get") else None
    return str(value) if value else None
