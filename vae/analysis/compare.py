"""How alike two runs' latent spaces are, on the same items: linear CKA, neighbours kept, Procrustes, a linear map.

Two trained latent spaces are arbitrary up to rotation (and more): comparing coordinates says little, so every
measure here is blind to what should not matter. Linear CKA (Kornblith et al. 2019) compares the two codes' Gram
structure (1: the same up to rotation and scale); the k-nearest-neighbour Jaccard asks, item by item, whether
the same items sit close in both; Procrustes disparity is what is left after the best rotation, shift and
scaling; and the linear map (least squares, or an orthogonal one) carries a code of run A into run B's space
with its R² on the two runs' codes of the same training items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

K_NEIGHBOURS = 10


def _centred(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"Codes must be an (items, dimensions) array of at least 2 items; got shape {x.shape}.")
    return x - x.mean(0)


def _same_items(a: np.ndarray, b: np.ndarray) -> None:
    if len(a) != len(b):
        raise ValueError(f"The two runs' codes must be of the same items; got {len(a)} and {len(b)} rows.")


def linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    """Linear CKA of codes ``a`` (N, Da) and ``b`` (N, Db) of the same N items: ‖BᵀA‖²_F / (‖AᵀA‖_F ‖BᵀB‖_F) on
    centred codes; 1 when one is the other rotated and scaled, near 0 for unrelated codes."""
    _same_items(a, b)
    x, y = _centred(a), _centred(b)
    denominator = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(np.linalg.norm(y.T @ x) ** 2 / denominator) if denominator > 0 else 0.0


def knn_jaccard(a: np.ndarray, b: np.ndarray, k: int = K_NEIGHBOURS) -> np.ndarray:
    """Each item's Jaccard index between its ``k`` nearest neighbours in ``a`` and in ``b`` (itself left out):
    (N,) in [0, 1], 1 where both spaces put the same items closest to it."""
    from sklearn.neighbors import NearestNeighbors

    _same_items(a, b)
    k = min(k, len(a) - 1)
    sets = []
    for codes in (a, b):
        idx = NearestNeighbors(n_neighbors=k + 1).fit(codes).kneighbors(codes, return_distance=False)
        sets.append([set(row[row != i][:k]) for i, row in enumerate(idx)])  # self left out, ties or not
    return np.array([len(p & q) / len(p | q) for p, q in zip(*sets, strict=True)])


def _padded(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two codes with zero columns added to the narrower, so both have as many dimensions."""
    d = max(a.shape[1], b.shape[1])
    pad = lambda x: np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (0, d - x.shape[1])))  # noqa: E731
    return pad(a), pad(b)


def procrustes_disparity(a: np.ndarray, b: np.ndarray) -> float:
    """What is left between ``a`` and ``b`` after the best shift, scaling and rotation (scipy's ``procrustes``):
    0 for the same shape, at most 1."""
    from scipy.spatial import procrustes

    _same_items(a, b)
    x, y = _padded(a, b)
    return float(procrustes(x, y)[2])


@dataclass(frozen=True)
class LinearMap:
    """``b ≈ a @ weight + bias``: run A's codes carried into run B's space."""

    weight: np.ndarray  # (Da, Db)
    bias: np.ndarray  # (Db,)
    r2: float  # on the codes it was fitted to: 1 - residual / total sum of squares of b

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.float64) @ self.weight + self.bias


