"""A run's cached maps: their keys, their files, and finding one. vae.projection owns this layout.

The folder is ``vae.runs.places.projections_dir(run_dir)``; in it, map ``key`` is ``<key>.npz`` (a projector
file, ``vae.projection.store``) whose metadata names the checkpoint and split its codes came from.
A file is reused only if its parameters, metadata, codes and grid all match; anything else (another
version, a corrupt file) is fitted again and overwritten. Beside the maps, ``codes-<key>.npy``: a large split's
codes (μ and log σ²), kept so that a map of 737,280 items is not encoded again on every visit.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..progress import Progress, part, report
from ..runs.fileio import atomic_path
from ..runs.guard import UnsafeFile, read_bytes, real_folder
from ..runs.places import projections_dir
from . import store
from .estimator import LatentProjector
from .params import MIN_ROWS, as_2d, check_params

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_log = logging.getLogger(__name__)


def projection_key(checkpoint_id: str, params: dict[str, Any], n_points: int, split: str) -> str:
    """A stable short name for a projection: ``"<method>-<16 hex digits>"`` (defaults filled in first)."""
    full = check_params(params)
    blob = json.dumps(
        {
            "v": store.FORMAT_VERSION,
            "checkpoint": str(checkpoint_id),
            "params": full,
            "n": int(n_points),
            "split": str(split),
        },
        sort_keys=True,
    )
    return f"{full['method']}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def _cache_file(cache_dir: str | Path, key: str) -> Path:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ValueError(f"Projection cache key must be letters, digits, '_', '-' or '.'; got {key!r}.")
    return Path(cache_dir) / f"{key}.npz"


def map_path(run_dir: str | Path, key: str) -> Path:
    """The cache file of map ``key`` (from ``projection_key``) of the run in ``run_dir``; it may not exist."""
    return _cache_file(projections_dir(run_dir), key)


def unusable(folder: str | Path) -> str | None:
    """Why maps cannot be kept in ``folder`` (a link, a file, not writable), or None when they can."""
    folder = Path(folder)
    try:
        if not real_folder(folder):
            folder.mkdir(parents=True)
    except (UnsafeFile, OSError) as e:
        return str(e) if isinstance(e, UnsafeFile) else f"its folder cannot be made ({e.strerror or e})"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "the run's folder is read-only"
    return None


# ----------------------------------------------------------------------------- fit once, then load


def _reusable(
    path: Path, params: dict[str, Any], metadata: store.Metadata, codes: np.ndarray, grid: int | None
) -> LatentProjector | None:
    """The projector in ``path`` if it is exactly the map asked for, else None (a broken file is logged)."""
    try:
        if store.read_header(path) != (params, metadata):
            return None
        proj = LatentProjector.load(path)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        _log.warning("Ignoring unreadable projection cache %s: %s", path, exc)
        return None
    grid_ok = grid is None or (hasattr(proj, "grid_codes_") and len(proj.grid_x_) == grid)
    return proj if grid_ok and np.array_equal(proj.codes_, codes) else None


def cached_projection(
    cache_dir: str | Path,
    key: str,
    codes: np.ndarray,
    params: dict[str, Any],
    progress: Progress | None = None,
    grid_resolution: int | None = 32,
    *,
    checkpoint: str | None = None,
    split: str | None = None,
    fit: bool = True,
    start: np.ndarray | None = None,
) -> LatentProjector | None:
    """Load ``cache_dir/<key>.npz`` if it holds this projection of these codes, else fit, save and return it
    (with ``fit=False``: else return None).

    The inverse grid is built too when ``grid_resolution`` is set (UMAP/PCA 2-D maps only). ``checkpoint``
    and ``split`` name where the codes came from; they are stored in the file (``find_map`` reads them).
    A cached file is used only if its parameters, checkpoint, split, codes and grid resolution all
    match; a corrupt one, or one of an older format, is rebuilt. ``start``: an earlier map's layout of the same
    items to start from (``LatentProjector.fit``); such a map needs a key of its own.
    """
    path = _cache_file(cache_dir, key)
    full = check_params(params)
    metadata = {"checkpoint": checkpoint, "split": split}
    if not all(v is None or isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"checkpoint and split must be strings (or None); got {checkpoint!r} and {split!r}.")
    codes32 = np.ascontiguousarray(as_2d(codes, "Codes", min_rows=MIN_ROWS), dtype=np.float32)
    wants_grid = grid_resolution is not None and full["method"] != "tsne" and full["n_components"] == 2
    proj = _reusable(path, full, metadata, codes32, grid_resolution if wants_grid else None)
    if proj is not None:
        report(progress, 1.0, "loaded the cached map")
        return proj
    if not fit:
        return None
    proj = LatentProjector(**full).fit(codes32, progress=part(progress, 0.0, 0.8 if wants_grid else 1.0), start=start)
    if wants_grid:
        proj.fit_inverse_grid(grid_resolution, progress=part(progress, 0.8, 1.0))
    try:
        proj.save(path, metadata=metadata)
        prune(Path(cache_dir), keep=path)
    except OSError as exc:  # a full disk: the map is used all the same, kept only in memory
        _log.warning("Could not keep the map %s: %s", path, exc)
    return proj


MAX_MAPS = 12  # map files kept in a run's maps folder
KEEP_CHECKPOINTS = 2  # maps of only the latest checkpoints are kept (a watched training writes one per epoch)


def prune(folder: Path, keep: Path | None = None) -> int:
    """Delete the maps of all but the ``KEEP_CHECKPOINTS`` most recent checkpoints, then all but the newest
    ``MAX_MAPS`` maps (never ``keep``); returns how many went. A training watched on Explore made 68 in 90 s."""
    dated = []
    for path in folder.glob("*.npz"):
        try:
            dated.append((path.stat().st_mtime_ns, path))
        except OSError:
            continue
    dated.sort(reverse=True)
    recent: list[str | None] = []
    gone = 0
    for i, (_, path) in enumerate(dated):
        try:
            checkpoint = store.read_header(path)[1].get("checkpoint")
        except (ValueError, FileNotFoundError):
            checkpoint = None
        if checkpoint not in recent and len(recent) < KEEP_CHECKPOINTS:
            recent.append(checkpoint)
        if path != keep and (i >= MAX_MAPS or checkpoint not in recent):
            path.unlink(missing_ok=True)
            gone += 1
    return gone


# ----------------------------------------------------------------------------- finding a map


def find_map(run_dir: str | Path, checkpoint: str) -> Path | None:
    """The most recently written map file of the run in ``run_dir`` made from ``checkpoint``'s codes, or None.

    Reads only each file's header (parameters and metadata), newest first; files of another format
    version, unreadable ones and maps saved without a checkpoint are skipped.
    """
    if not isinstance(checkpoint, str) or not checkpoint:
        raise ValueError(f"find_map needs a checkpoint id (a non-empty string); got {checkpoint!r}.")
    folder = projections_dir(run_dir)
    try:
        if not real_folder(folder):
            return None
    except UnsafeFile:
        return None
    dated = []
    for path in folder.glob("*.npz"):
        try:
            dated.append((path.stat().st_mtime_ns, path.name, path))
        except OSError:  # removed meanwhile
            continue
    for *_, path in sorted(dated, reverse=True):
        try:
            _, metadata = store.read_header(path)
        except (ValueError, FileNotFoundError):
            continue
        if metadata.get("checkpoint") == checkpoint:
            return path
    return None


# ----------------------------------------------------------------------------- a large split's codes, kept

CODES_KEPT = 2  # files of codes kept in a run's maps folder: the newest (a large split's, of the latest checkpoints)
MAX_CODES = 2 * 2**30  # bytes: 737,280 items' μ and log σ² at 20 dimensions are 118 MB


def codes_path(folder: str | Path, checkpoint: str, split: str, n: int) -> Path:
    """Where the codes of ``n`` items of ``split`` (its rows ``0 .. n-1`` or a seeded sample: the key names
    the count) from ``checkpoint`` are kept in a run's maps folder ``folder``."""
    blob = json.dumps({"checkpoint": str(checkpoint), "split": str(split), "n": int(n)}, sort_keys=True)
    return Path(folder) / f"codes-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.npy"


