"""The Explore map's pieces that are not drawing: the area it covers, the invisible click grid, label
groups, reading a click, the decoded backdrop and the CSV of what is shown.

Plotly reports clicks on points only, so an invisible grid of points covers the map: a click on it
is a click "on the map", inverted through the projection to a latent point.
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np
from plotly.colors import qualitative

from vae.analysis.tables import codes_table, csv_bytes
from vae.data import Dataset
from vae.images import make_grid, png_bytes
from vae.projection import LatentProjector

from . import state
from .pictures import decode, enlargement

CLICK_GRID = 60  # invisible clickable points per side
TILES = 10  # decoded backdrop: TILES x TILES images
# Tableau 10 first: ten colours told apart with the common colour-vision deficiencies (Plotly's own made Trouser,
# Shirt and Bag near-identical reds and pinks); Alphabet's 26 after them for data with more classes
COLOURS = qualitative.T10 + qualitative.Alphabet


def map_box(proj: LatentProjector) -> tuple[float, float, float, float]:
    """The area the inverse grid covers (the map's bounding box plus a margin): x0, x1, y0, y1."""
    return float(proj.grid_x_[0]), float(proj.grid_x_[-1]), float(proj.grid_y_[0]), float(proj.grid_y_[-1])


def click_positions(proj: LatentProjector) -> np.ndarray:
    """Map positions of the invisible click grid, (CLICK_GRID**2, 2); point k is column k % R, row k // R."""
    x0, x1, y0, y1 = map_box(proj)
    xx, yy = np.meshgrid(np.linspace(x0, x1, CLICK_GRID), np.linspace(y0, y1, CLICK_GRID))
    return np.column_stack([xx.ravel(), yy.ravel()])


def backdrop_uri(proj: LatentProjector, model, ds: Dataset) -> str:
    """A TILES x TILES picture of what the decoder draws across the map (top row = top of the map)."""
    x0, x1, y0, y1 = map_box(proj)
    xx, yy = np.meshgrid(np.linspace(x0, x1, TILES), np.linspace(y1, y0, TILES))
    codes = proj.inverse_lookup(np.column_stack([xx.ravel(), yy.ravel()]))  # (TILES**2, latent_dim)
    tiles = make_grid(decode(model, codes), TILES, pad=1, fill=0.5)  # grey seams between tiles
    png = png_bytes(tiles, scale=enlargement(tiles.shape, 280))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def label_groups(labels: np.ndarray | None, names: list[str] | None, n: int) -> list[tuple[np.ndarray, str, str]]:
    """One (rows, name, colour) per label (in label order), or a single group when there are no labels."""
    if labels is None:
        return [(np.arange(n), "items", COLOURS[0])]
    return [(np.flatnonzero(labels == y), names[y], COLOURS[int(y) % len(COLOURS)]) for y in np.unique(labels)]


def last_pick(event, traces: list) -> tuple[str, int] | None:
    """The last clicked point: ("item", row) or ("grid", click-grid index); None when nothing is picked.

    ``traces[c]`` is None for the click grid, else the rows that trace ``c`` shows.
    """
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for p in reversed(points or []):
        curve, index = p.get("curve_number", 0), p.get("point_index", p.get("point_number"))
        if index is None or not 0 <= curve < len(traces):
            continue
        if traces[curve] is None:
            return ("grid", int(index)) if 0 <= index < CLICK_GRID**2 else None
        if 0 <= index < len(traces[curve]):
            return "item", int(traces[curve][index])
    return None


def far_from_items(proj: LatentProjector, xy) -> bool:
    """Whether a map position is farther than 5 % of the map's extent from every mapped item."""
    gap = np.hypot(*(proj.embedding_ - np.asarray(xy, dtype=np.float32)).T).min()
    return bool(gap > 0.05 * float(np.ptp(proj.embedding_, axis=0).max()))


def table_csv(split, idx, labels, names, emb, codes, n_train: int = 0) -> bytes:
    """Map coordinates, labels and latent means of the shown items, as CSV (each row names its own split:
    with ``split="all"``, rows below ``n_train`` are train items, the others test items). The format is
    ``python -m vae embed``'s (``vae.analysis.tables``)."""
    part = np.where(idx < n_train, "train", "test") if split == "all" else np.full(len(idx), split)
    index = np.where(idx < n_train, idx, idx - n_train) if split == "all" else idx
    return csv_bytes(codes_table(part, index, emb, codes, labels, names))


def marked_point(pick, proj: LatentProjector, run_dir, key: str) -> dict | None:
    """The star: a new click on empty space (decoded through the map and kept for Decode and
    Interpolate) or the last one on this map; None if there is none.

    ``pick`` is ("grid", click-grid index) from the server-drawn chart or ("xy", map position) from the
    browser's; either way the code comes from the map's inverse here, never from the browser.
    """
    if pick and pick[0] in ("grid", "xy"):
        xy = click_positions(proj)[pick[1]] if pick[0] == "grid" else np.asarray(pick[1], dtype=np.float64)
        z = proj.inverse_lookup(xy)  # (latent_dim,)
        point = {"run": str(run_dir), "map": key, "xy": [float(v) for v in xy], "z": [float(v) for v in z]}
        state.set_map_point(point)
        state.hand_to_decode(point["z"])
    point = state.map_point(run_dir)
    return point if point and point.get("map") == key else None


def continued(shown: dict, run: str, checkpoint: str, split: str, n: int, method: str, key: str,
              following: bool) -> tuple[str, np.ndarray | None]:  # fmt: skip
    """The key of the map to show, and the layout it starts from (or None): the map shown already when it is of
    these codes (a rerun keeps it); following a training, a newer checkpoint's map started from the one shown
    (same items: same split and size), under a key of its own; else ``key``, fitted independently."""
    same_items = shown.get("run") == run and shown.get("split") == split and shown.get("size") == n
    if not same_items or shown.get("method") != method or not shown.get("key"):
        return key, None
    if shown.get("checkpoint") == checkpoint:
        return shown["key"], None  # the map on screen (perhaps itself started from an earlier one)
    if not following or method not in ("umap", "pca"):
        return key, None
    try:
        start = LatentProjector.load(shown["file"]).embedding_.astype(np.float64)
    except (FileNotFoundError, ValueError, KeyError):
        return key, None
    if start.shape != (n, 2):
        return key, None
    return f"{key}-f{hashlib.sha256(shown['key'].encode()).hexdigest()[:8]}", start
