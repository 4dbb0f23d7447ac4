"""Project latent codes onto a 2-D map (UMAP, PCA or t-SNE) and map points of that map back to codes.

``LatentProjector`` is a scikit-learn style estimator: ``fit`` learns ``embedding_`` (N, 2) from codes
(N, latent_dim); ``transform`` places new codes; ``inverse_transform`` turns map positions into codes.
A click on the map needs an answer in well under a millisecond, but umap-learn's ``inverse_transform``
costs ~1.5-3 s per call whatever the number of points (it re-triangulates the whole embedding), so
``fit_inverse_grid`` inverts a whole grid once and ``inverse_lookup`` interpolates in it.

Projectors are saved as ``.npz`` files read with ``allow_pickle=False``; nothing here ever unpickles.
umap is imported lazily (it costs seconds), after ``configure_numba_cache`` has pointed numba's
on-disk cache at a persistent folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import numbers
import os
import re
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .progress import Progress, part, report

METHODS = ("umap", "pca", "tsne")
_LABELS = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}
METRICS = ("euclidean", "cosine", "manhattan")
MIN_ROWS = 5
KNN_K = 10
FORMAT_VERSION = 1
DEFAULT_NUMBA_CACHE = Path("~/.cache/latent-explorer/numba")
_DEFAULTS: dict[str, Any] = {
    "method": "umap",
    "n_components": 2,
    "n_neighbors": 15,
    "min_dist": 0.1,
    "n_epochs": None,
    "random_state": 0,
    "perplexity": 30.0,
    "metric": "euclidean",
}
_TSNE_NO_TRANSFORM = "t-SNE cannot place new points (it has no transform); use UMAP or PCA to map new codes."
_TSNE_NO_INVERSE = "t-SNE has no inverse; use UMAP or PCA (or inverse_lookup, which averages nearby codes)."
_OPTIONAL_ARRAYS = ("grid_x_", "grid_y_", "grid_codes_", "components_", "mean_", "explained_variance_ratio_")
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- numba / umap


def configure_numba_cache(path: str | Path | None = None) -> Path:
    """Point numba's on-disk cache (``NUMBA_CACHE_DIR``) at a persistent folder and return it.

    An existing ``NUMBA_CACHE_DIR`` is left alone. Otherwise the folder is ``path``, else the
    ``LATENT_EXPLORER_NUMBA_CACHE`` environment variable, else ``~/.cache/latent-explorer/numba``.
    Call it before umap is imported (``import_umap`` does); if numba is already imported its
    configuration is reloaded so functions compiled from now on are cached there.
    """
    current = os.environ.get("NUMBA_CACHE_DIR")
    if current:
        return Path(current)
    chosen = path or os.environ.get("LATENT_EXPLORER_NUMBA_CACHE") or DEFAULT_NUMBA_CACHE
    folder = Path(chosen).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:
        from numba.core import config

        config.reload_config()
    return folder


_UMAP_READY = False
_UMAP_LOCK = threading.Lock()


def import_umap():
    """Import umap once, with numba's disk cache configured and extended to umap's own kernels."""
    global _UMAP_READY
    with _UMAP_LOCK:  # warm_up may run in a background thread while a page fits
        if not _UMAP_READY:
            configure_numba_cache()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ImportWarning)  # "Tensorflow not installed; ParametricUMAP ..."
                import pynndescent
                import umap

            _enable_disk_cache(umap, pynndescent)
            _UMAP_READY = True
    import umap

    return umap


def _enable_disk_cache(*packages) -> int:
    """Turn on numba's disk cache for the jitted functions of ``packages`` that were compiled without it.

    umap-learn decorates almost none of its kernels with ``cache=True``, so every new process compiles
    them again; caching them cut the first 10k fit of a new process from ~28-34 s to ~15-17 s here,
    with bit-identical embeddings. What remains is mostly pynndescent's ``nn_descent``, which numba
    refuses to cache ("uses dynamic globals"). Best effort: numba internals that differ are skipped.
    """
    try:
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - numba internals moved
        return 0
    enabled = 0
    for package in packages:
        prefix = package.__name__ + "."
        for name, module in list(sys.modules.items()):
            if not name.startswith(prefix) or module is None:
                continue
            for obj in list(vars(module).values()):
                if isinstance(obj, Dispatcher) and obj.__module__ == name and isinstance(obj._cache, NullCache):
                    with contextlib.suppress(Exception):
                        obj.enable_caching()
                        enabled += 1
    return enabled


@contextlib.contextmanager
def _quiet_umap():
    """Silence umap's user warnings and numba's "cannot cache nn_descent" notes (expected; harmless)."""
    from numba.core.errors import NumbaWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", NumbaWarning)
        yield


# ----------------------------------------------------------------------------- validation


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


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    """Return ``params`` merged over the defaults, validated and normalised to JSON-able values."""
    unknown = sorted(set(params) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown projection parameter(s) {unknown}; allowed: {sorted(_DEFAULTS)}.")
    p = {**_DEFAULTS, **params}
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


def _as_2d(X: Any, name: str, *, n_cols: int | None = None, min_rows: int = 1) -> np.ndarray:
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


# ----------------------------------------------------------------------------- the estimator


class LatentProjector:
    """Fit a 2-D (or 3-D) map of latent codes with UMAP, PCA or t-SNE; map positions back to codes.

    Fitted attributes: ``embedding_`` (N, n_components) float32, ``codes_`` (N, latent_dim) float32,
    ``n_features_in_``, ``transform_is_approximate_``; for PCA ``components_``, ``mean_``,
    ``explained_variance_ratio_``; after ``fit_inverse_grid``: ``grid_x_``, ``grid_y_`` (R,) and
    ``grid_codes_`` (R, R, latent_dim), where ``grid_codes_[i, j]`` is the code at
    ``(grid_x_[j], grid_y_[i])``.

    ``n_neighbors``, ``min_dist`` and ``n_epochs`` (None: umap's default; smaller for quick previews) are
    UMAP's; ``perplexity`` is t-SNE's; ``metric`` (euclidean, cosine, manhattan) applies to both; PCA
    uses only ``n_components``. A ``random_state`` makes results repeatable (and UMAP single-threaded).
    """

    def __init__(
        self,
        method: str = "umap",
        n_components: int = 2,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        n_epochs: int | None = None,
        random_state: int | None = 0,
        perplexity: float = 30.0,
        metric: str = "euclidean",
    ) -> None:
        self.method = method
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self.random_state = random_state
        self.perplexity = perplexity
        self.metric = metric

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as a dict."""
        return {name: getattr(self, name) for name in _DEFAULTS}

    # -- fitting

    def fit(self, Z: np.ndarray, progress: Progress | None = None) -> LatentProjector:
        """Learn the map of the codes ``Z`` (N, latent_dim); returns ``self``."""
        p = _check_params(self.get_params())
        Z = _as_2d(Z, "Codes", min_rows=MIN_ROWS)
        n, d = Z.shape
        if p["method"] == "umap" and n <= p["n_neighbors"]:
            raise ValueError(f"UMAP with n_neighbors={p['n_neighbors']} needs more codes than that; got {n}.")
        if p["method"] == "tsne" and n <= p["perplexity"]:
            raise ValueError(f"t-SNE with perplexity={p['perplexity']} needs more codes than that; got {n}.")
        if p["method"] == "pca" and d < p["n_components"]:
            raise ValueError(f"PCA to {p['n_components']} components needs codes with that many dimensions; got {d}.")
        for name in ("embedding_", *_OPTIONAL_ARRAYS):
            self.__dict__.pop(name, None)
        self._model = None
        self._embedding_tree = self._code_tree = self._delaunay = None
        self.codes_ = np.ascontiguousarray(Z, dtype=np.float32)  # (N, latent_dim)
        self.n_features_in_ = d
        self.transform_is_approximate_ = False
        label = _LABELS[p["method"]]
        report(progress, 0.0, f"fitting {label} on {n:,} codes")
        embedding = getattr(self, f"_fit_{p['method']}")(p)
        self.embedding_ = np.ascontiguousarray(embedding, dtype=np.float32)  # (N, n_components)
        report(progress, 1.0, f"{label} map ready")
        return self

    def _fit_pca(self, p: dict[str, Any]) -> np.ndarray:
        Z = self.codes_.astype(np.float64)
        self.mean_ = Z.mean(axis=0)
        _, s, vt = np.linalg.svd(Z - self.mean_, full_matrices=False)
        signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])  # sklearn's svd_flip convention
        vt *= np.where(signs == 0, 1.0, signs)[:, None]
        self.components_ = vt[: p["n_components"]]  # (n_components, latent_dim)
        total = float((s**2).sum())
        self.explained_variance_ratio_ = (
            s[: p["n_components"]] ** 2 / total if total > 0 else np.zeros(p["n_components"])
        )
        return (Z - self.mean_) @ self.components_.T

    def _fit_umap(self, p: dict[str, Any]) -> np.ndarray:
        umap = import_umap()
        self._model = umap.UMAP(
            n_components=p["n_components"],
            n_neighbors=p["n_neighbors"],
            min_dist=p["min_dist"],
            n_epochs=p["n_epochs"],
            metric=p["metric"],
            random_state=p["random_state"],
            n_jobs=1 if p["random_state"] is not None else -1,  # a seed makes umap single-threaded anyway
        )
        with _quiet_umap():
            return self._model.fit_transform(self.codes_)

    def _fit_tsne(self, p: dict[str, Any]) -> np.ndarray:
        from sklearn.manifold import TSNE

        tsne = TSNE(
            n_components=p["n_components"],
            perplexity=p["perplexity"],
            metric=p["metric"],
            init="pca",
            learning_rate="auto",
            random_state=p["random_state"],
        )
        return tsne.fit_transform(self.codes_)

    def fit_transform(self, Z: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """Fit on ``Z`` and return ``embedding_`` (N, n_components)."""
        return self.fit(Z, progress=progress).embedding_

    # -- forward and inverse maps

    def _check_fitted(self) -> None:
        if not hasattr(self, "embedding_"):
            from sklearn.exceptions import NotFittedError  # a ValueError and an AttributeError

            raise NotFittedError("This LatentProjector is not fitted yet; call fit first.")

    def transform(self, Z: np.ndarray) -> np.ndarray:
        """Place new codes (M, latent_dim) on the map: (M, n_components) float32.

        A projector loaded from disk with ``method="umap"`` has no umap model: it places each code at
        the mean map position of its 10 nearest fitted codes (``transform_is_approximate_`` is True).
        """
        self._check_fitted()
        if self.method == "tsne":
            raise ValueError(_TSNE_NO_TRANSFORM)
        Z = _as_2d(Z, "Codes", n_cols=self.n_features_in_)
        if self.method == "pca":
            return ((Z - self.mean_) @ self.components_.T).astype(np.float32)
        if self._model is None:
            _, idx = self._nearest_codes(Z)
            return self.embedding_[idx].mean(axis=1)
        with _quiet_umap():
            return np.asarray(self._model.transform(Z.astype(np.float32)), dtype=np.float32)

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        """Turn map positions (M, n_components) into codes (M, latent_dim) float32.

        PCA: exact. UMAP: umap-learn's ``inverse_transform`` (~1.5-3 s per call, whatever M), except
        that points outside the convex hull of the embedding are first moved onto it along the line to
        the embedding's centroid (umap would silently use an arbitrary triangle for them). A loaded UMAP
        projector has no model and answers with ``inverse_lookup``.
        """
        self._check_fitted()
        if self.method == "tsne":
            raise ValueError(_TSNE_NO_INVERSE)
        Y = _as_2d(Y, "Map positions", n_cols=self.embedding_.shape[1])
        if self.method == "pca":
            return (Y @ self.components_ + self.mean_).astype(np.float32)
        if self._model is None:
            return self.inverse_lookup(Y)
        Y_in = self._into_hull(Y.astype(np.float32).astype(np.float64)).astype(np.float32)  # test what umap sees
        with _quiet_umap():
            codes = np.asarray(self._model.inverse_transform(Y_in), dtype=np.float32)
        bad = ~np.isfinite(codes).all(axis=1)
        if bad.any():  # never seen, but every answer must be a usable code
            codes[bad] = self._knn_inverse(Y_in[bad], KNN_K)
        return codes

    def _triangulation(self):
        if self._delaunay is None:
            from scipy.spatial import Delaunay

            # The same triangulation umap-learn builds (qhull's joggle is deterministic).
            self._delaunay = Delaunay(self.embedding_, qhull_options="QJ")
        return self._delaunay

    def _into_hull(self, Y: np.ndarray) -> np.ndarray:
        """Move points outside the embedding's convex hull to just inside it, toward the centroid."""
        tri = self._triangulation()
        outside = tri.find_simplex(Y) < 0
        if not outside.any():
            return Y
        centre = self.embedding_.mean(axis=0, dtype=np.float64)  # inside: a convex combination
        q = Y[outside] - centre  # (K, n_components)
        lo, hi = np.zeros(len(q)), np.ones(len(q))
        for _ in range(40):  # bisect for the hull crossing on each segment centre -> point
            mid = (lo + hi) / 2
            inside = tri.find_simplex(centre + mid[:, None] * q) >= 0
            lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
        extent = float(np.ptp(self.embedding_, axis=0).max()) or 1.0
        lo = np.maximum(lo - 1e-4 * extent / np.linalg.norm(q, axis=1), 0.0)  # a hair inside, float32-safe
        Y = Y.copy()
        Y[outside] = centre + lo[:, None] * q
        return Y

    # -- fast lookups for clicks

    def fit_inverse_grid(
        self, resolution: int = 32, margin: float = 0.05, progress: Progress | None = None
    ) -> LatentProjector:
        """Invert a resolution x resolution grid over the map's bounding box (+ margin) in one call.

        Sets ``grid_x_``, ``grid_y_`` (R,) and ``grid_codes_`` (R, R, latent_dim), all finite. For UMAP
        this is one umap ``inverse_transform`` call (~2-4 s for 10k points); cells outside the convex
        hull of the embedding get the code at the hull's edge (see ``inverse_transform``).
        """
        self._check_fitted()
        if self.method == "tsne":
            raise ValueError(_TSNE_NO_INVERSE)
        if self.embedding_.shape[1] != 2:
            raise ValueError(f"The inverse grid needs a 2-D map; this one has {self.embedding_.shape[1]} dimensions.")
        if self.method == "umap" and self._model is None:
            raise ValueError(
                "This UMAP projector was loaded from disk without its umap model; fit it again to rebuild the grid."
            )
        if not isinstance(resolution, numbers.Integral) or isinstance(resolution, bool) or not 2 <= resolution <= 256:
            raise ValueError(f"resolution must be an integer from 2 to 256; got {resolution!r}.")
        if not isinstance(margin, numbers.Real) or not 0.0 <= margin <= 1.0:
            raise ValueError(f"margin must be a number from 0 to 1; got {margin!r}.")
        lo = self.embedding_.min(axis=0).astype(np.float64)
        hi = self.embedding_.max(axis=0).astype(np.float64)
        pad = np.where(hi > lo, hi - lo, 1.0) * margin + (hi <= lo) * 0.5
        gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], int(resolution))
        gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], int(resolution))
        xx, yy = np.meshgrid(gx, gy)  # (R, R) each; row i is y = gy[i]
        report(progress, 0.0, f"inverting a {resolution}x{resolution} grid")
        codes = self.inverse_transform(np.column_stack([xx.ravel(), yy.ravel()]))  # (R*R, latent_dim)
        assert np.isfinite(codes).all(), "inverse grid holds non-finite codes"
        self.grid_x_, self.grid_y_ = gx, gy
        self.grid_codes_ = np.ascontiguousarray(codes.reshape(len(gy), len(gx), -1), dtype=np.float32)
        report(progress, 1.0, "inverse grid ready")
        return self

    def inverse_lookup(self, Y: np.ndarray, method: str = "auto", k: int = KNN_K) -> np.ndarray:
        """Fast inverse for clicks (~10-60 us per call): map positions (M, 2) or (2,) -> codes.

        ``method="grid"``: bilinear interpolation in ``grid_codes_``, positions clipped to the grid.
        ``method="knn"``: the mean code of the ``k`` nearest embedded points (a k-d tree, built once).
        ``method="exact"``: ``inverse_transform`` (seconds per call for UMAP).
        ``method="auto"`` (default): the grid when one exists; else the exact inverse for PCA; else k-NN
        (always k-NN for t-SNE, which has no grid).
        """
        self._check_fitted()
        Y = np.asarray(Y, dtype=np.float64)
        single = Y.ndim == 1
        Y = _as_2d(Y[None, :] if single else Y, "Map positions", n_cols=self.embedding_.shape[1])
        has_grid = hasattr(self, "grid_codes_")
        if method == "auto":
            method = "grid" if has_grid else "exact" if self.method == "pca" else "knn"
        if method == "grid":
            if not has_grid:
                raise ValueError("This projector has no inverse grid; call fit_inverse_grid first.")
            codes = self._grid_inverse(Y)
        elif method == "knn":
            codes = self._knn_inverse(Y, k)
        elif method == "exact":
            codes = self.inverse_transform(Y)
        else:
            raise ValueError(f"inverse_lookup method must be 'auto', 'grid', 'knn' or 'exact'; got {method!r}.")
        return codes[0] if single else codes

    def _grid_inverse(self, Y: np.ndarray) -> np.ndarray:
        gx, gy, grid = self.grid_x_, self.grid_y_, self.grid_codes_
        fx = np.clip((Y[:, 0] - gx[0]) / (gx[-1] - gx[0]) * (len(gx) - 1), 0, len(gx) - 1)
        fy = np.clip((Y[:, 1] - gy[0]) / (gy[-1] - gy[0]) * (len(gy) - 1), 0, len(gy) - 1)
        j = np.minimum(fx.astype(np.intp), len(gx) - 2)
        i = np.minimum(fy.astype(np.intp), len(gy) - 2)
        tx, ty = (fx - j)[:, None], (fy - i)[:, None]  # (M, 1)
        top = grid[i, j] * (1 - tx) + grid[i, j + 1] * tx  # (M, latent_dim)
        bottom = grid[i + 1, j] * (1 - tx) + grid[i + 1, j + 1] * tx
        return (top * (1 - ty) + bottom * ty).astype(np.float32)

    def _knn_inverse(self, Y: np.ndarray, k: int) -> np.ndarray:
        if self._embedding_tree is None:
            from scipy.spatial import cKDTree

            self._embedding_tree = cKDTree(self.embedding_)
        _, idx = self._embedding_tree.query(Y, k=min(int(k), len(self.embedding_)))
        idx = idx.reshape(len(Y), -1)  # (M, k)
        return self.codes_[idx].mean(axis=1)

    def _nearest_codes(self, Z: np.ndarray):
        """The 10 nearest fitted codes under the projector's metric (cosine: on unit vectors)."""
        from scipy.spatial import cKDTree

        def unit(A):
            return A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)

        norm = unit if self.metric == "cosine" else lambda A: A
        if self._code_tree is None:
            self._code_tree = cKDTree(norm(self.codes_.astype(np.float64)))
        p = 1 if self.metric == "manhattan" else 2
        dist, idx = self._code_tree.query(norm(Z), k=min(KNN_K, len(self.codes_)), p=p)
        return dist, idx.reshape(len(Z), -1)

    # -- persistence

    def save(self, path: str | Path) -> Path:
        """Write the fitted projector to a ``.npz`` (atomically; no pickles). The umap model is not saved."""
        self._check_fitted()
        arrays = {
            "format_version": np.array(FORMAT_VERSION),
            "params": np.array(json.dumps(_check_params(self.get_params()), sort_keys=True)),
            "embedding_": self.embedding_,
            "codes_": self.codes_,
        }
        for name in _OPTIONAL_ARRAYS:
            if hasattr(self, name):
                arrays[name] = getattr(self, name)
        return _atomic_savez(Path(path), arrays)

    @classmethod
    def load(cls, path: str | Path) -> LatentProjector:
        """Read a projector written by ``save``; ``ValueError`` if the file is not a valid one."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No projection file at {path}.")
        try:
            return cls._from_arrays(_read_npz(path))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a valid projection file ({exc}); delete it and fit again.") from exc

    @classmethod
    def _from_arrays(cls, a: dict[str, np.ndarray]) -> LatentProjector:
        if int(a["format_version"]) != FORMAT_VERSION:
            raise ValueError(f"format version {int(a['format_version'])}, expected {FORMAT_VERSION}")
        params = _check_params(json.loads(str(a["params"])))
        self = cls(**params)
        emb, codes = a["embedding_"], a["codes_"]
        if emb.ndim != 2 or codes.ndim != 2 or len(emb) != len(codes) or emb.shape[1] != params["n_components"]:
            raise ValueError(f"embedding {emb.shape} and codes {codes.shape} do not match")
        self.embedding_ = np.ascontiguousarray(emb, dtype=np.float32)
        self.codes_ = np.ascontiguousarray(codes, dtype=np.float32)
        self.n_features_in_ = codes.shape[1]
        self._model = self._embedding_tree = self._code_tree = self._delaunay = None
        self.transform_is_approximate_ = self.method == "umap"
        if self.method == "pca":
            self.components_, self.mean_ = a["components_"], a["mean_"]
            self.explained_variance_ratio_ = a["explained_variance_ratio_"]
            if self.components_.shape != (params["n_components"], codes.shape[1]) or self.mean_.shape != (
                codes.shape[1],
            ):
                raise ValueError("PCA components do not match the codes")
        if "grid_codes_" in a:
            gx, gy, grid = a["grid_x_"], a["grid_y_"], a["grid_codes_"]
            if grid.shape != (len(gy), len(gx), codes.shape[1]) or len(gx) < 2:
                raise ValueError(f"grid of shape {grid.shape} does not match its axes")
            self.grid_x_, self.grid_y_, self.grid_codes_ = gx, gy, grid
        for name, value in a.items():
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ValueError(f"{name} holds non-finite values")
        return self


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read with ``allow_pickle=False`` (object arrays are refused)."""
    import zipfile

    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with data:
            return {name: data[name] for name in data.files}
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from exc


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez`` to a temp file in the same folder, then ``os.replace`` (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


# ----------------------------------------------------------------------------- caching and warm-up


def projection_key(checkpoint_id: str, params: dict[str, Any], n_points: int, split: str) -> str:
    """A stable short name for a projection: ``"<method>-<16 hex digits>"`` (defaults filled in first)."""
    full = _check_params(params)
    blob = json.dumps(
        {
            "v": FORMAT_VERSION,
            "checkpoint": str(checkpoint_id),
            "params": full,
            "n": int(n_points),
            "split": str(split),
        },
        sort_keys=True,
    )
    return f"{full['method']}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def cached_projection(
    cache_dir: str | Path,
    key: str,
    codes: np.ndarray,
    params: dict[str, Any],
    progress: Progress | None = None,
    grid_resolution: int | None = 32,
) -> LatentProjector:
    """Load ``cache_dir/<key>.npz`` if it holds this projection of these codes, else fit, save and return it.

    The inverse grid is built too when ``grid_resolution`` is set (UMAP/PCA 2-D maps only). A cached file
    is used only if its parameters, codes and grid resolution all match; a corrupt one is rebuilt.
    """
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ValueError(f"Projection cache key must be letters, digits, '_', '-' or '.'; got {key!r}.")
    full = _check_params(params)
    codes32 = np.ascontiguousarray(_as_2d(codes, "Codes", min_rows=MIN_ROWS), dtype=np.float32)
    wants_grid = grid_resolution is not None and full["method"] != "tsne" and full["n_components"] == 2
    path = Path(cache_dir) / f"{key}.npz"
    if path.is_file():
        try:
            proj = LatentProjector.load(path)
            grid_ok = not wants_grid or (hasattr(proj, "grid_codes_") and len(proj.grid_x_) == grid_resolution)
            if proj.get_params() == full and grid_ok and np.array_equal(proj.codes_, codes32):
                report(progress, 1.0, "loaded the cached map")
                return proj
        except ValueError as exc:
            _log.warning("Ignoring unreadable projection cache %s: %s", path, exc)
    proj = LatentProjector(**full).fit(codes32, progress=part(progress, 0.0, 0.8 if wants_grid else 1.0))
    if wants_grid:
        proj.fit_inverse_grid(grid_resolution, progress=part(progress, 0.8, 1.0))
    proj.save(path)
    return proj


