"""``LatentProjector``: a scikit-learn estimator that maps latent codes to 2-D (UMAP, PCA or t-SNE) and back.

``fit`` learns ``embedding_`` (N, 2) from codes (N, latent_dim); ``transform`` places new codes;
``inverse_transform`` turns map positions into codes. A click on the map needs an answer in well under
a millisecond, but umap-learn's ``inverse_transform`` costs ~1.5-3 s per call whatever the number of
points (it re-triangulates the whole embedding), so ``fit_inverse_grid`` inverts a whole grid once and
``inverse_lookup`` interpolates in it. ``save`` / ``load`` use ``vae.projection.store`` (no pickles).
"""

from __future__ import annotations

import numbers
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..progress import Progress, counted, part, report
from . import store
from .params import LABELS, MIN_ROWS, as_2d, check_params
from .umap_runtime import SMALL_MAP, exact_neighbours, import_umap, quiet_umap

KNN_K = 10
FIT_MOST = 100_000  # a UMAP map of more codes is fitted on this many of them (a fixed sample), the rest placed by it
PLACE_CHUNK = 20_000  # codes placed per umap transform call (progress and the time left are told between them)
_TSNE_NO_TRANSFORM = "t-SNE cannot place new points (it has no transform); use UMAP or PCA to map new codes."
_TSNE_NO_INVERSE = "t-SNE has no inverse; use UMAP or PCA (or inverse_lookup, which averages nearby codes)."
_NOT_FITTED = "This %(name)s is not fitted yet; call fit first."


