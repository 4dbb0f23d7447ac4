"""Users' own files: a path dispatched on its type (a folder of IDX files or images, .npz, .npy, .csv,
.zip), and the NumPy and CSV readers. Nothing is ever unpickled; bad data gets one sentence.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..progress import Progress
from .base import _check_size, _encode_labels, _Raw, _unit_images
from .idx import _find_idx, _load_idx_folder
from .images import _ZIP_READ_ERRORS, _folder_members, _load_images, _load_zip, _open_zip, _zip_guard


def _load_file(cfg: DataConfig, progress: Progress | None, max_bytes: int) -> _Raw:
    """Dispatch a user's path on its type: folder (IDX or images), .npz, .npy, .csv, .zip."""
    path = Path(cfg.path).expanduser()
    expected = "a .npz, .npy, .csv or .zip file, or a folder of images or IDX files"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; expected {expected}.")
    if path.is_dir():
        if "train_images" in _find_idx(path):
            return _load_idx_folder(path, progress, max_bytes)
        return _load_images(_folder_members(path, max_bytes), cfg.size, str(path), progress, max_bytes)
    _check_size(path, max_bytes)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with open(path, "rb") as f:
            _check_npy_header(f, path.stat().st_size, str(path))
        return _array_raw(_np_load(path, lambda: np.load(path, allow_pickle=False)), None, path)
    if suffix == ".npz":
        return _load_npz(path, max_bytes)
    if suffix == ".csv":
        return _load_csv(path, cfg.label_column)
    if suffix == ".zip":
        return _load_zip(path, cfg.size, max_bytes, progress)
    raise ValueError(f"{path} has an unsupported type {suffix or '(none)'!r}; expected {expected}.")


# ---------------------------------------------------------------- npy / npz


def _pickled(where: str) -> str:
    return (
        f"{where} holds pickled Python objects, which are refused because loading them can run code; "
        "expected plain numeric arrays saved with np.save / np.savez."
    )


def _not_numpy(where: str, why: object) -> str:
    return f"{where} is truncated or not a valid NumPy file ({why}); expected np.save / np.savez output."


def _np_load(path: Path, load: Callable):
    """Run a NumPy load, turning its errors into one-sentence ``ValueError``s (never unpickling)."""
    try:
        return load()
    except ValueError as e:
        if "Object arrays" in str(e) or "pickled" in str(e):
            raise ValueError(_pickled(str(path))) from None
        raise ValueError(_not_numpy(str(path), e)) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(_not_numpy(str(path), e)) from None


def _check_npy_header(f, available: int, where: str) -> None:
    """Read only the .npy header of the binary stream ``f`` (``available`` bytes long) and refuse it early.

    Refused before any data is read: pickles and object arrays, and a shape promising more bytes
    than the stream holds (a truncated file, or a forged header that would make NumPy allocate
    terabytes and fail with ``MemoryError``).
    """
    fmt = np.lib.format
    head = f.read(len(fmt.MAGIC_PREFIX) + 2)  # magic string + format version
    if head[:1] == b"\x80":  # a pickle stream (protocol 2+), as pickle.dump writes
        raise ValueError(_pickled(where))
    if len(head) < 8 or head[:6] != fmt.MAGIC_PREFIX:
        raise ValueError(_not_numpy(where, "no NumPy magic string at the start"))
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    if (head[6], head[7]) not in readers:
        raise ValueError(_not_numpy(where, f"format version {head[6]}.{head[7]}, not 1.0 or 2.0"))
    try:
        shape, _, dtype = readers[head[6], head[7]](f)
    except ValueError as e:
        raise ValueError(_not_numpy(where, e)) from None
    if dtype.hasobject:
        raise ValueError(_pickled(where))
    promised, held = math.prod(shape) * dtype.itemsize, available - f.tell()
    if min(shape, default=0) < 0 or promised > held:
        why = f"its header promises {promised:,} bytes for shape {shape}, the file holds {held:,}"
        raise ValueError(_not_numpy(where, why))


def _load_npz(path: Path, max_bytes: int) -> _Raw:
    """Data from ``x`` (or the first array), labels from ``y`` / ``labels`` if present.

    Every member must be a .npy array whose header passes ``_check_npy_header`` (read through the
    archive, a few hundred bytes each) before NumPy loads anything.
    """
    with _open_zip(path, "np.savez output") as zf:
        _zip_guard(zf, path, max_bytes)
        for info in zf.infolist():
            where = f"{path} entry {info.filename!r}"
            try:
                with zf.open(info) as member:
                    _check_npy_header(member, info.file_size, where)
            except _ZIP_READ_ERRORS as e:
                raise ValueError(f"{where} could not be read ({e}); expected np.savez output.") from None

    def read():
        with np.load(path, allow_pickle=False) as z:
            if not z.files:
                raise ValueError(f"{path} holds no arrays; expected an array named x.")
            x = z["x"] if "x" in z.files else z[z.files[0]]
            key = next((k for k in ("y", "labels") if k in z.files), None)
            return x, None if key is None else z[key]

    x, y = _np_load(path, read)
    return _array_raw(x, y, path)


