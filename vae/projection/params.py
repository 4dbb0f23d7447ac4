"""The projection's parameters (defaults, allowed values) and the checks on them and on input arrays.

Every check raises a ``ValueError`` sentence: what was expected and what was received.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

METHODS = ("umap", "pca", "tsne")
LABELS = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}
METRICS = ("euclidean", "cosine", "manhattan")
MIN_ROWS = 5
# LatentProjector's constructor defaults, for code that must not import scikit-learn (a test holds them equal).
DEFAULTS: dict[str, Any] = {
    "method": "umap",
    "n_components": 2,
    "n_neighbors": 15,
    "min_dist": 0.1,
    "n_epochs": None,
    "random_state": 0,
    "perplexity": 30.0,
    "metric": "euclidean",
}


def _fail(name: str, allowed: str, got: Any) -> None:
    raise ValueError(f"LatentProjector.{name} must be {allowed}; got {got!r}.")


def _int_param(p: dict[str, Any], name: str, lo: int, hi: int) -> None:
    v = p[name]
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or not lo <= v <= hi:
        _fail(name, f"an integer from {lo} to {hi}", v)
    p[name] = int(v)


def _float_param(p: dict[str, Any], name: str, lo: float, hi: float) -> None:
    v = p[name]
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not lo <= float(v) <= hi:
        _fail(name, f"a number from {lo} to {hi}", v)
    p[name] = float(v)


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """Return ``params`` merged over the defaults, validated and normalised to JSON-able values."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown projection parameter(s) {unknown}; allowed: {sorted(DEFAULTS)}.")
    p = {**DEFAULTS, **params}
    if p["method"] not in METHODS:
        _fail("method", f"one of {METHODS}", p["method"])
    if p["metric"] not in METRICS:
        _fail("metric", f"one of {METRICS}", p["metric"])
    _int_param(p, "n_components", 2, 3)
    _int_param(p, "n_neighbors", 2, 200)
    _float_param(p, "min_dist", 0.0, 1.0)
    _float_param(p, "perplexity", 1.0, 500.0)
    if p["n_epochs"] is not None:
        _int_param(p, "n_epochs", 10, 10000)
    if p["random_state"] is not None:
        _int_param(p, "random_state", 0, 2**32 - 1)
    return p


def as_2d(X: Any, name: str, *, n_cols: int | None = None, min_rows: int = 1) -> np.ndarray:
    """Check that ``X`` is a finite numeric (rows, cols) array and return it as float64."""
    A = np.asarray(X)
    if A.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (rows x columns); got shape {A.shape}. Use x[None, :] for one row."
        )
    if A.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold numbers; got dtype {A.dtype}.")
    if A.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows; got {A.shape[0]}.")
    if n_cols is not None and A.shape[1] != n_cols:
        raise ValueError(f"{name} must have {n_cols} columns, like the fitted data; got {A.shape[1]}.")
    A = A.astype(np.float64, copy=False)
    if not np.isfinite(A).all():
        raise ValueError(f"{name} contains NaN or infinite values; drop or fix those rows first.")
    return A
