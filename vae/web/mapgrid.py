"""A latent map packed for the browser: one binary blob the Explore map component (ui/mapview/map.js) reads,
and the blobs of the columns that colour its points.

The browser decodes whatever lies under the pointer: a map position goes through the projection's inverse
grid (bilinear, as ``LatentProjector.inverse_lookup(..., method="grid")``) and the browser decoder. So the
blob carries the points, the inverse grid, and for small maps the items' own pixels, all sent once per map.

The points are in a shuffled order (a fixed seed), the order they are drawn in: no class paints over another.
Each carries its label's category; the page colours them by label or by a column (``pack_column``).

Layout, little-endian: 8 bytes ``MAGIC``, a uint32 header length ``n``, ``n`` bytes of UTF-8 JSON (padded
with spaces to a multiple of 4), then the arrays the header lists, each starting on a 4-byte boundary::

    {"format": 2, "id": ..., "n": N, "latent_dim": L, "item_shape": [C, H, W] | null,
     "categories": [{"name": "0", "colour": "#4e79a7", "count": 36}, ...],
     "arrays": {"xy": {"offset": bytes, "dtype": "f4", "shape": [N, 2]}, "rows": {... "i4", [N]},
                "index": {... "i4", [N]}, "category": {... "i4", [N]},
                "grid_x": {... "f4", [R]}, "grid_y": {... "f4", [R]}, "grid_codes": {... "f4", [R, R, L]},
                "pixels": {... "u1", [N, C*H*W]} (only with item pixels)}}

``rows[k]`` is drawn point k's row in the codes the map was fitted on, ``index[k]`` its item number in its
split, ``category[k]`` its label's place in ``categories``. ``grid_codes[i, j]`` is the code at
``(grid_x[j], grid_y[i])``. Offsets count from the first byte after the header.

A column blob (``COLUMN_MAGIC``) has the same layout: a header {"format": 1, "map": map id, "id": column id,
"name", "kind": "category" | "number", "categories": [...] (category columns), "scale": [[0, colour], ...,
[1, colour]] and "range": [min, max] (number columns)} and one array "values" (f4, [N]) in the rows' order
(not the drawn order): a category's place, or the number.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence

import numpy as np

MAGIC = b"LEMAP002"
FORMAT = 2
COLUMN_MAGIC = b"LECOLS01"
SEED = 0  # the drawing order's shuffle
MAX_PIXEL_ITEMS = 10_000  # up to this many items, their pixels are sent whole (hovered, an item shows itself)
MAX_THUMBNAIL_BYTES = 16 * 1024 * 1024  # above it, smaller thumbnails (block means) are sent, up to this many bytes
MIN_THUMBNAIL_SIDE = 8  # ... never smaller than 8 pixels a side (else the page shows an item on click)
_DTYPES = {"f4": "<f4", "i4": "<i4", "u1": "u1"}


def thumbnail_scale(n: int, item_shape: Sequence[int], whole_up_to: int = MAX_PIXEL_ITEMS) -> int | None:
    """How many times smaller the items' pixels travel in a map of ``n`` items of ``item_shape`` (C, H, W): 1 up to
    ``whole_up_to`` items, else the least whole factor (dividing the side) whose block means fit
    ``MAX_THUMBNAIL_BYTES`` in ``MIN_THUMBNAIL_SIDE`` pixels a side or more (70,000 Fashion-MNIST items: 2, 14×14,
    13.7 MB); None when no factor does (they are not sent)."""
    if len(item_shape) != 3:
        return None
    c, h, w = (int(v) for v in item_shape)
    if n <= whole_up_to:
        return 1
    for f in range(2, min(h, w) // MIN_THUMBNAIL_SIDE + 1):
        if h % f == 0 and w % f == 0 and n * c * (h // f) * (w // f) <= MAX_THUMBNAIL_BYTES:
            return f
    return None


def picture_bytes(pixels: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] as the browser gets them: uint8, 0-255, rounded (the same shape)."""
    return np.round(np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def thumbnails(pixels: np.ndarray, scale: int) -> np.ndarray:
    """``pixels`` (N, C, H, W) shrunk ``scale`` times a side by block means (the item as a glance shows it)."""
    if scale == 1:
        return pixels
    n, c, h, w = pixels.shape
    return np.asarray(pixels, dtype=np.float32).reshape(n, c, h // scale, scale, w // scale, scale).mean(axis=(3, 5))


def pack_map(
    map_id: str,
    embedding: np.ndarray,
    index: np.ndarray,
    groups: Sequence[tuple[np.ndarray, str, str]],
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    grid_codes: np.ndarray,
    pixels: np.ndarray | None = None,
    whole_up_to: int = MAX_PIXEL_ITEMS,
) -> bytes:
    """The blob of one map.

    ``embedding`` (N, 2) map positions; ``index`` (N,) each point's item number in its split; ``groups``
    (rows, name, colour) per label, whose rows together cover 0..N-1 once; the inverse grid ``grid_x`` (R,),
    ``grid_y`` (R,), ``grid_codes`` (R, R, L); ``pixels`` (N, C, H, W) in [0, 1] (the items themselves, rows
    as in ``embedding``; thumbnails of them past ``whole_up_to`` items: ``thumbnail_scale``) or None.
    """
    embedding = np.asarray(embedding, dtype=np.float32)
    n = len(embedding)
    member = np.concatenate([np.asarray(rows, dtype=np.int64) for rows, _, _ in groups]) if groups else np.zeros(0)
    if len(member) != n or (n and not np.array_equal(np.sort(member), np.arange(n))):
        raise ValueError("The label groups must cover every point of the map exactly once.")
    category = np.zeros(n, dtype=np.int32)
    for g, (rows, _, _) in enumerate(groups):
        category[np.asarray(rows, dtype=np.int64)] = g
    grid_codes = np.asarray(grid_codes, dtype=np.float32)
    if grid_codes.shape[:2] != (len(grid_y), len(grid_x)):
        raise ValueError(f"The inverse grid is {grid_codes.shape[:2]}, not {len(grid_y)} x {len(grid_x)}.")
    order = drawing_order(n)
    arrays = {
        "xy": embedding[order],
        "rows": order.astype(np.int32),
        "index": np.asarray(index, dtype=np.int64)[order].astype(np.int32),
        "category": category[order],
        "grid_x": np.asarray(grid_x, dtype=np.float32),
        "grid_y": np.asarray(grid_y, dtype=np.float32),
        "grid_codes": grid_codes,
    }
    item_shape = None
    if pixels is not None:
        pixels = np.asarray(pixels)
        if len(pixels) != n or pixels.ndim != 4:
            raise ValueError(f"Item pixels must be (N, C, H, W) with N = {n}; got {pixels.shape}.")
        scale = thumbnail_scale(n, pixels.shape[1:], whole_up_to)
        if scale is None:
            raise ValueError(f"The pixels of {n:,} items of {pixels.shape[1:]} do not fit a map's thumbnails.")
        pixels = thumbnails(pixels, scale)
        item_shape = [int(v) for v in pixels.shape[1:]]
        arrays["pixels"] = picture_bytes(pixels[order]).reshape(n, -1)
    header = {
        "format": FORMAT,
        "id": map_id,
        "n": n,
        "latent_dim": int(grid_codes.shape[2]),
        "item_shape": item_shape,
        "pixel_scale": scale if pixels is not None else None,  # 2: the items' thumbnails are half their side
        "categories": [{"name": name, "colour": colour, "count": len(rows)} for rows, name, colour in groups],
    }
    return _pack(MAGIC, header, arrays)


def drawing_order(n: int) -> np.ndarray:
    """The order the browser draws a map's n points in: shuffled (fixed seed), so that no class is drawn
    entirely over another; (n,) rows."""
    return np.random.default_rng(SEED).permutation(n)


def pack_column(
    map_id: str,
    column_id: str,
    name: str,
    values: np.ndarray,
    *,
    categories: Sequence[tuple[str, str]] | None = None,
    scale: Sequence[tuple[float, str]] | None = None,
    value_range: tuple[float, float] | None = None,
) -> bytes:
    """The blob of one colouring column of map ``map_id``: ``values`` (N,) in the map's row order, either the
    place of each row's category in ``categories`` ((name, colour) pairs), or numbers drawn on the colour
    ``scale`` ((0, colour) ... (1, colour)) from ``value_range``'s low to its high (default: their finite
    minimum and maximum)."""
    values = np.asarray(values, dtype=np.float32)
    header: dict = {"format": 1, "map": map_id, "id": column_id, "name": name}
    if categories is not None:
        header.update(kind="category", categories=[{"name": n, "colour": c} for n, c in categories])
    else:
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        if value_range is not None:
            lo, hi = float(value_range[0]), float(value_range[1])
        header.update(kind="number", scale=[[float(t), c] for t, c in scale or ()], range=[lo, hi])
    return _pack(COLUMN_MAGIC, header, {"values": values})


def _pack(magic: bytes, header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    header = {**header, "arrays": {}}
    body, offset = [], 0
    for name, a in arrays.items():
        kind = {np.dtype("float32"): "f4", np.dtype("int32"): "i4", np.dtype("uint8"): "u1"}[a.dtype]
        header["arrays"][name] = {"offset": offset, "dtype": kind, "shape": list(a.shape)}
        raw = np.ascontiguousarray(a).astype(_DTYPES[kind], copy=False).tobytes()
        raw += b"\0" * (-len(raw) % 4)  # the next array starts on a 4-byte boundary too
        body.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(magic) + 4 + len(text)) % 4)  # the arrays start on a 4-byte boundary
    return magic + struct.pack("<I", len(text)) + text + b"".join(body)


def read_map(blob: bytes, magic: bytes = MAGIC) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and arrays of a blob made by :func:`pack_map` (or, with ``COLUMN_MAGIC``, :func:`pack_column`);
    a ValueError if it is not one."""
    if blob[: len(magic)] != magic or len(blob) < len(magic) + 4:
        raise ValueError("Not a Latent Explorer browser map.")
    (n,) = struct.unpack_from("<I", blob, len(magic))
    header = json.loads(blob[len(magic) + 4 : len(magic) + 4 + n])
    start = len(magic) + 4 + n
    arrays = {}
    for name, spec in header["arrays"].items():
        dtype = np.dtype(_DTYPES[spec["dtype"]])
        count = int(np.prod(spec["shape"]))
        at = start + spec["offset"]
        arrays[name] = np.frombuffer(blob, dtype=dtype, count=count, offset=at).reshape(spec["shape"])
    return header, arrays