def warm_up(progress: Progress | None = None) -> float:
    """Compile umap's numba code once per process (default parameters); returns the seconds taken.

    Fits 4,096 synthetic 16-d codes (below 4,096 points umap skips its approximate-neighbour code, so
    that would compile later), then one transform and one tiny inverse_transform. Run it in a background
    thread or process at server start: ~1-1.5 min with an empty numba cache, ~15-25 s with a warm one
    (pynndescent's ``nn_descent`` is compiled again in every process). It compiles the seeded,
    single-threaded code the default ``random_state=0`` uses; ``random_state=None`` compiles more.
    """
    start = time.perf_counter()
    report(progress, 0.0, "importing umap")
    import_umap()
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(8, 16))
    Z = (centres[rng.integers(0, 8, 4096)] + rng.normal(size=(4096, 16))).astype(np.float32)  # (4096, 16)
    proj = LatentProjector(method="umap", n_epochs=20).fit(Z, progress=part(progress, 0.1, 0.7))
    report(progress, 0.7, "compiling UMAP transform")
    proj.transform(Z[:64])
    report(progress, 0.85, "compiling UMAP inverse")
    proj.inverse_transform(proj.embedding_[:2])
    seconds = time.perf_counter() - start
    report(progress, 1.0, f"UMAP ready ({seconds:.0f} s)")
    return seconds