class LatentProjector(BaseEstimator):
    """Fit a 2-D (or 3-D) map of latent codes with UMAP, PCA or t-SNE; map positions back to codes.

    Fitted attributes: ``embedding_`` (N, n_components) float32, ``codes_`` (N, latent_dim) float32,
    ``n_features_in_``, ``transform_is_approximate_``, ``umap_`` (the fitted ``umap.UMAP``; None for
    other methods and once loaded from disk); for PCA ``components_``, ``mean_``,
    ``explained_variance_ratio_``; after ``fit_inverse_grid``: ``grid_x_``, ``grid_y_`` (R,) and
    ``grid_codes_`` (R, R, latent_dim), where ``grid_codes_[i, j]`` is the code at
    ``(grid_x_[j], grid_y_[i])``.

    ``n_neighbors``, ``min_dist`` and ``n_epochs`` (None: umap's default; smaller for quick previews) are
    UMAP's; ``perplexity`` is t-SNE's; ``metric`` (euclidean, cosine, manhattan) applies to both; PCA
    uses only ``n_components``. A ``random_state`` makes results repeatable (and UMAP single-threaded).
    The parameters are checked by ``fit``; after ``set_params``, fit again before using the map.
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

    # -- fitting

    def fit(
        self, Z: np.ndarray, y: Any = None, *, progress: Progress | None = None, start: np.ndarray | None = None
    ) -> LatentProjector:
        """Learn the map of the codes ``Z`` (N, latent_dim); ``y`` is ignored (scikit-learn's API). Returns ``self``.

        ``start`` (N, 2): the layout of an earlier map of the same items (an earlier checkpoint's): UMAP starts
        from it, and the map (UMAP or PCA) is turned onto it (orthogonal Procrustes), so items stay where they were
        unless the codes moved them."""
        p = check_params(self.get_params())
        Z = as_2d(Z, "Codes", min_rows=MIN_ROWS)
        n, d = Z.shape
        if p["method"] == "umap" and n <= p["n_neighbors"]:
            raise ValueError(f"UMAP with n_neighbors={p['n_neighbors']} needs more codes than that; got {n}.")
        if p["method"] == "tsne" and n <= p["perplexity"]:
            raise ValueError(f"t-SNE with perplexity={p['perplexity']} needs more codes than that; got {n}.")
        if p["method"] == "pca" and d < p["n_components"]:
            raise ValueError(f"PCA to {p['n_components']} components needs codes with that many dimensions; got {d}.")
        for name in store.ARRAYS:  # nothing of an earlier fit survives
            self.__dict__.pop(name, None)
        self._reset_indexes()
        self.umap_ = None
        self.codes_ = np.ascontiguousarray(Z, dtype=np.float32)  # (N, latent_dim)
        self.n_features_in_ = d
        self.transform_is_approximate_ = False
        label = LABELS[p["method"]]
        report(progress, 0.0, f"fitting {label} on {n:,} codes")
        start = self._start(start, n, p)
        fit = getattr(self, f"_fit_{p['method']}")
        embedding = fit(p if start is None else {**p, "init": start}, progress)
        if start is not None:
            embedding = self._turn_onto(embedding, start)
        self.embedding_ = np.ascontiguousarray(embedding, dtype=np.float32)  # (N, n_components)
        report(progress, 1.0, f"{label} map ready")
        return self

    def _start(self, start, n: int, p: dict[str, Any]) -> np.ndarray | None:
        if start is None:
            return None
        start = np.asarray(start, dtype=np.float64)
        if start.shape != (n, 2) or p["n_components"] != 2 or p["method"] == "tsne" or not np.isfinite(start).all():
            raise ValueError(f"A map's start must be the (N, 2) layout of the same {n:,} items (UMAP or PCA).")
        return start

    def _turn_onto(self, embedding: np.ndarray, start: np.ndarray) -> np.ndarray:
        """``embedding`` turned (or reflected) about its centre onto ``start``; a PCA's axes turn with it, and so
        does the fitted umap's own layout (its inverse and transform then answer in the turned map's frame)."""
        from .sequence import turned_onto, turning

        if self.method == "pca":
            self.components_ = turning(embedding, start).T @ self.components_  # still (Z - mean) @ components_.T
            return (self.codes_.astype(np.float64) - self.mean_) @ self.components_.T
        turned = turned_onto(embedding, start)
        if self.umap_ is not None:
            sample = self._sample  # the rows umap was fitted on (None: all)
            self.umap_.embedding_ = np.ascontiguousarray(turned if sample is None else turned[sample], dtype=np.float32)
        return turned

    def _fit_pca(self, p: dict[str, Any], progress: Progress | None = None) -> np.ndarray:
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

    def _fit_umap(self, p: dict[str, Any], progress: Progress | None = None) -> np.ndarray:
        """UMAP's layout of ``codes_``; past ``FIT_MOST`` codes, fitted on a seeded sample of that many and the others
        placed by it (umap's ``transform``, in chunks, saying the time left): 737,280 codes in minutes."""
        umap = import_umap()
        n, rng = len(self.codes_), np.random.default_rng(p["random_state"])
        fitted = None if n <= FIT_MOST else np.sort(rng.choice(n, FIT_MOST, replace=False))  # rows it is fitted on
        self._sample = fitted
        codes = self.codes_ if fitted is None else self.codes_[fitted]
        small = len(codes) < SMALL_MAP  # umap's own exact neighbours: a Python loop over pairs
        init = {} if "init" not in p else {"init": p["init"] if fitted is None else p["init"][fitted]}
        self.umap_ = umap.UMAP(
            precomputed_knn=exact_neighbours(codes, p["n_neighbors"], p["metric"]) if small else (None,) * 3,
            n_components=p["n_components"],
            n_neighbors=p["n_neighbors"],
            min_dist=p["min_dist"],
            n_epochs=p["n_epochs"],
            metric=p["metric"],
            random_state=p["random_state"],
            n_jobs=1 if p["random_state"] is not None else -1,  # a seed makes umap single-threaded anyway
            **init,  # an earlier map's layout of the same items
        )
        if fitted is not None:
            report(progress, 0.01, f"fitting UMAP on {len(codes):,} of the {n:,} codes (a fixed sample)")
        with quiet_umap():
            layout = self.umap_.fit_transform(codes)
        if fitted is None:
            return layout
        embedding = np.empty((n, layout.shape[1]), dtype=np.float32)
        embedding[fitted] = layout
        self._place_rest(embedding, np.setdiff1d(np.arange(n), fitted), part(progress, 0.3, 1.0))
        return embedding

    def _place_rest(self, embedding: np.ndarray, rows: np.ndarray, progress: Progress | None) -> None:
        """Place ``codes_[rows]`` with the fitted umap into ``embedding[rows]``, a chunk at a time, saying how
        many are placed and, from the pace so far, about how long the rest will take."""
        began = time.perf_counter()
        for done in range(0, len(rows), PLACE_CHUNK):
            chunk = rows[done : done + PLACE_CHUNK]
            with quiet_umap():
                embedding[chunk] = self.umap_.transform(self.codes_[chunk])
            placed = done + len(chunk)
            left = (time.perf_counter() - began) / placed * (len(rows) - placed)
            counted(progress, placed, len(rows), f"placed {placed:,} of the other {len(rows):,} codes"
                    + (f" (about {left:.0f} s left)" if placed < len(rows) else ""))  # fmt: skip

    def _fit_tsne(self, p: dict[str, Any], progress: Progress | None = None) -> np.ndarray:
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

    def fit_transform(self, Z: np.ndarray, y: Any = None, *, progress: Progress | None = None) -> np.ndarray:
        """Fit on ``Z`` and return ``embedding_`` (N, n_components)."""
        return self.fit(Z, progress=progress).embedding_

    # -- fitted state

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "embedding_")

    def _check_fitted(self) -> None:
        check_is_fitted(self, msg=_NOT_FITTED)  # NotFittedError: a ValueError and an AttributeError

    def _reset_indexes(self) -> None:
        """Forget the search structures built on demand from the fitted arrays."""
        self._embedding_tree = self._code_tree = self._delaunay = None

    # -- forward and inverse maps

    def transform(self, Z: np.ndarray, approximate: bool = False) -> np.ndarray:
        """Place new codes (M, latent_dim) on the map: (M, n_components) float32.

        A projector loaded from disk with ``method="umap"`` has no umap model: it places each code at
        the mean map position of its 10 nearest fitted codes (``transform_is_approximate_`` is True).
        ``approximate=True`` does that for a fitted UMAP too (milliseconds, where umap's own transform
        costs ~0.15 s per 1,000 codes, and its first call in a process compiles for seconds); PCA is exact.
        """
        self._check_fitted()
        if self.method == "tsne":
            raise ValueError(_TSNE_NO_TRANSFORM)
        Z = as_2d(Z, "Codes", n_cols=self.n_features_in_)
        if self.method == "pca":
            return ((Z - self.mean_) @ self.components_.T).astype(np.float32)
        if self.umap_ is None or approximate:
            _, idx = self._nearest_codes(Z)
            return self.embedding_[idx].mean(axis=1)
        with quiet_umap():
            return np.asarray(self.umap_.transform(Z.astype(np.float32)), dtype=np.float32)

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
        Y = as_2d(Y, "Map positions", n_cols=self.embedding_.shape[1])
        if self.method == "pca":
            return (Y @ self.components_ + self.mean_).astype(np.float32)
        if self.umap_ is None:
            return self.inverse_lookup(Y)
        Y_in = self._into_hull(Y.astype(np.float32).astype(np.float64)).astype(np.float32)  # test what umap sees
        with quiet_umap():
            codes = np.asarray(self.umap_.inverse_transform(Y_in), dtype=np.float32)
        bad = ~np.isfinite(codes).all(axis=1)
        if bad.any():  # never seen, but every answer must be a usable code
            codes[bad] = self._knn_inverse(Y_in[bad], KNN_K)
        return codes

    def _inverse_points(self) -> np.ndarray:
        """The map positions umap's inverse works from: the whole map, or the sample a large map was fitted on."""
        return self.embedding_ if self.umap_ is None else self.umap_.embedding_

    def _triangulation(self):
        if self._delaunay is None:
            from scipy.spatial import Delaunay

            # The same triangulation umap-learn builds (qhull's joggle is deterministic), of the points its
            # inverse knows: a map fitted on a sample knows the sample (737,280 points would take minutes).
            self._delaunay = Delaunay(self._inverse_points(), qhull_options="QJ")
        return self._delaunay

    def _into_hull(self, Y: np.ndarray) -> np.ndarray:
        """Move points outside the embedding's convex hull to just inside it, toward the centroid."""
        tri = self._triangulation()
        outside = tri.find_simplex(Y) < 0
        if not outside.any():
            return Y
        centre = self._inverse_points().mean(axis=0, dtype=np.float64)  # inside: a convex combination
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
        if self.method == "umap" and self.umap_ is None:
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
        Y = as_2d(Y[None, :] if single else Y, "Map positions", n_cols=self.embedding_.shape[1])
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

    def save(self, path: str | Path, metadata: store.Metadata | None = None) -> Path:
        """Write the fitted projector to a ``.npz`` (atomically; no pickles). The umap model is not saved.

        ``metadata`` (names to strings or None) is filed with it, for whoever keeps the file (a cache).
        """
        self._check_fitted()
        fitted = {name: getattr(self, name) for name in store.ARRAYS if hasattr(self, name)}
        return store.write(path, check_params(self.get_params()), fitted, metadata or {})

    @classmethod
    def load(cls, path: str | Path) -> LatentProjector:
        """Read a projector written by ``save``; ``ValueError`` if the file is not a valid one.

        A loaded UMAP projector has no umap model: ``transform`` is approximate and ``inverse_transform``
        answers with ``inverse_lookup``.
        """
        params, fitted, _ = store.read(path)
        self = cls(**params)
        for name, value in fitted.items():
            setattr(self, name, value)
        self.n_features_in_ = self.codes_.shape[1]
        self.umap_ = None
        self.transform_is_approximate_ = self.method == "umap"
        self._reset_indexes()
        return self