def _array_raw(x: np.ndarray, y: np.ndarray | None, path: Path) -> _Raw:
    """Validate an array of images (N,H,W), (N,H,W,C), (N,C,H,W) or vectors (N,D) and its labels."""
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{path} holds {x.dtype} data; expected a numeric array of integers or floats.")
    if x.size == 0:
        raise ValueError(f"{path} holds an empty array of shape {x.shape}; expected at least two items.")
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"{path} holds an array of shape {x.shape}; expected N×D vectors or N×H×W(×C) images.")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{path} contains NaN or infinite values; expected finite numbers.")
    if x.dtype.kind in "iuf" and x.dtype.itemsize > 4 and np.abs(x).max() > np.finfo(np.float32).max:
        raise ValueError(
            f"{path} holds values up to {float(np.abs(x).max()):.3g}, beyond what 32-bit floats hold "
            f"({np.finfo(np.float32).max:.3g}); rescale the data first."
        )
    y, names = (None, None) if y is None else _encode_labels(y, len(x), str(path))
    if x.ndim == 2:
        desc = f"{len(x):,} vectors of {x.shape[1]} features from {path.name}"
        if x.dtype == np.uint8:
            return _Raw((x / 255.0).astype(np.float32), y, names, desc, str(path))
        if x.min() >= 0 and x.max() <= 1:
            return _Raw(x.astype(np.float32), y, names, desc, str(path))
        return _Raw(x, y, names, desc, str(path), likelihood="gaussian", standardise=True)
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    elif x.shape[-1] in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # channels-last → (N, C, H, W)
    elif x.shape[1] not in (1, 3):
        raise ValueError(f"{path} holds images of shape {x.shape}; expected 1 or 3 channels, first or last.")
    desc = f"{len(x):,} images of {x.shape[2]}×{x.shape[3]}×{x.shape[1]} from {path.name}"
    return _Raw(_unit_images(x, str(path)), y, names, desc, str(path))


# ---------------------------------------------------------------- csv


def _load_csv(path: Path, label_column: str | None) -> _Raw:
    """Numeric columns (standardised later) and an optional label column."""
    import pandas as pd

    _check_csv_rows(path)
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty; expected a header row and at least two data rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{path} could not be read as CSV ({str(e).strip()}); expected comma-separated numbers."
        ) from None
    if len(df) == 0:
        raise ValueError(f"{path} has a header but no data rows; expected at least two rows of numbers.")
    y = names = None
    if label_column is not None:
        if label_column not in df.columns:
            cols = ", ".join(map(str, df.columns))
            raise ValueError(f"{path} has no label column {label_column!r}; its columns are {cols}.")
        labels = df.pop(label_column)
        if labels.isna().any():
            raise ValueError(f"{path} has empty cells in label column {label_column!r}; expected a label on every row.")
        y, names = _encode_labels(labels.to_numpy(), len(df), f"{path} column {label_column!r}")
    if df.shape[1] == 0:
        raise ValueError(f"{path} has no feature columns besides the labels; expected at least one numeric column.")
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            bad = pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()
            row = int(np.argmax(bad.to_numpy()))
            raise ValueError(
                f"{path} has text ({df[col].iloc[row]!r}, line {row + 2}) in column {col!r}; "
                "expected numbers in every column but the label column."
            )
    x = df.to_numpy(np.float64)
    if not np.isfinite(x).all():
        row, col = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{path} has a missing or non-finite value in column {df.columns[col]!r}, line {row + 2}; "
            "expected a number in every cell."
        )
    desc = f"{len(x):,} rows × {x.shape[1]} columns from {path.name}"
    features = [str(c) for c in df.columns]
    return _Raw(x, y, names, desc, str(path), likelihood="gaussian", standardise=True, feature_names=features)


def _check_csv_rows(path: Path) -> None:
    """Refuse ragged rows (pandas would silently pad short ones with NaN)."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader, width = csv.reader(f), None
        try:
            for row in reader:
                if not row:
                    continue
                if width is None:
                    width = len(row)
                elif len(row) != width:
                    raise ValueError(
                        f"{path} has {len(row)} fields on line {reader.line_num} but {width} in its header; "
                        "expected the same number of fields on every row."
                    )
        except csv.Error as e:
            raise ValueError(f"{path} is not valid CSV ({e}); expected comma-separated numbers.") from None
