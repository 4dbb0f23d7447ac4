"""Project latent codes onto a 2-D map (UMAP, PCA or t-SNE) and map points of that map back to codes.

``LatentProjector`` (``estimator``) is a scikit-learn estimator: ``fit`` learns ``embedding_`` (N, 2)
from codes (N, latent_dim), ``transform`` places new codes, ``inverse_transform`` turns map positions
into codes, and ``fit_inverse_grid`` + ``inverse_lookup`` answer clicks in microseconds.

    params         defaults, allowed values and input checks
    umap_runtime   numba's on-disk cache, importing umap once, ``warm_up``
    store          the projector's ``.npz`` file (versioned; read with ``allow_pickle=False``)
    cache          a run's cached maps: ``projection_key``, ``map_path``, ``cached_projection``, ``find_map``
    sequence       UMAP maps of successive frames, each started from the previous layout (``umap_sequence``)

The names below are imported on first use, so ``import vae.projection`` stays light (no umap, numba,
scikit-learn or torch) and ``configure_numba_cache`` can run before any of them loads.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {  # name -> the module that defines it
    "LatentProjector": "estimator",
    "KNN_K": "estimator",
    "METHODS": "params",
    "METRICS": "params",
    "MIN_ROWS": "params",
    "FORMAT_VERSION": "store",
    "DEFAULT_NUMBA_CACHE": "umap_runtime",
    "configure_numba_cache": "umap_runtime",
    "import_umap": "umap_runtime",
    "warm_up": "umap_runtime",
    "background_thread": "umap_runtime",
    "projection_key": "cache",
    "map_path": "cache",
    "cached_projection": "cache",
    "find_map": "cache",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
