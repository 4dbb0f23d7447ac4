"""Paths through latent space: interpolation between two codes and per-dimension traversals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points on the segment a -> b at fractions t: (T, L) from a, b (L,) and t (T,)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[:, None]  # (T, 1)
    return (1.0 - t) * a + t * b


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation (Shoemake; White 2016 for generative models): (T, L).

    Moves along the great circle through a and b at a constant angular speed; the length changes
    smoothly from |a| to |b|. Falls back to ``lerp`` when a or b is (nearly) zero or the two are
    (nearly) parallel or opposite, where the great circle is undefined.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < eps or nb < eps:
        return lerp(a, b, t)
    omega = np.arccos(np.clip(a @ b / (na * nb), -1.0, 1.0))  # angle between a and b
    if np.sin(omega) < eps:
        return lerp(a, b, t)
    t = np.asarray(t, dtype=np.float64)[:, None]  # (T, 1)
    return (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, method: str = "lerp") -> np.ndarray:
    """``steps`` evenly spaced codes from a to b inclusive, (steps, L) float32; method "lerp" or "slerp"."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"Both endpoints must be latent vectors of one length; got shapes {a.shape} and {b.shape}.")
    if not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer of at least 2 (the two endpoints); got {steps!r}.")
    if method not in ("lerp", "slerp"):
        raise ValueError(f"method must be 'lerp' or 'slerp'; got {method!r}.")
    t = np.linspace(0.0, 1.0, int(steps))
    return (lerp if method == "lerp" else slerp)(a, b, t).astype(np.float32)


def traversal_latents(z: np.ndarray, dims: Sequence[int], steps: np.ndarray) -> np.ndarray:
    """Copies of ``z`` (L,) with dimension ``dims[r]`` swept over ``steps`` in row r: (len(dims) * len(steps), L)."""
    zs = np.repeat(np.asarray(z, dtype=np.float32)[None], len(dims) * len(steps), axis=0)
    for r, d in enumerate(dims):
        zs[r * len(steps) : (r + 1) * len(steps), d] = steps
    return zs
