"""IDX (MNIST-format) files: parsing and checking one file, loading a folder of them (with its official
train/test split), and finding where a registered IDX dataset (Fashion-MNIST, MNIST) lives on this machine.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..progress import Progress, counted
from .base import MAX_CLASSES, _cache_dir, _check_size, _Raw, _unit_images

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_ENV = {"fashion-mnist": "FASHION_MNIST_DIR", "mnist": "MNIST_DIR"}
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path: Path, max_bytes: int) -> np.ndarray:
    """Parse one IDX file, gzipped or not, checking the magic number and the dimensions."""
    _check_size(path, max_bytes)
    try:
        with open(path, "rb") as f:
            if f.read(2) == b"\x1f\x8b":
                f.seek(0)
                with gzip.GzipFile(fileobj=f) as g:
                    raw = g.read(max_bytes + 1)
            else:
                f.seek(0)
                raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path} is a truncated or corrupt gzip file ({e}); expected a gzipped IDX file.") from None
    if len(raw) > max_bytes:
        raise ValueError(f"{path} unpacks to more than {max_bytes:,} bytes; expected a smaller IDX file.")
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in _IDX_DTYPES or not raw[3]:
        raise ValueError(f"{path} does not start with an IDX magic number; expected an MNIST-format IDX file.")
    header = 4 + 4 * raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], ">u4")) if len(raw) >= header else ()
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(dims) != raw[3] or len(raw) != expected:
        raise ValueError(
            f"{path} holds {len(raw):,} bytes but its header promises {expected:,}; the file is truncated."
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims)


def _find_idx(folder: Path) -> dict[str, Path]:
    """IDX files in ``folder`` by role (``train_images`` ...), plain files before ``.gz``."""
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        n = p.name.lower()
        kind = "images" if "idx3-ubyte" in n else "labels" if "idx1-ubyte" in n else None
        part = "test" if ("t10k" in n or "test" in n) else "train" if "train" in n else None
        if kind and part and p.is_file():
            found.setdefault(f"{part}_{kind}", p)
    return found


# ---------------------------------------------------------------- where a registered IDX dataset lives


def _idx_candidates(name: str, root: str | None) -> list[Path]:
    """Where a registered IDX dataset is looked for; an explicit ``root`` is the only place."""
    if root:
        return [Path(root).expanduser(), Path(root).expanduser() / name]
    env = os.environ.get(IDX_ENV[name])
    places = [Path(env).expanduser()] if env else []
    if name == "fashion-mnist":
        places.append(DEBIAN_FASHION_MNIST_DIR)
    return places + [_cache_dir() / name]


def _locate_idx(name: str, root: str | None) -> Path | None:
    for folder in _idx_candidates(name, root):
        if len(_find_idx(folder)) == 4:
            return folder
    return None


def _how_to_get(name: str, root: str | None) -> str:
    places = ", ".join(str(p) for p in _idx_candidates(name, root))
    apt = "`apt-get install dataset-fashion-mnist` or " if name == "fashion-mnist" else ""
    return (
        f"{name} was not found in {places}; get it with {apt}`python -m vae datasets --download {name}`, "
        f"or set {IDX_ENV[name]} (or --root) to a folder holding its four IDX files."
    )


# ---------------------------------------------------------------- a folder of IDX files


def _load_idx_folder(
    folder: Path, progress: Progress | None, max_bytes: int, label_names: list[str] | None = None, description: str = ""
) -> _Raw:
    """Images, labels if present, and the official test split if present, from a folder of IDX files."""
    files = _find_idx(folder)
    if "train_images" not in files:
        raise ValueError(f"{folder} holds no train-images IDX file; expected train-images-idx3-ubyte[.gz].")
    parts = [p for p in ("train", "test") if f"{p}_images" in files]
    if len(parts) == 2 and (("train_labels" in files) != ("test_labels" in files)):
        raise ValueError(
            f"{folder} has labels for only one of train and test; expected label files for both or neither."
        )
    loaded = {}
    for i, part in enumerate(parts):
        counted(progress, i, len(parts), f"reading {part} IDX files")
        x = _idx_images(_read_idx(files[f"{part}_images"], max_bytes), files[f"{part}_images"])
        y = _read_idx(files[f"{part}_labels"], max_bytes) if f"{part}_labels" in files else None
        if y is not None and y.shape != (len(x),):
            where = files[f"{part}_labels"]
            raise ValueError(f"{where} holds labels of shape {y.shape} for {len(x):,} images; expected one per image.")
        loaded[part] = (x, None if y is None else y.astype(np.int64))
    x, y = loaded["train"]
    if y is not None:
        top = max(int(lab.max()) for _, lab in loaded.values()) + 1
        label_names = label_names or [str(i) for i in range(top)]
        limit = min(len(label_names), MAX_CLASSES)
        if min(int(lab.min()) for _, lab in loaded.values()) < 0 or top > limit:
            raise ValueError(f"{folder} has labels outside 0..{limit - 1}; expected class numbers in that range.")
    description = description or f"IDX images from {folder.name}"
    return _Raw(x, y, label_names if y is not None else None, description, str(folder), test=loaded.get("test"))


def _idx_images(arr: np.ndarray, path: Path) -> np.ndarray:
    """IDX (N, H, W) pixels → float32 (N, 1, H, W) in [0, 1]."""
    if arr.ndim != 3 or len(arr) < 1:
        raise ValueError(f"{path} holds an array of shape {arr.shape}; expected images (N, H, W) in an idx3 file.")
    return _unit_images(arr[:, None], str(path))