def fit_linear_map(a: np.ndarray, b: np.ndarray, orthogonal: bool = False) -> LinearMap:
    """The least-squares affine map from codes ``a`` to codes ``b`` of the same items, or with ``orthogonal`` the
    best rotation (or reflection) after centring (needs as many dimensions on both sides)."""
    _same_items(a, b)
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if orthogonal:
        from scipy.linalg import orthogonal_procrustes

        if a64.shape[1] != b64.shape[1]:
            raise ValueError(f"An orthogonal map needs latent spaces of one size; these have {a64.shape[1]} and "
                             f"{b64.shape[1]} dimensions: use the least-squares map.")  # fmt: skip
        weight, _ = orthogonal_procrustes(a64 - a64.mean(0), b64 - b64.mean(0))
        bias = b64.mean(0) - a64.mean(0) @ weight
    else:
        design = np.column_stack([a64, np.ones(len(a64))])
        solution, *_ = np.linalg.lstsq(design, b64, rcond=None)
        weight, bias = solution[:-1], solution[-1]
    residual = b64 - (a64 @ weight + bias)
    total = ((b64 - b64.mean(0)) ** 2).sum()
    return LinearMap(weight, bias, float(1 - (residual**2).sum() / total) if total > 0 else 1.0)


def config_diff(a: dict, b: dict, prefix: str = "") -> dict[str, list[Any]]:
    """The fields of two nested config dicts that differ: {"train.beta": [1.0, 4.0], ...}."""
    out: dict[str, list[Any]] = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out |= config_diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out[f"{prefix}{key}"] = [va, vb]
    return out


def similarity(a: np.ndarray, b: np.ndarray, k: int = K_NEIGHBOURS) -> dict[str, float]:
    """Every number of this module for codes ``a`` and ``b`` of the same items (the linear map fitted on them)."""
    return {
        "cka": linear_cka(a, b),
        "knn_jaccard": float(knn_jaccard(a, b, k).mean()),
        "procrustes_disparity": procrustes_disparity(a, b),
        "linear_map_r2": fit_linear_map(a, b).r2,
    }


# ---------------------------------------------------------------- two runs


MAP_ITEMS = 5000  # training items the linear map between the two spaces is fitted on


def check_comparable(run_a, run_b) -> None:
    """A sentence (``ValueError``) unless both runs have weights and were trained on the same data."""
    from pathlib import Path

    from ..runs import folder as rf

    for run in (run_a, run_b):
        if not rf.has_model(run):
            raise ValueError(f"{Path(run).name} has no saved weights yet; compare it once it has trained an epoch.")
    da, db = rf.load_data_config(run_a), rf.load_data_config(run_b)
    if da.to_dict() != db.to_dict():
        raise ValueError(f"{Path(run_a).name} and {Path(run_b).name} were trained on different data "
                         f"({rf.data_label(da)} and {rf.data_label(db)}): their latent spaces hold different items "
                         "and cannot be compared item by item.")  # fmt: skip


def compare_runs(run_a, run_b, split: str = "test", max_points: int | None = None, seed: int = 0) -> dict[str, Any]:
    """The numbers of ``similarity`` for two runs of the same data, on the latent means of the same items of
    ``split`` (at most ``max_points``, a fixed-seed sample), with the linear map fitted on up to ``MAP_ITEMS``
    training items; plus what differs between their configs."""
    import torch

    from ..data import load_dataset
    from ..runs import folder as rf

    check_comparable(run_a, run_b)
    ds = load_dataset(rf.load_data_config(run_a))
    models = [rf.load_model(run).requires_grad_(False) for run in (run_a, run_b)]
    n = ds.split_size(split)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, max_points, replace=False)) if max_points and max_points < n else np.arange(n)
    fit_rows = np.sort(rng.choice(len(ds.x_train), min(MAP_ITEMS, len(ds.x_train)), replace=False))
    with torch.inference_mode():
        a, b = (m.embed_split(ds, split, rows)[0] for m in models)
        fa, fb = (m.embed_split(ds, "train", fit_rows)[0] for m in models)
    out = similarity(a, b)
    out["linear_map_r2"] = fit_linear_map(fa, fb).r2  # on the training items, as the page's carried decodes use it
    configs = [dict(zip(("model", "train", "data"), (c.to_dict() for c in rf.load_config(run)), strict=True))
               for run in (run_a, run_b)]  # fmt: skip
    return {**out, "n_items": len(rows), "split": split, "config_diff": config_diff(*configs)}
