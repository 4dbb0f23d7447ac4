"""Turning decoded arrays into pictures: grids and PNG bytes (Pillow)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def to_uint8_hwc(x: np.ndarray) -> np.ndarray:
    """One image (C, H, W) or (H, W) with values in [0, 1] -> uint8 (H, W) or (H, W, 3)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[0] if x.shape[0] == 1 else np.transpose(x, (1, 2, 0))  # (H, W) or (H, W, C)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def make_grid(images: np.ndarray, ncol: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one (C, rows*(H+pad)-pad, ncol*(W+pad)-pad) image."""
    images = np.asarray(images, dtype=np.float32)
    n, c, h, w = images.shape
    ncol = max(1, min(ncol, n))
    nrow = -(-n // ncol)
    grid = np.full((c, nrow * (h + pad) - pad, ncol * (w + pad) - pad), fill, dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[:, r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = images[i]
    return grid


PNG_COMPRESSION = 1  # zlib level: a 9x16 traversal grid took 4.1 ms here against 18.6 ms at Pillow's 6, 18 % larger


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    """PNG of one image (C, H, W) or (H, W) in [0, 1], enlarged ``scale`` times (nearest neighbour).

    Compressed fast (``PNG_COMPRESSION``): the pages make one per interaction, and enlarged pixel art
    compresses well at any level.
    """
    buf = io.BytesIO()
    Image.fromarray(_enlarged(image, scale)).save(buf, format="PNG", compress_level=PNG_COMPRESSION)
    return buf.getvalue()


def gif_bytes(frames: np.ndarray, scale: int = 1, fps: float = 8.0) -> bytes:
    """An animated GIF (looping) of frames (N, C, H, W) or (N, H, W) in [0, 1], each enlarged ``scale`` times
    (nearest neighbour). Greys stay exact (256 levels); colour frames get an adaptive palette each."""
    pictures = []
    for frame in frames:
        image = Image.fromarray(_enlarged(frame, scale))
        pictures.append(image if image.mode == "L" else image.convert("P", palette=Image.Palette.ADAPTIVE))
    buf = io.BytesIO()
    pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0)
    return buf.getvalue()


def _enlarged(image: np.ndarray, scale: int) -> np.ndarray:
    """One image in [0, 1] as uint8 (H, W) or (H, W, 3), ``scale`` times larger (nearest neighbour)."""
    arr = to_uint8_hwc(image)
    return np.repeat(np.repeat(arr, scale, axis=0), scale, axis=1) if scale > 1 else arr
