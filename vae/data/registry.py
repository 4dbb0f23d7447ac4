"""The dataset registry and the one entry point, ``load_dataset``: which datasets exist, which are
available here, and turning a loader's arrays into a split, subset, standardised ``Dataset``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..progress import Progress
from .base import MAX_FILE_BYTES, Dataset, _Raw
from .files import _load_file
from .idx import IDX_ENV, _how_to_get, _load_idx_folder, _locate_idx
from .sprites import _load_sprites

DATASETS = {
    "digits": "scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes)",
    "fashion-mnist": "Fashion-MNIST: 70,000 28×28 grey clothing images in 10 classes (official 60k/10k split)",
    "mnist": "MNIST: 70,000 28×28 grey handwritten digits (official 60k/10k split)",
    "sprites": "generated dSprites-style shapes with known factors: shape, scale, rotation, x, y",
    "file": "your own .npz, .npy, .csv, .zip or folder of images or IDX files",
}
FASHION_LABELS = "T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot".split("|")


# ---------------------------------------------------------------- entry points


def load_dataset(cfg: DataConfig, progress: Progress | None = None, *, max_bytes: int = MAX_FILE_BYTES) -> Dataset:
    """Load the dataset ``cfg`` names, split (``test_fraction``, ``split_seed``) and subset it."""
    loaders = {
        "digits": _load_digits,
        "fashion-mnist": _load_registered_idx,
        "mnist": _load_registered_idx,
        "sprites": _load_sprites,
        "file": _load_file,
    }
    if cfg.name not in loaders:
        raise ValueError(f"Unknown dataset {cfg.name!r}; known datasets are {', '.join(DATASETS)}.")
    raw = loaders[cfg.name](cfg, progress, max_bytes)
    name = Path(cfg.path).name if cfg.name == "file" else cfg.name
    return _finish(raw, cfg, name)


def available_datasets(root: str | None = None) -> list[dict]:
    """Every registered dataset with whether it can be loaded here, where from, and how to get it."""
    out = []
    for name, description in DATASETS.items():
        where, how = "", ""
        if name in IDX_ENV:
            folder = _locate_idx(name, root)
            where = str(folder) if folder else "not found"
            how = "" if folder else _how_to_get(name, root)
        elif name == "digits":
            where = "scikit-learn (bundled)"
        elif name == "sprites":
            where = "generated on demand"
        else:
            where = "a path you choose"
        out.append({"name": name, "description": description, "available": not how, "where": where, "how_to_get": how})
    return out


# ---------------------------------------------------------------- built-in loaders


def _load_digits(cfg: DataConfig, progress: Progress | None, max_bytes: int) -> _Raw:
    """scikit-learn's bundled 8×8 digits, pixel/16 in [0, 1], shape (1797, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    labels = [str(i) for i in range(10)]
    return _Raw(x, d.target.astype(np.int64), labels, DATASETS["digits"], "scikit-learn (bundled)")


def _load_registered_idx(cfg: DataConfig, progress: Progress | None, max_bytes: int) -> _Raw:
    folder = _locate_idx(cfg.name, cfg.root)
    if folder is None:
        raise FileNotFoundError(_how_to_get(cfg.name, cfg.root))
    labels = FASHION_LABELS if cfg.name == "fashion-mnist" else [str(i) for i in range(10)]
    return _load_idx_folder(folder, progress, max_bytes, labels, DATASETS[cfg.name])


# ---------------------------------------------------------------- split, subset, tensors


def _finish(raw: _Raw, cfg: DataConfig, name: str) -> Dataset:
    """Split, subset, standardise (train statistics) and convert a loader's arrays."""
    fac_tr = fac_te = None
    if raw.test is None and len(raw.x) < 2:
        raise ValueError(f"{raw.source} holds a single sample; expected at least 2 to split into train and test.")
    if raw.test is None:
        tr, te = _split_indices(len(raw.x), raw.y, cfg.test_fraction, cfg.split_seed)
        x_tr, x_te = raw.x[tr], raw.x[te]
        y_tr, y_te = (None, None) if raw.y is None else (raw.y[tr], raw.y[te])
        if raw.factors is not None:
            fac_tr, fac_te = raw.factors[tr], raw.factors[te]
    else:
        (x_tr, y_tr), (x_te, y_te) = (raw.x, raw.y), raw.test
    keep_tr = _subset(len(x_tr), cfg.max_train, cfg.split_seed, 1)
    keep_te = _subset(len(x_te), cfg.max_test, cfg.split_seed, 2)
    x_tr, y_tr, fac_tr = (_take(a, keep_tr) for a in (x_tr, y_tr, fac_tr))
    x_te, y_te, fac_te = (_take(a, keep_te) for a in (x_te, y_te, fac_te))
    mean = scale = None
    if raw.standardise:
        mean, scale = x_tr.mean(0, dtype=np.float64), x_tr.std(0, dtype=np.float64)
        scale[scale < 1e-12] = 1.0
        x_tr, x_te = (x_tr - mean) / scale, (x_te - mean) / scale
    return Dataset(
        name=name,
        x_train=_tensor(x_tr, torch.float32),
        x_test=_tensor(x_te, torch.float32),
        y_train=None if y_tr is None else _tensor(y_tr, torch.int64),
        y_test=None if y_te is None else _tensor(y_te, torch.int64),
        label_names=raw.label_names,
        description=raw.description,
        source=raw.source,
        likelihood=raw.likelihood,
        feature_names=raw.feature_names,
        scaler_mean=mean,
        scaler_scale=scale,
        factors_train=fac_tr,
        factors_test=fac_te,
        factor_names=raw.factor_names,
    )


def _split_indices(n: int, y: np.ndarray | None, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train / test indices; stratified when every class has at least two items."""
    from sklearn.model_selection import train_test_split

    n_test = min(n - 1, max(1, math.ceil(n * test_fraction)))
    stratify = None
    if y is not None:
        counts = np.bincount(y)
        counts = counts[counts > 0]
        if counts.min() >= 2 and min(n_test, n - n_test) >= len(counts):
            stratify = y
    tr, te = train_test_split(np.arange(n), test_size=n_test, random_state=seed % 2**32, stratify=stratify)
    return np.sort(tr), np.sort(te)


def _subset(n: int, k: int | None, seed: int, stream: int) -> np.ndarray | None:
    """A sorted fixed-seed choice of ``k`` of ``n`` indices, or None to keep everything."""
    if k is None or k >= n:
        return None
    return np.sort(np.random.default_rng([seed, stream]).choice(n, k, replace=False))


def _take(a: np.ndarray | None, keep: np.ndarray | None) -> np.ndarray | None:
    return a if a is None or keep is None else a[keep]


def _tensor(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
