"""A sequence of UMAP maps that glide: each map of a frame's codes is started from the previous frame's layout and
then turned onto it (orthogonal Procrustes about the centre), so an item stays where it was unless the model moved
it. The latent history's UMAP frames (``vae.analysis.history.umap_layouts``) are fitted here, in the process that
asks or in the map worker (``worker.MapWorker.sequence``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..progress import Progress, report

EPOCHS = 200  # optimisation epochs per frame (umap's own default for maps under 10,000 points)


@dataclass(frozen=True)
class Plane:
    """A PCA map of codes with its exact inverse: map position ``p`` (2,) is the code ``origin + p @ basis`` on the
    codes' leading principal plane (an item's place gives its code projected onto that plane)."""

    layout: np.ndarray  # (P, 2)
    origin: np.ndarray  # (L,)
    basis: np.ndarray  # (2, L): the map's axes in latent space

    def inverse(self, points: np.ndarray) -> np.ndarray:
        """The codes at map positions ``points`` (..., 2) -> (..., L)."""
        return self.origin + np.asarray(points) @ self.basis

    def turned_onto(self, previous: np.ndarray) -> Plane:
        """This map turned onto layout ``previous`` (as ``turned_onto``), its inverse turned with it."""
        rot = turning(self.layout, previous)
        here, there = self.layout.mean(0), previous.mean(0)
        origin = self.origin + (here - there @ rot.T) @ self.basis
        return Plane((self.layout - here) @ rot + there, origin, rot.T @ self.basis)


def pca_plane(codes: np.ndarray) -> Plane:
    """The two leading principal coordinates of ``codes`` (P, L), centred, and the plane they span."""
    codes = np.asarray(codes)
    mean = codes.mean(0)
    centred = codes - mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    basis = np.vstack([vt[:2], np.zeros((max(0, 2 - len(vt[:2])), codes.shape[1]), dtype=vt.dtype)])  # 1-d: 0s
    return Plane(centred @ basis.T, mean, basis)


def pca2(codes: np.ndarray) -> np.ndarray:
    """The two leading principal coordinates of ``codes`` (P, L) -> (P, 2), centred."""
    return pca_plane(codes).layout


def umap_layout(codes: np.ndarray, init: np.ndarray, seed: int = 0, n_epochs: int = EPOCHS) -> np.ndarray:
    """One UMAP map (15 neighbours, min_dist 0.1) of ``codes`` (P, L), started from layout ``init`` (P, 2)."""
    from .umap_runtime import exact_neighbours, import_umap, quiet_umap

    umap = import_umap()
    codes = np.asarray(codes, dtype=np.float32)
    # the neighbours from scikit-learn: under 4,096 codes umap computes every distance through a Python loop over
    # pairs (5.3 of a 2,000-item frame's 6.3 s here; 1.0 s with these)
    fit = umap.UMAP(n_components=2, init=np.asarray(init, dtype=np.float64), random_state=seed, n_epochs=n_epochs,
                    n_jobs=1, precomputed_knn=exact_neighbours(codes, 15, "euclidean"))  # fmt: skip
    with quiet_umap():
        return fit.fit_transform(codes).astype(np.float64)


def turning(layout: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The rotation (or reflection) that best turns ``layout`` onto ``previous`` about their centres (orthogonal
    Procrustes), (2, 2): ``(layout - centre) @ turning``."""
    from scipy.linalg import orthogonal_procrustes

    return orthogonal_procrustes(layout - layout.mean(0), previous - previous.mean(0))[0]


def turned_onto(layout: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """``layout`` centred, turned (or reflected) onto ``previous`` by orthogonal Procrustes, at its centre."""
    return (layout - layout.mean(0)) @ turning(layout, previous) + previous.mean(0)


def umap_sequence(
    codes: Sequence[np.ndarray],
    start: np.ndarray | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    on_layout: Callable[[int, np.ndarray], None] | None = None,
) -> list[np.ndarray]:
    """The layouts of ``codes`` (frames of the same P items, in order): frame 0 starts from ``start`` (the layout of
    the frame before it) or, without one, from its own PCA; each next frame from the layout before it. Each layout
    is given to ``on_layout(i, layout)`` as soon as it is fitted (so a killed fit keeps what it had done)."""
    out: list[np.ndarray] = []
    previous = start
    for i, c in enumerate(codes):
        report(progress, i / max(1, len(codes)), f"UMAP of frame {i + 1} of {len(codes)}")
        layout = umap_layout(c, pca2(c) if previous is None else previous, seed)
        layout = layout - layout.mean(0) if previous is None else turned_onto(layout, previous)
        if on_layout is not None:
            on_layout(i, layout)
        out.append(layout)
        previous = layout
    report(progress, 1.0, "done")
    return out
