"""Paths through latent space: interpolation between two codes, per-dimension traversals, and attribute
vectors (the difference of two groups' mean codes: two classes, or two selections on a map) with analogies."""

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


def group_mean(codes: np.ndarray, rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """The mean code (L,) of ``codes[rows]``; ValueError (a sentence) for an empty group."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if not len(rows):
        raise ValueError("A group needs at least one item: select some points first.")
    return np.asarray(codes, dtype=np.float64)[rows].mean(axis=0)


def attribute_vector(codes: np.ndarray, rows_from, rows_to) -> np.ndarray:
    """The direction from one group's mean code to another's (L,): mean(codes[rows_to]) - mean(codes[rows_from]).

    With labels the groups are two classes (White 2016's attribute vectors); without, two selections on the map.
    """
    return (group_mean(codes, rows_to) - group_mean(codes, rows_from)).astype(np.float32)


def class_means(codes: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Each label's mean code: {label: (L,)}."""
    labels = np.asarray(labels)
    return {int(c): group_mean(codes, np.flatnonzero(labels == c)).astype(np.float32) for c in np.unique(labels)}


def along(z: np.ndarray, direction: np.ndarray, strengths: Sequence[float] | np.ndarray) -> np.ndarray:
    """``z + t * direction`` for each t in ``strengths``: (len(strengths), L) float32."""
    z, direction = np.asarray(z, dtype=np.float64), np.asarray(direction, dtype=np.float64)
    if z.shape != direction.shape or z.ndim != 1:
        raise ValueError(f"The code and the direction must be latent vectors of one length; got {z.shape} and "
                         f"{direction.shape}.")  # fmt: skip
    t = np.asarray(strengths, dtype=np.float64)[:, None]
    return (z + t * direction).astype(np.float32)


def analogy(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The analogy ``a - b + c`` (L,): what c becomes when it changes as b changed into a
    ("king - man + woman": a king, without what makes a man, with what makes a woman)."""
    a, b, c = (np.asarray(v, dtype=np.float64) for v in (a, b, c))
    if not (a.shape == b.shape == c.shape and a.ndim == 1):
        raise ValueError(f"The three codes must be latent vectors of one length; got {a.shape}, {b.shape}, {c.shape}.")
    return (a - b + c).astype(np.float32)
