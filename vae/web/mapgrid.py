"""A latent map packed for the browser: one binary blob the Explore map component (ui/mapview/map.js) reads.

The browser decodes whatever lies under the pointer: a map position goes through the projection's inverse
grid (bilinear, as ``LatentProjector.inverse_lookup(..., method="grid")``) and the browser decoder. So the
blob carries the points (grouped by label, one Plotly trace per group), the inverse grid, and for small
maps the items' own pixels, all sent once per map.

Layout, little-endian: 8 bytes ``MAGIC``, a uint32 header length ``n``, ``n`` bytes of UTF-8 JSON (padded
with spaces to a multiple of 4), then the arrays the header lists, each starting on a 4-byte boundary::

    {"format": 1, "id": ..., "n": N, "latent_dim": L, "item_shape": [C, H, W] | null,
     "groups": [{"name": "0", "colour": "#636efa", "start": 0, "count": 36}, ...],
     "arrays": {"xy": {"offset": bytes, "dtype": "f4", "shape": [N, 2]}, "rows": {... "i4", [N]},
                "index": {... "i4", [N]},
                "grid_x": {... "f4", [R]}, "grid_y": {... "f4", [R]}, "grid_codes": {... "f4", [R, R, L]},
                "pixels": {... "u1", [N, C*H*W]} (only with item pixels)}}

``xy`` and ``rows`` are in group order: trace g shows points ``start .. start + count - 1``, and ``rows[k]``
is point k's row in the codes the map was fitted on, ``index[k]`` its item number in its split.
``grid_codes[i, j]`` is the code at ``(grid_x[j], grid_y[i])``. Offsets count from the first byte after the header.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence

import numpy as np

MAGIC = b"LEMAP001"
FORMAT = 1
MAX_PIXEL_ITEMS = 10_000  # above this the items' pixels are not sent (the page shows an item on click)
_DTYPES = {"f4": "<f4", "i4": "<i4", "u1": "u1"}


def pack_map(
    map_id: str,
    embedding: np.ndarray,
    index: np.ndarray,
    groups: Sequence[tuple[np.ndarray, str, str]],
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    grid_codes: np.ndarray,
    pixels: np.ndarray | None = None,
) -> bytes:
    """The blob of one map.

    ``embedding`` (N, 2) map positions; ``index`` (N,) each point's item number in its split; ``groups``
    (rows, name, colour) per label, whose rows together cover 0..N-1 once; the inverse grid ``grid_x`` (R,),
    ``grid_y`` (R,), ``grid_codes`` (R, R, L); ``pixels`` (N, C, H, W) in [0, 1] (the items themselves, rows
    as in ``embedding``) or None.
    """
    embedding = np.asarray(embedding, dtype=np.float32)
    n = len(embedding)
    order = np.concatenate([np.asarray(rows, dtype=np.int64) for rows, _, _ in groups]) if groups else np.zeros(0)
    if len(order) != n or (n and not np.array_equal(np.sort(order), np.arange(n))):
        raise ValueError("The label groups must cover every point of the map exactly once.")
    grid_codes = np.asarray(grid_codes, dtype=np.float32)
    if grid_codes.shape[:2] != (len(grid_y), len(grid_x)):
        raise ValueError(f"The inverse grid is {grid_codes.shape[:2]}, not {len(grid_y)} x {len(grid_x)}.")
    arrays = {
        "xy": embedding[order],
        "rows": order.astype(np.int32),
        "index": np.asarray(index, dtype=np.int64)[order].astype(np.int32),
        "grid_x": np.asarray(grid_x, dtype=np.float32),
        "grid_y": np.asarray(grid_y, dtype=np.float32),
        "grid_codes": grid_codes,
    }
    item_shape = None
    if pixels is not None:
        pixels = np.asarray(pixels)
        if len(pixels) != n or pixels.ndim != 4:
            raise ValueError(f"Item pixels must be (N, C, H, W) with N = {n}; got {pixels.shape}.")
        item_shape = [int(v) for v in pixels.shape[1:]]
        arrays["pixels"] = np.round(np.clip(pixels[order], 0.0, 1.0) * 255).astype(np.uint8).reshape(n, -1)
    starts = np.cumsum([0] + [len(rows) for rows, _, _ in groups])
    header = {
        "format": FORMAT,
        "id": map_id,
        "n": n,
        "latent_dim": int(grid_codes.shape[2]),
        "item_shape": item_shape,
        "groups": [
            {"name": name, "colour": colour, "start": int(starts[g]), "count": len(rows)}
            for g, (rows, name, colour) in enumerate(groups)
        ],
        "arrays": {},
    }
    body, offset = [], 0
    for name, a in arrays.items():
        kind = {np.dtype("float32"): "f4", np.dtype("int32"): "i4", np.dtype("uint8"): "u1"}[a.dtype]
        header["arrays"][name] = {"offset": offset, "dtype": kind, "shape": list(a.shape)}
        raw = np.ascontiguousarray(a).astype(_DTYPES[kind], copy=False).tobytes()
        raw += b"\0" * (-len(raw) % 4)  # the next array starts on a 4-byte boundary too
        body.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(MAGIC) + 4 + len(text)) % 4)  # the arrays start on a 4-byte boundary
    return MAGIC + struct.pack("<I", len(text)) + text + b"".join(body)


def read_map(blob: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and arrays of a blob made by :func:`pack_map` (a ValueError if it is not one)."""
    if blob[: len(MAGIC)] != MAGIC or len(blob) < len(MAGIC) + 4:
        raise ValueError("Not a Latent Explorer browser map.")
    (n,) = struct.unpack_from("<I", blob, len(MAGIC))
    header = json.loads(blob[len(MAGIC) + 4 : len(MAGIC) + 4 + n])
    start = len(MAGIC) + 4 + n
    arrays = {}
    for name, spec in header["arrays"].items():
        dtype = np.dtype(_DTYPES[spec["dtype"]])
        count = int(np.prod(spec["shape"]))
        at = start + spec["offset"]
        arrays[name] = np.frombuffer(blob, dtype=dtype, count=count, offset=at).reshape(spec["shape"])
    return header, arrays
