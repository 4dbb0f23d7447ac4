"""The bottom layer of ``vae.data``: the ``Dataset`` a run trains on, the raw arrays every loader returns
(``_Raw``), the limits on users' data, the download cache folder, and the checks all loaders share
(file size, labels, pixel range). It imports nothing else from ``vae.data``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MAX_FILE_BYTES = 1 << 30  # per file (and per archive, uncompressed)
MAX_CLASSES = 1000
MAX_IMAGE_FILES = 200_000
MAX_IMAGE_PIXELS = 4096 * 4096  # per image, checked before decoding
DEFAULT_CACHE_DIR = Path(os.environ.get("LATENT_EXPLORER_DATA") or Path.home() / ".cache/latent-explorer/datasets")


@dataclass
class Dataset:
    """A dataset split into train and test tensors, plus what the explorer needs to show it."""

    name: str
    x_train: torch.Tensor  # (N, C, H, W) in [0, 1] or (N, D), float32
    x_test: torch.Tensor
    y_train: torch.Tensor | None  # (N,) int64
    y_test: torch.Tensor | None
    label_names: list[str] | None
    description: str
    source: str
    likelihood: str
    feature_names: list[str] | None = None
    scaler_mean: np.ndarray | None = None
    scaler_scale: np.ndarray | None = None
    factors_train: np.ndarray | None = None  # (N, n_factors)
    factors_test: np.ndarray | None = None
    factor_names: list[str] | None = None

    @property
    def item_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` for images, ``(D,)`` for vectors."""
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.ndim == 4

    # -- splits: "test", "train", or "all" (the train items, then the test items)

    def split_size(self, split: str) -> int:
        return {"test": len(self.x_test), "train": len(self.x_train)}.get(split, len(self.x_train) + len(self.x_test))

    def split_items(self, split: str, rows: np.ndarray | None = None) -> torch.Tensor:
        """The items of a split (all, or the given rows of it), without copying a whole split when rows are given."""
        if split in ("test", "train"):
            x = self.x_test if split == "test" else self.x_train
            return x if rows is None else x[torch.as_tensor(np.asarray(rows, dtype=np.int64))]
        if split != "all":
            raise ValueError(f"split must be 'test', 'train' or 'all'; got {split!r}.")
        if rows is None:
            return torch.cat([self.x_train, self.x_test])
        rows = np.asarray(rows, dtype=np.int64)
        n = len(self.x_train)
        out = torch.empty((len(rows), *self.item_shape), dtype=self.x_train.dtype)
        train = rows < n
        out[torch.as_tensor(train)] = self.x_train[torch.as_tensor(rows[train])]
        out[torch.as_tensor(~train)] = self.x_test[torch.as_tensor(rows[~train] - n)]
        return out

    def label_count(self) -> int:
        """How many classes the labels name (a conditional VAE's one-hot size); a sentence for unlabelled data."""
        if self.y_train is None or not len(self.y_train):
            raise ValueError(
                f"The conditional VAE needs labelled data, and {self.name} has no labels: choose a labelled dataset "
                "(digits, Fashion-MNIST, a file with a label column) or another family."
            )
        return max(len(self.label_names or []), int(self.y_train.max()) + 1)

    def split_labels(self, split: str) -> np.ndarray | None:
        """The labels of a split as integers (N,), or None for unlabelled data."""
        if self.y_train is None or self.y_test is None:
            return None
        parts = {"test": [self.y_test], "train": [self.y_train]}.get(split, [self.y_train, self.y_test])
        return np.concatenate([p.numpy() for p in parts])

    def split_factors(self, split: str) -> np.ndarray | None:
        """The known factors of a split (N, n_factors), or None for data without them."""
        if self.factors_train is None or self.factors_test is None:
            return None
        parts = {"test": [self.factors_test], "train": [self.factors_train]}.get(
            split, [self.factors_train, self.factors_test]
        )
        return np.concatenate(parts)

    def item_part(self, split: str, row: int) -> tuple[str, int]:
        """Where row ``row`` of a split lives: ("train" or "test", its index there)."""
        if split != "all":
            return split, int(row)
        n = len(self.x_train)
        return ("train", int(row)) if row < n else ("test", int(row) - n)

    def to_original_units(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Undo the csv standardisation (``x * scale + mean``); the identity for other data."""
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if self.scaler_mean is None or self.scaler_scale is None:
            return arr
        return arr.astype(np.float64) * self.scaler_scale + self.scaler_mean


@dataclass
class _Raw:
    """What a loader hands to ``_finish``: all items, or an official train part plus ``test``."""

    x: np.ndarray  # (N, C, H, W) float32 in [0, 1], or (N, D)
    y: np.ndarray | None
    label_names: list[str] | None
    description: str
    source: str
    likelihood: str = "bernoulli"
    standardise: bool = False
    feature_names: list[str] | None = None
    factors: np.ndarray | None = None
    factor_names: list[str] | None = None
    test: tuple[np.ndarray, np.ndarray | None] | None = None


# ---------------------------------------------------------------- the cache folder and shared checks


def _cache_dir() -> Path:
    """The download cache: ``$LATENT_EXPLORER_DATA`` if set now, else ``DEFAULT_CACHE_DIR``."""
    env = os.environ.get("LATENT_EXPLORER_DATA")
    return Path(env).expanduser() if env else DEFAULT_CACHE_DIR


def _check_size(path: Path, max_bytes: int) -> None:
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path} is {size:,} bytes, over the {max_bytes:,}-byte limit; expected a smaller file.")


def _encode_labels(values: np.ndarray, n: int, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes (sorted unique values) and their names; checks the count and the class limit.

    The rule for too many classes: labels name classes (they colour the latent map), so more than
    ``MAX_CLASSES`` distinct values (a column of IDs or measurements, say) is refused with a sentence
    rather than silently dropped; the person then picks another label column or none. Float labels
    count as classes only when every value is whole.
    """
    values = np.asarray(values)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"{where} has labels of shape {values.shape} for {n} items; expected one label per item.")
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ValueError(f"{where} has missing or non-finite labels; expected a label for every item.")
        if np.all(values == np.round(values)):
            values = values.astype(np.int64)
    elif values.dtype.kind == "O":
        values = values.astype(str)
    elif values.dtype.kind not in "biuU":
        raise ValueError(f"{where} has labels of type {values.dtype}; expected integers or strings.")
    uniques, codes = np.unique(values, return_inverse=True)
    if len(uniques) > MAX_CLASSES:
        raise ValueError(
            f"{where} has {len(uniques):,} distinct labels, more than the {MAX_CLASSES} allowed classes; "
            "expected class names, not IDs or measurements, so choose other labels or none."
        )
    return codes.astype(np.int64).reshape(-1), [str(u) for u in uniques]


def _unit_images(x: np.ndarray, where: str) -> np.ndarray:
    """Pixels to float32 in [0, 1], by what they are: booleans and 0/1 integers kept as 0/1, 16-bit integers
    over 255 / 65535, other integers (and floats in [0, 255]) / 255, floats in [0, 1] kept."""
    if x.dtype.kind == "b":
        return x.astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    if x.dtype.kind in "iu" and lo >= 0 and hi <= 1:
        return x.astype(np.float32)  # a binary image stored as integers
    if x.dtype == np.uint16 and hi > 255:
        return (x / np.float32(65535)).astype(np.float32)
    if lo < 0 or hi > 255:
        raise ValueError(f"{where} has pixel values from {lo:g} to {hi:g}; expected values in [0, 1] or [0, 255].")
    if x.dtype.kind == "f" and hi <= 1:
        return x.astype(np.float32)
    out = x.astype(np.float32)
    out *= np.float32(1 / 255)
    return out