def read_codes(path: str | Path, n: int, latent_dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """μ and log σ² (each (n, latent_dim) float32) from a codes file, or None when there is none or it holds
    anything else (a link, a pipe, another shape, non-finite values): the codes are then encoded again."""
    try:
        real_folder(Path(path).parent)
        both = np.load(io.BytesIO(read_bytes(path, MAX_CODES)), allow_pickle=False)
    except (OSError, ValueError, EOFError):  # UnsafeFile is a ValueError
        return None
    if not isinstance(both, np.ndarray) or both.shape != (2, n, latent_dim) or both.dtype != np.float32:
        return None
    return (both[0], both[1]) if np.isfinite(both).all() else None


def write_codes(path: str | Path, mu: np.ndarray, logvar: np.ndarray) -> None:
    """Keep μ and log σ² in ``path`` (atomically), and only the ``CODES_KEPT`` newest codes files beside it."""
    path = Path(path)
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as f:
        np.save(f, np.stack([mu, logvar]).astype(np.float32, copy=False), allow_pickle=False)
    others = []
    for other in path.parent.glob("codes-*.npy"):
        with contextlib.suppress(OSError):
            others.append((other.stat().st_mtime_ns, other))
    for _, other in sorted(others, reverse=True)[CODES_KEPT:]:
        if other != path:
            other.unlink(missing_ok=True)
