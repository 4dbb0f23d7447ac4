"""The ``.npz`` file of a fitted projector: what it holds, its version, and its reads and writes.

Layout (``FORMAT_VERSION`` 2)::

    format_version   0-d int
    params           0-d str, the validated constructor parameters as JSON
    metadata         0-d str, a JSON object of strings (or null) that the writer files with the map
                     (``vae.projection.cache`` stores the checkpoint and split there)
    embedding_       (N, n_components) float32
    codes_           (N, latent_dim) float32
    components_ mean_ explained_variance_ratio_     PCA only
    grid_x_ grid_y_ (R,), grid_codes_ (R, R, latent_dim)    when an inverse grid was built

Version 1 had no ``metadata``; files of another version are refused (a cache fits them again).
Files are written atomically and read with ``allow_pickle=False``: nothing here ever unpickles.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..runs.fileio import atomic_path
from ..runs.guard import UnsafeFile, real_folder, regular_file
from .params import check_params

MAX_MAP = 4 * 2**30  # bytes: a map of every one of 737,280 items with its codes is about 70 MB

FORMAT_VERSION = 2
HEADER = ("format_version", "params", "metadata")
ARRAYS = (
    "embedding_",
    "codes_",
    "components_",
    "mean_",
    "explained_variance_ratio_",
    "grid_x_",
    "grid_y_",
    "grid_codes_",
)
Metadata = dict[str, str | None]
T = TypeVar("T")


def write(path: str | Path, params: dict[str, Any], fitted: dict[str, np.ndarray], metadata: Metadata) -> Path:
    """Write a projector's validated ``params``, its ``fitted`` arrays (names in ``ARRAYS``) and ``metadata``."""
    path = Path(path)
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "params": np.array(json.dumps(params, sort_keys=True)),
        "metadata": np.array(json.dumps(_checked_metadata(metadata), sort_keys=True)),
        **{name: fitted[name] for name in ARRAYS if name in fitted},
    }
    if not real_folder(path.parent):  # a link or a file where the maps' folder should be: never written through
        path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    return path


def read(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], Metadata]:
    """(params, fitted arrays, metadata) of a projection file, every array checked against the others.

    ``FileNotFoundError`` if there is no file; ``ValueError`` (a sentence) if it is not a valid one.
    """
    return _read(path, _parse, names=None)


def read_header(path: str | Path) -> tuple[dict[str, Any], Metadata]:
    """(params, metadata) of a projection file, without reading its arrays; errors as ``read``."""
    return _read(path, _header, names=HEADER)


# ----------------------------------------------------------------------------- parsing


def _read(path: str | Path, parse: Callable[[dict[str, np.ndarray]], T], names: Iterable[str] | None) -> T:
    path = Path(path)
    try:
        real_folder(path.parent)
        if regular_file(path, MAX_MAP) is None:
            raise FileNotFoundError(f"No projection file at {path}.")
    except UnsafeFile as exc:
        raise ValueError(f"{path} is not a valid projection file ({exc}).") from None
    try:
        return parse(_entries(path, names))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a valid projection file ({exc}); delete it and fit again.") from exc


def _entries(path: Path, names: Iterable[str] | None) -> dict[str, np.ndarray]:
    """The arrays ``names`` (those present; all if None) of an ``.npz``, read with ``allow_pickle=False``."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with data:
            wanted = data.files if names is None else [name for name in names if name in data.files]
            return {name: data[name] for name in wanted}  # an object array raises here
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from exc


def _checked_metadata(metadata: Any) -> Metadata:
    ok = isinstance(metadata, dict) and all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in metadata.items()
    )
    if not ok:
        raise ValueError(f"Projection metadata must map names to strings or None; got {metadata!r}.")
    return metadata


def _header(a: dict[str, np.ndarray]) -> tuple[dict[str, Any], Metadata]:
    version = int(a["format_version"])
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}, expected {FORMAT_VERSION}")
    return check_params(json.loads(str(a["params"]))), _checked_metadata(json.loads(str(a["metadata"])))


def _parse(a: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, np.ndarray], Metadata]:
    params, metadata = _header(a)
    emb, codes = a["embedding_"], a["codes_"]
    if emb.ndim != 2 or codes.ndim != 2 or len(emb) != len(codes) or emb.shape[1] != params["n_components"]:
        raise ValueError(f"embedding {emb.shape} and codes {codes.shape} do not match")
    d = codes.shape[1]
    fitted = {
        "embedding_": np.ascontiguousarray(emb, dtype=np.float32),
        "codes_": np.ascontiguousarray(codes, dtype=np.float32),
    }
    if params["method"] == "pca":
        fitted.update(
            components_=a["components_"], mean_=a["mean_"], explained_variance_ratio_=a["explained_variance_ratio_"]
        )
        if fitted["components_"].shape != (params["n_components"], d) or fitted["mean_"].shape != (d,):
            raise ValueError("PCA components do not match the codes")
    if "grid_codes_" in a:
        gx, gy, grid = a["grid_x_"], a["grid_y_"], a["grid_codes_"]
        if grid.shape != (len(gy), len(gx), d) or len(gx) < 2:
            raise ValueError(f"grid of shape {grid.shape} does not match its axes")
        fitted.update(grid_x_=gx, grid_y_=gy, grid_codes_=grid)
    for name, value in a.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"{name} holds non-finite values")
    return params, fitted, metadata
