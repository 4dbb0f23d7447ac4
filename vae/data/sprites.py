"""Procedurally generated dSprites-style sprites (square, ellipse, heart) with known factors: shape,
scale, rotation, x and y, drawn from a fixed grid of values with a seed.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import DataConfig
from ..progress import Progress, counted
from .base import _Raw

SPRITE_SHAPES = ["square", "ellipse", "heart"]
SPRITE_FACTORS = ["shape", "scale", "rotation", "x", "y"]
SPRITE_SCALES = np.linspace(0.5, 1.0, 6)
SPRITE_ROTATIONS = np.arange(40) * (2 * np.pi / 40)
SPRITE_POSITIONS = np.linspace(0.0, 1.0, 32)


def _load_sprites(cfg: DataConfig, progress: Progress | None, max_bytes: int) -> _Raw:
    size, count = cfg.size or 32, cfg.count or 20_000
    x, factors = generate_sprites(count, size, cfg.split_seed, progress)
    return _Raw(
        x,
        factors[:, 0].astype(np.int64),
        list(SPRITE_SHAPES),
        f"{count:,} generated {size}×{size} sprites (shape, scale, rotation, x, y)",
        f"generated (seed {cfg.split_seed})",
        factors=factors,
        factor_names=list(SPRITE_FACTORS),
    )


SPRITE_GRIDS = (np.arange(len(SPRITE_SHAPES), dtype=np.float64), SPRITE_SCALES, SPRITE_ROTATIONS, SPRITE_POSITIONS,
                SPRITE_POSITIONS)  # each factor's values, in SPRITE_FACTORS order  # fmt: skip


def sprite_factors(classes: np.ndarray) -> np.ndarray:
    """Factor classes (n, 5), indices into ``SPRITE_GRIDS``, -> factor values (n, 5): shape index, scale,
    rotation (radians), x and y (in [0, 1])."""
    return np.column_stack([grid[c] for grid, c in zip(SPRITE_GRIDS, np.asarray(classes).T, strict=True)])


def render_sprite_classes(classes: np.ndarray, size: int) -> np.ndarray:
    """The sprites of factor classes (n, 5): (n, 1, size, size) float32 in {0, 1} (the data's own renderer, for
    scores that need batches with a factor held fixed)."""
    return _render_sprites(sprite_factors(classes), size)[:, None]


def generate_sprites(
    count: int, size: int = 32, seed: int = 0, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` binary sprites ``(count, 1, size, size)`` and their factor values ``(count, 5)``.

    Factor combinations are drawn without replacement (while they last) from shape × scale ×
    rotation × x × y with ``seed``; factor columns are shape index, scale, rotation (radians),
    x and y (in [0, 1]). Rendering is vectorised over chunks of images.
    """
    dims = tuple(len(g) for g in SPRITE_GRIDS)
    flat = np.random.default_rng(seed).choice(math.prod(dims), count, replace=count > math.prod(dims))
    factors = sprite_factors(np.column_stack(np.unravel_index(flat, dims)))  # (count, 5)
    images = np.empty((count, 1, size, size), np.float32)
    chunk = max(1, (1 << 21) // (size * size))
    for start in range(0, count, chunk):
        images[start : start + chunk, 0] = _render_sprites(factors[start : start + chunk], size)
        counted(progress, min(start + chunk, count), count, "generating sprites")
    return images, factors


def _render_sprites(f: np.ndarray, size: int) -> np.ndarray:
    """Rasterise factor rows ``(n, 5)`` into ``(n, size, size)`` float32 masks in {0, 1}."""
    n = len(f)
    radius = (0.18 * size * f[:, 1]).astype(np.float32)[:, None, None]  # (n, 1, 1)
    margin = 1.2 * 0.18 * size
    grid = np.arange(size, dtype=np.float32) + 0.5
    cx = (margin + f[:, 3] * (size - 2 * margin)).astype(np.float32)
    cy = (margin + f[:, 4] * (size - 2 * margin)).astype(np.float32)
    dx = grid[None, None, :] - cx[:, None, None]  # (n, 1, size)
    dy = grid[None, :, None] - cy[:, None, None]  # (n, size, 1)
    cos = np.cos(f[:, 2]).astype(np.float32)[:, None, None]
    sin = np.sin(f[:, 2]).astype(np.float32)[:, None, None]
    out = np.empty((n, size, size), np.float32)
    for shape in range(len(SPRITE_SHAPES)):
        m = f[:, 0] == shape
        if not m.any():
            continue
        u = (cos[m] * dx[m] + sin[m] * dy[m]) / radius[m]  # (k, size, size), object frame
        v = (cos[m] * dy[m] - sin[m] * dx[m]) / radius[m]
        if shape == 0:  # square
            inside = np.maximum(np.abs(u), np.abs(v)) <= 0.8
        elif shape == 1:  # ellipse, 2:1
            inside = u * u + 4.0 * v * v <= 1.0
        else:  # heart: (a² + b² - 1)³ - a² b³ <= 0, point down when unrotated
            a, b = 1.1 * u, 0.12 - 1.1 * v
            q = a * a + b * b - 1.0
            inside = q * q * q - a * a * b * b * b <= 0.0
        out[m] = inside
    return out
