"""Decoding for display, PNGs, and the one rule for enlarging small images."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from vae.data import Dataset
from vae.images import make_grid, png_bytes
from vae.models import VAE


def enlargement(shape: Sequence[int] | int, pixels: int, at_least: int = 1) -> int:
    """The whole-number scale that makes an image of ``shape`` (…, H, W) or side about ``pixels`` wide."""
    side = shape if isinstance(shape, int) else max(shape[-2:])
    return max(at_least, pixels // max(1, side))


def decode(model: VAE, z: np.ndarray, y=None) -> np.ndarray:
    """Decode latent rows (N, L) -> data space (N, *input_shape), without gradients; a conditional VAE with the
    labels ``y``, else the class chosen in the sidebar."""
    from .conditional import chosen

    return model.decode_numpy(z, chosen(model) if y is None else y)


def picture(item: np.ndarray, scale: int = 8) -> bytes:
    """PNG of one decoded or original image (C, H, W), enlarged."""
    return png_bytes(item, scale=scale)


def grid_picture(items: np.ndarray, ncol: int, scale: int = 3) -> bytes:
    """PNG of a grid of images (N, C, H, W)."""
    return png_bytes(make_grid(items, ncol), scale=scale)


def labelled_grid(png: bytes, rows: Sequence[str], columns: Sequence[str], title: str = "") -> bytes:
    """The grid ``png`` (len(rows) × len(columns) equal cells) with each row's and column's label drawn beside it,
    and a title: a downloaded picture says what it shows."""
    from PIL import ImageDraw, ImageFont

    grid = Image.open(io.BytesIO(png)).convert("RGB")
    font = ImageFont.load_default()
    left = 8 + max((int(font.getlength(r)) for r in rows), default=0)
    top = 36 if title else 20
    out = Image.new("RGB", (grid.width + left + 4, grid.height + top + 4), "white")
    out.paste(grid, (left, top))
    draw = ImageDraw.Draw(out)
    if title:
        draw.text((4, 4), title, fill="black", font=font)
    cell_h, cell_w = grid.height / max(1, len(rows)), grid.width / max(1, len(columns))
    for i, r in enumerate(rows):
        draw.text((4, top + (i + 0.5) * cell_h - 6), r, fill="black", font=font)
    for j, c in enumerate(columns):
        draw.text((left + (j + 0.5) * cell_w - font.getlength(c) / 2, top - 14), c, fill="black", font=font)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def label_name(ds: Dataset, y: int | None) -> str:
    if y is None:
        return ""
    return ds.label_names[y] if ds.label_names and 0 <= y < len(ds.label_names) else str(y)


def feature_names(ds: Dataset, n: int) -> list[str]:
    """The names of a vector's ``n`` features (x0, x1, … where the data has none)."""
    return list(ds.feature_names) if ds.feature_names and len(ds.feature_names) == n else [f"x{i}" for i in range(n)]


def show_item(ds: Dataset, x: np.ndarray, caption: str, pixels: int = 224) -> None:
    """An image, enlarged; a vector as a bar chart in its original units."""
    if ds.is_image:
        scale = enlargement(ds.item_shape, pixels, at_least=2)  # a fixed width: a long caption would stretch it
        st.image(picture(x, scale=scale), caption=caption, width=ds.item_shape[-1] * scale, output_format="PNG")
    else:
        st.caption(caption)
        st.bar_chart(pd.Series(ds.to_original_units(x), index=feature_names(ds, len(x))), height=200)


def enlarged_png(path: Path | None, min_width: int = 320) -> bytes | None:
    """A run's picture file, enlarged with nearest-neighbour pixels so small images stay crisp."""
    if path is None:
        return None
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _enlarged_png(str(path), stamp, min_width)


@st.cache_data(max_entries=16, show_spinner=False)
def _enlarged_png(path: str, stamp: int, min_width: int) -> bytes | None:
    try:
        img = Image.open(io.BytesIO(Path(path).read_bytes()))
        img.load()
    except (OSError, ValueError):
        return None
    k = -(-min_width // img.width)  # the smallest scale reaching min_width
    if k > 1:
        img = img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
