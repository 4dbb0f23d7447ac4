"""How far to trust a 2-D map of latent codes: trustworthiness, continuity and k-NN preservation.

With ``k`` nearest neighbours in the latent space (high) and on the map (low):

- **trustworthiness** (Venna & Kaski 2001; scikit-learn's ``trustworthiness``): are the map's neighbours true
  neighbours? Items that look close on the map but are far in the latent space lower it.
- **continuity**: the same measure with the roles swapped: are true neighbours kept close on the map? Items torn
  apart by the map lower it.
- **k-NN preservation**: the share of each item's ``k`` latent neighbours that are among its ``k`` map
  neighbours, per item (``neighbour_preservation``) and on average; 1 means the item's neighbourhood is kept.

All three are 1 for a perfect map. They cost O(n²) memory, so maps are scored on a fixed subsample.
"""

from __future__ import annotations

import numpy as np

K = 10
SUBSAMPLE = 2000


def _neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's ``k`` nearest other rows, (n, k)."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]


def neighbour_preservation(codes: np.ndarray, layout: np.ndarray, k: int = K) -> np.ndarray:
    """Per item (n,): the share of its ``k`` nearest latent neighbours that are among its ``k`` nearest on the map."""
    _check(codes, layout, k)
    high, low = _neighbours(codes, k), _neighbours(layout, k)  # (n, k) each
    return (high[:, :, None] == low[:, None, :]).any(2).sum(1) / k


def map_fidelity(codes: np.ndarray, layout: np.ndarray, k: int = K, subsample: int = SUBSAMPLE, seed: int = 0) -> dict:
    """Trustworthiness, continuity and mean k-NN preservation of ``layout`` (n, 2) as a map of ``codes`` (n, L),
    on at most ``subsample`` items chosen by ``seed``."""
    from sklearn.manifold import trustworthiness

    _check(codes, layout, k)
    if len(codes) > subsample:
        keep = np.sort(np.random.default_rng(seed).choice(len(codes), subsample, replace=False))
        codes, layout = codes[keep], layout[keep]
    return {
        "trustworthiness": float(trustworthiness(codes, layout, n_neighbors=k)),
        "continuity": float(trustworthiness(layout, codes, n_neighbors=k)),
        "knn_preservation": float(neighbour_preservation(codes, layout, k).mean()),
        "k": k,
        "n": len(codes),
    }


def _check(codes: np.ndarray, layout: np.ndarray, k: int) -> None:
    if len(codes) != len(layout):
        raise ValueError(f"The map has {len(layout)} points but there are {len(codes)} codes; expected one each.")
    if not 1 <= k < len(codes) / 2:
        raise ValueError(f"k = {k} neighbours needs more than {2 * k} items; the map has {len(codes)}.")
